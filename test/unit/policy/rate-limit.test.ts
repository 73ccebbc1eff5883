import { afterEach, describe, expect, it, vi } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import { parseConfigText } from '../../../src/config/load.js';
import { RateLimitRule } from '../../../src/config/schema.js';
import { GatewayError, isGatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import {
  STORE_ERROR_LOG_INTERVAL_MS,
  createRateLimiter,
  rateLimitRuleProblems,
  resolveRateLimitStore,
  retryAfterSeconds,
  type RateLimitContext,
  type RateLimitEvent,
  type RateLimiter,
  type RateLimiterOptions,
} from '../../../src/policy/rate-limit.js';
import { createRedisClient, type Redis } from '../../../src/store/redis.js';
import { freePort } from '../../helpers/redis.js';
import { captureLogger } from '../../helpers/rate-limit.js';

function principal(id: string, extra: Partial<Principal> = {}): Principal {
  return { id, kind: 'token', subject: id, permissions: ['*'], ...extra };
}

const alice = principal('token:alice', { tokenId: 'tok-a1' });
const bob = principal('token:bob', { tokenId: 'tok-b1' });

function ctx(over: Partial<RateLimitContext> = {}): RateLimitContext {
  return { principal: alice, ip: '203.0.113.7', server: 'echo', tool: 'echo', method: 'tools/call', ...over };
}

/** Rules in the config's input shape, validated by the real schema (`window: "60s"` → 60000). */
function rules(...input: Record<string, unknown>[]): RateLimitRule[] {
  return input.map((r) => RateLimitRule.parse(r));
}

const limiters: RateLimiter[] = [];

function limiter(options: Partial<RateLimiterOptions> & Pick<RateLimiterOptions, 'rules'>): RateLimiter {
  const l = createRateLimiter({
    store: 'memory',
    failOpen: true,
    keyPrefix: 'swb:rl',
    logger: silentLogger(),
    ...options,
  });
  limiters.push(l);
  return l;
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(limiters.splice(0).map((l) => l.close()));
});

/** Runs a check to completion: `'ok'` when admitted (at once or later), or the error it threw/rejected with. */
async function outcome(l: RateLimiter, c: RateLimitContext): Promise<'ok' | GatewayError> {
  let r: Promise<void> | undefined;
  try {
    r = l.check(c);
  } catch (e) {
    if (isGatewayError(e)) return e;
    throw e;
  }
  if (r === undefined) return 'ok';
  try {
    await r;
    return 'ok';
  } catch (e) {
    if (isGatewayError(e)) return e;
    throw e;
  }
}

async function admittedCount(l: RateLimiter, c: RateLimitContext, attempts: number): Promise<number> {
  let ok = 0;
  for (let i = 0; i < attempts; i++) if ((await outcome(l, c)) === 'ok') ok++;
  return ok;
}

function expectLimited(o: 'ok' | GatewayError): GatewayError {
  expect(o).toBeInstanceOf(GatewayError);
  const e = o as GatewayError;
  expect(e.code).toBe('SWB_ERR_RATE_LIMITED');
  expect(e.status).toBe(429);
  return e;
}

