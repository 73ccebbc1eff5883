import { describe, expect, it } from 'vitest';
import { ANONYMOUS, type Principal } from '../../../src/auth/principal.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createUpstreamCredentials } from '../../../src/upstream/credentials.js';

const options = { serverName: 'hdr', logger: silentLogger() };

const alice: Principal = {
  id: 'oauth:https://issuer.example#alice',
  kind: 'oauth',
  subject: 'alice',
  permissions: ['*'],
  bearer: 'alice-access-token',
};

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (err) {
    return err;
  }
  return undefined;
}

describe('createUpstreamCredentials: static credentials', () => {
  it('adds nothing when the server has no auth', () => {
    const c = createUpstreamCredentials(undefined, options);
    expect(c.type).toBe('none');
    expect(c.headersFor(alice)).toEqual({});
  });

  it('adds nothing for auth type none, even for a caller with a bearer token', () => {
    const c = createUpstreamCredentials({ type: 'none' }, options);
    expect(c.type).toBe('none');
    expect(c.headersFor(alice)).toEqual({});
  });

  it('sends the configured bearer token (RFC 6750 §2.1) synchronously, the same frozen object every time', () => {
    const c = createUpstreamCredentials({ type: 'bearer', token: 'operator-token' }, options);
    const first = c.headersFor(alice);
    expect(first).toEqual({ authorization: 'Bearer operator-token' });
    expect(first).not.toBeInstanceOf(Promise);
    expect(Object.isFrozen(first)).toBe(true);
    expect(c.headersFor(ANONYMOUS)).toBe(first);
  });

  it('sends Basic base64(user:password) with UTF-8 (RFC 7617)', () => {
    const c = createUpstreamCredentials({ type: 'basic', username: 'jürgen', password: 'p@ss:word' }, options);
    const headers = c.headersFor(alice) as Record<string, string>;
    expect(headers.authorization).toBe(`Basic ${Buffer.from('jürgen:p@ss:word', 'utf8').toString('base64')}`);
    expect(Object.isFrozen(headers)).toBe(true);
  });

  it('refuses a basic username containing ":" (RFC 7617 §2) without echoing the password', () => {
    const err = thrown(() =>
      createUpstreamCredentials({ type: 'basic', username: 'a:b', password: 'secret-pw' }, options),
    );
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('SWB_ERR_CONFIG_INVALID');
    expect((err as GatewayError).message).not.toContain('secret-pw');
  });

  it('refuses a bearer token with a line break (e.g. read from a file) without echoing it', () => {
    const err = thrown(() => createUpstreamCredentials({ type: 'bearer', token: 'tok-secret\n' }, options));
    expect((err as GatewayError).code).toBe('SWB_ERR_CONFIG_INVALID');
    expect((err as GatewayError).message).not.toContain('tok-secret');
  });

  it('refuses a basic credential with control characters', () => {
    const err = thrown(() =>
      createUpstreamCredentials({ type: 'basic', username: 'u', password: 'p\r\nX: y' }, options),
    );
    expect((err as GatewayError).code).toBe('SWB_ERR_CONFIG_INVALID');
  });
});

describe('createUpstreamCredentials: forward', () => {
  it("forwards the caller's own bearer token", () => {
    const c = createUpstreamCredentials({ type: 'forward' }, options);
    expect(c.type).toBe('forward');
    expect(c.headersFor(alice)).toEqual({ authorization: 'Bearer alice-access-token' });
  });

  it('sends nothing for a caller without a bearer token (anonymous, trusted proxy header)', () => {
    const c = createUpstreamCredentials({ type: 'forward' }, options);
    expect(c.headersFor(ANONYMOUS)).toEqual({});
    expect(c.headersFor({ ...alice, kind: 'proxy-header', bearer: undefined })).toEqual({});
  });

  it('never mixes callers: each principal gets its own token', () => {
    const c = createUpstreamCredentials({ type: 'forward' }, options);
    const bob: Principal = { ...alice, id: 'oauth:https://issuer.example#bob', bearer: 'bob-token' };
    expect(c.headersFor(alice)).toEqual({ authorization: 'Bearer alice-access-token' });
    expect(c.headersFor(bob)).toEqual({ authorization: 'Bearer bob-token' });
  });

  it('invalidate is a harmless no-op for non-token types', () => {
    const cases = [
      [undefined, {}],
      [{ type: 'forward' as const }, { authorization: 'Bearer alice-access-token' }],
      [{ type: 'bearer' as const, token: 't' }, { authorization: 'Bearer t' }],
    ] as const;
    for (const [auth, headers] of cases) {
      const c = createUpstreamCredentials(auth, options);
      c.invalidate();
      expect(c.headersFor(alice)).toEqual(headers);
    }
  });
});
