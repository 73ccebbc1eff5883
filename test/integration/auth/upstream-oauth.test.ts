/**
 * The upstream OAuth broker's first half against a real `oidc-provider` authorization server:
 * discovery from a protected upstream's 401 (RFC 9728) and RFC 8414, the authorization URL with
 * PKCE S256 and an HMAC-protected state, a login and consent driven headlessly through the
 * provider's interaction API, the code exchange, and the tokens stored sealed in the vault.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomUUID } from 'node:crypto';
import { exportJWK, generateKeyPair, jwtVerify, createLocalJWKSet, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthServerHttp } from '../../../src/auth/oauth-common.js';
import { deriveVaultKey, TokenVault } from '../../../src/auth/token-vault.js';
import {
  protectedResourceMetadataUrl,
  resourceMetadataFromChallenge,
  UpstreamOAuthBroker,
  type BrokerServer,
} from '../../../src/auth/upstream-oauth.js';
import { OAuth2UserAuth } from '../../../src/config/schema.js';
import { createOAuthCallbackRoute } from '../../../src/http/oauth-callback.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';

interface Provider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(
    req: IncomingMessage,
    res: ServerResponse,
  ): Promise<{ uid: string; params: Record<string, string> }>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: unknown, o?: unknown): Promise<void>;
  Grant: new (o: { accountId: string; clientId: string }) => {
    addOIDCScope(s: string): void;
    addResourceScope(r: string, s: string): void;
    save(): Promise<string>;
  };
}
const OIDC_PROVIDER: string = 'oidc-provider';

const CLIENT = { id: 'switchboard-gw', secret: 'gw-secret-0123456789abcdef0123456789' };
const REDIRECT = 'http://127.0.0.1:1/oauth/callback';

let as: Server;
let issuer: string;
let upstream: Server;
let upstreamUrl: string;
let publicKeys: JWK[];
/** The user the next interaction logs in as (the test's "browser" picks it). */
let nextUser = 'alice';
/** Requests to the provider's token endpoint so far. */
let tokenRequests = 0;
let db: Database;
let vault: TokenVault;
let now = Date.now();
const clock = () => now;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

beforeAll(async () => {
  const { default: ProviderClass } = (await import(OIDC_PROVIDER)) as {
    default: new (issuer: string, config: Record<string, unknown>) => Provider;
  };
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `k-${randomUUID().slice(0, 8)}`;
  publicKeys = [{ ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' }];
  const app: { provider?: Provider } = {};
  as = createServer((req, res) => {
    const provider = app.provider!;
    const path = (req.url ?? '/').split('?')[0]!;
    if (path === '/token') tokenRequests++;
    if (path.startsWith('/interaction/')) {
      // Headless login and consent: the interaction API, as a login page would call it.
      void (async () => {
        const details = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({ accountId: nextUser, clientId: CLIENT.id });
        grant.addOIDCScope('openid offline_access');
        if (details.params.resource) grant.addResourceScope(details.params.resource, 'mcp:read');
        const grantId = await grant.save();
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: nextUser }, consent: { grantId } },
          {
            mergeWithLastSubmission: false,
          },
        );
      })().catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
      return;
    }
    provider.callback()(req, res);
  });
  issuer = await listen(as);
  app.provider = new ProviderClass(issuer, {
    clients: [
      {
        client_id: CLIENT.id,
        client_secret: CLIENT.secret,
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        redirect_uris: [REDIRECT],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }] },
    scopes: ['openid', 'offline_access'],
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    issueRefreshToken: () => true,
    features: {
      devInteractions: { enabled: false },
      revocation: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'mcp:read',
          audience: resource,
          accessTokenTTL: 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
    },
  });

  // The protected upstream: 401 with resource_metadata (RFC 9728 §5.1), and its metadata document.
  upstream = createServer((req, res) => {
    if (req.url === '/.well-known/oauth-protected-resource/mcp') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({ resource: upstreamUrl, authorization_servers: [issuer], scopes_supported: ['mcp:read'] }),
      );
      return;
    }
    res.writeHead(401, {
      'www-authenticate': `Bearer resource_metadata="${new URL('/.well-known/oauth-protected-resource/mcp', upstreamUrl).toString()}"`,
    });
    res.end();
  });
  upstreamUrl = `${await listen(upstream)}/mcp`;

  db = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger(), env: {} });
  await db.migrate();
  vault = new TokenVault({ store: db.upstreamTokens!, keys: [deriveVaultKey('v'.repeat(32), 'v1')], clock });
}, 30_000);

