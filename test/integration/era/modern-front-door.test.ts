/**
 * MCP 2026-07-28 (stateless) clients through Switchboard to 2025-era upstreams: the official SDK
 * v2 client pinned to 2026-07-28 and on `auto`, on every endpoint kind, beside a 2025-era client
 * on the same gateway; and the modern front door's refusals, byte for byte on the wire.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as ClientV2, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, everythingStdio, startTestGateway } from '../../helpers/gateway.js';

const V = '2026-07-28';

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

/** The per-request `_meta` a modern request carries (basic §`_meta`). */
function modernMeta(version = V): Record<string, unknown> {
  return {
    'io.modelcontextprotocol/protocolVersion': version,
    'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };
}

interface RawAnswer {
  status: number;
  headers: Headers;
  body: Record<string, unknown> | undefined;
}

/** POSTs one JSON-RPC message with the given headers (defaults: a valid modern request's). */
async function post(
  url: string,
  message: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<RawAnswer> {
  const res = await fetch(url, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      ...headers,
    },
    body: JSON.stringify(message),
  });
  const raw = await res.text();
  return { status: res.status, headers: res.headers, body: raw === '' ? undefined : JSON.parse(raw) };
}

function modernHeaders(method: string, name?: string, version = V): Record<string, string> {
  return {
    'mcp-protocol-version': version,
    'mcp-method': method,
    ...(name === undefined ? {} : { 'mcp-name': name }),
  };
}

