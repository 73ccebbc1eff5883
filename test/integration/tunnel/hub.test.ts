import { afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JsonRpcMessage } from '../../../src/protocol/jsonrpc.js';
import {
  createTunnelHub,
  type RegisterDecision,
  type TunnelCloseReason,
  type TunnelHub,
  type TunnelHubOptions,
  type TunnelSession,
} from '../../../src/tunnel/hub.js';
import { connectClient, startWsServer, type FrameClient } from './ws-helpers.js';

const OWNER: Principal = { id: 'token:alice', kind: 'token', subject: 'alice', permissions: ['servers.manage'] };

interface Harness {
  hub: TunnelHub;
  url: string;
  clock: { now: number };
  unregistered: Array<{ id: string; reason: TunnelCloseReason }>;
  connect(headers?: Record<string, string>): Promise<FrameClient>;
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function harness(extra: Partial<TunnelHubOptions> = {}): Promise<Harness> {
  const clock = { now: 1_000_000 };
  const unregistered: Harness['unregistered'] = [];
  const hub = createTunnelHub({
    heartbeatTimeoutMs: 30_000,
    maxBufferPerSubscriber: 100,
    clock: () => clock.now,
    logger: silentLogger(),
    onUnregister: (s, reason) => unregistered.push({ id: s.id, reason }),
    ...extra,
  });
  const server = await startWsServer((ws) => hub.accept(ws, OWNER));
  cleanups.push(
    () => server.close(),
    () => hub.close(),
  );
  return {
    hub,
    url: server.url,
    clock,
    unregistered,
    connect: async (headers) => {
      const c = await connectClient(server.url, headers);
      cleanups.push(() => c.ws.terminate());
      return c;
    },
  };
}

async function registered(h: Harness, name = 'laptop'): Promise<{ client: FrameClient; sessionId: string }> {
  const client = await h.connect();
  client.send({ type: 'register', server: { name, description: 'a tunnelled server' } });
  const ack = await client.next();
  expect(ack.type).toBe('register_ack');
  return { client, sessionId: ack.sessionId as string };
}

/** A fake tunnel client: answers every JSON-RPC request with an echo of its method and params. */
function echo(client: FrameClient): void {
  client.ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as { type: string; message?: Record<string, unknown> };
    const m = frame.message;
    if (frame.type === 'message' && m && 'method' in m && 'id' in m) {
      client.send({
        type: 'message',
        message: { jsonrpc: '2.0', id: m.id, result: { echo: m.method, params: m.params } },
      });
    }
  });
}

