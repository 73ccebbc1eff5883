/**
 * The upstream OAuth broker's first half against a real `oidc-provider` authorization server:
 * discovery from a protected upstream's 401 (RFC 9728) and RFC 8414, the connect page and its
 * binding cookie, the authorization request with PKCE S256 and an HMAC-protected state, a login
 * and consent driven headlessly through the provider's interaction API, the code exchange, and
 * the tokens stored sealed in the vault.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { jwtVerify, createLocalJWKSet, type JWK } from 'jose';
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
import { createOAuthConnectRoute } from '../../../src/http/oauth-connect.js';
import { sendHttpError } from '../../../src/http/error-response.js';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import {
  followToRedirect,
  startUpstreamAuthorizationServer,
  type UpstreamAuthorizationServer,
} from '../../helpers/upstream-as.js';

const CLIENT = { id: 'switchboard-gw', secret: 'gw-secret-0123456789abcdef0123456789' };
const REDIRECT = 'http://127.0.0.1:1/oauth/callback';

let as: UpstreamAuthorizationServer;
let issuer: string;
let upstream: Server;
let upstreamUrl: string;
let publicKeys: JWK[];
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
  as = await startUpstreamAuthorizationServer({
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
    features: { revocation: { enabled: true } },
    onRequest: (path) => {
      if (path === '/token') tokenRequests++;
    },
  });
  issuer = as.issuer;
  publicKeys = [as.publicJwk];

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
  await as?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
});

function broker(key = Buffer.alloc(32, 3), connectUrl = 'http://127.0.0.1:1/oauth/connect'): UpstreamOAuthBroker {
  return new UpstreamOAuthBroker({
    key,
    vault,
    redirectUri: REDIRECT,
    connectUrl,
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

/** Plays `user`'s browser from an authorization request to the redirect URI. */
function authorize(url: string, user: string): Promise<URL> {
  as.user = user;
  return followToRedirect(url, REDIRECT);
}

