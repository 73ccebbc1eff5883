/**
 * The admin API routes of the web console against a real gateway over HTTP: `GET /api/v1/me`,
 * `GET /api/v1/catalog`, `POST /api/v1/servers/{name}/restart` and the extended server view
 * (isolation, sessions, source file, enabled/disabled, redacted stored entry, traffic stats).
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { buildConfig, connectClient, startTestGatewayWith } from '../../helpers/gateway.js';
import { messages, post } from '../../helpers/raw.js';

const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));
const CONFIG_FILE = '/etc/switchboard/switchboard.yaml';

let gw: RunningGateway;
const tokens: Record<string, string> = {};

async function api(
  path: string,
  token: string | undefined,
  init: { method?: string; body?: unknown } = {},
): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`${gw.url}${path}`, {
    method: init.method ?? 'GET',
    headers: {
      ...(token === undefined ? {} : { authorization: `Bearer ${token}` }),
      ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
    },
    ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
  });
  const text = await res.text();
  return { status: res.status, body: text === '' ? {} : (JSON.parse(text) as Record<string, unknown>) };
}

const codeOf = (body: Record<string, unknown>) => (body.error as { code?: string } | undefined)?.code;

beforeAll(async () => {
  const config = buildConfig({
    auth: { mode: 'tokens' },
    servers: {
      echo: { command: process.execPath, args: [ECHO] },
      solo: { command: process.execPath, args: [ECHO], isolation: 'session' },
    },
    virtualServers: { v: { servers: ['echo'] } },
  });
  config.source = CONFIG_FILE;
  gw = await startTestGatewayWith(config);
  const mint = async (name: string, permissions: string[], extra: { servers?: string[]; tools?: string[] } = {}) =>
    (tokens[name] = (await gw.tokens.create({ name, subject: name, permissions, ...extra })).token);
  await mint('admin', ['admin.*']);
  await mint('reader', ['servers.use', 'usage.read']);
  await mint('manager', ['servers.use', 'servers.*']);
  await mint('scoped', ['servers.use', 'tools.execute'], { servers: ['echo'], tools: ['echo/ping'] });
}, 30_000);

afterAll(async () => {
  await gw?.close();
});

describe('authentication of the console routes', () => {
  it('answers 401 without a token on every admin route when auth is on', async () => {
    for (const path of ['/api/v1/servers', '/api/v1/me', '/api/v1/catalog', '/api/v1/live', '/api/v1/servers/echo']) {
      const r = await api(path, undefined);
      expect(r.status, path).toBe(401);
      expect(codeOf(r.body), path).toBe('SWB_ERR_AUTH_MISSING_TOKEN');
    }
    const restart = await api('/api/v1/servers/echo/restart', 'not-a-token', { method: 'POST' });
    expect(restart.status).toBe(401);
  });
});

describe('GET /api/v1/me', () => {
  it('describes the caller with can flags from the gateway permission check', async () => {
    const reader = await api('/api/v1/me', tokens.reader);
    expect(reader.status).toBe(200);
    expect(reader.body).toMatchObject({
      id: 'token:reader',
      subject: 'reader',
      kind: 'token',
      permissions: ['servers.use', 'usage.read'],
      servers: null,
      tools: null,
      can: {
        serversUse: true,
        serversManage: false,
        toolsExecute: false,
        tokensManage: false,
        usageRead: true,
        metricsRead: false,
        admin: false,
      },
    });
    // A wildcard grant (servers.*) covers servers.manage.
    const manager = await api('/api/v1/me', tokens.manager);
    expect((manager.body.can as Record<string, boolean>).serversManage).toBe(true);
    expect((manager.body.can as Record<string, boolean>).admin).toBe(false);
    const admin = await api('/api/v1/me', tokens.admin);
    expect(Object.values(admin.body.can as Record<string, boolean>).every(Boolean)).toBe(true);
    const scoped = await api('/api/v1/me', tokens.scoped);
    expect(scoped.body).toMatchObject({ servers: ['echo'], tools: ['echo/ping'] });
  });

  it('answers only GET', async () => {
    const r = await api('/api/v1/me', tokens.reader, { method: 'POST', body: {} });
    expect(r.status).toBe(405);
  });
});

describe('server view', () => {
  it('shows isolation, live sessions, the configuration file and traffic for a file server', async () => {
    const before = await api('/api/v1/servers/echo', tokens.reader);
    expect(before.status).toBe(200);
    expect(before.body).toMatchObject({
      name: 'echo',
      source: 'file',
      isolation: 'shared',
      sourceFile: CONFIG_FILE,
      enabled: true,
      config: null,
      state: 'ready',
    });
    const sessionsBefore = before.body.sessions as number;
    const { client } = await connectClient(`${gw.url}/mcp`, {}, 'c', { authorization: `Bearer ${tokens.admin}` });
    try {
      const during = await api('/api/v1/servers/echo', tokens.reader);
      expect(during.body.sessions).toBe(sessionsBefore + 1);
    } finally {
      await client.close();
    }
    const stats = before.body.stats as Record<string, unknown>;
    expect(stats.windowSeconds).toBe(300);
    expect((stats.series as unknown[]).length).toBe(30);
  });

  it('counts the children of a session-isolated server as its sessions', async () => {
    const solo = await api('/api/v1/servers/solo', tokens.reader);
    expect(solo.body).toMatchObject({ isolation: 'session', sessions: 0 });
    const { client } = await connectClient(`${gw.url}/servers/solo/mcp`, {}, 'c', {
      authorization: `Bearer ${tokens.admin}`,
    });
    try {
      await client.callTool({ name: 'ping', arguments: {} });
      const during = await api('/api/v1/servers/solo', tokens.reader);
      expect(during.body.sessions).toBe(1);
    } finally {
      await client.close();
    }
  });

  it('counts requests, errors and latency percentiles of the last five minutes', async () => {
    const before = (await api('/api/v1/servers/echo', tokens.reader)).body.stats as {
      requests: number;
      errors: number;
    };
    const { client } = await connectClient(`${gw.url}/mcp`, {}, 'c', { authorization: `Bearer ${tokens.admin}` });
    const n = 12;
    let slowest = 0;
    try {
      for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        await client.callTool({ name: 'echo__echo', arguments: { message: `m${i}` } });
        slowest = Math.max(slowest, performance.now() - t0);
      }
    } finally {
      await client.close();
    }
    // Errors: an unknown tool on the server's own endpoint is answered with a JSON-RPC error.
    const url = `${gw.url}/servers/echo/mcp`;
    const auth = { authorization: `Bearer ${tokens.admin}` };
    const init = await post(
      url,
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      },
      auth,
    );
    const sid = init.headers.get('mcp-session-id')!;
    await init.text();
    const headers = { ...auth, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' };
    await (await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, headers)).text();
    const bad = await messages(
      await post(
        url,
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'nope', arguments: {} } },
        headers,
      ),
    );
    expect(bad[0]?.error).toBeDefined();

    const after = (await api('/api/v1/servers/echo', tokens.reader)).body.stats as {
      requests: number;
      errors: number;
      errorRate: number;
      ratePerMinute: number;
      p50Ms: number;
      p95Ms: number;
      series: Array<{ t: number; requests: number; errors: number }>;
    };
    // The n calls, plus the raw session's initialize, initialized notification and failed call
    // on /servers/echo/mcp (that endpoint is the server's own).
    expect(after.requests - before.requests).toBe(n + 3);
    expect(after.errors - before.errors).toBe(1);
    expect(after.errorRate).toBeCloseTo(after.errors / after.requests, 6);
    expect(after.ratePerMinute).toBeCloseTo(after.requests / 5, 6);
    expect(after.p50Ms).toBeGreaterThan(0);
    expect(after.p95Ms).toBeGreaterThanOrEqual(after.p50Ms);
    // The gateway's own latency cannot exceed what the client measured (histogram precision ±9 %).
    expect(after.p50Ms).toBeLessThan(slowest * 1.1 + 1);
    expect(after.series.reduce((a, p) => a + p.requests, 0)).toBe(after.requests);
    const last = after.series[after.series.length - 1]!;
    expect(Date.now() - last.t).toBeLessThan(10_000 + 1000);
  });
});

describe('runtime servers in the view', () => {
  it('shows the stored entry with secrets redacted unless the caller is an admin, and keeps redacted secrets on PUT', async () => {
    const entry = {
      command: process.execPath,
      args: [ECHO],
      env: { ECHO_DESCRIPTION: 'secret-value' },
    };
    const put = await api('/api/v1/servers/rt', tokens.admin, { method: 'PUT', body: entry });
    expect(put.status).toBe(201);
    expect(put.body).toMatchObject({ source: 'api', enabled: true, sourceFile: null, isolation: 'shared' });
    expect((put.body.config as { env: Record<string, string> }).env.ECHO_DESCRIPTION).toBe('secret-value');

    const asReader = await api('/api/v1/servers/rt', tokens.reader);
    expect((asReader.body.config as { env: Record<string, string> }).env).toEqual({ ECHO_DESCRIPTION: '[redacted]' });
    const listed = await api('/api/v1/servers', tokens.reader);
    const rt = (listed.body.servers as Array<Record<string, unknown>>).find((s) => s.name === 'rt')!;
    expect(JSON.stringify(rt)).not.toContain('secret-value');

    // Saving the redacted entry back keeps the stored secret.
    const again = await api('/api/v1/servers/rt', tokens.admin, {
      method: 'PUT',
      body: { ...entry, env: { ECHO_DESCRIPTION: '[redacted]' }, description: 'edited' },
    });
    expect(again.status).toBe(200);
    expect((await gw.database.servers.get('rt'))?.config.env).toEqual({ ECHO_DESCRIPTION: 'secret-value' });
  });

  it('lists a switched-off runtime server as disabled, and enables it again', async () => {
    const entry = { command: process.execPath, args: [ECHO] };
    expect((await api('/api/v1/servers/off', tokens.admin, { method: 'PUT', body: entry })).status).toBe(201);
    const disabled = await api('/api/v1/servers/off', tokens.admin, {
      method: 'PUT',
      body: { ...entry, enabled: false },
    });
    expect(disabled.status).toBe(200);
    expect(disabled.body).toMatchObject({ name: 'off', state: 'disabled', enabled: false, source: 'api' });
    expect(gw.gateway.upstreams.has('off')).toBe(false);
    const listed = await api('/api/v1/servers', tokens.reader);
    expect((listed.body.servers as Array<Record<string, unknown>>).find((s) => s.name === 'off')).toMatchObject({
      state: 'disabled',
      enabled: false,
    });
    expect((await api('/api/v1/servers/off', tokens.reader)).body).toMatchObject({ state: 'disabled' });
    const restart = await api('/api/v1/servers/off/restart', tokens.admin, { method: 'POST' });
    expect(restart.status).toBe(409);
    const enabled = await api('/api/v1/servers/off', tokens.admin, { method: 'PUT', body: entry });
    expect(enabled.body).toMatchObject({ state: 'ready', enabled: true });
  });
});

describe('POST /api/v1/servers/{name}/restart', () => {
  it('restarts a file-declared upstream and answers its view', async () => {
    const old = gw.gateway.upstreams.get('echo');
    const r = await api('/api/v1/servers/echo/restart', tokens.admin, { method: 'POST' });
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ name: 'echo', state: 'ready', source: 'file' });
    expect(gw.gateway.upstreams.get('echo')).not.toBe(old);
    expect(old?.state).toBe('stopped');
    // The restarted server serves again.
    const { client } = await connectClient(`${gw.url}/mcp`, {}, 'c', { authorization: `Bearer ${tokens.admin}` });
    try {
      const result = await client.callTool({ name: 'echo__echo', arguments: { message: 'back' } });
      expect(result.structuredContent).toEqual({ echo: 'back' });
    } finally {
      await client.close();
    }
  });

  it('refuses a read-only token (403), a non-admin for a stdio server (403), unknown servers (404) and GET (405)', async () => {
    const old = gw.gateway.upstreams.get('echo');
    const reader = await api('/api/v1/servers/echo/restart', tokens.reader, { method: 'POST' });
    expect(reader.status).toBe(403);
    expect(codeOf(reader.body)).toBe('SWB_ERR_AUTH_FORBIDDEN');
    const manager = await api('/api/v1/servers/echo/restart', tokens.manager, { method: 'POST' });
    expect(manager.status).toBe(403);
    expect(codeOf(manager.body)).toBe('SWB_ERR_AUTH_ADMIN_REQUIRED');
    expect(gw.gateway.upstreams.get('echo')).toBe(old);
    expect((await api('/api/v1/servers/nope/restart', tokens.admin, { method: 'POST' })).status).toBe(404);
    expect((await api('/api/v1/servers/echo/restart', tokens.admin)).status).toBe(405);
    expect((await api('/api/v1/servers/echo/restart/x', tokens.admin, { method: 'POST' })).status).toBe(404);
  });

  it('refuses writes to a read-only token', async () => {
    const r = await api('/api/v1/servers/w', tokens.reader, {
      method: 'PUT',
      body: { url: 'https://example.com/mcp' },
    });
    expect(r.status).toBe(403);
    expect(codeOf(r.body)).toBe('SWB_ERR_AUTH_FORBIDDEN');
  });
});

describe('GET /api/v1/catalog', () => {
  it('lists what a client of /mcp sees, with server and upstream names, and the endpoints', async () => {
    const r = await api('/api/v1/catalog', tokens.reader);
    expect(r.status).toBe(200);
    expect(r.body).toMatchObject({ endpoint: 'mcp', path: '/mcp' });
    const tools = r.body.tools as Array<Record<string, unknown>>;
    expect(tools.find((t) => t.name === 'echo__echo')).toMatchObject({
      server: 'echo',
      upstreamName: 'echo',
      description: 'Echoes back the input',
      inputSchema: { type: 'object' },
    });
    expect(r.body.prompts).toEqual([]);
    expect(r.body.resources).toEqual([]);
    const endpoints = r.body.endpoints as Array<{ id: string; path: string; label: string }>;
    expect(endpoints[0]).toEqual({ id: 'mcp', path: '/mcp', label: 'All servers' });
    expect(endpoints).toContainEqual({ id: 'virtual:v', path: '/mcp/v', label: 'v' });
    expect(endpoints).toContainEqual({ id: 'server:echo', path: '/servers/echo/mcp', label: 'echo' });
  });

  it('shows a virtual server and a single server under their own names', async () => {
    const v = await api('/api/v1/catalog?endpoint=virtual:v', tokens.reader);
    expect(v.body).toMatchObject({ endpoint: 'virtual:v', path: '/mcp/v' });
    expect((v.body.tools as Array<{ name: string }>).map((t) => t.name).sort()).toEqual(['echo__echo', 'echo__ping']);
    const single = await api('/api/v1/catalog?endpoint=server:echo', tokens.reader);
    expect(single.body).toMatchObject({ endpoint: 'server:echo', path: '/servers/echo/mcp' });
    expect((single.body.tools as Array<{ name: string }>).map((t) => t.name).sort()).toEqual(['echo', 'ping']);
  });

  it("leaves out tools and servers outside the caller's scope", async () => {
    const r = await api('/api/v1/catalog', tokens.scoped);
    expect((r.body.tools as Array<{ name: string }>).map((t) => t.name)).toEqual(['echo__ping']);
    const ids = (r.body.endpoints as Array<{ id: string }>).map((e) => e.id);
    expect(ids).toContain('server:echo');
    expect(ids).not.toContain('server:solo');
    const out = await api('/api/v1/catalog?endpoint=server:solo', tokens.scoped);
    expect(out.status).toBe(403);
    expect(codeOf(out.body)).toBe('SWB_ERR_AUTH_OUT_OF_SCOPE');
  });

  it('answers 400 for a malformed endpoint and 404 for an unknown one', async () => {
    expect((await api('/api/v1/catalog?endpoint=bogus', tokens.reader)).status).toBe(400);
    expect((await api('/api/v1/catalog?endpoint=server:', tokens.reader)).status).toBe(400);
    expect((await api('/api/v1/catalog?endpoint=server:nope', tokens.reader)).status).toBe(404);
    expect((await api('/api/v1/catalog?endpoint=virtual:nope', tokens.reader)).status).toBe(404);
  });
});
