import { afterEach, describe, expect, it } from 'vitest';
import { ClientSession, type SessionHost } from '../../../src/gateway/client-session.js';
import { View, type ViewKind } from '../../../src/gateway/view.js';
import { TaskIds } from '../../../src/gateway/tasks.js';
import { Upstream, type UpstreamEvent } from '../../../src/upstream/upstream.js';
import { StdioServer } from '../../../src/config/schema.js';
import { ANONYMOUS, type Principal } from '../../../src/auth/principal.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { composePipeline, type RequestContext, type Route, type Stage } from '../../../src/pipeline/stage.js';
import type { JsonObject, JsonRpcId, JsonRpcNotification, JsonRpcRequest } from '../../../src/protocol/jsonrpc.js';
import { RecordingChannel } from '../../helpers/channel.js';
import { deferred, MemoryUpstream, samplingTool, until } from '../../helpers/memory-server.js';

const TOOLS = [{ name: 'echo', inputSchema: { type: 'object' } }];

interface Setup {
  session: ClientSession;
  host: SessionHost & { pipeline: ReturnType<typeof composePipeline>; closed: string[] };
  upstreams: Map<string, Upstream>;
  mems: Map<string, MemoryUpstream>;
  events: UpstreamEvent[];
  view: View;
}

const running: Upstream[] = [];
afterEach(async () => {
  await Promise.allSettled(running.splice(0).map((u) => u.stop()));
});

async function setup(
  servers: Record<string, MemoryUpstream>,
  options: {
    kind?: ViewKind;
    pageSize?: number;
    stages?: Stage[];
    principal?: Principal;
    config?: Record<string, unknown>;
  } = {},
): Promise<Setup> {
  const events: UpstreamEvent[] = [];
  const upstreams = new Map<string, Upstream>();
  const mems = new Map<string, MemoryUpstream>();
  for (const [name, mem] of Object.entries(servers)) {
    const u = new Upstream({
      name,
      config: StdioServer.parse({ command: 'in-memory', ...options.config }),
      logger: silentLogger(),
      gatewayVersion: '9.9.9',
      attributionWaitMs: 5_000,
      createTransport: mem.createTransport,
      onEvent: (e) => events.push(e),
    });
    running.push(u);
    upstreams.set(name, u);
    mems.set(name, mem);
  }
  await Promise.all([...upstreams.values()].map((u) => u.start()));
  const pass = (n: string) => n;
  const view = new View({
    name: options.kind === 'single' ? [...upstreams.keys()][0]! : 'default',
    kind: options.kind ?? 'aggregate',
    members: [...upstreams.values()].map((upstream) => ({ upstream, tools: pass, prompts: pass, resources: pass })),
    separator: '__',
    gatewayVersion: '9.9.9',
  });
  const closed: string[] = [];
  const host = {
    pipeline: composePipeline(options.stages ?? []),
    logger: silentLogger(),
    pageSize: options.pageSize ?? 0,
    clientRequestTimeoutMs: 5_000,
    taskIds: new TaskIds(),
    now: () => 1000,
    onSessionClosed: (_s: ClientSession, reason: string) => closed.push(reason),
    closed,
  };
  const session = new ClientSession('sess-1', view, options.principal ?? ANONYMOUS, 'streamable-http', host);
  return { session, host, upstreams, mems, events, view };
}

let nextId = 1;
/** Sends one request and waits until its channel finished (a response, a failure or an end). */
async function send(
  session: ClientSession,
  method: string,
  params?: JsonObject,
  options: { id?: JsonRpcId; out?: RecordingChannel; ctx?: RequestContext; wait?: boolean } = {},
): Promise<RecordingChannel> {
  const out = options.out ?? new RecordingChannel();
  const req: JsonRpcRequest =
    params === undefined
      ? { jsonrpc: '2.0', id: options.id ?? nextId++, method }
      : { jsonrpc: '2.0', id: options.id ?? nextId++, method, params };
  session.handleRequest(req, out, options.ctx);
  if (options.wait !== false) await until(() => out.finished);
  return out;
}

function principal(extra: Partial<Principal>): Principal {
  return { id: 'token:alice', kind: 'token', subject: 'alice', permissions: ['*'], ...extra };
}

