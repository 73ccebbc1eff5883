import { afterEach, describe, expect, it } from 'vitest';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createTunnelHub, type TunnelHub, type TunnelSession } from '../../../src/tunnel/hub.js';
import { createTunnelTransport } from '../../../src/tunnel/transport.js';
import { UpstreamConnection } from '../../../src/upstream/connection.js';
import { connectClient, startWsServer, type FrameClient } from './ws-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

async function setup(): Promise<{ hub: TunnelHub; client: FrameClient; session: Promise<TunnelSession> }> {
  const hub = createTunnelHub({ heartbeatTimeoutMs: 30_000, maxBufferPerSubscriber: 10, logger: silentLogger() });
  let resolveSession!: (s: TunnelSession) => void;
  const session = new Promise<TunnelSession>((r) => (resolveSession = r));
  const server = await startWsServer((ws) => resolveSession(hub.accept(ws, ANONYMOUS)));
  cleanups.push(
    () => server.close(),
    () => hub.close(),
  );
  const client = await connectClient(server.url);
  cleanups.push(() => client.ws.terminate());
  return { hub, client, session };
}

/** A fake tunnelled MCP server: answers initialize and tools/list; never answers `hang`. */
function fakeServer(client: FrameClient): void {
  client.ws.on('message', (data: Buffer) => {
    const frame = JSON.parse(data.toString('utf8')) as { type: string; message?: Record<string, unknown> };
    const m = frame.message;
    if (frame.type !== 'message' || !m || !('id' in m) || !('method' in m)) return;
    const reply = (result: unknown): void =>
      client.send({ type: 'message', message: { jsonrpc: '2.0', id: m.id, result } });
    if (m.method === 'initialize') {
      reply({ protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'fake', version: '1' } });
    } else if (m.method === 'tools/list') {
      reply({ tools: [{ name: 'x', inputSchema: { type: 'object' } }] });
      // a notification and a server→client request travel the same envelope
      client.send({ type: 'notification', message: { jsonrpc: '2.0', method: 'notifications/tools/list_changed' } });
    }
  });
}

describe('tunnel transport under UpstreamConnection', () => {
  it('start() waits for registration, then initialize and calls go through the tunnel', async () => {
    const { client, session } = await setup();
    fakeServer(client);
    const transport = createTunnelTransport(await session);
    const notifications: string[] = [];
    const conn = new UpstreamConnection(transport, {
      name: 'laptop',
      logger: silentLogger(),
      onNotification: (n) => notifications.push(n.method),
    });
    const initializing = conn.initialize();
    client.send({ type: 'register', server: { name: 'laptop' } });
    expect(await client.next()).toMatchObject({ type: 'register_ack' });
    expect(await initializing).toMatchObject({ serverInfo: { name: 'fake' } });
    expect(transport.description).toMatch(/^tunnel laptop session=/);
    const res = await conn.request('tools/list', undefined).response;
    expect(res).toMatchObject({ result: { tools: [{ name: 'x' }] } });
    await expect.poll(() => notifications).toEqual(['notifications/tools/list_changed']);
  });

  it('fails the calls in flight promptly when the tunnel drops mid-call', async () => {
    const { client, session } = await setup();
    fakeServer(client);
    const conn = new UpstreamConnection(createTunnelTransport(await session), {
      name: 'laptop',
      logger: silentLogger(),
    });
    client.send({ type: 'register', server: { name: 'laptop' } });
    await conn.initialize();
    const call = conn.request('hang', undefined, { timeoutMs: 60_000 });
    await expect.poll(() => conn.inFlight).toBe(1);
    const started = Date.now();
    client.ws.terminate();
    const res = await call.response;
    expect(Date.now() - started).toBeLessThan(5000);
    expect(res).toMatchObject({ error: { data: { code: 'SWB_ERR_UPSTREAM_CLOSED' } } });
    expect(conn.closed).toBe(true);
  });

  it('start() rejects when the session ends before registering; close() keeps the session', async () => {
    const first = await setup();
    const t1 = createTunnelTransport(await first.session);
    const starting = t1.start();
    first.client.ws.close();
    await expect(starting).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_UNAVAILABLE' });

    const second = await setup();
    const s = await second.session;
    second.client.send({ type: 'register', server: { name: 'keep' } });
    await second.client.next();
    const t2 = createTunnelTransport(s);
    let closes = 0;
    t2.onclose = () => closes++;
    await t2.start();
    await t2.close();
    expect(closes).toBe(1);
    await expect(t2.send({ jsonrpc: '2.0', method: 'x' })).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    expect(s.state).toBe('registered');
    expect(second.hub.list()).toHaveLength(1);
  });
});