describe('createRateLimiter: hot path', () => {
  it('returns undefined synchronously when there are no rules', () => {
    const l = limiter({ rules: [] });
    expect(l.ruleCount).toBe(0);
    expect(l.check(ctx())).toBeUndefined();
  });

  it('returns undefined synchronously (no promise) when no rule matches the request', () => {
    const l = limiter({ rules: rules({ match: { server: 'other' }, limit: 1, window: '1m' }) });
    for (let i = 0; i < 10; i++) expect(l.check(ctx())).toBeUndefined();
  });

  it('admits and refuses synchronously, without a promise, with the memory store', () => {
    const l = limiter({ rules: rules({ match: { server: 'echo' }, limit: 1, window: '1m' }) });
    expect(l.check(ctx())).toBeUndefined();
    expect(() => l.check(ctx())).toThrow(expect.objectContaining({ code: 'SWB_ERR_RATE_LIMITED' }));
  });

  it('takes a token from every matching rule synchronously and throws the longest wait', () => {
    const l = limiter({
      rules: rules(
        { name: 'minute', match: { server: 'echo' }, limit: 2, window: '1m' },
        { name: 'hour', match: { tool: 'echo' }, limit: 1, window: '1h' },
      ),
    });
    expect(l.check(ctx())).toBeUndefined();
    let refused: unknown;
    try {
      void l.check(ctx()); // throws: the memory store refuses synchronously
    } catch (e) {
      refused = e;
    }
    expect(refused).toMatchObject({ code: 'SWB_ERR_RATE_LIMITED', data: { rule: 'hour' } });
    expect((refused as GatewayError).data?.retryAfterMs).toBeGreaterThan(59 * 60_000);
  });

  it('keeps check usable when passed around unbound', () => {
    const { check } = limiter({ rules: rules({ limit: 1, window: '1m' }) });
    expect(check(ctx())).toBeUndefined();
    expect(() => check(ctx())).toThrow(expect.objectContaining({ code: 'SWB_ERR_RATE_LIMITED' }));
  });
});

describe('createRateLimiter: the documented rule shape, as written', () => {
  const json = JSON.stringify({
    rateLimits: [{ match: { server: 'echo', tool: 'echo' }, key: 'principal', limit: 5, window: '60s' }],
  });

  it('admits 5 echo calls per principal per minute and refuses the 6th with 429 and retryAfterMs', async () => {
    const config = parseConfigText(json, { format: 'json' });
    const events: RateLimitEvent[] = [];
    const l = limiter({ rules: config.rateLimits, onEvent: (e) => events.push(e) });

    expect(await admittedCount(l, ctx(), 5)).toBe(5);
    const e = expectLimited(await outcome(l, ctx()));
    expect(e.jsonRpcCode).toBe(-33050);
    expect(e.data?.rule).toBe('0');
    // A token bucket of 5 refilled at 5 a minute: the next token comes 12 s after the first call.
    const retryAfterMs = e.data?.retryAfterMs as number;
    expect(retryAfterMs).toBeGreaterThan(11_000);
    expect(retryAfterMs).toBeLessThanOrEqual(12_000);
    expect(e.toJsonRpcError()).toMatchObject({
      code: -33050,
      data: { code: 'SWB_ERR_RATE_LIMITED', retryAfterMs, rule: '0' },
    });
    expect(events).toEqual([{ type: 'limited', rule: '0' }]);
  });

  it('counts each principal separately (principal in every key)', async () => {
    const l = limiter({ rules: parseConfigText(json, { format: 'json' }).rateLimits });
    expect(await admittedCount(l, ctx(), 6)).toBe(5);
    expect(await admittedCount(l, ctx({ principal: bob }), 6)).toBe(5);
  });

  it('leaves other tools of the server and other servers alone, synchronously', async () => {
    const l = limiter({ rules: parseConfigText(json, { format: 'json' }).rateLimits });
    await admittedCount(l, ctx(), 6);
    expect(l.check(ctx({ tool: 'add' }))).toBeUndefined();
    expect(l.check(ctx({ server: 'everything' }))).toBeUndefined();
    expect(l.check(ctx({ method: 'tools/list', tool: undefined }))).toBeUndefined();
  });

  it('refills one token every window / limit, and a full bucket after a whole window', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const l = limiter({ rules: parseConfigText(json, { format: 'json' }).rateLimits });
    expect(await admittedCount(l, ctx(), 6)).toBe(5);
    vi.advanceTimersByTime(11_999);
    expect(expectLimited(await outcome(l, ctx())).data?.retryAfterMs).toBe(1);
    vi.advanceTimersByTime(1);
    expect(await admittedCount(l, ctx(), 3)).toBe(1);
    // Sustained: 5 a minute, never more, however the minute is cut (no window edges to game).
    vi.advanceTimersByTime(60_000);
    expect(await admittedCount(l, ctx(), 10)).toBe(5);
    vi.advanceTimersByTime(30_000);
    expect(await admittedCount(l, ctx(), 10)).toBe(2);
  });
});

