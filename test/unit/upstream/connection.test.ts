import { afterEach, describe, expect, it, vi } from 'vitest';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { UpstreamConnection, type Caller } from '../../../src/upstream/connection.js';
import { createMemoryTransportPair, type MemoryTransportPair } from '../../../src/upstream/memory-transport.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type {
  JsonObject,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../../../src/protocol/jsonrpc.js';
import type { TransportCloseInfo } from '../../../src/upstream/transport.js';

/** Lets queued microtask deliveries run (no timers involved, so fake timers do not matter). */
async function flush(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve();
}

/**
 * A hand-driven upstream on the server end: records what the connection sends and answers
 * `initialize` itself, so tests see the exact wire.
 */
async function peer(options: { relatedRequestIds?: boolean; requestTimeoutMs?: number } = {}) {
  const pair = createMemoryTransportPair({ name: 'peer', relatedRequestIds: options.relatedRequestIds ?? false });
  const wire: JsonRpcMessage[] = [];
  pair.server.onmessage = (raw) => {
    const m = raw as JsonRpcMessage;
    if ('method' in m && m.method === 'initialize' && 'id' in m) {
      void pair.server.send({
        jsonrpc: '2.0',
        id: m.id,
        result: {
          protocolVersion: '2025-06-18',
          capabilities: { tools: {} },
          serverInfo: { name: 'peer', version: '1' },
        },
      });
      return;
    }
    wire.push(m);
  };
  await pair.server.start();
  const unrelated: JsonRpcNotification[] = [];
  const closes: TransportCloseInfo[] = [];
  const conn = new UpstreamConnection(pair.upstream, {
    name: 'peer',
    logger: silentLogger(),
    requestTimeoutMs: options.requestTimeoutMs ?? 60_000,
    exclusiveAttribution: options.relatedRequestIds !== true,
    onNotification: (n) => unrelated.push(n),
    onClose: (info) => closes.push(info),
  });
  await conn.initialize();
  wire.length = 0; // notifications/initialized
  const send = (m: object, relatedRequestId?: number) =>
    pair.server.send(m, relatedRequestId === undefined ? undefined : { relatedRequestId });
  return { pair, conn, wire, unrelated, closes, send };
}

/** A caller that records what reaches the client and answers server→client requests with `answer`. */
function recordingCaller(sessionId: string, capabilities: JsonObject | undefined, answer?: JsonObject) {
  const notes: JsonRpcNotification[] = [];
  const requests: Array<{ method: string; params: JsonObject | undefined }> = [];
  const caller: Caller = {
    sessionId,
    clientCapabilities: capabilities,
    notify: (n) => notes.push(n),
    request: async (method, params) => {
      requests.push({ method, params });
      return { result: answer ?? {} };
    },
  };
  return { caller, notes, requests };
}

afterEach(() => {
  vi.useRealTimers();
});

