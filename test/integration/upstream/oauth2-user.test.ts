/**
 * Per-user upstream tokens (`auth.type: oauth2-user`) end to end: a real `oidc-provider` is the
 * upstream's authorization server, an official SDK server is the protected upstream (it verifies
 * every request's bearer against the provider's JWKS and echoes the subject), and SDK clients
 * call through a real gateway as three principals. The users' browsers are played headlessly
 * through the provider's login and consent.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { PassThrough } from 'node:stream';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { Client as V2Client, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { createLocalJWKSet, jwtVerify, type JWTPayload } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/app.js';
import { createLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { buildConfig, connectClient, waitFor } from '../../helpers/gateway.js';
import {
  CookieJar,
  startUpstreamAuthorizationServer,
  type UpstreamAuthorizationServer,
} from '../../helpers/upstream-as.js';

/** The gateway's public URL: what the authorization server redirects the browser to. */
const PUB = 'http://switchboard.test';
const CLIENT = { id: 'switchboard-gw', secret: 'gw-secret-0123456789abcdef0123456789' };
/** Access token lifetime, s: just over the broker's 60 s refresh margin, so a refresh comes soon. */
const TOKEN_TTL = 64;

let as: UpstreamAuthorizationServer;
let issuer: string;
let upstream: Server;
let upstreamUrl: string;
let gw: RunningGateway;
let db: Database;
let dir: string;
const logLines: string[] = [];
/** Grant types of the token requests the provider received, in order. */
const tokenGrants: string[] = [];
/** Accounts whose refresh token the provider destroyed (RFC 7009 revocation). */
const revokedFor: string[] = [];
/** Every upstream access token the upstream verified. */
const seenTokens = new Set<string>();
/** The subjects the upstream saw on `tools/call`, in order. */
const calledAs: string[] = [];
/** API tokens of the three principals. */
const api: Record<'alice' | 'bob' | 'carol', string> = { alice: '', bob: '', carol: '' };

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
        redirect_uris: [`${PUB}/oauth/callback`],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    accessTokenTtl: TOKEN_TTL,
    features: { revocation: { enabled: true } },
  });
  issuer = as.issuer;
  const publicJwk = as.publicJwk;
  as.provider.on('grant.success', (ctx: { oidc: { params?: { grant_type?: string } } }) =>
    tokenGrants.push(ctx.oidc.params?.grant_type ?? '?'),
  );
  as.provider.on('refresh_token.destroyed', (token: { accountId?: string }) => revokedFor.push(token.accountId ?? '?'));

  // The protected upstream: every request needs a bearer JWT of the provider for this resource.
  const jwks = createLocalJWKSet({ keys: [publicJwk] });
  upstream = createServer((req, res) => {
    void (async () => {
      if (req.url === '/.well-known/oauth-protected-resource/mcp') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({ resource: upstreamUrl, authorization_servers: [issuer], scopes_supported: ['mcp:read'] }),
        );
        return;
      }
      const chunks: Buffer[] = [];
      for await (const c of req) chunks.push(c as Buffer);
      const body = JSON.parse(Buffer.concat(chunks).toString() || 'null') as { method?: string } | null;
      const token = (req.headers.authorization ?? '').replace(/^Bearer /, '');
      let payload: JWTPayload;
      try {
        ({ payload } = await jwtVerify(token, jwks, { issuer, audience: upstreamUrl, typ: 'at+jwt' }));
      } catch {
        res.writeHead(401, {
          'www-authenticate': `Bearer resource_metadata="${new URL('/.well-known/oauth-protected-resource/mcp', upstreamUrl).toString()}"`,
        });
        res.end();
        return;
      }
      seenTokens.add(token);
      if (body?.method === 'tools/call') calledAs.push(String(payload.sub));
      const mcp = new McpServer({ name: 'notes', version: '1.0.0' });
      mcp.registerTool('whoami', { description: 'the subject of the bearer' }, () => ({
        content: [{ type: 'text', text: JSON.stringify({ sub: payload.sub }) }],
      }));
      const transport = new StreamableHTTPServerTransport({ sessionIdGenerator: undefined, enableJsonResponse: true });
      res.on('close', () => {
        void transport.close();
        void mcp.close();
      });
      await mcp.connect(transport);
      await transport.handleRequest(req, res, body);
    })();
  });
  upstreamUrl = `${await listen(upstream)}/mcp`;

  const logger = createLogger({
    level: 'trace',
    format: 'json',
    destination: new PassThrough().on('data', (c: Buffer) => logLines.push(c.toString())),
  });
  dir = await mkdtemp(join(tmpdir(), 'swb-oauth2-user-'));
  db = await openDatabase({ url: join(dir, 'switchboard.db'), dataDir: dir, logger });
  gw = await startGateway({
    config: buildConfig({
      auth: { mode: 'tokens' },
      usage: { flushInterval: 50 },
      servers: {
        notes: {
          url: upstreamUrl,
          auth: {
            type: 'oauth2-user',
            clientId: CLIENT.id,
            clientSecret: CLIENT.secret,
            scopes: ['openid', 'offline_access'],
          },
        },
      },
    }),
    logger,
    database: db,
    publicUrl: PUB,
    sweepIntervalMs: 0,
    startupWaitMs: 2_000,
  });
  for (const who of ['alice', 'bob', 'carol'] as const) {
    ({ token: api[who] } = await gw.tokens.create({
      name: who,
      subject: who,
      permissions: ['servers.use', 'tools.execute'],
    }));
  }
}, 30_000);

