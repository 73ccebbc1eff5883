/**
 * How the upstream OAuth broker becomes a client of an upstream's authorization server, against a
 * real `oidc-provider` with dynamic client registration (RFC 7591) and registration management
 * (RFC 7592) enabled, and small real HTTP authorization servers for the answers oidc-provider does
 * not give (a refused registration, no registration endpoint, an expiring secret): the registered
 * client used end to end and kept in the database (shared by a second broker), its secret sealed
 * and never logged, a refused client registered again, and the client ID metadata document.
 */
import { createServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createAuthServerHttp } from '../../../src/auth/oauth-common.js';
import { deriveVaultKey, TokenVault } from '../../../src/auth/token-vault.js';
import { UpstreamOAuthBroker, type BrokerServer } from '../../../src/auth/upstream-oauth.js';
import { clientSettingKey } from '../../../src/auth/upstream-client.js';
import { OAuth2UserAuth } from '../../../src/config/schema.js';
import { CLIENT_METADATA_PATH, createClientMetadataRoute } from '../../../src/http/oauth-client-metadata.js';
import { createLogger } from '../../../src/observability/logger.js';
import { fileURLToPath } from 'node:url';
import { startTestGateway } from '../../helpers/gateway.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import {
  followToRedirect,
  startUpstreamAuthorizationServer,
  type UpstreamAuthorizationServer,
} from '../../helpers/upstream-as.js';

const REDIRECT = 'http://127.0.0.1:1/oauth/callback';
const METADATA_URL = 'https://gateway.example/oauth/client-metadata.json';

let as: UpstreamAuthorizationServer;
let issuer: string;
const upstreamUrl = 'http://127.0.0.1:1/mcp';
/** Registration requests (POST /reg) so far. */
let registrations = 0;
/** Every registration response body, as sent. */
const registered: Record<string, string>[] = [];
let db: Database;
let vault: TokenVault;
let logLines: string[] = [];
let now = Date.now();
const clock = () => now;

async function listen(server: Server): Promise<string> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

async function close(server: Server): Promise<void> {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
}

beforeAll(async () => {
  as = await startUpstreamAuthorizationServer({
    features: {
      registration: { enabled: true },
      registrationManagement: { enabled: true },
      clientIdMetadataDocument: { enabled: true, ack: 'draft-02' },
    },
    onRequest: (path, req, res) => {
      if (path !== '/reg' || req.method !== 'POST') return;
      registrations++;
      // Keeps what the provider answers (the registered client, its secret and management token).
      const end = res.end.bind(res) as (chunk?: unknown, ...rest: unknown[]) => ServerResponse;
      res.end = ((chunk?: unknown, ...rest: unknown[]) => {
        if (typeof chunk === 'string' || Buffer.isBuffer(chunk)) {
          registered.push(JSON.parse(String(chunk)) as Record<string, string>);
        }
        return end(chunk, ...rest);
      }) as typeof res.end;
    },
  });
  issuer = as.issuer;
  db = await openDatabase({ url: ':memory:', dataDir: '.', logger: createLogger({ level: 'silent' }), env: {} });
  await db.migrate();
  vault = new TokenVault({ store: db.upstreamTokens!, keys: [deriveVaultKey('v'.repeat(32), 'v1')], clock });
}, 30_000);

afterAll(async () => {
  await db?.close();
  await as?.close();
});

/** Where the brokers' log lines go (debug level). */
const logSink = {
  write(line: string): boolean {
    logLines.push(line);
    return true;
  },
} as unknown as NodeJS.WritableStream;

function broker(clientMetadataUrl = METADATA_URL): UpstreamOAuthBroker {
  return new UpstreamOAuthBroker({
    key: Buffer.alloc(32, 3),
    vault,
    redirectUri: REDIRECT,
    connectUrl: 'http://127.0.0.1:1/oauth/connect',
    clientMetadataUrl,
    settings: db.settings,
    http: createAuthServerHttp(5_000, undefined),
    logger: createLogger({ level: 'debug', destination: logSink }),
    clock,
  });
}

/** The authorization request a user reaches through the connect page of `principal`'s connection URL. */
async function requestUrl(b: UpstreamOAuthBroker, principal: string, s: BrokerServer): Promise<string> {
  const connect = new URL(await b.authorizationUrl(principal, s));
  return b.authorizationRequestUrl(connect.searchParams.get('state')!, s);
}