describe('createRateLimiter: counting', () => {
  it('admits a burst of limit + burst at once, then limit per window', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const l = limiter({ rules: rules({ limit: 2, burst: 3, window: '10s' }) });
    expect(await admittedCount(l, ctx(), 10)).toBe(5);
    vi.advanceTimersByTime(10_000);
    expect(await admittedCount(l, ctx(), 10)).toBe(2);
  });

  it('does not count refused requests: a caller that keeps retrying is not pushed further back', async () => {
    vi.useFakeTimers({ now: new Date('2026-01-01T00:00:00Z') });
    const l = limiter({ rules: rules({ limit: 1, window: '10s' }) });
    expect(await admittedCount(l, ctx(), 1)).toBe(1);
    for (let i = 0; i < 20; i++) {
      vi.advanceTimersByTime(400);
      expectLimited(await outcome(l, ctx()));
    }
    vi.advanceTimersByTime(2_000);
    expect(await admittedCount(l, ctx(), 1)).toBe(1);
  });

  it('names the rule in data.rule and the message when the rule has a name', async () => {
    const l = limiter({ rules: rules({ name: 'echo-calls', limit: 1, window: '10s' }) });
    await outcome(l, ctx());
    const e = expectLimited(await outcome(l, ctx()));
    expect(e.data).toMatchObject({ rule: 'echo-calls' });
    expect(e.data?.retryAfterMs).toBeLessThanOrEqual(10_000);
    expect(e.message).toContain('echo-calls');
  });

  it('applies every matching rule: the tightest refuses, with the longest wait among refusals', async () => {
    const l = limiter({
      rules: rules(
        { name: 'wide', match: { server: 'echo' }, limit: 100, window: '1m' },
        { name: 'short', match: { tool: 'echo' }, limit: 2, window: '10s' },
        { name: 'long', match: { method: 'tools/call' }, limit: 2, window: '1h' },
      ),
    });
    expect(await admittedCount(l, ctx(), 2)).toBe(2);
    const e = expectLimited(await outcome(l, ctx()));
    expect(e.data?.rule).toBe('long');
    // 'long' refills a token every 30 min, 'short' every 5 s: the longer wait wins.
    expect(e.data?.retryAfterMs).toBeGreaterThan(1_790_000);
  });

  it('refuses without consuming further from a rule that matched only other requests', async () => {
    const l = limiter({
      rules: rules(
        { name: 'echo', match: { tool: 'echo' }, limit: 1, window: '1m' },
        { name: 'add', match: { tool: 'add' }, limit: 1, window: '1m' },
      ),
    });
    expect(await outcome(l, ctx())).toBe('ok');
    expectLimited(await outcome(l, ctx()));
    expect(await outcome(l, ctx({ tool: 'add' }))).toBe('ok');
  });

  it('stops limiting after close()', async () => {
    const l = limiter({ rules: rules({ limit: 1, window: '1m' }) });
    await outcome(l, ctx());
    await l.close();
    expect(l.check(ctx())).toBeUndefined();
  });
});

