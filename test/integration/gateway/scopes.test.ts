/**
 * Filters and token scopes on every method and URI form, exposed-name collisions, notification
 * audiences and id restoration — through a real gateway with the scope-server fixture (stdio) and
 * an SDK server over Streamable HTTP.
 */
import { createServer, type Server as HttpServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import {
  CreateMessageRequestSchema,
  LoggingMessageNotificationSchema,
  ResourceUpdatedNotificationSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { initSession, messages, parseSse, post } from '../../helpers/raw.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/scope-server.mjs', import.meta.url));

interface FixtureEnv {
  tools?: string;
  prompts?: string;
  resources?: string;
  templates?: string;
}

/** A stdio server entry running the scope-server fixture labelled `name`. */
function fixture(name: string, env: FixtureEnv = {}, extra: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    command: process.execPath,
    args: [FIXTURE],
    env: {
      NAME: name,
      TOOLS: env.tools ?? '',
      PROMPTS: env.prompts ?? '',
      RESOURCES: env.resources ?? '',
      TEMPLATES: env.templates ?? '',
    },
    ...extra,
  };
}

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

type Rpc = Record<string, unknown> & {
  id?: unknown;
  result?: Record<string, unknown>;
  error?: { code: number; data?: { code?: string } };
};

/** One JSON-RPC request on a session; returns the response message (the last message of the reply). */
async function rpc(
  url: string,
  sid: string,
  method: string,
  params: Record<string, unknown>,
  headers: Record<string, string> = {},
): Promise<Rpc> {
  const res = await post(url, { jsonrpc: '2.0', id: 2, method, params }, { ...headers, 'mcp-session-id': sid });
  expect(res.status).toBe(200);
  const all = await messages(res);
  return all[all.length - 1] as Rpc;
}

/** Sends a client notification on a session; the edge accepts it with 202. */
async function notify(url: string, sid: string, method: string, headers: Record<string, string> = {}): Promise<void> {
  const res = await post(url, { jsonrpc: '2.0', method }, { ...headers, 'mcp-session-id': sid });
  await res.text();
  expect(res.status).toBe(202);
}

/** initialize + notifications/initialized with a bearer token. */
async function openSession(url: string, headers: Record<string, string>): Promise<string> {
  const res = await post(
    url,
    {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
    },
    headers,
  );
  expect(res.status).toBe(200);
  await res.text();
  const sid = res.headers.get('mcp-session-id')!;
  await notify(url, sid, 'notifications/initialized', headers);
  return sid;
}

const enc = encodeURIComponent;
const UNKNOWN_RESOURCE = 'SWB_ERR_ROUTE_UNKNOWN_RESOURCE';

