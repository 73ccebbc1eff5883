/**
 * RFC 8693 token exchange for upstream credentials: the request encoding, the cache of exchanged
 * tokens (expiry margin, single flight, bound), the schema of `auth.type: token-exchange`, and
 * the credential against a small real token endpoint on 127.0.0.1 (with a real identity
 * propagator over SQLite for the actor token).
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, SignJWT } from 'jose';
import { Agent } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { createIdentityPropagator } from '../../../src/auth/identity.js';
import type { Principal } from '../../../src/auth/principal.js';
import { ConfigError, parseConfigText } from '../../../src/config/load.js';
import { TokenExchangeAuth, UpstreamAuth } from '../../../src/config/schema.js';
import { GatewayError } from '../../../src/errors.js';
import { createLogger, silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import { createUpstreamCredentials } from '../../../src/upstream/credentials.js';
import {
  ACCESS_TOKEN_TYPE,
  ExchangedTokenCache,
  exchangeCacheKey,
  issuedSubject,
  JWT_TOKEN_TYPE,
  TOKEN_EXCHANGE_GRANT_TYPE,
  tokenExchangeForm,
  type CachedToken,
} from '../../../src/upstream/token-exchange.js';

const ISSUE_ENTRY = {
  type: 'token-exchange',
  clientId: 'gw-client',
  clientSecret: 'gw-secret',
  audience: 'https://upstream.example/mcp',
  scope: 'mcp:use',
};

function principal(subject: string, bearer: string | undefined, kind: Principal['kind'] = 'oauth'): Principal {
  return {
    id: `${kind}:${subject}`,
    kind,
    subject,
    permissions: ['*'],
    ...(bearer === undefined ? {} : { bearer }),
  };
}

function token(value: string, refreshAt: number): CachedToken {
  return { headers: { authorization: `Bearer ${value}` }, refreshAt };
}

describe('tokenExchangeForm', () => {
  it('encodes the RFC 8693 §2.1 parameters with the access-token subject type by default', () => {
    const form = tokenExchangeForm(TokenExchangeAuth.parse(ISSUE_ENTRY), 'subject.tok+en/=');
    expect([...form.keys()].sort()).toEqual(['audience', 'grant_type', 'scope', 'subject_token', 'subject_token_type']);
    expect(form.get('grant_type')).toBe(TOKEN_EXCHANGE_GRANT_TYPE);
    expect(form.get('subject_token')).toBe('subject.tok+en/=');
    expect(form.get('subject_token_type')).toBe(ACCESS_TOKEN_TYPE);
    expect(form.get('audience')).toBe('https://upstream.example/mcp');
    expect(form.get('scope')).toBe('mcp:use');
    // Form encoding: `+` and `/` in a token survive the round trip.
    expect(form.toString()).toContain('subject_token=subject.tok%2Ben%2F%3D');
  });

  it('sends resource, requested_token_type and a configured subject_token_type only when set', () => {
    const form = tokenExchangeForm(
      TokenExchangeAuth.parse({
        ...ISSUE_ENTRY,
        scope: undefined,
        resource: 'https://upstream.example/mcp',
        requestedTokenType: 'urn:ietf:params:oauth:token-type:jwt',
        subjectTokenType: 'urn:ietf:params:oauth:token-type:id_token',
      }),
      's',
    );
    expect(form.has('scope')).toBe(false);
    expect(form.get('resource')).toBe('https://upstream.example/mcp');
    expect(form.get('requested_token_type')).toBe('urn:ietf:params:oauth:token-type:jwt');
    expect(form.get('subject_token_type')).toBe('urn:ietf:params:oauth:token-type:id_token');
  });
});

describe('auth.type token-exchange schema', () => {
  it('accepts the documented server entry', () => {
    expect(UpstreamAuth.parse(ISSUE_ENTRY)).toEqual(ISSUE_ENTRY);
  });

  it('refuses a missing audience and an unknown key with clear messages', () => {
    const noAudience = UpstreamAuth.safeParse({ ...ISSUE_ENTRY, audience: undefined });
    expect(noAudience.success).toBe(false);
    expect(JSON.stringify(noAudience.error?.issues)).toContain('audience');
    expect(UpstreamAuth.safeParse({ ...ISSUE_ENTRY, tokenUrl: 'https://as.example/token' }).success).toBe(false);
    expect(UpstreamAuth.safeParse({ ...ISSUE_ENTRY, actorToken: 'client-assertion' }).success).toBe(true);
    expect(UpstreamAuth.safeParse({ ...ISSUE_ENTRY, actorToken: 'none' }).success).toBe(true);
    expect(UpstreamAuth.safeParse({ ...ISSUE_ENTRY, actorToken: 'jwt' }).success).toBe(false);
    expect(UpstreamAuth.safeParse({ ...ISSUE_ENTRY, tokenEndpoint: 'ftp://as.example/token' }).success).toBe(false);
    expect(UpstreamAuth.safeParse({ ...ISSUE_ENTRY, subjectTokenType: 'access token' }).success).toBe(false);
  });

  it('loads with inbound OAuth and is a config error without it', () => {
    const server = JSON.stringify({ url: 'https://upstream.example/mcp', auth: ISSUE_ENTRY });
    const oauth = `{"auth": {"mode": "oauth", "oauth": {"issuer": "https://as.example"}}, "servers": {"up": ${server}}}`;
    const cfg = parseConfigText(oauth, { format: 'json' });
    expect(cfg.servers.up).toMatchObject({ auth: ISSUE_ENTRY });
    let err: unknown;
    try {
      parseConfigText(`{"auth": {"mode": "tokens"}, "servers": {"up": ${server}}}`, { format: 'json' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const issue = (err as ConfigError).issues.find((i) => i.path.includes('auth'));
    expect(issue?.message).toMatch(/set auth\.mode to oauth or tokens\+oauth/);
  });
});

describe('issuedSubject', () => {
  it('reads the sub of a JWT without verifying it, and nothing from an opaque or odd token', async () => {
    const key = new TextEncoder().encode('k'.repeat(32));
    const jwt = (sub: unknown) =>
      new SignJWT(sub === undefined ? {} : ({ sub } as Record<string, unknown>))
        .setProtectedHeader({ alg: 'HS256' })
        .sign(key);
    expect(issuedSubject(await jwt('alice'))).toBe('alice');
    expect(issuedSubject(await jwt(undefined))).toBeUndefined();
    expect(issuedSubject(await jwt(42))).toBeUndefined();
    expect(issuedSubject(await jwt('a\nb'))).toBeUndefined();
    expect(issuedSubject(await jwt('x'.repeat(256)))).toBeUndefined();
    expect(issuedSubject('opaque-token')).toBeUndefined();
    expect(issuedSubject('a.b.c')).toBeUndefined();
  });
});

describe('ExchangedTokenCache', () => {
  it('reuses a token until its refresh time, then exchanges again', async () => {
    let now = 1_000;
    const cache = new ExchangedTokenCache({ clock: () => now });
    let exchanges = 0;
    const exchange = () => Promise.resolve(token(`t${++exchanges}`, now + 500));
    expect(await cache.get('k', exchange)).toEqual(token('t1', 1_500));
    now = 1_499;
    expect(cache.get('k', exchange)).toEqual(token('t1', 1_500)); // synchronous hit
    now = 1_500;
    expect(await cache.get('k', exchange)).toEqual(token('t2', 2_000));
    expect(exchanges).toBe(2);
  });

  it('runs one exchange for concurrent callers of the same key, and none is cached on failure', async () => {
    const cache = new ExchangedTokenCache();
    let exchanges = 0;
    let release!: (t: CachedToken) => void;
    const exchange = () => {
      exchanges++;
      return new Promise<CachedToken>((r) => (release = r));
    };
    const waiting = [cache.get('k', exchange), cache.get('k', exchange), cache.get('k', exchange)];
    expect(exchanges).toBe(1);
    release(token('shared', Date.now() + 60_000));
    const got = await Promise.all(waiting.map((w) => Promise.resolve(w)));
    expect(new Set(got.map((t) => t.headers.authorization))).toEqual(new Set(['Bearer shared']));

    const failing = new ExchangedTokenCache();
    await expect(failing.get('k', () => Promise.reject(new Error('refused')))).rejects.toThrow('refused');
    expect(failing.size).toBe(0);
    expect(await failing.get('k', () => Promise.resolve(token('ok', Date.now() + 60_000)))).toEqual(
      token('ok', expect.any(Number) as number),
    );
  });

  it('keeps at most maxEntries tokens, dropping the least recently used', async () => {
    const cache = new ExchangedTokenCache({ maxEntries: 2 });
    let exchanges = 0;
    const exchange = () => Promise.resolve(token(`t${++exchanges}`, Date.now() + 60_000));
    await cache.get('a', exchange);
    await cache.get('b', exchange);
    await cache.get('a', exchange); // a is now the most recent
    await cache.get('c', exchange); // evicts b
    expect(cache.size).toBe(2);
    expect(exchanges).toBe(3);
    await cache.get('a', exchange);
    await cache.get('c', exchange);
    expect(exchanges).toBe(3);
    await cache.get('b', exchange);
    expect(exchanges).toBe(4);
    expect(() => new ExchangedTokenCache({ maxEntries: 0 })).toThrow(RangeError);
  });

  it('keys by a hash of the subject token, never the token itself', () => {
    const key = exchangeCacheKey('secret-subject-token', 'aud', 'scope');
    expect(key).not.toContain('secret-subject-token');
    expect(key).not.toBe(exchangeCacheKey('other-subject-token', 'aud', 'scope'));
    expect(key).not.toBe(exchangeCacheKey('secret-subject-token', 'aud2', 'scope'));
    expect(key).not.toBe(exchangeCacheKey('secret-subject-token', 'aud', undefined));
  });
});

describe('token-exchange credential against a token endpoint on 127.0.0.1', () => {
  let server: Server | undefined;
  afterEach(async () => {
    const s = server;
    server = undefined;
    if (s === undefined) return;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
  });

  interface Seen {
    authorization: string | undefined;
    form: URLSearchParams;
  }

  async function endpoint(reply: (form: URLSearchParams) => { status: number; body: string }) {
    const seen: Seen[] = [];
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const form = new URLSearchParams(Buffer.concat(chunks).toString());
        seen.push({ authorization: req.headers.authorization, form });
        const r = reply(form);
        res.writeHead(r.status, { 'content-type': 'application/json' }).end(r.body);
      });
    });
    await new Promise<void>((r) => server!.listen(0, '127.0.0.1', r));
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/token`, seen };
  }

  const issued = (form: URLSearchParams) => ({
    status: 200,
    body: JSON.stringify({
      access_token: `exchanged-for-${form.get('subject_token')}`,
      issued_token_type: ACCESS_TOKEN_TYPE,
      token_type: 'Bearer',
      expires_in: 60,
    }),
  });

  it('authenticates as the gateway client, sends the exchanged token and re-exchanges 30 s before expiry', async () => {
    const { url, seen } = await endpoint(issued);
    let now = 0;
    const c = createUpstreamCredentials(
      { ...TokenExchangeAuth.parse(ISSUE_ENTRY), clientId: 'gw client', tokenEndpoint: url },
      { serverName: 'up', logger: silentLogger(), clock: () => now },
    );
    expect(c.type).toBe('token-exchange');
    const alice = principal('alice', 'alice-token');
    expect(await c.headersFor(alice)).toEqual({ authorization: 'Bearer exchanged-for-alice-token' });
    expect(seen).toHaveLength(1);
    expect(seen[0]?.authorization).toBe(`Basic ${Buffer.from('gw+client:gw-secret').toString('base64')}`);
    expect(seen[0]?.form.get('grant_type')).toBe(TOKEN_EXCHANGE_GRANT_TYPE);
    expect(await c.headersFor(principal('bob', 'bob-token'))).toEqual({
      authorization: 'Bearer exchanged-for-bob-token',
    });
    now = 29_999;
    expect(c.headersFor(alice)).toEqual({ authorization: 'Bearer exchanged-for-alice-token' });
    expect(seen).toHaveLength(2);
    now = 30_000;
    await c.headersFor(alice);
    expect(seen).toHaveLength(3);
    // After an upstream 401: only that caller exchanges again.
    const bob = principal('bob', 'bob-token');
    await c.headersFor(bob);
    expect(seen).toHaveLength(4);
    c.invalidate(alice);
    await c.headersFor(alice);
    expect(seen).toHaveLength(5);
    expect(c.headersFor(bob)).toEqual({ authorization: 'Bearer exchanged-for-bob-token' });
    expect(seen).toHaveLength(5);
  });

  it('refuses a caller without an OAuth access token, and sends nothing for the anonymous probe, without any request', async () => {
    const { url, seen } = await endpoint(issued);
    const c = createUpstreamCredentials(
      { ...TokenExchangeAuth.parse(ISSUE_ENTRY), tokenEndpoint: url },
      { serverName: 'up', logger: silentLogger() },
    );
    expect(c.headersFor(principal('anonymous', undefined, 'anonymous'))).toEqual({});
    for (const p of [principal('proxy-user', undefined, 'proxy-header'), principal('t', 'swb_api_token', 'token')]) {
      let err: unknown;
      try {
        await c.headersFor(p);
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe('SWB_ERR_UPSTREAM_NO_SUBJECT_TOKEN');
    }
    expect(seen).toHaveLength(0);
  });

  it('reports a refusal, a bad answer and an unreachable endpoint by reason class, never with a token', async () => {
    let mode: 'refuse' | 'bad' | 'n_a' = 'refuse';
    const { url } = await endpoint(() =>
      mode === 'refuse'
        ? {
            status: 400,
            body: JSON.stringify({ error: 'invalid_target', error_description: 'leaked subject-token-xyz' }),
          }
        : mode === 'bad'
          ? { status: 200, body: '{"access_token": 42}' }
          : { status: 200, body: '{"access_token": "exchanged-secret", "token_type": "N_A"}' },
    );
    const lines: string[] = [];
    const logger = createLogger({
      level: 'trace',
      format: 'json',
      destination: new PassThrough().on('data', (c: Buffer) => lines.push(c.toString())),
    });
    const c = createUpstreamCredentials(
      { ...TokenExchangeAuth.parse(ISSUE_ENTRY), tokenEndpoint: url },
      { serverName: 'up', logger },
    );
    const failure = async (): Promise<GatewayError> => {
      try {
        await c.headersFor(principal('alice', 'subject-token-xyz'));
      } catch (e) {
        return e as GatewayError;
      }
      throw new Error('expected a failure');
    };
    const refused = await failure();
    expect(refused.code).toBe('SWB_ERR_UPSTREAM_TOKEN_EXCHANGE');
    expect(refused.data).toEqual({ server: 'up', reason: 'refused', error: 'invalid_target' });
    mode = 'bad';
    expect((await failure()).data).toMatchObject({ reason: 'invalid_response' });
    mode = 'n_a';
    expect((await failure()).data).toMatchObject({ reason: 'invalid_response' });
    const s = server!;
    server = undefined;
    s.closeAllConnections();
    await new Promise((r) => s.close(r));
    const unreachable = await failure();
    expect(unreachable.data).toMatchObject({ server: 'up', reason: 'unreachable' });
    const text = [refused, unreachable].map((e) => `${e.message} ${JSON.stringify(e.data)}`).join('') + lines.join('');
    expect(lines.length).toBeGreaterThan(3);
    expect(text).not.toContain('subject-token-xyz');
    expect(text).not.toContain('exchanged-secret');
    expect(text).not.toContain('gw-secret');
  });

  it('sends a configured tokenEndpoint through the given dispatcher, the discovered one through the global one', async () => {
    const { url, seen } = await endpoint(issued);
    // Stands for the destination policy of a runtime server: it refuses every connection.
    const refusing = new Agent({ connect: (_opts, cb) => cb(new Error('destination refused'), null) });
    try {
      const configured = createUpstreamCredentials(
        { ...TokenExchangeAuth.parse(ISSUE_ENTRY), tokenEndpoint: url },
        { serverName: 'up', logger: silentLogger(), dispatcher: refusing },
      );
      await expect(configured.headersFor(principal('alice', 'a'))).rejects.toMatchObject({
        data: { reason: 'unreachable' },
      });
      expect(seen).toHaveLength(0);
      const discovered = createUpstreamCredentials(TokenExchangeAuth.parse(ISSUE_ENTRY), {
        serverName: 'up',
        logger: silentLogger(),
        dispatcher: refusing,
        authorizationServer: () => Promise.resolve({ issuer: 'http://127.0.0.1', token_endpoint: url }),
      });
      expect(await discovered.headersFor(principal('alice', 'a'))).toEqual({ authorization: 'Bearer exchanged-for-a' });
      expect(seen).toHaveLength(1);
    } finally {
      await refusing.close();
    }
  });

  it('finds the token endpoint in the inbound authorization server metadata', async () => {
    const { url, seen } = await endpoint(issued);
    const c = createUpstreamCredentials(TokenExchangeAuth.parse(ISSUE_ENTRY), {
      serverName: 'up',
      logger: silentLogger(),
      authorizationServer: () => Promise.resolve({ issuer: 'http://127.0.0.1', token_endpoint: url }),
    });
    expect(await c.headersFor(principal('alice', 'a'))).toEqual({ authorization: 'Bearer exchanged-for-a' });
    expect(seen).toHaveLength(1);
    const noMetadata = createUpstreamCredentials(TokenExchangeAuth.parse(ISSUE_ENTRY), {
      serverName: 'up',
      logger: silentLogger(),
      authorizationServer: () => Promise.resolve({ issuer: 'http://127.0.0.1' }),
    });
    await expect(noMetadata.headersFor(principal('alice', 'a'))).rejects.toMatchObject({
      code: 'SWB_ERR_UPSTREAM_TOKEN_EXCHANGE',
      data: { reason: 'discovery' },
    });
  });
  it('with actorToken client-assertion, sends one gateway-signed actor token until 10 s before it expires', async () => {
    const { url, seen } = await endpoint(issued);
    const db = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger(), env: {} });
    await db.migrate();
    try {
      let now = 1_000_000;
      const identity = await createIdentityPropagator({
        issuer: 'https://gw.example',
        keyStore: db.settings,
        clock: () => now,
      });
      const auth = {
        ...TokenExchangeAuth.parse(ISSUE_ENTRY),
        tokenEndpoint: url,
        actorToken: 'client-assertion' as const,
      };
      expect(() => createUpstreamCredentials(auth, { serverName: 'up', logger: silentLogger() })).toThrow(
        expect.objectContaining({ code: 'SWB_ERR_CONFIG_INVALID' }) as Error,
      );
      const c = createUpstreamCredentials(auth, {
        serverName: 'up',
        logger: silentLogger(),
        clock: () => now,
        identity,
      });
      await c.headersFor(principal('alice', 'a'));
      await c.headersFor(principal('bob', 'b'));
      expect(seen).toHaveLength(2);
      const actor = seen[0]!.form.get('actor_token')!;
      expect(seen[0]!.form.get('actor_token_type')).toBe(JWT_TOKEN_TYPE);
      expect(seen[1]!.form.get('actor_token')).toBe(actor);
      expect(decodeProtectedHeader(actor)).toEqual({ alg: 'ES256', kid: identity.kid, typ: 'JWT' });
      const { payload } = await jwtVerify(actor, createLocalJWKSet(identity.jwks()), {
        issuer: 'https://gw.example',
        audience: url,
        currentDate: new Date(now),
      });
      expect(payload).toMatchObject({ sub: 'gw-client', iat: 1_000, exp: 1_060 });
      expect(typeof payload.jti).toBe('string');
      // 49.999 s later the same actor token is still used; at 50 s a new one is signed.
      now += 49_999;
      await c.headersFor(principal('carol', 'c'));
      expect(seen[2]!.form.get('actor_token')).toBe(actor);
      now += 1;
      await c.headersFor(principal('dave', 'd'));
      expect(seen[3]!.form.get('actor_token')).not.toBe(actor);
      // Without actorToken, none is sent.
      const plain = createUpstreamCredentials(
        { ...TokenExchangeAuth.parse(ISSUE_ENTRY), tokenEndpoint: url },
        { serverName: 'up', logger: silentLogger(), identity },
      );
      await plain.headersFor(principal('erin', 'e'));
      expect(seen[4]!.form.has('actor_token')).toBe(false);
      expect(seen[4]!.form.has('actor_token_type')).toBe(false);
    } finally {
      await db.close();
    }
  });

  it("reports the issued JWT's sub to the sink, cached with the token, and nothing for an opaque token", async () => {
    const key = new TextEncoder().encode('k'.repeat(32));
    const jwtFor = (subject: string) =>
      new SignJWT({ sub: `upstream-${subject}` }).setProtectedHeader({ alg: 'HS256' }).sign(key);
    const jwts = new Map([['a', await jwtFor('alice')]]);
    const { url, seen } = await endpoint((form) => ({
      status: 200,
      body: JSON.stringify({
        access_token: jwts.get(form.get('subject_token')!) ?? 'opaque-token',
        token_type: 'Bearer',
        expires_in: 60,
      }),
    }));
    const c = createUpstreamCredentials(
      { ...TokenExchangeAuth.parse(ISSUE_ENTRY), tokenEndpoint: url },
      { serverName: 'up', logger: silentLogger() },
    );
    const first: { upstreamSubject?: string | undefined } = {};
    await c.headersFor(principal('alice', 'a'), first);
    expect(first.upstreamSubject).toBe('upstream-alice');
    const cached: { upstreamSubject?: string | undefined } = {};
    expect(c.headersFor(principal('alice', 'a'), cached)).not.toBeInstanceOf(Promise); // synchronous: the cached token
    expect(cached.upstreamSubject).toBe('upstream-alice');
    expect(seen).toHaveLength(1);
    const opaque: { upstreamSubject?: string | undefined } = {};
    await c.headersFor(principal('bob', 'b'), opaque);
    expect(opaque).toEqual({});
  });
});