describe('modern (2026-07-28) clients through Switchboard to a 2025-era upstream', () => {
  let gw: RunningGateway;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    gw = await startTestGateway({
      servers: { everything: everythingStdio() },
      virtualServers: { kit: { servers: { everything: { tools: { allow: ['echo', 'get-sum'] } } } } },
    });
  });

  afterAll(async () => {
    await Promise.allSettled(closers.map((c) => c()));
    await gw?.close();
  });

  async function v2(path: string, mode: 'auto' | { pin: string }): Promise<ClientV2> {
    const client = new ClientV2({ name: 'v2-test', version: '1.0.0' }, { versionNegotiation: { mode } });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url + path)));
    closers.push(() => client.close());
    return client;
  }

  const endpoints: Array<[string, string, string]> = [
    ['/mcp', 'everything__echo', 'everything__get-sum'],
    ['/mcp/kit', 'everything__echo', 'everything__get-sum'],
    ['/servers/everything/mcp', 'echo', 'get-sum'],
  ];

  describe.each(endpoints)('on %s', (path, echo, sum) => {
    it.each<['pinned' | 'auto', 'auto' | { pin: string }]>([
      ['pinned', { pin: V }],
      ['auto', 'auto'],
    ])('an SDK v2 client (%s) negotiates 2026-07-28, lists and calls tools', async (_label, mode) => {
      const client = await v2(path, mode);
      expect(client.getNegotiatedProtocolVersion()).toBe(V);
      expect(client.getProtocolEra()).toBe('modern');
      const { tools } = await client.listTools();
      const names = tools.map((t) => t.name);
      expect(names).toContain(echo);
      expect(names).toContain(sum);
      const echoed = await client.callTool({ name: echo, arguments: { message: 'hello modern' } });
      expect(text(echoed)).toBe('Echo: hello modern');
      const added = await client.callTool({ name: sum, arguments: { a: 2, b: 40 } });
      expect(text(added)).toContain('42');
    });
  });

  it('serves a 2025-era SDK v1 session beside modern clients on the same endpoint', async () => {
    const { client } = await connectClient(gw.url + '/mcp', {}, 'v1-client');
    closers.push(() => client.close());
    const modern = await v2('/mcp', { pin: V });
    const [a, b] = await Promise.all([
      client.callTool({ name: 'everything__echo', arguments: { message: 'legacy' } }),
      modern.callTool({ name: 'everything__echo', arguments: { message: 'modern' } }),
    ]);
    expect(text(a)).toBe('Echo: legacy');
    expect(text(b)).toBe('Echo: modern');
  });

  it('answers server/discover with versions, capabilities, identity and caching hints', async () => {
    const r = await post(
      gw.url + '/mcp',
      { jsonrpc: '2.0', id: 'd1', method: 'server/discover', params: { _meta: modernMeta() } },
      modernHeaders('server/discover'),
    );
    expect(r.status).toBe(200);
    expect(r.headers.get('mcp-session-id')).toBeNull();
    const result = r.body!.result as Record<string, unknown>;
    expect(r.body!.id).toBe('d1');
    expect(result.resultType).toBe('complete');
    expect((result.supportedVersions as string[])[0]).toBe(V);
    expect(result.supportedVersions).toContain('2025-11-25');
    expect(result.capabilities).toMatchObject({ tools: {} });
    expect(result.capabilities).toMatchObject({ tools: { listChanged: true } });
    expect((result._meta as Record<string, unknown>)['io.modelcontextprotocol/serverInfo']).toMatchObject({
      name: 'switchboard',
    });
    expect(result.ttlMs).toBeGreaterThanOrEqual(0);
    expect(result.cacheScope).toBe('public');
  });

  it('puts resultType, the server identity and caching hints on lists, and resultType on calls', async () => {
    const list = await post(
      gw.url + '/servers/everything/mcp',
      { jsonrpc: '2.0', id: 7, method: 'tools/list', params: { _meta: modernMeta() } },
      modernHeaders('tools/list'),
    );
    expect(list.status).toBe(200);
    const lr = list.body!.result as Record<string, unknown>;
    expect(list.body!.id).toBe(7);
    expect(lr).toMatchObject({ resultType: 'complete', cacheScope: 'public' });
    expect(typeof lr.ttlMs).toBe('number');
    expect((lr.tools as unknown[]).length).toBeGreaterThan(3);
    expect((lr._meta as Record<string, unknown>)['io.modelcontextprotocol/serverInfo']).toBeDefined();

    const call = await post(
      gw.url + '/servers/everything/mcp',
      {
        jsonrpc: '2.0',
        id: 8,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'x' }, _meta: modernMeta() },
      },
      modernHeaders('tools/call', 'echo'),
    );
    expect(call.status).toBe(200);
    expect(call.body).toMatchObject({ id: 8, result: { resultType: 'complete', content: [{ text: 'Echo: x' }] } });
  });

  it('counts modern requests under era="modern" in /metrics', async () => {
    const before = await fetch(gw.url + '/metrics').then((r) => r.text());
    const count = (text: string) =>
      Number(
        /switchboard_requests_total\{server="everything",method="tools\/call",status="ok",era="modern"\} (\d+)/.exec(
          text,
        )?.[1] ?? 0,
      );
    await post(
      gw.url + '/servers/everything/mcp',
      {
        jsonrpc: '2.0',
        id: 1,
        method: 'tools/call',
        params: { name: 'echo', arguments: { message: 'm' }, _meta: modernMeta() },
      },
      modernHeaders('tools/call', 'echo'),
    );
    const after = await fetch(gw.url + '/metrics').then((r) => r.text());
    expect(count(after)).toBe(count(before) + 1);
  });

  it('keeps two modern clients of one principal apart when both use the same request id', async () => {
    const send = (message: string) =>
      post(
        gw.url + '/mcp',
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'tools/call',
          params: { name: 'everything__echo', arguments: { message }, _meta: modernMeta() },
        },
        modernHeaders('tools/call', 'everything__echo'),
      );
    const answers = await Promise.all(['one', 'two', 'three', 'four'].map(send));
    expect(answers.map((a) => [a.status, a.body!.id, text(a.body!.result)])).toEqual([
      [200, 1, 'Echo: one'],
      [200, 1, 'Echo: two'],
      [200, 1, 'Echo: three'],
      [200, 1, 'Echo: four'],
    ]);
  });

  it('accepts a Base64-encoded Mcp-Name (transports §Value Encoding)', async () => {
    const encoded = `=?base64?${Buffer.from('everything__echo').toString('base64')}?=`;
    const r = await post(
      gw.url + '/mcp',
      {
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'everything__echo', arguments: { message: 'b64' }, _meta: modernMeta() },
      },
      modernHeaders('tools/call', encoded),
    );
    expect(r.status).toBe(200);
    expect(text(r.body!.result)).toBe('Echo: b64');
  });

  it('streams progress as SSE and cancels the upstream call when the client closes the response', async () => {
    const abort = new AbortController();
    const res = await fetch(gw.url + '/servers/everything/mcp', {
      method: 'POST',
      signal: abort.signal,
      headers: {
        'content-type': 'application/json',
        accept: 'application/json, text/event-stream',
        ...modernHeaders('tools/call', 'trigger-long-running-operation'),
      },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 'long',
        method: 'tools/call',
        params: {
          name: 'trigger-long-running-operation',
          arguments: { duration: 30, steps: 30 },
          _meta: { ...modernMeta(), progressToken: 'p1' },
        },
      }),
    });
    expect(res.headers.get('content-type')).toBe('text/event-stream');
    const reader = res.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    expect(first).toContain('notifications/progress');
    expect(first).toContain('"progressToken":"p1"');
    const stateless = [...gw.gateway.sessionsOf('anonymous')].filter((s) => s.transportKind === 'stateless');
    expect(stateless.reduce((n, s) => n + s.inFlight, 0)).toBe(1);
    abort.abort();
    await reader.cancel().catch(() => undefined);
    const deadline = Date.now() + 5_000;
    while (stateless.reduce((n, s) => n + s.inFlight, 0) > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(stateless.reduce((n, s) => n + s.inFlight, 0)).toBe(0);
  });

  describe('server→client requests of a 2025-era upstream, as input_required (MRTR)', () => {
    async function bidi(who: string, path = '/mcp'): Promise<ClientV2> {
      const client = new ClientV2(
        { name: `v2-${who}`, version: '1.0.0' },
        {
          capabilities: { sampling: {}, elicitation: {}, roots: {} },
          versionNegotiation: { mode: { pin: V } },
        },
      );
      client.setRequestHandler('sampling/createMessage', async () => {
        await new Promise((r) => setTimeout(r, 50));
        return { model: 'm', role: 'assistant', content: { type: 'text', text: `sampled-by-${who}` } };
      });
      client.setRequestHandler('elicitation/create', async () => ({
        action: 'accept',
        content: { name: `Ada-${who}`, check: true },
      }));
      client.setRequestHandler('roots/list', async () => ({ roots: [{ uri: `file:///work/${who}`, name: who }] }));
      await client.connect(new StreamableHTTPClientTransport(new URL(gw.url + path)));
      closers.push(() => client.close());
      return client;
    }

    it('answers sampling, elicitation and roots through the retry, each to the client that caused it', async () => {
      const [a, b] = await Promise.all([bidi('a'), bidi('b')]);
      const [sa, sb] = await Promise.all([
        a.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } }),
        b.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'y', maxTokens: 5 } }),
      ]);
      expect(text(sa)).toContain('sampled-by-a');
      expect(text(sa)).not.toContain('sampled-by-b');
      expect(text(sb)).toContain('sampled-by-b');
      expect(text(sb)).not.toContain('sampled-by-a');
      const elicited = await a.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
      expect(text(elicited)).toContain('Ada-a');
      const roots = await b.callTool({ name: 'everything__get-roots-list', arguments: {} });
      expect(text(roots)).toContain('file:///work/b');
    });

    it('parks the call behind an integrity-protected requestState and refuses a forged or replayed one', async () => {
      const url = gw.url + '/servers/everything/mcp';
      const caps = { ...modernMeta(), 'io.modelcontextprotocol/clientCapabilities': { sampling: {} } };
      const params = { name: 'trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 } };
      const first = await post(
        url,
        { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { ...params, _meta: caps } },
        modernHeaders('tools/call', 'trigger-sampling-request'),
      );
      expect(first.status).toBe(200);
      const ir = first.body!.result as {
        resultType: string;
        inputRequests: Record<string, unknown>;
        requestState: string;
      };
      expect(ir.resultType).toBe('input_required');
      const keys = Object.keys(ir.inputRequests);
      expect(keys).toHaveLength(1);
      expect(ir.inputRequests[keys[0]!]).toMatchObject({ method: 'sampling/createMessage' });
      expect(typeof ir.requestState).toBe('string');

      const answer = { [keys[0]!]: { model: 'm', role: 'assistant', content: { type: 'text', text: 'raw-answer' } } };
      const retry = (id: number, requestState: string, name = 'trigger-sampling-request') =>
        post(
          url,
          {
            jsonrpc: '2.0',
            id,
            method: 'tools/call',
            params: { ...params, name, _meta: caps, inputResponses: answer, requestState },
          },
          modernHeaders('tools/call', name),
        );
      const forged = await retry(2, ir.requestState.slice(0, -2) + 'xx');
      expect([forged.status, (forged.body!.error as { code: number }).code, forged.body!.id]).toEqual([400, -32602, 2]);
      const otherTool = await retry(3, ir.requestState, 'echo');
      expect([otherTool.status, (otherTool.body!.error as { code: number }).code]).toEqual([400, -32602]);

      const done = await retry(4, ir.requestState);
      expect(done.status).toBe(200);
      expect(done.body!.id).toBe(4);
      expect(text(done.body!.result)).toContain('raw-answer');
      expect((done.body!.result as { resultType: string }).resultType).toBe('complete');

      const replayed = await retry(5, ir.requestState);
      expect([replayed.status, (replayed.body!.error as { code: number }).code]).toEqual([400, -32602]);
    });

    it('answers 400 -32021 with data.requiredCapabilities when the upstream needs a capability the request did not declare', async () => {
      const r = await post(
        gw.url + '/servers/everything/mcp',
        {
          jsonrpc: '2.0',
          id: 9,
          method: 'tools/call',
          params: {
            name: 'trigger-sampling-request',
            arguments: { prompt: 'p', maxTokens: 5 },
            // roots only: on a shared stdio child, a call is told apart from others (and its
            // server requests attributed to it) when it declares one of sampling/elicitation/roots.
            _meta: { ...modernMeta(), 'io.modelcontextprotocol/clientCapabilities': { roots: {} } },
          },
        },
        modernHeaders('tools/call', 'trigger-sampling-request'),
      );
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({
        id: 9,
        error: { code: -32021, data: { requiredCapabilities: { sampling: {} } } },
      });
    });
  });

  describe('refusals (status, code, and the request id echoed)', () => {
    const call = (meta: Record<string, unknown> | undefined, name = 'everything__echo') => ({
      jsonrpc: '2.0',
      id: 42,
      method: 'tools/call',
      params: { name, arguments: { message: 'x' }, ...(meta === undefined ? {} : { _meta: meta }) },
    });

    it('400 -32602 when a modern request lacks _meta protocolVersion', async () => {
      const r = await post(gw.url + '/mcp', call({}), modernHeaders('tools/call', 'everything__echo'));
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ id: 42, error: { code: -32602 } });
    });

    it('400 -32602 when clientCapabilities is missing', async () => {
      const meta = modernMeta();
      delete meta['io.modelcontextprotocol/clientCapabilities'];
      const r = await post(gw.url + '/mcp', call(meta), modernHeaders('tools/call', 'everything__echo'));
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ id: 42, error: { code: -32602 } });
    });

    it('400 -32020 when MCP-Protocol-Version is missing or differs from _meta', async () => {
      const missing = await post(gw.url + '/mcp', call(modernMeta()), {
        'mcp-method': 'tools/call',
        'mcp-name': 'everything__echo',
      });
      expect(missing.status).toBe(400);
      expect(missing.body).toMatchObject({ id: 42, error: { code: -32020 } });
      const differs = await post(
        gw.url + '/mcp',
        call(modernMeta()),
        modernHeaders('tools/call', 'everything__echo', '2026-12-01'),
      );
      expect(differs.status).toBe(400);
      expect(differs.body).toMatchObject({ id: 42, error: { code: -32020 } });
    });

    it('400 -32020 when Mcp-Method or Mcp-Name is missing or does not match the body', async () => {
      for (const headers of [
        { 'mcp-protocol-version': V, 'mcp-name': 'everything__echo' },
        modernHeaders('tools/list', 'everything__echo'),
        modernHeaders('tools/call'),
        modernHeaders('tools/call', 'everything__get-sum'),
        modernHeaders('tools/call', '=?base64?not base64?='),
      ]) {
        const r = await post(gw.url + '/mcp', call(modernMeta()), headers);
        expect(
          [r.status, (r.body?.error as { code?: number } | undefined)?.code, r.body?.id],
          JSON.stringify(headers),
        ).toEqual([400, -32020, 42]);
      }
    });

    it('400 -32022 with data.supported for a version it does not serve', async () => {
      const r = await post(
        gw.url + '/mcp',
        call(modernMeta('2099-01-01')),
        modernHeaders('tools/call', 'everything__echo', '2099-01-01'),
      );
      expect(r.status).toBe(400);
      expect(r.body).toMatchObject({ id: 42, error: { code: -32022, data: { requested: '2099-01-01' } } });
      const data = (r.body!.error as { data: { supported: string[] } }).data;
      expect(data.supported).toContain(V);
    });

    it('404 -32601 for methods this era removed (ping, logging/setLevel, resources/subscribe)', async () => {
      for (const method of ['initialize', 'ping', 'logging/setLevel', 'resources/subscribe', 'no/such-method']) {
        const r = await post(
          gw.url + '/mcp',
          { jsonrpc: '2.0', id: 'm', method, params: { _meta: modernMeta() } },
          modernHeaders(method),
        );
        expect([r.status, (r.body?.error as { code?: number }).code, r.body?.id], method).toEqual([404, -32601, 'm']);
      }
    });

    it('-32602, not -32002, for a resource that does not exist', async () => {
      const uri = 'demo://resource/static/document/no-such-doc.md';
      const r = await post(
        gw.url + '/servers/everything/mcp',
        { jsonrpc: '2.0', id: 5, method: 'resources/read', params: { uri, _meta: modernMeta() } },
        modernHeaders('resources/read', uri),
      );
      expect(r.body).toMatchObject({ id: 5, error: { code: -32602 } });
    });

    it('405 for GET and DELETE without a session', async () => {
      for (const method of ['GET', 'DELETE']) {
        const res = await fetch(gw.url + '/mcp', {
          method,
          headers: { accept: 'text/event-stream', 'mcp-protocol-version': V },
        });
        expect(res.status, method).toBe(405);
        expect(res.headers.get('allow')).toBe('POST');
        await res.arrayBuffer();
      }
    });
  });
});