/** The authorization request behind the connect URL `authorizationUrl` hands out. */
async function requestUrl(b: UpstreamOAuthBroker, principal: string, s: BrokerServer, www?: string): Promise<string> {
  const connect = new URL(await b.authorizationUrl(principal, s, www));
  return b.authorizationRequestUrl(connect.searchParams.get('state')!, s);
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
  it('hands out the connect page URL, and builds a code + PKCE S256 request with resource and a bound state', async () => {
    const connect = new URL(await broker().authorizationUrl('token:alice', server(), await challenge()));
    expect(connect.origin + connect.pathname).toBe('http://127.0.0.1:1/oauth/connect');
    expect([...connect.searchParams.keys()]).toEqual(['state']);
    const url = new URL(await broker().authorizationRequestUrl(connect.searchParams.get('state')!, server()));
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
      const back = await authorize(await requestUrl(b, `token:${user}`, s, await challenge()), user);
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
});

describe('the connect page and the binding cookie', () => {
  let s: BrokerServer;
  let site: Server;
  let base: string;
  let b: UpstreamOAuthBroker;

  beforeAll(async () => {
    s = server({ scopes: ['openid', 'mcp:read'] });
    let routes: ReturnType<typeof createOAuthCallbackRoute>[] = [];
    site = createServer((req, res) => {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      const query = q < 0 ? '' : url.slice(q + 1);
      void (async () => {
        for (const route of routes) if (await route(req, res, path, query, 'r')) return;
        res.writeHead(404).end();
      })().catch((err: unknown) => sendHttpError(res, err));
    });
    base = await listen(site);
    b = broker(Buffer.alloc(32, 3), `${base}/oauth/connect`);
    const servers = () => ({ notes: { url: s.url, auth: s.auth } }) as never;
    routes = [
      createOAuthConnectRoute({
        broker: b,
        servers,
        logger: silentLogger(),
        // The gateway's own credentials, when a browser presents them: "Bearer <principal id>".
        authenticate: (req) => ({ ...ANONYMOUS, id: req.headers.authorization!.slice('Bearer '.length) }),
      }),
      createOAuthCallbackRoute(b, servers, silentLogger()),
    ];
  });

  afterAll(async () => {
    site?.closeAllConnections();
    await new Promise((r) => site?.close(r));
  });

  /** GET of the connect page: its status, text, headers and the form's token. */
  async function open(connectUrl: string, headers: Record<string, string> = {}) {
    const res = await fetch(connectUrl, { redirect: 'manual', headers });
    const text = await res.text();
    return { res, text, token: /name="token" value="([^"]+)"/.exec(text)?.[1] };
  }

  /** The confirming POST, as the page's form sends it (same origin); a header set to null is left out. */
  function confirm(state: string, token: string, headers: Record<string, string | null> = {}) {
    const all: Record<string, string | null> = {
      'content-type': 'application/x-www-form-urlencoded',
      'sec-fetch-site': 'same-origin',
      origin: base,
      ...headers,
    };
    return fetch(`${base}/oauth/connect`, {
      method: 'POST',
      redirect: 'manual',
      headers: Object.fromEntries(Object.entries(all).filter((e): e is [string, string] => e[1] !== null)),
      body: new URLSearchParams({ state, token }).toString(),
    });
  }

  /** One browser's whole flow up to the redirect URI: the callback query and the cookie it holds. */
  async function browser(principal: string, user: string): Promise<{ back: URL; cookie: string; state: string }> {
    const connect = new URL(await b.authorizationUrl(principal, s, await challenge()));
    const state = connect.searchParams.get('state')!;
    const { token } = await open(connect.toString());
    const posted = await confirm(state, token!);
    expect(posted.status).toBe(303);
    const cookie = posted.headers.getSetCookie()[0]!.split(';')[0]!;
    return { back: await authorize(posted.headers.get('location')!, user), cookie, state };
  }

  const callback = (back: URL, cookie?: string) =>
    fetch(`${base}/oauth/callback${back.search}`, { headers: cookie === undefined ? {} : { cookie } });

  it('shows whose connection it is on GET (no cookie, no redirect), and binds the browser on the POST', async () => {
    const connect = new URL(await b.authorizationUrl('token:dave', s, await challenge()));
    const state = connect.searchParams.get('state')!;
    const page = await open(connect.toString());
    expect(page.res.status).toBe(200);
    expect(page.res.headers.getSetCookie()).toEqual([]);
    expect(page.res.headers.get('location')).toBeNull();
    expect(page.text).toContain('<strong>token:dave</strong>');
    expect(page.text).toContain('<strong>notes</strong>');
    expect(page.text).not.toContain('<script');
    expect(page.res.headers.get('content-security-policy')).toBe(
      `default-src 'none'; form-action 'self' ${issuer}; frame-ancestors 'none'; base-uri 'none'`,
    );
    expect(page.res.headers.get('cache-control')).toBe('no-store');
    expect(page.token).toBe(b.confirmToken(state));

    const posted = await confirm(state, page.token!);
    expect(posted.status).toBe(303);
    expect(posted.headers.get('referrer-policy')).toBe('no-referrer');
    const [setCookie] = posted.headers.getSetCookie();
    expect(setCookie).toMatch(/^swb-oauth-[\w-]+=[\w-]{43}; Path=\/oauth; Max-Age=600; HttpOnly; SameSite=Lax$/);
    const location = new URL(posted.headers.get('location')!);
    expect(location.origin + location.pathname).toBe(`${issuer}/auth`);
    expect(location.searchParams.get('state')).toBe(state);

    const back = await authorize(location.toString(), 'dave');
    const ok = await callback(back, setCookie!.split(';')[0]);
    expect(ok.status).toBe(200);
    expect(await ok.text()).toContain('Connected to notes');
    // The cookie is cleared once used.
    expect(ok.headers.getSetCookie()[0]).toMatch(/^swb-oauth-[\w-]+=; Path=\/oauth; Max-Age=0;/);
    expect((await vault.get('token:dave', 'notes'))?.upstreamSubject).toBe('dave');
    // The same code again: the provider refuses it (RFC 6749 §4.1.2: a code is used once).
    const again = await callback(back, setCookie!.split(';')[0]);
    expect(again.status).toBe(502);
    const text = await again.text();
    expect(text).toContain('SWB_ERR_UPSTREAM_AUTH');
    expect(text).not.toContain(back.searchParams.get('code')!);
  });

  it("refuses a code brought by a browser without the flow's cookie, or with another flow's, before any token request", async () => {
    const ivan = await browser('token:ivan', 'ivan');
    const mallory = await browser('token:mallory', 'mallory');
    const [name] = ivan.cookie.split('=') as [string];
    const before = tokenRequests;
    for (const cookie of [undefined, mallory.cookie, `${name}=${mallory.cookie.split('=')[1]}`, `${name}=`]) {
      const res = await callback(ivan.back, cookie);
      expect(res.status, String(cookie)).toBe(400);
      const text = await res.text();
      expect(text).toContain('SWB_ERR_HTTP_INVALID_REQUEST');
      expect(text).toMatch(/did not confirm this connection/);
      expect(text).not.toContain(ivan.back.searchParams.get('code')!);
    }
    expect(tokenRequests).toBe(before);
    expect(await vault.get('token:ivan', 'notes')).toBeUndefined();
    // Mallory's own code with his own cookie still works: the refusals were the binding.
    expect((await callback(mallory.back, mallory.cookie)).status).toBe(200);
    expect(await vault.get('token:ivan', 'notes')).toBeUndefined();
    // Ivan's browser, which confirmed, completes his flow.
    expect((await callback(ivan.back, ivan.cookie)).status).toBe(200);
    expect((await vault.get('token:ivan', 'notes'))?.upstreamSubject).toBe('ivan');
  });

  it('refuses a POST from another site or without the right token, setting no cookie', async () => {
    const state = new URL(await b.authorizationUrl('token:judy', s)).searchParams.get('state')!;
    const other = new URL(await b.authorizationUrl('token:judy', s)).searchParams.get('state')!;
    const token = b.confirmToken(state);
    for (const [why, res] of [
      ['cross-site', await confirm(state, token, { 'sec-fetch-site': 'cross-site' })],
      ['same-site', await confirm(state, token, { 'sec-fetch-site': 'same-site' })],
      ['foreign Origin', await confirm(state, token, { 'sec-fetch-site': null, origin: 'https://evil.example' })],
      ['no token', await confirm(state, '')],
      ["another state's token", await confirm(state, b.confirmToken(other))],
    ] as const) {
      expect(res.status, why).toBe(400);
      expect(res.headers.getSetCookie(), why).toEqual([]);
      expect(res.headers.get('location'), why).toBeNull();
    }
    // Same origin by Fetch metadata, by Origin alone, or neither (not a browser): confirmed.
    expect((await confirm(state, token)).status).toBe(303);
    expect((await confirm(state, token, { 'sec-fetch-site': null })).status).toBe(303);
    expect((await confirm(state, token, { 'sec-fetch-site': null, origin: null })).status).toBe(303);
  });

  it('answers 400 to a tampered, forged or expired state, on GET and on POST, setting no cookie', async () => {
    const state = new URL(await b.authorizationUrl('token:judy', s)).searchParams.get('state')!;
    const [body, mac] = state.split('.') as [string, string];
    const forged = Buffer.from(JSON.stringify({ p: 'token:judy', s: 'notes', e: now + 1e6, n: 'x' })).toString(
      'base64url',
    );
    const check = async (bad: string, why: RegExp) => {
      const page = await open(`${base}/oauth/connect?state=${encodeURIComponent(bad)}`);
      expect(page.res.status).toBe(400);
      expect(page.text).toMatch(why);
      const posted = await confirm(bad, b.confirmToken(bad));
      expect(posted.status).toBe(400);
      expect(posted.headers.getSetCookie()).toEqual([]);
    };
    await check(`${forged}.${mac}`, /not issued by this gateway/);
    await check(`${body}.${mac.slice(2)}`, /not issued by this gateway/);
    await check('', /needs a state/);
    now += 600_001;
    try {
      await check(state, /expired/);
    } finally {
      now -= 600_001;
    }
  });

  it("compares the gateway credentials a browser presents with the state's principal", async () => {
    const connect = await b.authorizationUrl('token:judy', s);
    const mismatch = await open(connect, { authorization: 'Bearer token:mallory' });
    expect(mismatch.res.status).toBe(400);
    expect(mismatch.text).toMatch(/started for another Switchboard principal/);
    const state = new URL(connect).searchParams.get('state')!;
    const posted = await confirm(state, b.confirmToken(state), { authorization: 'Bearer token:mallory' });
    expect(posted.status).toBe(400);
    expect(posted.headers.getSetCookie()).toEqual([]);
    expect((await open(connect, { authorization: 'Bearer token:judy' })).res.status).toBe(200);
  });

  it('names the cookie __Host- (Secure, Path=/) when the public URL is https', () => {
    const secure = broker(Buffer.alloc(32, 3), 'https://gw.example/base/oauth/connect');
    const cookie = secure.bindingCookie(secure.verifyState(secure.issueState('token:a', 'notes')));
    expect(cookie).toMatchObject({ path: '/', secure: true, maxAgeSeconds: 600 });
    expect(cookie.name).toMatch(/^__Host-swb-oauth-[\w-]+$/);
    const plain = broker(Buffer.alloc(32, 3), 'http://gw.example/base/oauth/connect');
    expect(plain.bindingCookie(plain.verifyState(plain.issueState('token:a', 'notes')))).toMatchObject({
      path: '/base/oauth',
      secure: false,
    });
  });
});

describe('access tokens and refresh', () => {
  const s = () => server({ scopes: ['openid', 'mcp:read'] });

  async function connect(user: string): Promise<void> {
    const b = broker();
    const back = await authorize(await requestUrl(b, `token:${user}`, s(), await challenge()), user);
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