const text = (r: unknown) => (r as { result: { content: Array<{ text: string }> } }).result.content[0]?.text ?? '';

describe('ClientSession: initialize, ping and lists', () => {
  it('negotiates a supported protocol version and the newest one otherwise', async () => {
    const { session } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) });
    const init = { capabilities: { sampling: {} }, clientInfo: { name: 'c', version: '1' } };
    const older = await send(session, 'initialize', { protocolVersion: '2025-06-18', ...init });
    expect((older.response as { result: JsonObject }).result.protocolVersion).toBe('2025-06-18');
    expect(session.clientCapabilities).toEqual({ sampling: {} });
    expect(session.clientInfo).toEqual({ name: 'c', version: '1' });
    const unknown = await send(session, 'initialize', { protocolVersion: '1999-01-01', ...init });
    expect((unknown.response as { result: JsonObject }).result).toMatchObject({
      protocolVersion: '2025-11-25',
      serverInfo: { name: 'switchboard', version: '9.9.9' },
    });
    expect(session.protocolVersion).toBe('2025-11-25');
  });

  it("mirrors the upstream's serverInfo on a single-server view", async () => {
    const { session } = await setup({ a: new MemoryUpstream({ name: 'up-a', tools: TOOLS }) }, { kind: 'single' });
    const out = await send(session, 'initialize', { protocolVersion: '2025-11-25', capabilities: {} });
    expect((out.response as { result: JsonObject }).result.serverInfo).toEqual({ name: 'up-a', version: '1.0.0' });
  });

  it('answers ping with an empty result', async () => {
    const { session } = await setup({ a: new MemoryUpstream() });
    const out = await send(session, 'ping', undefined, { id: 'p1' });
    expect(out.messages).toEqual([{ jsonrpc: '2.0', id: 'p1', result: {} }]);
  });

  it('lists namespaced tools of every member, a whole list once serialised through sendResult', async () => {
    const { session } = await setup({
      a: new MemoryUpstream({ tools: [{ name: 'echo' }, { name: 'slow' }] }),
      b: new MemoryUpstream({ tools: [{ name: 'echo' }] }),
    });
    const out = await send(session, 'tools/list', undefined, { id: 3 });
    expect(out.resultsSent).toBe(1);
    expect(out.messages).toEqual([
      { jsonrpc: '2.0', id: 3, result: { tools: [{ name: 'a__echo' }, { name: 'a__slow' }, { name: 'b__echo' }] } },
    ]);
  });

  it('pages lists with opaque cursors when a page size is set, and refuses a bad cursor', async () => {
    const { session } = await setup(
      {
        a: new MemoryUpstream({ tools: [{ name: 't1' }, { name: 't2' }] }),
        b: new MemoryUpstream({ tools: [{ name: 't3' }] }),
      },
      { pageSize: 2 },
    );
    const first = await send(session, 'tools/list');
    const page1 = (first.response as unknown as { result: { tools: JsonObject[]; nextCursor?: string } }).result;
    expect(page1.tools.map((t) => t.name)).toEqual(['a__t1', 'a__t2']);
    expect(typeof page1.nextCursor).toBe('string');
    const second = await send(session, 'tools/list', { cursor: page1.nextCursor! });
    expect((second.response as { result: JsonObject }).result).toEqual({ tools: [{ name: 'b__t3' }] });
    const bad = await send(session, 'tools/list', { cursor: 'not-a-cursor' });
    expect(bad.response).toMatchObject({ error: { code: -32602, data: { code: 'SWB_ERR_ROUTE_INVALID_CURSOR' } } });
  });

  it("filters lists by the principal's server and tool scope", async () => {
    const servers = {
      a: new MemoryUpstream({ tools: [{ name: 'echo' }, { name: 'slow' }] }),
      b: new MemoryUpstream({ tools: [{ name: 'echo' }] }),
    };
    const byTool = await setup(servers, { principal: principal({ tools: ['echo'] }) });
    const tools = await send(byTool.session, 'tools/list');
    expect((tools.response as { result: JsonObject }).result).toEqual({
      tools: [{ name: 'a__echo' }, { name: 'b__echo' }],
    });
    const byServer = await setup(servers, { principal: principal({ servers: ['b'] }) });
    const only = await send(byServer.session, 'tools/list');
    expect((only.response as { result: JsonObject }).result).toEqual({ tools: [{ name: 'b__echo' }] });
  });

  it('applies the pipeline listTools filter with each tool route', async () => {
    const routes: Array<Route | undefined> = [];
    const stage: Stage = {
      name: 'hide-a',
      listTools: (_ctx, tools, routeOf) =>
        tools.filter((t) => {
          const r = routeOf(t);
          routes.push(r);
          return r?.server !== 'a';
        }),
    };
    const { session } = await setup(
      { a: new MemoryUpstream({ tools: [{ name: 'echo' }] }), b: new MemoryUpstream({ tools: [{ name: 'echo' }] }) },
      { stages: [stage] },
    );
    const out = await send(session, 'tools/list');
    expect((out.response as { result: JsonObject }).result).toEqual({ tools: [{ name: 'b__echo' }] });
    expect(routes).toEqual([
      { server: 'a', name: 'echo' },
      { server: 'b', name: 'echo' },
    ]);
  });
});