describe('createRateLimiter: match', () => {
  /** True when the rule counts `c`: with `limit: 1`, a second identical request is then refused. */
  function matches(match: Record<string, unknown>, c: RateLimitContext): boolean {
    const l = limiter({ rules: rules({ match, limit: 1, window: '1m' }) });
    expect(l.check(c)).toBeUndefined();
    try {
      void l.check(c); // throws when the rule counts c
      return false;
    } catch (e) {
      if (isGatewayError(e) && e.code === 'SWB_ERR_RATE_LIMITED') return true;
      throw e;
    }
  }

  it('matches every request with an empty match', () => {
    expect(matches({}, ctx({ method: 'ping', server: undefined, tool: undefined }))).toBe(true);
  });

  it('matches principal ids with globs whose * crosses / and #', () => {
    const oauth = principal('oauth:https://issuer.example/realms/x#user-1', { kind: 'oauth' });
    expect(matches({ principal: 'oauth:*' }, ctx({ principal: oauth }))).toBe(true);
    expect(matches({ principal: 'oauth:https://issuer.example/*' }, ctx({ principal: oauth }))).toBe(true);
    expect(matches({ principal: 'token:*' }, ctx({ principal: oauth }))).toBe(false);
    expect(matches({ principal: 'token:alice' }, ctx())).toBe(true);
    expect(matches({ principal: 'token:al' }, ctx())).toBe(false);
    expect(matches({ principal: 'anonymous' }, ctx({ principal: ANONYMOUS }))).toBe(true);
  });

  it('matches the API token id, and never a principal without one', () => {
    expect(matches({ token: 'tok-a1' }, ctx())).toBe(true);
    expect(matches({ token: 'tok-*' }, ctx({ principal: bob }))).toBe(true);
    expect(matches({ token: 'tok-a1' }, ctx({ principal: bob }))).toBe(false);
    expect(matches({ token: '*' }, ctx({ principal: ANONYMOUS }))).toBe(false);
  });

  it('matches server and tool globs, and never a request without a server or tool', () => {
    expect(matches({ server: 'ec*' }, ctx())).toBe(true);
    expect(matches({ server: 'echo' }, ctx({ server: undefined }))).toBe(false);
    expect(matches({ server: '*' }, ctx({ server: undefined }))).toBe(false);
    expect(matches({ tool: 'get_*' }, ctx({ tool: 'get_weather' }))).toBe(true);
    expect(matches({ tool: 'get_*' }, ctx({ tool: 'set_weather' }))).toBe(false);
    expect(matches({ tool: '*' }, ctx({ method: 'resources/read', tool: undefined }))).toBe(false);
    expect(matches({ tool: 'Echo' }, ctx())).toBe(false);
  });

  it('matches MCP method globs', () => {
    expect(matches({ method: 'resources/*' }, ctx({ method: 'resources/read' }))).toBe(true);
    expect(matches({ method: 'resources/*' }, ctx({ method: 'tools/call' }))).toBe(false);
    expect(matches({ method: '*' }, ctx({ method: 'tools/call' }))).toBe(true);
    expect(matches({ method: 'tools/{call,list}' }, ctx({ method: 'tools/list' }))).toBe(true);
  });

  it('matches client IPs against a CIDR or a single address, IPv4-mapped IPv6 included', () => {
    expect(matches({ ip: '10.0.0.0/8' }, ctx({ ip: '10.1.2.3' }))).toBe(true);
    expect(matches({ ip: '10.0.0.0/8' }, ctx({ ip: '::ffff:10.1.2.3' }))).toBe(true);
    expect(matches({ ip: '10.0.0.0/8' }, ctx({ ip: '11.0.0.1' }))).toBe(false);
    expect(matches({ ip: '10.0.0.0/8' }, ctx({ ip: undefined }))).toBe(false);
    expect(matches({ ip: '10.0.0.0/8' }, ctx({ ip: 'not-an-ip' }))).toBe(false);
    expect(matches({ ip: '::ffff:10.0.0.0/104' }, ctx({ ip: '10.9.9.9' }))).toBe(true);
    expect(matches({ ip: '2001:db8::/32' }, ctx({ ip: '2001:db8:1::5' }))).toBe(true);
    expect(matches({ ip: '2001:db8::/32' }, ctx({ ip: '10.1.2.3' }))).toBe(false);
    expect(matches({ ip: '203.0.113.7' }, ctx())).toBe(true);
    expect(matches({ ip: '203.0.113.8' }, ctx())).toBe(false);
  });

  it('requires every field of match', () => {
    const m = { server: 'echo', tool: 'echo', method: 'tools/call', principal: 'token:*', ip: '203.0.113.0/24' };
    expect(matches(m, ctx())).toBe(true);
    expect(matches(m, ctx({ ip: '198.51.100.1' }))).toBe(false);
    expect(matches(m, ctx({ principal: ANONYMOUS }))).toBe(false);
  });
});