describe('resource URIs, logging/setLevel and roots pass the same filter and scope checks', () => {
  let gw: RunningGateway;
  let full: Record<string, string>;
  let onlyB: Record<string, string>;

  beforeAll(async () => {
    gw = await startTestGateway({
      auth: { mode: 'tokens' },
      servers: {
        a: fixture(
          'a',
          { prompts: 'p', resources: 'fixture://shared,fixture://a/public', templates: 'tpl://a/{id}' },
          { resources: { deny: ['fixture://a/secret*', 'tpl://a/secret*'] } },
        ),
        b: fixture('b', { prompts: 'p', resources: 'fixture://shared' }),
      },
    });
    const bearer = async (servers: string[]) => ({
      authorization: `Bearer ${
        (
          await gw.tokens.create({
            name: 't',
            subject: servers.length === 0 ? 'alice' : 'bob',
            permissions: ['servers.use', 'tools.execute'],
            servers,
            tools: [],
          })
        ).token
      }`,
    });
    full = await bearer([]);
    onlyB = await bearer(['b']);
  });

  afterAll(async () => {
    await gw?.close();
  });

  it('lists the second owner of a shared URI under switchboard://{server}/{encoded uri} and reads it there', async () => {
    const url = `${gw.url}/mcp`;
    const sid = await openSession(url, full);
    const list = await rpc(url, sid, 'resources/list', {}, full);
    const uris = (list.result!.resources as Array<{ uri: string }>).map((r) => r.uri).sort();
    expect(uris).toEqual(['fixture://a/public', 'fixture://shared', `switchboard://b/${enc('fixture://shared')}`]);
    const read = await rpc(url, sid, 'resources/read', { uri: `switchboard://b/${enc('fixture://shared')}` }, full);
    expect((read.result!.contents as Array<{ text: string }>)[0]!.text).toBe('b:read:fixture://shared');
    const tpl = await rpc(url, sid, 'resources/read', { uri: 'tpl://a/7' }, full);
    expect((tpl.result!.contents as Array<{ text: string }>)[0]!.text).toBe('a:read:tpl://a/7');
  });

  it('refuses the switchboard:// form of a URI the server filter denies on read, subscribe and completion', async () => {
    const url = `${gw.url}/mcp`;
    const sid = await openSession(url, full);
    const forged = `switchboard://a/${enc('fixture://a/secret')}`;
    for (const method of ['resources/read', 'resources/subscribe', 'resources/unsubscribe']) {
      const r = await rpc(url, sid, method, { uri: forged }, full);
      expect(r.error?.data?.code, method).toBe(UNKNOWN_RESOURCE);
    }
    const c = await rpc(
      url,
      sid,
      'completion/complete',
      {
        ref: { type: 'ref/resource', uri: `switchboard://a/${enc('tpl://a/secret-{id}')}` },
        argument: { name: 'id', value: '' },
      },
      full,
    );
    expect(c.error?.data?.code).toBe(UNKNOWN_RESOURCE);
  });

  it('refuses percent-encoded, dot-segment and upper-case-scheme spellings of a denied URI', async () => {
    const single = `${gw.url}/servers/a/mcp`;
    const sidSingle = await openSession(single, full);
    for (const uri of [
      'fixture://a/%73ecret',
      'fixture://a/%2573ecret',
      'fixture://a/public/../secret',
      'fixture://a/public/%2E%2E/secret',
      'FIXTURE://a/secret',
      `switchboard://a/${enc('fixture://a/%73ecret')}`,
      `SwitchBoard://a/${enc('fixture://a/secret')}`,
    ]) {
      const r = await rpc(single, sidSingle, 'resources/read', { uri }, full);
      expect(r.error?.data?.code, uri).toBe(UNKNOWN_RESOURCE);
    }
    const agg = `${gw.url}/mcp`;
    const sid = await openSession(agg, full);
    for (const uri of ['tpl://a/%73ecret-1', 'tpl://a/secret-1']) {
      const r = await rpc(agg, sid, 'resources/read', { uri }, full);
      expect(r.error?.data?.code, uri).toBe(UNKNOWN_RESOURCE);
    }
  });

  it("refuses every URI form, prompt and completion of a server outside the token's scope", async () => {
    const url = `${gw.url}/mcp`;
    const sid = await openSession(url, onlyB);
    // b's copy of the shared URI keeps the exposed form it has in the view, whoever asks.
    const bShared = `switchboard://b/${enc('fixture://shared')}`;
    const list = await rpc(url, sid, 'resources/list', {}, onlyB);
    expect((list.result!.resources as Array<{ uri: string }>).map((r) => r.uri)).toEqual([bShared]);
    for (const uri of [
      'fixture://a/public',
      'fixture://shared',
      `switchboard://a/${enc('fixture://a/public')}`,
      'tpl://a/1',
    ]) {
      const r = await rpc(url, sid, 'resources/read', { uri }, onlyB);
      expect(r.error?.data?.code, uri).toBe(UNKNOWN_RESOURCE);
    }
    expect((await rpc(url, sid, 'prompts/get', { name: 'a__p' }, onlyB)).error?.data?.code).toBe(
      'SWB_ERR_ROUTE_UNKNOWN_PROMPT',
    );
    const c = await rpc(
      url,
      sid,
      'completion/complete',
      { ref: { type: 'ref/prompt', name: 'a__p' }, argument: { name: 'x', value: '' } },
      onlyB,
    );
    expect(c.error?.data?.code).toBe('SWB_ERR_ROUTE_UNKNOWN_PROMPT');
    const templates = await rpc(url, sid, 'resources/templates/list', {}, onlyB);
    expect(templates.result!.resourceTemplates).toEqual([]);
    // The in-scope server still answers.
    const b = await rpc(url, sid, 'resources/read', { uri: bShared }, onlyB);
    expect((b.result!.contents as Array<{ text: string }>)[0]!.text).toBe('b:read:fixture://shared');
  });

  it('records refusals by the token scope in the usage log as blocked by the scope, unknown names as errors', async () => {
    const created = await gw.tokens.create({
      name: 'scoped',
      subject: 'carol',
      permissions: ['servers.use', 'tools.execute'],
      servers: ['b'],
      tools: [],
    });
    const headers = { authorization: `Bearer ${created.token}` };
    const url = `${gw.url}/mcp`;
    const sid = await openSession(url, headers);
    // Exists, out of scope: refused by the scope (the client still sees "unknown").
    expect((await rpc(url, sid, 'prompts/get', { name: 'a__p' }, headers)).error?.data?.code).toBe(
      'SWB_ERR_ROUTE_UNKNOWN_PROMPT',
    );
    const read = await rpc(url, sid, 'resources/read', { uri: 'fixture://a/public' }, headers);
    expect(read.error?.data?.code).toBe(UNKNOWN_RESOURCE);
    // Does not exist anywhere: an error, not a refusal.
    expect((await rpc(url, sid, 'prompts/get', { name: 'nowhere__p' }, headers)).error?.data?.code).toBe(
      'SWB_ERR_ROUTE_UNKNOWN_PROMPT',
    );
    const usage = (await waitFor(async () => {
      const u = await gw.database.usage!.tokenUsage(created.id, { days: 1 });
      return u.blocked + u.errors >= 3 ? u : undefined;
    }))!;
    expect(usage).toMatchObject({ blocked: 2, errors: 1 });
    // The refused attempts name the server they aimed at.
    expect(usage.topServers).toEqual([{ name: 'a', count: 2 }]);
  });

  it("sends logging/setLevel and roots/list_changed only to servers in the token's scope", async () => {
    const url = `${gw.url}/mcp`;
    const sid = await openSession(url, onlyB);
    expect((await rpc(url, sid, 'logging/setLevel', { level: 'error' }, onlyB)).result).toEqual({});
    await notify(url, sid, 'notifications/roots/list_changed', onlyB);
    const admin = await openSession(url, full);
    const seenBy = async (server: string): Promise<string[]> =>
      JSON.parse(text((await rpc(url, admin, 'tools/call', { name: `${server}__seen`, arguments: {} }, full)).result))
        .filter((m: string) => m === 'logging/setLevel' || m === 'notifications/roots/list_changed')
        .sort();
    await waitFor(async () => (await seenBy('b')).length === 2, 5000, 'b to see both');
    expect(await seenBy('b')).toEqual(['logging/setLevel', 'notifications/roots/list_changed']);
    expect(await seenBy('a')).toEqual([]);
  });
});

