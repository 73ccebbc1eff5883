import { afterEach, describe, expect, it } from 'vitest';
import { Gateway } from '../../../src/gateway/gateway.js';
import type { ClientSession } from '../../../src/gateway/client-session.js';
import type { NameCollision, View } from '../../../src/gateway/view.js';
import { SwitchboardConfigInput, type SwitchboardConfig } from '../../../src/config/schema.js';
import { ANONYMOUS, type Principal } from '../../../src/auth/principal.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JsonObject, JsonRpcMessage } from '../../../src/protocol/jsonrpc.js';
import { RecordingChannel } from '../../helpers/channel.js';
import { MemoryUpstream, until } from '../../helpers/memory-server.js';

/** A configuration from its input shape (`mcpServers` merged into `servers`, as the loader does). */
function config(input: Record<string, unknown>): SwitchboardConfig {
  const { mcpServers, servers, ...rest } = SwitchboardConfigInput.parse(input);
  return { ...rest, servers: { ...servers, ...mcpServers } };
}

const stdio = (extra: Record<string, unknown> = {}) => ({ command: 'in-memory', ...extra });

interface Harness {
  gateway: Gateway;
  mems: Record<string, MemoryUpstream>;
  clock: { now: number };
  collisions: NameCollision[];
}

const gateways: Gateway[] = [];
afterEach(async () => {
  await Promise.allSettled(gateways.splice(0).map((g) => g.stop()));
});

/** A gateway whose configured servers are SDK servers in memory (`mems`, by server name). */
async function start(input: Record<string, unknown>, mems: Record<string, MemoryUpstream>): Promise<Harness> {
  const clock = { now: 1_000_000 };
  const collisions: NameCollision[] = [];
  const gateway = new Gateway({
    config: config(input),
    logger: silentLogger(),
    version: '9.9.9',
    now: () => clock.now,
    sweepIntervalMs: 0,
    onNameCollision: (c) => collisions.push(c),
    createTransport: (server) => {
      const mem = mems[server];
      if (!mem) throw new Error(`no in-memory server for ${server}`);
      return mem.createTransport();
    },
  });
  gateways.push(gateway);
  await gateway.start();
  return { gateway, mems, clock, collisions };
}

function principal(id: string): Principal {
  return { id: `token:${id}`, kind: 'token', subject: id, permissions: ['*'] };
}

let nextId = 1;
async function call(session: ClientSession, method: string, params?: JsonObject): Promise<JsonRpcMessage> {
  const out = new RecordingChannel();
  session.handleRequest(
    params === undefined ? { jsonrpc: '2.0', id: nextId++, method } : { jsonrpc: '2.0', id: nextId++, method, params },
    out,
  );
  await until(() => out.finished);
  return out.response;
}

/** An initialized session on `view` with a standalone stream that records what it receives. */
function open(gateway: Gateway, view: View, who: Principal = ANONYMOUS) {
  const session = gateway.createSession(view, who, 'streamable-http');
  session.handleNotification({ jsonrpc: '2.0', method: 'notifications/initialized' });
  const stream = new RecordingChannel();
  session.attachStandalone(stream);
  return { session, stream };
}

const names = (tools: JsonObject[]) => tools.map((t) => t.name);

describe('Gateway views', () => {
  it('builds the aggregate, virtual and single-server views from the configuration', async () => {
    const { gateway } = await start(
      { servers: { a: stdio(), b: stdio() }, virtualServers: { v: { servers: ['b'] } } },
      { a: new MemoryUpstream({ tools: [{ name: 'echo' }] }), b: new MemoryUpstream({ tools: [{ name: 'add' }] }) },
    );
    expect(names(gateway.aggregate.tools)).toEqual(['a__echo', 'b__add']);
    expect(names(gateway.virtualView('v')!.tools)).toEqual(['b__add']);
    expect(names(gateway.serverView('a')!.tools)).toEqual(['echo']);
    expect(gateway.virtualView('nope')).toBeUndefined();
    expect([...gateway.upstreams.keys()]).toEqual(['a', 'b']);
    expect(gateway.upstreams.get('a')!.state).toBe('ready');
  });

  it('reports a name collision once, keeping the incumbent and withholding the newcomer', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'x' }] });
    const { gateway, collisions } = await start(
      { servers: { a: stdio({ tools: { rename: { x: 'y' } } }) } },
      { a: mem },
    );
    expect(names(gateway.aggregate.tools)).toEqual(['a__y']);
    const { session, stream } = open(gateway, gateway.aggregate);
    await mem.setTools([{ name: 'x' }, { name: 'y' }]);
    await until(() => collisions.length > 0);
    expect(collisions.map((c) => [c.view, c.kind, c.exposed, c.kept, c.withheld])).toEqual([
      ['default', 'tool', 'a__y', { server: 'a', name: 'x' }, { server: 'a', name: 'y' }],
      ['a', 'tool', 'y', { server: 'a', name: 'x' }, { server: 'a', name: 'y' }],
    ]);
    expect(names(gateway.aggregate.tools)).toEqual(['a__y']);
    expect(names(gateway.serverView('a')!.tools)).toEqual(['y']);
    expect(stream.messages).toEqual([{ jsonrpc: '2.0', method: 'notifications/tools/list_changed' }]);
    // The exposed name still routes to the incumbent.
    const answer = await call(session, 'tools/call', { name: 'a__y', arguments: {} });
    expect(answer).toMatchObject({ result: { content: [{ type: 'text', text: '{"tool":"x","args":{}}' }] } });
  });
});