describe('ClientSession: tools/call routing', () => {
  it("rewrites the exposed name to the upstream's, restores the client id and fills in the context", async () => {
    const { session, mems } = await setup({
      a: new MemoryUpstream({ tools: TOOLS }),
      b: new MemoryUpstream({ tools: TOOLS }),
    });
    const ctx: RequestContext = { principal: ANONYMOUS, method: 'tools/call' };
    const out = await send(session, 'tools/call', { name: 'b__echo', arguments: { x: 1 } }, { id: 'call-1', ctx });
    expect(out.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 'call-1',
        result: { content: [{ type: 'text', text: '{"tool":"echo","args":{"x":1}}' }] },
      },
    ]);
    expect(mems.get('b')!.received.filter((r) => r.method === 'tools/call')).toEqual([
      { method: 'tools/call', params: { name: 'echo', arguments: { x: 1 } } },
    ]);
    expect(mems.get('a')!.received.filter((r) => r.method === 'tools/call')).toEqual([]);
    expect([ctx.server, ctx.tool, ctx.route]).toEqual(['b', 'echo', { server: 'b', name: 'echo' }]);
  });

  it('answers an unknown tool and an out-of-scope tool alike with SWB_ERR_ROUTE_UNKNOWN_TOOL', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'echo' }, { name: 'secret' }] });
    const { session } = await setup({ a: mem }, { principal: principal({ tools: ['echo'] }) });
    for (const name of ['a__nope', 'a__secret']) {
      const out = await send(session, 'tools/call', { name });
      expect(out.response).toMatchObject({
        error: { code: -32602, message: `Unknown tool: ${name}`, data: { code: 'SWB_ERR_ROUTE_UNKNOWN_TOOL' } },
      });
    }
    expect(mem.received.filter((r) => r.method === 'tools/call')).toEqual([]);
  });

  it('refuses tools/call without tools.execute with SWB_ERR_AUTH_FORBIDDEN, an HTTP 403 before the response started', async () => {
    const mem = new MemoryUpstream({ tools: TOOLS });
    const { session } = await setup({ a: mem }, { principal: principal({ permissions: ['servers.use'] }) });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { id: 7 });
    expect(out.failures).toEqual([{ code: 'SWB_ERR_AUTH_FORBIDDEN', status: 403, id: 7 }]);
    expect(out.messages).toEqual([]);
    expect(mem.received.filter((r) => r.method === 'tools/call')).toEqual([]);
  });

  it('refuses tools/call without tools.execute as a JSON-RPC error on a channel that cannot fail', async () => {
    const mem = new MemoryUpstream({ tools: TOOLS });
    const { session } = await setup({ a: mem }, { principal: principal({ permissions: ['servers.use'] }) });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { out: new RecordingChannel({ fail: false }) });
    expect(out.response).toMatchObject({
      error: { code: -33030, data: { code: 'SWB_ERR_AUTH_FORBIDDEN', permission: 'tools.execute' } },
    });
    expect(mem.received.filter((r) => r.method === 'tools/call')).toEqual([]);
  });

  it('refuses a request id still in flight with SWB_ERR_SESSION_DUPLICATE_ID and still answers the first', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'slow' }] });
    const release = deferred();
    mem.handlers.set('slow', async () => {
      await release.promise;
      return { content: [{ type: 'text', text: 'done' }] };
    });
    const { session } = await setup({ a: mem });
    const first = await send(session, 'tools/call', { name: 'a__slow' }, { id: 42, wait: false });
    await until(() => mem.received.some((r) => r.method === 'tools/call'));
    const dup = await send(session, 'tools/call', { name: 'a__slow' }, { id: 42 });
    expect(dup.response).toMatchObject({
      id: 42,
      error: { code: -32600, data: { code: 'SWB_ERR_SESSION_DUPLICATE_ID' } },
    });
    release.resolve();
    await until(() => first.finished);
    expect(text(first.response)).toBe('done');
    expect(first.response).toMatchObject({ id: 42 });
  });

  it('sends no response to a cancelled call, ends its channel and cancels it upstream', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'slow' }] });
    let aborted = false;
    mem.handlers.set('slow', (_args, extra) => {
      return new Promise((resolve) => {
        extra.signal.addEventListener('abort', () => {
          aborted = true;
          resolve({ content: [{ type: 'text', text: 'too late' }] });
        });
      });
    });
    const { session } = await setup({ a: mem });
    const out = await send(session, 'tools/call', { name: 'a__slow' }, { id: 'c1', wait: false });
    await until(() => mem.received.some((r) => r.method === 'tools/call'));
    expect(session.inFlight).toBe(1);
    session.handleNotification({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 'c1' } });
    await until(() => out.finished && aborted);
    expect(out.ends).toBe(1);
    expect(out.messages).toEqual([]);
    expect(session.inFlight).toBe(0);
  });
});