describe('exposed-name collisions at run time', () => {
  let gw: RunningGateway | undefined;
  const open: Client[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((c) => c.close()));
    await gw?.close();
    gw = undefined;
  });

  it('keeps the incumbent owner when another server adds a tool or prompt with the same exposed name, and counts it', async () => {
    // Server "a" comes first in the view; "a__b" owns a__b__c until "a" adds its own b__c.
    gw = await startTestGateway({
      servers: { a: fixture('a'), a__b: fixture('a__b', { tools: 'c', prompts: 'c' }) },
    });
    const { client } = await connectClient(`${gw.url}/mcp`);
    open.push(client);
    expect(text(await client.callTool({ name: 'a__b__c', arguments: {} }))).toBe('a__b:c');
    await client.callTool({ name: 'a__add-tool', arguments: { name: 'b__c' } });
    await client.callTool({ name: 'a__add-prompt', arguments: { name: 'b__c' } });
    const a = gw.gateway.upstreams.get('a')!;
    await waitFor(
      () => a.catalog.tools.some((t) => t.name === 'b__c') && a.catalog.prompts.some((p) => p.name === 'b__c'),
      5000,
      'catalog refresh',
    );
    expect(text(await client.callTool({ name: 'a__b__c', arguments: {} }))).toBe('a__b:c');
    const prompt = await client.getPrompt({ name: 'a__b__c' });
    expect(prompt.messages[0]!.content).toEqual({ type: 'text', text: 'a__b:c' });
    const tools = (await client.listTools()).tools.filter((t) => t.name === 'a__b__c');
    expect(tools).toHaveLength(1);
    const metrics = await (await fetch(`${gw.url}/metrics`)).text();
    expect(metrics).toContain('switchboard_name_collisions_total{server="a",kind="tool"} 1');
    expect(metrics).toContain('switchboard_name_collisions_total{server="a",kind="prompt"} 1');
  });
});

