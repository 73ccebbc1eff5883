/**
 * The modern era towards upstreams: the probe's verdicts, the header value encoding, the
 * connection's opening and stamping (on a hand-driven in-memory peer, so the exact wire is seen),
 * and the upstream's handling of removed methods, `input_required` and `ttlMs`.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { RemoteServer, StdioServer } from '../../../src/config/schema.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { decodeHeaderValue, encodeHeaderValue } from '../../../src/protocol/era.js';
import type { JsonObject, JsonRpcMessage, JsonRpcResponse } from '../../../src/protocol/jsonrpc.js';
import { UpstreamConnection, type Caller } from '../../../src/upstream/connection.js';
import {
  initializeResultOfDiscover,
  judgeDiscoverAnswer,
  type UpstreamProtocol,
} from '../../../src/upstream/era-probe.js';
import { createMemoryTransportPair } from '../../../src/upstream/memory-transport.js';
import { modernErrorOf } from '../../../src/upstream/streamable-http-session.js';
import { Upstream, type UpstreamEvent } from '../../../src/upstream/upstream.js';
import { until } from '../../helpers/memory-server.js';

const V = '2026-07-28';
const DISCOVER: JsonObject = {
  resultType: 'complete',
  supportedVersions: [V],
  capabilities: { tools: {}, resources: { subscribe: true, listChanged: true }, logging: {} },
  _meta: { 'io.modelcontextprotocol/serverInfo': { name: 'peer', version: '2' } },
  instructions: 'be nice',
  ttlMs: 1000,
  cacheScope: 'public',
};

const ok = (result: JsonObject): JsonRpcResponse => ({ jsonrpc: '2.0', id: 1, result });
const err = (code: number, data?: unknown): JsonRpcResponse => ({
  jsonrpc: '2.0',
  id: 1,
  error: { code, message: 'x', ...(data === undefined ? {} : { data }) },
});

describe('the protocol server setting', () => {
  it('defaults to auto and accepts legacy and modern, for stdio and remote servers', () => {
    expect(StdioServer.parse({ command: 'x' }).protocol).toBe('auto');
    expect(RemoteServer.parse({ url: 'http://h/mcp' }).protocol).toBe('auto');
    expect(StdioServer.parse({ command: 'x', protocol: 'legacy' }).protocol).toBe('legacy');
    expect(RemoteServer.parse({ url: 'http://h/mcp', protocol: 'modern' }).protocol).toBe('modern');
  });

  it('refuses anything else', () => {
    expect(() => StdioServer.parse({ command: 'x', protocol: '2026-07-28' })).toThrow();
    expect(() => RemoteServer.parse({ url: 'http://h/mcp', protocol: true })).toThrow();
  });
});

describe('judgeDiscoverAnswer (basic/versioning §Backward Compatibility)', () => {
  it('is modern for a DiscoverResult listing 2026-07-28', () => {
    expect(judgeDiscoverAnswer(ok(DISCOVER)).kind).toBe('modern');
  });

  it('is incompatible (no fallback) for a DiscoverResult without 2026-07-28 or a modern error', () => {
    expect(judgeDiscoverAnswer(ok({ supportedVersions: ['2027-01-01'] })).kind).toBe('incompatible');
    expect(judgeDiscoverAnswer(err(-32022, { supported: ['2027-01-01'] })).kind).toBe('incompatible');
    expect(judgeDiscoverAnswer(err(-32020)).kind).toBe('incompatible');
    expect(judgeDiscoverAnswer(err(-32021)).kind).toBe('incompatible');
    // A modern error in the body of an HTTP 400, as the transport reports it.
    expect(
      judgeDiscoverAnswer(err(-33026, { code: 'SWB_ERR_UPSTREAM_HTTP', status: 400, modernError: -32022 })).kind,
    ).toBe('incompatible');
  });

  it('falls back (legacy) on any other error, an HTTP 4xx, a timeout or an odd result', () => {
    for (const r of [
      err(-32601),
      err(-32602),
      err(-32600),
      err(-32000),
      err(-33026, { code: 'SWB_ERR_UPSTREAM_HTTP', status: 400 }),
      err(-33026, { code: 'SWB_ERR_UPSTREAM_HTTP', status: 404 }),
      err(-33022, { code: 'SWB_ERR_UPSTREAM_TIMEOUT' }),
      err(-33023, { code: 'SWB_ERR_UPSTREAM_PROTOCOL' }),
      ok({}),
    ]) {
      expect(judgeDiscoverAnswer(r).kind).toBe('legacy');
    }
  });

  it('is unreachable when the probe never reached a server', () => {
    expect(judgeDiscoverAnswer(err(-33020, { code: 'SWB_ERR_UPSTREAM_UNAVAILABLE' })).kind).toBe('unreachable');
    expect(judgeDiscoverAnswer(err(-33021, { code: 'SWB_ERR_UPSTREAM_CLOSED' })).kind).toBe('unreachable');
  });
});

describe('modernErrorOf (the body of an HTTP 4xx)', () => {
  it('recognises the modern error codes and keeps the supported versions only', () => {
    expect(
      modernErrorOf(
        JSON.stringify({ jsonrpc: '2.0', id: 1, error: { code: -32022, message: 'no', data: { supported: ['x'] } } }),
      ),
    ).toEqual({ modernError: -32022, supported: ['x'] });
    expect(modernErrorOf(JSON.stringify({ error: { code: -32020, message: 'mismatch' } }))).toEqual({
      modernError: -32020,
    });
  });

  it('ignores other errors and bodies that are not JSON', () => {
    expect(modernErrorOf(JSON.stringify({ error: { code: -32000, message: 'Bad Request: no session' } }))).toBe(
      undefined,
    );
    expect(modernErrorOf('Bad Request')).toBe(undefined);
    expect(modernErrorOf('')).toBe(undefined);
    expect(modernErrorOf('null')).toBe(undefined);
  });
});

describe('encodeHeaderValue (transports §Value Encoding)', () => {
  it('keeps plain visible ASCII, inner spaces included', () => {
    for (const v of ['echo', 'get-sum', 'file:///a/b.txt', 'a b', '']) expect(encodeHeaderValue(v)).toBe(v);
  });

  it('uses the Base64 sentinel for non-ASCII, control characters, outer whitespace and sentinel look-alikes', () => {
    expect(encodeHeaderValue('grüße')).toBe(`=?base64?${Buffer.from('grüße').toString('base64')}?=`);
    for (const v of ['grüße', '工具', ' lead', 'trail ', 'tab\there', 'line\nbreak', '=?base64?abc?=', '=?x']) {
      const encoded = encodeHeaderValue(v);
      expect(encoded).toMatch(/^=\?base64\?[A-Za-z0-9+/]*={0,2}\?=$/);
      expect(decodeHeaderValue(encoded)).toBe(v);
    }
  });
});

describe('initializeResultOfDiscover', () => {
  it('takes the capabilities (resource subscribe included), serverInfo from _meta and the instructions', () => {
    expect(initializeResultOfDiscover(DISCOVER)).toEqual({
      protocolVersion: V,
      capabilities: { tools: {}, resources: { subscribe: true, listChanged: true }, logging: {} },
      serverInfo: { name: 'peer', version: '2' },
      instructions: 'be nice',
    });
  });
});

/** How the hand-driven peer answers `server/discover`. */
type DiscoverAnswer = 'modern' | 'method-not-found' | 'unsupported-version' | 'silent';

