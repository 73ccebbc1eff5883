/**
 * The whole chain the gateway will wire: `runTunnel` (real server-everything over stdio) → real
 * WebSocket → TunnelHub → createTunnelTransport → UpstreamConnection.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import { runTunnel } from '../../../src/cli/tunnel.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JsonRpcNotification } from '../../../src/protocol/jsonrpc.js';
import { createTunnelHub, type TunnelSession } from '../../../src/tunnel/hub.js';
import { createTunnelTransport } from '../../../src/tunnel/transport.js';
import { UpstreamConnection, type Caller } from '../../../src/upstream/connection.js';
import { EVERYTHING_ENTRY } from '../../helpers/gateway.js';
import { startWsServer } from './ws-helpers.js';

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

describe('tunnel chain with server-everything', () => {
  it('lists and calls tools, relays progress and answers a sampling request through the tunnel', async () => {
    const registered: TunnelSession[] = [];
    const hub = createTunnelHub({
      heartbeatTimeoutMs: 30_000,
      maxBufferPerSubscriber: 100,
      logger: silentLogger(),
      onRegister: (session) => {
        registered.push(session);
        return { ok: true };
      },
    });
    const server = await startWsServer((ws) => hub.accept(ws, ANONYMOUS));
    cleanups.push(
      () => server.close(),
      () => hub.close(),
    );
    const abort = new AbortController();
    const code = runTunnel(
      {
        gateway: server.url,
        token: 't',
        command: [process.execPath, EVERYTHING_ENTRY, 'stdio'],
        signal: abort.signal,
        handleSignals: false,
        logger: silentLogger(),
      },
      { out: () => undefined, err: () => undefined },
    );
    cleanups.push(async () => {
      abort.abort();
      await code;
    });
    await expect.poll(() => registered.length, { timeout: 20_000 }).toBe(1);
    const session = registered[0]!;
    expect(session.server?.name).toBe('mcp-servers-everything');

    const conn = new UpstreamConnection(createTunnelTransport(session), {
      name: session.server!.name,
      logger: silentLogger(),
      exclusiveAttribution: true,
    });
    const init = await conn.initialize();
    expect(init).toMatchObject({ serverInfo: { name: 'mcp-servers/everything' } });
    const list = await conn.request('tools/list', undefined).response;
    expect(list).toHaveProperty('result.tools');
    const tools = ('result' in list ? list.result.tools : []) as Array<{ name: string }>;
    const names = tools.map((t) => t.name);
    expect(names).toEqual(
      expect.arrayContaining(['echo', 'trigger-long-running-operation', 'trigger-sampling-request']),
    );

    const echo = await conn.request('tools/call', { name: 'echo', arguments: { message: 'through the tunnel' } })
      .response;
    expect(JSON.stringify(echo)).toContain('through the tunnel');

    const progress: JsonRpcNotification[] = [];
    const sampled: string[] = [];
    const caller: Caller = {
      sessionId: 'client-1',
      clientCapabilities: { sampling: {} },
      notify: (n) => progress.push(n),
      request: async (method) => {
        sampled.push(method);
        return { result: { role: 'assistant', content: { type: 'text', text: 'sampled!' }, model: 'm' } };
      },
    };
    const long = await conn.request(
      'tools/call',
      {
        name: 'trigger-long-running-operation',
        arguments: { duration: 0.2, steps: 2 },
        _meta: { progressToken: 'p1' },
      },
      { caller },
    ).response;
    expect(JSON.stringify(long)).toContain('Long running operation completed');
    expect(progress.filter((n) => n.method === 'notifications/progress').map((n) => n.params?.progressToken)).toEqual([
      'p1',
      'p1',
    ]);

    const sampling = await conn.request(
      'tools/call',
      { name: 'trigger-sampling-request', arguments: { prompt: 'hi', maxTokens: 5 } },
      { caller },
    ).response;
    expect(sampled).toEqual(['sampling/createMessage']);
    expect(JSON.stringify(sampling)).toContain('sampled!');

    abort.abort();
    expect(await code).toBe(0);
    await expect.poll(() => conn.closed).toBe(true);
  });
});