describe('servers added at run time', () => {
  let gw: RunningGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it('refuses through the admin API and tunnels a server whose namespaced names could collide with an existing one', async () => {
    gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: { a: fixture('a') } });
    const admin = (await gw.tokens.create({ name: 'root', subject: 'root', permissions: ['admin.*'] })).token;
    const add = (name: string) =>
      fetch(`${gw!.url}/api/v1/servers`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name, ...fixture(name) }),
      });
    const refused = await add('a__b');
    expect(refused.status).toBe(409);
    expect(await refused.json()).toMatchObject({ error: { code: 'SWB_ERR_HTTP_CONFLICT', server: 'a' } });
    expect(gw.gateway.upstreams.has('a__b')).toBe(false);
    // A tunnel registering under such a name is refused the same way.
    let tunnelError: unknown;
    try {
      gw.gateway.attachTunnel('a__t', undefined, () => {
        throw new Error('not reached: the name is refused before any transport');
      });
    } catch (err) {
      tunnelError = err;
    }
    expect(tunnelError).toMatchObject({ code: 'SWB_ERR_HTTP_CONFLICT' });
    expect(gw.gateway.upstreams.has('a__t')).toBe(false);
    const accepted = await add('ab');
    await accepted.text();
    expect(accepted.status).toBe(201);
  });

  it('lets a token scoped to the client-visible name a__x list and call exactly that tool on /mcp', async () => {
    gw = await startTestGateway({
      auth: { mode: 'tokens' },
      servers: { a: fixture('a', { tools: 'x,y' }), b: fixture('b', { tools: 'x' }) },
    });
    const token = (
      await gw.tokens.create({
        name: 'one-tool',
        subject: 'alice',
        permissions: ['servers.use', 'tools.execute'],
        tools: ['a__x'],
      })
    ).token;
    const { client } = await connectClient(`${gw.url}/mcp`, {}, 'scoped', { authorization: `Bearer ${token}` });
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(['a__x']);
      expect(text(await client.callTool({ name: 'a__x', arguments: {} }))).toBe('a:x');
      await expect(client.callTool({ name: 'a__y', arguments: {} })).rejects.toThrow(/Unknown tool/);
      await expect(client.callTool({ name: 'b__x', arguments: {} })).rejects.toThrow(/Unknown tool/);
    } finally {
      await client.close();
    }
  });
});

describe('resources/updated', () => {
  let gw: RunningGateway | undefined;
  const open: Client[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((c) => c.close()));
    await gw?.close();
    gw = undefined;
  });

  it('reaches the subscriber of a colliding resource under the switchboard:// URI it subscribed with', async () => {
    gw = await startTestGateway({
      servers: {
        a: fixture('a', { resources: 'fixture://shared' }),
        b: fixture('b', { resources: 'fixture://shared' }),
      },
    });
    const { client } = await connectClient(`${gw.url}/mcp`);
    open.push(client);
    const updates: string[] = [];
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
      updates.push(n.params.uri);
    });
    await waitFor(() => [...gw!.gateway.sessions.values()].some((s) => s.hasStandaloneStream), 5000, 'GET stream');
    const exposed = `switchboard://b/${enc('fixture://shared')}`;
    await client.subscribeResource({ uri: exposed });
    await client.callTool({ name: 'b__update', arguments: { uri: 'fixture://shared' } });
    await waitFor(() => updates.length > 0, 5000, 'resources/updated');
    expect(updates).toEqual([exposed]);
  });
});