describe('Gateway sessions', () => {
  it('registers, finds and forgets sessions per principal', async () => {
    const { gateway } = await start({ servers: { a: stdio() } }, { a: new MemoryUpstream() });
    const alice = principal('alice');
    const s1 = gateway.createSession(gateway.aggregate, alice, 'streamable-http');
    const s2 = gateway.createSession(gateway.aggregate, alice, 'sse');
    expect(gateway.getSession(s1.id)).toBe(s1);
    expect([...gateway.sessionsOf(alice.id)]).toEqual([s1, s2]);
    s1.close('client deleted it');
    expect(gateway.getSession(s1.id)).toBeUndefined();
    expect([...gateway.sessions.keys()]).toEqual([s2.id]);
    s2.close('done');
    expect(gateway.sessionsOf(alice.id).size).toBe(0);
  });

  it('refuses a principal past sessions.maxPerPrincipal with 429 and the time until its first session expires', async () => {
    const { gateway, clock } = await start(
      { servers: { a: stdio() }, sessions: { maxPerPrincipal: 1, idleTimeout: 60_000 } },
      { a: new MemoryUpstream() },
    );
    gateway.createSession(gateway.aggregate, principal('alice'), 'streamable-http');
    clock.now += 15_000;
    let err: unknown;
    try {
      gateway.createSession(gateway.aggregate, principal('alice'), 'streamable-http');
    } catch (e) {
      err = e;
    }
    expect(err).toMatchObject({
      code: 'SWB_ERR_SESSION_PRINCIPAL_LIMIT',
      status: 429,
      data: { limit: 1, retryAfterMs: 45_000 },
    });
    // Another principal is not held back.
    expect(gateway.createSession(gateway.aggregate, principal('bob'), 'sse').principal.id).toBe('token:bob');
  });

  it('expires an idle session on lookup and in the sweep, by the gateway clock', async () => {
    const { gateway, clock } = await start(
      { servers: { a: stdio() }, sessions: { idleTimeout: 10_000 } },
      { a: new MemoryUpstream() },
    );
    const idle = gateway.createSession(gateway.aggregate, ANONYMOUS, 'streamable-http');
    const busy = gateway.createSession(gateway.aggregate, ANONYMOUS, 'streamable-http');
    expect(gateway.expiresAt(idle)).toBe(1_010_000);
    clock.now += 9_999;
    busy.touch();
    expect(gateway.getSession(idle.id)).toBe(idle);
    clock.now += 1;
    expect(gateway.getSession(idle.id)).toBeUndefined();
    expect(idle.closed).toBe(true);
    clock.now += 10_000;
    expect(gateway.sweep()).toEqual({ sessions: 1, children: 0 });
    expect(busy.closed).toBe(true);
  });
});

