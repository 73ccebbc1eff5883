/**
 * The MCP 2026-07-28 fixtures (SDK v2 server) directly, without the gateway: SDK v2 clients pinned
 * to 2026-07-28 and on `auto` negotiation list and call tools on every variant (HTTP and stdio,
 * modern-only and dual-era); 2025-era clients (SDK v2 in legacy mode, SDK v1) are refused by the
 * modern-only variants and served by the dual-era ones; the elicitation and sampling tools
 * complete through `input_required` rounds (2026) and server→client requests (2025).
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/client';
import { Client as V1Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport as V1HttpTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { startV2HttpServer, type RunningV2HttpServer, type V2LegacyMode } from '../../fixtures/v2-server.js';
import { PIN_2026, connectV2Http, connectV2Stdio, type V2ClientHandlers } from '../../helpers/v2-clients.js';
import type { VersionNegotiationMode } from '@modelcontextprotocol/client';

type Transport = 'http' | 'stdio';
interface Variant {
  name: string;
  transport: Transport;
  legacy: V2LegacyMode;
}

const VARIANTS: Variant[] = [
  { name: 'HTTP modern-only', transport: 'http', legacy: 'reject' },
  { name: 'HTTP dual-era', transport: 'http', legacy: 'serve' },
  { name: 'stdio modern-only', transport: 'stdio', legacy: 'reject' },
  { name: 'stdio dual-era', transport: 'stdio', legacy: 'serve' },
];

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

const ELICIT_ANSWER = { username: 'ada', email: 'ada@example.org' };

/** Handlers that record what the server asked for. */
function recordingHandlers(): { handlers: V2ClientHandlers; asked: { elicit: string[]; sample: unknown[] } } {
  const asked = { elicit: [] as string[], sample: [] as unknown[] };
  return {
    asked,
    handlers: {
      elicit: (params) => {
        asked.elicit.push(params.message);
        return { action: 'accept', content: ELICIT_ANSWER };
      },
      sample: (params) => {
        asked.sample.push(params.messages[0]?.content);
        return 'Paris';
      },
    },
  };
}

const servers = new Map<V2LegacyMode, RunningV2HttpServer>();
const clients: Client[] = [];

beforeAll(async () => {
  servers.set('reject', await startV2HttpServer({ legacy: 'reject' }));
  servers.set('serve', await startV2HttpServer({ legacy: 'serve' }));
  servers.set('stateless', await startV2HttpServer({ legacy: 'stateless' }));
});
afterAll(async () => {
  await Promise.all([...servers.values()].map((s) => s.close()));
});
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
});

async function connect(variant: Variant, mode: VersionNegotiationMode, handlers?: V2ClientHandlers): Promise<Client> {
  const client =
    variant.transport === 'http'
      ? await connectV2Http(servers.get(variant.legacy)!.url, mode, handlers)
      : await connectV2Stdio(variant.legacy, mode, handlers);
  clients.push(client);
  return client;
}

