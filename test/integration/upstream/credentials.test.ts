/**
 * The client-credentials grant (RFC 6749 §4.4) against a tiny real token endpoint on 127.0.0.1.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent } from 'undici';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import type { UpstreamAuth } from '../../../src/config/schema.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createUpstreamCredentials, type UpstreamCredentials } from '../../../src/upstream/credentials.js';

interface SeenRequest {
  method: string | undefined;
  authorization: string | undefined;
  contentType: string | undefined;
  form: URLSearchParams;
}

interface TokenEndpoint {
  url: string;
  requests: SeenRequest[];
  /** What the next responses look like. */
  reply: { status: number; body: unknown; rawBody?: string };
  /** When set, responses wait for this promise. */
  gate: Promise<void> | undefined;
  close(): Promise<void>;
}

async function startTokenEndpoint(): Promise<TokenEndpoint> {
  let issued = 0;
  const endpoint: TokenEndpoint = {
    url: '',
    requests: [],
    reply: { status: 200, body: undefined },
    gate: undefined,
    close: () => Promise.resolve(),
  };
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      endpoint.requests.push({
        method: req.method,
        authorization: req.headers.authorization,
        contentType: req.headers['content-type'],
        form: new URLSearchParams(Buffer.concat(chunks).toString('utf8')),
      });
      const respond = (): void => {
        const { status, body, rawBody } = endpoint.reply;
        issued++;
        const payload =
          rawBody ?? JSON.stringify(body ?? { access_token: `token-${issued}`, token_type: 'Bearer', expires_in: 120 });
        res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
        res.end(payload);
      };
      if (endpoint.gate === undefined) respond();
      else void endpoint.gate.then(respond);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  endpoint.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/oauth/token`;
  endpoint.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return endpoint;
}

const CLIENT_SECRET = 's3cr3t p@ss+/=';

describe('oauth2-client-credentials upstream credentials', () => {
  let endpoint: TokenEndpoint;
  let agent: Agent;
  let now: number;

  beforeEach(async () => {
    endpoint = await startTokenEndpoint();
    agent = new Agent();
    now = 1_700_000_000_000;
  });

  afterEach(async () => {
    await agent.close();
    await endpoint.close();
  });

  function credentials(
    overrides: Partial<Extract<UpstreamAuth, { type: 'oauth2-client-credentials' }>> = {},
  ): UpstreamCredentials {
    return createUpstreamCredentials(
      {
        type: 'oauth2-client-credentials',
        tokenUrl: endpoint.url,
        clientId: 'switchboard client',
        clientSecret: CLIENT_SECRET,
        ...overrides,
      },
      { serverName: 'billing', logger: silentLogger(), dispatcher: agent, clock: () => now },
    );
  }

  it('requests a token with client_secret_basic, scope, resource and audience (RFC 6749 §4.4, RFC 8707)', async () => {
    const c = credentials({ scope: 'read write', resource: 'https://billing.example/mcp', audience: 'billing-api' });
    expect(c.type).toBe('oauth2-client-credentials');
    expect(await c.headersFor(ANONYMOUS)).toEqual({ authorization: 'Bearer token-1' });

    expect(endpoint.requests).toHaveLength(1);
    const seen = endpoint.requests[0]!;
    expect(seen.method).toBe('POST');
    expect(seen.contentType).toBe('application/x-www-form-urlencoded');
    // RFC 6749 §2.3.1: id and secret are form-urlencoded, then joined and base64-encoded.
    const decoded = Buffer.from((seen.authorization ?? '').replace(/^Basic /, ''), 'base64').toString('utf8');
    const [id, secret] = decoded.split(':').map((part) => decodeURIComponent(part.replace(/\+/g, ' ')));
    expect(id).toBe('switchboard client');
    expect(secret).toBe(CLIENT_SECRET);
    expect(Object.fromEntries(seen.form)).toEqual({
      grant_type: 'client_credentials',
      scope: 'read write',
      resource: 'https://billing.example/mcp',
      audience: 'billing-api',
    });
  });

  it('sends only grant_type when no scope, resource or audience is configured', async () => {
    await credentials().headersFor(ANONYMOUS);
    expect(Object.fromEntries(endpoint.requests[0]!.form)).toEqual({ grant_type: 'client_credentials' });
  });

  it('caches the token and returns it synchronously until expires_in minus 30 s', async () => {
    const c = credentials();
    const first = await c.headersFor(ANONYMOUS);
    now += 89_000; // expires_in 120 s → refresh from 90 s on
    const cached = c.headersFor(ANONYMOUS);
    expect(cached).not.toBeInstanceOf(Promise);
    expect(cached).toBe(first);
    expect(endpoint.requests).toHaveLength(1);

    now += 1_000;
    expect(await c.headersFor(ANONYMOUS)).toEqual({ authorization: 'Bearer token-2' });
    expect(endpoint.requests).toHaveLength(2);
  });

  it('caps the skew at half the lifetime of a short-lived token', async () => {
    endpoint.reply = { status: 200, body: { access_token: 'short', token_type: 'bearer', expires_in: 20 } };
    const c = credentials();
    await c.headersFor(ANONYMOUS);
    now += 9_999;
    expect(c.headersFor(ANONYMOUS)).toEqual({ authorization: 'Bearer short' });
    expect(endpoint.requests).toHaveLength(1);
    now += 1;
    await c.headersFor(ANONYMOUS);
    expect(endpoint.requests).toHaveLength(2);
  });

  it('assumes a 300 s lifetime when the response has no expires_in', async () => {
    endpoint.reply = { status: 200, body: { access_token: 'forever', token_type: 'Bearer' } };
    const c = credentials();
    await c.headersFor(ANONYMOUS);
    now += 269_000;
    expect(c.headersFor(ANONYMOUS)).toEqual({ authorization: 'Bearer forever' });
    now += 1_000;
    await c.headersFor(ANONYMOUS);
    expect(endpoint.requests).toHaveLength(2);
  });

  it('shares one token request among 10 concurrent callers (single flight)', async () => {
    let release!: () => void;
    endpoint.gate = new Promise<void>((resolve) => (release = resolve));
    const c = credentials();
    const calls = Array.from({ length: 10 }, () => c.headersFor(ANONYMOUS));
    expect(new Set(calls).size).toBe(1); // every caller holds the same in-flight promise
    await new Promise((resolve) => setTimeout(resolve, 50)); // let the one request reach the endpoint
    release();
    const results = await Promise.all(calls.map((call) => Promise.resolve(call)));
    expect(endpoint.requests).toHaveLength(1);
    expect(new Set(results).size).toBe(1);
    expect(results[0]).toEqual({ authorization: 'Bearer token-1' });
  });

  it('fails with SWB_ERR_UPSTREAM_AUTH on a 401 from the token endpoint, without leaking the secret, and retries next call', async () => {
    endpoint.reply = {
      status: 401,
      body: { error: 'invalid_client', error_description: `bad secret ${CLIENT_SECRET}` },
    };
    const c = credentials();
    const err = await Promise.resolve(c.headersFor(ANONYMOUS)).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('SWB_ERR_UPSTREAM_AUTH');
    expect((err as GatewayError).status).toBe(502);
    expect((err as GatewayError).message).toContain('401');
    expect((err as GatewayError).message).toContain('invalid_client');
    expect((err as GatewayError).message).not.toContain(CLIENT_SECRET);
    expect(JSON.stringify((err as GatewayError).toJsonRpcError())).not.toContain(CLIENT_SECRET);

    endpoint.reply = { status: 200, body: undefined };
    expect(await c.headersFor(ANONYMOUS)).toEqual({ authorization: 'Bearer token-2' });
    expect(endpoint.requests).toHaveLength(2);
  });

  it('gives every concurrent waiter the same failure', async () => {
    endpoint.reply = { status: 401, body: { error: 'invalid_client' } };
    const c = credentials();
    const results = await Promise.allSettled(Array.from({ length: 5 }, () => Promise.resolve(c.headersFor(ANONYMOUS))));
    expect(
      results.every((r) => r.status === 'rejected' && (r.reason as GatewayError).code === 'SWB_ERR_UPSTREAM_AUTH'),
    ).toBe(true);
    expect(endpoint.requests).toHaveLength(1);
  });

  it.each([
    ['a non-JSON body', { status: 200, body: undefined, rawBody: '<html>oops</html>' }],
    ['no access_token', { status: 200, body: { token_type: 'Bearer', expires_in: 60 } }],
    ['an access_token with a line break', { status: 200, body: { access_token: 'a\r\nb', token_type: 'Bearer' } }],
    ['a non-bearer token_type', { status: 200, body: { access_token: 'x', token_type: 'DPoP', expires_in: 60 } }],
    ['a 500 without a body', { status: 500, body: undefined, rawBody: '' }],
  ])('fails with SWB_ERR_UPSTREAM_AUTH on %s', async (_name, reply) => {
    endpoint.reply = reply;
    const err = await Promise.resolve(credentials().headersFor(ANONYMOUS)).catch((e: unknown) => e);
    expect((err as GatewayError).code).toBe('SWB_ERR_UPSTREAM_AUTH');
  });

  it('fails with SWB_ERR_UPSTREAM_AUTH when the token endpoint is unreachable', async () => {
    const url = endpoint.url;
    await endpoint.close();
    const c = createUpstreamCredentials(
      { type: 'oauth2-client-credentials', tokenUrl: url, clientId: 'id', clientSecret: CLIENT_SECRET },
      { serverName: 'billing', logger: silentLogger(), dispatcher: agent },
    );
    const err = await Promise.resolve(c.headersFor(ANONYMOUS)).catch((e: unknown) => e);
    expect((err as GatewayError).code).toBe('SWB_ERR_UPSTREAM_AUTH');
    expect((err as GatewayError).message).not.toContain(CLIENT_SECRET);
  });

  it('fetches a new token after invalidate (e.g. the upstream answered 401)', async () => {
    const c = credentials();
    await c.headersFor(ANONYMOUS);
    c.invalidate();
    expect(await c.headersFor(ANONYMOUS)).toEqual({ authorization: 'Bearer token-2' });
    expect(endpoint.requests).toHaveLength(2);
  });

  it('uses the global dispatcher when none is given', async () => {
    const c = createUpstreamCredentials(
      { type: 'oauth2-client-credentials', tokenUrl: endpoint.url, clientId: 'id', clientSecret: 'secret' },
      { serverName: 'billing', logger: silentLogger() },
    );
    expect(await c.headersFor(ANONYMOUS)).toEqual({ authorization: 'Bearer token-1' });
  });
});
