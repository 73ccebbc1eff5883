/**
 * Routing through a real gateway: official SDK clients → Switchboard → several copies of the
 * many-tools fixture over stdio. Namespacing, per-server filters, virtual servers, long names,
 * pagination and resources from several upstreams.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { ListToolsResultSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, startTestGateway } from '../../helpers/gateway.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/many-tools-server.mjs', import.meta.url));

/** What LLM APIs accept as a tool name. */
const LLM_TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

/** A stdio server entry running the fixture with `tools` tools named `${prefix}-${i}`. */
function fixture(prefix: string, tools = 5, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { command: process.execPath, args: [FIXTURE], env: { TOOLS: String(tools), PREFIX: prefix }, ...extra };
}

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

/** Opens clients on one gateway and closes them after each test. */
function clients(gateway: () => RunningGateway): (path: string) => Promise<Client> {
  const open: Client[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((c) => c.close()));
  });
  return async (path) => {
    const { client } = await connectClient(gateway().url + path);
    open.push(client);
    return client;
  };
}

async function toolNames(c: Client): Promise<string[]> {
  const { tools } = await c.listTools();
  return tools.map((t) => t.name).sort();
}

/** The JSON-RPC error a refused tools/call gets, by the SDK's McpError fields. */
const UNKNOWN_TOOL = { code: -32602, data: { code: 'SWB_ERR_ROUTE_UNKNOWN_TOOL' } };

