/**
 * Switchboard in front of MCP 2026-07-28 upstreams built with the official SDK v2: modern-only
 * over Streamable HTTP and stdio, dual-era over both (`protocol: auto` must pick the modern era),
 * server-everything (2025 era) on `auto` (falls back to `initialize`) and on `protocol: modern`
 * (fails, the rest of the gateway keeps serving). Each is used by an SDK v1 client (a 2025
 * session) and an SDK v2 client pinned to 2026-07-28, on `/mcp` and `/servers/{name}/mcp`; the
 * wire a modern upstream sees is checked: no `initialize`, no session, no GET, the per-request
 * `_meta` and the mirrored headers.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as ClientV2, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import { startEverythingHttp, type EverythingHttp } from '../../helpers/everything.js';
import { connectClient, everythingStdio, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { startModernHttpUpstream, type ModernHttpUpstream } from '../../fixtures/modern-upstream-server.js';

const V = '2026-07-28';
const FIXTURE = fileURLToPath(new URL('../../fixtures/modern-upstream-server.ts', import.meta.url));

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

function stdioFixture(legacy: 'serve' | 'reject', seenFile: string): Record<string, unknown> {
  return {
    command: process.execPath,
    args: ['--import', 'tsx', FIXTURE, '--stdio', '--legacy', legacy],
    env: { SEEN_FILE: seenFile },
  };
}

/** The JSON-RPC messages a stdio fixture read, in order. */
function stdioWire(file: string): Array<Record<string, unknown>> {
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.trim() !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe('modern (2026-07-28) upstreams behind Switchboard', () => {
  let gw: RunningGateway;
  let modernHttp: ModernHttpUpstream;
  let dualHttp: ModernHttpUpstream;
  let dir: string;
  let everythingHttp: EverythingHttp;
  /** A server of a newer modern version only: answers every POST 400 UnsupportedProtocolVersion. */
  let newer: Server;
  const newerSaw: string[] = [];
  const closers: Array<() => Promise<void>> = [];
  const seenModernStdio = () => join(dir, 'modern-stdio.jsonl');
  const seenDualStdio = () => join(dir, 'dual-stdio.jsonl');

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'swb-modern-'));
    modernHttp = await startModernHttpUpstream('reject');
    dualHttp = await startModernHttpUpstream('stateless');
    everythingHttp = await startEverythingHttp('streamableHttp');
    newer = createServer((req, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        const id = (JSON.parse(raw || '{}') as { id?: unknown }).id ?? null;
        newerSaw.push((JSON.parse(raw || '{}') as { method?: string }).method ?? req.method ?? '');
        res.writeHead(400, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify({
            jsonrpc: '2.0',
            id,
            error: { code: -32022, message: 'Unsupported protocol version', data: { supported: ['2027-03-01'] } },
          }),
        );
      });
    });
    await new Promise<void>((resolve) => newer.listen(0, '127.0.0.1', resolve));
    gw = await startTestGateway({
      admin: { allowAnonymous: true },
      servers: {
        mhttp: { url: modernHttp.url },
        mstdio: stdioFixture('reject', seenModernStdio()),
        dual: { url: dualHttp.url, protocol: 'auto' },
        dualstdio: stdioFixture('serve', seenDualStdio()),
        everything: everythingStdio({ protocol: 'auto' }),
        everyhttp: { url: everythingHttp.url, protocol: 'auto' },
        newer: { url: `http://127.0.0.1:${(newer.address() as AddressInfo).port}/mcp` },
        forced: everythingStdio({ protocol: 'modern' }),
      },
    });
  }, 60_000);

  afterAll(async () => {
    await Promise.allSettled(closers.map((c) => c()));
    await gw?.close();
    await modernHttp?.close();
    await dualHttp?.close();
    await everythingHttp?.stop();
    newer?.closeAllConnections();
    await new Promise((resolve) => newer?.close(resolve));
    rmSync(dir, { recursive: true, force: true });
  });

  async function v2(path: string): Promise<ClientV2> {
    const client = new ClientV2({ name: 'v2-test', version: '1.0.0' }, { versionNegotiation: { mode: { pin: V } } });
    await client.connect(new StreamableHTTPClientTransport(new URL(gw.url + path)));
    closers.push(() => client.close());
    return client;
  }

  async function v1(path: string) {
    const { client } = await connectClient(gw.url + path);
    closers.push(() => client.close());
    return client;
  }

  it('learns each upstream era: modern for modern-only and dual-era servers, legacy for server-everything', () => {
    const era = (name: string) => gw.gateway.upstreams.get(name)!.era;
    expect(era('mhttp')).toBe('modern');
    expect(era('mstdio')).toBe('modern');
    expect(era('dual')).toBe('modern');
    expect(era('dualstdio')).toBe('modern');
    expect(era('everything')).toBe('legacy');
    expect(era('everyhttp')).toBe('legacy'); // HTTP 400 without a modern error body: fallback
    const mhttp = gw.gateway.upstreams.get('mhttp')!;
    expect(mhttp.state).toBe('ready');
    // capabilities, serverInfo and instructions come from server/discover
    expect(mhttp.initializeResult).toMatchObject({
      protocolVersion: V,
      capabilities: { tools: {} },
      serverInfo: { name: 'modern-fixture' },
      instructions: 'a modern fixture',
    });
  });

  it('refuses protocol: modern against a 2025-era server clearly and keeps serving the others', async () => {
    const forced = gw.gateway.upstreams.get('forced')!;
    // A shared child keeps being retried with backoff, in case the server is upgraded.
    expect(['failed', 'restarting']).toContain(forced.state);
    expect(forced.lastError).toMatch(/does not speak MCP 2026-07-28 \(protocol: modern\)/);
    const client = await v1('/mcp');
    const names = (await client.listTools()).tools.map((t) => t.name);
    expect(names.some((n) => n.startsWith('forced__'))).toBe(false);
    const r = await client.callTool({ name: 'everything__echo', arguments: { message: 'still here' } });
    expect(text(r)).toBe('Echo: still here');
  });

  it('does not fall back to initialize when an HTTP upstream answers a modern error (a newer modern version)', () => {
    const up = gw.gateway.upstreams.get('newer')!;
    expect(up.state).toBe('failed');
    expect(up.era).toBeUndefined();
    expect(up.lastError).toMatch(/is modern but .*-32022.*2027-03-01/);
    expect(newerSaw).not.toContain('initialize');
    expect(newerSaw[0]).toBe('server/discover');
  });

  it('lists the era and the protocol setting in the admin API', async () => {
    const res = await fetch(`${gw.url}/api/v1/servers`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { servers: Array<Record<string, unknown>> };
    const byName = new Map(body.servers.map((s) => [s.name, s]));
    expect(byName.get('mhttp')).toMatchObject({ era: 'modern', protocol: 'auto' });
    expect(byName.get('everything')).toMatchObject({ era: 'legacy', protocol: 'auto' });
    expect(byName.get('forced')).toMatchObject({ era: null, protocol: 'modern' });
  });

  const servers: Array<[string, string]> = [
    ['mhttp', 'modern-only, Streamable HTTP'],
    ['mstdio', 'modern-only, stdio'],
    ['dual', 'dual-era, Streamable HTTP'],
    ['dualstdio', 'dual-era, stdio'],
    ['everything', '2025 era (server-everything, stdio), protocol auto'],
    ['everyhttp', '2025 era (server-everything, Streamable HTTP), protocol auto'],
  ];

  describe.each(servers)('%s (%s)', (name) => {
    it('an SDK v1 client lists and calls its tools on /mcp and /servers/{name}/mcp', async () => {
      const all = await v1('/mcp');
      const names = (await all.listTools()).tools.map((t) => t.name);
      expect(names).toContain(`${name}__echo`);
      const r1 = await all.callTool({ name: `${name}__echo`, arguments: { message: 'v1 all' } });
      expect(text(r1)).toBe('Echo: v1 all');

      const one = await v1(`/servers/${name}/mcp`);
      const own = (await one.listTools()).tools.map((t) => t.name);
      expect(own).toContain('echo');
      const r2 = await one.callTool({ name: 'echo', arguments: { message: 'v1 one' } });
      expect(text(r2)).toBe('Echo: v1 one');
    });

    it('an SDK v2 client pinned to 2026-07-28 lists and calls its tools on /mcp and /servers/{name}/mcp', async () => {
      const all = await v2('/mcp');
      expect(all.getNegotiatedProtocolVersion()).toBe(V);
      const names = (await all.listTools()).tools.map((t) => t.name);
      expect(names).toContain(`${name}__echo`);
      const r1 = await all.callTool({ name: `${name}__echo`, arguments: { message: 'v2 all' } });
      expect(text(r1)).toBe('Echo: v2 all');

      const one = await v2(`/servers/${name}/mcp`);
      const r2 = await one.callTool({ name: 'echo', arguments: { message: 'v2 one' } });
      expect(text(r2)).toBe('Echo: v2 one');
    });
  });

  it('sends a modern HTTP upstream no initialize, no session, no GET: only POSTs opened by server/discover', () => {
    for (const up of [modernHttp, dualHttp]) {
      expect(up.seen.length).toBeGreaterThan(0);
      expect(up.seen[0]!.body?.method).toBe('server/discover');
      expect(up.seen.map((s) => s.httpMethod).filter((m) => m !== 'POST')).toEqual([]);
      expect(up.seen.filter((s) => s.body?.method === 'initialize')).toEqual([]);
      const methodOf = (s: (typeof up.seen)[number]) => (typeof s.body?.method === 'string' ? s.body.method : '');
      expect(up.seen.filter((s) => methodOf(s).startsWith('notifications/'))).toEqual([]);
      expect(up.seen.filter((s) => s.headers['mcp-session-id'] !== undefined)).toEqual([]);
    }
  });

  it('sends a modern stdio upstream no initialize: the first line is server/discover', () => {
    for (const file of [seenModernStdio(), seenDualStdio()]) {
      const wire = stdioWire(file);
      expect(wire[0]!.method).toBe('server/discover');
      expect(wire.filter((m) => m.method === 'initialize' || m.method === 'notifications/initialized')).toEqual([]);
      const call = wire.find((m) => m.method === 'tools/call');
      expect((call?.params as Record<string, unknown>)._meta).toMatchObject({
        'io.modelcontextprotocol/protocolVersion': V,
        'io.modelcontextprotocol/clientCapabilities': {},
        'io.modelcontextprotocol/clientInfo': { name: 'switchboard' },
      });
    }
  });

  it('stamps a tools/call with the modern _meta (keeping the progress token) and mirrored headers, Base64 for a non-ASCII name', async () => {
    const client = await v1('/servers/mhttp/mcp');
    const before = modernHttp.seen.length;
    const r = await client.callTool({ name: 'grüße', arguments: {} }, undefined, { onprogress: () => undefined });
    expect(text(r)).toBe('hallo');
    const seen = modernHttp.seen.slice(before).find((s) => s.body?.method === 'tools/call')!;
    expect(seen).toBeDefined();
    expect(seen.headers['mcp-protocol-version']).toBe(V);
    expect(seen.headers['mcp-method']).toBe('tools/call');
    expect(seen.headers['mcp-name']).toBe(`=?base64?${Buffer.from('grüße', 'utf8').toString('base64')}?=`);
    expect(seen.headers['mcp-session-id']).toBeUndefined();
    const params = seen.body!.params as Record<string, unknown>;
    expect(params.name).toBe('grüße');
    const meta = params._meta as Record<string, unknown>;
    expect(meta).toMatchObject({
      'io.modelcontextprotocol/protocolVersion': V,
      'io.modelcontextprotocol/clientCapabilities': {},
      'io.modelcontextprotocol/clientInfo': { name: 'switchboard' },
    });
    expect(meta.progressToken).toEqual(expect.any(Number));

    const before2 = modernHttp.seen.length;
    await client.callTool({ name: 'echo', arguments: { message: 'plain' } });
    const plain = modernHttp.seen.slice(before2).find((s) => s.body?.method === 'tools/call')!;
    expect(plain.headers['mcp-name']).toBe('echo');
  });

  it('mirrors Mcp-Name for prompts/get and resources/read', async () => {
    const client = await v1('/servers/mhttp/mcp');
    const before = modernHttp.seen.length;
    const prompt = await client.getPrompt({ name: 'greet' });
    expect(JSON.stringify(prompt.messages)).toContain('hello from modern');
    const read = await client.readResource({ uri: 'modern://info' });
    expect(JSON.stringify(read.contents)).toContain('modern info');
    const after = modernHttp.seen.slice(before);
    expect(after.find((s) => s.body?.method === 'prompts/get')!.headers['mcp-name']).toBe('greet');
    expect(after.find((s) => s.body?.method === 'resources/read')!.headers['mcp-name']).toBe('modern://info');
  });

  it('subscribes through subscriptions/listen for a modern upstream, never sending resources/subscribe', async () => {
    const client = await v1('/servers/mhttp/mcp');
    const before = modernHttp.seen.length;
    await client.subscribeResource({ uri: 'modern://info' });
    const after = modernHttp.seen.slice(before);
    expect(after.filter((s) => s.body?.method === 'resources/subscribe')).toEqual([]);
    const listen = after.filter((s) => s.body?.method === 'subscriptions/listen').at(-1);
    expect((listen?.body?.params as Record<string, unknown>).notifications).toMatchObject({
      resourceSubscriptions: ['modern://info'],
    });
    await client.unsubscribeResource({ uri: 'modern://info' });
  });

  it("passes a modern upstream's input_required to a modern client (its retry reaches the upstream)", async () => {
    const modern = new ClientV2(
      { name: 'v2-elicit', version: '1.0.0' },
      { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: V } } },
    );
    let asked = 0;
    modern.setRequestHandler('elicitation/create', () => {
      asked++;
      return { action: 'accept', content: { confirm: true } };
    });
    await modern.connect(new StreamableHTTPClientTransport(new URL(gw.url + '/servers/mhttp/mcp')));
    closers.push(() => modern.close());
    const before = modernHttp.seen.length;
    const done = await modern.callTool({ name: 'confirm', arguments: {} });
    expect(text(done)).toBe('confirmed');
    expect(asked).toBe(1);
    const calls = modernHttp.seen.slice(before).filter((s) => s.body?.method === 'tools/call');
    expect(calls).toHaveLength(2);
    expect((calls[1]!.body!.params as Record<string, unknown>).inputResponses).toBeDefined();
  });

  it("asks a 2025-era client a modern upstream's input requests as server→client requests, and retries with its answers", async () => {
    const { client: legacy } = await connectClient(gw.url + '/servers/mhttp/mcp', { elicitation: {} }, 'v1-elicit');
    closers.push(() => legacy.close());
    let asked = 0;
    legacy.setRequestHandler(ElicitRequestSchema, () => {
      asked++;
      return { action: 'accept', content: { confirm: true } };
    });
    const before = modernHttp.seen.length;
    const done = await legacy.callTool({ name: 'confirm', arguments: {} });
    expect(text(done)).toBe('confirmed');
    expect(asked).toBe(1);
    const calls = modernHttp.seen.slice(before).filter((s) => s.body?.method === 'tools/call');
    expect(calls).toHaveLength(2);
    const first = calls[0]!.body!.params as { _meta: Record<string, unknown> };
    // The 2025 client's capabilities are declared, so the upstream may ask it.
    expect(first._meta['io.modelcontextprotocol/clientCapabilities']).toMatchObject({ elicitation: {} });
    const retry = calls[1]!.body!.params as Record<string, unknown>;
    expect(retry.inputResponses).toEqual({ confirm: { action: 'accept', content: { confirm: true } } });
  });

  it('refuses a 2025-era client that did not declare the capability an input request needs (-33044)', async () => {
    const legacy = await v1('/servers/mhttp/mcp');
    const refused = await legacy.callTool({ name: 'confirm', arguments: {} }).catch((e: unknown) => e);
    expect(String(refused)).toMatch(/-33044/);
    expect(String(refused)).toMatch(/needs input from the client/);
  });

  it('cancels a call to a modern HTTP upstream by closing its response stream (no notifications/cancelled)', async () => {
    const client = await v1('/servers/mhttp/mcp');
    const before = modernHttp.seen.length;
    const ac = new AbortController();
    const call = client.callTool({ name: 'slow', arguments: { ms: 5000 } }, undefined, { signal: ac.signal });
    await new Promise((r) => setTimeout(r, 300));
    ac.abort();
    await expect(call).rejects.toThrow();
    await new Promise((r) => setTimeout(r, 200));
    const after = modernHttp.seen.slice(before);
    const slow = after.find(
      (s) => s.body?.method === 'tools/call' && (s.body.params as { name?: string }).name === 'slow',
    );
    expect(slow?.closedEarly).toBe(true);
    expect(after.filter((s) => s.body?.method === 'notifications/cancelled')).toEqual([]);
  });
});

