/**
 * Supervision seen from outside: a remote upstream that is down when the gateway starts is
 * retried and served once it comes up; one that dies later is reported non-ready by `/readyz`
 * without any traffic; an upstream that never answers `initialize` does not hold up the others.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RunningGateway } from '../../../src/app.js';
import { RUNTIME_START_WAIT_MS } from '../../../src/http/admin-api.js';
import { freePort, startEverythingHttp, type EverythingHttp } from '../../helpers/everything.js';
import { connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { ToolListChangedNotificationSchema } from '@modelcontextprotocol/sdk/types.js';

const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));
const echo = { command: process.execPath, args: [ECHO] };

let gw: RunningGateway | undefined;
let remote: EverythingHttp | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
  await remote?.stop();
  remote = undefined;
});

const readyz = async (g: RunningGateway) => {
  const r = await fetch(`${g.url}/readyz`);
  return {
    status: r.status,
    body: (await r.json()) as { upstreams: Array<{ name: string; state: string; error?: string }> },
  };
};

describe('upstream supervision', () => {
  it('serves a remote upstream that came up 3 s after the gateway within 15 s, and reports it non-ready within 10 s of its death', async () => {
    const port = await freePort();
    gw = await startTestGateway({
      servers: { echo, late: { url: `http://127.0.0.1:${port}/mcp` } },
    });
    const g = gw;
    expect((await readyz(g)).status).toBe(503);
    // A client connected meanwhile sees the healthy server, then hears of the late one's tools.
    const { client } = await connectClient(`${g.url}/mcp`);
    let listChanged = 0;
    client.setNotificationHandler(ToolListChangedNotificationSchema, () => {
      listChanged++;
    });
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['echo__echo', 'echo__ping']);
      await new Promise((resolve) => setTimeout(resolve, 3_000));
      remote = await startEverythingHttp('streamableHttp', port);
      const up = Date.now();
      await waitFor(async () => (await readyz(g)).status === 200, 15_000, 'the late remote to be ready');
      expect(Date.now() - up).toBeLessThan(15_000);
      await waitFor(() => listChanged > 0, 2_000, 'tools/list_changed');
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('late__echo');
    } finally {
      await client.close();
    }

    await remote.stop();
    remote = undefined;
    const down = Date.now();
    await waitFor(
      async () => (await readyz(g)).body.upstreams.find((u) => u.name === 'late')?.state !== 'ready',
      10_000,
      'the dead remote to be reported non-ready',
    );
    expect(Date.now() - down).toBeLessThan(10_000);
    expect((await readyz(g)).status).toBe(503);
  }, 40_000);

  it('starts a session-isolated stdio server again after a failed start, with backoff, until it comes up', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swb-supervision-'));
    const marker = join(dir, 'installed');
    const script = join(dir, 'server.mjs');
    // Exits at once until the marker exists (a missing dependency, a database not yet up).
    writeFileSync(
      script,
      `import { existsSync } from 'node:fs';\nif (!existsSync(${JSON.stringify(marker)})) process.exit(1);\nawait import(${JSON.stringify(pathToFileURL(ECHO).href)});\n`,
    );
    gw = await startTestGateway({
      servers: {
        iso: {
          command: process.execPath,
          args: [script],
          isolation: 'session',
          restart: { initialDelay: '100ms', maxDelay: '500ms' },
        },
      },
    });
    const g = gw;
    expect(g.gateway.upstreams.get('iso')?.state).toBe('failed');
    writeFileSync(marker, '');
    await waitFor(() => g.gateway.upstreams.get('iso')?.state === 'ready', 5_000, 'the isolated server to start');
    const { client } = await connectClient(`${g.url}/mcp`);
    try {
      const r = await client.callTool({ name: 'iso__echo', arguments: { message: 'back' } });
      expect(JSON.stringify(r.content)).toContain('Echo: back');
    } finally {
      await client.close();
    }
  }, 20_000);

  it('lists the healthy servers at once while another never answers initialize', async () => {
    const hang = { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] };
    const started = Date.now();
    // startupWaitMs 0: startGateway returns at once; the edge serves from the bound socket on.
    gw = await startTestGateway({ servers: { echo, hang } }, { startupWaitMs: 0 });
    const g = gw;
    await waitFor(() => g.gateway.upstreams.get('echo')?.state === 'ready', 5_000, 'the healthy upstream to be ready');
    const { client } = await connectClient(`${g.url}/mcp`);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('echo__echo');
      const r = await client.callTool({ name: 'echo__echo', arguments: { message: 'hi' } });
      expect(JSON.stringify(r.content)).toContain('Echo: hi');
    } finally {
      await client.close();
    }
    expect(Date.now() - started).toBeLessThan(5_000);
    const body = (await readyz(g)).body;
    expect(body.upstreams.find((u) => u.name === 'hang')?.state).toBe('starting');
  }, 30_000);

  it('answers a PUT of a runtime server that hangs in its start within RUNTIME_START_WAIT_MS, showing it starting', async () => {
    gw = await startTestGateway({ admin: { allowAnonymous: true }, servers: { echo } });
    const hang = { command: process.execPath, args: ['-e', 'setInterval(() => {}, 1000)'] };
    const at = Date.now();
    const put = await fetch(`${gw.url}/api/v1/servers/hang`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(hang),
    });
    expect(put.status).toBe(201);
    expect(((await put.json()) as { state: string }).state).toBe('starting');
    const took = Date.now() - at;
    expect(took).toBeGreaterThanOrEqual(RUNTIME_START_WAIT_MS - 50);
    expect(took).toBeLessThan(RUNTIME_START_WAIT_MS + 2_000);
    // The healthy server was served throughout.
    const { client } = await connectClient(`${gw.url}/mcp`);
    try {
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('echo__echo');
    } finally {
      await client.close();
    }
  }, 20_000);

  it('counts the restart attempts of a crash-looping server', async () => {
    const crash = {
      command: process.execPath,
      args: ['-e', 'process.exit(3)'],
      restart: { initialDelay: '50ms', maxDelay: '100ms' },
    };
    gw = await startTestGateway({ admin: { allowAnonymous: true }, servers: { crash } });
    const g = gw;
    await waitFor(() => (g.gateway.upstreams.get('crash')?.restarts ?? 0) >= 3, 5_000, 'restart attempts');
    const view = (await (await fetch(`${g.url}/api/v1/servers/crash`)).json()) as { restarts: number; state: string };
    expect(view.restarts).toBeGreaterThanOrEqual(3);
    expect(view.state).not.toBe('ready');
  }, 20_000);

  it('fails the start of a server that does not answer initialize within its initializeTimeout', async () => {
    const hang = {
      command: process.execPath,
      args: ['-e', 'setInterval(() => {}, 1000)'],
      initializeTimeout: '300ms',
      restart: { initialDelay: '10s', maxDelay: '10s' },
    };
    const at = Date.now();
    gw = await startTestGateway({ servers: { hang } });
    const u = gw.gateway.upstreams.get('hang')!;
    expect(u.state).toBe('failed');
    expect(u.lastError).toContain('did not answer initialize within 300 ms');
    expect(Date.now() - at).toBeLessThan(3_000);
  }, 20_000);
});