afterAll(async () => {
  await gw?.close();
  await db?.close();
  await as?.close();
  upstream?.closeAllConnections();
  await new Promise((r) => upstream?.close(r));
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

/**
 * Plays `user`'s browser from an authorization URL to the gateway's callback: the provider's
 * login and consent, then the callback on the gateway (the public URL mapped to its address).
 */
async function connectInBrowser(url: string, user: string): Promise<string> {
  as.user = user;
  const jar = new CookieJar();
  let next = url;
  for (let hop = 0; hop < 12; hop++) {
    const target = next.startsWith(PUB) ? gw.url + next.slice(PUB.length) : next;
    const res = await fetch(target, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.take(res);
    const location = res.headers.get('location');
    if (location === null) {
      const text = await res.text();
      if (res.status !== 200) throw new Error(`stopped at ${target}: ${res.status} ${text}`);
      const token = /name="token" value="([^"]+)"/.exec(text)?.[1];
      if (token === undefined) return text;
      // The gateway's connect page: it names the principal; the user presses its button.
      expect(text).toContain(`<strong>token:${user}</strong>`);
      const posted = await fetch(target, {
        method: 'POST',
        redirect: 'manual',
        headers: {
          'content-type': 'application/x-www-form-urlencoded',
          'sec-fetch-site': 'same-origin',
          origin: new URL(target).origin,
        },
        body: new URLSearchParams({ state: new URL(target).searchParams.get('state')!, token }).toString(),
      });
      jar.take(posted);
      const onward = posted.headers.get('location');
      if (posted.status !== 303 || onward === null) throw new Error(`connect page answered ${posted.status}`);
      next = new URL(onward, next).toString();
      continue;
    }
    next = new URL(location, next).toString();
  }
  throw new Error('too many redirects');
}

async function client(who: keyof typeof api, capabilities: Record<string, unknown> = {}) {
  const { client: c } = await connectClient(`${gw.url}/mcp`, capabilities, who, {
    authorization: `Bearer ${api[who]}`,
  });
  return c;
}

/** Calls `notes__whoami` as `who`; the subject the upstream echoed, or the error. */
async function whoami(who: keyof typeof api, capabilities: Record<string, unknown> = {}) {
  const c = await client(who, capabilities);
  try {
    const result = (await c.callTool({ name: 'notes__whoami', arguments: {} })) as {
      isError?: boolean;
      content: { text: string }[];
    };
    return { sub: (JSON.parse(result.content[0]!.text) as { sub: string }).sub };
  } catch (err) {
    return { error: err as McpError };
  } finally {
    await c.close();
  }
}

const URL_ELICITATION = { elicitation: { url: {} } };

describe('oauth2-user: each user reaches the upstream as themselves', () => {
  it('starts without a catalog until the first user connects (the upstream needs a token for everything)', async () => {
    expect(gw.gateway.upstreams.get('notes')!.state).toBe('failed');
    // The first user connects ahead of any call: the connections API hands out the URL.
    const res = await fetch(`${gw.url}/api/v1/me/connections/notes`, {
      method: 'POST',
      headers: { authorization: `Bearer ${api.alice}` },
    });
    expect(res.status).toBe(200);
    const { authorizationUrl } = (await res.json()) as { authorizationUrl: string };
    expect(await connectInBrowser(authorizationUrl, 'alice')).toContain('Connected to notes');
    // The start-up connection now loads the catalog with alice's token.
    await waitFor(() => gw.gateway.upstreams.get('notes')!.state === 'ready', 10_000, 'notes ready');
    const c = await client('bob');
    expect((await c.listTools()).tools.map((t) => t.name)).toEqual(['notes__whoami']);
    await c.close();
  });

  it('a connected user calls as themselves; an unconnected one gets a URL elicitation, connects, and the retry goes through', async () => {
    expect(await whoami('alice')).toEqual({ sub: 'alice' });

    const first = await whoami('bob', URL_ELICITATION);
    expect(first.error).toBeInstanceOf(McpError);
    expect(first.error!.code).toBe(-32042);
    const elicitations = (first.error!.data as { elicitations: { mode: string; url: string; elicitationId: string }[] })
      .elicitations;
    expect(elicitations).toHaveLength(1);
    expect(elicitations[0]).toMatchObject({ mode: 'url', elicitationId: expect.any(String) });
    expect(await connectInBrowser(elicitations[0]!.url, 'bob')).toContain('Connected to notes');
    expect(await whoami('bob', URL_ELICITATION)).toEqual({ sub: 'bob' });
    expect(calledAs.slice(-2)).toEqual(['alice', 'bob']);
  });

  it('a third, unconnected principal gets the URL elicitation; without that capability, an error carrying the URL', async () => {
    const before = calledAs.length;
    const elicited = await whoami('carol', URL_ELICITATION);
    expect(elicited.error!.code).toBe(-32042);
    const plain = await whoami('carol');
    expect(plain.error!.code).toBe(-33067);
    expect(plain.error!.data).toMatchObject({
      code: 'SWB_ERR_UPSTREAM_NOT_CONNECTED',
      server: 'notes',
      authorizationUrl: expect.stringMatching(/^http/),
    });
    expect(calledAs.length).toBe(before); // nothing reached the upstream
  });

  it('answers a 2026-07-28 request the same way: URL elicitation for the unconnected, the own subject for the connected', async () => {
    const modern = async (who: keyof typeof api) => {
      const c = new V2Client(
        { name: `v2-${who}`, version: '1.0.0' },
        { capabilities: { elicitation: { url: {} } }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
      );
      await c.connect(
        new V2Transport(new URL(`${gw.url}/mcp`), {
          requestInit: { headers: { authorization: `Bearer ${api[who]}` } },
        }),
      );
      try {
        return await c.callTool({ name: 'notes__whoami', arguments: {} });
      } finally {
        await c.close();
      }
    };
    const refused = await modern('carol').then(
      () => undefined,
      (err: unknown) => err as { code?: number; data?: { elicitations?: { mode: string; url: string }[] } },
    );
    expect(refused?.code).toBe(-32042);
    expect(refused?.data?.elicitations?.[0]).toMatchObject({ mode: 'url', url: expect.stringMatching(/^http/) });
    const served = (await modern('alice')) as { content: { text: string }[] };
    expect(JSON.parse(served.content[0]!.text)).toEqual({ sub: 'alice' });
  });

  it('refreshes a token about to expire before the call, without a failed call', async () => {
    const refreshesBefore = tokenGrants.filter((g) => g === 'refresh_token').length;
    const tokensBefore = seenTokens.size;
    // The token (64 s) is inside the 60 s refresh margin after about 4 s.
    await new Promise((r) => setTimeout(r, 4_500));
    expect(await whoami('alice')).toEqual({ sub: 'alice' });
    expect(tokenGrants.filter((g) => g === 'refresh_token').length).toBeGreaterThan(refreshesBefore);
    expect(seenTokens.size).toBeGreaterThan(tokensBefore);
  }, 15_000);

  it('a user who drops the connection has its token revoked upstream and is asked to connect again on the next call', async () => {
    expect(revokedFor).not.toContain('bob');
    const res = await fetch(`${gw.url}/api/v1/me/connections/notes`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${api.bob}` },
    });
    expect(res.status).toBe(204);
    await waitFor(() => revokedFor.includes('bob'), 5_000, "bob's refresh token revoked");
    expect((await whoami('bob', URL_ELICITATION)).error!.code).toBe(-32042);
    expect(await whoami('alice')).toEqual({ sub: 'alice' });
  });

  it('records the upstream identity (the subject, never a token) in the usage log', async () => {
    type Row = { subject: string; upstream_subject: string | null; jsonrpc_error: number | null };
    const rows = await waitFor<Row[] | undefined>(
      () => {
        const sqlite = new BetterSqlite3(join(dir, 'switchboard.db'), { readonly: true });
        try {
          const all = sqlite
            .prepare(
              `select subject, upstream_subject, jsonrpc_error from usage_log where mcp_method = 'tools/call' order by id`,
            )
            .all() as Row[];
          return all.length >= 10 ? all : undefined;
        } finally {
          sqlite.close();
        }
      },
      5_000,
      'usage rows',
    );
    if (rows === undefined) throw new Error('no usage rows');
    const served = rows.filter((r) => r.jsonrpc_error === null);
    expect(served.length).toBeGreaterThan(0);
    for (const r of served) expect(r.upstream_subject).toBe(r.subject);
    for (const r of rows.filter((x) => x.jsonrpc_error !== null)) expect(r.upstream_subject).toBeNull();
    const text = JSON.stringify(rows);
    for (const t of seenTokens) expect(text).not.toContain(t);
  });

  it('keeps the tokens encrypted at rest, and no log line or metric holds one', async () => {
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain('switchboard_');
    for (const t of seenTokens) expect(metrics).not.toContain(t);
    const rows = await db.upstreamTokens!.list({ server: 'notes' });
    expect(rows.map((r) => r.principal)).toEqual(['token:alice']);
    expect(seenTokens.size).toBeGreaterThan(0);
    for (const row of rows) {
      for (const t of seenTokens) {
        expect(row.accessToken).not.toContain(t);
        expect(row.refreshToken ?? '').not.toContain(t);
      }
    }
    const logs = logLines.join('\n');
    for (const t of seenTokens) expect(logs).not.toContain(t);
    for (const t of seenTokens) expect(logs).not.toContain(t.split('.')[2]!);
  });
});