describe('health of a modern HTTP upstream', () => {
  it('is probed with server/discover while down, never with ping', async () => {
    let up = await startModernHttpUpstream('reject');
    const port = Number(new URL(up.url).port);
    const gw = await startTestGateway({
      servers: { m: { url: up.url, health: { failureThreshold: 1, probeInterval: 50, maxProbeInterval: 100 } } },
    });
    const { client } = await connectClient(gw.url + '/mcp');
    try {
      const m = gw.gateway.upstreams.get('m')!;
      expect(m.era).toBe('modern');
      await up.close();
      await expect(client.callTool({ name: 'm__echo', arguments: { message: 'x' } })).rejects.toThrow();
      await waitFor(() => m.state === 'failed', 5_000, 'marked down');
      up = await startModernHttpUpstream('reject', port);
      await waitFor(() => m.state === 'ready', 5_000, 'marked up by a probe');
      // Only the gateway's probes (and its listen request, opened again) reached the restarted server.
      expect(up.seen.length).toBeGreaterThan(0);
      const reached = new Set(up.seen.map((s) => s.body?.method));
      expect(reached.has('server/discover')).toBe(true);
      expect([...reached].filter((m) => m !== 'server/discover' && m !== 'subscriptions/listen')).toEqual([]);
      const r = await client.callTool({ name: 'm__echo', arguments: { message: 'back' } });
      expect(text(r)).toBe('Echo: back');
    } finally {
      await client.close();
      await gw.close();
      await up.close();
    }
  });
});

