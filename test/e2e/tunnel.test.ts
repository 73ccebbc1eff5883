/**
 * The reverse tunnel end to end (docs/tunnel.md): `switchboard tunnel … --
 * <server-everything stdio>` dials in to a running Switchboard; an SDK client on /mcp lists and
 * calls the tunnelled tools, receives progress and answers a sampling request; plus auth failure
 * (1008, no session), permission denied, ownership of the operator endpoints, the SSE feed, and a
 * tunnel dropped mid-call.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../src/app.js';
import { BIDI_CAPABILITIES, connectClient, EVERYTHING_ENTRY, startTestGateway, waitFor } from '../helpers/gateway.js';
import { CLI } from '../helpers/serve.js';

let gw: RunningGateway;
let admin: string;
let tunnelToken: string;
let userToken: string;
const children: ChildProcess[] = [];

function tunnel(name: string, token: string): ChildProcess {
  const child = spawn(
    process.execPath,
    [
      ...CLI,
      'tunnel',
      '--gateway',
      gw.url,
      '--token',
      token,
      '--name',
      name,
      '--',
      process.execPath,
      EVERYTHING_ENTRY,
      'stdio',
    ],
    { stdio: ['ignore', 'ignore', 'pipe'] },
  );
  child.stderr?.resume();
  children.push(child);
  return child;
}

function wsClose(headers: Record<string, string>, query = ''): Promise<{ code: number; reason: string }> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`${gw.url.replace('http', 'ws')}/reverse-proxy/ws${query}`, { headers });
    ws.on('close', (code, reason) => resolve({ code, reason: reason.toString() }));
    ws.on('error', reject);
  });
}

beforeAll(async () => {
  gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: {} });
  admin = (await gw.tokens.create({ name: 'admin', subject: 'root', permissions: ['admin.*'] })).token;
  tunnelToken = (
    await gw.tokens.create({
      name: 'edge',
      subject: 'edge',
      permissions: ['servers.manage', 'servers.use', 'tools.execute'],
    })
  ).token;
  userToken = (await gw.tokens.create({ name: 'user', subject: 'user', permissions: ['servers.use', 'tools.execute'] }))
    .token;
});
afterAll(async () => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGTERM');
  await gw?.close();
});

describe('reverse tunnel', () => {
  it('makes a tunnelled server-everything an ordinary server: tools, progress and sampling through /mcp', async () => {
    tunnel('ev', tunnelToken);
    await waitFor(() => gw.gateway.upstreams.get('ev')?.state === 'ready', 20_000, 'tunnelled server ready');
    const { client } = await connectClient(`${gw.url}/mcp`, BIDI_CAPABILITIES, 'sdk', {
      authorization: `Bearer ${admin}`,
    });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('ev__echo');
      const echo = await client.callTool({ name: 'ev__echo', arguments: { message: 'through the tunnel' } });
      expect(JSON.stringify(echo.content)).toContain('Echo: through the tunnel');
      const progress: number[] = [];
      await client.callTool(
        { name: 'ev__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(progress).toEqual([1, 2, 3]);
      client.setRequestHandler(CreateMessageRequestSchema, async () => ({
        model: 'm',
        role: 'assistant',
        content: { type: 'text', text: 'sampled-through-tunnel' },
      }));
      const sampled = await client.callTool({
        name: 'ev__trigger-sampling-request',
        arguments: { prompt: 'hi', maxTokens: 5 },
      });
      expect(JSON.stringify(sampled.content)).toContain('sampled-through-tunnel');
      const servers = (await (
        await fetch(`${gw.url}/api/v1/servers/ev`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as { source: string };
      expect(servers.source).toBe('tunnel');
    } finally {
      await client.close();
    }
  });

  it('closes an unauthenticated or query-token connection with 1008 and creates no session', async () => {
    const before = (await (
      await fetch(`${gw.url}/reverse-proxy/sessions`, { headers: { authorization: `Bearer ${admin}` } })
    ).json()) as { sessions: unknown[] };
    expect((await wsClose({})).code).toBe(1008);
    expect((await wsClose({ authorization: 'Bearer garbage' })).code).toBe(1008);
    expect((await wsClose({}, `?token=${tunnelToken}`)).code).toBe(1008);
    const after = (await (
      await fetch(`${gw.url}/reverse-proxy/sessions`, { headers: { authorization: `Bearer ${admin}` } })
    ).json()) as { sessions: unknown[] };
    expect(after.sessions.length).toBe(before.sessions.length);
  });

  it('refuses a token without servers.manage with 1008', async () => {
    const r = await wsClose({ authorization: `Bearer ${userToken}` });
    expect(r.code).toBe(1008);
    expect(r.reason).toContain('permission');
  });

  it('shows a tunnel to its owner and admins only, and lets only them act on it', async () => {
    await waitFor(() => gw.gateway.upstreams.get('ev')?.state === 'ready', 20_000, 'tunnel');
    const list = async (t: string) =>
      (
        (await (
          await fetch(`${gw.url}/reverse-proxy/sessions`, { headers: { authorization: `Bearer ${t}` } })
        ).json()) as { sessions: Array<{ sessionId: string }> }
      ).sessions;
    const mine = await list(tunnelToken);
    expect(mine.length).toBeGreaterThanOrEqual(1);
    expect((await list(admin)).length).toBeGreaterThanOrEqual(mine.length);
    expect(await list(userToken)).toEqual([]);
    const id = mine[0]!.sessionId;
    const other = await fetch(`${gw.url}/reverse-proxy/sessions/${id}/request`, {
      method: 'POST',
      headers: { authorization: `Bearer ${userToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(other.status).toBe(404);
    const own = await fetch(`${gw.url}/reverse-proxy/sessions/${id}/request`, {
      method: 'POST',
      headers: { authorization: `Bearer ${tunnelToken}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 7, method: 'tools/list' }),
    });
    expect(own.status).toBe(200);
    const answer = (await own.json()) as { id: number; result: { tools: unknown[] } };
    expect(answer.id).toBe(7);
    expect(answer.result.tools.length).toBeGreaterThan(0);
    expect(
      (
        await fetch(`${gw.url}/reverse-proxy/sessions/${id}`, {
          method: 'DELETE',
          headers: { authorization: `Bearer ${userToken}` },
        })
      ).status,
    ).toBe(404);
  });

  it('streams the session traffic on the SSE feed', async () => {
    const id = (
      (await (
        await fetch(`${gw.url}/reverse-proxy/sessions`, { headers: { authorization: `Bearer ${admin}` } })
      ).json()) as { sessions: Array<{ sessionId: string }> }
    ).sessions[0]!.sessionId;
    const ac = new AbortController();
    const feed = await fetch(`${gw.url}/reverse-proxy/sse/${id}`, {
      headers: { authorization: `Bearer ${admin}` },
      signal: ac.signal,
    });
    expect(feed.status).toBe(200);
    const reader = feed.body!.getReader();
    await fetch(`${gw.url}/reverse-proxy/sessions/${id}/request`, {
      method: 'POST',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'ping' }),
    });
    let text = '';
    const deadline = Date.now() + 5000;
    while (
      !(text.includes('"method":"ping"') && /event: (response|message)[\s\S]*"result"/.test(text)) &&
      Date.now() < deadline
    ) {
      const { value, done } = await reader.read();
      if (done) break;
      text += new TextDecoder().decode(value);
    }
    ac.abort();
    expect(text).toContain('"method":"ping"');
    expect(text).toMatch(/"result":\{\}/);
  });

  it('fails an in-flight call promptly when the tunnel drops, and removes the server', async () => {
    const child = tunnel('drop', tunnelToken);
    await waitFor(() => gw.gateway.upstreams.get('drop')?.state === 'ready', 20_000, 'second tunnel');
    const { client } = await connectClient(`${gw.url}/mcp`, {}, 'sdk2', { authorization: `Bearer ${admin}` });
    try {
      const call = client.callTool({
        name: 'drop__trigger-long-running-operation',
        arguments: { duration: 10, steps: 10 },
      });
      await new Promise((r) => setTimeout(r, 300));
      const started = Date.now();
      child.kill('SIGKILL');
      await expect(call).rejects.toMatchObject({ code: -33021, data: { code: 'SWB_ERR_UPSTREAM_CLOSED' } });
      expect(Date.now() - started).toBeLessThan(5000);
      await waitFor(() => !gw.gateway.upstreams.has('drop'), 10_000, 'server removed');
      expect((await client.listTools()).tools.map((t) => t.name)).not.toContain('drop__echo');
    } finally {
      await client.close();
    }
  });
});

describe('tunnel client and a gateway restart', () => {
  it('reconnects with backoff and registers again when the gateway comes back on the same address', async () => {
    const { freePort } = await import('../helpers/everything.js');
    const port = await freePort();
    const { openDatabase } = await import('../../src/store/database.js');
    const { silentLogger } = await import('../../src/observability/logger.js');
    // One database for both gateway lifetimes, so the token survives the restart.
    const db = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger() });
    let first: RunningGateway | undefined = await startTestGateway(
      { auth: { mode: 'tokens' }, servers: {} },
      { port, database: db },
    );
    const token = (await first.tokens.create({ name: 'edge', subject: 'edge', permissions: ['servers.manage'] })).token;
    const child = spawn(
      process.execPath,
      [
        ...CLI,
        'tunnel',
        '--gateway',
        first.url,
        '--token',
        token,
        '--name',
        'again',
        '--',
        process.execPath,
        EVERYTHING_ENTRY,
        'stdio',
      ],
      { stdio: ['ignore', 'ignore', 'pipe'] },
    );
    let clientLog = '';
    child.stderr?.on('data', (d: Buffer) => (clientLog += d.toString()));
    children.push(child);
    let second: RunningGateway | undefined;
    try {
      await waitFor(() => first?.gateway.upstreams.get('again')?.state === 'ready', 20_000, 'first registration');
      await first.close();
      first = undefined;
      second = await startTestGateway({ auth: { mode: 'tokens' }, servers: {} }, { port, database: db });
      const gw2 = second;
      await waitFor(
        () => gw2.gateway.upstreams.get('again')?.state === 'ready',
        20_000,
        'registration after restart',
      ).catch((err: unknown) => {
        throw new Error(`${String(err)}\ntunnel client log:\n${clientLog.slice(-3000)}`);
      });
      expect(gw2.gateway.upstreams.get('again')!.catalog.tools.map((t) => t.name)).toContain('echo');
    } finally {
      child.kill('SIGTERM');
      await first?.close();
      await second?.close();
      await db.close();
    }
  });
});