afterAll(async () => {
  await db?.close();
  as?.closeAllConnections();
  upstream?.closeAllConnections();
  await new Promise((r) => as?.close(r));
  await new Promise((r) => upstream?.close(r));
});

function broker(key = Buffer.alloc(32, 3)): UpstreamOAuthBroker {
  return new UpstreamOAuthBroker({
    key,
    vault,
    redirectUri: REDIRECT,
    http: createAuthServerHttp(5_000, undefined),
    logger: silentLogger(),
    clock,
  });
}

function server(auth: Record<string, unknown> = {}): BrokerServer {
  return {
    name: 'notes',
    url: upstreamUrl,
    auth: OAuth2UserAuth.parse({ type: 'oauth2-user', clientId: CLIENT.id, clientSecret: CLIENT.secret, ...auth }),
  };
}

/** Plays the user's browser: follows the provider's redirects with its cookies until the redirect URI. */
async function authorize(url: string, user: string): Promise<URL> {
  nextUser = user;
  const jar = new Map<string, string>();
  let next = url;
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(next, {
      redirect: 'manual',
      headers: { cookie: [...jar].map(([k, v]) => `${k}=${v}`).join('; ') },
    });
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      jar.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
    const location = res.headers.get('location');
    if (location === null) throw new Error(`stopped at ${next}: ${res.status} ${await res.text()}`);
    const target = new URL(location, next);
    if (target.toString().startsWith(REDIRECT)) return target;
    next = target.toString();
  }
  throw new Error('too many redirects');
}

async function challenge(): Promise<string> {
  const res = await fetch(upstreamUrl, { method: 'POST' });
  expect(res.status).toBe(401);
  return res.headers.get('www-authenticate')!;
}

describe('discovery', () => {
  it('reads resource_metadata from a challenge, quoted or not, and ignores other schemes', () => {
    expect(resourceMetadataFromChallenge('Bearer resource_metadata="https://a.example/x", scope="s"')).toBe(
      'https://a.example/x',
    );
    expect(resourceMetadataFromChallenge('Bearer realm="r", resource_metadata=https://a.example/y')).toBe(
      'https://a.example/y',
    );
    expect(resourceMetadataFromChallenge('Bearer resource_metadata="javascript:alert(1)"')).toBeUndefined();
    expect(resourceMetadataFromChallenge('Bearer realm="r"')).toBeUndefined();
    expect(protectedResourceMetadataUrl('https://u.example/mcp/')).toBe(
      'https://u.example/.well-known/oauth-protected-resource/mcp',
    );
  });

  it("finds the authorization server from the upstream's 401 and its RFC 8414 metadata", async () => {
    const found = await broker().discover(server(), await challenge());
    expect(found.resource).toBe(upstreamUrl);
    expect(found.metadata.issuer).toBe(issuer);
    expect(found.metadata.authorization_endpoint).toBe(`${issuer}/auth`);
    expect(found.resourceScopes).toEqual(['mcp:read']);
  });

  it('answers SWB_ERR_UPSTREAM_AUTH naming the server when the metadata cannot be had', async () => {
    const s = { ...server(), url: `${issuer}/nothing-here/mcp` };
    await expect(broker().discover(s)).rejects.toMatchObject({
      code: 'SWB_ERR_UPSTREAM_AUTH',
      message: expect.stringContaining('server "notes"'),
    });
  });
});

describe('protected-resource metadata for another resource', () => {
  it('is not used: SWB_ERR_UPSTREAM_AUTH names the server', async () => {
    const other = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ resource: 'https://elsewhere.example/mcp', authorization_servers: [issuer] }));
    });
    const base = await listen(other);
    try {
      await expect(broker().discover({ ...server(), url: `${base}/mcp` })).rejects.toMatchObject({
        code: 'SWB_ERR_UPSTREAM_AUTH',
        message: expect.stringContaining('describes another resource'),
      });
    } finally {
      other.closeAllConnections();
      await new Promise((r) => other.close(r));
    }
  });
});