/**
 * A hand-driven peer: answers `server/discover` as told, `initialize` as a 2025 server, and
 * `tools/list`/`tools/call` (a tool `ask` answers `input_required`); records the wire.
 */
function peer(discover: DiscoverAnswer, ttlMs = 1000) {
  const pair = createMemoryTransportPair({ name: 'peer' });
  const wire: JsonRpcMessage[] = [];
  let toolsListed = 0;
  pair.server.onmessage = (raw) => {
    const m = raw as JsonRpcMessage;
    wire.push(m);
    if (!('method' in m) || !('id' in m)) return;
    const reply = (result: JsonObject) => void pair.server.send({ jsonrpc: '2.0', id: m.id, result });
    const fail = (code: number, data?: JsonObject) =>
      void pair.server.send({ jsonrpc: '2.0', id: m.id, error: { code, message: 'no', ...(data ? { data } : {}) } });
    switch (m.method) {
      case 'server/discover':
        if (discover === 'modern') reply(DISCOVER);
        else if (discover === 'method-not-found') fail(-32601);
        else if (discover === 'unsupported-version') fail(-32022, { supported: ['2027-01-01'] });
        return;
      case 'initialize':
        reply({
          protocolVersion: '2025-11-25',
          capabilities: { tools: {} },
          serverInfo: { name: 'old', version: '1' },
        });
        return;
      case 'tools/list':
        toolsListed++;
        reply({ tools: [{ name: `t${toolsListed}`, inputSchema: { type: 'object' } }], ttlMs });
        return;
      case 'tools/call':
        if ((m.params as JsonObject).name === 'hang') return;
        if ((m.params as JsonObject).name === 'ask') reply({ resultType: 'input_required', inputRequests: {} });
        else if ((m.params as JsonObject).name === 'ask-once') {
          const answers = (m.params as JsonObject).inputResponses as JsonObject | undefined;
          if (answers === undefined) {
            reply({
              resultType: 'input_required',
              inputRequests: { q: { method: 'elicitation/create', params: { message: 'name?' } } },
              requestState: 'opaque-1',
            });
          } else {
            const state = (m.params as JsonObject).requestState;
            reply({ resultType: 'complete', content: [{ type: 'text', text: JSON.stringify({ answers, state }) }] });
          }
        } else reply({ resultType: 'complete', content: [] });
        return;
      default:
        fail(-32601);
    }
  };
  void pair.server.start();
  return { pair, wire, listed: () => toolsListed };
}

