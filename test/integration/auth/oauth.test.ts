/**
 * The OAuth 2.1 resource server against a REAL authorization server (`oidc-provider`), issue
 * "Identity" §C: JWT access tokens (RFC 9068) with resource indicators, opaque tokens through
 * RFC 7662 introspection, RFC 8414 / OpenID Connect discovery, and the failure modes of each.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { SignJWT, UnsecuredJWT, decodeJwt, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { createOAuthVerifier, type OAuthVerifier, type OAuthVerifierOptions } from '../../../src/auth/oauth.js';
import { GatewayError } from '../../../src/errors.js';
import { createLogger, silentLogger } from '../../../src/observability/logger.js';
import { startAuthorizationServer, type RunningAuthorizationServer } from '../../helpers/oidc.js';

const RESOURCE = 'https://gw.example.test/mcp';
const OPAQUE_RESOURCE = 'https://opaque.example.test/mcp';

/** Runs `fn` and returns the GatewayError it rejects with (fails the test otherwise). */
async function rejection(fn: () => Promise<unknown>): Promise<GatewayError> {
  try {
    await fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
  throw new Error('expected a rejection');
}

const cleanups: (() => Promise<void>)[] = [];
afterEach(async () => {
  while (cleanups.length) await cleanups.pop()?.();
});

async function startAs(opts: Parameters<typeof startAuthorizationServer>[0] = {}): Promise<RunningAuthorizationServer> {
  const as = await startAuthorizationServer({ opaqueResources: [OPAQUE_RESOURCE], ...opts });
  cleanups.push(() => as.stop());
  return as;
}

/** A plain HTTP server answering every request with `handler`'s JSON (or status). */
async function startJsonServer(
  handler: (path: string) => { status: number; body?: unknown },
): Promise<{ url: string }> {
  const server: Server = createServer((req, res) => {
    const { status, body } = handler(req.url ?? '/');
    res.writeHead(status, { 'content-type': 'application/json' }).end(body === undefined ? '' : JSON.stringify(body));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('OAuth resource server against oidc-provider', () => {
  let as: RunningAuthorizationServer;

  beforeAll(async () => {
    as = await startAuthorizationServer({ opaqueResources: [OPAQUE_RESOURCE] });
  });
  afterAll(async () => {
    await as.stop();
  });

  function verifier(overrides: Partial<OAuthVerifierOptions> = {}): OAuthVerifier {
    return createOAuthVerifier({
      issuer: as.issuer,
      audience: RESOURCE,
      validation: 'jwt',
      logger: silentLogger(),
      ...overrides,
    });
  }

  function introspecting(overrides: Partial<OAuthVerifierOptions> = {}): OAuthVerifier {
    return verifier({
      validation: 'introspection',
      audience: [RESOURCE, OPAQUE_RESOURCE],
      clientId: as.introspectionClient.clientId,
      clientSecret: as.introspectionClient.clientSecret,
      ...overrides,
    });
  }

  const introspections = (): number => as.requests.filter((p) => p.endsWith('/token/introspection')).length;

  describe('jwt validation', () => {
    it('accepts a JWT access token issued for this resource, with the client id as subject', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE, scope: 'mcp:read mcp:write' });
      const v = await verifier().verify(token);
      expect(v).toMatchObject({
        subject: as.client.clientId,
        issuer: as.issuer,
        audience: [RESOURCE],
        scopes: ['mcp:read', 'mcp:write'],
        clientId: as.client.clientId,
        via: 'jwt',
      });
      expect(v.expiresAt).toBe((decodeJwt(token).exp ?? 0) * 1000);
      expect(v.claims.jti).toBeTypeOf('string');
    });

    it('takes the subject from sub, so different users are different principals', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE, scope: 'mcp:read', sub: 'alice' });
      expect((await verifier().verify(token)).subject).toBe('alice');
    });

    it('accepts any of several configured audiences', async () => {
      const token = await as.issueJwtAccessToken({ resource: 'https://other.example.test/mcp' });
      const v = await verifier({ audience: [RESOURCE, 'https://other.example.test/mcp'] }).verify(token);
      expect(v.audience).toEqual(['https://other.example.test/mcp']);
    });

    it('rejects a token issued for another resource (audience check fails closed)', async () => {
      const token = await as.issueJwtAccessToken({ resource: 'https://elsewhere.example.test/mcp' });
      const e = await rejection(() => verifier().verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(e.status).toBe(401);
      expect(e.data?.reason).toBe('audience mismatch');
    });

    it('rejects a correctly signed token whose iss is not the configured issuer', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE });
      // Same keys (explicit jwksUri), different expected issuer: only the iss check can fail.
      const v = verifier({ issuer: 'https://issuer.example.test', jwksUri: `${as.issuer}/jwks` });
      const e = await rejection(() => v.verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(e.data?.reason).toBe('issuer mismatch');
    });

    it('rejects a token from another authorization server', async () => {
      const other = await startAs();
      const token = await other.issueJwtAccessToken({ resource: RESOURCE });
      const e = await rejection(() => verifier().verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(e.data?.reason).toBe('no matching key in the JWKS');
    });

    it('rejects an expired token, allowing 30 s of clock skew', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE });
      const exp = (decodeJwt(token).exp ?? 0) * 1000;
      expect((await verifier({ clock: () => exp + 20_000 }).verify(token)).via).toBe('jwt');
      const e = await rejection(() => verifier({ clock: () => exp + 31_000 }).verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(e.data?.reason).toBe('token expired');
    });

    it('reuses a verified JWT briefly but never past its exp', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE });
      const exp = (decodeJwt(token).exp ?? 0) * 1000;
      let now = exp - 60_000;
      const v = verifier({ clock: () => now, cacheTtlMs: 3_600_000 });
      const first = await v.verify(token);
      now = exp - 1000;
      expect(await v.verify(token)).toBe(first); // the cached result, same object
      now = exp + 31_000;
      expect((await rejection(() => v.verify(token))).data?.reason).toBe('token expired');
    });

    it('rejects a token with one byte of its signature changed', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE });
      const [h, p, s = ''] = token.split('.');
      const i = Math.floor(s.length / 2);
      const tampered = `${h}.${p}.${s.slice(0, i)}${s[i] === 'A' ? 'B' : 'A'}${s.slice(i + 1)}`;
      const e = await rejection(() => verifier().verify(tampered));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(e.data?.reason).toBe('bad signature');
    });

    it('rejects a token whose payload was edited (scope escalation)', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE, scope: 'mcp:read' });
      const [h, p = '', s] = token.split('.');
      const claims = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
      claims.scope = 'mcp:read mcp:admin';
      const forged = `${h}.${Buffer.from(JSON.stringify(claims)).toString('base64url')}.${s}`;
      const e = await rejection(() => verifier().verify(forged));
      expect(e.data?.reason).toBe('bad signature');
    });

    it('rejects a forged alg:none token carrying valid-looking claims', async () => {
      const real = decodeJwt(await as.issueJwtAccessToken({ resource: RESOURCE }));
      const forged = new UnsecuredJWT({ ...real, sub: 'admin', scope: 'mcp:admin' }).encode();
      for (const validation of ['jwt', 'both'] as const) {
        const before = introspections();
        const v = validation === 'jwt' ? verifier() : introspecting({ validation });
        const e = await rejection(() => v.verify(forged));
        expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
        expect(e.data?.reason).toBe('algorithm none not allowed');
        expect(introspections()).toBe(before);
      }
    });

    it('rejects an HS256 token signed with a guessable secret, even with a known kid', async () => {
      const real = await as.issueJwtAccessToken({ resource: RESOURCE });
      const { kid } = JSON.parse(Buffer.from(real.split('.')[0] ?? '', 'base64url').toString()) as { kid: string };
      for (const secret of ['secret', as.client.clientSecret, as.introspectionClient.clientSecret]) {
        const forged = await new SignJWT({ ...decodeJwt(real), scope: 'mcp:admin' })
          .setProtectedHeader({ alg: 'HS256', typ: 'at+jwt', kid })
          .sign(new TextEncoder().encode(secret));
        const e = await rejection(() => verifier().verify(forged));
        expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
        expect(e.data?.reason).toBe('algorithm HS256 not allowed');
      }
    });

    it('refuses a token without a required scope with 403 and the required scope list', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE, scope: 'mcp:read' });
      const e = await rejection(() => verifier({ requiredScopes: ['mcp:read', 'mcp:admin'] }).verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_INSUFFICIENT_SCOPE');
      expect(e.status).toBe(403);
      expect(e.data?.scope).toEqual(['mcp:read', 'mcp:admin']);
    });

    it('accepts a token that carries every required scope', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE, scope: 'mcp:admin mcp:read' });
      const v = await verifier({ requiredScopes: ['mcp:read', 'mcp:admin'] }).verify(token);
      expect(v.scopes).toEqual(expect.arrayContaining(['mcp:read', 'mcp:admin']));
    });

    it('rejects an opaque token in jwt mode without asking the authorization server', async () => {
      const before = introspections();
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
      const e = await rejection(() => verifier().verify(token));
      expect(e.data?.reason).toBe('not a JWT');
      expect(introspections()).toBe(before);
    });
  });

  describe('introspection (RFC 7662)', () => {
    it('accepts an opaque token through introspection, with the client id as subject', async () => {
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE, scope: 'mcp:read' });
      const v = await introspecting().verify(token);
      expect(v).toMatchObject({
        subject: as.client.clientId,
        clientId: as.client.clientId,
        issuer: as.issuer,
        audience: [OPAQUE_RESOURCE],
        scopes: ['mcp:read'],
        via: 'introspection',
      });
      expect(v.claims).not.toHaveProperty('active');
    });

    it('uses sub from the introspection response when present', async () => {
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE, sub: 'bob' });
      expect((await introspecting().verify(token)).subject).toBe('bob');
    });

    it('rejects a token the authorization server never issued', async () => {
      const e = await rejection(() => introspecting().verify('never-issued-0123456789abcdefghijklmnop'));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(e.data?.reason).toBe('token is not active');
    });

    it('caches a positive answer briefly, then sees the revocation', async () => {
      let now = Date.now();
      const v = introspecting({ clock: () => now });
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
      const before = introspections();
      await v.verify(token);
      await v.verify(token);
      expect(introspections()).toBe(before + 1);

      await as.revokeToken(token);
      now += 10_000;
      expect((await v.verify(token)).via).toBe('introspection'); // still cached (≤ 30 s)
      now += 21_000;
      const e = await rejection(() => v.verify(token));
      expect(e.data?.reason).toBe('token is not active');
      expect(introspections()).toBe(before + 2);
      // A revoked token is rejected at once by a verifier without the cached answer.
      expect((await rejection(() => introspecting().verify(token))).code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
    });

    it('asks the authorization server once for a burst of requests with the same token', async () => {
      const v = introspecting();
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
      const before = introspections();
      const results = await Promise.all(Array.from({ length: 10 }, () => v.verify(token)));
      expect(results.every((r) => r.subject === as.client.clientId)).toBe(true);
      expect(introspections()).toBe(before + 1);
    });

    it('rejects an active token whose introspection response has no aud (fail closed)', async () => {
      const token = await as.issueOpaqueAccessToken({});
      const e = await rejection(() => introspecting().verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(e.data?.reason).toBe('token has no audience');
    });

    it('rejects an active token for another audience', async () => {
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
      const e = await rejection(() => introspecting({ audience: RESOURCE }).verify(token));
      expect(e.data?.reason).toBe('audience mismatch');
    });

    it('rejects an introspected token past its exp', async () => {
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
      const e = await rejection(() => introspecting({ clock: () => Date.now() + 3_600_000 }).verify(token));
      expect(e.data?.reason).toBe('token expired');
    });

    it('rejects a JWT that the authorization server will not introspect', async () => {
      const token = await as.issueJwtAccessToken({ resource: RESOURCE });
      const e = await rejection(() => introspecting().verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
    });

    it('answers 503 (not 401) when the authorization server rejects our client credentials', async () => {
      const token = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
      const e = await rejection(() => introspecting({ clientSecret: 'wrong' }).verify(token));
      expect(e.code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
      expect(e.status).toBe(503);
    });
  });

  describe('both (JWT first, introspection fallback)', () => {
    const both = (o: Partial<OAuthVerifierOptions> = {}): OAuthVerifier => introspecting({ validation: 'both', ...o });

    it('accepts JWTs locally and opaque tokens through introspection', async () => {
      const v = both();
      const jwt = await as.issueJwtAccessToken({ resource: RESOURCE, scope: 'mcp:read' });
      const opaque = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE, scope: 'mcp:read' });
      const before = introspections();
      expect((await v.verify(jwt)).via).toBe('jwt');
      expect(introspections()).toBe(before);
      expect((await v.verify(opaque)).via).toBe('introspection');
      expect(introspections()).toBe(before + 1);
    });

    it('does not rescue an expired JWT through introspection', async () => {
      const jwt = await as.issueJwtAccessToken({ resource: RESOURCE });
      const before = introspections();
      const e = await rejection(() => both({ clock: () => Date.now() + 3_600_000 }).verify(jwt));
      expect(e.data?.reason).toBe('token expired');
      expect(introspections()).toBe(before);
    });

    it('does not rescue a JWT for another audience through introspection', async () => {
      const jwt = await as.issueJwtAccessToken({ resource: 'https://elsewhere.example.test/mcp' });
      const before = introspections();
      const e = await rejection(() => both().verify(jwt));
      expect(e.data?.reason).toBe('audience mismatch');
      expect(introspections()).toBe(before);
    });

    it('asks the authorization server about a JWT signed with a key it does not publish, and rejects it', async () => {
      const other = await startAs();
      const jwt = await other.issueJwtAccessToken({ resource: RESOURCE });
      const before = introspections();
      const e = await rejection(() => both().verify(jwt));
      expect(e.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      expect(introspections()).toBe(before + 1);
    });

    it('still applies the required scopes to introspected tokens', async () => {
      const opaque = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE, scope: 'mcp:read' });
      const e = await rejection(() => both({ requiredScopes: ['mcp:write'] }).verify(opaque));
      expect(e.code).toBe('SWB_ERR_AUTH_INSUFFICIENT_SCOPE');
      expect(e.data?.scope).toEqual(['mcp:write']);
    });
  });

  it('never writes a token to the logs', async () => {
    const lines: string[] = [];
    const sink = new PassThrough();
    sink.on('data', (c: Buffer) => lines.push(c.toString()));
    const logger = createLogger({ level: 'trace', destination: sink });
    const v = introspecting({ validation: 'both', logger, clientSecret: 'wrong' });
    const jwt = await as.issueJwtAccessToken({ resource: 'https://elsewhere.example.test/mcp' });
    const opaque = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
    await rejection(() => v.verify(jwt));
    await rejection(() => v.verify(opaque));
    await rejection(() => v.verify('junk-token-value-which-is-never-logged'));
    const log = lines.join('');
    expect(log).toContain('access token rejected');
    expect(log).not.toContain(jwt);
    expect(log).not.toContain(jwt.split('.')[2]);
    expect(log).not.toContain(opaque);
    expect(log).not.toContain('junk-token-value-which-is-never-logged');
    expect(log).not.toContain('wrong');
  });
});

