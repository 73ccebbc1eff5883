/**
 * Two replicas on one database and one Redis: a runtime server written or deleted through one
 * replica's admin API, and a tool approval made through one replica (or `switchboard tools
 * approve`), apply on the other within a second — announced on `runtimeServers.changesChannel`.
 * Without the announcement a replica would see runtime servers only at its next start, and
 * approvals at its next 5 s pin re-read.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { RunningGateway } from '../../../src/app.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import { publishOnce } from '../../../src/store/redis-revocations.js';
import { startTestGateway } from '../../helpers/gateway.js';
import { REDIS_URL, redisGate, uniqueKeyPrefix } from '../../helpers/redis.js';

const ready = await redisGate('shared changes between replicas');
const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));
const echoEntry = (extra: Record<string, unknown> = {}) => ({ command: process.execPath, args: [ECHO], ...extra });

describe.runIf(ready)('shared changes between replicas (Redis)', () => {
  const open: Array<{ close(): Promise<void> }> = [];
  afterEach(async () => {
    for (const x of open.reverse()) await x.close();
    open.length = 0;
  });

  async function replicas(
    extra: Record<string, unknown> = {},
    seed?: (db: Awaited<ReturnType<typeof openDatabase>>) => Promise<void>,
  ) {
    const database = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger() });
    open.push(database);
    await database.migrate();
    await seed?.(database);
    const channel = uniqueKeyPrefix('changes');
    const config = {
      auth: { mode: 'tokens' },
      runtimeServers: { changesChannel: channel },
      servers: { echo: echoEntry() },
      ...extra,
    };
    const a = await startTestGateway(config, { database, redisUrl: REDIS_URL });
    open.push(a);
    const b = await startTestGateway(config, { database, redisUrl: REDIS_URL });
    open.push(b);
    const admin = (await a.tokens.create({ name: 'root', subject: 'root', permissions: ['*'] })).token;
    const headers = { authorization: `Bearer ${admin}`, 'content-type': 'application/json' };
    return { a, b, headers, channel, database };
  }

  const names = async (gw: RunningGateway, headers: Record<string, string>) =>
    (
      (await (await fetch(`${gw.url}/api/v1/servers`, { headers })).json()) as { servers: Array<{ name: string }> }
    ).servers
      .map((s) => s.name)
      .sort();

  it('a runtime server added, changed and deleted through one replica appears, changes and goes on the other within 1 s', async () => {
    const { a, b, headers } = await replicas();
    expect(await names(b, headers)).toEqual(['echo']);

    const put = await fetch(`${a.url}/api/v1/servers/more`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(echoEntry({ description: 'first' })),
    });
    expect(put.status).toBe(201);
    const added = Date.now();
    await vi.waitFor(async () => expect(await names(b, headers)).toEqual(['echo', 'more']), {
      timeout: 1_000,
      interval: 20,
    });
    expect(Date.now() - added).toBeLessThan(1_000);
    await vi.waitFor(() => expect(b.gateway.upstreams.get('more')?.state).toBe('ready'), { timeout: 10_000 });

    const changed = await fetch(`${a.url}/api/v1/servers/more`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(echoEntry({ description: 'second' })),
    });
    expect(changed.status).toBe(200);
    await vi.waitFor(() => expect(b.gateway.config.servers.more?.description).toBe('second'), {
      timeout: 1_000,
      interval: 20,
    });

    const deleted = await fetch(`${b.url}/api/v1/servers/more`, { method: 'DELETE', headers });
    expect(deleted.status).toBe(200);
    await vi.waitFor(async () => expect(await names(a, headers)).toEqual(['echo']), { timeout: 1_000, interval: 20 });
  });

  it('a tool approval through the CLI announcement, or through one replica, unblocks the tool on the other within 1 s', async () => {
    const { a, b, headers, channel, database } = await replicas(
      { guardrails: [{ name: 'pins', pinTools: 'block' }] },
      // Pinned before, with other definitions: both replicas see both tools as changed.
      async (db) => {
        await db.toolPins!.pin('echo', 'echo', 'an-earlier-definition', 1);
        await db.toolPins!.pin('echo', 'ping', 'an-earlier-ping', 1);
      },
    );
    for (const gw of [a, b]) {
      await vi.waitFor(() => expect(gw.toolPins()?.isChanged('echo', 'ping')).toBe(true), { timeout: 10_000 });
      expect(gw.toolPins()?.isChanged('echo', 'echo')).toBe(true);
      await gw.toolPins()!.settled();
    }

    // `switchboard tools approve` writes the database and publishes `cli pins`.
    expect(await database.toolPins!.approve('echo', 'ping', 'cli', Date.now())).toEqual(['ping']);
    expect(await publishOnce(REDIS_URL, channel, 'cli pins')).toBe(true);
    const cliAt = Date.now();
    await vi.waitFor(() => expect(b.toolPins()?.isChanged('echo', 'ping')).toBe(false), {
      timeout: 1_000,
      interval: 10,
    });
    expect(Date.now() - cliAt).toBeLessThan(1_000);
    expect(b.toolPins()?.isChanged('echo', 'echo')).toBe(true);

    const approved = await fetch(`${a.url}/api/v1/tools/pins/echo/approve`, { method: 'POST', headers });
    expect(await approved.json()).toEqual({ server: 'echo', approved: ['echo'] });
    const at = Date.now();
    await vi.waitFor(() => expect(b.toolPins()?.isChanged('echo', 'echo')).toBe(false), {
      timeout: 1_000,
      interval: 10,
    });
    expect(Date.now() - at).toBeLessThan(1_000);
  });
});
