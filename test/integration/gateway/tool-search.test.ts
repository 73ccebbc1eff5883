/**
 * Tool search exposure (`exposure: search`) through a real gateway: server-everything and a
 * generated stdio upstream with 500 tools behind a virtual server whose `tools/list` shows only
 * `search_tools` and `call_tool`; ranking, dispatch under the real tool's name (usage log,
 * metrics), token scopes, and an index that follows `list_changed`.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RunningGateway } from '../../../src/app.js';
import { buildConfig, connectClient, everythingStdio, startTestGateway, waitFor } from '../../helpers/gateway.js';

const CATALOG = fileURLToPath(new URL('../../fixtures/catalog-server.mjs', import.meta.url));

interface Match {
  name: string;
  description?: string;
  inputSchema: Record<string, unknown>;
  score: number;
}

interface CallResult {
  content?: Array<{ type: string; text?: string }>;
  structuredContent?: { tools: Match[] };
  isError?: boolean;
}

const text = (r: unknown): string => ((r as CallResult).content ?? []).map((c) => c.text ?? '').join('\n');

describe('exposure: search', () => {
  let gw: RunningGateway;
  const clients: Client[] = [];
  let full: Client;
  let onlyMany: Client;
  let fullTokenId: string;

  const connect = async (url: string, token: string): Promise<Client> => {
    const { client } = await connectClient(url, {}, 'search-client', { authorization: `Bearer ${token}` });
    clients.push(client);
    return client;
  };
  const search = async (client: Client, query: string, limit?: number): Promise<Match[]> => {
    const r = (await client.callTool({
      name: 'search_tools',
      arguments: limit === undefined ? { query } : { query, limit },
    })) as CallResult;
    expect(r.isError).not.toBe(true);
    // The same matches as JSON text and as structured content.
    expect(JSON.parse(text(r))).toEqual(r.structuredContent);
    return r.structuredContent!.tools;
  };

  beforeAll(async () => {
    gw = await startTestGateway({
      auth: { mode: 'tokens' },
      namespacing: 'conditional',
      servers: {
        everything: everythingStdio(),
        many: { command: process.execPath, args: [CATALOG], env: { TOOLS: '500' } },
      },
      virtualServers: { lean: { servers: ['everything', 'many'], exposure: 'search', namespacing: 'never' } },
    });
    const created = await gw.tokens.create({
      name: 'full',
      subject: 'alice',
      permissions: ['servers.use', 'tools.execute'],
      servers: [],
      tools: [],
    });
    fullTokenId = created.id;
    const scoped = await gw.tokens.create({
      name: 'scoped',
      subject: 'bob',
      permissions: ['servers.use', 'tools.execute'],
      servers: ['many'],
      tools: [],
    });
    full = await connect(`${gw.url}/mcp/lean`, created.token);
    onlyMany = await connect(`${gw.url}/mcp/lean`, scoped.token);
    await waitFor(() => gw.gateway.upstreams.get('many')?.catalog.tools.length === 501, 20_000, 'catalog');
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gw?.close();
  });

  it('lists only search_tools and call_tool, with input schemas', async () => {
    const { tools } = await full.listTools();
    expect(tools.map((t) => t.name)).toEqual(['search_tools', 'call_tool']);
    expect(tools[0]!.inputSchema.required).toEqual(['query']);
    expect(tools[1]!.inputSchema.required).toEqual(['name']);
  });

  it('keeps the full list at an endpoint with exposure: all', async () => {
    const token = (
      await gw.tokens.create({ name: 'agg', subject: 'carol', permissions: ['servers.use', 'tools.execute'] })
    ).token;
    const client = await connect(`${gw.url}/mcp`, token);
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.length).toBeGreaterThan(500);
    expect(names).toContain('get-sum');
    expect(names).not.toContain('search_tools');
  });

  it('counts the bytes of the tool lists sent against the full lists in /metrics', async () => {
    const counter = async (name: string, endpoint: string): Promise<number> => {
      const metrics = await (await fetch(`${gw.url}/metrics`)).text();
      const line = metrics.split('\n').find((l) => l.startsWith(`${name}{endpoint="${endpoint}"}`));
      return Number(line?.split(' ')[1] ?? 0);
    };
    const before = await counter('switchboard_tool_list_bytes_total', '/mcp/lean');
    const fullBefore = await counter('switchboard_tool_list_full_bytes_total', '/mcp/lean');
    const { tools } = await full.listTools();
    const sent = (await counter('switchboard_tool_list_bytes_total', '/mcp/lean')) - before;
    const all = (await counter('switchboard_tool_list_full_bytes_total', '/mcp/lean')) - fullBefore;
    expect(sent).toBe(Buffer.byteLength(JSON.stringify({ tools })));
    expect(all).toBeGreaterThan(50 * sent);
    // exposure: all sends the full list.
    expect(await counter('switchboard_tool_list_bytes_total', '/mcp')).toBe(
      await counter('switchboard_tool_list_full_bytes_total', '/mcp'),
    );
    expect(await counter('switchboard_tool_list_bytes_total', '/mcp')).toBeGreaterThan(all / 2);
  });

  it('ranks get-sum first for "add two numbers" among 500 generated tools, best first', async () => {
    const matches = await search(full, 'add two numbers');
    expect(matches[0]!.name).toBe('get-sum');
    expect(matches[0]!.description).toBe('Returns the sum of two numbers');
    expect(matches[0]!.inputSchema.properties).toHaveProperty('a');
    expect(matches.length).toBe(10);
    const scores = matches.map((m) => m.score);
    expect([...scores].sort((x, y) => y - x)).toEqual(scores);
  });

  it('finds a tool by its argument names and honours limit', async () => {
    const matches = await search(full, 'sku quantity', 3);
    expect(matches).toHaveLength(3);
    for (const m of matches) expect(m.inputSchema.properties).toHaveProperty('sku');
  });

  it('calls a found tool through call_tool and accounts the call under the real tool and server', async () => {
    const r = await full.callTool({ name: 'call_tool', arguments: { name: 'get-sum', arguments: { a: 2, b: 3 } } });
    expect(text(r)).toBe('The sum of 2 and 3 is 5.');
    const usage = (await waitFor(
      async () => {
        const u = await gw.database.usage!.tokenUsage(fullTokenId, { days: 1 });
        return u.topTools.some((t) => t.name === 'get-sum') ? u : undefined;
      },
      10_000,
      'usage row',
    ))!;
    expect(usage.topTools).toContainEqual({ name: 'get-sum', server: 'everything', count: 1 });
    expect(usage.topTools.map((t) => t.name)).not.toContain('call_tool');
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toMatch(
      /switchboard_requests_total\{server="everything",method="tools\/call",status="ok",era="legacy"\} [1-9]/,
    );
  });

  it('never finds or calls a tool outside the token scope', async () => {
    const matches = await search(onlyMany, 'add two numbers', 50);
    expect(matches.length).toBeGreaterThan(0);
    expect(matches.map((m) => m.name)).not.toContain('get-sum');
    expect(matches.every((m) => /_/.test(m.name))).toBe(true);
    expect(await search(onlyMany, 'get-sum echo tiny image')).not.toContainEqual(
      expect.objectContaining({ name: 'get-sum' }),
    );
    await expect(
      onlyMany.callTool({ name: 'call_tool', arguments: { name: 'get-sum', arguments: { a: 1, b: 1 } } }),
    ).rejects.toMatchObject({ data: { code: 'SWB_ERR_ROUTE_UNKNOWN_TOOL' } });
    // The in-scope server still answers.
    const r = await onlyMany.callTool({
      name: 'call_tool',
      arguments: { name: 'crm_add_contact', arguments: { email: 'x@example.com' } },
    });
    expect(text(r)).toBe('crm_add_contact:{"email":"x@example.com"}');
  });

  it('refuses malformed search_tools and call_tool arguments with invalid params', async () => {
    const invalid = { data: { code: 'SWB_ERR_PROTOCOL_INVALID_PARAMS' } };
    await expect(full.callTool({ name: 'search_tools', arguments: {} })).rejects.toMatchObject(invalid);
    await expect(full.callTool({ name: 'search_tools', arguments: { query: ' ' } })).rejects.toMatchObject(invalid);
    await expect(full.callTool({ name: 'search_tools', arguments: { query: 'x'.repeat(1001) } })).rejects.toMatchObject(
      invalid,
    );
    await expect(full.callTool({ name: 'search_tools', arguments: { query: 'sum', limit: 51 } })).rejects.toMatchObject(
      invalid,
    );
    await expect(full.callTool({ name: 'call_tool', arguments: { arguments: {} } })).rejects.toMatchObject(invalid);
    await expect(
      full.callTool({ name: 'call_tool', arguments: { name: 'get-sum', arguments: [1, 2] } }),
    ).rejects.toMatchObject(invalid);
  });

  it('follows list_changed: a tool an upstream adds is found by the next search', async () => {
    expect((await search(full, 'quantum flux capacitor')).map((m) => m.name)).not.toContain('quantum_flux_capacitor');
    await full.callTool({
      name: 'call_tool',
      arguments: {
        name: 'catalog_register',
        arguments: { name: 'quantum_flux_capacitor', description: 'Charges the flux capacitor' },
      },
    });
    await waitFor(
      () => gw.gateway.upstreams.get('many')!.catalog.tools.some((t) => t.name === 'quantum_flux_capacitor'),
      10_000,
      'catalog refresh',
    );
    const matches = await search(full, 'quantum flux capacitor');
    expect(matches[0]!.name).toBe('quantum_flux_capacitor');
    const r = await full.callTool({ name: 'call_tool', arguments: { name: 'quantum_flux_capacitor' } });
    expect(text(r)).toBe('quantum_flux_capacitor:{}');
  });
});

describe('exposure: search at the top level', () => {
  let gw: RunningGateway | undefined;
  afterAll(async () => {
    await gw?.close();
  });

  const config = (exposure: string): Record<string, unknown> => ({
    exposure,
    rateLimits: [
      { match: { server: 'many', tool: 'crm_add_contact' }, key: 'principal', limit: 1, window: '60s' },
      { match: { tool: 'search_tools' }, key: 'principal', limit: 2, window: '60s' },
    ],
    servers: { many: { command: process.execPath, args: [CATALOG], env: { TOOLS: '20' } } },
    virtualServers: { v: { servers: ['many'] }, w: { servers: ['many'], exposure: 'all' } },
  });

  beforeAll(async () => {
    gw = await startTestGateway(config('search'));
  });

  it('applies a rate limit on the real tool to its calls through call_tool', async () => {
    const { client } = await connectClient(`${gw!.url}/mcp`);
    try {
      const call = (name: string) => client.callTool({ name: 'call_tool', arguments: { name, arguments: {} } });
      expect(text(await call('many__crm_add_contact'))).toBe('crm_add_contact:{}');
      await expect(call('many__crm_add_contact')).rejects.toThrow(/429|rate/i);
      // Another tool of the same server is not limited.
      expect(text(await call('many__crm_archive_contact'))).toBe('crm_archive_contact:{}');
    } finally {
      await client.close();
    }
  });

  it('applies rate limits to search_tools by that name', async () => {
    const { client } = await connectClient(`${gw!.url}/mcp`);
    try {
      const search = () => client.callTool({ name: 'search_tools', arguments: { query: 'contact' } });
      await search();
      await search();
      await expect(search()).rejects.toThrow(/429|rate/i);
    } finally {
      await client.close();
    }
  });

  it('applies to /mcp and to virtual servers without their own exposure, never to a single server', async () => {
    const list = async (path: string): Promise<string[]> => {
      const { client } = await connectClient(`${gw!.url}${path}`);
      try {
        return (await client.listTools()).tools.map((t) => t.name);
      } finally {
        await client.close();
      }
    };
    expect(await list('/mcp')).toEqual(['search_tools', 'call_tool']);
    expect(await list('/mcp/v')).toEqual(['search_tools', 'call_tool']);
    expect(await list('/mcp/w')).toHaveLength(21);
    expect(await list('/servers/many/mcp')).toHaveLength(21);
  });

  it('changes the exposure on reload, for sessions already open', async () => {
    const { client } = await connectClient(`${gw!.url}/mcp`);
    try {
      expect((await client.listTools()).tools).toHaveLength(2);
      await gw!.reload(buildConfig(config('all')));
      expect((await client.listTools()).tools).toHaveLength(21);
    } finally {
      await client.close();
    }
  });
});