describe('ClientSession: pipeline stages', () => {
  const rateLimit = (): Stage => ({
    name: 'rate-limit',
    request: (ctx) => {
      ctx.stage = 'rate-limit';
      throw new GatewayError('SWB_ERR_RATE_LIMITED', 'slow down', { data: { retryAfterMs: 1000 } });
    },
  });

  it('gives an HTTP-family refusal to out.fail and nothing reaches the upstream', async () => {
    const mem = new MemoryUpstream({ tools: TOOLS });
    const { session } = await setup({ a: mem }, { stages: [rateLimit()] });
    const ctx: RequestContext = { principal: ANONYMOUS };
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { id: 9, ctx });
    expect(out.failures).toEqual([{ code: 'SWB_ERR_RATE_LIMITED', status: 429, id: 9 }]);
    expect(out.messages).toEqual([]);
    expect(ctx.stage).toBe('rate-limit');
    expect(mem.received.filter((r) => r.method === 'tools/call')).toEqual([]);
  });

  it('sends an HTTP-family refusal as a JSON-RPC error when the channel cannot fail', async () => {
    const { session } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) }, { stages: [rateLimit()] });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { out: new RecordingChannel({ fail: false }) });
    expect(out.response).toMatchObject({
      error: { code: -33050, data: { code: 'SWB_ERR_RATE_LIMITED', retryAfterMs: 1000 } },
    });
  });

  it('sends a JSON-RPC-family refusal with out.send, even when the channel could fail', async () => {
    const stage: Stage = {
      name: 'guard',
      request: () => {
        throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_TOOL', 'hidden by guard');
      },
    };
    const { session } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) }, { stages: [stage] });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { id: 5 });
    expect(out.failures).toEqual([]);
    expect(out.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 5,
        error: { code: -32602, message: 'hidden by guard', data: { code: 'SWB_ERR_ROUTE_UNKNOWN_TOOL' } },
      },
    ]);
  });

  it('waits for an asynchronous request stage, which may change the params, and routes after it', async () => {
    const mem = new MemoryUpstream({ tools: TOOLS });
    const stage: Stage = {
      name: 'redact',
      request: async (_ctx, req) => {
        await new Promise((r) => setImmediate(r));
        (req.params!.arguments as JsonObject).secret = '[redacted]';
      },
    };
    const { session } = await setup({ a: mem }, { stages: [stage] });
    const out = await send(session, 'tools/call', { name: 'a__echo', arguments: { secret: 'hunter2' } });
    expect(text(out.response)).toBe('{"tool":"echo","args":{"secret":"[redacted]"}}');
  });

  it('does not forward a request whose session closed while an asynchronous stage ran', async () => {
    const mem = new MemoryUpstream({ tools: TOOLS });
    const gate = deferred();
    const stage: Stage = { name: 'slow-limit', request: () => gate.promise };
    const { session, upstreams } = await setup({ a: mem }, { stages: [stage], config: { isolation: 'session' } });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { id: 'late', wait: false });
    session.close('client deleted it');
    gate.resolve();
    await until(() => out.finished);
    // The client is told its session is gone (404 before the response started), and no child is
    // started for a session that no longer exists: nothing would ever release it.
    expect(out.failures).toEqual([{ code: 'SWB_ERR_SESSION_NOT_FOUND', status: 404, id: 'late' }]);
    expect(out.messages).toEqual([]);
    expect(mem.received.filter((r) => r.method === 'tools/call')).toEqual([]);
    expect(upstreams.get('a')!.connectionCount).toBe(0);
    expect(session.inFlight).toBe(0);
  });

  it('refuses on an asynchronous rejection like a synchronous throw', async () => {
    const stage: Stage = {
      name: 'async-limit',
      request: () => Promise.reject(new GatewayError('SWB_ERR_RATE_LIMITED', 'later')),
    };
    const { session } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) }, { stages: [stage] });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { id: 'r' });
    expect(out.failures).toEqual([{ code: 'SWB_ERR_RATE_LIMITED', status: 429, id: 'r' }]);
  });

  it('lets a result stage change the result, synchronously or not', async () => {
    const stages: Stage[] = [
      {
        name: 'tag',
        result: (_ctx, _req, res) => {
          if ('result' in res) res.result.tagged = true;
        },
      },
      {
        name: 'later',
        result: async (_ctx, _req, res) => {
          await Promise.resolve();
          if ('result' in res) res.result.later = 1;
        },
      },
    ];
    const { session } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) }, { stages });
    const out = await send(session, 'tools/call', { name: 'a__echo', arguments: {} }, { id: 8 });
    expect(out.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 8,
        result: { content: [{ type: 'text', text: '{"tool":"echo","args":{}}' }], tagged: true, later: 1 },
      },
    ]);
  });

  it('answers with the error of a refusing result stage instead of the result', async () => {
    const stage: Stage = {
      name: 'block-result',
      result: () => {
        throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_TOOL', 'result withheld');
      },
    };
    const { session } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) }, { stages: [stage] });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { id: 11 });
    expect(out.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 11,
        error: { code: -32602, message: 'result withheld', data: { code: 'SWB_ERR_ROUTE_UNKNOWN_TOOL' } },
      },
    ]);
    expect(session.inFlight).toBe(0);
  });

  it('replaces a response that cannot be serialised with -33023 SWB_ERR_UPSTREAM_PROTOCOL', async () => {
    const stage: Stage = {
      name: 'bigint',
      result: (_ctx, _req, res) => {
        if ('result' in res) res.result.big = 10n;
      },
    };
    const { session } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) }, { stages: [stage] });
    const out = await send(session, 'tools/call', { name: 'a__echo' }, { id: 12 });
    expect(out.messages).toEqual([
      {
        jsonrpc: '2.0',
        id: 12,
        error: {
          code: -33023,
          message: 'Upstream sent an invalid answer', // the detail stays in the log
          data: { code: 'SWB_ERR_UPSTREAM_PROTOCOL' },
        },
      },
    ]);
  });
});