function connection(p: ReturnType<typeof peer>, protocol: UpstreamProtocol, probeTimeoutMs = 5000, exclusive = false) {
  return new UpstreamConnection(p.pair.upstream, {
    name: 'peer',
    exclusiveAttribution: exclusive,
    logger: silentLogger(),
    protocol,
    probeTimeoutMs,
    initializeTimeoutMs: 200,
    gatewayVersion: '9.9.9',
  });
}

const methods = (wire: JsonRpcMessage[]) => wire.map((m) => ('method' in m ? m.method : 'response'));

describe('UpstreamConnection.open', () => {
  it('auto: a DiscoverResult makes the connection modern, with no initialize', async () => {
    const p = peer('modern');
    const conn = connection(p, 'auto');
    const result = await conn.open();
    expect(conn.era).toBe('modern');
    expect(result).toMatchObject({ protocolVersion: V, serverInfo: { name: 'peer' } });
    expect(conn.discoverResult).toEqual(DISCOVER);
    expect(methods(p.wire)).toEqual(['server/discover']);
    expect((p.wire[0] as { params: JsonObject }).params._meta).toEqual({
      'io.modelcontextprotocol/protocolVersion': V,
      'io.modelcontextprotocol/clientCapabilities': {},
      'io.modelcontextprotocol/clientInfo': { name: 'switchboard', version: '9.9.9' },
    });
  });

  it('auto: an error falls back to initialize', async () => {
    const p = peer('method-not-found');
    const conn = connection(p, 'auto');
    await conn.open();
    expect(conn.era).toBe('legacy');
    expect(methods(p.wire)).toEqual(['server/discover', 'initialize', 'notifications/initialized']);
  });

  it('auto: no answer within the probe timeout falls back to initialize', async () => {
    const p = peer('silent');
    const conn = connection(p, 'auto', 30);
    await conn.open();
    expect(conn.era).toBe('legacy');
    expect(methods(p.wire)).toContain('initialize');
  });

  it('auto: a modern error does not fall back', async () => {
    const p = peer('unsupported-version');
    const conn = connection(p, 'auto');
    await expect(conn.open()).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_ERA' });
    expect(methods(p.wire)).toEqual(['server/discover']);
  });

  it('modern: a legacy answer fails with SWB_ERR_UPSTREAM_ERA, without initialize', async () => {
    const p = peer('method-not-found');
    const conn = connection(p, 'modern');
    const failure = await conn.open().catch((e: unknown) => e);
    expect(failure).toBeInstanceOf(GatewayError);
    expect((failure as GatewayError).code).toBe('SWB_ERR_UPSTREAM_ERA');
    expect((failure as GatewayError).message).toMatch(/does not speak MCP 2026-07-28/);
    expect(methods(p.wire)).toEqual(['server/discover']);
  });

  it('legacy: initialize only, no probe', async () => {
    const p = peer('modern');
    const conn = connection(p, 'legacy');
    await conn.open();
    expect(conn.era).toBe('legacy');
    expect(methods(p.wire)).toEqual(['initialize', 'notifications/initialized']);
  });
});

