/**
 * Rate limits on the shared Redis of the test machine: two limiter instances with their own clients
 * stand for two Switchboard replicas; they must share one limit.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import { parseConfigText } from '../../../src/config/load.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createRateLimiter, type RateLimitContext, type RateLimiter } from '../../../src/policy/rate-limit.js';
import { connectRedis, createRedisClient, type Redis } from '../../../src/store/redis.js';
import { REDIS_URL, deleteKeys, redisGate, uniqueKeyPrefix } from '../../helpers/redis.js';
import { attempt } from '../../helpers/rate-limit.js';

const redisUp = await redisGate('rate-limit tests on Redis');

const ISSUE_RULES = parseConfigText(
  JSON.stringify({
    rateLimits: [{ match: { server: 'echo', tool: 'echo' }, key: 'principal', limit: 5, window: '60s' }],
  }),
  { format: 'json' },
).rateLimits;

function principal(id: string): Principal {
  return { id, kind: 'token', subject: id, permissions: ['*'] };
}

function call(p: Principal, ip = '203.0.113.7'): RateLimitContext {
  return { principal: p, ip, server: 'echo', tool: 'echo', method: 'tools/call' };
}

describe.skipIf(!redisUp)('rate limits on Redis shared by replicas', () => {
  let prefix: string;
  let clients: Redis[];
  let replicas: RateLimiter[];

  async function replica(): Promise<RateLimiter> {
    const redis = createRedisClient(REDIS_URL, silentLogger());
    clients.push(redis);
    expect(await connectRedis(redis, silentLogger())).toBe(true);
    const l = createRateLimiter({
      rules: ISSUE_RULES,
      store: 'redis',
      redis,
      failOpen: false,
      keyPrefix: prefix,
      logger: silentLogger(),
    });
    replicas.push(l);
    return l;
  }

  beforeEach(() => {
    prefix = uniqueKeyPrefix('rl');
    clients = [];
    replicas = [];
  });

  afterEach(async () => {
    await Promise.all(replicas.map((l) => l.close()));
    await Promise.all(clients.map((c) => c.quit()));
    await deleteKeys(prefix);
  });

  it('admits 5 calls across two replicas and refuses the 6th on either', async () => {
    const [a, b] = [await replica(), await replica()];
    const alice = principal('token:alice');
    const results: ('ok' | GatewayError)[] = [];
    for (let i = 0; i < 5; i++) results.push(await attempt(i % 2 === 0 ? a : b, call(alice)));
    expect(results).toEqual(['ok', 'ok', 'ok', 'ok', 'ok']);

    for (const l of [b, a]) {
      const refused = await attempt(l, call(alice));
      expect(refused).toBeInstanceOf(GatewayError);
      expect(refused).toMatchObject({ code: 'SWB_ERR_RATE_LIMITED', status: 429, data: { rule: '0' } });
      // Token bucket: 5 tokens refilled at 5 a minute, the next one 12 s after the first call.
      const retryAfterMs = (refused as GatewayError).data?.retryAfterMs as number;
      expect(retryAfterMs).toBeGreaterThan(10_000);
      expect(retryAfterMs).toBeLessThanOrEqual(12_000);
    }
  });

  it('shares one limit among concurrent requests on both replicas (atomic counting)', async () => {
    const [a, b] = [await replica(), await replica()];
    const carol = principal('token:carol');
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => attempt(i % 2 === 0 ? a : b, call(carol))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(5);
    const refusals = results.filter((r): r is GatewayError => r !== 'ok');
    expect(refusals.map((r) => r.code)).toEqual(Array.from({ length: 15 }, () => 'SWB_ERR_RATE_LIMITED'));
  });

  it('keeps separate counts per principal, and per IP for anonymous callers', async () => {
    const [a, b] = [await replica(), await replica()];
    for (let i = 0; i < 6; i++) await attempt(a, call(principal('token:alice')));
    expect(await attempt(b, call(principal('token:bob')))).toBe('ok');
    for (let i = 0; i < 6; i++) await attempt(a, call(ANONYMOUS, '198.51.100.1'));
    expect(await attempt(b, call(ANONYMOUS, '198.51.100.2'))).toBe('ok');
    expect(await attempt(b, call(ANONYMOUS, '::ffff:198.51.100.1'))).toMatchObject({ code: 'SWB_ERR_RATE_LIMITED' });
  });

  it('stores one key per rule and caller, expiring when the bucket is full again', async () => {
    const a = await replica();
    await attempt(a, call(principal('token:dave')));
    await attempt(a, call(principal('token:dave')));
    await attempt(a, call(ANONYMOUS, '::ffff:198.51.100.3'));
    const redis = clients[0]!;
    // The value is the bucket's "theoretical arrival time" (GCRA), in Redis server milliseconds.
    const [seconds] = await redis.time();
    const tat = Number(await redis.get(`${prefix}:0:token:dave`));
    expect(tat - Number(seconds) * 1000).toBeGreaterThan(22_000);
    expect(tat - Number(seconds) * 1000).toBeLessThanOrEqual(25_000);
    expect(await redis.exists(`${prefix}:0:ip:198.51.100.3`)).toBe(1);
    // Two tokens taken, refilled at one per 12 s: the key expires in ≈ 24 s.
    const ttl = await redis.pttl(`${prefix}:0:token:dave`);
    expect(ttl).toBeGreaterThan(22_000);
    expect(ttl).toBeLessThanOrEqual(24_000);
  });

  it('refuses without a Redis round trip while a key is known to be over its limit', async () => {
    const a = await replica();
    const erin = principal('token:erin');
    for (let i = 0; i < 5; i++) expect(await attempt(a, call(erin))).toBe('ok');
    expect(await attempt(a, call(erin))).toMatchObject({ code: 'SWB_ERR_RATE_LIMITED' });
    const redis = clients[clients.length - 1]!;
    const send = redis.sendCommand.bind(redis);
    let sent = 0;
    redis.sendCommand = (...args: Parameters<Redis['sendCommand']>) => {
      sent++;
      return send(...args);
    };
    for (let i = 0; i < 10; i++) expect(await attempt(a, call(erin))).toMatchObject({ code: 'SWB_ERR_RATE_LIMITED' });
    expect(sent).toBe(0);
    expect(await attempt(a, call(principal('token:frank')))).toBe('ok');
    expect(sent).toBe(1);
  });
});