describe('createRateLimiter: keys', () => {
  it('keys anonymous callers by IP under key principal, the IPv4-mapped form counted as IPv4', async () => {
    const l = limiter({ rules: rules({ key: 'principal', limit: 2, window: '1m' }) });
    const anonA = ctx({ principal: ANONYMOUS, ip: '198.51.100.1' });
    const anonAMapped = ctx({ principal: ANONYMOUS, ip: '::ffff:198.51.100.1' });
    const anonB = ctx({ principal: ANONYMOUS, ip: '198.51.100.2' });
    expect(await admittedCount(l, anonA, 1)).toBe(1);
    expect(await admittedCount(l, anonAMapped, 2)).toBe(1);
    expect(await admittedCount(l, anonB, 3)).toBe(2);
  });

  it('keys authenticated callers by principal, wherever they call from', async () => {
    const l = limiter({ rules: rules({ key: 'principal', limit: 2, window: '1m' }) });
    expect(await admittedCount(l, ctx({ ip: '198.51.100.1' }), 1)).toBe(1);
    expect(await admittedCount(l, ctx({ ip: '198.51.100.2' }), 2)).toBe(1);
  });

  it('key ip: callers from one address share a bucket', async () => {
    const l = limiter({ rules: rules({ key: 'ip', limit: 2, window: '1m' }) });
    expect(await admittedCount(l, ctx(), 1)).toBe(1);
    expect(await admittedCount(l, ctx({ principal: bob }), 2)).toBe(1);
    expect(await admittedCount(l, ctx({ ip: '198.51.100.9' }), 2)).toBe(2);
  });

  it('key token: per API token; principals without a token fall back to the principal key', async () => {
    const l = limiter({ rules: rules({ key: 'token', limit: 1, window: '1m' }) });
    const aliceOtherToken = principal('token:alice', { tokenId: 'tok-a2' });
    expect(await admittedCount(l, ctx(), 2)).toBe(1);
    expect(await admittedCount(l, ctx({ principal: aliceOtherToken }), 2)).toBe(1);
    const oauth = principal('oauth:https://issuer.example#u', { kind: 'oauth' });
    expect(await admittedCount(l, ctx({ principal: oauth }), 2)).toBe(1);
  });

  it('key global: everyone shares one bucket', async () => {
    const l = limiter({ rules: rules({ key: 'global', limit: 3, window: '1m' }) });
    let ok = 0;
    for (const p of [alice, bob, ANONYMOUS, alice]) if ((await outcome(l, ctx({ principal: p }))) === 'ok') ok++;
    expect(ok).toBe(3);
  });
});

