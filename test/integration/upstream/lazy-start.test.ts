/**
 * `start: lazy` stdio servers, with a real gateway, real child processes (found in the OS process
 * list by a marker argument) and a real SQLite file shared by two gateway runs: a lazy server
 * never seen is started once to learn its catalog and stopped; the next run lists it from the
 * stored catalog without starting it; the first call starts it (and refreshes the stored
 * catalog); after `idleStop` without use it stops again; `/readyz` counts it ready while idle.
 */
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';

const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));
const IDLE_STOP_MS = 60_000;

/** Processes whose command line holds `marker` (Linux `/proc`). */
function processesWith(marker: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes(marker)) pids.push(Number(entry));
    } catch {
      // The process ended meanwhile.
    }
  }
  return pids;
}

const readyz = async (g: RunningGateway) => {
  const r = await fetch(`${g.url}/readyz`);
  return { status: r.status, body: (await r.json()) as { upstreams: Array<{ name: string; state: string }> } };
};

describe.skipIf(process.platform !== 'linux')('start: lazy', () => {
  let tmp: string;
  let db: Database;
  let gw: RunningGateway | undefined;
  let now = 1_800_000_000_000;
  const marker = `swb-lazy-${randomUUID()}`;
  const servers = {
    eager: { command: process.execPath, args: [ECHO] },
    big: { command: process.execPath, args: [ECHO, marker], start: 'lazy', idleStop: `${IDLE_STOP_MS}ms` },
  };
  const start = async () => {
    gw = await startTestGateway({ servers }, { database: db, now: () => now });
    const g = gw;
    await waitFor(() => g.gateway.upstreams.get('big')?.state === 'idle', 10_000, 'the lazy server to be idle');
    return g;
  };

  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'swb-lazy-'));
    db = await openDatabase({ url: join(tmp, 'switchboard.db'), dataDir: tmp, logger: silentLogger(), env: {} });
    await db.migrate();
  });

  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  afterAll(async () => {
    await db?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  it('starts a lazy server never seen once to learn its catalog, stores it, and stops it', async () => {
    const g = await start();
    const big = g.gateway.upstreams.get('big')!;
    expect(big.connectionCount).toBe(0);
    await waitFor(() => processesWith(marker).length === 0, 5_000, 'the learning child to exit');
    const stored = await db.catalogs!.get('big');
    expect(stored?.tools.map((t) => t.name)).toEqual(['echo', 'ping']);
    expect(stored?.initializeResult.serverInfo).toEqual({ name: 'echo-fixture', version: '1.0.0' });
    expect(g.gateway.upstreams.get('eager')?.connectionCount).toBe(1);
  });

  it('lists a lazy server from the stored catalog without starting it, starts it on the first call, stops it after idleStop', async () => {
    // Marks the stored catalog, so a listing served from it is told apart from a live one.
    const stored = (await db.catalogs!.get('big'))!;
    const marked = stored.tools.map((t) => (t.name === 'ping' ? { ...t, description: 'from the store' } : t));
    const capabilities = { tools: {}, logging: {} };
    await db.catalogs!.put({
      ...stored,
      tools: marked,
      initializeResult: { ...stored.initializeResult, capabilities },
    });

    const g = await start();
    const big = g.gateway.upstreams.get('big')!;
    expect(big.connectionCount).toBe(0);
    expect(processesWith(marker)).toEqual([]);
    const ready = await readyz(g);
    expect(ready.status).toBe(200);
    expect(ready.body.upstreams).toContainEqual(expect.objectContaining({ name: 'big', state: 'idle' }));

    const { client } = await connectClient(`${g.url}/mcp`);
    try {
      const tools = (await client.listTools()).tools;
      expect(tools.map((t) => t.name)).toEqual(['eager__echo', 'eager__ping', 'big__echo', 'big__ping']);
      expect(tools.find((t) => t.name === 'big__ping')?.description).toBe('from the store');
      // Setting the log level and pinging need no child.
      await client.setLoggingLevel('debug');
      await client.ping();
      expect(processesWith(marker)).toEqual([]);

      const result = await client.callTool({ name: 'big__echo', arguments: { message: 'wake up' } });
      expect(result.structuredContent).toEqual({ echo: 'wake up' });
      expect(big.connectionCount).toBe(1);
      expect(big.state).toBe('ready');
      expect(processesWith(marker)).toHaveLength(1);
      // The live child's lists replace the stored ones, in memory and in the store.
      await waitFor(async () => (await db.catalogs!.get('big'))?.tools[1]?.description === 'Answers pong');
      expect(big.catalog.tools[1]?.description).toBe('Answers pong');

      // Used just now: not stopped.
      now += IDLE_STOP_MS - 1;
      expect(g.gateway.sweep().children).toBe(0);
      expect(big.connectionCount).toBe(1);

      now += 1;
      expect(g.gateway.sweep().children).toBe(1);
      expect(big.connectionCount).toBe(0);
      expect(big.state).toBe('idle');
      await waitFor(() => processesWith(marker).length === 0, 5_000, 'the idle child to exit');

      // Still listed, and the next call starts it again.
      expect((await client.listTools()).tools.map((t) => t.name)).toContain('big__echo');
      const again = await client.callTool({ name: 'big__echo', arguments: { message: 'again' } });
      expect(again.structuredContent).toEqual({ echo: 'again' });
      expect(processesWith(marker)).toHaveLength(1);
    } finally {
      await client.close();
    }
  });

  it('does not restart a lazy child that exits: the server is idle and the next call starts it', async () => {
    const g = await start();
    const big = g.gateway.upstreams.get('big')!;
    const { client } = await connectClient(`${g.url}/mcp`);
    try {
      await client.callTool({ name: 'big__echo', arguments: { message: 'one' } });
      const [pid] = processesWith(marker);
      process.kill(pid!, 'SIGKILL');
      await waitFor(() => big.state === 'idle', 5_000, 'the server to be idle after its child exited');
      expect(big.connectionCount).toBe(0);
      expect(big.restarts).toBe(0);
      expect(processesWith(marker)).toEqual([]);
      const result = await client.callTool({ name: 'big__echo', arguments: { message: 'two' } });
      expect(result.structuredContent).toEqual({ echo: 'two' });
      expect(big.state).toBe('ready');
    } finally {
      await client.close();
    }
  });

  it('learns the catalog again when the stored one is of another configuration', async () => {
    const stored = (await db.catalogs!.get('big'))!;
    await db.catalogs!.put({ ...stored, fingerprint: 'another-configuration', tools: [], updatedAt: 1 });
    const g = await start();
    expect(g.gateway.upstreams.get('big')?.catalog.tools.map((t) => t.name)).toEqual(['echo', 'ping']);
    const fresh = await db.catalogs!.get('big');
    expect(fresh?.fingerprint).toBe(stored.fingerprint);
    expect(fresh?.tools).toHaveLength(2);
  });
});