describe('requests to a modern upstream', () => {
  it("stamps _meta over the caller's in a copy, keeping its progress token (remapped) and trace context", async () => {
    const p = peer('modern');
    const conn = connection(p, 'auto');
    await conn.open();
    const params: JsonObject = {
      name: 'x',
      _meta: {
        progressToken: 'client-token',
        traceparent: '00-abc-def-01',
        'io.modelcontextprotocol/protocolVersion': 'bogus',
      },
    };
    const snapshot = JSON.parse(JSON.stringify(params)) as JsonObject;
    const inflight = conn.request('tools/call', params);
    await inflight.response;
    expect(params).toEqual(snapshot); // the caller's params are not touched
    const sent = p.wire.at(-1) as { params: JsonObject };
    expect(sent.params._meta).toEqual({
      progressToken: inflight.upstreamId,
      traceparent: '00-abc-def-01',
      'io.modelcontextprotocol/protocolVersion': V,
      'io.modelcontextprotocol/clientCapabilities': {},
      'io.modelcontextprotocol/clientInfo': { name: 'switchboard', version: '9.9.9' },
    });

    await conn.request('tools/list', undefined).response;
    expect((p.wire.at(-1) as { params: JsonObject }).params._meta).toMatchObject({
      'io.modelcontextprotocol/protocolVersion': V,
    });
  });

  it("declares a modern client's own capabilities on its requests, none for a 2025-era client", async () => {
    const p = peer('modern');
    const conn = connection(p, 'auto');
    await conn.open();
    const who = (modern: boolean): Caller => ({
      sessionId: 's',
      clientCapabilities: { elicitation: {} },
      modern,
      notify: () => undefined,
      request: () => Promise.resolve({ result: {} }),
    });
    await conn.request('tools/call', { name: 'x' }, { caller: who(true) }).response;
    expect((p.wire.at(-1) as { params: JsonObject }).params._meta).toMatchObject({
      'io.modelcontextprotocol/clientCapabilities': { elicitation: {} },
    });
    await conn.request('tools/call', { name: 'x' }, { caller: who(false) }).response;
    expect((p.wire.at(-1) as { params: JsonObject }).params._meta).toMatchObject({
      'io.modelcontextprotocol/clientCapabilities': {},
    });
  });

  it('does not hold back calls of clients able to answer requests on stdio (a modern upstream sends none)', async () => {
    const p = peer('modern');
    const conn = connection(p, 'auto', 5000, true);
    await conn.open();
    const bidi = (sessionId: string): Caller => ({
      sessionId,
      clientCapabilities: { elicitation: {} },
      notify: () => undefined,
      request: () => Promise.resolve({ result: {} }),
    });
    conn.request('tools/call', { name: 'hang' }, { caller: bidi('a') });
    conn.request('tools/call', { name: 'hang' }, { caller: bidi('b') });
    await until(() => methods(p.wire).filter((m) => m === 'tools/call').length === 2);
  });

  it('does not send notifications the modern era removed; cancels over stdio with notifications/cancelled', async () => {
    const p = peer('modern');
    const conn = connection(p, 'auto');
    await conn.open();
    conn.notify('notifications/roots/list_changed');
    conn.notify('notifications/initialized');
    const inflight = conn.request('tools/call', { name: 'never' });
    conn.cancel(inflight.upstreamId, 'user');
    await until(() => methods(p.wire).includes('notifications/cancelled'));
    expect(methods(p.wire)).not.toContain('notifications/roots/list_changed');
    expect(methods(p.wire).filter((m) => m === 'notifications/initialized')).toEqual([]);
  });
});

