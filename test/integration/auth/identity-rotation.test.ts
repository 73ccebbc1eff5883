/**
 * `switchboard identity rotate|show` on the configured database, and a running gateway that picks
 * the new signing key up at once when the rotation is announced over Redis: its JWKS then lists
 * the new key first and keeps the old one.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { runIdentityRotate, runIdentityShow } from '../../../src/cli/identity.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import { captureOutput } from '../../helpers/cli-output.js';
import { startTestGateway } from '../../helpers/gateway.js';
import { REDIS_URL, redisGate, uniqueKeyPrefix } from '../../helpers/redis.js';

const redisUp = await redisGate('identity key rotation announced over Redis');

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

async function setup(channel: string) {
  const dir = await mkdtemp(join(tmpdir(), 'swb-identity-'));
  cleanups.push(() => rm(dir, { recursive: true, force: true }));
  const config = join(dir, 'switchboard.yaml');
  await writeFile(config, `runtimeServers: { changesChannel: ${JSON.stringify(channel)} }\nservers: {}\n`);
  const database = await openDatabase({ dataDir: join(dir, '.switchboard'), logger: silentLogger() });
  cleanups.push(() => database.close());
  await database.migrate();
  return { config, database };
}

const kids = async (url: string) =>
  ((await (await fetch(`${url}/.well-known/jwks.json`)).json()) as { keys: Array<{ kid: string }> }).keys.map(
    (k) => k.kid,
  );

describe('switchboard identity', () => {
  it.runIf(redisUp)(
    'rotates the key of a running gateway at once over Redis, keeping the old one published',
    async () => {
      const channel = uniqueKeyPrefix('changes');
      const { config, database } = await setup(channel);
      const gw = await startTestGateway(
        { runtimeServers: { changesChannel: channel }, servers: {} },
        { database, redisUrl: REDIS_URL },
      );
      cleanups.push(() => gw.close());
      const [before] = await kids(gw.url);

      const show = captureOutput();
      expect(await runIdentityShow({ config }, show.output)).toBe(0);
      expect(show.out).toEqual([`signing key ${before}`]);

      const c = captureOutput();
      expect(await runIdentityRotate({ config, keep: '2h', redisUrl: REDIS_URL }, c.output)).toBe(0);
      const next = /^new key (\S+) \(retired (\S+), published until (\S+)\)$/.exec(c.out[0] ?? '');
      expect(next?.[2]).toBe(before);
      const rotatedAt = Date.now();
      await vi.waitFor(async () => expect(await kids(gw.url)).toEqual([next![1], before]), {
        timeout: 1_000,
        interval: 20,
      });
      expect(Date.now() - rotatedAt).toBeLessThan(1_000);

      const json = captureOutput();
      expect(await runIdentityShow({ config, json: true }, json.output)).toBe(0);
      expect(JSON.parse(json.out[0]!)).toMatchObject({ kid: next![1], retired: [{ kid: before }] });
    },
  );

  it('refuses a bad --keep, and says when running gateways see a rotation without Redis', async () => {
    const { config } = await setup('swb:changes');
    const c = captureOutput();
    expect(await runIdentityRotate({ config, keep: 'soon', redisUrl: '' }, c.output)).toBe(2);
    expect(c.err.at(-1)).toContain('--keep must be a duration');
    expect(await runIdentityRotate({ config, redisUrl: '' }, c.output)).toBe(0);
    expect(c.out.at(-1)).toMatch(/^new key \S+ \(there was no key before\)$/);
    expect(c.err.at(-1)).toContain('within a minute');
  });
});
