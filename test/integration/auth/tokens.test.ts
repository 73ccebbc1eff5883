/**
 * API-token authentication end to end (issue "Identity" §B, §E, §F, §I): real gateway, real
 * SQLite store, official SDK clients and raw HTTP for exact statuses.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SignJWT } from 'jose';
import type { RunningGateway } from '../../../src/app.js';
import { createTokenService } from '../../../src/auth/tokens.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { connectClient, startTestGateway } from '../../helpers/gateway.js';
import { messages, post } from '../../helpers/raw.js';
import { dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const odd = { command: process.execPath, args: [ODD] };

// The gateway-level token flows run on SQLite and, where it is reachable (always in CI), PostgreSQL.
const dialects: Array<'sqlite' | 'postgres'> = (await postgresGate('gateway token tests'))
  ? ['sqlite', 'postgres']
  : ['sqlite'];

describe.each(dialects)('with the %s store', (dialect) => {
  let gw: RunningGateway;
  let admin: string;
  const auth = (t: string) => ({ authorization: `Bearer ${t}` });

  async function token(input: { permissions?: string[]; servers?: string[]; tools?: string[]; subject?: string } = {}) {
    const created = await gw.tokens.create({
      name: 't',
      subject: input.subject ?? 'alice',
      permissions: input.permissions ?? ['servers.use', 'tools.execute'],
      servers: input.servers ?? [],
      tools: input.tools ?? [],
    });
    return created.token;
  }

  async function init(path: string, t: string): Promise<Response> {
    return post(
      `${gw.url}${path}`,
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      },
      auth(t),
    );
  }

  async function session(path: string, t: string): Promise<string> {
    const res = await init(path, t);
    expect(res.status).toBe(200);
    await res.text();
    return res.headers.get('mcp-session-id')!;
  }

  async function call(path: string, t: string, sid: string, method: string, params: Record<string, unknown> = {}) {
    const res = await post(
      `${gw.url}${path}`,
      { jsonrpc: '2.0', id: 2, method, params },
      { ...auth(t), 'mcp-session-id': sid },
    );
    return { status: res.status, messages: res.status === 200 ? await messages(res) : [] };
  }

  let db: Database | undefined;
  let schema: string | undefined;
  beforeAll(async () => {
    if (dialect === 'postgres') {
      schema = uniqueSchema('gateway_tokens');
      db = await openDatabase({ url: POSTGRES_URL, schema, dataDir: '.', logger: silentLogger() });
    }
    gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: { a: odd, b: odd } }, db ? { database: db } : {});
    admin = await token({ permissions: ['admin.*'], subject: 'root' });
  });
  afterAll(async () => {
    await gw?.close();
    await db?.close();
    if (schema) await dropSchema(schema);
  });

  describe('inbound API tokens', () => {
    it('answers a request without a token with 401 and a Bearer challenge', async () => {
      const res = await post(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} });
      expect(res.status).toBe(401);
      expect(res.headers.get('www-authenticate')).toMatch(/^Bearer /);
      expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'SWB_ERR_AUTH_MISSING_TOKEN',
      );
    });

    it('rejects garbage, a forged alg:none token and a token signed with another secret', async () => {
      const header = (o: object) => Buffer.from(JSON.stringify(o)).toString('base64url');
      const none = `${header({ alg: 'none', typ: 'JWT' })}.${header({ iss: 'switchboard', sub: 'root', jti: 'x' })}.`;
      const other = await new SignJWT({})
        .setProtectedHeader({ alg: 'HS256' })
        .setIssuer('switchboard')
        .setSubject('root')
        .setJti('x')
        .sign(new TextEncoder().encode('x'.repeat(40)));
      for (const t of ['garbage', none, other]) {
        const res = await init('/mcp', t);
        expect(res.status, t).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
      }
    });

    it('rejects a token whose signature was tampered with', async () => {
      const t = await token();
      const tampered = t.slice(0, -3) + (t.endsWith('A') ? 'BBB' : 'AAA');
      expect((await init('/mcp', tampered)).status).toBe(401);
    });

    it('serves an SDK client that sends its token', async () => {
      const { client } = await connectClient(`${gw.url}/mcp`, {}, 'tok', auth(await token()));
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('a__pid');
      expect(names).toContain('b__pid');
      await client.close();
    });

    it('hides out-of-scope servers and tools from lists and refuses them on call', async () => {
      const t = await token({ servers: ['a'], tools: ['pid', 'odd'] });
      const sid = await session('/mcp', t);
      const list = await call('/mcp', t, sid, 'tools/list');
      const names = (list.messages[0]?.result as { tools: Array<{ name: string }> }).tools.map((x) => x.name);
      expect(names.sort()).toEqual(['a__odd', 'a__pid']);
      for (const name of ['b__pid', 'a__slow']) {
        const r = await call('/mcp', t, sid, 'tools/call', { name, arguments: {} });
        expect((r.messages[0]?.error as { code: number }).code).toBe(-32602);
      }
      const ok = await call('/mcp', t, sid, 'tools/call', { name: 'a__pid', arguments: {} });
      expect(ok.messages[0]?.result).toBeDefined();
      expect((await init('/servers/b/mcp', t)).status).toBe(403);
    });

    it('refuses tools/call without tools.execute', async () => {
      const t = await token({ permissions: ['servers.use'] });
      const sid = await session('/mcp', t);
      const r = await call('/mcp', t, sid, 'tools/call', { name: 'a__pid', arguments: {} });
      expect((r.messages[0]?.error as { data: { code: string } }).data.code).toBe('SWB_ERR_AUTH_FORBIDDEN');
    });

    it('refuses MCP access to a token without servers.use (403)', async () => {
      const t = await token({ permissions: ['tokens.manage'] });
      expect((await init('/mcp', t)).status).toBe(403);
    });

    it('answers 404 when another principal replays a session id', async () => {
      const alice = await token({ subject: 'alice' });
      const bob = await token({ subject: 'bob' });
      const sid = await session('/mcp', alice);
      expect((await call('/mcp', alice, sid, 'ping')).status).toBe(200);
      expect((await call('/mcp', bob, sid, 'ping')).status).toBe(404);
      // And a session id alone is never a credential.
      const res = await post(`${gw.url}/mcp`, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'mcp-session-id': sid });
      expect(res.status).toBe(401);
    });

    it('rejects a revoked token at once, also mid-session', async () => {
      const created = await gw.tokens.create({ name: 'r', subject: 'carol', permissions: ['servers.use'] });
      const sid = await session('/mcp', created.token);
      const del = await fetch(`${gw.url}/api/v1/tokens/${created.id}`, { method: 'DELETE', headers: auth(admin) });
      expect(del.status).toBe(200);
      const r = await call('/mcp', created.token, sid, 'ping');
      expect(r.status).toBe(401);
    });

    it('rejects an expired token', async () => {
      const past = await createTokenService({
        store: gw.database.tokens,
        settings: gw.database.settings,
        logger: silentLogger(),
        clock: () => Date.now() - 3_600_000,
      });
      const expired = await past.create({
        name: 'old',
        subject: 'dave',
        permissions: ['servers.use'],
        expiresInMs: 60_000,
      });
      const res = await init('/mcp', expired.token);
      expect(res.status).toBe(401);
      expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'SWB_ERR_AUTH_EXPIRED_TOKEN',
      );
    });
  });

  describe('admin API', () => {
    const api = (path: string, t: string, init: RequestInit = {}) =>
      fetch(`${gw.url}/api/v1${path}`, {
        ...init,
        headers: { 'content-type': 'application/json', ...auth(t), ...(init.headers as Record<string, string>) },
      });

    it('creates, lists, shows and revokes tokens; the token string is shown once and never its hash', async () => {
      const created = await api('/tokens', admin, {
        method: 'POST',
        body: JSON.stringify({ name: 'ci', servers: ['a'], expires: '30d' }),
      });
      expect(created.status).toBe(201);
      const body = (await created.json()) as { id: string; token: string; jti: string; expiresAt: string };
      expect(body.token.split('.')).toHaveLength(3);
      expect(new Date(body.expiresAt).getTime()).toBeGreaterThan(Date.now() + 29 * 86_400_000);
      const shown = (await (await api(`/tokens/${body.id}`, admin)).json()) as Record<string, unknown>;
      expect(shown.servers).toEqual(['a']);
      expect(JSON.stringify(shown)).not.toContain('tokenHash');
      expect(JSON.stringify(shown)).not.toContain(body.token);
      const listed = (await (await api('/tokens', admin)).json()) as { tokens: Array<{ id: string }> };
      expect(listed.tokens.map((t) => t.id)).toContain(body.id);
      const revoked = (await (await api(`/tokens/${body.id}`, admin, { method: 'DELETE' })).json()) as {
        revokedAt: string | null;
      };
      expect(revoked.revokedAt).not.toBeNull();
    });

    it('lets a non-admin see only its own tokens and never grant what it does not hold', async () => {
      const mine = await token({ subject: 'erin', permissions: ['tokens.manage', 'servers.use'] });
      const other = await gw.tokens.create({ name: 'x', subject: 'frank', permissions: ['servers.use'] });
      const listed = (await (await api('/tokens', mine)).json()) as { tokens: Array<{ subject: string }> };
      expect(listed.tokens.every((t) => t.subject === 'erin')).toBe(true);
      expect((await api(`/tokens/${other.id}`, mine)).status).toBe(404);
      expect(
        (
          await api('/tokens', mine, {
            method: 'POST',
            body: JSON.stringify({ name: 'esc', permissions: ['admin.*'] }),
          })
        ).status,
      ).toBe(403);
      expect(
        (await api('/tokens', mine, { method: 'POST', body: JSON.stringify({ name: 'x', subject: 'frank' }) })).status,
      ).toBe(403);
      const ok = await api('/tokens', mine, {
        method: 'POST',
        body: JSON.stringify({ name: 'ok', permissions: ['servers.use'] }),
      });
      expect(ok.status).toBe(201);
    });

    it('requires authentication and the right permission', async () => {
      expect((await fetch(`${gw.url}/api/v1/tokens`)).status).toBe(401);
      const user = await token();
      expect((await api('/tokens', user)).status).toBe(403);
      expect((await api('/servers', user, { method: 'POST', body: '{}' })).status).toBe(403);
    });

    it('adds, replaces and deletes runtime servers; file servers are read-only', async () => {
      const created = await api('/servers', admin, { method: 'POST', body: JSON.stringify({ name: 'c', ...odd }) });
      expect(created.status).toBe(201);
      expect(((await created.json()) as { source: string }).source).toBe('api');
      const { client } = await connectClient(`${gw.url}/mcp`, {}, 'rt', auth(admin));
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('c__pid');
      await expect(gw.database.servers.get('c')).resolves.toBeDefined();
      const invalid = await api('/servers/c', admin, { method: 'PUT', body: JSON.stringify({ command: 42 }) });
      expect(invalid.status).toBe(400);
      expect((await api('/servers/a', admin, { method: 'PUT', body: JSON.stringify(odd) })).status).toBe(409);
      expect((await api('/servers/a', admin, { method: 'DELETE' })).status).toBe(409);
      expect(
        (await api('/servers', admin, { method: 'POST', body: JSON.stringify({ name: 'a', ...odd }) })).status,
      ).toBe(409);
      const listed = (await (await api('/servers', admin)).json()) as {
        servers: Array<{ name: string; source: string }>;
      };
      expect(listed.servers.find((s) => s.name === 'a')?.source).toBe('file');
      expect((await api('/servers/c', admin, { method: 'DELETE' })).status).toBe(200);
      expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('c__pid');
      await client.close();
    });
  });
});
