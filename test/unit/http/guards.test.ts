import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/errors.js';
import {
  accepts,
  createOriginGuard,
  isJsonContentType,
  isLoopbackHost,
  type OriginGuardOptions,
} from '../../../src/http/guards.js';

/** A request as the guard sees it: only headers matter. */
function request(headers: Record<string, string>): IncomingMessage {
  return { headers } as IncomingMessage;
}

function guardError(options: Partial<OriginGuardOptions>, headers: Record<string, string>): unknown {
  const guard = createOriginGuard({ bindHost: '127.0.0.1', allowedHosts: [], allowedOrigins: [], ...options });
  try {
    guard(request(headers));
  } catch (err) {
    return err;
  }
  return undefined;
}

const FORBIDDEN_HOST = { code: 'SWB_ERR_HTTP_FORBIDDEN_HOST', status: 403 };
const FORBIDDEN_ORIGIN = { code: 'SWB_ERR_HTTP_FORBIDDEN_ORIGIN', status: 403 };

describe('isLoopbackHost', () => {
  it.each(['localhost', '127.0.0.1', '127.1.2.3', '::1', '[::1]', 'app.localhost'])('treats %s as loopback', (h) => {
    expect(isLoopbackHost(h)).toBe(true);
  });

  it.each(['evil.example', '10.0.0.1', '0.0.0.0', 'localhost.evil.example', '127.0.0.1.evil.example'])(
    'does not treat %s as loopback',
    (h) => {
      expect(isLoopbackHost(h)).toBe(false);
    },
  );
});

describe('origin guard: Host header (DNS rebinding)', () => {
  it.each(['127.0.0.1:8080', 'localhost:8080', 'localhost', '[::1]:8080', '127.0.0.1'])(
    'accepts loopback Host %s',
    (host) => {
      expect(guardError({}, { host })).toBeUndefined();
    },
  );

  it('refuses a foreign Host with 403 SWB_ERR_HTTP_FORBIDDEN_HOST', () => {
    const err = guardError({}, { host: 'evil.example' });
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject(FORBIDDEN_HOST);
    expect(guardError({}, { host: 'evil.example:8080' })).toMatchObject(FORBIDDEN_HOST);
  });

  it('refuses a request without a Host header', () => {
    expect(guardError({}, {})).toMatchObject(FORBIDDEN_HOST);
  });

  it('accepts the bind host itself', () => {
    expect(guardError({ bindHost: '192.168.1.10' }, { host: '192.168.1.10:8080' })).toBeUndefined();
    expect(guardError({ bindHost: '192.168.1.10' }, { host: '192.168.1.11:8080' })).toMatchObject(FORBIDDEN_HOST);
  });

  it.each(['0.0.0.0', '::'])('accepts any Host when bound to wildcard %s with no allowedHosts', (bindHost) => {
    expect(guardError({ bindHost }, { host: 'evil.example' })).toBeUndefined();
    expect(guardError({ bindHost }, { host: 'gateway.internal:8080' })).toBeUndefined();
  });

  it('checks Host against allowedHosts when bound to a wildcard with allowedHosts set', () => {
    const options = { bindHost: '0.0.0.0', allowedHosts: ['gateway.internal'] };
    expect(guardError(options, { host: 'gateway.internal:8080' })).toBeUndefined();
    expect(guardError(options, { host: 'localhost:8080' })).toBeUndefined();
    expect(guardError(options, { host: 'evil.example' })).toMatchObject(FORBIDDEN_HOST);
  });

  it('accepts a hostname in allowedHosts on any port, and a hostname:port entry only on that port', () => {
    const options = { allowedHosts: ['mcp.example.com', 'Other.Example:9000'] };
    expect(guardError(options, { host: 'mcp.example.com' })).toBeUndefined();
    expect(guardError(options, { host: 'MCP.example.com:443' })).toBeUndefined();
    expect(guardError(options, { host: 'other.example:9000' })).toBeUndefined();
    expect(guardError(options, { host: 'other.example:9001' })).toMatchObject(FORBIDDEN_HOST);
  });
});