describe.each(VARIANTS)('v2 fixture, $name', (variant) => {
  it.each([
    ['pinned 2026-07-28', PIN_2026],
    ['auto', 'auto' as const],
  ])('a %s client lists and calls tools on the 2026-07-28 era', async (_label, mode) => {
    const client = await connect(variant, mode);
    expect(client.getProtocolEra()).toBe('modern');
    expect(client.getNegotiatedProtocolVersion()).toBe('2026-07-28');
    expect(client.getServerVersion()?.name).toBe('switchboard-v2-fixture');

    const { tools } = await client.listTools();
    const names = tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['echo', 'add', 'test_elicitation', 'test_sampling']));
    expect(tools.find((t) => t.name === 'echo')?.inputSchema).toMatchObject({
      properties: { message: { type: 'string' } },
      required: ['message'],
    });

    const echoed = await client.callTool({ name: 'echo', arguments: { message: `hello ${variant.name}` } });
    expect(text(echoed)).toBe(`hello ${variant.name}`);
    const sum = await client.callTool({ name: 'add', arguments: { a: 2, b: 40 } });
    expect(text(sum)).toBe('42');
    expect(sum.structuredContent).toEqual({ sum: 42 });

    const prompt = await client.getPrompt({ name: 'test_prompt_with_arguments', arguments: { arg1: 'x', arg2: 'y' } });
    expect(prompt.messages[0]?.content).toEqual({ type: 'text', text: "Prompt with arguments: arg1='x', arg2='y'" });
    const resource = await client.readResource({ uri: 'test://template/7/data' });
    expect(JSON.parse((resource.contents[0] as { text: string }).text)).toMatchObject({ id: '7' });
  });

  it('completes the elicitation and sampling tools for a pinned client with handlers (input_required rounds)', async () => {
    const { handlers, asked } = recordingHandlers();
    const client = await connect(variant, PIN_2026, handlers);
    const elicited = await client.callTool({ name: 'test_elicitation', arguments: { message: 'Who are you?' } });
    expect(text(elicited)).toBe(`User response: action=accept, content=${JSON.stringify(ELICIT_ANSWER)}`);
    expect(asked.elicit).toEqual(['Who are you?']);

    const sampled = await client.callTool({ name: 'test_sampling', arguments: { prompt: 'Capital of France?' } });
    expect(text(sampled)).toBe('LLM response: Paris');
    expect(asked.sample).toEqual([{ type: 'text', text: 'Capital of France?' }]);
  });

  it('refuses a tool that needs sampling when the pinned client did not declare it (-32021)', async () => {
    const client = await connect(variant, PIN_2026);
    await expect(client.callTool({ name: 'test_sampling', arguments: { prompt: 'hi' } })).rejects.toMatchObject({
      code: -32021,
    });
  });

  if (variant.legacy === 'reject') {
    it('refuses an SDK v2 client in legacy mode (unsupported protocol version)', async () => {
      const attempt =
        variant.transport === 'http'
          ? connectV2Http(servers.get('reject')!.url, 'legacy')
          : connectV2Stdio('reject', 'legacy');
      await expect(attempt).rejects.toThrow(/Unsupported protocol version|-32022/);
    });
  } else {
    it('serves an SDK v2 client in legacy mode on 2025-11-25, including elicitation and sampling', async () => {
      const { handlers, asked } = recordingHandlers();
      const client = await connect(variant, 'legacy', handlers);
      expect(client.getProtocolEra()).toBe('legacy');
      expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
      const echoed = await client.callTool({ name: 'echo', arguments: { message: 'legacy hello' } });
      expect(text(echoed)).toBe('legacy hello');

      const elicited = await client.callTool({ name: 'test_elicitation', arguments: { message: 'Name please' } });
      expect(text(elicited)).toBe(`User response: action=accept, content=${JSON.stringify(ELICIT_ANSWER)}`);
      expect(asked.elicit).toEqual(['Name please']);
      const sampled = await client.callTool({ name: 'test_sampling', arguments: { prompt: 'Say Paris' } });
      expect(text(sampled)).toBe('LLM response: Paris');
      expect(asked.sample).toEqual([{ type: 'text', text: 'Say Paris' }]);
    });
  }
});

describe('v2 fixture over HTTP with the SDK stateless legacy fallback', () => {
  it('serves 2025-era tool calls, but cannot send server→client requests (the tool answers isError)', async () => {
    const { handlers, asked } = recordingHandlers();
    const client = await connectV2Http(servers.get('stateless')!.url, 'legacy', handlers);
    clients.push(client);
    expect(client.getNegotiatedProtocolVersion()).toBe('2025-11-25');
    expect(text(await client.callTool({ name: 'echo', arguments: { message: 'stateless' } }))).toBe('stateless');
    const elicited = await client.callTool({ name: 'test_elicitation', arguments: { message: 'Name please' } });
    expect(elicited.isError).toBe(true);
    expect(text(elicited)).toMatch(/per-request legacy serving cannot receive server-to-client requests/);
    expect(asked.elicit).toEqual([]);
  });

  it('still serves a pinned 2026-07-28 client with input_required rounds', async () => {
    const { handlers } = recordingHandlers();
    const client = await connectV2Http(servers.get('stateless')!.url, PIN_2026, handlers);
    clients.push(client);
    const sampled = await client.callTool({ name: 'test_sampling', arguments: { prompt: 'Capital?' } });
    expect(text(sampled)).toBe('LLM response: Paris');
  });
});

describe('v2 fixture over HTTP, SDK v1 client (2025 era)', () => {
  it('is refused by the modern-only endpoint', async () => {
    const client = new V1Client({ name: 'v1-client', version: '1.0.0' });
    const attempt = client.connect(new V1HttpTransport(new URL(servers.get('reject')!.url)));
    await expect(attempt).rejects.toThrow(/Unsupported protocol version|-32022/);
    await client.close();
  });

  it('is served by the dual-era endpoint', async () => {
    const client = new V1Client({ name: 'v1-client', version: '1.0.0' });
    await client.connect(new V1HttpTransport(new URL(servers.get('serve')!.url)));
    try {
      expect(client.getServerVersion()?.name).toBe('switchboard-v2-fixture');
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toEqual(expect.arrayContaining(['echo', 'add']));
      const echoed = await client.callTool({ name: 'echo', arguments: { message: 'from sdk v1' } });
      expect(text(echoed)).toBe('from sdk v1');
    } finally {
      await client.close();
    }
  });
});