describe('aggregate and virtual servers over two upstreams', () => {
  let gw: RunningGateway;
  const client = clients(() => gw);

  beforeAll(async () => {
    gw = await startTestGateway({
      servers: { alpha: fixture('alpha', 3), beta: fixture('beta', 3) },
      virtualServers: {
        dev: { servers: { alpha: { tools: { allow: ['alpha-1'] } }, beta: {} } },
        ops: { servers: ['alpha'] },
      },
    });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('lists every tool of both upstreams on /mcp as {server}__{name}', async () => {
    const c = await client('/mcp');
    expect(await toolNames(c)).toEqual([
      'alpha__alpha-1',
      'alpha__alpha-2',
      'alpha__alpha-3',
      'beta__beta-1',
      'beta__beta-2',
      'beta__beta-3',
    ]);
  });

  it('routes each namespaced call to its own upstream with the upstream name and arguments', async () => {
    const c = await client('/mcp');
    const a = await c.callTool({ name: 'alpha__alpha-2', arguments: { value: 'to-alpha' } });
    const b = await c.callTool({ name: 'beta__beta-2', arguments: { value: 'to-beta' } });
    expect(text(a)).toBe('alpha-2:{"value":"to-alpha"}');
    expect(text(b)).toBe('beta-2:{"value":"to-beta"}');
  });

  it('routes a prompt name both upstreams share by its namespace', async () => {
    const c = await client('/mcp');
    const { prompts } = await c.listPrompts();
    expect(prompts.map((p) => p.name).sort()).toEqual(['alpha__greet', 'beta__greet']);
    expect(JSON.stringify((await c.getPrompt({ name: 'alpha__greet' })).messages)).toContain('hello from alpha');
    expect(JSON.stringify((await c.getPrompt({ name: 'beta__greet' })).messages)).toContain('hello from beta');
  });

  it('lists resources of both upstreams under their own URIs and reads each from its upstream', async () => {
    const c = await client('/mcp');
    const { resources } = await c.listResources();
    expect(resources.map((r) => r.uri).sort()).toEqual(['fixture://alpha/info', 'fixture://beta/info']);
    const a = await c.readResource({ uri: 'fixture://alpha/info' });
    const b = await c.readResource({ uri: 'fixture://beta/info' });
    expect(a.contents).toEqual([{ uri: 'fixture://alpha/info', mimeType: 'text/plain', text: 'info of alpha' }]);
    expect(b.contents).toEqual([{ uri: 'fixture://beta/info', mimeType: 'text/plain', text: 'info of beta' }]);
  });

  it('serves a virtual server at /mcp/{name} with only its members and their member filters', async () => {
    const c = await client('/mcp/dev');
    expect(await toolNames(c)).toEqual(['alpha__alpha-1', 'beta__beta-1', 'beta__beta-2', 'beta__beta-3']);
    expect(text(await c.callTool({ name: 'alpha__alpha-1', arguments: {} }))).toBe('alpha-1:{}');
    expect(text(await c.callTool({ name: 'beta__beta-3', arguments: {} }))).toBe('beta-3:{}');
    await expect(c.callTool({ name: 'alpha__alpha-2', arguments: {} })).rejects.toMatchObject(UNKNOWN_TOOL);
  });

  it('serves a virtual server given as a list of server names with all their tools', async () => {
    const c = await client('/mcp/ops');
    expect(await toolNames(c)).toEqual(['alpha__alpha-1', 'alpha__alpha-2', 'alpha__alpha-3']);
    expect(text(await c.callTool({ name: 'alpha__alpha-3', arguments: {} }))).toBe('alpha-3:{}');
    await expect(c.callTool({ name: 'beta__beta-1', arguments: {} })).rejects.toMatchObject(UNKNOWN_TOOL);
    const { resources } = await c.listResources();
    expect(resources.map((r) => r.uri)).toEqual(['fixture://alpha/info']);
  });

  it('answers HTTP 404 for an unknown virtual server', async () => {
    const res = await fetch(`${gw.url}/mcp/nope`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-11-25', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      }),
    });
    expect(res.status).toBe(404);
    expect(await res.json()).toMatchObject({ error: { data: { code: 'SWB_ERR_HTTP_NOT_FOUND' } } });
  });
});

describe('per-server allow / deny / rename', () => {
  let gw: RunningGateway;
  const client = clients(() => gw);

  beforeAll(async () => {
    gw = await startTestGateway({
      servers: {
        alpha: fixture('tool', 5, {
          tools: { allow: ['tool-[1-4]'], deny: ['tool-3'], rename: { 'tool-2': 'second' } },
        }),
      },
      // The member filter sits on top of the server's own: tool-3 stays hidden although allowed here.
      virtualServers: { dev: { servers: { alpha: { tools: { allow: ['tool-1', 'tool-3'] } } } } },
    });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it.each([
    ['/mcp', ['alpha__second', 'alpha__tool-1', 'alpha__tool-4']],
    ['/servers/alpha/mcp', ['second', 'tool-1', 'tool-4']],
  ])('lists only allowed, not denied tools under their new names on %s', async (path, expected) => {
    const c = await client(path);
    expect(await toolNames(c)).toEqual(expected);
  });

  it.each([
    ['/mcp', 'alpha__second'],
    ['/servers/alpha/mcp', 'second'],
  ])('calls the upstream tool by its renamed name on %s', async (path, name) => {
    const c = await client(path);
    expect(text(await c.callTool({ name, arguments: { value: 'r' } }))).toBe('tool-2:{"value":"r"}');
  });

  it.each([
    ['/mcp', 'alpha__tool-3'],
    ['/mcp', 'alpha__tool-5'],
    ['/mcp', 'alpha__tool-2'],
    ['/servers/alpha/mcp', 'tool-3'],
    ['/servers/alpha/mcp', 'tool-5'],
    ['/servers/alpha/mcp', 'tool-2'],
  ])('refuses a call on %s to the hidden name %s with JSON-RPC -32602', async (path, name) => {
    const c = await client(path);
    await expect(c.callTool({ name, arguments: {} })).rejects.toMatchObject(UNKNOWN_TOOL);
  });

  it('applies a virtual-server member filter on top of the server filter', async () => {
    const c = await client('/mcp/dev');
    expect(await toolNames(c)).toEqual(['alpha__tool-1']);
    await expect(c.callTool({ name: 'alpha__tool-3', arguments: {} })).rejects.toMatchObject(UNKNOWN_TOOL);
  });
});

describe('namespaceSeparator', () => {
  let gw: RunningGateway;
  const client = clients(() => gw);

  beforeAll(async () => {
    gw = await startTestGateway({ namespaceSeparator: '-', servers: { alpha: fixture('tool', 2) } });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('joins server and tool names with a custom separator and routes calls by that name', async () => {
    const c = await client('/mcp');
    expect(await toolNames(c)).toEqual(['alpha-tool-1', 'alpha-tool-2']);
    expect(text(await c.callTool({ name: 'alpha-tool-2', arguments: {} }))).toBe('tool-2:{}');
  });
});

describe('names LLM APIs would reject', () => {
  // 68 characters + "-1" = a 70-character upstream tool name.
  const LONG = 'a_tool_name_long_enough_that_the_namespaced_form_exceeds_sixty_four_';
  let gw: RunningGateway;
  const client = clients(() => gw);

  beforeAll(async () => {
    expect(`${LONG}-1`).toHaveLength(70);
    gw = await startTestGateway({ servers: { alpha: fixture(LONG, 2), dotted: fixture('v1.files/tool', 1) } });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('exposes a 70-character tool name in at most 64 valid characters and calls it by that name', async () => {
    const c = await client('/mcp');
    const exposed = (await toolNames(c)).filter((n) => n.startsWith('alpha'));
    expect(exposed).toHaveLength(2);
    expect(new Set(exposed).size).toBe(2);
    for (const name of exposed) expect(name).toMatch(LLM_TOOL_NAME);
    const answers = await Promise.all(exposed.map(async (name) => text(await c.callTool({ name, arguments: {} }))));
    expect(answers.sort()).toEqual([`${LONG}-1:{}`, `${LONG}-2:{}`]);
  });

  it('exposes a tool name with "." and "/" as a valid name that reaches the original tool', async () => {
    const c = await client('/mcp');
    const exposed = (await toolNames(c)).filter((n) => n.startsWith('dotted'));
    expect(exposed).toHaveLength(1);
    expect(exposed[0]).toMatch(LLM_TOOL_NAME);
    expect(text(await c.callTool({ name: exposed[0]!, arguments: { value: 'x' } }))).toBe(
      'v1.files/tool-1:{"value":"x"}',
    );
  });

  it('keeps the upstream name unchanged on the single-server endpoint', async () => {
    const c = await client('/servers/alpha/mcp');
    expect(await toolNames(c)).toEqual([`${LONG}-1`, `${LONG}-2`]);
    expect(text(await c.callTool({ name: `${LONG}-1`, arguments: {} }))).toBe(`${LONG}-1:{}`);
  });
});

describe('pagination of aggregated lists', () => {
  let gw: RunningGateway;
  const client = clients(() => gw);

  beforeAll(async () => {
    gw = await startTestGateway({ servers: { alpha: fixture('alpha', 5), beta: fixture('beta', 5) } }, { pageSize: 3 });
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('pages tools/list by 3 with nextCursor until every tool was seen exactly once', async () => {
    const c = await client('/mcp');
    const pages: string[][] = [];
    let cursor: string | undefined;
    do {
      const page = await c.request(
        { method: 'tools/list', params: cursor === undefined ? {} : { cursor } },
        ListToolsResultSchema,
      );
      pages.push(page.tools.map((t) => t.name));
      cursor = page.nextCursor;
      expect(pages.length).toBeLessThanOrEqual(4);
    } while (cursor !== undefined);
    expect(pages.map((p) => p.length)).toEqual([3, 3, 3, 1]);
    const all = pages.flat();
    expect(new Set(all).size).toBe(10);
    expect(all.sort()).toEqual([
      ...[1, 2, 3, 4, 5].map((i) => `alpha__alpha-${i}`),
      ...[1, 2, 3, 4, 5].map((i) => `beta__beta-${i}`),
    ]);
  });

  it('returns a list no longer than one page without nextCursor', async () => {
    const c = await client('/mcp');
    const result = await c.listPrompts();
    expect(result.prompts).toHaveLength(2);
    expect(result.nextCursor).toBeUndefined();
  });

  it('refuses a cursor it did not make with JSON-RPC -32602', async () => {
    const c = await client('/mcp');
    await expect(
      c.request({ method: 'tools/list', params: { cursor: 'not-a-cursor' } }, ListToolsResultSchema),
    ).rejects.toMatchObject({ code: -32602, data: { code: 'SWB_ERR_ROUTE_INVALID_CURSOR' } });
  });
});