describe('start: lazy, a start on demand that fails', () => {
  it('is failed with the error in /readyz until a start succeeds', async () => {
    const tmp = await mkdtemp(join(tmpdir(), 'swb-lazy-fail-'));
    const flag = join(tmp, 'refuse');
    const wrapper = join(tmp, 'wrapper.mjs');
    await writeFile(
      wrapper,
      `import { existsSync } from 'node:fs';\nif (existsSync(${JSON.stringify(flag)})) process.exit(1);\nawait import(${JSON.stringify(pathToFileURL(ECHO).href)});\n`,
    );
    const db = await openDatabase({ url: join(tmp, 'switchboard.db'), dataDir: tmp, logger: silentLogger(), env: {} });
    await db.migrate();
    const servers = { big: { command: process.execPath, args: [wrapper], start: 'lazy', restart: { maxRetries: 0 } } };
    let gw: RunningGateway | undefined;
    try {
      // The first run learns the catalog; the second serves it while the command now fails.
      gw = await startTestGateway({ servers }, { database: db });
      const first = gw;
      await waitFor(() => first.gateway.upstreams.get('big')?.state === 'idle', 10_000, 'idle');
      await gw.close();
      await writeFile(flag, '');
      gw = await startTestGateway({ servers }, { database: db });
      const g = gw;
      await waitFor(() => g.gateway.upstreams.get('big')?.state === 'idle', 10_000, 'idle');
      expect((await readyz(g)).status).toBe(200);
      const { client } = await connectClient(`${g.url}/mcp`);
      try {
        await expect(client.callTool({ name: 'big__echo', arguments: { message: 'x' } })).rejects.toBeDefined();
        const big = g.gateway.upstreams.get('big')!;
        expect(big.state).toBe('failed');
        expect(big.lastError).toBeTruthy();
        const r = await readyz(g);
        expect(r.status).toBe(503);
        expect(r.body.upstreams.find((u) => u.name === 'big')?.state).toBe('failed');
        // The command works again: the next call starts it.
        await rm(flag);
        const ok = await client.callTool({ name: 'big__echo', arguments: { message: 'back' } });
        expect(ok.structuredContent).toEqual({ echo: 'back' });
        expect(big.state).toBe('ready');
      } finally {
        await client.close();
      }
    } finally {
      await gw?.close();
      await db.close();
      await rm(tmp, { recursive: true, force: true });
    }
  });
});
