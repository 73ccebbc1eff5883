import type { IncomingMessage } from 'node:http';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { WebSocket } from 'ws';
import { runTunnel, type TunnelCommandOptions } from '../../../src/cli/tunnel.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { startTunnelClient } from '../../../src/tunnel/client.js';
import { startWsServer } from './ws-helpers.js';

const ODD_SERVER = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const ECHO_SERVER = fileURLToPath(new URL('../../fixtures/stdio-echo-crash.mjs', import.meta.url));
const TOKEN = 'swb_test_token';

/** A tiny gateway stand-in: checks the bearer, acks `register`, records every frame. */
interface FakeGateway {
  url: string;
  port: number;
  frames: Array<Record<string, unknown>>;
  sockets: WebSocket[];
  authHeaders: Array<string | undefined>;
  /** The next frame of `type` (from the first matching index on). */
  waitFor(type: string, count?: number): Promise<Record<string, unknown>>;
  send(ws: WebSocket, frame: unknown): void;
  close(): Promise<void>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function fakeGateway(port = 0, heartbeatIntervalMs = 40, refuse = false): Promise<FakeGateway> {
  const frames: Array<Record<string, unknown>> = [];
  const sockets: WebSocket[] = [];
  const authHeaders: Array<string | undefined> = [];
  let sessions = 0;
  const server = await startWsServer((ws: WebSocket, req: IncomingMessage) => {
    authHeaders.push(req.headers.authorization);
    if (req.headers.authorization !== `Bearer ${TOKEN}`) {
      ws.close(1008, 'invalid token');
      return;
    }
    sockets.push(ws);
    ws.on('message', (data: Buffer) => {
      const frame = JSON.parse(data.toString('utf8')) as Record<string, unknown>;
      frames.push(frame);
      if (frame.type === 'register') {
        if (refuse) {
          ws.send(JSON.stringify({ type: 'error', code: 'SWB_ERR_TUNNEL_REGISTER_REFUSED', message: 'name taken' }));
          return;
        }
        ws.send(
          JSON.stringify({ type: 'register_ack', sessionId: `s${++sessions}`, status: 'success', heartbeatIntervalMs }),
        );
      }
    });
  }, port);
  const gw: FakeGateway = {
    url: server.url,
    port: server.port,
    frames,
    sockets,
    authHeaders,
    waitFor: async (type, count = 1) => {
      await expect
        .poll(() => frames.filter((f) => f.type === type).length, { timeout: 10_000 })
        .toBeGreaterThanOrEqual(count);
      return frames.filter((f) => f.type === type)[count - 1]!;
    },
    send: (ws, frame) => ws.send(JSON.stringify(frame)),
    close: () => server.close(),
  };
  cleanups.push(() => server.close());
  return gw;
}

function tunnel(
  gw: { url: string },
  extra: Partial<TunnelCommandOptions> = {},
): { code: Promise<number>; stop(): void } {
  const abort = new AbortController();
  const code = runTunnel(
    {
      gateway: gw.url.replace('ws://', 'http://'),
      token: TOKEN,
      command: [process.execPath, ODD_SERVER],
      initialRetryDelayMs: 20,
      maxRetryDelayMs: 100,
      signal: abort.signal,
      handleSignals: false,
      logger: silentLogger(),
      ...extra,
    },
    { out: () => undefined, err: () => undefined },
  );
  cleanups.push(async () => {
    abort.abort();
    await code;
  });
  return { code, stop: () => abort.abort() };
}

/** Sends a JSON-RPC request through the tunnel and waits for its response frame. */
async function call(
  gw: FakeGateway,
  ws: WebSocket,
  message: Record<string, unknown>,
): Promise<Record<string, unknown>> {
  const before = gw.frames.length;
  gw.send(ws, { type: 'message', message });
  let found: Record<string, unknown> | undefined;
  await expect
    .poll(
      () => {
        found = gw.frames
          .slice(before)
          .map((f) => f.message as Record<string, unknown> | undefined)
          .find((m) => m !== undefined && m.id === message.id && !('method' in m));
        return found;
      },
      { timeout: 10_000 },
    )
    .toMatchObject({ jsonrpc: '2.0', id: message.id });
  return found!;
}

describe('switchboard tunnel (runTunnel)', () => {
  it('connects with the bearer header, registers under the server name and heartbeats', async () => {
    const gw = await fakeGateway();
    tunnel(gw);
    const register = await gw.waitFor('register');
    expect(gw.authHeaders[0]).toBe(`Bearer ${TOKEN}`);
    expect(register.server).toMatchObject({ name: 'odd-server', serverInfo: { name: 'odd-server', version: '1.0.0' } });
    // register_ack asked for a 40 ms interval
    await gw.waitFor('heartbeat', 2);
  });

  it('forwards messages to the real stdio child and answers initialize from its handshake', async () => {
    const gw = await fakeGateway();
    tunnel(gw, { name: 'my-laptop' });
    expect((await gw.waitFor('register')).server).toMatchObject({ name: 'my-laptop' });
    const ws = gw.sockets[0]!;
    const init = await call(gw, ws, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'gw', version: '1' } },
    });
    expect(init.result).toMatchObject({ serverInfo: { name: 'odd-server' }, instructions: 'odd instructions' });
    gw.send(ws, { type: 'message', message: { jsonrpc: '2.0', method: 'notifications/initialized' } });
    const list = await call(gw, ws, { jsonrpc: '2.0', id: 2, method: 'tools/list' });
    expect(list.result).toMatchObject({ tools: [{ name: 'pid' }, { name: 'crash' }], nextCursor: '2' });
    const odd = await call(gw, ws, { jsonrpc: '2.0', id: 'three', method: 'tools/call', params: { name: 'odd' } });
    expect(odd.result).toMatchObject({
      structuredContent: { nested: { list: [1, 'two', null], empty: {} } },
      unknownTopLevel: { kept: true },
    });
    const fail = await call(gw, ws, { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'fail' } });
    expect(fail.error).toEqual({ code: -32042, message: 'odd failure', data: { odd: true, list: [1] } });
  });

  it('runs the local server with this environment less SWITCHBOARD_* (the tunnel token stays out)', async () => {
    const saved = { token: process.env.SWITCHBOARD_TOKEN, other: process.env.SWB_TEST_TUNNEL_VAR };
    process.env.SWITCHBOARD_TOKEN = TOKEN;
    process.env.SWB_TEST_TUNNEL_VAR = 'kept';
    try {
      const gw = await fakeGateway();
      tunnel(gw, { command: [process.execPath, ECHO_SERVER] });
      await gw.waitFor('register');
      const ws = gw.sockets[0]!;
      const token = await call(gw, ws, { jsonrpc: '2.0', id: 1, method: 'env', params: { name: 'SWITCHBOARD_TOKEN' } });
      const other = await call(gw, ws, {
        jsonrpc: '2.0',
        id: 2,
        method: 'env',
        params: { name: 'SWB_TEST_TUNNEL_VAR' },
      });
      expect(token.result).toMatchObject({ value: null });
      expect(other.result).toMatchObject({ value: 'kept' });
    } finally {
      for (const [name, value] of [
        ['SWITCHBOARD_TOKEN', saved.token],
        ['SWB_TEST_TUNNEL_VAR', saved.other],
      ] as const) {
        if (value === undefined) delete process.env[name];
        else process.env[name] = value;
      }
    }
  });

  it('reconnects with backoff after the gateway restarts and registers again', async () => {
    const first = await fakeGateway();
    tunnel(first);
    await first.waitFor('register');
    const pidBefore = await call(first, first.sockets[0]!, {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'pid' },
    });
    await first.close();
    const second = await fakeGateway(first.port);
    await second.waitFor('register');
    const pidAfter = await call(second, second.sockets[0]!, {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'pid' },
    });
    // Same child: the local server survives gateway restarts.
    expect(pidAfter.result).toEqual(pidBefore.result);
  });

  it('keeps ids unambiguous across a reconnect: a late answer for the old connection is dropped', async () => {
    const first = await fakeGateway();
    tunnel(first);
    await first.waitFor('register');
    // id 1 is still running in the child when the gateway restarts …
    first.send(first.sockets[0]!, {
      type: 'message',
      message: { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'slow', arguments: { ms: 300 } } },
    });
    await expect.poll(() => first.sockets[0]!.bufferedAmount).toBe(0);
    await first.close();
    const second = await fakeGateway(first.port);
    await second.waitFor('register');
    // … and the new connection reuses id 1: it must get its own answer, never "slept 300".
    const pid = await call(second, second.sockets[0]!, {
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: { name: 'pid' },
    });
    expect(JSON.stringify(pid.result)).not.toContain('slept');
    const after = await call(second, second.sockets[0]!, {
      jsonrpc: '2.0',
      id: 2,
      method: 'tools/call',
      params: { name: 'slow', arguments: { ms: 400 } },
    });
    expect(after.result).toMatchObject({ content: [{ text: 'slept 400' }] });
    const answersForOne = second.frames.filter((f) => (f.message as { id?: unknown } | undefined)?.id === 1);
    expect(answersForOne).toHaveLength(1);
  });

  it('gives up after --max-retries when the gateway stays down', async () => {
    const gw = await fakeGateway();
    const t = tunnel(gw, { maxRetries: 2 });
    await gw.waitFor('register');
    await gw.close();
    expect(await t.code).toBe(1);
  });

  it('exits 1 without retrying when the gateway closes with 1008', async () => {
    const gw = await fakeGateway();
    const t = tunnel(gw, { token: 'wrong' });
    expect(await t.code).toBe(1);
    expect(gw.authHeaders).toEqual(['Bearer wrong']);
  });

  it('exits 1 without retrying when the registration is refused', async () => {
    const gw = await fakeGateway(0, 40, true);
    const t = tunnel(gw);
    expect(await t.code).toBe(1);
    expect(gw.frames.filter((f) => f.type === 'register')).toHaveLength(1);
  });

  it('on stop: unregisters, closes the socket and stops the child', async () => {
    const gw = await fakeGateway();
    const t = tunnel(gw);
    await gw.waitFor('register');
    const ws = gw.sockets[0]!;
    const pidResult = await call(gw, ws, { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'pid' } });
    const pid = Number((pidResult.result as { content: Array<{ text: string }> }).content[0]!.text);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    t.stop();
    expect(await t.code).toBe(0);
    expect(gw.frames.at(-1)).toMatchObject({ type: 'unregister' });
    expect(await closed).toBe(1000);
    // Signal 0 probes for the process: ESRCH, no such process (the server was stopped with it).
    expect(() => process.kill(pid, 0)).toThrow(expect.objectContaining({ code: 'ESRCH' }));
  });

  it('drops a gateway connection that stops reading once over maxBufferedFrames, and reconnects', async () => {
    const gw = await fakeGateway();
    const client = startTunnelClient({
      gateway: gw.url.replace('ws://', 'http://'),
      token: TOKEN,
      command: process.execPath,
      args: [ODD_SERVER],
      initialRetryDelayMs: 20,
      maxRetryDelayMs: 100,
      maxBufferedFrames: 64,
      logger: silentLogger(),
    });
    cleanups.push(async () => {
      await client.stop();
    });
    await gw.waitFor('register');
    const ws = gw.sockets[0]!;
    ws.pause(); // the gateway stops reading: the client's answers pile up
    const request = JSON.stringify({
      type: 'message',
      message: {
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'gw', version: '1' } },
      },
    });
    const MAX_REQUESTS = 60_000; // ~25 MB of answers: far past kernel buffers and the budget
    let sent = 0;
    while (sent < MAX_REQUESTS && gw.sockets.length === 1) {
      for (let i = 0; i < 200; i++) ws.send(request);
      sent += 200;
      await new Promise((r) => setTimeout(r, 1));
    }
    expect(sent).toBeLessThan(MAX_REQUESTS);
    // A new connection registered again: the stalled one was dropped, not buffered for.
    expect((await gw.waitFor('register', 2)).type).toBe('register');
    expect(gw.sockets).toHaveLength(2);
  }, 60_000);
});