describe('authorization server metadata discovery', () => {
  const base = { audience: RESOURCE, validation: 'jwt' as const, logger: silentLogger() };

  it('uses RFC 8414 metadata when the authorization server serves it', async () => {
    const as = await startAs();
    const v = createOAuthVerifier({ ...base, issuer: as.issuer });
    const m = await v.discover();
    expect(m.issuer).toBe(as.issuer);
    expect(m.jwks_uri).toBe(`${as.issuer}/jwks`);
    expect(m.introspection_endpoint).toBe(`${as.issuer}/token/introspection`);
    const wellKnown = as.requests.filter((p) => p.includes('/.well-known/'));
    expect(wellKnown).toEqual(['/.well-known/oauth-authorization-server']);
    await v.verify(await as.issueJwtAccessToken({ resource: RESOURCE }));
  });

  it('falls back to OpenID Connect discovery when RFC 8414 metadata is absent', async () => {
    const as = await startAs({ rfc8414: false });
    const v = createOAuthVerifier({ ...base, issuer: as.issuer });
    expect((await v.verify(await as.issueJwtAccessToken({ resource: RESOURCE }))).via).toBe('jwt');
    const wellKnown = as.requests.filter((p) => p.includes('/.well-known/'));
    expect(wellKnown).toEqual(['/.well-known/oauth-authorization-server', '/.well-known/openid-configuration']);
  });

  it('inserts the well-known segment before the issuer path (RFC 8414 §3.1)', async () => {
    const as = await startAs({ mountPath: '/tenant-a' });
    expect(as.issuer).toMatch(/\/tenant-a$/);
    const v = createOAuthVerifier({ ...base, issuer: as.issuer });
    await v.verify(await as.issueJwtAccessToken({ resource: RESOURCE }));
    expect(as.requests.filter((p) => p.includes('/.well-known/'))).toEqual([
      '/.well-known/oauth-authorization-server/tenant-a',
    ]);
  });

  it('finds an issuer with a path through OpenID Connect discovery appended to the path', async () => {
    const as = await startAs({ mountPath: '/tenant-b', rfc8414: false });
    const v = createOAuthVerifier({ ...base, issuer: as.issuer });
    await v.verify(await as.issueJwtAccessToken({ resource: RESOURCE }));
    expect(as.requests.filter((p) => p.includes('/.well-known/'))).toEqual([
      '/.well-known/oauth-authorization-server/tenant-b',
      '/.well-known/openid-configuration/tenant-b',
      '/tenant-b/.well-known/openid-configuration',
    ]);
  });

  it('refuses metadata that names another issuer (RFC 8414 §3.3)', async () => {
    const evil = await startJsonServer(() => ({
      status: 200,
      body: { issuer: 'https://evil.example.test', jwks_uri: 'https://evil.example.test/jwks' },
    }));
    const v = createOAuthVerifier({ ...base, issuer: evil.url });
    const e = await rejection(() => v.discover());
    expect(e.code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
    expect((await rejection(() => v.verify('a.b.c'))).code).toBe('SWB_ERR_AUTH_INVALID_TOKEN'); // malformed: judged locally
    const as = await startAs();
    const token = await as.issueJwtAccessToken({ resource: RESOURCE });
    expect((await rejection(() => v.verify(token))).code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
  });

  it('does not need discovery when jwksUri and introspectionEndpoint are configured', async () => {
    const as = await startAs();
    const v = createOAuthVerifier({
      ...base,
      issuer: as.issuer,
      validation: 'both',
      audience: [RESOURCE, OPAQUE_RESOURCE],
      clientId: as.introspectionClient.clientId,
      clientSecret: as.introspectionClient.clientSecret,
      jwksUri: `${as.issuer}/jwks`,
      introspectionEndpoint: `${as.issuer}/token/introspection`,
    });
    await v.verify(await as.issueJwtAccessToken({ resource: RESOURCE }));
    await v.verify(await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE }));
    expect(as.requests.some((p) => p.includes('/.well-known/'))).toBe(false);
  });

  it('answers SWB_ERR_AUTH_UNAVAILABLE (503) when nothing listens at the issuer', async () => {
    const closed = await startJsonServer(() => ({ status: 404 }));
    const port = new URL(closed.url).port;
    await cleanups.pop()?.(); // close it: the port now refuses connections
    const v = createOAuthVerifier({ ...base, issuer: `http://127.0.0.1:${port}`, timeoutMs: 2000 });
    const as = await startAs();
    const token = await as.issueJwtAccessToken({ resource: RESOURCE });
    const e = await rejection(() => v.verify(token));
    expect(e.code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
    expect(e.status).toBe(503);
  });

  it('retries discovery after a backoff delay once the authorization server is back', async () => {
    const as = await startAs();
    let now = Date.now();
    const v = createOAuthVerifier({ ...base, issuer: as.issuer, clock: () => now });
    const token = await as.issueJwtAccessToken({ resource: RESOURCE });
    as.setAvailable(false);
    expect((await rejection(() => v.verify(token))).code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
    as.setAvailable(true);
    const seen = as.requests.length;
    // Within the backoff window the failure is answered at once, without hammering the AS.
    expect((await rejection(() => v.verify(token))).code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
    expect(as.requests.length).toBe(seen);
    now += 61_000;
    expect((await v.verify(token)).via).toBe('jwt');
  });

  it('answers 503 when introspection is needed while the authorization server is down', async () => {
    const as = await startAs();
    const v = createOAuthVerifier({
      ...base,
      issuer: as.issuer,
      validation: 'both',
      audience: [RESOURCE, OPAQUE_RESOURCE],
      clientId: as.introspectionClient.clientId,
      clientSecret: as.introspectionClient.clientSecret,
    });
    const jwt = await as.issueJwtAccessToken({ resource: RESOURCE });
    const opaque = await as.issueOpaqueAccessToken({ resource: OPAQUE_RESOURCE });
    await v.verify(jwt); // discovery and JWKS loaded
    as.setAvailable(false);
    // JWTs keep verifying with the cached key set; opaque tokens cannot be judged.
    expect((await v.verify(jwt)).via).toBe('jwt');
    expect((await rejection(() => v.verify(opaque))).code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
  });
});

describe('JWKS availability', () => {
  afterEach(() => {
    vi.useRealTimers();
  });

  it('answers 503 when the JWKS cannot be loaded', async () => {
    const as = await startAs();
    const v = createOAuthVerifier({ issuer: as.issuer, audience: RESOURCE, validation: 'jwt', logger: silentLogger() });
    await v.discover();
    const token = await as.issueJwtAccessToken({ resource: RESOURCE });
    as.setAvailable(false);
    expect((await rejection(() => v.verify(token))).code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
    as.setAvailable(true);
    expect((await v.verify(token)).via).toBe('jwt');
  });

  it('keeps using the last key set when a refresh fails, for at most 24 h', async () => {
    const as = await startAs({ accessTokenTtlSec: 3 * 86_400 });
    const log: string[] = [];
    const sink = new PassThrough().on('data', (c: Buffer) => log.push(c.toString()));
    const logger = createLogger({ level: 'warn', destination: sink });
    const v = createOAuthVerifier({ issuer: as.issuer, audience: RESOURCE, validation: 'jwt', logger });
    const token = await as.issueJwtAccessToken({ resource: RESOURCE });
    await v.verify(token);
    as.setAvailable(false);
    // Only Date is faked: jose's cache ages out (10 min), timers and sockets run normally.
    vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 11 * 60_000 });
    expect((await v.verify(token)).via).toBe('jwt');
    expect(log.join('')).toContain('JWKS refresh failed; using the last key set');
    vi.setSystemTime(Date.now() + 25 * 3_600_000);
    expect((await rejection(() => v.verify(token))).code).toBe('SWB_ERR_AUTH_UNAVAILABLE');
  });
});

describe('JWT shapes oidc-provider does not issue (own signing key, real JWKS endpoint)', () => {
  const ISSUER = 'https://issuer.example.test';
  let keys: { privateKey: CryptoKeyLike; jwk: JWK }[];
  let jwksUrl: string;
  type CryptoKeyLike = Awaited<ReturnType<typeof generateKeyPair>>['privateKey'];

  beforeAll(async () => {
    keys = [];
    for (const [alg, kid] of [
      ['ES256', 'ec-1'],
      ['ES256', 'ec-2'],
    ] as const) {
      const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
      keys.push({ privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } });
    }
  });

  async function jwks(): Promise<string> {
    const server = await startJsonServer(() => ({ status: 200, body: { keys: keys.map((k) => k.jwk) } }));
    jwksUrl = `${server.url}/jwks`;
    return jwksUrl;
  }

  async function sign(
    claims: Record<string, unknown>,
    header: Record<string, unknown> = { typ: 'JWT', kid: 'ec-1' },
    key = keys[0]?.privateKey,
  ): Promise<string> {
    const now = Math.floor(Date.now() / 1000);
    return new SignJWT({ iss: ISSUER, aud: RESOURCE, sub: 'user-1', iat: now, exp: now + 300, ...claims })
      .setProtectedHeader({ alg: 'ES256', ...header })
      .sign(key as CryptoKeyLike);
  }

  const verifierFor = async (o: Partial<OAuthVerifierOptions> = {}): Promise<OAuthVerifier> =>
    createOAuthVerifier({
      issuer: ISSUER,
      audience: RESOURCE,
      validation: 'jwt',
      jwksUri: await jwks(),
      logger: silentLogger(),
      ...o,
    });

  it('accepts a plain typ:JWT token with scp as a list and azp as client id', async () => {
    const v = await verifierFor();
    const res = await v.verify(await sign({ scp: ['mcp:read', 'mcp:write'], azp: 'spa' }));
    expect(res).toMatchObject({ subject: 'user-1', scopes: ['mcp:read', 'mcp:write'], clientId: 'spa', via: 'jwt' });
  });

  it('accepts a kid-less token when several keys could match, by trying each', async () => {
    const v = await verifierFor();
    const token = await sign({}, { typ: 'at+jwt' }, keys[1]?.privateKey);
    expect((await v.verify(token)).subject).toBe('user-1');
  });

  it('rejects a token without aud', async () => {
    const v = await verifierFor();
    const e = await rejection(async () => v.verify(await sign({ aud: undefined })));
    expect(e.data?.reason).toBe('audience mismatch');
  });

  it('rejects a token without exp', async () => {
    const v = await verifierFor();
    const e = await rejection(async () => v.verify(await sign({ exp: undefined })));
    expect(e.data?.reason).toBe('token has no exp');
  });

  it('rejects a token that is not valid yet', async () => {
    const v = await verifierFor();
    const e = await rejection(async () => v.verify(await sign({ nbf: Math.floor(Date.now() / 1000) + 600 })));
    expect(e.data?.reason).toBe('token not yet valid');
  });

  it('rejects other JWT types (ID-token-like logout or DPoP proof JWTs)', async () => {
    const v = await verifierFor();
    const e = await rejection(async () => v.verify(await sign({}, { typ: 'dpop+jwt', kid: 'ec-1' })));
    expect(e.data?.reason).toBe('token type dpop+jwt not accepted');
  });

  it('rejects a sender-constrained (cnf) token presented as a bearer token', async () => {
    const v = await verifierFor();
    const e = await rejection(async () => v.verify(await sign({ cnf: { jkt: 'abc' } })));
    expect(e.data?.reason).toBe('sender-constrained token (cnf) not supported');
  });

  it('rejects a token signed with a key that is not in the JWKS but reuses a published kid', async () => {
    const v = await verifierFor();
    const { privateKey } = await generateKeyPair('ES256');
    const e = await rejection(async () => v.verify(await sign({}, { typ: 'JWT', kid: 'ec-1' }, privateKey)));
    expect(e.data?.reason).toBe('bad signature');
  });
});