describe('ClientSession: resources, logging and server→client requests', () => {
  it('names resources/updated by the URI the client subscribed with (the collision form)', async () => {
    const resources = [{ uri: 'file:///x', name: 'x' }];
    const { session, mems, upstreams, events } = await setup({
      a: new MemoryUpstream({ resources }),
      b: new MemoryUpstream({ resources }),
    });
    const list = await send(session, 'resources/list');
    const uris = (list.response as unknown as { result: { resources: Array<{ uri: string }> } }).result.resources.map(
      (r) => r.uri,
    );
    expect(uris).toEqual(['file:///x', 'switchboard://b/file%3A%2F%2F%2Fx']);
    const standalone = new RecordingChannel();
    session.attachStandalone(standalone);
    const sub = await send(session, 'resources/subscribe', { uri: uris[1]! }, { id: 'sub' });
    expect(sub.messages).toEqual([{ jsonrpc: '2.0', id: 'sub', result: {} }]);
    expect(mems.get('b')!.received.filter((r) => r.method === 'resources/subscribe')).toEqual([
      { method: 'resources/subscribe', params: { uri: 'file:///x' } },
    ]);
    expect(upstreams.get('b')!.subscribersOf('file:///x')).toEqual(new Set(['sess-1']));
    await mems.get('b')!.server.sendResourceUpdated({ uri: 'file:///x' });
    await until(() => events.some((e) => e.type === 'notification'));
    const e = events.find((x) => x.type === 'notification')!;
    if (e.type !== 'notification') throw new Error('unreachable');
    session.deliverResourceUpdated(e.upstream, e.notification);
    expect(standalone.messages).toEqual([
      {
        jsonrpc: '2.0',
        method: 'notifications/resources/updated',
        params: { uri: 'switchboard://b/file%3A%2F%2F%2Fx' },
      },
    ]);
  });

  it("passes a portable session's own notifications to the replica holding its stream when this one holds none", async () => {
    const { session, host } = await setup({ a: new MemoryUpstream({ tools: TOOLS }) });
    const forwarded: Array<[string, JsonRpcNotification]> = [];
    // The session reads its host per call: the hook set now applies.
    Object.assign(host, {
      forwardNotification: (s: ClientSession, n: JsonRpcNotification) => forwarded.push([s.id, n]),
    });
    const log: JsonRpcNotification = {
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level: 'error', data: 'x' },
    };
    // A plain (not sealed) session is known to this process only: nothing to pass on.
    session.deliverNotification(log, true);
    expect(forwarded).toEqual([]);

    session.adoptSealedId('sess-1.k1.sealed');
    // A shared connection's message is heard by every replica's own connection: not passed on.
    session.deliverNotification(log, false);
    expect(forwarded).toEqual([]);
    session.deliverNotification(log, true);
    expect(forwarded).toEqual([['sess-1', log]]);

    // Holding the stream here, it is sent here; a forwarded one is sent only where the stream is.
    const standalone = new RecordingChannel();
    session.attachStandalone(standalone);
    session.deliverNotification(log, true);
    session.deliverForwarded({
      jsonrpc: '2.0',
      method: 'notifications/progress',
      params: { progressToken: 1, progress: 1 },
    });
    expect(standalone.messages.map((m) => (m as JsonRpcNotification).method)).toEqual([
      'notifications/message',
      'notifications/progress',
    ]);
    expect(forwarded).toHaveLength(1);
    session.attachStandalone(undefined);
    session.deliverForwarded(log);
    expect(forwarded).toHaveLength(1);
    expect(standalone.messages).toHaveLength(2);
  });

  it('forwards logging/setLevel to members with logging and filters log messages below it', async () => {
    const { session, mems } = await setup({ a: new MemoryUpstream(), b: new MemoryUpstream({ logging: false }) });
    const out = await send(session, 'logging/setLevel', { level: 'warning' }, { id: 'lv' });
    expect(out.messages).toEqual([{ jsonrpc: '2.0', id: 'lv', result: {} }]);
    expect(mems.get('a')!.received.filter((r) => r.method === 'logging/setLevel')).toEqual([
      { method: 'logging/setLevel', params: { level: 'warning' } },
    ]);
    // b declares no logging: it got its catalog requests only.
    expect(mems.get('b')!.received.map((r) => r.method)).toEqual([
      'tools/list',
      'prompts/list',
      'resources/list',
      'resources/templates/list',
    ]);
    const standalone = new RecordingChannel();
    session.attachStandalone(standalone);
    const log = (level: string): JsonRpcNotification => ({
      jsonrpc: '2.0',
      method: 'notifications/message',
      params: { level, data: level },
    });
    session.deliverNotification(log('info'));
    session.deliverNotification(log('error'));
    session.deliverNotification(log('warning'));
    expect(standalone.messages).toEqual([log('error'), log('warning')]);
    const bad = await send(session, 'logging/setLevel', { level: 'loud' });
    expect(bad.response).toMatchObject({ error: { code: -32602, message: 'Invalid log level: loud' } });
  });

  it("forwards an upstream's sampling request on the call's channel and routes the client's answer back", async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'sample' }] });
    mem.handlers.set('sample', samplingTool);
    const { session } = await setup({ a: mem });
    await send(session, 'initialize', { protocolVersion: '2025-11-25', capabilities: { sampling: {} } });
    const out = await send(session, 'tools/call', { name: 'a__sample' }, { id: 'call', wait: false });
    await until(() => out.messages.length > 0);
    const forwarded = out.messages[0] as JsonRpcRequest;
    expect(forwarded).toEqual({
      jsonrpc: '2.0',
      id: 1,
      method: 'sampling/createMessage',
      params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 },
    });
    session.handleResponse({
      jsonrpc: '2.0',
      id: forwarded.id,
      result: { role: 'assistant', model: 'm', content: { type: 'text', text: 'hello' } },
    });
    await until(() => out.finished);
    expect(text(out.response)).toBe('sampled: hello');
    expect(out.response).toMatchObject({ id: 'call' });
  });

  it('closes once: cancels calls in flight and tells the host', async () => {
    const mem = new MemoryUpstream({ tools: [{ name: 'slow' }] });
    mem.handlers.set('slow', () => new Promise(() => undefined));
    const { session, host } = await setup({ a: mem });
    const out = await send(session, 'tools/call', { name: 'a__slow' }, { wait: false });
    await until(() => session.inFlight === 1 && mem.received.some((r) => r.method === 'tools/call'));
    session.close('test over');
    session.close('again');
    await until(() => out.finished);
    expect(out.messages).toEqual([]);
    expect(out.ends).toBe(1);
    expect(session.closed).toBe(true);
    expect(host.closed).toEqual(['test over']);
  });
});

