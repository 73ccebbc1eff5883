/**
 * End-to-end: official SDK clients → Switchboard → @modelcontextprotocol/server-everything over
 * stdio, Streamable HTTP and legacy SSE. Every MCP flow the gateway must carry faithfully.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  CreateMessageRequestSchema,
  ElicitRequestSchema,
  ListRootsRequestSchema,
  ResourceUpdatedNotificationSchema,
  LoggingMessageNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import {
  BIDI_CAPABILITIES,
  connectClient,
  connectSseClient,
  everythingStdio,
  startTestGateway,
  waitFor,
} from '../../helpers/gateway.js';
import { startEverythingHttp, type EverythingHttp } from '../../helpers/everything.js';

type Kind = 'stdio' | 'streamable-http' | 'sse';

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

describe.each<Kind>(['stdio', 'streamable-http', 'sse'])('through Switchboard to server-everything over %s', (kind) => {
  let gw: RunningGateway;
  let upstream: EverythingHttp | undefined;
  const clients: Client[] = [];

  beforeAll(async () => {
    let server: Record<string, unknown>;
    if (kind === 'stdio') server = everythingStdio();
    else {
      upstream = await startEverythingHttp(kind === 'sse' ? 'sse' : 'streamableHttp');
      server = { url: upstream.url, transport: kind };
    }
    gw = await startTestGateway({ servers: { everything: server } });
  });

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gw?.close();
    await upstream?.stop();
  });

  async function client(
    path = '/mcp',
    caps: Record<string, unknown> = BIDI_CAPABILITIES,
    name = 'test-client',
  ): Promise<Client> {
    const { client: c } = await connectClient(gw.url + path, caps, name);
    clients.push(c);
    return c;
  }

  it('lists namespaced tools on /mcp and calls everything__echo', async () => {
    const c = await client();
    const { tools } = await c.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toContain('everything__echo');
    expect(names).toContain('everything__trigger-sampling-request');
    expect(names.every((n) => n.startsWith('everything__'))).toBe(true);
    const result = await c.callTool({ name: 'everything__echo', arguments: { message: 'hello gateway' } });
    expect(text(result)).toBe('Echo: hello gateway');
  });

  it('keeps upstream names unchanged on /servers/everything/mcp', async () => {
    const c = await client('/servers/everything/mcp');
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name)).toContain('echo');
    expect(c.getServerVersion()?.name).not.toBe('switchboard');
    const result = await c.callTool({ name: 'get-sum', arguments: { a: 2, b: 40 } });
    expect(text(result)).toContain('42');
  });

  it('passes structuredContent through unchanged', async () => {
    const c = await client();
    const result = await c.callTool({
      name: 'everything__get-structured-content',
      arguments: { location: 'New York' },
    });
    expect(result.structuredContent).toEqual({ temperature: 33, conditions: 'Cloudy', humidity: 82 });
  });

  it('reads text and blob resources, including templated ones', async () => {
    const c = await client();
    const { resources } = await c.listResources();
    const doc = resources.find((r) => r.uri.startsWith('demo://resource/static/document/'));
    expect(doc).toMatchObject({
      uri: expect.stringMatching(/^demo:\/\/resource\/static\/document\/.+/),
      name: expect.any(String),
    });
    const read = await c.readResource({ uri: doc!.uri });
    expect((read.contents[0] as { text?: string }).text?.length).toBeGreaterThan(0);
    const blob = await c.readResource({ uri: 'demo://resource/dynamic/blob/7' });
    expect(typeof (blob.contents[0] as { blob?: string }).blob).toBe('string');
    const dynText = await c.readResource({ uri: 'demo://resource/dynamic/text/3' });
    expect(dynText.contents[0]).toMatchObject({
      uri: 'demo://resource/dynamic/text/3',
      text: expect.stringMatching(/^Resource 3: This is a plaintext resource/),
    });
    const { resourceTemplates } = await c.listResourceTemplates();
    expect(resourceTemplates.map((t) => t.uriTemplate)).toContain('demo://resource/dynamic/text/{resourceId}');
  });

  it('gets prompts and completes prompt arguments by their namespaced name', async () => {
    const c = await client();
    const { prompts } = await c.listPrompts();
    expect(prompts.map((p) => p.name)).toContain('everything__args-prompt');
    const p = await c.getPrompt({ name: 'everything__args-prompt', arguments: { city: 'Paris', state: 'TX' } });
    expect(JSON.stringify(p.messages)).toContain('Paris');
    const completion = await c.complete({
      ref: { type: 'ref/prompt', name: 'everything__completable-prompt' },
      argument: { name: 'department', value: 'Eng' },
    });
    expect(completion.completion.values).toEqual(['Engineering']);
  });

  it('routes progress notifications back to the calling request', async () => {
    const c = await client();
    const progress: number[] = [];
    const result = await c.callTool(
      { name: 'everything__trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
      undefined,
      { onprogress: (p) => progress.push(p.progress) },
    );
    expect(text(result)).toContain('completed');
    expect(progress).toEqual([1, 2, 3]);
  });

  it('cancels an in-flight call upstream when the client cancels', async () => {
    const c = await client();
    const ac = new AbortController();
    const call = c.callTool(
      { name: 'everything__trigger-long-running-operation', arguments: { duration: 5, steps: 5 } },
      undefined,
      { signal: ac.signal },
    );
    const up = gw.gateway.upstreams.get('everything')!;
    const session = await waitFor(
      () => [...gw.gateway.sessions.values()].find((s) => s.inFlight > 0),
      5000,
      'call in flight',
    );
    ac.abort('user cancelled');
    // The SDK client ends a request it cancelled itself with McpError -32001 (its RequestTimeout code).
    await expect(call).rejects.toMatchObject({ name: 'McpError', code: -32001 });
    await waitFor(() => session!.inFlight === 0, 5000, 'gateway to drop the cancelled call');
    expect(up.state).toBe('ready');
  });

  it('delivers resources/updated to the subscribed session', async () => {
    const c = await client();
    const updates: string[] = [];
    c.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    const uri = 'demo://resource/static/document/architecture.md';
    await c.subscribeResource({ uri });
    await c.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
    await waitFor(() => updates.includes(uri), 8000, 'resources/updated');
    await c.callTool({ name: 'everything__toggle-subscriber-updates', arguments: {} });
    await c.unsubscribeResource({ uri });
  });

  it('forwards logging/setLevel', async () => {
    const c = await client();
    const logs: unknown[] = [];
    c.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
      logs.push(n.params);
    });
    await expect(c.setLoggingLevel('debug')).resolves.toEqual({});
  });

  it('routes sampling, elicitation and roots requests to the calling client and back', async () => {
    const c = await client('/mcp', BIDI_CAPABILITIES, 'bidi');
    c.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: 'test-model',
      role: 'assistant',
      content: { type: 'text', text: 'sampled-by-bidi' },
    }));
    c.setRequestHandler(ElicitRequestSchema, async () => ({ action: 'accept', content: { name: 'Ada', check: true } }));
    c.setRequestHandler(ListRootsRequestSchema, async () => ({
      roots: [{ uri: 'file:///work/project', name: 'project' }],
    }));
    const sampled = await c.callTool({
      name: 'everything__trigger-sampling-request',
      arguments: { prompt: 'hi', maxTokens: 5 },
    });
    expect(text(sampled)).toContain('sampled-by-bidi');
    const elicited = await c.callTool({ name: 'everything__trigger-elicitation-request', arguments: {} });
    expect(text(elicited)).toContain('Ada');
    const roots = await c.callTool({ name: 'everything__get-roots-list', arguments: {} });
    expect(text(roots)).toContain('file:///work/project');
  });

  it('gives each of two concurrent sessions only its own server-to-client requests', async () => {
    const seen: Record<string, number> = { a: 0, b: 0 };
    const make = async (who: 'a' | 'b') => {
      const c = await client('/mcp', BIDI_CAPABILITIES, who);
      c.setRequestHandler(CreateMessageRequestSchema, async () => {
        seen[who]!++;
        await new Promise((r) => setTimeout(r, 100));
        return { model: 'm', role: 'assistant', content: { type: 'text', text: `answer-from-${who}` } };
      });
      return c;
    };
    const [a, b] = await Promise.all([make('a'), make('b')]);
    const [ra, rb] = await Promise.all([
      a.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } }),
      b.callTool({ name: 'everything__trigger-sampling-request', arguments: { prompt: 'y', maxTokens: 5 } }),
    ]);
    expect(text(ra)).toContain('answer-from-a');
    expect(text(ra)).not.toContain('answer-from-b');
    expect(text(rb)).toContain('answer-from-b');
    expect(text(rb)).not.toContain('answer-from-a');
    expect(seen).toEqual({ a: 1, b: 1 });
  });

  it('passes an unknown method to the upstream and returns its -32601', async () => {
    const c = await client('/servers/everything/mcp');
    await expect(
      c.request({ method: 'no/such-method', params: {} }, ResourceUpdatedNotificationSchema as never),
    ).rejects.toMatchObject({
      code: -32601,
    });
  });

  it('serves the legacy SSE front door', async () => {
    const c = await connectSseClient(gw.url + '/sse', {});
    clients.push(c);
    const { tools } = await c.listTools();
    expect(tools.map((t) => t.name)).toContain('everything__echo');
    const result = await c.callTool({ name: 'everything__echo', arguments: { message: 'over sse' } });
    expect(text(result)).toBe('Echo: over sse');
  });
});
