/**
 * The connections API against a real gateway over HTTP: a principal lists and drops its own
 * upstream connections, an admin lists everyone's, and no answer carries a token.
 */
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { startTestGateway } from '../../helpers/gateway.js';

let gw: RunningGateway;
const tokens: Record<string, string> = {};
const ALICE_ACCESS = 'alice-upstream-access-5f1c9a';
const ALICE_REFRESH = 'alice-upstream-refresh-77ab01';
const BOB_ACCESS = 'bob-upstream-access-c0ffee';
const WIKI_CLIENT_SECRET = 'wiki-client-secret-9d8e7f6a5b4c3d2e1f00';

/** A loopback port nothing listens on: the upstreams' starts fail, which these tests do not mind. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

async function api(
  path: string,
  token: string | undefined,
  method = 'GET',
): Promise<{ status: number; text: string; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}${path}`, {
    method,
    headers: token === undefined ? {} : { authorization: `Bearer ${token}` },
  });
  const text = await res.text();
  return { status: res.status, text, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const codeOf = (body: Record<string, unknown>) => (body.error as { code?: string } | undefined)?.code;

beforeAll(async () => {
  const dead = `http://127.0.0.1:${await deadPort()}/mcp`;
  gw = await startTestGateway({
    auth: { mode: 'tokens' },
    servers: {
      wiki: {
        url: dead,
        auth: { type: 'oauth2-user', clientId: 'switchboard-wiki', clientSecret: WIKI_CLIENT_SECRET },
      },
      plain: { url: dead },
    },
  });
  for (const [name, permissions] of [
    ['alice', ['servers.use']],
    ['bob', ['servers.use']],
    ['carol', ['servers.use']],
    ['root', ['admin.*']],
  ] as const) {
    tokens[name] = (await gw.tokens.create({ name, subject: name, permissions: [...permissions] })).token;
  }
}, 30_000);

afterAll(async () => {
  await gw?.close();
});

beforeEach(async () => {
  const vault = gw.tokenVault!;
  for (const c of await vault.connections()) await vault.delete(c.principal, c.server);
  await vault.put('token:alice', 'github', {
    accessToken: ALICE_ACCESS,
    refreshToken: ALICE_REFRESH,
    expiresAt: Date.parse('2030-01-01T00:00:00Z'),
    scopes: ['repo'],
    upstreamSubject: 'alice-gh',
  });
  await vault.put('token:alice', 'notion', { accessToken: 'alice-notion-access-1234' });
  await vault.put('token:bob', 'github', { accessToken: BOB_ACCESS });
});

describe('GET /api/v1/me/connections', () => {
  it("lists only the caller's own connections, with scopes, expiry and upstream subject but no token", async () => {
    const r = await api('/api/v1/me/connections', tokens.alice);
    expect(r.status).toBe(200);
    expect(r.body).toEqual({
      connections: [
        {
          server: 'github',
          scopes: ['repo'],
          expiresAt: '2030-01-01T00:00:00.000Z',
          upstreamSubject: 'alice-gh',
          createdAt: expect.any(String),
          updatedAt: expect.any(String),
          lastUsedAt: null,
        },
        expect.objectContaining({ server: 'notion', scopes: [], expiresAt: null, upstreamSubject: null }),
      ],
    });
    for (const secret of [ALICE_ACCESS, ALICE_REFRESH, 'alice-notion-access', BOB_ACCESS]) {
      expect(r.text).not.toContain(secret);
    }
    const bob = await api('/api/v1/me/connections', tokens.bob);
    expect((bob.body.connections as { server: string }[]).map((c) => c.server)).toEqual(['github']);
    expect(bob.text).not.toContain(BOB_ACCESS);
    expect((await api('/api/v1/me/connections', tokens.carol)).body).toEqual({ connections: [] });
  });

  it('answers 401 without a token and 405 for another method', async () => {
    const anon = await api('/api/v1/me/connections', undefined);
    expect(anon.status).toBe(401);
    expect(codeOf(anon.body)).toBe('SWB_ERR_AUTH_MISSING_TOKEN');
    expect((await api('/api/v1/me/connections', tokens.alice, 'POST')).status).toBe(405);
  });
});

describe('DELETE /api/v1/me/connections/{server}', () => {
  it("drops the caller's tokens for that server only; again, or another principal's, is 404", async () => {
    const r = await api('/api/v1/me/connections/github', tokens.alice, 'DELETE');
    expect(r.status).toBe(204);
    expect(await gw.tokenVault!.get('token:alice', 'github')).toBeUndefined();
    expect((await gw.tokenVault!.get('token:alice', 'notion'))?.accessToken).toBe('alice-notion-access-1234');
    expect((await gw.tokenVault!.get('token:bob', 'github'))?.accessToken).toBe(BOB_ACCESS);
    const again = await api('/api/v1/me/connections/github', tokens.alice, 'DELETE');
    expect(again.status).toBe(404);
    expect(codeOf(again.body)).toBe('SWB_ERR_HTTP_NOT_FOUND');
    // Carol cannot drop Bob's connection: she has none of her own there.
    expect((await api('/api/v1/me/connections/github', tokens.carol, 'DELETE')).status).toBe(404);
    expect((await gw.tokenVault!.get('token:bob', 'github'))?.accessToken).toBe(BOB_ACCESS);
  });

  it('refuses GET on a single connection and a server name longer than 256 characters', async () => {
    expect((await api('/api/v1/me/connections/github', tokens.alice)).status).toBe(405);
    const long = await api(`/api/v1/me/connections/${'a'.repeat(257)}`, tokens.alice, 'DELETE');
    expect(long.status).toBe(400);
    expect(codeOf(long.body)).toBe('SWB_ERR_HTTP_INVALID_REQUEST');
  });

  it('answers POST for a server that is not an oauth2-user server with 404, and stores nothing', async () => {
    const before = await gw.tokenVault!.connections();
    for (const server of ['github', 'nowhere']) {
      const r = await api(`/api/v1/me/connections/${server}`, tokens.carol, 'POST');
      expect(r.status, server).toBe(404);
      expect(codeOf(r.body)).toBe('SWB_ERR_HTTP_NOT_FOUND');
    }
    expect(await gw.tokenVault!.connections()).toEqual(before);
  });
});

describe('GET /api/v1/connections', () => {
  it('shows an admin which principals are connected to which servers, filterable, never the tokens', async () => {
    const r = await api('/api/v1/connections', tokens.root);
    expect(r.status).toBe(200);
    const rows = (r.body.connections as { principal: string; server: string }[]).map((c) => [c.principal, c.server]);
    expect(rows).toEqual([
      ['token:alice', 'github'],
      ['token:alice', 'notion'],
      ['token:bob', 'github'],
    ]);
    for (const secret of [ALICE_ACCESS, ALICE_REFRESH, 'alice-notion-access', BOB_ACCESS]) {
      expect(r.text).not.toContain(secret);
    }
    const github = await api('/api/v1/connections?server=github', tokens.root);
    expect((github.body.connections as { principal: string }[]).map((c) => c.principal)).toEqual([
      'token:alice',
      'token:bob',
    ]);
    const bob = await api('/api/v1/connections?principal=token%3Abob', tokens.root);
    expect((bob.body.connections as unknown[]).length).toBe(1);
  });

  it('answers 403 SWB_ERR_AUTH_FORBIDDEN to a principal without admin.*', async () => {
    const r = await api('/api/v1/connections', tokens.alice);
    expect(r.status).toBe(403);
    expect(codeOf(r.body)).toBe('SWB_ERR_AUTH_FORBIDDEN');
  });
});

describe('the server view of GET /api/v1/servers', () => {
  it('marks oauth2-user servers with userConnection for any reader, and shows nothing of their auth block', async () => {
    const r = await api('/api/v1/servers', tokens.carol);
    expect(r.status).toBe(200);
    const views = r.body.servers as { name: string; userConnection: boolean; config: unknown }[];
    expect(views.map((v) => [v.name, v.userConnection]).sort()).toEqual([
      ['plain', false],
      ['wiki', true],
    ]);
    expect(views.find((v) => v.name === 'wiki')?.config).toBeNull();
    expect(r.text).not.toContain(WIKI_CLIENT_SECRET);
    expect(r.text).not.toContain('switchboard-wiki');
    const one = await api('/api/v1/servers/wiki', tokens.carol);
    expect(one.body).toMatchObject({ name: 'wiki', userConnection: true });
  });
});
