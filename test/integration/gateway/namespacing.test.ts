/**
 * Name prefixes through a real gateway: two stdio servers exposing the same tool names, served
 * at `/mcp` with `namespacing: conditional` and at a virtual server with `namespacing: never`. A
 * call by each exposed name reaches the server the name belongs to; in `never` mode the servers'
 * own names are called unprefixed (as an MCP App calls its own server's tools) and the
 * newcomer's colliding tool is withheld, not shadowed.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RunningGateway } from '../../../src/app.js';
import { parseConfigText } from '../../../src/config/load.js';
import { connectClient, startTestGateway } from '../../helpers/gateway.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/scope-server.mjs', import.meta.url));
const server = (name: string, tools: string) => ({
  command: process.execPath,
  args: [FIXTURE],
  env: { NAME: name, TOOLS: tools },
});
const text = (r: unknown) =>
  ((r as { content: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');

describe('namespacing conditional and never, two servers with the same tool names', () => {
  let gw: RunningGateway;
  const clients: Client[] = [];

  beforeAll(async () => {
    gw = await startTestGateway({
      namespacing: 'conditional',
      servers: { a: server('a', 'alpha'), b: server('b', 'beta') },
      virtualServers: { apps: { servers: ['a', 'b'], namespacing: 'never' } },
    });
  }, 30_000);

  afterAll(async () => {
    for (const c of clients) await c.close();
    await gw?.close();
  });

  async function client(path: string): Promise<Client> {
    const { client } = await connectClient(`${gw.url}${path}`);
    clients.push(client);
    return client;
  }

  it('conditional: the first configured server keeps the bare name, the other gets the prefix', async () => {
    const c = await client('/mcp');
    const names = (await c.listTools()).tools.map((t) => t.name);
    expect(names).toEqual(expect.arrayContaining(['slow', 'b__slow', 'alpha', 'beta']));
    expect(names).not.toContain('a__slow');
    expect(text(await c.callTool({ name: 'slow', arguments: { ms: 1 } }))).toBe('a:slept');
    expect(text(await c.callTool({ name: 'b__slow', arguments: { ms: 1 } }))).toBe('b:slept');
    expect(text(await c.callTool({ name: 'beta', arguments: {} }))).toBe('b:beta');
  });

  it('never: every name unprefixed, the colliding newcomer withheld, each call reaches its own server', async () => {
    const c = await client('/mcp/apps');
    const names = (await c.listTools()).tools.map((t) => t.name);
    expect(names.filter((n) => n === 'slow')).toHaveLength(1);
    expect(names.some((n) => n.includes('__'))).toBe(false);
    expect(names).toEqual(expect.arrayContaining(['alpha', 'beta']));
    expect(text(await c.callTool({ name: 'slow', arguments: { ms: 1 } }))).toBe('a:slept');
    expect(text(await c.callTool({ name: 'alpha', arguments: {} }))).toBe('a:alpha');
    expect(text(await c.callTool({ name: 'beta', arguments: {} }))).toBe('b:beta');
    // b's `slow` is withheld here, not reachable under another name.
    await expect(c.callTool({ name: 'b__slow', arguments: { ms: 1 } })).rejects.toMatchObject({ code: -32602 });
  });
});

describe('the configuration of the context-economy features', () => {
  it('loads with namespacing, exposure: search and a lazy server together', () => {
    const yaml = [
      'namespacing: conditional',
      'servers:',
      '  echo: {command: node, args: [echo.mjs]}',
      '  everything: {command: npx, args: ["-y", "@modelcontextprotocol/server-everything"]}',
      '  many: {command: node, args: [many-tools.mjs]}',
      '  big: {command: node, args: [big.mjs], start: lazy}',
      'virtualServers:',
      '  lean:',
      '    servers: [everything, many]',
      '    exposure: search',
      '    namespacing: never',
      '',
    ].join('\n');
    const loaded = parseConfigText(yaml);
    expect(loaded.servers.big).toMatchObject({ start: 'lazy' });
    expect(loaded.virtualServers.lean).toMatchObject({ exposure: 'search' });
  });
});
