import { afterEach, describe, expect, it, vi } from 'vitest';
import { Upstream, type SlotContext, type UpstreamEvent } from '../../../src/upstream/upstream.js';
import { StdioServer } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { GatewayError } from '../../../src/errors.js';
import type { JsonObject } from '../../../src/protocol/jsonrpc.js';
import { MemoryUpstream, until } from '../../helpers/memory-server.js';

const running: Upstream[] = [];
afterEach(async () => {
  vi.useRealTimers();
  await Promise.allSettled(running.splice(0).map((u) => u.stop()));
});

function upstream(mem: MemoryUpstream, config: Record<string, unknown> = {}, now?: () => number) {
  const events: UpstreamEvent[] = [];
  const u = new Upstream({
    name: 'a',
    config: StdioServer.parse({ command: 'in-memory', ...config }),
    logger: silentLogger(),
    gatewayVersion: '9.9.9',
    attributionWaitMs: 1000,
    createTransport: mem.createTransport,
    onEvent: (e) => events.push(e),
    ...(now ? { now } : {}),
  });
  running.push(u);
  return { u, events };
}

const slot = (sessionId: string, principalId = 'anonymous'): SlotContext => ({ sessionId, principalId });
const states = (events: UpstreamEvent[]) => events.flatMap((e) => (e.type === 'state' ? [e.state] : []));
const toolNames = (u: Upstream) => u.catalog.tools.map((t) => t.name);

describe('Upstream isolation', () => {
  it('shares one connection among every session and principal under shared isolation', async () => {
    const mem = new MemoryUpstream();
    const { u } = upstream(mem);
    await u.start();
    const c1 = await u.acquire(slot('s1', 'alice'));
    const c2 = await u.acquire(slot('s2', 'bob'));
    expect(c2).toBe(c1);
    expect(mem.servers).toHaveLength(1);
    expect(u.connectionCount).toBe(1);
  });

  it('gives each session its own child under session isolation, after stopping the start-up probe', async () => {
    const mem = new MemoryUpstream();
    const { u } = upstream(mem, { isolation: 'session' });
    await u.start();
    expect(u.connectionCount).toBe(0);
    const a1 = await u.acquire(slot('s1', 'alice'));
    const a2 = await u.acquire(slot('s1', 'alice'));
    const b = await u.acquire(slot('s2', 'alice'));
    expect(a2).toBe(a1);
    expect(b).not.toBe(a1);
    expect([mem.servers.length, u.connectionCount]).toEqual([3, 2]);
    u.releaseSession('s1', 'alice');
    await until(() => a1.closed);
    expect(u.connectionCount).toBe(1);
  });

  it('gives each principal its own child under user isolation', async () => {
    const mem = new MemoryUpstream();
    const { u } = upstream(mem, { isolation: 'user' });
    await u.start();
    const alice1 = await u.acquire(slot('s1', 'alice'));
    const alice2 = await u.acquire(slot('s2', 'alice'));
    const bob = await u.acquire(slot('s3', 'bob'));
    expect(alice2).toBe(alice1);
    expect(bob).not.toBe(alice1);
    expect(u.connectionCount).toBe(2);
  });

  it('refuses a child past maxProcesses with SWB_ERR_UPSTREAM_PROCESS_LIMIT', async () => {
    const { u } = upstream(new MemoryUpstream(), { isolation: 'session', maxProcesses: 1 });
    await u.start();
    await u.acquire(slot('s1'));
    await expect(u.acquire(slot('s2'))).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_PROCESS_LIMIT' });
  });

  // releaseSession() while the session's child is still starting removes the slot; the starting
  // connection must then be closed (nothing else would ever release it) and the caller told.
  it('stops a session-isolated child whose session ended while it was starting', async () => {
    const mem = new MemoryUpstream();
    const { u } = upstream(mem, { isolation: 'session' });
    await u.start();
    const starting = u.acquire(slot('s1'));
    u.releaseSession('s1', 'anonymous');
    await expect(starting).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    expect(mem.servers).toHaveLength(2); // the child was started …
    expect(u.connectionCount).toBe(0); // … and no slot holds it
  });

  it('reaps an idle isolated child once no session holds it and idleTimeout has passed', async () => {
    let now = 0;
    const { u } = upstream(new MemoryUpstream(), { isolation: 'user', idleTimeout: 1000 }, () => now);
    await u.start();
    const conn = await u.acquire(slot('s1', 'alice'));
    expect(u.reapIdle()).toBe(0);
    u.releaseSession('s1', 'alice');
    now = 999;
    expect(u.reapIdle()).toBe(0);
    now = 1000;
    expect(u.reapIdle()).toBe(1);
    await until(() => conn.closed);
    expect(u.connectionCount).toBe(0);
  });
});