describe('origin guard: Origin header', () => {
  const host = '127.0.0.1:8080';

  it('accepts a request without Origin (non-browser clients)', () => {
    expect(guardError({}, { host })).toBeUndefined();
  });

  it.each(['http://localhost:3000', 'http://127.0.0.1:5173', 'http://[::1]:8080', 'https://localhost'])(
    'accepts loopback Origin %s',
    (origin) => {
      expect(guardError({}, { host, origin })).toBeUndefined();
    },
  );

  it('refuses a foreign Origin with 403 SWB_ERR_HTTP_FORBIDDEN_ORIGIN', () => {
    const err = guardError({}, { host, origin: 'http://evil.example' });
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject(FORBIDDEN_ORIGIN);
  });

  it('refuses Origin "null" (sandboxed iframes, file: pages)', () => {
    expect(guardError({}, { host, origin: 'null' })).toMatchObject(FORBIDDEN_ORIGIN);
  });

  it('refuses an Origin that is not a URL', () => {
    expect(guardError({}, { host, origin: 'not a url' })).toMatchObject(FORBIDDEN_ORIGIN);
  });

  it('accepts an Origin listed in allowedOrigins, ignoring case and a trailing slash in the config', () => {
    const options = { allowedOrigins: ['https://App.Example.com/'] };
    expect(guardError(options, { host, origin: 'https://app.example.com' })).toBeUndefined();
    expect(guardError(options, { host, origin: 'https://app.example.com:8443' })).toMatchObject(FORBIDDEN_ORIGIN);
    expect(guardError(options, { host, origin: 'http://app.example.com' })).toMatchObject(FORBIDDEN_ORIGIN);
  });

  it('accepts the request’s own origin when its Host was allowed by name (a page the gateway served)', () => {
    const options = { bindHost: '0.0.0.0', allowedHosts: ['gw.example.com'] };
    expect(guardError(options, { host: 'gw.example.com', origin: 'https://gw.example.com' })).toBeUndefined();
    expect(guardError(options, { host: 'gw.example.com:8443', origin: 'https://gw.example.com:8443' })).toBeUndefined();
    // Another port or host is another origin.
    expect(guardError(options, { host: 'gw.example.com', origin: 'https://gw.example.com:9000' })).toMatchObject(
      FORBIDDEN_ORIGIN,
    );
    expect(guardError(options, { host: 'gw.example.com', origin: 'https://evil.example' })).toMatchObject(
      FORBIDDEN_ORIGIN,
    );
    // Bound to a name: the same.
    expect(guardError({ bindHost: 'gw.lan' }, { host: 'gw.lan:8080', origin: 'http://gw.lan:8080' })).toBeUndefined();
  });

  it('does not accept a same-origin request when any Host is accepted: a rebinding page would be same-origin', () => {
    expect(
      guardError({ bindHost: '0.0.0.0' }, { host: 'evil.example:8080', origin: 'http://evil.example:8080' }),
    ).toMatchObject(FORBIDDEN_ORIGIN);
  });

  it('checks Origin even when any Host is accepted', () => {
    expect(
      guardError({ bindHost: '0.0.0.0' }, { host: 'gateway.internal', origin: 'http://evil.example' }),
    ).toMatchObject(FORBIDDEN_ORIGIN);
  });
});

describe('accepts (Accept negotiation, RFC 9110 §12.5.1)', () => {
  const withAccept = (accept?: string) => request(accept === undefined ? {} : { accept });
  const both = (accept?: string) => [
    accepts(withAccept(accept), 'application/json'),
    accepts(withAccept(accept), 'text/event-stream'),
  ];

  it.each([
    'application/json, text/event-stream',
    'text/event-stream, application/json',
    'APPLICATION/JSON, Text/Event-Stream',
    '*/*',
    'application/*, text/*',
    'application/json;q=0.5, text/event-stream;q=0.001',
    'application/json; charset=utf-8, text/event-stream',
    'application/json;q=1.0,text/event-stream;q=1',
  ])('accepts both MCP types for %s', (accept) => {
    expect(both(accept)).toEqual([true, true]);
  });

  it.each([
    ['application/jsonx, text/event-stream', [false, true]],
    ['application/json, text/event-streamx', [true, false]],
    ['application/jsonx', [false, false]],
    ['*/*, text/event-stream;q=0', [true, false]],
    ['application/json;q=0, */*', [false, true]],
    ['application/json; charset=latin1, text/event-stream', [false, true]],
    ['text/html', [false, false]],
    ['', [false, false]],
  ])('refuses what %s excludes', (accept, expected) => {
    expect(both(accept)).toEqual(expected);
  });

  it('refuses a request without Accept (MCP requires the client to list both)', () => {
    expect(both(undefined)).toEqual([false, false]);
  });
});

describe('isJsonContentType', () => {
  it.each([
    'application/json',
    'application/json; charset=utf-8',
    'Application/JSON;charset="UTF-8"',
    'application/json ; charset=utf-8',
  ])('accepts %s', (ct) => expect(isJsonContentType(ct)).toBe(true));

  it.each([
    'application/jsonx',
    'application/json-seq',
    'text/plain; a=application/json',
    'application/json x',
    'application/json; charset=latin1',
    'text/json',
    '',
  ])('refuses %s', (ct) => expect(isJsonContentType(ct)).toBe(false));

  it('refuses a missing Content-Type', () => expect(isJsonContentType(undefined)).toBe(false));
});