/**
 * A 2025-era stdio server that exits when it is sent anything but `initialize` first: the probe
 * kills it, and the next child is opened with `initialize` (transports/stdio §Backward
 * Compatibility: anything but a DiscoverResult or a modern error is a legacy server).
 */
const EXITS_ON_PROBE = `
const rl = require('node:readline').createInterface({ input: process.stdin });
let initialized = false;
const send = (m) => process.stdout.write(JSON.stringify(m) + '\\n');
rl.on('line', (line) => {
  const m = JSON.parse(line);
  if (m.method === 'initialize') {
    initialized = true;
    return send({ jsonrpc: '2.0', id: m.id, result: { protocolVersion: '2025-11-25', capabilities: { tools: {} }, serverInfo: { name: 'strict', version: '1' } } });
  }
  if (!initialized) process.exit(3);
  if (m.method === 'tools/list') return send({ jsonrpc: '2.0', id: m.id, result: { tools: [{ name: 'echo', inputSchema: { type: 'object' } }] } });
  if (m.method === 'tools/call') return send({ jsonrpc: '2.0', id: m.id, result: { content: [{ type: 'text', text: 'Echo: ' + m.params.arguments.message }] } });
  if (m.id !== undefined) send({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
});
`;

describe('a 2025-era stdio server that exits on the probe', () => {
  it('is restarted and opened with initialize, without a second probe', async () => {
    const gw = await startTestGateway({
      servers: { strict: { command: process.execPath, args: ['-e', EXITS_ON_PROBE], restart: { initialDelay: 50 } } },
    });
    try {
      const up = gw.gateway.upstreams.get('strict')!;
      await waitFor(() => up.state === 'ready', 10_000, 'ready after the restart');
      expect(up.era).toBe('legacy');
      expect(up.restarts).toBe(1);
      const { client } = await connectClient(gw.url + '/mcp');
      const r = await client.callTool({ name: 'strict__echo', arguments: { message: 'hi' } });
      expect(text(r)).toBe('Echo: hi');
      await client.close();
    } finally {
      await gw.close();
    }
  });
});