describe('Upstream catalog', () => {
  it('fetches every page of every list at start, following nextCursor', async () => {
    const tools: JsonObject[] = ['t1', 't2', 't3', 't4', 't5'].map((name) => ({ name }));
    const mem = new MemoryUpstream({ tools, prompts: [{ name: 'p1' }], pageSize: 2 });
    const { u, events } = upstream(mem);
    await u.start();
    expect(toolNames(u)).toEqual(['t1', 't2', 't3', 't4', 't5']);
    expect(u.catalog.prompts).toEqual([{ name: 'p1' }]);
    expect(mem.received.filter((r) => r.method === 'tools/list').map((r) => r.params?.cursor)).toEqual([
      undefined,
      '2',
      '4',
    ]);
    expect(states(events)).toEqual(['ready']);
    expect(u.state).toBe('ready');
    expect(u.initializeResult?.serverInfo).toEqual({ name: 'memory', version: '1.0.0' });
  });

  it('refreshes the list named by list_changed and reports exactly what changed', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'old' }] });
    const { u, events } = upstream(mem);
    await u.start();
    const version = u.catalogVersion;
    const before = mem.received.length;
    await mem.setTools([{ name: 'old' }, { name: 'new' }]);
    await until(() => events.some((e) => e.type === 'catalog' && u.catalogVersion > version));
    expect(toolNames(u)).toEqual(['old', 'new']);
    expect(u.catalogVersion).toBe(version + 1);
    expect(events.filter((e) => e.type === 'catalog').map((e) => (e.type === 'catalog' ? e.changed : []))).toEqual([
      ['tools'],
      ['tools'],
    ]);
    expect(mem.received.slice(before).map((r) => r.method)).toEqual(['tools/list']);
  });
});

describe('Upstream supervision', () => {
  it('restarts a shared child that went away, with backoff, and serves calls again', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'echo' }] });
    let now = 0;
    const { u, events } = upstream(mem, { restart: { initialDelay: 1000, maxDelay: 5000 } }, () => now);
    await u.start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    await mem.pairs[0]!.disconnect({ exitCode: 1, signal: null });
    await until(() => u.state === 'restarting');
    await new Promise((r) => setImmediate(r));
    // The first backoff delay is initialDelay ± 20 %: nothing restarts before it has passed.
    expect(mem.servers).toHaveLength(1);
    now += 1200;
    vi.advanceTimersByTime(1200);
    await until(() => u.state === 'ready' && mem.servers.length === 2);
    expect(states(events)).toEqual(['ready', 'restarting', 'ready']);
    expect(events.find((e) => e.type === 'state' && e.state === 'restarting')).toMatchObject({ error: 'exit code 1' });
    expect(u.restarts).toBe(1);
    const response = await u.call(slot('s1'), 'tools/call', { name: 'echo', arguments: {} }, undefined).response;
    expect(response).toMatchObject({ result: { content: [{ type: 'text', text: '{"tool":"echo","args":{}}' }] } });
  });

  it('answers a call in flight when the server end closes with SWB_ERR_UPSTREAM_CLOSED', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'hang' }] });
    mem.handlers.set('hang', () => new Promise(() => undefined));
    const { u } = upstream(mem, { restart: { initialDelay: 5, maxDelay: 10 } });
    await u.start();
    const call = u.call(slot('s1'), 'tools/call', { name: 'hang' }, undefined);
    await until(() => mem.received.some((r) => r.method === 'tools/call'));
    void mem.pairs[0]!.server.close();
    expect(await call.response).toMatchObject({
      error: { code: -33021, data: { code: 'SWB_ERR_UPSTREAM_CLOSED' } },
    });
  });

  it('times a call out after the configured timeout with SWB_ERR_UPSTREAM_TIMEOUT', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'hang' }] });
    mem.handlers.set('hang', () => new Promise(() => undefined));
    const { u } = upstream(mem, { timeout: 5000 });
    await u.start();
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const call = u.call(slot('s1'), 'tools/call', { name: 'hang' }, undefined);
    await until(() => mem.received.some((r) => r.method === 'tools/call'));
    vi.advanceTimersByTime(4999);
    let settled = false;
    void call.response.then(() => (settled = true));
    await new Promise((r) => setImmediate(r));
    expect(settled).toBe(false);
    vi.advanceTimersByTime(1);
    const response = await call.response;
    expect(response).toMatchObject({
      error: {
        code: -33022,
        message: 'upstream "a" did not answer tools/call within 5000 ms',
        data: { code: 'SWB_ERR_UPSTREAM_TIMEOUT' },
      },
    });
  });

  it('fails to start when the transport cannot be created and reports the state', async () => {
    const mem = new MemoryUpstream();
    mem.failConnect = new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', 'cannot spawn');
    const { u, events } = upstream(mem, { isolation: 'session' });
    await expect(u.start()).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_UNAVAILABLE' });
    expect(u.state).toBe('failed');
    expect(states(events)).toEqual(['failed']);
    expect(u.lastError).toBe('cannot spawn');
  });

  it('subscribes upstream once per connection and unsubscribes after the last session', async () => {
    const mem = new MemoryUpstream({ resources: [{ uri: 'file:///r', name: 'r' }] });
    const { u } = upstream(mem);
    await u.start();
    const subs = () => mem.received.filter((r) => r.method.startsWith('resources/') && r.method.endsWith('subscribe'));
    await u.subscribe(slot('s1'), 'file:///r', undefined);
    await u.subscribe(slot('s2'), 'file:///r', undefined);
    expect(u.subscribersOf('file:///r')).toEqual(new Set(['s1', 's2']));
    await u.unsubscribe(slot('s1'), 'file:///r', undefined);
    expect(subs().map((r) => r.method)).toEqual(['resources/subscribe']);
    await u.unsubscribe(slot('s2'), 'file:///r', undefined);
    expect(subs()).toEqual([
      { method: 'resources/subscribe', params: { uri: 'file:///r' } },
      { method: 'resources/unsubscribe', params: { uri: 'file:///r' } },
    ]);
    expect(u.subscribersOf('file:///r').size).toBe(0);
  });
});