describe('tunnel hub over real WebSockets', () => {
  it('registers with a server-generated session id, ignoring a client-supplied one', async () => {
    const seen: string[] = [];
    const h = await harness({
      onRegister: (session, server): RegisterDecision => {
        seen.push(`${session.id}:${server.name}`);
        return { ok: true };
      },
    });
    const client = await h.connect({ 'x-session-id': 'chosen-by-client' });
    client.send({ type: 'register', sessionId: 'chosen-by-client', server: { name: 'laptop', extra: { v: 1 } } });
    const ack = await client.next();
    expect(ack).toMatchObject({ type: 'register_ack', status: 'success', heartbeatIntervalMs: 10_000 });
    expect(ack.sessionId).not.toBe('chosen-by-client');
    expect(ack.sessionId).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen).toEqual([`${String(ack.sessionId)}:laptop`]);
    const session = h.hub.get(ack.sessionId as string)!;
    expect(session.state).toBe('registered');
    expect(session.server).toEqual({ name: 'laptop', extra: { v: 1 } });
    await session.registered;
    const info = session.info();
    expect(info).toMatchObject({ sessionId: ack.sessionId, owner: { id: 'token:alice', subject: 'alice' } });
    expect(info.messagesIn).toBe(1);
    expect(info.messagesOut).toBe(1);
    expect(info.bytesIn).toBeGreaterThan(20);
    expect(h.hub.list().map((s) => s.id)).toEqual([ack.sessionId]);
  });

  it('refuses invalid names and onRegister refusals with an error, and the session survives', async () => {
    const h = await harness({
      onRegister: (_s, server) =>
        server.name === 'taken' ? { ok: false, reason: 'server "taken" already exists' } : { ok: true },
    });
    const client = await h.connect();
    client.send({ type: 'register', server: { name: '-bad name' } });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SWB_ERR_TUNNEL_REGISTER_REFUSED' });
    client.send({ type: 'register', server: { name: 'taken' } });
    expect(await client.next()).toMatchObject({
      type: 'error',
      code: 'SWB_ERR_TUNNEL_REGISTER_REFUSED',
      message: 'server "taken" already exists',
    });
    client.send({ type: 'register', server: { name: 'free' } });
    expect(await client.next()).toMatchObject({ type: 'register_ack' });
    client.send({ type: 'register', server: { name: 'again' } });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SWB_ERR_TUNNEL_REGISTER_REFUSED' });
  });

  it('answers malformed frames with an error and keeps the session', async () => {
    const h = await harness();
    const client = await h.connect();
    client.send('{not json');
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SWB_ERR_TUNNEL_INVALID_MESSAGE' });
    client.send({ type: 'teleport' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SWB_ERR_TUNNEL_INVALID_MESSAGE' });
    client.send({ type: 'message', message: { jsonrpc: '2.0', id: 1, result: {} } });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SWB_ERR_TUNNEL_NOT_REGISTERED' });
    client.send({ type: 'register_ack', sessionId: 'x', status: 'success' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SWB_ERR_TUNNEL_INVALID_MESSAGE' });
    client.send({ type: 'register', server: { name: 'ok' } });
    expect(await client.next()).toMatchObject({ type: 'register_ack' });
    expect(h.hub.list()).toHaveLength(1);
  });

  it('answers each heartbeat exactly once and never pings back', async () => {
    const h = await harness();
    const { client } = await registered(h);
    client.send({ type: 'heartbeat' });
    expect(await client.next()).toMatchObject({ type: 'heartbeat_ack' });
    // The next frame after the ack is the answer to the next thing we send: no extra heartbeat.
    client.send('{');
    expect(await client.next()).toMatchObject({ type: 'error' });
    client.send({ type: 'heartbeat_ack' });
    expect(await client.next()).toMatchObject({ type: 'error', code: 'SWB_ERR_TUNNEL_INVALID_MESSAGE' });
  });

  it('evicts a session with no frame for heartbeatTimeoutMs on sweep (injected clock)', async () => {
    const h = await harness();
    const { client, sessionId } = await registered(h);
    h.clock.now += 20_000;
    client.send({ type: 'heartbeat' });
    await client.next();
    const lastHeard = h.clock.now;
    expect(h.hub.sweep(lastHeard + 29_999)).toEqual([]);
    expect(h.hub.sweep(lastHeard + 30_000)).toEqual([sessionId]);
    expect(await client.closed).toEqual({ code: 4000, reason: 'heartbeat timeout' });
    expect(h.hub.get(sessionId)).toBeUndefined();
    expect(h.unregistered).toEqual([{ id: sessionId, reason: 'heartbeat-timeout' }]);
  });

  it('request() resolves with the tunnelled server response under the caller id', async () => {
    const h = await harness();
    const { client, sessionId } = await registered(h);
    echo(client);
    const session = h.hub.get(sessionId)!;
    const others: JsonRpcMessage[] = [];
    session.onMessage((m) => others.push(m));
    const response = await h.hub.request(
      sessionId,
      { jsonrpc: '2.0', id: 'op-7', method: 'tools/list', params: { a: 1 } },
      5000,
    );
    expect(response).toEqual({ jsonrpc: '2.0', id: 'op-7', result: { echo: 'tools/list', params: { a: 1 } } });
    // The operator's response is not seen by the gateway's own listener.
    expect(others).toEqual([]);
    // Gateway traffic still reaches the listener.
    session.send({ jsonrpc: '2.0', id: 1, method: 'ping' });
    await expect.poll(() => others).toEqual([{ jsonrpc: '2.0', id: 1, result: { echo: 'ping' } }]);
  });

  it('request() fails with TUNNEL_TIMEOUT, TUNNEL_CLOSED and SESSION_NOT_FOUND', async () => {
    const h = await harness();
    const { client, sessionId } = await registered(h);
    await expect(h.hub.request(sessionId, { jsonrpc: '2.0', id: 1, method: 'x' }, 30)).rejects.toMatchObject({
      code: 'SWB_ERR_TUNNEL_TIMEOUT',
    });
    const pending = h.hub.request(sessionId, { jsonrpc: '2.0', id: 2, method: 'x' }, 10_000);
    client.ws.close();
    await expect(pending).rejects.toMatchObject({ code: 'SWB_ERR_TUNNEL_CLOSED' });
    await expect(h.hub.request('nope', { jsonrpc: '2.0', id: 3, method: 'x' }, 10)).rejects.toBeInstanceOf(
      GatewayError,
    );
    await expect(h.hub.request('nope', { jsonrpc: '2.0', id: 3, method: 'x' }, 10)).rejects.toMatchObject({
      code: 'SWB_ERR_TUNNEL_SESSION_NOT_FOUND',
    });
  });

  it('ends the session on unregister and on operator disconnect, calling onUnregister once', async () => {
    const h = await harness();
    const a = await registered(h, 'a');
    const b = await registered(h, 'b');
    const closes: TunnelCloseReason[] = [];
    (h.hub.get(a.sessionId) as TunnelSession).onClose((r) => closes.push(r));
    a.client.send({ type: 'unregister' });
    expect(await a.client.closed).toEqual({ code: 1000, reason: 'unregistered' });
    expect(h.hub.disconnect(b.sessionId)).toBe(true);
    expect(h.hub.disconnect(b.sessionId)).toBe(false);
    expect(await b.client.closed).toEqual({ code: 1000, reason: 'disconnected by operator' });
    expect(closes).toEqual(['unregistered']);
    expect(h.unregistered).toEqual([
      { id: a.sessionId, reason: 'unregistered' },
      { id: b.sessionId, reason: 'disconnected' },
    ]);
    expect(h.hub.list()).toEqual([]);
  });

  it('feeds a subscriber every message and lifecycle event, with a bounded buffer', async () => {
    const h = await harness({ maxBufferPerSubscriber: 4 });
    const { client, sessionId } = await registered(h);
    echo(client);
    let readable = 0;
    const sub = h.hub.subscribe(sessionId, () => readable++);
    const first = sub.drain();
    expect(first.events.map((e) => e.type)).toEqual(['connected', 'registered']);
    expect(first.dropped).toBe(0);
    await h.hub.request(sessionId, { jsonrpc: '2.0', id: 9, method: 'tools/list' }, 5000);
    const second = sub.drain();
    expect(second.events).toMatchObject([
      { type: 'message', direction: 'out', message: { method: 'tools/list' } },
      { type: 'message', direction: 'in', message: { result: { echo: 'tools/list' } } },
    ]);
    // Six more events without draining: only the newest four are kept.
    for (let i = 0; i < 3; i++) await h.hub.request(sessionId, { jsonrpc: '2.0', id: i, method: `m${i}` }, 5000);
    const third = sub.drain();
    expect(third.dropped).toBe(2);
    expect(third.events.map((e) => (e.type === 'message' ? `${e.direction}` : e.type))).toEqual([
      'out',
      'in',
      'out',
      'in',
    ]);
    expect(third.events[3]).toMatchObject({ message: { result: { echo: 'm2' } } });
    expect(sub.droppedTotal).toBe(2);
    h.hub.disconnect(sessionId);
    expect(sub.drain().events).toMatchObject([{ type: 'closed', reason: 'disconnected' }]);
    expect(sub.closed).toBe(true);
    expect(readable).toBeGreaterThan(0);
  });

  it('ends a session whose peer stops reading once over maxBufferedBytes, reporting the overflow, while other tunnels keep working', async () => {
    const overflows: Array<{ sessionId: string; queuedBytes: number; queuedFrames: number }> = [];
    const h = await harness({ maxBufferedBytes: 256 * 1024, onOverflow: (o) => overflows.push(o) });
    const slow = await registered(h, 'slow');
    const fast = await registered(h, 'fast');
    echo(fast.client);
    slow.client.ws.pause(); // the peer stops reading: kernel buffers fill, then the hub's queue
    const session = h.hub.get(slow.sessionId)!;
    const payload = 'x'.repeat(16 * 1024);
    const MAX_FRAMES = 4000; // ~64 MB: far past the budget plus kernel buffers
    let sent = 0;
    while (sent < MAX_FRAMES && session.state !== 'closed') {
      session.send({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: payload } });
      sent++;
      if (sent % 8 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(session.state).toBe('closed');
    expect(sent).toBeLessThan(MAX_FRAMES);
    expect(h.unregistered).toEqual([{ id: slow.sessionId, reason: 'overflow' }]);
    expect(overflows).toHaveLength(1);
    expect(overflows[0]!.sessionId).toBe(slow.sessionId);
    expect(overflows[0]!.queuedBytes).toBeGreaterThan(256 * 1024);
    expect(() => session.send({ jsonrpc: '2.0', method: 'ping', id: 1 })).toThrow(
      expect.objectContaining({ code: 'SWB_ERR_TUNNEL_CLOSED' }),
    );
    // The other tunnel is unaffected.
    const answer = await h.hub.request(fast.sessionId, { jsonrpc: '2.0', id: 7, method: 'tools/list' }, 5000);
    expect(answer).toEqual({ jsonrpc: '2.0', id: 7, result: { echo: 'tools/list' } });
  });
});
