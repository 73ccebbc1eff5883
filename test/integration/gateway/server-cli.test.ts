/**
 * `switchboard server add|list|remove|enable|disable` on the configured database: validated like
 * the admin API, loaded by a gateway at start (disabled ones skipped), and announced over Redis
 * so a running gateway applies them at once.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runServerAdd, runServerList, runServerRemove, runServerSetEnabled } from '../../../src/cli/server.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import { startTestGateway } from '../../helpers/gateway.js';
import { REDIS_URL, redisGate, uniqueKeyPrefix } from '../../helpers/redis.js';
import { captureOutput } from '../../helpers/cli-output.js';

const redisUp = await redisGate('switchboard server announcements over Redis');
const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function setup(channel = 'swb:changes') {
  const dir = await mkdtemp(join(tmpdir(), 'swb-server-cli-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'switchboard.yaml');
  await writeFile(
    config,
    `runtimeServers: { changesChannel: ${JSON.stringify(channel)} }\nservers:\n  file1: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(ECHO)}] }\n`,
  );
  return { dir, config };
}

describe('switchboard server', () => {
  it('adds, lists, disables, enables and removes runtime servers; a gateway starts the enabled ones', async () => {
    const { dir, config } = await setup();
    const c = captureOutput();
    const add = (extra: Record<string, unknown>) => runServerAdd({ config, redisUrl: '', ...extra } as never, c.output);
    expect(await add({ name: 'echo2', command: process.execPath, args: [ECHO], description: 'second echo' })).toBe(0);
    expect(c.out).toEqual(['added echo2']);
    // Refused like the admin API: the file's server, an overlapping name, a bad entry, a duplicate.
    expect(await add({ name: 'file1', command: 'x' })).toBe(1);
    expect(c.err.at(-1)).toContain('declared in the configuration file');
    expect(await add({ name: 'echo2__x', command: 'x' })).toBe(1);
    expect(c.err.at(-1)).toContain('could expose the same names');
    expect(await add({ name: 'bad', url: 'not a url' })).toBe(1);
    expect(c.err.at(-1)).toMatch(/invalid server entry: url/);
    expect(await add({ name: 'none' })).toBe(1);
    expect(c.err.at(-1)).toContain('--command');
    expect(await add({ name: 'echo2', command: process.execPath })).toBe(1);
    expect(c.err.at(-1)).toContain('--force');
    expect(await add({ name: 'j', json: '{"url":"https://mcp.example.com/mcp"}' })).toBe(0);

    const l = captureOutput();
    expect(await runServerList({ config }, l.output)).toBe(0);
    expect(l.out).toEqual([
      `echo2\tenabled\tstdio ${process.execPath}\tsecond echo`,
      'j\tenabled\turl https://mcp.example.com/mcp',
    ]);
    expect(await runServerSetEnabled({ config, redisUrl: '', name: 'j', enabled: false }, c.output)).toBe(0);
    expect(await runServerSetEnabled({ config, redisUrl: '', name: 'nope', enabled: false }, c.output)).toBe(1);

    const database = await openDatabase({ dataDir: join(dir, '.switchboard'), logger: silentLogger() });
    cleanups.push(() => database.close());
    const gw = await startTestGateway({ servers: {} }, { database });
    cleanups.push(() => gw.close());
    expect([...gw.gateway.upstreams.keys()].sort()).toEqual(['echo2']);
    expect(gw.gateway.upstreams.get('echo2')?.state).toBe('ready');

    expect(await runServerSetEnabled({ config, redisUrl: '', name: 'j', enabled: true }, c.output)).toBe(0);
    const l2 = captureOutput();
    await runServerList({ config }, l2.output);
    expect(l2.out[1]).toBe('j\tenabled\turl https://mcp.example.com/mcp');
    expect(await runServerRemove({ config, redisUrl: '', name: 'j' }, c.output)).toBe(0);
    expect(await runServerRemove({ config, redisUrl: '', name: 'j' }, c.output)).toBe(1);
  });

  it.runIf(redisUp)('tells a running gateway over Redis, which starts and stops the server at once', async () => {
    const channel = uniqueKeyPrefix('changes');
    const { dir, config } = await setup(channel);
    const database = await openDatabase({ dataDir: join(dir, '.switchboard'), logger: silentLogger() });
    cleanups.push(() => database.close());
    await database.migrate();
    const gw = await startTestGateway(
      { runtimeServers: { changesChannel: channel }, servers: {} },
      { database, redisUrl: REDIS_URL },
    );
    cleanups.push(() => gw.close());
    const c = captureOutput();
    expect(
      await runServerAdd(
        { config, redisUrl: REDIS_URL, name: 'live', command: process.execPath, args: [ECHO] },
        c.output,
      ),
    ).toBe(0);
    await vi.waitFor(() => expect(gw.gateway.upstreams.has('live')).toBe(true), { timeout: 1_000, interval: 20 });
    expect(await runServerSetEnabled({ config, redisUrl: REDIS_URL, name: 'live', enabled: false }, c.output)).toBe(0);
    await vi.waitFor(() => expect(gw.gateway.upstreams.has('live')).toBe(false), { timeout: 1_000, interval: 20 });
  });
});