/** An SDK MCP server over Streamable HTTP whose `broadcast` tool logs on the standalone stream. */
async function startBroadcastServer(): Promise<{ url: string; close(): Promise<void> }> {
  const transports = new Map<string, StreamableHTTPServerTransport>();
  const http: HttpServer = createServer((req, res) => {
    const sid = req.headers['mcp-session-id'];
    const known = typeof sid === 'string' ? transports.get(sid) : undefined;
    if (known) {
      void known.handleRequest(req, res);
      return;
    }
    const mcp = new McpServer(
      { name: 'broadcast', version: '1.0.0' },
      { capabilities: { logging: {}, resources: { subscribe: true } } },
    );
    mcp.registerTool('broadcast', { inputSchema: {} }, async (_args, extra) => {
      // No related request: the message goes on the session's standalone GET stream.
      await mcp.server.sendLoggingMessage({ level: 'info', data: `broadcast:${extra.sessionId ?? ''}` });
      return { content: [{ type: 'text', text: 'sent' }] };
    });
    mcp.registerTool('touch', { inputSchema: {} }, async () => {
      await mcp.server.sendResourceUpdated({ uri: 'shared://doc' });
      return { content: [{ type: 'text', text: 'touched' }] };
    });
    mcp.registerResource('doc', 'shared://doc', {}, () => ({ contents: [{ uri: 'shared://doc', text: 'doc' }] }));
    mcp.server.setRequestHandler(SubscribeRequestSchema, () => ({}));
    mcp.server.setRequestHandler(UnsubscribeRequestSchema, () => ({}));
    const transport = new StreamableHTTPServerTransport({
      sessionIdGenerator: () => crypto.randomUUID(),
      onsessioninitialized: (id) => {
        transports.set(id, transport);
      },
    });
    void mcp.connect(transport).then(() => transport.handleRequest(req, res));
  });
  await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
  const port = (http.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: async () => {
      await Promise.allSettled([...transports.values()].map((t) => t.close()));
      http.closeAllConnections();
      await new Promise<void>((r) => http.close(() => r()));
    },
  };
}

describe('notifications from a remote upstream connection held per principal', () => {
  let gw: RunningGateway | undefined;
  let upstream: Awaited<ReturnType<typeof startBroadcastServer>> | undefined;
  const open: Client[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((c) => c.close()));
    await gw?.close();
    await upstream?.close();
    gw = undefined;
    upstream = undefined;
  });

  it('reach only the sessions of the principal whose connection they came from', async () => {
    upstream = await startBroadcastServer();
    gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: { remote: { url: upstream.url } } });
    const bearer = async (subject: string) => ({
      authorization: `Bearer ${
        (await gw!.tokens.create({ name: subject, subject, permissions: ['servers.use', 'tools.execute'] })).token
      }`,
    });
    const logs = { alice: [] as unknown[], bob: [] as unknown[] };
    for (const who of ['alice', 'bob'] as const) {
      const { client } = await connectClient(`${gw.url}/mcp`, {}, who, await bearer(who));
      open.push(client);
      client.setNotificationHandler(LoggingMessageNotificationSchema, (n) => {
        logs[who].push(n.params.data);
      });
    }
    const [alice, bob] = open as [Client, Client];
    await waitFor(
      () => [...gw!.gateway.sessions.values()].filter((s) => s.hasStandaloneStream).length === 2,
      5000,
      'GET streams',
    );
    // Bob's own upstream connection exists too, so a wrong fan-out would have somewhere to come from.
    await bob.callTool({ name: 'remote__broadcast', arguments: {} });
    await waitFor(() => logs.bob.length > 0, 5000, "bob's own broadcast");
    logs.bob.length = 0;
    // The upstream's standalone stream opens in the background: repeat until the first arrives.
    await waitFor(
      async () => {
        await alice.callTool({ name: 'remote__broadcast', arguments: {} });
        await new Promise((r) => setTimeout(r, 100));
        return logs.alice.length > 0;
      },
      5000,
      "alice's broadcast",
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(logs.bob).toEqual([]);
  });
  it('send resources/updated only to subscribers of the principal whose connection announced it', async () => {
    upstream = await startBroadcastServer();
    gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: { remote: { url: upstream.url } } });
    const updates = { alice: 0, bob: 0 };
    const clients: Record<'alice' | 'bob', Client> = {} as Record<'alice' | 'bob', Client>;
    for (const who of ['alice', 'bob'] as const) {
      const token = (await gw.tokens.create({ name: who, subject: who, permissions: ['servers.use', 'tools.execute'] }))
        .token;
      const { client } = await connectClient(`${gw.url}/mcp`, {}, who, { authorization: `Bearer ${token}` });
      open.push(client);
      clients[who] = client;
      client.setNotificationHandler(ResourceUpdatedNotificationSchema, () => {
        updates[who]++;
      });
      await client.subscribeResource({ uri: 'shared://doc' });
    }
    await waitFor(
      () => [...gw!.gateway.sessions.values()].filter((s) => s.hasStandaloneStream).length === 2,
      5000,
      'GET streams',
    );
    await waitFor(
      async () => {
        await clients.alice.callTool({ name: 'remote__touch', arguments: {} });
        await new Promise((r) => setTimeout(r, 100));
        return updates.alice > 0;
      },
      5000,
      "alice's update",
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(updates.bob).toBe(0);
  });
});

