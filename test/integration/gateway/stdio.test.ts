/**
 * stdio upstreams: supervision after a crash, faithful pass-through of odd payloads, upstream
 * pagination, list_changed propagation, isolation modes with caps, idle reaping and session
 * idle timeout (with an injectable clock — no sleeps for the timeouts).
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { initSession, messages, post } from '../../helpers/raw.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const odd = (extra: Record<string, unknown> = {}) => ({ command: process.execPath, args: [ODD], ...extra });

function text(result: unknown): string {
  return ((result as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

let gw: RunningGateway | undefined;
const clients: Client[] = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await gw?.close();
  gw = undefined;
});

async function client(path = '/mcp'): Promise<Client> {
  const { client: c } = await connectClient(gw!.url + path);
  clients.push(c);
  return c;
}

describe('stdio upstream supervision', () => {
  it('fails the in-flight call promptly when the child crashes, restarts it with backoff, and serves later calls', async () => {
    gw = await startTestGateway({ servers: { odd: odd({ restart: { initialDelay: 50, maxDelay: 200 } }) } });
    const c = await client();
    const pid1 = Number(text(await c.callTool({ name: 'odd__pid', arguments: {} })));
    const started = Date.now();
    const crashed = await c.callTool({ name: 'odd__crash', arguments: {} }).catch((e: unknown) => e);
    expect(Date.now() - started).toBeLessThan(5000);
    expect(crashed).toBeInstanceOf(Error);
    expect(String((crashed as Error).message)).toMatch(/unavailable|exited/);
    const up = gw.gateway.upstreams.get('odd')!;
    await waitFor(() => up.state === 'ready' && up.restarts >= 1, 10_000, 'restart');
    const pid2 = Number(text(await c.callTool({ name: 'odd__pid', arguments: {} })));
    expect(pid2).not.toBe(pid1);
    expect(alive(pid1)).toBe(false);
  });

  it('reports a server that cannot start as failed on /readyz while the gateway keeps serving', async () => {
    gw = await startTestGateway({
      servers: {
        broken: odd({ env: { CRASH_ON_START: '1' }, restart: { initialDelay: 1000, maxDelay: 5000 } }),
        ok: odd(),
      },
    });
    const res = await fetch(`${gw.url}/readyz`);
    expect(res.status).toBe(503);
    const body = (await res.json()) as { upstreams: Array<{ name: string; state: string }> };
    expect(body.upstreams.find((u) => u.name === 'ok')?.state).toBe('ready');
    expect(body.upstreams.find((u) => u.name === 'broken')?.state).not.toBe('ready');
    const c = await client();
    expect(text(await c.callTool({ name: 'ok__pid', arguments: {} }))).toMatch(/^\d+$/);
  });
});

describe('protocol faithfulness over stdio', () => {
  it('follows the upstream pagination when building the catalog, keeping unknown tool fields', async () => {
    gw = await startTestGateway({ servers: { odd: odd() } });
    const url = `${gw.url}/servers/odd/mcp`;
    const sid = await initSession(url);
    const [m] = await messages(
      await post(url, { jsonrpc: '2.0', id: 1, method: 'tools/list' }, { 'mcp-session-id': sid }),
    );
    const tools = (m?.result as { tools: Array<Record<string, unknown>> }).tools;
    expect(tools.map((t) => t.name)).toEqual(['pid', 'crash', 'slow', 'odd', 'add-tool', 'fail']);
    expect(tools.find((t) => t.name === 'odd')?.['x-vendor']).toEqual({ keep: true });
  });

  it('passes odd-but-valid results through byte-for-byte apart from the id', async () => {
    gw = await startTestGateway({ servers: { odd: odd() } });
    const url = `${gw.url}/mcp`;
    const sid = await initSession(url);
    const res = await post(
      url,
      { jsonrpc: '2.0', id: 'abc', method: 'tools/call', params: { name: 'odd__odd', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    const [m] = await messages(res);
    expect(m).toEqual({
      jsonrpc: '2.0',
      id: 'abc',
      result: {
        content: [{ type: 'text', text: 'odd', annotations: { audience: ['user'] }, 'x-extra': 1 }],
        structuredContent: { nested: { list: [1, 'two', null], empty: {} } },
        isError: false,
        _meta: { 'vendor/trace': 'abc' },
        unknownTopLevel: { kept: true },
      },
    });
  });

  it('passes upstream error objects through unchanged', async () => {
    gw = await startTestGateway({ servers: { odd: odd() } });
    const url = `${gw.url}/servers/odd/mcp`;
    const sid = await initSession(url);
    const res = await post(
      url,
      { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'fail', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    const [m] = await messages(res);
    expect(m).toEqual({
      jsonrpc: '2.0',
      id: 4,
      error: { code: -32042, message: 'odd failure', data: { odd: true, list: [1] } },
    });
  });

  it('sends tools/list_changed to sessions that see the upstream, and lists the new tool (no stale cached list)', async () => {
    gw = await startTestGateway({ servers: { odd: odd() } });
    const c = await client();
    let changed = 0;
    c.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      changed++;
    });
    // The SDK client opens its GET stream in the background; let it attach.
    await waitFor(() => [...gw!.gateway.sessions.values()].some((s) => s.hasStandaloneStream), 5000, 'GET stream');
    // Listed (and so serialised and cached) before the change: the later list must not be stale.
    const before = await c.listTools();
    expect(before.tools.map((t) => t.name)).not.toContain('odd__added-6');
    expect((await c.listTools()).tools).toEqual(before.tools);
    await c.callTool({ name: 'odd__add-tool', arguments: {} });
    await waitFor(() => changed > 0, 5000, 'list_changed');
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name)).toContain('odd__added-6');
  });
});

describe('isolation', () => {
  it('gives each client session its own child with isolation: session', async () => {
    gw = await startTestGateway({ servers: { odd: odd({ isolation: 'session', maxProcesses: 4 }) } });
    const a = await client();
    const b = await client();
    const pa = text(await a.callTool({ name: 'odd__pid', arguments: {} }));
    const pb = text(await b.callTool({ name: 'odd__pid', arguments: {} }));
    const pa2 = text(await a.callTool({ name: 'odd__pid', arguments: {} }));
    expect(pa).not.toBe(pb);
    expect(pa2).toBe(pa);
    expect(gw.gateway.upstreams.get('odd')!.connectionCount).toBe(2);
  });

  it('refuses a session beyond maxProcesses with a clear JSON-RPC error', async () => {
    gw = await startTestGateway({ servers: { odd: odd({ isolation: 'session', maxProcesses: 1 }) } });
    const a = await client();
    const b = await client();
    await a.callTool({ name: 'odd__pid', arguments: {} });
    const url = `${gw.url}/mcp`;
    const sid = await initSession(url);
    const res = await post(
      url,
      { jsonrpc: '2.0', id: 9, method: 'tools/call', params: { name: 'odd__pid', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    const [m] = await messages(res);
    const error = m?.error as { message: string; data: { code: string } };
    expect(error.data.code).toBe('SWB_ERR_UPSTREAM_PROCESS_LIMIT');
    expect(error.message).toContain('maxProcesses=1');
    void b;
  });

  it('stops a session child when its session is deleted', async () => {
    gw = await startTestGateway({ servers: { odd: odd({ isolation: 'session' }) } });
    const url = `${gw.url}/mcp`;
    const sid = await initSession(url);
    const res = await post(
      url,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'odd__pid', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    const pid = Number(((await messages(res))[0]?.result as { content: Array<{ text: string }> }).content[0]!.text);
    expect(alive(pid)).toBe(true);
    await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    await waitFor(() => !alive(pid), 5000, 'child exit');
  });

  it('reaps an idle user child after idleTimeout on the injected clock', async () => {
    let now = 1_000_000;
    gw = await startTestGateway(
      { servers: { odd: odd({ isolation: 'user', idleTimeout: '5m' }) } },
      { now: () => now },
    );
    const url = `${gw.url}/mcp`;
    const sid = await initSession(url);
    const res = await post(
      url,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'odd__pid', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    const pid = Number(((await messages(res))[0]?.result as { content: Array<{ text: string }> }).content[0]!.text);
    await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    expect(gw.gateway.sweep().children).toBe(0); // not idle long enough yet
    expect(alive(pid)).toBe(true);
    now += 5 * 60_000;
    expect(gw.gateway.sweep().children).toBe(1);
    await waitFor(() => !alive(pid), 5000, 'child exit');
    expect(gw.gateway.upstreams.get('odd')!.connectionCount).toBe(0);
  });

  it('expires an idle client session after sessions.idleTimeout; its id then gets 404', async () => {
    let now = 5_000_000;
    gw = await startTestGateway({ sessions: { idleTimeout: '10m' }, servers: { odd: odd() } }, { now: () => now });
    const url = `${gw.url}/mcp`;
    const sid = await initSession(url);
    now += 9 * 60_000;
    expect(gw.gateway.sweep().sessions).toBe(0);
    const ok = await post(url, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid });
    expect(ok.status).toBe(200);
    now += 10 * 60_000;
    expect(gw.gateway.sweep().sessions).toBe(1);
    const gone = await post(url, { jsonrpc: '2.0', id: 3, method: 'ping' }, { 'mcp-session-id': sid });
    expect(gone.status).toBe(404);
  });
});

describe('hot reload', () => {
  it('adds and removes servers without disturbing sessions on unaffected servers', async () => {
    gw = await startTestGateway({ servers: { keep: odd() } });
    const single = await client('/servers/keep/mcp');
    const agg = await client();
    const before = text(await single.callTool({ name: 'pid', arguments: {} }));
    const { buildConfig } = await import('../../helpers/gateway.js');
    const result = await gw.gateway.reload(buildConfig({ servers: { keep: odd(), extra: odd() } }));
    expect(result).toEqual({ added: ['extra'], removed: [], changed: [] });
    expect(text(await single.callTool({ name: 'pid', arguments: {} }))).toBe(before);
    const names = (await agg.listTools()).tools.map((t) => t.name);
    expect(names).toContain('extra__pid');
    expect(names).toContain('keep__pid');
    await gw.gateway.reload(buildConfig({ servers: { keep: odd() } }));
    expect((await agg.listTools()).tools.map((t) => t.name)).not.toContain('extra__pid');
    expect(text(await single.callTool({ name: 'pid', arguments: {} }))).toBe(before);
  });
});

describe('per-upstream concurrency', () => {
  it('refuses a call beyond maxInFlight + maxQueue with SWB_ERR_UPSTREAM_BUSY and serves the queued one', async () => {
    gw = await startTestGateway({ servers: { odd: odd({ maxInFlight: 1, maxQueue: 1 }) } });
    const url = `${gw.url}/mcp`;
    const sid = await initSession(url);
    const call = (id: number) =>
      post(
        url,
        { jsonrpc: '2.0', id, method: 'tools/call', params: { name: 'odd__slow', arguments: { ms: 300 } } },
        { 'mcp-session-id': sid },
      ).then(messages);
    const [a, b, c] = await Promise.all([call(1), call(2), call(3)]);
    const outcomes = [a, b, c].map(
      (m) => (m[0]?.error as { data?: { code?: string } } | undefined)?.data?.code ?? 'ok',
    );
    expect(outcomes.sort()).toEqual(['SWB_ERR_UPSTREAM_BUSY', 'ok', 'ok']);
  });
});
