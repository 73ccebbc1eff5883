/**
 * Chaos: the Redis behind the rate limits stops, hangs and comes back mid-test. The test starts
 * its own `redis-server` on a free port (never the shared one other tests use).
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import { GatewayError } from '../../../src/errors.js';
import {
  createRateLimiter,
  type RateLimitContext,
  type RateLimitEvent,
  type RateLimiter,
} from '../../../src/policy/rate-limit.js';
import { RateLimitRule } from '../../../src/config/schema.js';
import { connectRedis, createRedisClient, type Redis } from '../../../src/store/redis.js';
import {
  redisServerGate,
  startRedisServer,
  waitForDisconnect,
  waitForReady,
  type OwnRedisServer,
} from '../../helpers/redis.js';
import { attempt, captureLogger } from '../../helpers/rate-limit.js';

const canRun = redisServerGate('rate-limit chaos tests (own redis-server)');

const RULES = [RateLimitRule.parse({ name: 'echo', match: { server: 'echo' }, limit: 5, window: '60s' })];

function principal(id: string): Principal {
  return { id, kind: 'token', subject: id, permissions: ['*'] };
}

function call(id: string): RateLimitContext {
  return { principal: principal(id), ip: '203.0.113.7', server: 'echo', tool: 'echo', method: 'tools/call' };
}

async function admitted(l: RateLimiter, c: RateLimitContext, attempts: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < attempts; i++) if ((await attempt(l, c)) === 'ok') ok++;
  return ok;
}

describe.skipIf(!canRun)('rate limits when Redis fails', () => {
  let server: OwnRedisServer;
  let redis: Redis;
  const events: RateLimitEvent[] = [];
  const { logger, lines } = captureLogger();
  let open: RateLimiter;
  let closed: RateLimiter;

  beforeAll(async () => {
    server = await startRedisServer();
    // Short timeouts so the test sees failures and recovery quickly.
    redis = createRedisClient(server.url, logger, { commandTimeoutMs: 200, maxReconnectDelayMs: 100 });
    expect(await connectRedis(redis, logger)).toBe(true);
    const common = { rules: RULES, store: 'redis' as const, redis, keyPrefix: 'chaos', logger };
    open = createRateLimiter({ ...common, failOpen: true, onEvent: (e) => events.push(e) });
    closed = createRateLimiter({ ...common, failOpen: false });
  });

  afterAll(async () => {
    await open?.close();
    await closed?.close();
    redis?.disconnect();
    await server?.close();
  });

  it('limits while Redis is up', async () => {
    expect(await admitted(open, call('token:before'), 6)).toBe(5);
    expect(events).toEqual([{ type: 'limited', rule: 'echo' }]);
    events.length = 0;
  });

  it('Redis stopped: failOpen lets requests through, reports store_error and logs one warning', async () => {
    await server.stop();
    await waitForDisconnect(redis);
    const warningsBefore = lines.filter((l) => l.level === 40 && l.rule === 'echo').length;

    expect(await admitted(open, call('token:during'), 8)).toBe(8);
    expect(events).toHaveLength(8);
    expect(events.every((e) => e.type === 'store_error' && e.rule === 'echo')).toBe(true);
    const warnings = lines.filter((l) => l.level === 40 && l.rule === 'echo');
    expect(warnings.length - warningsBefore).toBe(1);
    expect(warnings.at(-1)).toMatchObject({ failOpen: true, msg: expect.stringContaining('rate-limit store failed') });
  });

  it('Redis stopped: failOpen false refuses with 503 SWB_ERR_RATE_LIMIT_UNAVAILABLE', async () => {
    const refused = await attempt(closed, call('token:during'));
    expect(refused).toBeInstanceOf(GatewayError);
    expect(refused).toMatchObject({ code: 'SWB_ERR_RATE_LIMIT_UNAVAILABLE', status: 503, data: { rule: 'echo' } });
    expect((refused as GatewayError).jsonRpcCode).toBe(-33051);
  });

  it('Redis restarted: limiting resumes and the recovery is logged', async () => {
    events.length = 0;
    await server.start();
    await waitForReady(redis);
    expect(await admitted(open, call('token:after'), 6)).toBe(5);
    expect(await attempt(closed, call('token:after'))).toMatchObject({ code: 'SWB_ERR_RATE_LIMITED', status: 429 });
    expect(events).toEqual([{ type: 'limited', rule: 'echo' }]);
    expect(lines.some((l) => l.level === 30 && l.msg === 'rate-limit store recovered: limits apply again')).toBe(true);
    expect(lines.some((l) => l.component === 'redis' && l.msg === 'redis connection restored')).toBe(true);
  });

  it('Redis hung (SIGSTOP): checks fail after the command timeout instead of hanging, then recover', async () => {
    events.length = 0;
    const pid = server.pid!;
    process.kill(pid, 'SIGSTOP');
    try {
      const started = performance.now();
      expect(await attempt(open, call('token:hung'))).toBe('ok');
      expect(await attempt(closed, call('token:hung'))).toMatchObject({ code: 'SWB_ERR_RATE_LIMIT_UNAVAILABLE' });
      expect(performance.now() - started).toBeLessThan(3_000);
      expect(events).toEqual([{ type: 'store_error', rule: 'echo' }]);
    } finally {
      process.kill(pid, 'SIGCONT');
    }
    await waitForReady(redis);
    events.length = 0;
    expect(await admitted(open, call('token:thawed'), 6)).toBe(5);
    expect(events).toEqual([{ type: 'limited', rule: 'echo' }]);
  });
});
