/**
 * API-token authentication end to end (tokens, permissions, scopes, delegation, revocation):
 * real gateway, real SQLite store, official SDK clients and raw HTTP for exact statuses.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { SignJWT } from 'jose';
import type { RunningGateway } from '../../../src/app.js';
import { createTokenService, principalFromRecord, TOKEN_ISSUER } from '../../../src/auth/tokens.js';
import { runTokenCreate, runTokenRevoke } from '../../../src/cli/token.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { connectClient, startTestGateway } from '../../helpers/gateway.js';
import { messages, post } from '../../helpers/raw.js';
import { dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';
import { REDIS_URL, redisGate, redisServerGate, startRedisServer, uniqueKeyPrefix } from '../../helpers/redis.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const odd = { command: process.execPath, args: [ODD] };

// The gateway-level token flows run on SQLite and, where it is reachable (always in CI), PostgreSQL.
const pgOk = await postgresGate('gateway token tests');

// Without PostgreSQL (and CI unset) its half is reported as skipped, not left out of the count.
for (const dialect of ['sqlite', 'postgres'] as const)
  describe.skipIf(dialect === 'postgres' && !pgOk)(`with the ${dialect} store`, () => {
    let gw: RunningGateway;
    let admin: string;
    const auth = (t: string) => ({ authorization: `Bearer ${t}` });

    interface TokenInput {
      permissions?: string[];
      servers?: string[];
      tools?: string[];
      subject?: string;
      expiresInMs?: number;
    }

    async function created(input: TokenInput = {}) {
      return gw.tokens.create({
        name: 't',
        subject: input.subject ?? 'alice',
        permissions: input.permissions ?? ['servers.use', 'tools.execute'],
        servers: input.servers ?? [],
        tools: input.tools ?? [],
        ...(input.expiresInMs === undefined ? {} : { expiresInMs: input.expiresInMs }),
      });
    }

    async function token(input: TokenInput = {}) {
      return (await created(input)).token;
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
      return { status: res.status, messages: await messages(res) };
    }

    let db: Database | undefined;
    let schema: string | undefined;
    beforeAll(async () => {
      if (dialect === 'postgres') {
        schema = uniqueSchema('gateway_tokens');
        db = await openDatabase({ url: POSTGRES_URL, schema, dataDir: '.', logger: silentLogger() });
      }
      gw = await startTestGateway(
        { auth: { mode: 'tokens' }, servers: { a: odd, b: odd } },
        db ? { database: db } : {},
      );
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

      it('refuses tools/call without tools.execute with 403, like any other missing permission', async () => {
        const t = await token({ permissions: ['servers.use'] });
        const sid = await session('/mcp', t);
        const r = await call('/mcp', t, sid, 'tools/call', { name: 'a__pid', arguments: {} });
        expect(r.status).toBe(403);
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
          (await api('/tokens', mine, { method: 'POST', body: JSON.stringify({ name: 'x', subject: 'frank' }) }))
            .status,
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

      it('refuses a servers.manage token a stdio runtime server (403 SWB_ERR_AUTH_ADMIN_REQUIRED); an admin may', async () => {
        const manager = await token({ permissions: ['servers.use', 'servers.manage'], subject: 'mallory' });
        const code = async (res: Response) => ((await res.json()) as { error: { code: string } }).error.code;
        const shell = { name: 'sh', command: '/bin/sh', args: ['-c', 'exit 0'] };
        const refused = await api('/servers', manager, { method: 'POST', body: JSON.stringify(shell) });
        expect(refused.status).toBe(403);
        expect(await code(refused)).toBe('SWB_ERR_AUTH_ADMIN_REQUIRED');
        await expect(gw.database.servers.get('sh')).resolves.toBeUndefined();
        for (const entry of [{ command: 'node' }, { url: 'https://mcp.example.com/mcp', cwd: '/' }, { env: {} }]) {
          const res = await api('/servers/sh', manager, { method: 'PUT', body: JSON.stringify(entry) });
          expect(res.status, JSON.stringify(entry)).toBe(403);
          expect(await code(res)).toBe('SWB_ERR_AUTH_ADMIN_REQUIRED');
        }

        const created = await api('/servers', admin, { method: 'POST', body: JSON.stringify({ name: 'd', ...odd }) });
        expect(created.status).toBe(201);
        // An admin's stdio server can be neither replaced nor deleted by servers.manage alone.
        const replaced = await api('/servers/d', manager, {
          method: 'PUT',
          body: JSON.stringify({ url: 'https://mcp.example.com/mcp' }),
        });
        expect(replaced.status).toBe(403);
        expect(await code(replaced)).toBe('SWB_ERR_AUTH_ADMIN_REQUIRED');
        const deleted = await api('/servers/d', manager, { method: 'DELETE' });
        expect(deleted.status).toBe(403);
        expect(await code(deleted)).toBe('SWB_ERR_AUTH_ADMIN_REQUIRED');
        expect((await gw.database.servers.get('d'))?.config).toEqual(odd);
        expect((await api('/servers/d', admin, { method: 'DELETE' })).status).toBe(200);
      });

      it('refuses a servers.manage token a URL server that would forward callers’ credentials (403 SWB_ERR_AUTH_ADMIN_REQUIRED)', async () => {
        const manager = await token({ permissions: ['servers.use', 'servers.manage'], subject: 'mallory' });
        const url = 'https://collector.example.com/mcp';
        for (const entry of [
          { name: 'fwd', url, auth: { type: 'forward' } },
          { name: 'pass', url, passthroughHeaders: ['Authorization'] },
          { name: 'cookie', url, passthroughHeaders: ['cookie'] },
        ]) {
          const res = await api('/servers', manager, { method: 'POST', body: JSON.stringify(entry) });
          expect(res.status, entry.name).toBe(403);
          expect(((await res.json()) as { error: { code: string } }).error.code).toBe('SWB_ERR_AUTH_ADMIN_REQUIRED');
          await expect(gw.database.servers.get(entry.name)).resolves.toBeUndefined();
        }
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

    describe('token delegation', () => {
      const MANAGE = ['servers.use', 'tools.execute', 'tokens.manage'];

      interface Refusal {
        error: { code: string } & Record<string, unknown>;
      }
      interface Minted {
        id: string;
        token: string;
        expiresAt: string | null;
      }

      /** POSTs /api/v1/tokens as `creator`. */
      async function mint(creator: string, body: Record<string, unknown>) {
        const res = await fetch(`${gw.url}/api/v1/tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth(creator) },
          body: JSON.stringify({ name: 'minted', ...body }),
        });
        return { status: res.status, body: (await res.json()) as Minted & Refusal };
      }

      async function view(id: string) {
        const res = await fetch(`${gw.url}/api/v1/tokens/${id}`, { headers: auth(admin) });
        expect(res.status).toBe(200);
        return (await res.json()) as {
          servers: string[];
          tools: string[];
          permissions: string[];
          subject: string;
          expiresAt: string | null;
          revokedAt: string | null;
          parentId: string | null;
        };
      }

      async function errorCode(res: Response): Promise<string> {
        return ((await res.json()) as { error: { data: { code: string } } }).error.data.code;
      }

      it('refuses a scoped token minting a token for a server outside its scope with 403 SWB_ERR_AUTH_DELEGATION_SERVERS', async () => {
        const creator = await token({ permissions: MANAGE, servers: ['a'] });
        for (const servers of [['b'], ['a', 'b']]) {
          const refused = await mint(creator, { servers });
          expect(refused.status).toBe(403);
          expect(refused.body.error.code).toBe('SWB_ERR_AUTH_DELEGATION_SERVERS');
          expect(refused.body.error.servers).toEqual(['b']);
        }
        const ok = await mint(creator, { servers: ['a'] });
        expect(ok.status).toBe(201);
        expect((await view(ok.body.id)).servers).toEqual(['a']);
      });

      it('gives a token minted without a server scope its creator’s scope, never every server', async () => {
        const creator = await token({ permissions: MANAGE, servers: ['a'] });
        const child = await mint(creator, {});
        expect(child.status).toBe(201);
        expect((await view(child.body.id)).servers).toEqual(['a']);
        expect((await init('/servers/b/mcp', child.body.token)).status).toBe(403);
        const sid = await session('/mcp', child.body.token);
        const list = await call('/mcp', child.body.token, sid, 'tools/list');
        const names = (list.messages[0]?.result as { tools: Array<{ name: string }> }).tools.map((x) => x.name);
        expect(names.length).toBeGreaterThan(0);
        expect(names.filter((n) => !n.startsWith('a__'))).toEqual([]);
      });

      it('keeps minted tool scopes within the creator’s: its own patterns or literal names they match, refused with SWB_ERR_AUTH_DELEGATION_TOOLS otherwise', async () => {
        const creator = await token({ permissions: MANAGE, servers: ['a'], tools: ['pid', 'o*'] });
        for (const tools of [['*'], ['p*'], ['slow'], ['pid', 'o?d']]) {
          const refused = await mint(creator, { tools });
          expect(refused.status, tools.join()).toBe(403);
          expect(refused.body.error.code).toBe('SWB_ERR_AUTH_DELEGATION_TOOLS');
        }
        const literal = await mint(creator, { tools: ['odd'] });
        expect(literal.status).toBe(201);
        const sid = await session('/mcp', literal.body.token);
        const refused = await call('/mcp', literal.body.token, sid, 'tools/call', { name: 'a__pid', arguments: {} });
        expect((refused.messages[0]?.error as { code: number }).code).toBe(-32602);
        expect((await view((await mint(creator, { tools: ['o*'] })).body.id)).tools).toEqual(['o*']);
        expect((await view((await mint(creator, {})).body.id)).tools).toEqual(['pid', 'o*']);
      });

      it('refuses a permission the creator lacks with SWB_ERR_AUTH_DELEGATION_PERMISSIONS and another subject with SWB_ERR_AUTH_DELEGATION_SUBJECT', async () => {
        const creator = await token({ subject: 'gina', permissions: ['servers.use', 'tokens.manage'] });
        for (const body of [{ permissions: ['tools.execute'] }, {}, { permissions: ['servers.*'] }]) {
          const refused = await mint(creator, body);
          expect(refused.status).toBe(403);
          expect(refused.body.error.code).toBe('SWB_ERR_AUTH_DELEGATION_PERMISSIONS');
        }
        expect((await mint(creator, { permissions: ['tools.execute'] })).body.error.permissions).toEqual([
          'tools.execute',
        ]);
        const other = await mint(creator, { subject: 'hank', permissions: ['servers.use'] });
        expect(other.status).toBe(403);
        expect(other.body.error.code).toBe('SWB_ERR_AUTH_DELEGATION_SUBJECT');
        expect((await mint(creator, { permissions: ['servers.use'] })).status).toBe(201);
      });

      it('never lets a minted token outlive its creator: no expiry asked for means the creator’s, a later one is refused with SWB_ERR_AUTH_DELEGATION_EXPIRY', async () => {
        const parent = await created({ permissions: MANAGE, expiresInMs: 3_600_000 });
        const inherited = await mint(parent.token, {});
        expect(inherited.status).toBe(201);
        expect(inherited.body.expiresAt).toBe(parent.expiresAt);
        expect((await view(inherited.body.id)).expiresAt).toBe(parent.expiresAt);
        const later = await mint(parent.token, { expires: '2h' });
        expect(later.status).toBe(403);
        expect(later.body.error.code).toBe('SWB_ERR_AUTH_DELEGATION_EXPIRY');
        const sooner = await mint(parent.token, { expires: '30m' });
        expect(sooner.status).toBe(201);
        expect(Date.parse(sooner.body.expiresAt!)).toBeLessThanOrEqual(Date.parse(parent.expiresAt!));
      });

      it('revokes every token minted from a revoked token, transitively, at once and mid-session', async () => {
        const root = await created({ subject: 'ivan', permissions: MANAGE });
        const child = await mint(root.token, { permissions: MANAGE });
        expect(child.status).toBe(201);
        const grandchild = await mint(child.body.token, {});
        expect(grandchild.status).toBe(201);
        expect((await view(grandchild.body.id)).parentId).toBe(child.body.id);
        expect((await view(child.body.id)).parentId).toBe(root.id);
        const sid = await session('/mcp', grandchild.body.token);
        expect((await call('/mcp', grandchild.body.token, sid, 'ping')).status).toBe(200);

        const del = await fetch(`${gw.url}/api/v1/tokens/${root.id}`, { method: 'DELETE', headers: auth(admin) });
        expect(del.status).toBe(200);

        const midSession = await post(
          `${gw.url}/mcp`,
          { jsonrpc: '2.0', id: 3, method: 'ping' },
          { ...auth(grandchild.body.token), 'mcp-session-id': sid },
        );
        expect(midSession.status).toBe(401);
        expect(await errorCode(midSession)).toBe('SWB_ERR_AUTH_REVOKED_TOKEN');
        const res = await init('/mcp', child.body.token);
        expect(res.status).toBe(401);
        expect(await errorCode(res)).toBe('SWB_ERR_AUTH_REVOKED_TOKEN');
        expect((await view(child.body.id)).revokedAt).not.toBeNull();
        expect((await view(grandchild.body.id)).revokedAt).not.toBeNull();
      });

      it('refuses a token whose parent was revoked while it was being minted (the cascade could not see it)', async () => {
        const parent = await created({ subject: 'judy', permissions: MANAGE });
        const before = (await gw.database.tokens.get(parent.id))!;
        expect(
          (await fetch(`${gw.url}/api/v1/tokens/${parent.id}`, { method: 'DELETE', headers: auth(admin) })).status,
        ).toBe(200);
        // A second process that read the parent just before the revocation committed, and inserts
        // the child just after the cascade ran.
        const store = gw.database.tokens;
        const racing = await createTokenService({
          store: {
            create: (r) => store.create(r),
            get: async (id) => (id === parent.id ? before : store.get(id)),
            getByJti: (jti) => store.getByJti(jti),
            list: (f) => store.list(f),
            revoke: (id, at) => store.revoke(id, at),
            touch: (id, at) => store.touch(id, at),
            ancestors: () => Promise.resolve([before]),
          },
          settings: gw.database.settings,
          logger: silentLogger(),
        });
        const late = await racing.mint(principalFromRecord(before, parent.token), { name: 'late' });
        expect((await gw.database.tokens.get(late.id))?.revokedAt).toBeUndefined();
        const res = await init('/mcp', late.token);
        expect(res.status).toBe(401);
        expect(await errorCode(res)).toBe('SWB_ERR_AUTH_REVOKED_TOKEN');
      });

      it('refuses to mint from a revoked token even while its own verification is cached', async () => {
        const creator = await created({ subject: 'kate', permissions: MANAGE });
        expect((await fetch(`${gw.url}/api/v1/tokens`, { headers: auth(creator.token) })).status).toBe(200);
        // Revoked by another process (e.g. `switchboard token revoke`): this gateway's cache still
        // holds the creator for up to 5 s.
        const elsewhere = await createTokenService({
          store: gw.database.tokens,
          settings: gw.database.settings,
          logger: silentLogger(),
        });
        expect(await elsewhere.revoke(creator.id)).toBe(true);
        const res = await fetch(`${gw.url}/api/v1/tokens`, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...auth(creator.token) },
          body: JSON.stringify({ name: 'late' }),
        });
        expect(res.status).toBe(401);
        expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
        expect(((await res.json()) as Refusal).error.code).toBe('SWB_ERR_AUTH_REVOKED_TOKEN');
      });

      it('lets an admin token mint for other subjects and servers, but never past its own expiry, and revokes what it minted with it', async () => {
        const boss = await created({
          subject: 'boss',
          permissions: ['admin.*'],
          servers: ['a'],
          expiresInMs: 3_600_000,
        });
        const forOther = await mint(boss.token, { subject: 'lee', servers: ['b'] });
        expect(forOther.status).toBe(201);
        expect((await view(forOther.body.id)).subject).toBe('lee');
        expect((await view(forOther.body.id)).servers).toEqual(['b']);
        expect(forOther.body.expiresAt).toBe(boss.expiresAt);
        const later = await mint(boss.token, { expires: '30d' });
        expect(later.status).toBe(403);
        expect(later.body.error.code).toBe('SWB_ERR_AUTH_DELEGATION_EXPIRY');
        expect((await init('/servers/b/mcp', forOther.body.token)).status).toBe(200);
        expect(await gw.tokens.revoke(boss.id)).toBe(true);
        const res = await init('/servers/b/mcp', forOther.body.token);
        expect(res.status).toBe(401);
        expect(await errorCode(res)).toBe('SWB_ERR_AUTH_REVOKED_TOKEN');
      });

      it('never attributes an expired token carrying another token’s jti to that token’s owner', async () => {
        const past = await createTokenService({
          store: gw.database.tokens,
          settings: gw.database.settings,
          logger: silentLogger(),
          clock: () => Date.now() - 3_600_000,
        });
        const victim = await past.create({
          name: 'v',
          subject: 'victim',
          permissions: ['servers.use'],
          expiresInMs: 60_000,
        });
        const secret = await gw.database.settings.get<string>('tokens.secret');
        expect(typeof secret).toBe('string');
        const forged = await new SignJWT({ name: 'evil' })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setIssuer(TOKEN_ISSUER)
          .setSubject('victim')
          .setJti(victim.jti)
          .setIssuedAt(Math.floor(Date.now() / 1000) - 7_200)
          .setExpirationTime(Math.floor(Date.now() / 1000) - 60)
          .sign(new TextEncoder().encode(secret));
        const refused = await init('/mcp', forged);
        expect(refused.status).toBe(401);
        const body = (await refused.json()) as { error: { data: Record<string, unknown> } };
        expect(body.error.data.code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
        expect(body.error.data.tokenId).toBeUndefined();
        expect(body.error.data.subject).toBeUndefined();
        // The victim's own expired token is attributed (a blocked row); the forged one is not.
        const genuine = await init('/mcp', victim.token);
        expect(await errorCode(genuine)).toBe('SWB_ERR_AUTH_EXPIRED_TOKEN');
        const usage = async () => {
          const res = await fetch(`${gw.url}/api/v1/tokens/${victim.id}/usage?days=1`, { headers: auth(admin) });
          return (await res.json()) as { total: number; blocked: number };
        };
        await vi.waitFor(async () => expect((await usage()).total).toBeGreaterThan(0), { timeout: 5_000 });
        expect(await usage()).toMatchObject({ total: 1, blocked: 1 });
      });
    });
  });

describe('the verification cache', () => {
  it('refuses a cached token from the same millisecond an uncached one is refused, never past its expiry', async () => {
    // Half a second past a whole second: a JWT `exp` holds whole seconds.
    let now = 1_800_000_000_500;
    const gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: { a: odd } }, { now: () => now });
    try {
      const input = { name: 'short', subject: 'zed', permissions: ['servers.use'], expiresInMs: 3_000 };
      const cached = await gw.tokens.create(input);
      const uncached = await gw.tokens.create(input);
      const init = (t: string) =>
        post(
          `${gw.url}/mcp`,
          {
            jsonrpc: '2.0',
            id: 1,
            method: 'initialize',
            params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
          },
          { authorization: `Bearer ${t}` },
        );
      const code = async (res: Response) =>
        ((await res.json()) as { error: { data: { code: string } } }).error.data.code;
      const first = await init(cached.token);
      expect(first.status).toBe(200);
      await first.text();
      // Past the token's expiry, well inside the 5 s the verification stays cached.
      now += 2_600;
      const fresh = await init(uncached.token);
      expect(fresh.status).toBe(401);
      expect(await code(fresh)).toBe('SWB_ERR_AUTH_EXPIRED_TOKEN');
      const hit = await init(cached.token);
      expect(hit.status).toBe(401);
      expect(await code(hit)).toBe('SWB_ERR_AUTH_EXPIRED_TOKEN');
    } finally {
      await gw.close();
    }
  });
});

describe('switchboard token create', () => {
  it('checks its input like the admin API before touching the database', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swb-token-cli-'));
    try {
      const config = join(dir, 'switchboard.yaml');
      await writeFile(config, 'mcpServers: {}\n');
      const lines: string[] = [];
      const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
      for (const opts of [{ servers: 'a,bad name' }, { tools: 'ok, \u0007' }, { subject: ' ' }]) {
        lines.length = 0;
        expect(await runTokenCreate({ config, name: 'ci', ...opts }, output), JSON.stringify(opts)).toBe(1);
        expect(lines.length).toBeGreaterThan(0);
      }
      expect(existsSync(join(dir, '.switchboard'))).toBe(false);
      lines.length = 0;
      expect(await runTokenCreate({ config, name: 'ci', servers: 'a', json: true }, output)).toBe(0);
      expect((JSON.parse(lines[0]!) as { id: string }).id).toMatch(/^[0-9a-f-]{36}$/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const redisUp = await redisGate('token revocation across replicas (Redis)');
const redisServerUp = redisServerGate('token revocation after a Redis outage');

describe.skipIf(!redisUp)('token revocation across replicas (Redis)', () => {
  const INIT = {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
  };
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const x of open.reverse()) await x.close();
    open.length = 0;
  });

  /** Two replicas on one database and one Redis; `b` has a frozen clock, so its cache never lapses. */
  async function replicas(redisUrl: string) {
    const database = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger() });
    open.push(database);
    const config = {
      auth: { mode: 'tokens', revocationChannel: uniqueKeyPrefix('revoked') },
      servers: { a: odd },
    };
    const a = await startTestGateway(config, { database, redisUrl });
    open.push(a);
    const frozen = Date.now();
    const b = await startTestGateway(config, { database, redisUrl, now: () => frozen });
    open.push(b);
    const status = async (gw: RunningGateway, t: string) => {
      const res = await post(`${gw.url}/mcp`, INIT, { authorization: `Bearer ${t}` });
      await res.text();
      return res.status;
    };
    return { a, b, status };
  }

  it('drops a token revoked through another replica, and the tokens minted from it, from this replica’s cache at once', async () => {
    const { a, b, status } = await replicas(REDIS_URL);
    const parent = await a.tokens.create({
      name: 'p',
      subject: 'olga',
      permissions: ['servers.use', 'tokens.manage'],
    });
    const minted = await fetch(`${b.url}/api/v1/tokens`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${parent.token}` },
      body: JSON.stringify({ name: 'child', permissions: ['servers.use'] }),
    });
    expect(minted.status).toBe(201);
    const child = (await minted.json()) as { token: string };
    expect(await status(b, parent.token)).toBe(200);
    expect(await status(b, child.token)).toBe(200);
    expect(await a.tokens.revoke(parent.id)).toBe(true);
    await vi.waitFor(async () => expect(await status(b, child.token)).toBe(401), { timeout: 3_000, interval: 20 });
    expect(await status(b, parent.token)).toBe(401);
  });

  it('announces a `switchboard token revoke` so a running gateway refuses the token at once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swb-token-revoke-'));
    open.push({ close: () => rm(dir, { recursive: true, force: true }) });
    const channel = uniqueKeyPrefix('revoked');
    const config = join(dir, 'switchboard.yaml');
    await writeFile(config, `auth:\n  mode: tokens\n  revocationChannel: ${channel}\nmcpServers: {}\n`);
    // The gateway uses the database file the CLI finds next to the configuration.
    const database = await openDatabase({ dataDir: join(dir, '.switchboard'), logger: silentLogger() });
    open.push(database);
    const frozen = Date.now();
    const gw = await startTestGateway(
      { auth: { mode: 'tokens', revocationChannel: channel }, servers: { a: odd } },
      { database, redisUrl: REDIS_URL, now: () => frozen },
    );
    open.push(gw);
    const t = await gw.tokens.create({ name: 't', subject: 'quinn', permissions: ['servers.use'] });
    const status = async () => {
      const res = await post(`${gw.url}/mcp`, INIT, { authorization: `Bearer ${t.token}` });
      await res.text();
      return res.status;
    };
    expect(await status()).toBe(200);
    const lines: string[] = [];
    const output = { out: (l: string) => lines.push(l), err: (l: string) => lines.push(l) };
    expect(await runTokenRevoke({ config, id: t.id, redisUrl: REDIS_URL }, output)).toBe(0);
    expect(lines).toEqual([`revoked ${t.id}`]);
    await vi.waitFor(async () => expect(await status()).toBe(401), { timeout: 3_000, interval: 20 });
  });

  it.skipIf(!redisServerUp)(
    'clears this replica’s cache when its Redis subscription comes back, since announcements made meanwhile were lost',
    async () => {
      const server = await startRedisServer();
      open.push(server);
      const { a, b, status } = await replicas(server.url);
      const t = await a.tokens.create({ name: 't', subject: 'pat', permissions: ['servers.use'] });
      expect(await status(b, t.token)).toBe(200);
      await server.stop();
      // Announced while Redis is down: lost.
      expect(await a.tokens.revoke(t.id)).toBe(true);
      expect(await status(b, t.token)).toBe(200);
      await server.start();
      await vi.waitFor(async () => expect(await status(b, t.token)).toBe(401), { timeout: 15_000, interval: 100 });
    },
    30_000,
  );
});
