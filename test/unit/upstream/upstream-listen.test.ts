/**
 * `subscriptions/listen` towards a modern upstream (basic/patterns/subscriptions), on a
 * hand-driven in-memory peer so the exact wire is seen: the filter of the listen request, the
 * acknowledgement before anything counts, the subscription id on stdio-like transports, one
 * request replaced by the next when the set of URIs changes, and the `ttlMs` refresh kept as the
 * fallback while no stream is open.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { StdioServer } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JsonObject, JsonRpcMessage, JsonRpcNotification } from '../../../src/protocol/jsonrpc.js';
import { createMemoryTransportPair } from '../../../src/upstream/memory-transport.js';
import { Upstream, type UpstreamEvent } from '../../../src/upstream/upstream.js';
import { until } from '../../helpers/memory-server.js';

const V = '2026-07-28';
const SUB = 'io.modelcontextprotocol/subscriptionId';

interface PeerOptions {
  /** Capabilities the DiscoverResult declares. */
  capabilities?: JsonObject;
  /** URIs the acknowledgement leaves out. */
  refuse?: string[];
}

/**
 * A modern peer: answers `server/discover` and `tools/list` (a new tool name per listing, `ttlMs`
 * 1000), acknowledges each `subscriptions/listen` with what it asked minus `refuse`, and keeps it
 * open until cancelled or {@link end}ed.
 */
function peer(options: PeerOptions = {}) {
  const pair = createMemoryTransportPair({ name: 'peer' });
  const wire: JsonRpcMessage[] = [];
  const open = new Map<number, JsonObject>();
  let listed = 0;
  const send = (m: JsonRpcMessage) => void pair.server.send(m);
  pair.server.onmessage = (raw) => {
    const m = raw as JsonRpcMessage;
    wire.push(m);
    if (!('method' in m)) return;
    if (m.method === 'notifications/cancelled') {
      open.delete((m.params as JsonObject).requestId as number);
      return;
    }
    if (!('id' in m)) return;
    const reply = (result: JsonObject) => send({ jsonrpc: '2.0', id: m.id, result });
    switch (m.method) {
      case 'server/discover':
        reply({
          resultType: 'complete',
          supportedVersions: [V],
          capabilities: options.capabilities ?? {
            tools: { listChanged: true },
            resources: { subscribe: true, listChanged: true },
          },
        });
        return;
      case 'tools/list':
        listed++;
        reply({ tools: [{ name: `t${listed}`, inputSchema: { type: 'object' } }], ttlMs: 1000 });
        return;
      case 'resources/list':
      case 'resources/templates/list':
        reply({ [m.method === 'resources/list' ? 'resources' : 'resourceTemplates']: [] });
        return;
      case 'subscriptions/listen': {
        const asked = { ...((m.params as JsonObject).notifications as JsonObject) };
        if (Array.isArray(asked.resourceSubscriptions)) {
          const uris = asked.resourceSubscriptions.filter((u) => !(options.refuse ?? []).includes(u as string));
          if (uris.length > 0) asked.resourceSubscriptions = uris;
          else delete asked.resourceSubscriptions;
        }
        open.set(m.id as number, asked);
        send({
          jsonrpc: '2.0',
          method: 'notifications/subscriptions/acknowledged',
          params: { _meta: { [SUB]: m.id }, notifications: asked },
        });
        return;
      }
      default:
        send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'no' } });
    }
  };
  void pair.server.start();
  const listens = () => wire.filter((m) => 'method' in m && m.method === 'subscriptions/listen');
  return {
    pair,
    wire,
    open,
    listed: () => listed,
    listens,
    /** The filter of the last listen request sent. */
    lastFilter: () => (listens().at(-1) as { params: JsonObject }).params.notifications as JsonObject,
    /** Sends a notification on every open stream whose filter accepts it, tagged with its id. */
    announce(method: string, params: JsonObject = {}) {
      for (const [id, filter] of open) {
        const uri = params.uri as string | undefined;
        const wanted =
          method === 'notifications/resources/updated'
            ? (filter.resourceSubscriptions as string[] | undefined)?.includes(uri!) === true
            : method === 'notifications/tools/list_changed' && filter.toolsListChanged === true;
        if (wanted) send({ jsonrpc: '2.0', method, params: { ...params, _meta: { [SUB]: id } } });
      }
    },
    /** Ends every open stream with a graceful closure (§Graceful Closure). */
    end() {
      for (const id of open.keys())
        send({ jsonrpc: '2.0', id, result: { resultType: 'complete', _meta: { [SUB]: id } } });
      open.clear();
    },
  };
}