describe('authorization URL and callback', () => {
  it('builds a code + PKCE S256 request with resource and a state bound to principal, server and expiry', async () => {
    const url = new URL(await broker().authorizationUrl('token:alice', server(), await challenge()));
    expect(url.origin + url.pathname).toBe(`${issuer}/auth`);
    const p = Object.fromEntries(url.searchParams);
    expect(p).toMatchObject({
      response_type: 'code',
      client_id: CLIENT.id,
      redirect_uri: REDIRECT,
      scope: 'mcp:read',
      code_challenge_method: 'S256',
      resource: upstreamUrl,
    });
    expect(p.code_challenge).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(broker().verifyState(p.state!)).toMatchObject({ principal: 'token:alice', server: 'notes' });
    // Two URLs for the same user never share a state (a fresh nonce each time).
    const again = new URL(await broker().authorizationUrl('token:alice', server()));
    expect(again.searchParams.get('state')).not.toBe(p.state);
  });

  it('connects two users through the provider, each stored sealed with its own subject and a refresh token', async () => {
    const b = broker();
    for (const user of ['alice', 'bob']) {
      const s = server({ scopes: ['openid', 'offline_access', 'mcp:read'] });
      const back = await authorize(await b.authorizationUrl(`token:${user}`, s, await challenge()), user);
      const code = back.searchParams.get('code');
      expect(code, back.toString()).toBeTruthy();
      const done = await b.complete(code!, back.searchParams.get('state')!, () => s);
      expect(done).toEqual({ principal: `token:${user}`, server: 'notes' });
    }
    for (const user of ['alice', 'bob']) {
      const tokens = await vault.get(`token:${user}`, 'notes');
      expect(tokens?.upstreamSubject).toBe(user);
      expect(tokens?.refreshToken).toEqual(expect.any(String));
      expect(tokens?.expiresAt).toBeGreaterThan(now);
      // The stored access token is the provider's, for this upstream and this user.
      const { payload } = await jwtVerify(tokens!.accessToken, createLocalJWKSet({ keys: publicKeys }), {
        issuer,
        audience: upstreamUrl,
      });
      expect(payload.sub).toBe(user);
      const row = await db.upstreamTokens!.get(`token:${user}`, 'notes');
      expect(JSON.stringify(row)).not.toContain(tokens!.accessToken.slice(0, 20));
    }
  });

  it('refuses a forged, altered, foreign or expired state before any token request', async () => {
    const url = new URL(await broker().authorizationUrl('token:alice', server()));
    const state = url.searchParams.get('state')!;
    const [body, mac] = state.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ p: 'token:mallory', s: 'notes', e: now + 1e6, n: 'x' })).toString(
      'base64url',
    );
    for (const bad of [`${forged}.${mac}`, `${body}.${mac.slice(1)}`, 'nodot', 'x'.repeat(3000)]) {
      await expect(broker().complete('code', bad, () => server())).rejects.toMatchObject({
        code: 'SWB_ERR_HTTP_INVALID_REQUEST',
      });
    }
    // Another gateway's key.
    expect(() => broker(Buffer.alloc(32, 9)).verifyState(state)).toThrow(/not issued by this gateway/);
    now += 600_001;
    try {
      expect(() => broker().verifyState(state)).toThrow(/expired/);
    } finally {
      now -= 600_001;
    }
  });

  it('reports a refused code as SWB_ERR_UPSTREAM_AUTH naming the server, never the code', async () => {
    const url = new URL(await broker().authorizationUrl('token:carol', server()));
    const err = await broker()
      .complete('not-a-real-code-4711', url.searchParams.get('state')!, () => server())
      .catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SWB_ERR_UPSTREAM_AUTH', message: expect.stringContaining('invalid_grant') });
    expect(String((err as Error).message)).not.toContain('not-a-real-code-4711');
    expect(await vault.get('token:carol', 'notes')).toBeUndefined();
  });

  it('GET /oauth/callback stores the connection (200 page), and answers a refused code with a 502 page', async () => {
    const b = broker();
    const s = server({ scopes: ['openid', 'mcp:read'] });
    const route = createOAuthCallbackRoute(b, () => ({ notes: { url: s.url, auth: s.auth } }) as never, silentLogger());
    const site = createServer((req, res) => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      void Promise.resolve(route(req, res, q < 0 ? url : url.slice(0, q), q < 0 ? '' : url.slice(q + 1), 'r')).catch(
        (err: unknown) => {
          res.writeHead(400);
          res.end(String((err as Error).message));
        },
      );
    });
    const base = await listen(site);
    try {
      const back = await authorize(await b.authorizationUrl('token:dave', s, await challenge()), 'dave');
      const ok = await fetch(`${base}/oauth/callback${back.search}`);
      expect(ok.status).toBe(200);
      expect(await ok.text()).toContain('Connected to notes');
      expect((await vault.get('token:dave', 'notes'))?.upstreamSubject).toBe('dave');
      // The same code again: the provider refuses it (RFC 6749 §4.1.2: a code is used once).
      const again = await fetch(`${base}/oauth/callback${back.search}`);
      expect(again.status).toBe(502);
      const text = await again.text();
      expect(text).toContain('SWB_ERR_UPSTREAM_AUTH');
      expect(text).not.toContain(back.searchParams.get('code')!);
    } finally {
      site.closeAllConnections();
      await new Promise((r) => site.close(r));
    }
  });
});