describe('createRateLimiter: configuration problems', () => {
  it('rejects an empty window at compile time; sub-second and fractional windows work', () => {
    for (const window of [0]) {
      let err: unknown;
      try {
        limiter({ rules: rules({ limit: 1, window }) });
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(GatewayError);
      expect((err as GatewayError).code).toBe('SWB_ERR_CONFIG_INVALID');
      expect((err as GatewayError).message).toContain('rateLimits[0].window');
    }
    expect(() => limiter({ rules: rules({ limit: 1, window: '1s' }) })).not.toThrow();
    expect(() => limiter({ rules: rules({ limit: 1, window: '500ms' }) })).not.toThrow();
    expect(() => limiter({ rules: rules({ limit: 1, window: '1500ms' }) })).not.toThrow();
    expect(() => limiter({ rules: rules({ limit: 1, window: '1.5m' }) })).not.toThrow();
  });

  it('reports every problem with its path', () => {
    const problems = rateLimitRuleProblems(
      rules(
        { name: 'a', limit: 1, window: '1m', match: { ip: '10.0.0.0/33' } },
        { name: 'a', limit: 1, window: 0 },
        { limit: 1, window: '1m', match: { ip: 'example.com', tool: '' } },
        { name: '1', limit: 1, window: '1m' },
      ),
    );
    expect(problems.map((p) => p.path)).toEqual([
      [0, 'match', 'ip'],
      [1, 'window'],
      [1, 'name'],
      [2, 'match', 'ip'],
      [2, 'match', 'tool'],
    ]);
    expect(
      rateLimitRuleProblems(
        rules({ name: '2', limit: 1, window: '1m' }, { limit: 1, window: '1m' }, { limit: 1, window: '1m' }),
      ),
    ).toEqual([{ path: [2, 'name'], message: expect.stringContaining('rateLimits[0]') }]);
  });

  it('needs a Redis client for the redis store', () => {
    expect(() =>
      createRateLimiter({ rules: [], store: 'redis', failOpen: true, keyPrefix: 'x', logger: silentLogger() }),
    ).toThrow(expect.objectContaining({ code: 'SWB_ERR_CONFIG_INVALID' }));
  });
});

describe('createRateLimiter: store failures (a real client with no Redis behind it)', () => {
  let redis: Redis | undefined;
  afterEach(() => {
    redis?.disconnect();
    redis = undefined;
  });

  async function deadRedis(): Promise<Redis> {
    redis = createRedisClient(`redis://127.0.0.1:${await freePort()}`, silentLogger());
    return redis;
  }

  it('failOpen: lets requests through, reports store_error, warns at most once per 10s', async () => {
    const events: RateLimitEvent[] = [];
    const { logger, lines } = captureLogger();
    let now = 1_000_000;
    const l = limiter({
      rules: rules({ name: 'r', limit: 1, window: '1m' }),
      store: 'redis',
      redis: await deadRedis(),
      failOpen: true,
      logger,
      onEvent: (e) => events.push(e),
      clock: () => now,
    });
    expect(await admittedCount(l, ctx(), 5)).toBe(5);
    expect(events).toEqual(Array.from({ length: 5 }, () => ({ type: 'store_error', rule: 'r' })));
    const warnings = () => lines.filter((l) => l.level === 40);
    expect(warnings()).toHaveLength(1);
    expect(warnings()[0]).toMatchObject({ rule: 'r', failOpen: true, suppressed: 0 });

    now += STORE_ERROR_LOG_INTERVAL_MS;
    expect(await outcome(l, ctx())).toBe('ok');
    expect(warnings()).toHaveLength(2);
    expect(warnings()[1]).toMatchObject({ suppressed: 4 });
  });

  it('failOpen false: refuses with SWB_ERR_RATE_LIMIT_UNAVAILABLE (503)', async () => {
    const events: RateLimitEvent[] = [];
    const l = limiter({
      rules: rules({ limit: 1, window: '1m' }),
      store: 'redis',
      redis: await deadRedis(),
      failOpen: false,
      onEvent: (e) => events.push(e),
    });
    const o = await outcome(l, ctx());
    expect(o).toBeInstanceOf(GatewayError);
    expect((o as GatewayError).code).toBe('SWB_ERR_RATE_LIMIT_UNAVAILABLE');
    expect((o as GatewayError).status).toBe(503);
    expect(events).toEqual([{ type: 'store_error', rule: '0' }]);
  });

  it('still answers synchronously for requests no rule matches, whatever the store', async () => {
    const l = limiter({
      rules: rules({ match: { server: 'other' }, limit: 1, window: '1m' }),
      store: 'redis',
      redis: await deadRedis(),
      failOpen: false,
    });
    expect(l.check(ctx())).toBeUndefined();
  });
});

describe('helpers', () => {
  it('retryAfterSeconds rounds up to whole seconds, at least 1 (RFC 9110 delay-seconds)', () => {
    expect(retryAfterSeconds(0)).toBe('1');
    expect(retryAfterSeconds(1)).toBe('1');
    expect(retryAfterSeconds(1000)).toBe('1');
    expect(retryAfterSeconds(1001)).toBe('2');
    expect(retryAfterSeconds(59_999)).toBe('60');
  });

  it('resolveRateLimitStore: auto picks redis only when a URL is set', () => {
    expect(resolveRateLimitStore('auto', undefined)).toBe('memory');
    expect(resolveRateLimitStore('auto', '')).toBe('memory');
    expect(resolveRateLimitStore('auto', 'redis://127.0.0.1:6379')).toBe('redis');
    expect(resolveRateLimitStore('memory', 'redis://127.0.0.1:6379')).toBe('memory');
    expect(() => resolveRateLimitStore('redis', undefined)).toThrow(
      expect.objectContaining({ code: 'SWB_ERR_CONFIG_INVALID' }),
    );
  });
});