describe('subscriptions/listen towards a modern upstream', () => {
  const running: Upstream[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.allSettled(running.splice(0).map((u) => u.stop()));
  });

  function upstream(p: ReturnType<typeof peer>, reconnectMs = 500) {
    const events: UpstreamEvent[] = [];
    const u = new Upstream({
      name: 'm',
      config: StdioServer.parse({ command: 'in-memory' }),
      logger: silentLogger(),
      gatewayVersion: '9.9.9',
      attributionWaitMs: 1000,
      createTransport: () => p.pair.upstream,
      onEvent: (e) => events.push(e),
      listenReconnect: { initialDelayMs: reconnectMs, maxDelayMs: reconnectMs },
    });
    running.push(u);
    return { u, events };
  }

  const ctx = (sessionId: string) => ({ sessionId, principalId: 'anonymous' });
  const notifications = (events: UpstreamEvent[]): JsonRpcNotification[] =>
    events.flatMap((e) => (e.type === 'notification' ? [e.notification] : []));

  it('opens one listen request for the list changes the upstream declares; its list_changed reloads the catalog', async () => {
    const p = peer();
    const { u, events } = upstream(p);
    await u.start();
    await until(() => p.open.size === 1);
    expect(p.listens()).toHaveLength(1);
    expect(p.lastFilter()).toEqual({ toolsListChanged: true, resourcesListChanged: true });
    const before = u.catalog.tools[0]?.name;
    await until(() => p.listed() >= 2); // the catalog is loaded again once the stream is open
    const listed = p.listed();
    p.announce('notifications/tools/list_changed');
    await until(() => p.listed() === listed + 1);
    await until(() => u.catalog.tools[0]?.name !== before);
    expect(events.filter((e) => e.type === 'catalog').length).toBeGreaterThan(0);
    // list_changed is the gateway's to announce, not forwarded as it is.
    expect(notifications(events)).toEqual([]);
  });

  it('asks for nothing the upstream does not declare: no list changes, no URIs without resources.subscribe', async () => {
    const p = peer({ capabilities: { tools: {}, resources: {} } });
    const { u } = upstream(p);
    await u.start();
    const refused = await u.subscribe(ctx('s1'), 'a://1', undefined);
    expect(refused).toMatchObject({ error: { data: { code: 'SWB_ERR_UPSTREAM_SUBSCRIPTION_REFUSED' } } });
    expect(u.subscribersOf('a://1').size).toBe(0);
    await new Promise((r) => setImmediate(r));
    expect(p.listens()).toEqual([]);
  });

  it('answers a subscription once the acknowledgement lists its URI, and refuses one it leaves out', async () => {
    const p = peer({ refuse: ['x://refused'] });
    const { u } = upstream(p);
    await u.start();
    const ok = await u.subscribe(ctx('s1'), 'a://1', undefined);
    expect(ok).toMatchObject({ result: {} });
    expect(p.lastFilter()).toMatchObject({ resourceSubscriptions: ['a://1'] });
    expect([...u.subscribersOf('a://1')]).toEqual(['s1']);

    const refused = await u.subscribe(ctx('s1'), 'x://refused', undefined);
    expect(refused).toMatchObject({ error: { data: { code: 'SWB_ERR_UPSTREAM_SUBSCRIPTION_REFUSED' } } });
    expect(u.subscribersOf('x://refused').size).toBe(0);
    // The listen request is opened again without it.
    await until(() => JSON.stringify(p.lastFilter().resourceSubscriptions) === '["a://1"]' && p.open.size === 1);
  });

  it('replaces the listen request when the URIs change, cancelling the old one after the new one is acknowledged', async () => {
    const p = peer();
    const { u } = upstream(p);
    await u.start();
    await until(() => p.open.size === 1);
    const [first] = [...p.open.keys()];
    await u.subscribe(ctx('s1'), 'a://1', undefined);
    await until(() => p.open.size === 1 && !p.open.has(first!));
    const cancelled = p.wire.filter((m) => 'method' in m && m.method === 'notifications/cancelled');
    expect(cancelled.map((m) => (m as { params: JsonObject }).params.requestId)).toEqual([first]);
    // A second session on the same URI needs no new request.
    const count = p.listens().length;
    await u.subscribe(ctx('s2'), 'a://1', undefined);
    expect(p.listens()).toHaveLength(count);
  });

  it('delivers resources/updated of the open stream to its subscribers, without the subscription id', async () => {
    const p = peer();
    const { u, events } = upstream(p);
    await u.start();
    await u.subscribe(ctx('s1'), 'a://1', undefined);
    p.announce('notifications/resources/updated', { uri: 'a://1' });
    await until(() => notifications(events).length === 1);
    expect(notifications(events)[0]).toEqual({
      jsonrpc: '2.0',
      method: 'notifications/resources/updated',
      params: { uri: 'a://1' },
    });
    expect([...u.subscribersOf('a://1')]).toEqual(['s1']);
  });

  it('opens the listen request again without a URI once its last session unsubscribes or ends', async () => {
    const p = peer();
    const { u } = upstream(p);
    await u.start();
    await u.subscribe(ctx('s1'), 'a://1', undefined);
    await u.subscribe(ctx('s2'), 'a://1', undefined);
    await u.subscribe(ctx('s2'), 'b://2', undefined);
    await until(() => JSON.stringify(p.lastFilter().resourceSubscriptions) === '["a://1","b://2"]');
    await u.unsubscribe(ctx('s2'), 'b://2', undefined);
    await until(() => JSON.stringify(p.lastFilter().resourceSubscriptions) === '["a://1"]' && p.open.size === 1);
    await u.unsubscribe(ctx('s1'), 'a://1', undefined);
    await new Promise((r) => setImmediate(r));
    expect(p.lastFilter().resourceSubscriptions).toEqual(['a://1']); // s2 still wants it
    u.releaseSession('s2', 'anonymous');
    await until(() => p.lastFilter().resourceSubscriptions === undefined && p.open.size === 1);
    expect(p.wire.filter((m) => 'method' in m && m.method === 'resources/unsubscribe')).toEqual([]);
  });

  it('refreshes on ttlMs only while no stream announces list changes, and listens again after a backoff', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const p = peer();
    const { u } = upstream(p, 60_000);
    await u.start();
    await until(() => p.open.size === 1);
    await until(() => p.listed() === 2); // the load once the stream is open
    await vi.advanceTimersByTimeAsync(30_000);
    expect(p.listed()).toBe(2); // no ttlMs refresh while the stream is open

    p.end(); // graceful closure: the stream is gone
    await until(() => p.listens().length === 1 && p.open.size === 0);
    await vi.advanceTimersByTimeAsync(5_500); // ttlMs 1 s, raised to the 5 s floor
    await until(() => p.listed() === 3);
    expect(p.listens()).toHaveLength(1);

    await vi.advanceTimersByTimeAsync(60_000); // the backoff delay
    await until(() => p.listens().length === 2 && p.open.size === 1);
  });

  it('cancels its listen request when the upstream stops, and opens no other', async () => {
    const p = peer();
    const { u } = upstream(p);
    await u.start();
    await until(() => p.open.size === 1);
    await u.stop();
    expect(p.listens()).toHaveLength(1);
  });
});