describe('ClientSession: completions and tasks', () => {
  const PROMPTS = [{ name: 'greet', arguments: [{ name: 'who' }] }];
  const complete = { ref: { type: 'ref/prompt', name: 'a__greet' }, argument: { name: 'who', value: 'x' } };

  it('answers completion/complete with an empty completion for an aggregate member without completions', async () => {
    const { session, mems } = await setup({ a: new MemoryUpstream({ prompts: PROMPTS }) });
    const out = await send(session, 'completion/complete', complete);
    expect(out.response).toMatchObject({ result: { completion: { values: [], hasMore: false } } });
    expect(mems.get('a')!.received.filter((r) => r.method === 'completion/complete')).toEqual([]);
  });

  it('forwards completion/complete on a single-server view, whose upstream answers for itself', async () => {
    const { session } = await setup({ a: new MemoryUpstream({ prompts: PROMPTS }) }, { kind: 'single' });
    const out = await send(session, 'completion/complete', { ...complete, ref: { type: 'ref/prompt', name: 'greet' } });
    expect(out.response).toMatchObject({ error: { code: -32601 } });
  });

  it('refuses tasks/* with -32021 when the session did not declare the tasks extension', async () => {
    const { session } = await setup({ a: new MemoryUpstream() });
    await send(session, 'initialize', { protocolVersion: '2025-11-25', capabilities: {} });
    const out = await send(session, 'tasks/get', { taskId: 'anything' }, { id: 7 });
    expect(out.failures).toEqual([{ code: 'SWB_ERR_PROTOCOL_MISSING_CAPABILITY', status: 400, id: 7 }]);
    const json = await send(
      session,
      'tasks/cancel',
      { taskId: 'anything' },
      { out: new RecordingChannel({ fail: false }) },
    );
    expect(json.response).toMatchObject({
      error: { code: -32021, data: { code: 'SWB_ERR_PROTOCOL_MISSING_CAPABILITY' } },
    });
  });

  it('answers an unknown task id with -32602 and never forwards it', async () => {
    const { session, mems } = await setup({ a: new MemoryUpstream() }, { kind: 'single' });
    await send(session, 'initialize', {
      protocolVersion: '2025-11-25',
      capabilities: { extensions: { 'io.modelcontextprotocol/tasks': {} } },
    });
    const out = await send(session, 'tasks/get', { taskId: 'upstream-id' });
    expect(out.response).toMatchObject({ error: { code: -32602, data: { code: 'SWB_ERR_ROUTE_UNKNOWN_TASK' } } });
    expect(mems.get('a')!.received.filter((r) => r.method.startsWith('tasks/'))).toEqual([]);
  });
});
