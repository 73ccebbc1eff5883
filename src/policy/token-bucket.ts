/**
 * Token buckets for the rate limits (docs/rate-limits.md; bursts up to the bucket's capacity are
 * allowed), in memory or in Redis shared by every replica.
 *
 * Each key is one bucket that holds at most `capacity` tokens and refills one token every
 * `emissionMs`; a request takes one token or is refused with the time until the next one. The
 * state is kept the GCRA way (generic cell rate algorithm, ITU-T I.371): one number per key, the
 * "theoretical arrival time" `tat` at which the bucket would be full again. A request at `now` is
 * admitted when `max(tat, now) + emissionMs − now ≤ capacity × emissionMs`, and then moves `tat`
 * there; otherwise it waits `max(tat, now) + emissionMs − capacity × emissionMs − now` and changes
 * nothing. A refused request therefore costs the caller nothing, and a key whose `tat` is past
 * holds a full bucket, so it can be dropped.
 *
 * @module
 */
import type { Redis } from 'ioredis';

/** Where buckets live. */
export interface TokenBucketStore {
  /**
   * Takes one token from `key`'s bucket.
   *
   * @param emissionMs - time to refill one token, ms (> 0).
   * @param capacity - tokens a full bucket holds (≥ 1): the burst a caller may spend at once.
   * @returns 0 when the request is admitted, else the milliseconds until a token is available.
   * @throws (rejects) when the store fails, e.g. Redis is down.
   */
  take(key: string, emissionMs: number, capacity: number): Promise<number>;
  /** Stops timers. Idempotent; never closes a Redis client, which the caller owns. */
  close(): void;
}

/**
 * Waits up to this are rounding error (a third of a second is not exact in binary, and Redis
 * keeps the state to the microsecond), not a real wait: admitted. In ms.
 */
const EPSILON_MS = 0.001;

/** How often expired buckets are dropped from memory, ms. */
const SWEEP_INTERVAL_MS = 30_000;

/**
 * Buckets in this process (a `Map` of `tat` per key), swept of full buckets every 30 s. Reads
 * `Date.now()` on every call, so tests can move it with fake timers.
 */
export class MemoryTokenBuckets implements TokenBucketStore {
  readonly #tat = new Map<string, number>();
  #sweeper: NodeJS.Timeout | undefined;

  take(key: string, emissionMs: number, capacity: number): Promise<number> {
    return Promise.resolve(this.takeNow(key, emissionMs, capacity));
  }

  /** {@link take}, synchronously. */
  takeNow(key: string, emissionMs: number, capacity: number): number {
    const now = Date.now();
    const tat = Math.max(this.#tat.get(key) ?? now, now);
    const next = tat + emissionMs;
    const wait = next - capacity * emissionMs - now;
    if (wait > EPSILON_MS) return wait;
    this.#tat.set(key, next);
    this.#sweeper ??= setInterval(() => this.#sweep(), SWEEP_INTERVAL_MS).unref();
    return 0;
  }

  /** Buckets currently held (full ones are dropped by the sweep). */
  get size(): number {
    return this.#tat.size;
  }

  close(): void {
    if (this.#sweeper !== undefined) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
    this.#tat.clear();
  }

  #sweep(): void {
    const now = Date.now();
    for (const [key, tat] of this.#tat) if (tat <= now) this.#tat.delete(key);
    if (this.#tat.size === 0 && this.#sweeper !== undefined) {
      clearInterval(this.#sweeper);
      this.#sweeper = undefined;
    }
  }
}

/**
 * The GCRA step in Redis, atomic per key. Time comes from the Redis server (`TIME`), so replicas
 * with skewed clocks share one timeline. Returns 0 (admitted) or the wait in ms, rounded up.
 * The key expires when its bucket is full again.
 */
const GCRA_LUA = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + tonumber(t[2]) / 1000
local emission = tonumber(ARGV[1])
local capacity = tonumber(ARGV[2])
local tat = tonumber(redis.call('GET', KEYS[1]) or now)
if tat < now then tat = now end
local nextTat = tat + emission
local wait = nextTat - capacity * emission - now
if wait > ${EPSILON_MS} then return math.ceil(wait) end
redis.call('SET', KEYS[1], string.format('%.3f', nextTat), 'PX', math.max(1, math.ceil(nextTat - now)))
return 0
`;

interface GcraCommand {
  swbGcra(key: string, emissionMs: number, capacity: number): Promise<number>;
}

/**
 * Buckets in Redis, shared by every replica. A key found over its limit is remembered in this
 * process until its wait is over, so an abusive caller's refused requests do not reach Redis.
 *
 * The client should fail fast while Redis is down (`createRedisClient` in `src/store/redis.ts`:
 * offline queue off, no retries per request); {@link take} also rejects at once when the client
 * is not `ready`.
 */
export class RedisTokenBuckets implements TokenBucketStore {
  readonly #redis: Redis;
  readonly #gcra: GcraCommand['swbGcra'];
  /** key → `Date.now()` before which it is known to be refused. */
  readonly #blocked = new Map<string, number>();

  constructor(redis: Redis) {
    const command = redis as unknown as Partial<GcraCommand>;
    if (typeof command.swbGcra !== 'function') redis.defineCommand('swbGcra', { numberOfKeys: 1, lua: GCRA_LUA });
    this.#redis = redis;
    this.#gcra = (redis as unknown as GcraCommand).swbGcra.bind(redis);
  }

  async take(key: string, emissionMs: number, capacity: number): Promise<number> {
    const until = this.#blocked.get(key);
    if (until !== undefined) {
      const wait = until - Date.now();
      if (wait > 0) return wait;
      this.#blocked.delete(key);
    }
    if (this.#redis.status !== 'ready') throw new Error(`Redis is not ready (${this.#redis.status})`);
    const wait = Number(await this.#gcra(key, emissionMs, capacity));
    if (wait > 0) {
      if (this.#blocked.size > 100_000) this.#blocked.clear();
      this.#blocked.set(key, Date.now() + wait);
    }
    return wait;
  }

  close(): void {
    this.#blocked.clear();
  }
}