describe('Upstream with a modern upstream', () => {
  const running: Upstream[] = [];
  afterEach(async () => {
    vi.useRealTimers();
    await Promise.allSettled(running.splice(0).map((u) => u.stop()));
  });

  function upstream(p: ReturnType<typeof peer>) {
    const events: UpstreamEvent[] = [];
    const u = new Upstream({
      name: 'm',
      config: StdioServer.parse({ command: 'in-memory' }),
      logger: silentLogger(),
      gatewayVersion: '9.9.9',
      attributionWaitMs: 1000,
      createTransport: () => p.pair.upstream,
      onEvent: (e) => events.push(e),
    });
    running.push(u);
    return { u, events };
  }

  const ctx = { sessionId: 's', principalId: 'anonymous' };
  const caller = (modern: boolean): Caller => ({
    sessionId: 's',
    clientCapabilities: {},
    modern,
    notify: () => undefined,
    request: () => Promise.resolve({ result: {} }),
  });

  it('records the era and answers logging/setLevel locally; resources/subscribe is never sent', async () => {
    const p = peer('modern');
    const { u } = upstream(p);
    await u.start();
    expect(u.era).toBe('modern');
    expect(u.capabilities).toMatchObject({ logging: {} });
    const set = await u.call(ctx, 'logging/setLevel', { level: 'info' }, undefined).response;
    expect(set).toMatchObject({ result: {} });
    const removed = await u.call(ctx, 'resources/subscribe', { uri: 'a://b' }, undefined).response;
    expect(removed).toMatchObject({ error: { data: { code: 'SWB_ERR_UPSTREAM_METHOD_REMOVED' } } });
    // A subscription goes into a subscriptions/listen request, which this peer does not know.
    const sub = await u.subscribe(ctx, 'a://b', undefined);
    expect(sub).toMatchObject({ error: { code: -32601 } });
    expect(u.subscribersOf('a://b').size).toBe(0);
    const sent = methods(p.wire);
    expect(sent).toContain('subscriptions/listen');
    expect(sent).not.toContain('logging/setLevel');
    expect(sent).not.toContain('resources/subscribe');
  });

  it('passes input_required to modern clients; answers it for a 2025-era client, giving up after 8 rounds', async () => {
    const p = peer('modern');
    const { u } = upstream(p);
    await u.start();
    const modern = await u.call(ctx, 'tools/call', { name: 'ask' }, caller(true)).response;
    expect(modern).toMatchObject({ result: { resultType: 'input_required' } });
    const before = p.wire.length;
    const legacy = await u.call(ctx, 'tools/call', { name: 'ask' }, caller(false)).response;
    expect(legacy).toMatchObject({ error: { data: { code: 'SWB_ERR_UPSTREAM_INPUT_REQUIRED' } } });
    expect((legacy as { error: { message: string } }).error.message).toMatch(/more than 8 rounds/);
    // The call and its 8 retries.
    expect(methods(p.wire.slice(before)).filter((x) => x === 'tools/call')).toHaveLength(9);
    const done = await u.call(ctx, 'tools/call', { name: 'other' }, caller(false)).response;
    expect(done).toMatchObject({ result: { resultType: 'complete' } });
  });

  it("asks a 2025-era client the upstream's input request and retries with its answer and the requestState", async () => {
    const p = peer('modern');
    const { u } = upstream(p);
    await u.start();
    const asked: Array<[string, unknown]> = [];
    const client: Caller = {
      ...caller(false),
      clientCapabilities: { elicitation: {} },
      request: (method, params) => {
        asked.push([method, params]);
        return Promise.resolve({ result: { action: 'accept', content: { name: 'ada' } } });
      },
    };
    const done = await u.call(ctx, 'tools/call', { name: 'ask-once' }, client).response;
    expect(asked).toEqual([['elicitation/create', { message: 'name?' }]]);
    const body = JSON.parse(
      (done as unknown as { result: { content: Array<{ text: string }> } }).result.content[0]!.text,
    );
    expect(body).toEqual({ answers: { q: { action: 'accept', content: { name: 'ada' } } }, state: 'opaque-1' });
    // Without the capability the client is not asked.
    const refused = await u.call(ctx, 'tools/call', { name: 'ask-once' }, caller(false)).response;
    expect(refused).toMatchObject({ error: { data: { code: 'SWB_ERR_UPSTREAM_INPUT_REQUIRED' } } });
    expect((refused as { error: { message: string } }).error.message).toMatch(/did not declare the elicitation/);
  });

  it("refreshes the catalog when the lists' ttlMs expires (at least 5 s apart)", async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
    const p = peer('modern', 1000);
    const { u, events } = upstream(p);
    await u.start();
    expect(u.catalog.tools.map((t) => t.name)).toEqual(['t1']);
    await vi.advanceTimersByTimeAsync(4000);
    expect(p.listed()).toBe(1); // ttlMs 1 s is raised to the 5 s floor
    await vi.advanceTimersByTimeAsync(1500);
    await until(() => p.listed() === 2);
    await until(() => u.catalog.tools[0]?.name === 't2');
    expect(events.some((e) => e.type === 'catalog')).toBe(true);
  });
});