describe('server-to-client requests on a shared stdio child', () => {
  let gw: RunningGateway | undefined;
  const open: Client[] = [];
  afterEach(async () => {
    await Promise.allSettled(open.splice(0).map((c) => c.close()));
    await gw?.close();
    gw = undefined;
  });

  it('sends sampling to the capable caller even while an earlier call of a client without sampling is in flight', async () => {
    gw = await startTestGateway({ servers: { x: fixture('x') } });
    const plain = await connectClient(`${gw.url}/mcp`, {}, 'plain');
    const capable = await connectClient(`${gw.url}/mcp`, { sampling: {} }, 'capable');
    open.push(plain.client, capable.client);
    capable.client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: 'm',
      role: 'assistant',
      content: { type: 'text', text: 'from-capable' },
    }));
    const slow = plain.client.callTool({ name: 'x__slow', arguments: { ms: 1500 } });
    slow.catch(() => undefined); // awaited below; a failed assertion before must not leave it unhandled
    await waitFor(() => [...gw!.gateway.sessions.values()].some((s) => s.inFlight > 0), 5000, 'slow call in flight');
    const sampled = await capable.client.callTool({ name: 'x__sample', arguments: {} });
    expect(text(sampled)).toBe('x:sampled:from-capable');
    expect(text(await slow)).toBe('x:slept');
  });
});

/**
 * POSTs one request and returns the first JSON-RPC response in the reply, whatever its id: the
 * edge ends an SSE reply only at the response carrying the request's id, so a response with any
 * other id is read from the open stream instead of waiting for the end.
 */
async function firstResponse(url: string, sid: string, body: Record<string, unknown>): Promise<Rpc> {
  const res = await post(url, body, { 'mcp-session-id': sid });
  expect(res.status).toBe(200);
  if (!(res.headers.get('content-type') ?? '').includes('text/event-stream')) return (await res.json()) as Rpc;
  const reader = res.body!.pipeThrough(new TextDecoderStream()).getReader();
  const deadline = setTimeout(() => void reader.cancel(), 5000);
  let buffer = '';
  try {
    for (;;) {
      const { value, done } = await reader.read();
      if (done) throw new Error(`no response in the reply to ${String(body.method)}`);
      buffer += value;
      for (const event of parseSse(buffer)) {
        if (event.data.trim() === '') continue;
        const message = JSON.parse(event.data) as Rpc;
        if (!('method' in message)) return message;
      }
    }
  } finally {
    clearTimeout(deadline);
    void reader.cancel();
  }
}

describe('response ids', () => {
  let gw: RunningGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it("answers every forwarded request with the client's own id, whatever ids the upstream used", async () => {
    gw = await startTestGateway({ servers: { x: fixture('x', { prompts: 'p', resources: 'fixture://x' }) } });
    for (const path of ['/mcp', '/servers/x/mcp']) {
      const url = `${gw.url}${path}`;
      const sid = await initSession(url);
      const tool = path === '/mcp' ? 'x__seen' : 'seen';
      // Several calls first, so the upstream's own ids have moved past the small numbers.
      for (const id of ['abc-7', 1, 0, 2, 987_654_321, 'x__seen']) {
        const r = await firstResponse(url, sid, {
          jsonrpc: '2.0',
          id,
          method: 'tools/call',
          params: { name: tool, arguments: {} },
        });
        expect(r.id, `${path} tools/call ${String(id)}`).toBe(id);
        expect(r.result).toEqual({ content: [{ type: 'text', text: expect.any(String) }] });
      }
      for (const [method, params] of [
        ['resources/read', { uri: 'fixture://x' }],
        ['prompts/get', { name: path === '/mcp' ? 'x__p' : 'p' }],
        ['resources/subscribe', { uri: 'fixture://x' }],
        ['logging/setLevel', { level: 'info' }],
      ] as const) {
        for (const id of ['abc-7', 1]) {
          const r = await firstResponse(url, sid, { jsonrpc: '2.0', id, method, params });
          expect(r.id, `${path} ${method} ${String(id)}`).toBe(id);
          expect(r.error).toBeUndefined();
        }
      }
    }
  });
});