function server(auth: Record<string, unknown> = {}, authorizationServer = issuer): BrokerServer {
  return {
    name: 'notes',
    url: upstreamUrl,
    auth: OAuth2UserAuth.parse({
      type: 'oauth2-user',
      registration: 'dynamic',
      authorizationServer,
      scopes: ['openid', 'offline_access'],
      ...auth,
    }),
  };
}

/** Plays `user`'s browser from an authorization request to the redirect URI. */
function authorize(url: string, user: string): Promise<URL> {
  as.user = user;
  return followToRedirect(url, REDIRECT);
}

async function connect(b: UpstreamOAuthBroker, user: string): Promise<string> {
  const url = new URL(await requestUrl(b, `token:${user}`, server()));
  const back = await authorize(url.toString(), user);
  await b.complete(back.searchParams.get('code')!, back.searchParams.get('state')!, () => server());
  return url.searchParams.get('client_id')!;
}

describe('dynamic client registration (RFC 7591) against oidc-provider', () => {
  it('registers once, connects with the registered client, and a second broker on the database reuses it', async () => {
    logLines = [];
    const before = registrations;
    const first = broker();
    // Concurrent first uses share one registration.
    const urls = await Promise.all([1, 2, 3].map(() => requestUrl(first, 'token:alice', server())));
    expect(registrations - before).toBe(1);
    const reg = registered.at(-1)!;
    expect(reg.client_secret).toEqual(expect.any(String));
    expect(reg).toMatchObject({
      client_name: 'Switchboard',
      redirect_uris: [REDIRECT],
      token_endpoint_auth_method: 'client_secret_basic',
    });
    for (const u of urls) expect(new URL(u).searchParams.get('client_id')).toBe(reg.client_id);

    // End to end: login, consent, code exchange with the registered client's secret.
    expect(await connect(first, 'alice')).toBe(reg.client_id);
    const tokens = await vault.get('token:alice', 'notes');
    expect(tokens?.upstreamSubject).toBe('alice');
    expect(tokens?.refreshToken).toEqual(expect.any(String));

    // Another replica (or a restart): same database, no registration, same client, and its
    // refresh grant authenticates with the stored secret.
    const second = broker();
    expect(await connect(second, 'bob')).toBe(reg.client_id);
    const saved = now;
    now = (await vault.get('token:bob', 'notes'))!.expiresAt! - 1_000;
    try {
      const refreshed = await second.accessToken('token:bob', server());
      expect(refreshed).toEqual(expect.any(String));
      expect(refreshed).not.toBe(tokens?.accessToken);
    } finally {
      now = saved;
    }
    expect(registrations - before).toBe(1);

    // The stored registration: the client id, the secret only sealed.
    const key = clientSettingKey(issuer, REDIRECT);
    const rows = await db.settings.get<Record<string, unknown>>(key);
    expect(rows).toMatchObject({ clientId: reg.client_id, issuer, redirectUri: REDIRECT });
    expect(JSON.stringify(rows)).not.toContain(reg.client_secret);
    expect(JSON.stringify(rows)).not.toContain(Buffer.from(reg.client_secret!).toString('base64'));
    // Nor in any log line (debug level).
    expect(logLines.length).toBeGreaterThan(0);
    for (const line of logLines) {
      expect(line).not.toContain(reg.client_secret);
      expect(line).not.toContain(reg.registration_access_token);
    }
  });

  it('drops a connection whose client the server deleted, and registers again once', async () => {
    const b = broker();
    await connect(b, 'carol');
    const reg = registered.at(-1)!;
    // RFC 7592 §2.3: the client is deleted at the authorization server.
    const del = await fetch(reg.registration_client_uri!, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${reg.registration_access_token}` },
    });
    expect(del.status).toBe(204);
    const before = registrations;
    const saved = now;
    now = (await vault.get('token:carol', 'notes'))!.expiresAt! - 1_000;
    try {
      // The refresh grant answers invalid_client: the connection is dropped (its refresh token
      // belonged to the deleted client).
      expect(await b.accessToken('token:carol', server())).toBeUndefined();
      expect(await vault.get('token:carol', 'notes')).toBeUndefined();
    } finally {
      now = saved;
    }
    expect(registrations).toBe(before);
    // The next connection registers a new client, once, for every broker on the database.
    const fresh = await connect(b, 'carol');
    expect(registrations - before).toBe(1);
    expect(fresh).not.toBe(reg.client_id);
    expect(fresh).toBe(registered.at(-1)!.client_id);
    expect(new URL(await requestUrl(broker(), 'token:dan', server())).searchParams.get('client_id')).toBe(fresh);
    expect(registrations - before).toBe(1);
  });
});

/** A small authorization server: RFC 8414 metadata and a registration endpoint answering `register`. */
async function smallServer(
  metadata: (base: string) => Record<string, unknown>,
  register: (body: Record<string, unknown>) => { status: number; body: Record<string, unknown> } = () => ({
    status: 404,
    body: {},
  }),
): Promise<{ base: string; server: Server; requests: Record<string, unknown>[] }> {
  const requests: Record<string, unknown>[] = [];
  const srv = createServer((req, res) => {
    let text = '';
    req.on('data', (c: Buffer) => (text += c.toString()));
    req.on('end', () => {
      const answer =
        req.url === '/.well-known/oauth-authorization-server'
          ? { status: 200, body: metadata(base) }
          : req.url === '/register' && req.method === 'POST'
            ? (requests.push(JSON.parse(text) as Record<string, unknown>), register(requests.at(-1)!))
            : { status: 404, body: {} };
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  const base = await listen(srv);
  return { base, server: srv, requests };
}

const endpoints = (base: string) => ({
  issuer: base,
  authorization_endpoint: `${base}/authorize`,
  token_endpoint: `${base}/token`,
});

describe('registration answers oidc-provider does not give', () => {
  it('a refused registration and a server without registration_endpoint: SWB_ERR_UPSTREAM_AUTH naming the server', async () => {
    const refusing = await smallServer(
      (base) => ({ ...endpoints(base), registration_endpoint: `${base}/register` }),
      () => ({ status: 400, body: { error: 'invalid_redirect_uri', error_description: 'leaky-description-123' } }),
    );
    const none = await smallServer((base) => endpoints(base));
    const odd = await smallServer(
      (base) => ({ ...endpoints(base), registration_endpoint: `${base}/register` }),
      (body) =>
        body.client_name === 'Switchboard' && odd.requests.length === 1
          ? { status: 302, body: { client_id: 'via-redirect', client_secret: 'redirected-secret-0123' } }
          : { status: 201, body: { client_id: 'jwt-only', token_endpoint_auth_method: 'private_key_jwt' } },
    );
    try {
      const err = await broker()
        .authorizationUrl('token:alice', server({}, refusing.base))
        .catch((e: unknown) => e);
      expect(err).toMatchObject({
        code: 'SWB_ERR_UPSTREAM_AUTH',
        message: `server "notes": the authorization server ${refusing.base} refused the client registration (invalid_redirect_uri)`,
      });
      expect(refusing.requests).toEqual([
        {
          client_name: 'Switchboard',
          redirect_uris: [REDIRECT],
          grant_types: ['authorization_code', 'refresh_token'],
          response_types: ['code'],
          token_endpoint_auth_method: 'client_secret_basic',
          scope: 'openid offline_access',
        },
      ]);
      await expect(broker().authorizationUrl('token:alice', server({}, none.base))).rejects.toMatchObject({
        code: 'SWB_ERR_UPSTREAM_AUTH',
        message: expect.stringMatching(/^server "notes": .*no registration_endpoint/),
      });
      // A redirect is an answer (not followed), and a method the gateway cannot use is refused.
      await expect(broker().authorizationUrl('token:alice', server({}, odd.base))).rejects.toMatchObject({
        message: expect.stringContaining('refused the client registration (HTTP 302)'),
      });
      await expect(broker().authorizationUrl('token:alice', server({}, odd.base))).rejects.toMatchObject({
        message: expect.stringContaining('token_endpoint_auth_method the gateway cannot use'),
      });
      expect(await db.settings.get(clientSettingKey(odd.base, REDIRECT))).toBeUndefined();
    } finally {
      await close(refusing.server);
      await close(none.server);
      await close(odd.server);
    }
  });

  it('registers again when the secret expired; a public client (no secret) is used as one', async () => {
    let n = 0;
    const expiring = await smallServer(
      (base) => ({ ...endpoints(base), registration_endpoint: `${base}/register` }),
      () => ({
        status: 201,
        body: {
          client_id: `c${++n}`,
          client_secret: `s3cret-${n}-abcdefghijklmnop`,
          client_secret_expires_at: Math.floor(now / 1000) + 3600,
        },
      }),
    );
    const publicOnly = await smallServer(
      (base) => ({ ...endpoints(base), registration_endpoint: `${base}/register` }),
      () => ({ status: 201, body: { client_id: 'pub-1', token_endpoint_auth_method: 'none' } }),
    );
    const saved = now;
    try {
      const b = broker();
      const id = async (s: BrokerServer) =>
        new URL(await requestUrl(b, 'token:alice', s)).searchParams.get('client_id');
      expect(await id(server({}, expiring.base))).toBe('c1');
      expect(await id(server({}, expiring.base))).toBe('c1');
      now += 3600_000;
      expect(await id(server({}, expiring.base))).toBe('c2');
      // Another broker on the database finds the renewed registration.
      expect(
        new URL(await requestUrl(broker(), 'token:x', server({}, expiring.base))).searchParams.get('client_id'),
      ).toBe('c2');
      expect(expiring.requests).toHaveLength(2);
      const row = await db.settings.get<Record<string, unknown>>(clientSettingKey(expiring.base, REDIRECT));
      expect(JSON.stringify(row)).not.toContain('s3cret');
      expect(await id(server({}, publicOnly.base))).toBe('pub-1');
      expect(await db.settings.get(clientSettingKey(publicOnly.base, REDIRECT))).not.toHaveProperty('sealedSecret');
    } finally {
      now = saved;
      await close(expiring.server);
      await close(publicOnly.server);
    }
  });
});

describe('client ID metadata documents', () => {
  it('uses the document URL as client_id where the server supports them (oidc-provider), else a clear error', async () => {
    const url = new URL(await requestUrl(broker(), 'token:alice', server({ registration: 'metadata-document' })));
    expect(url.searchParams.get('client_id')).toBe(METADATA_URL);
    const unsupported = await smallServer((base) => endpoints(base));
    try {
      await expect(
        broker().authorizationUrl('token:alice', server({ registration: 'metadata-document' }, unsupported.base)),
      ).rejects.toMatchObject({
        code: 'SWB_ERR_UPSTREAM_AUTH',
        message: expect.stringMatching(/^server "notes": .*does not support client ID metadata documents/),
      });
      // The draft's client ids are https URLs: a gateway on http says so rather than be refused.
      await expect(
        broker('http://gw.example/oauth/client-metadata.json').authorizationUrl(
          'token:alice',
          server({ registration: 'metadata-document' }),
        ),
      ).rejects.toMatchObject({
        code: 'SWB_ERR_UPSTREAM_AUTH',
        message: expect.stringMatching(/needs an https:\/\/ public URL/),
      });
    } finally {
      await close(unsupported.server);
    }
  });

  it('serves the document at /oauth/client-metadata.json', async () => {
    const route = createClientMetadataRoute(broker().clientMetadataDocument);
    const site = createServer((req, res) => {
      void Promise.resolve(route(req, res, (req.url ?? '/').split('?')[0]!, '', 'r')).then((done) => {
        if (!done) res.writeHead(404).end();
      });
    });
    const base = await listen(site);
    try {
      const res = await fetch(`${base}${CLIENT_METADATA_PATH}`);
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('application/json');
      expect(await res.json()).toEqual({
        client_id: METADATA_URL,
        client_name: 'Switchboard',
        redirect_uris: [REDIRECT],
        grant_types: ['authorization_code', 'refresh_token'],
        response_types: ['code'],
        token_endpoint_auth_method: 'none',
      });
      expect((await fetch(`${base}/oauth/other`)).status).toBe(404);
    } finally {
      await close(site);
    }
  });

  it('is served by the gateway at <public URL>/oauth/client-metadata.json, without credentials', async () => {
    const gw = await startTestGateway({
      auth: { mode: 'tokens' },
      servers: {
        echo: {
          command: process.execPath,
          args: [fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url))],
        },
      },
    });
    try {
      const res = await fetch(`${gw.url}${CLIENT_METADATA_PATH}`);
      expect(res.status).toBe(200);
      expect(await res.json()).toMatchObject({
        client_id: `${gw.publicUrl}/oauth/client-metadata.json`,
        redirect_uris: [`${gw.publicUrl}/oauth/callback`],
        token_endpoint_auth_method: 'none',
      });
      expect((await fetch(`${gw.url}${CLIENT_METADATA_PATH}`, { method: 'POST' })).status).toBe(405);
    } finally {
      await gw.close();
    }
  });
});
