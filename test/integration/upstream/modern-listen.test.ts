/**
 * `subscriptions/listen` towards MCP 2026-07-28 upstreams (SDK v2 fixtures, over Streamable HTTP
 * and stdio): the gateway keeps one listen request open per upstream connection, so a tool added
 * at runtime reaches 2025-era clients as `notifications/tools/list_changed` without waiting for
 * the lists' `ttlMs`; `resources/subscribe` of 2025-era clients become the listen request's
 * `resourceSubscriptions`, and `notifications/resources/updated` reaches the subscribed sessions
 * only; a dropped listen stream is opened again.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import {
  ResourceUpdatedNotificationSchema,
  ToolListChangedNotificationSchema,
} from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { startModernHttpUpstream, type ModernHttpUpstream } from '../../fixtures/modern-upstream-server.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/modern-upstream-server.ts', import.meta.url));
const SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

type Message = Record<string, unknown> & { method?: string; id?: unknown; params?: Record<string, unknown> };

/** The JSON-RPC messages a stdio fixture read, in order. */
function stdioWire(file: string): Message[] {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Message);
}

/** A 2025-era client recording the change notifications it gets. */
interface Watcher {
  client: Client;
  toolsChanged: number;
  updated: string[];
}

describe('subscriptions/listen towards modern upstreams', () => {
  let gw: RunningGateway;
  let http: ModernHttpUpstream;
  let dir: string;
  const clients: Client[] = [];
  const stdioSeen = () => join(dir, 'stdio.jsonl');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swb-listen-'));
    http = await startModernHttpUpstream('reject');
    gw = await startTestGateway({
      servers: {
        mhttp: { url: http.url },
        mstdio: {
          command: process.execPath,
          args: ['--import', 'tsx', FIXTURE, '--stdio', '--legacy', 'reject'],
          env: { SEEN_FILE: stdioSeen() },
        },
      },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(clients.map((c) => c.close()));
    await gw?.close();
    await http?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function watcher(server: string): Promise<Watcher> {
    const { client } = await connectClient(`${gw.url}/servers/${server}/mcp`);
    clients.push(client);
    const w: Watcher = { client, toolsChanged: 0, updated: [] };
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => void w.toolsChanged++);
    client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => void w.updated.push(n.params.uri));
    // The SDK client opens its GET stream in the background; notifications need it.
    const sessions = gw.gateway.sessions;
    await waitFor(() => [...sessions.values()].filter((s) => s.hasStandaloneStream).length >= clients.length);
    return w;
  }

  /** The `subscriptions/listen` requests the HTTP fixture received. */
  const httpListens = () => http.seen.filter((s) => s.body?.method === 'subscriptions/listen');
  /** The `subscriptions/listen` requests the stdio fixture read. */
  const stdioListens = () => stdioWire(stdioSeen()).filter((m) => m.method === 'subscriptions/listen');

  it('keeps one listen request open towards each, asking for the list changes the upstream declares', async () => {
    await waitFor(() => http.openListens === 1, 10_000, 'the HTTP listen stream');
    const request = httpListens().at(-1)!;
    expect(request.headers['mcp-method']).toBe('subscriptions/listen');
    const params = request.body!.params as Record<string, unknown>;
    expect(params.notifications).toEqual({
      toolsListChanged: true,
      promptsListChanged: true,
      resourcesListChanged: true,
    });
    expect(params._meta).toMatchObject({ 'io.modelcontextprotocol/protocolVersion': '2026-07-28' });
    await waitFor(() => stdioListens().length > 0, 10_000, 'the stdio listen request');
    expect(stdioListens()[0]!.params!.notifications).toMatchObject({ toolsListChanged: true });
  });

  describe.each(['mhttp', 'mstdio'])('%s', (server) => {
    it('a tool added at runtime reaches a 2025 client as tools/list_changed, without waiting for ttlMs', async () => {
      const w = await watcher(server);
      const tool = `fresh_${server}`;
      expect((await w.client.listTools()).tools.map((t) => t.name)).not.toContain(tool);
      // The fixture's tools/list carries ttlMs 60 000: only the listen stream can tell in time.
      await w.client.callTool({ name: 'add_tool', arguments: { name: tool } });
      await waitFor(() => w.toolsChanged > 0, 5_000, 'tools/list_changed');
      expect((await w.client.listTools()).tools.map((t) => t.name)).toContain(tool);
    });

    it('a resource update reaches the subscribed 2025 client only, without the subscription id', async () => {
      const a = await watcher(server);
      const b = await watcher(server);
      let meta: unknown;
      a.client.setNotificationHandler(ResourceUpdatedNotificationSchema, (n) => {
        a.updated.push(n.params.uri);
        meta = n.params._meta;
      });
      await a.client.subscribeResource({ uri: 'modern://info' });
      await b.client.subscribeResource({ uri: 'modern://other' });
      await a.client.callTool({ name: 'touch', arguments: { uri: 'modern://info' } });
      await waitFor(() => a.updated.length > 0, 5_000, 'resources/updated');
      expect(a.updated).toEqual(['modern://info']);
      expect((meta as Record<string, unknown> | undefined)?.[SUBSCRIPTION_ID]).toBeUndefined();
      // Sent after the first on the same stream: b would have had the first before it.
      await a.client.callTool({ name: 'touch', arguments: { uri: 'modern://other' } });
      await waitFor(() => b.updated.length > 0, 5_000, 'resources/updated for b');
      expect(b.updated).toEqual(['modern://other']);
      expect(a.updated).toEqual(['modern://info']);

      // The last subscriber leaves: the listen request is opened again without the URI.
      await a.client.unsubscribeResource({ uri: 'modern://info' });
      await b.client.unsubscribeResource({ uri: 'modern://other' });
      const last = () =>
        (server === 'mhttp'
          ? (httpListens().at(-1)!.body!.params as Record<string, unknown>)
          : stdioListens().at(-1)!.params!
        ).notifications as Record<string, unknown>;
      await waitFor(() => last().resourceSubscriptions === undefined, 5_000, 'a listen without URIs');
      await a.client.callTool({ name: 'touch', arguments: { uri: 'modern://info' } });
      await a.client.callTool({ name: 'add_tool', arguments: { name: `after_${server}` } });
      await waitFor(() => a.toolsChanged > 0, 5_000, 'tools/list_changed after unsubscribing');
      expect(a.updated).toEqual(['modern://info']);
    });
  });

  it('asks the listen request for the subscribed URIs and cancels the one it replaces (HTTP: closes its stream)', async () => {
    const w = await watcher('mhttp');
    const before = httpListens().length;
    await w.client.subscribeResource({ uri: 'modern://info' });
    const opened = httpListens().slice(before);
    expect(opened.length).toBeGreaterThan(0);
    expect((opened.at(-1)!.body!.params as Record<string, unknown>).notifications).toMatchObject({
      resourceSubscriptions: ['modern://info'],
    });
    await waitFor(() => http.openListens === 1, 5_000, 'the replaced stream closed');
    expect(httpListens()[before - 1]!.closedEarly).toBe(true);
    await w.client.unsubscribeResource({ uri: 'modern://info' });
  });

  it('cancels a replaced stdio listen request with notifications/cancelled', async () => {
    const w = await watcher('mstdio');
    const before = stdioListens().length;
    await w.client.subscribeResource({ uri: 'modern://other' });
    const wire = stdioWire(stdioSeen());
    const listens = wire.filter((m) => m.method === 'subscriptions/listen');
    expect(listens.length).toBeGreaterThan(before);
    expect(listens.at(-1)!.params!.notifications).toMatchObject({ resourceSubscriptions: ['modern://other'] });
    const replaced = listens[before - 1]!.id;
    await waitFor(
      () =>
        stdioWire(stdioSeen()).some((m) => m.method === 'notifications/cancelled' && m.params?.requestId === replaced),
      5_000,
      'notifications/cancelled for the replaced listen request',
    );
    await w.client.unsubscribeResource({ uri: 'modern://other' });
  });

  it('opens the listen stream again when it drops, and list changes keep arriving', async () => {
    const w = await watcher('mhttp');
    await waitFor(() => http.openListens === 1, 5_000, 'the listen stream');
    const before = httpListens().length;
    http.dropListens();
    await waitFor(() => httpListens().length > before && http.openListens === 1, 10_000, 'a new listen stream');
    await w.client.callTool({ name: 'add_tool', arguments: { name: 'after_drop' } });
    await waitFor(() => w.toolsChanged > 0, 5_000, 'tools/list_changed on the new stream');
    expect((await w.client.listTools()).tools.map((t) => t.name)).toContain('after_drop');
  });
});