describe('Gateway notification audiences', () => {
  const log = (data: string) => ({ level: 'info' as const, data });

  it("sends a shared child's log message to every initialized session whose view includes it", async () => {
    const a = new MemoryUpstream();
    const { gateway } = await start({ servers: { a: stdio(), b: stdio() } }, { a, b: new MemoryUpstream() });
    const x = open(gateway, gateway.aggregate, principal('alice'));
    const y = open(gateway, gateway.serverView('a')!, principal('bob'));
    const other = open(gateway, gateway.serverView('b')!);
    const uninitialized = gateway.createSession(gateway.aggregate, ANONYMOUS, 'streamable-http');
    const silent = new RecordingChannel();
    uninitialized.attachStandalone(silent);
    await a.server.sendLoggingMessage(log('hello'));
    const expected = { jsonrpc: '2.0', method: 'notifications/message', params: log('hello') };
    await until(() => x.stream.messages.length > 0 && y.stream.messages.length > 0);
    expect(x.stream.messages).toEqual([expected]);
    expect(y.stream.messages).toEqual([expected]);
    expect(other.stream.messages).toEqual([]);
    expect(silent.messages).toEqual([]);
  });

  it("sends a session-isolated child's messages to its own session only", async () => {
    const a = new MemoryUpstream({ tools: [{ name: 'echo' }] });
    const { gateway } = await start({ servers: { a: stdio({ isolation: 'session' }) } }, { a });
    const s1 = open(gateway, gateway.aggregate);
    const s2 = open(gateway, gateway.aggregate);
    await call(s1.session, 'tools/call', { name: 'a__echo' });
    await call(s2.session, 'tools/call', { name: 'a__echo' });
    // servers[0] was the start-up probe; then one child per session, in order.
    expect(a.servers).toHaveLength(3);
    await a.servers[2]!.sendLoggingMessage(log('for s2'));
    await until(() => s2.stream.messages.length > 0);
    expect(s2.stream.messages).toEqual([{ jsonrpc: '2.0', method: 'notifications/message', params: log('for s2') }]);
    expect(s1.stream.messages).toEqual([]);
  });

  it("sends a user-isolated child's messages to every session of that principal only", async () => {
    const a = new MemoryUpstream({ tools: [{ name: 'echo' }] });
    const { gateway } = await start({ servers: { a: stdio({ isolation: 'user' }) } }, { a });
    const alice1 = open(gateway, gateway.aggregate, principal('alice'));
    const alice2 = open(gateway, gateway.aggregate, principal('alice'));
    const bob = open(gateway, gateway.aggregate, principal('bob'));
    await call(alice1.session, 'tools/call', { name: 'a__echo' });
    await call(bob.session, 'tools/call', { name: 'a__echo' });
    expect(a.servers).toHaveLength(3);
    await a.servers[1]!.sendLoggingMessage(log('for alice'));
    await until(() => alice1.stream.messages.length > 0 && alice2.stream.messages.length > 0);
    const expected = [{ jsonrpc: '2.0', method: 'notifications/message', params: log('for alice') }];
    expect(alice1.stream.messages).toEqual(expected);
    expect(alice2.stream.messages).toEqual(expected);
    expect(bob.stream.messages).toEqual([]);
  });

  it('sends resources/updated to the subscribed sessions only', async () => {
    const a = new MemoryUpstream({ resources: [{ uri: 'file:///r', name: 'r' }] });
    const { gateway } = await start({ servers: { a: stdio() } }, { a });
    const subscriber = open(gateway, gateway.aggregate);
    const bystander = open(gateway, gateway.aggregate);
    await call(subscriber.session, 'resources/subscribe', { uri: 'file:///r' });
    await a.server.sendResourceUpdated({ uri: 'file:///r' });
    await until(() => subscriber.stream.messages.length > 0);
    expect(subscriber.stream.messages).toEqual([
      { jsonrpc: '2.0', method: 'notifications/resources/updated', params: { uri: 'file:///r' } },
    ]);
    expect(bystander.stream.messages).toEqual([]);
  });
});

describe('Gateway reload', () => {
  it('restarts only the changed servers, closes sessions bound to them and tells aggregate sessions', async () => {
    const mems = {
      a: new MemoryUpstream({ tools: [{ name: 'echo' }] }),
      b: new MemoryUpstream({ tools: [{ name: 'echo' }] }),
      c: new MemoryUpstream({ tools: [{ name: 'new' }] }),
    };
    const { gateway } = await start({ servers: { a: stdio(), b: stdio() } }, mems);
    const upA = gateway.upstreams.get('a')!;
    const upB = gateway.upstreams.get('b')!;
    const onA = open(gateway, gateway.serverView('a')!);
    const onB = open(gateway, gateway.serverView('b')!);
    const onAll = open(gateway, gateway.aggregate);
    const result = await gateway.reload(config({ servers: { a: stdio(), b: stdio({ timeout: 5000 }), c: stdio() } }));
    expect(result).toEqual({ added: ['c'], removed: [], changed: ['b'] });
    expect(gateway.upstreams.get('a')).toBe(upA);
    expect(gateway.upstreams.get('b')).not.toBe(upB);
    expect(upB.state).toBe('stopped');
    expect([mems.a.servers.length, mems.b.servers.length, mems.c.servers.length]).toEqual([1, 2, 1]);
    expect(onA.session.closed).toBe(false);
    expect(onB.session.closed).toBe(true);
    // A restarted server's items follow those of the servers that kept running.
    expect(names(gateway.aggregate.tools)).toEqual(['a__echo', 'c__new', 'b__echo']);
    // One tools/list_changed per started server's first catalog (c, then the new b), then the
    // reload's own three.
    expect(onAll.stream.messages).toEqual([
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
      { jsonrpc: '2.0', method: 'notifications/tools/list_changed' },
      { jsonrpc: '2.0', method: 'notifications/prompts/list_changed' },
      { jsonrpc: '2.0', method: 'notifications/resources/list_changed' },
    ]);
    expect(onA.stream.messages).toEqual([]);
    expect(await call(onA.session, 'tools/call', { name: 'echo', arguments: {} })).toMatchObject({
      result: { content: [{ type: 'text', text: '{"tool":"echo","args":{}}' }] },
    });
  });

  it('removes a virtual server and closes its sessions', async () => {
    const { gateway } = await start(
      { servers: { a: stdio() }, virtualServers: { v: { servers: ['a'] } } },
      { a: new MemoryUpstream() },
    );
    const onV = open(gateway, gateway.virtualView('v')!);
    const result = await gateway.reload(config({ servers: { a: stdio() } }));
    expect(result).toEqual({ added: [], removed: [], changed: [] });
    expect(gateway.virtualView('v')).toBeUndefined();
    expect(onV.session.closed).toBe(true);
  });
});