describe('access tokens and refresh', () => {
  const s = () => server({ scopes: ['openid', 'mcp:read'] });

  async function connect(user: string): Promise<void> {
    const b = broker();
    const back = await authorize(await b.authorizationUrl(`token:${user}`, s(), await challenge()), user);
    await b.complete(back.searchParams.get('code')!, back.searchParams.get('state')!, () => s());
  }

  it('returns the stored token while it is fresh (no token request) and records the use', async () => {
    await connect('erin');
    const stored = (await vault.get('token:erin', 'notes'))!;
    const before = tokenRequests;
    expect(await broker().accessToken('token:erin', s())).toBe(stored.accessToken);
    expect(tokenRequests).toBe(before);
    expect((await vault.get('token:erin', 'notes'))?.lastUsedAt).toBe(now);
  });

  it('refreshes before expiry, once for concurrent calls, and stores the new token with the same subject', async () => {
    await connect('frank');
    const stored = (await vault.get('token:frank', 'notes'))!;
    const b = broker();
    const saved = now;
    // 30 s before expiry: inside the default 60 s skew.
    now = stored.expiresAt! - 30_000;
    try {
      const before = tokenRequests;
      const [t1, t2, t3] = await Promise.all([
        b.accessToken('token:frank', s()),
        b.accessToken('token:frank', s()),
        b.accessToken('token:frank', s()),
      ]);
      expect(tokenRequests - before).toBe(1);
      expect(t1).toBeDefined();
      expect(t1).not.toBe(stored.accessToken);
      expect(t2).toBe(t1);
      expect(t3).toBe(t1);
      const after = (await vault.get('token:frank', 'notes'))!;
      expect(after.accessToken).toBe(t1);
      expect(after.expiresAt).toBeGreaterThan(now);
      expect(after.upstreamSubject).toBe('frank');
      expect(after.refreshToken).toEqual(expect.any(String));
      const { payload } = await jwtVerify(t1!, createLocalJWKSet({ keys: publicKeys }), { audience: upstreamUrl });
      expect(payload.sub).toBe('frank');
    } finally {
      now = saved;
    }
  });

  it('drops the connection when the refresh token was revoked, so the user connects again', async () => {
    await connect('grace');
    const stored = (await vault.get('token:grace', 'notes'))!;
    const revoke = await fetch(`${issuer}/token/revocation`, {
      method: 'POST',
      headers: {
        authorization: `Basic ${Buffer.from(`${CLIENT.id}:${CLIENT.secret}`).toString('base64')}`,
        'content-type': 'application/x-www-form-urlencoded',
      },
      body: new URLSearchParams({ token: stored.refreshToken!, token_type_hint: 'refresh_token' }),
    });
    expect(revoke.ok).toBe(true);
    const saved = now;
    now = stored.expiresAt! + 1;
    try {
      expect(await broker().accessToken('token:grace', s())).toBeUndefined();
      expect(await vault.get('token:grace', 'notes')).toBeUndefined();
    } finally {
      now = saved;
    }
  });

  it('answers undefined for a principal that never connected, or whose expired token has no refresh token', async () => {
    expect(await broker().accessToken('token:nobody', s())).toBeUndefined();
    await vault.put('token:henry', 'notes', { accessToken: 'h-access', expiresAt: now - 1 });
    expect(await broker().accessToken('token:henry', s())).toBeUndefined();
  });
});