describe('UpstreamConnection over the in-memory pair', () => {
  it('initializes against the SDK McpServer and calls its tools', async () => {
    const pair: MemoryTransportPair = createMemoryTransportPair({ name: 'sdk' });
    const server = new McpServer({ name: 'sdk-server', version: '2.0.0' });
    server.registerTool('hello', { description: 'says hello' }, () => ({ content: [{ type: 'text', text: 'hi' }] }));
    await server.connect(pair.server);
    const conn = new UpstreamConnection(pair.upstream, { name: 'sdk', logger: silentLogger() });
    const init = await conn.initialize();
    expect(init.serverInfo).toEqual({ name: 'sdk-server', version: '2.0.0' });
    expect(init.protocolVersion).toBe('2025-11-25');
    expect(pair.protocolVersion).toBe('2025-11-25');
    const response = await conn.request('tools/call', { name: 'hello', arguments: {} }).response;
    expect(response).toEqual({ jsonrpc: '2.0', id: 2, result: { content: [{ type: 'text', text: 'hi' }] } });
    await conn.close();
    expect(conn.closed).toBe(true);
  });

  it('gives each request a fresh integer id and resolves it by that id, whatever order answers come in', async () => {
    const { conn, wire, send } = await peer();
    const a = conn.request('tools/call', { name: 'a' });
    const b = conn.request('tools/call', { name: 'b' });
    await flush();
    expect(wire.map((m) => (m as JsonRpcRequest).id)).toEqual([2, 3]);
    expect([a.upstreamId, b.upstreamId]).toEqual([2, 3]);
    await send({ jsonrpc: '2.0', id: 3, result: { which: 'b' } });
    await send({ jsonrpc: '2.0', id: 2, result: { which: 'a' } });
    expect(await a.response).toEqual({ jsonrpc: '2.0', id: 2, result: { which: 'a' } });
    expect(await b.response).toEqual({ jsonrpc: '2.0', id: 3, result: { which: 'b' } });
    expect(conn.inFlight).toBe(0);
  });

  it('swaps the progress token for the upstream id and restores the client token on progress', async () => {
    const { conn, wire, send } = await peer();
    const { caller, notes } = recordingCaller('s1', {});
    const call = conn.request('tools/call', { name: 'a', _meta: { progressToken: 'client-tok' } }, { caller });
    await flush();
    expect((wire[0] as JsonRpcRequest).params?._meta).toEqual({ progressToken: 2 });
    await send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 2, progress: 1 } });
    await send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 99, progress: 5 } });
    await send({ jsonrpc: '2.0', id: 2, result: {} });
    await call.response;
    expect(notes).toEqual([
      { jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 'client-tok', progress: 1 } },
    ]);
  });

  it('times a request out with SWB_ERR_UPSTREAM_TIMEOUT and cancels it upstream; progress postpones the deadline', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const { conn, wire, send } = await peer({ requestTimeoutMs: 1000 });
    const { caller } = recordingCaller('s1', {});
    const call = conn.request('tools/call', { name: 'a', _meta: { progressToken: 't' } }, { caller });
    let settled: JsonRpcResponse | undefined;
    void call.response.then((r) => (settled = r));
    await flush();
    vi.advanceTimersByTime(800);
    await send({ jsonrpc: '2.0', method: 'notifications/progress', params: { progressToken: 2, progress: 1 } });
    await flush();
    vi.advanceTimersByTime(800);
    await flush();
    expect(settled).toBeUndefined();
    vi.advanceTimersByTime(200);
    await flush();
    expect(settled).toMatchObject({
      id: 2,
      error: { code: -33022, data: { code: 'SWB_ERR_UPSTREAM_TIMEOUT' } },
    });
    expect(wire.at(-1)).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: 2, reason: 'timeout' },
    });
    // A late answer is dropped.
    await send({ jsonrpc: '2.0', id: 2, result: {} });
    await flush();
    expect(conn.inFlight).toBe(0);
  });

  it('cancels a request: the caller gets -32800 at once and the upstream notifications/cancelled', async () => {
    const { conn, wire } = await peer();
    const call = conn.request('tools/call', { name: 'slow' });
    conn.cancel(call.upstreamId, 'user gave up');
    expect(await call.response).toEqual({
      jsonrpc: '2.0',
      id: 2,
      error: { code: -32800, message: 'Request cancelled', data: { code: 'SWB_ERR_CANCELLED' } },
    });
    await flush();
    expect(wire).toEqual([
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'slow' } },
      { jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 2, reason: 'user gave up' } },
    ]);
  });

  it('forwards a server→client request to the caller in flight and answers with the upstream id', async () => {
    const { conn, wire, send } = await peer();
    const { caller, requests } = recordingCaller('s1', { sampling: {} }, { model: 'm', role: 'assistant' });
    const call = conn.request('tools/call', { name: 'sample' }, { caller });
    await flush();
    await send({ jsonrpc: '2.0', id: 'srv-1', method: 'sampling/createMessage', params: { maxTokens: 3 } });
    await flush();
    expect(requests).toEqual([{ method: 'sampling/createMessage', params: { maxTokens: 3 } }]);
    expect(wire.at(-1)).toEqual({ jsonrpc: '2.0', id: 'srv-1', result: { model: 'm', role: 'assistant' } });
    await send({ jsonrpc: '2.0', id: 2, result: {} });
    await call.response;
  });

  it('answers a server→client request with no caller in flight with -33010 SWB_ERR_ROUTE_NO_CALLER', async () => {
    const { wire, send } = await peer();
    await send({ jsonrpc: '2.0', id: 5, method: 'roots/list' });
    await flush();
    expect(wire).toEqual([
      {
        jsonrpc: '2.0',
        id: 5,
        error: {
          code: -33010,
          message:
            'switchboard: no client request of this upstream is in flight, so roots/list cannot be attributed to a client',
          data: { code: 'SWB_ERR_ROUTE_NO_CALLER' },
        },
      },
    ]);
  });

  it('refuses a server→client request whose caller lacks the capability with -33011', async () => {
    const { conn, wire, send } = await peer({ relatedRequestIds: true });
    const { caller, requests } = recordingCaller('s1', { roots: {} });
    void conn.request('tools/call', { name: 'x' }, { caller });
    await flush();
    await send({ jsonrpc: '2.0', id: 6, method: 'elicitation/create', params: {} }, 2);
    await flush();
    expect(requests).toEqual([]);
    expect((wire.at(-1) as { error?: { code: number; data: unknown } }).error).toMatchObject({
      code: -33011,
      data: { code: 'SWB_ERR_ROUTE_CLIENT_CAPABILITY' },
    });
  });

  it('answers the upstream ping itself', async () => {
    const { wire, send } = await peer();
    await send({ jsonrpc: '2.0', id: 'p', method: 'ping' });
    await flush();
    expect(wire).toEqual([{ jsonrpc: '2.0', id: 'p', result: {} }]);
  });

  it('gives a notification on a request stream to its caller and any other to onNotification', async () => {
    const { conn, send, unrelated } = await peer({ relatedRequestIds: true });
    const { caller, notes } = recordingCaller('s1', {});
    void conn.request('tools/call', { name: 'x' }, { caller });
    await flush();
    const log = { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'a' } } as const;
    await send(log, 2);
    await send({ ...log, params: { level: 'info', data: 'b' } });
    await flush();
    expect(notes).toEqual([log]);
    expect(unrelated).toEqual([{ ...log, params: { level: 'info', data: 'b' } }]);
  });

  it('fails calls in flight with SWB_ERR_UPSTREAM_CLOSED when the server end goes away, and later calls at once', async () => {
    const { pair, conn, closes } = await peer();
    const call = conn.request('tools/call', { name: 'x' });
    await pair.disconnect({ exitCode: 1, signal: null });
    expect(await call.response).toMatchObject({
      id: 2,
      error: { code: -33021, message: 'upstream "peer" is unavailable: exited with code 1' },
    });
    expect(closes).toEqual([{ exitCode: 1, signal: null }]);
    expect(await conn.request('ping', undefined).response).toMatchObject({
      id: 3,
      error: { code: -33021, data: { code: 'SWB_ERR_UPSTREAM_CLOSED' } },
    });
  });
});
