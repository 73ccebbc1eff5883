/**
 * Rate limits (docs/rate-limits.md); the principal is part of every key, so one caller never
 * spends another's budget.
 *
 * `rateLimits` rules are compiled once by {@link createRateLimiter}: globs with picomatch, CIDRs
 * with ipaddr.js (`./rate-limit-rules.ts`: validation, matching, keys), and token buckets
 * (`./token-bucket.ts`) in memory or in Redis shared by every replica. The returned
 * {@link RateLimiter.check} is on the hot path: when no rule matches a request it returns
 * `undefined` synchronously, without allocating a promise.
 *
 * Counting: each rule is a token bucket per key holding `limit + burst` tokens and refilled at
 * `limit` tokens per `window` (one every `window / limit` ms); a request that matches the rule
 * takes one token, a refused request takes none. The key (Redis key or memory entry) is
 * `${keyPrefix}:${rule}:${value}` where `rule` is
 * the rule's `name` or, unnamed, its position in `rateLimits` (0-based), and `value` is
 * (per `key`):
 * - `principal`: the principal id (`token:alice`, `oauth:<iss>#<sub>`, …), or `ip:<address>` for
 *   the anonymous principal — anonymous callers never share one bucket;
 * - `ip`: `ip:<address>` (IPv4-mapped IPv6 addresses are counted as their IPv4 address);
 * - `token`: the API token id (`principal.tokenId`), or the `principal` value for principals
 *   that did not authenticate with an API token;
 * - `global`: `global`, one bucket for every caller.
 *
 * @module
 */
import type { Redis } from 'ioredis';
import type { Stage } from '../pipeline/stage.js';
import type { RateLimitRule } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { compileRule, rateLimitRuleProblems, type CompiledRule, type RateLimitContext } from './rate-limit-rules.js';
import { MemoryTokenBuckets, RedisTokenBuckets, type TokenBucketStore } from './token-bucket.js';

export {
  compileMatch,
  MIN_WINDOW_MS,
  rateLimitRuleProblems,
  ruleMatchProblems,
  type RateLimitContext,
  type RateLimitRuleProblem,
} from './rate-limit-rules.js';

/** A store failure is logged at most once per this many milliseconds (10 s); the rest are counted. */
export const STORE_ERROR_LOG_INTERVAL_MS = 10_000;

/** Reported through {@link RateLimiterOptions.onEvent} (the metrics hook). */
export interface RateLimitEvent {
  /** `limited`: a request was refused by a rule; `store_error`: the store failed for a rule. */
  type: 'limited' | 'store_error';
  /** The rule: its `name`, or its 0-based position in `rateLimits` when unnamed. */
  rule: string;
}

/** Options for {@link createRateLimiter}. */
export interface RateLimiterOptions {
  /** The `rateLimits` rules as parsed by the config schema (`window` in ms). */
  rules: readonly RateLimitRule[];
  /** Where counters live: this process (`memory`) or Redis shared by every replica (`redis`). */
  store: 'memory' | 'redis';
  /**
   * The Redis client for `store: 'redis'` (see `createRedisClient` in `src/store/redis.ts`:
   * offline queue off, so a command fails at once while Redis is down). Not closed by
   * {@link RateLimiter.close}: the caller owns it.
   */
  redis?: Redis | undefined;
  /**
   * When the store fails: `true` lets the request through (warning logged at most once per
   * {@link STORE_ERROR_LOG_INTERVAL_MS}, `store_error` reported); `false` refuses it with
   * `SWB_ERR_RATE_LIMIT_UNAVAILABLE` (503).
   */
  failOpen: boolean;
  /** Prefix of every key, e.g. `swb:rl` (config `rateLimiting.keyPrefix`). */
  keyPrefix: string;
  /** Where store failures (throttled) and recoveries are logged. */
  logger: Logger;
  /** Metrics hook, called once per refused request and once per store failure per rule. */
  onEvent?: ((event: RateLimitEvent) => void) | undefined;
  /**
   * Milliseconds clock for the log throttle. Default `Date.now`. (The memory store's buckets
   * follow `Date.now` too; tests move them with fake timers. Redis buckets follow Redis's clock.)
   */
  clock?: (() => number) | undefined;
}

/** A compiled set of rate-limit rules. */
export interface RateLimiter {
  /**
   * Counts one request against every rule that matches it.
   *
   * @returns `undefined`, synchronously, when no rule matches or, with the memory store, when
   *   every matching rule admits the request (the hot path: no promise); otherwise (Redis) a
   *   promise that resolves when every matching rule admits the request.
   * @throws (synchronously with the memory store, else rejects with) `GatewayError`
   *   `SWB_ERR_RATE_LIMITED` (429) when a rule is over its
   *   limit, with `data.retryAfterMs` (the longest wait among the refusing rules, ms) and
   *   `data.rule`; `SWB_ERR_RATE_LIMIT_UNAVAILABLE` (503) when the store failed and `failOpen` is
   *   false.
   *
   * A bound function: `admit: limiter.check` is fine.
   */
  readonly check: (ctx: RateLimitContext) => Promise<void> | undefined;
  /** Number of compiled rules (0: `check` never does anything). */
  readonly ruleCount: number;
  /** Stops using the store. Idempotent; does not close the Redis client, which the caller owns. */
  close(): Promise<void>;
}

/**
 * Picks the store for `rateLimiting.store`: `auto` means Redis when a Redis URL is configured
 * (`SWITCHBOARD_REDIS_URL`), memory otherwise.
 *
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` when `redis` is asked for without a URL.
 */
export function resolveRateLimitStore(
  store: 'auto' | 'memory' | 'redis',
  redisUrl: string | undefined,
): 'memory' | 'redis' {
  const hasUrl = redisUrl !== undefined && redisUrl !== '';
  if (store === 'auto') return hasUrl ? 'redis' : 'memory';
  if (store === 'redis' && !hasUrl) {
    throw new GatewayError(
      'SWB_ERR_CONFIG_INVALID',
      'rateLimiting.store is redis but SWITCHBOARD_REDIS_URL is not set',
    );
  }
  return store;
}

/**
 * The `Retry-After` header value (RFC 9110 §10.2.3, delay-seconds) for a wait in milliseconds:
 * whole seconds rounded up, at least 1, so a client that honours it neither comes back too early
 * nor retries in a tight loop.
 */
export function retryAfterSeconds(retryAfterMs: number): string {
  return String(Math.max(1, Math.ceil(retryAfterMs / 1000)));
}

/**
 * Compiles `rateLimits` into a {@link RateLimiter} (once, at startup or reload).
 *
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` listing every problem of
 *   {@link rateLimitRuleProblems}, or when `store` is `redis` without a `redis` client.
 */
export function createRateLimiter(options: RateLimiterOptions): RateLimiter {
  const problems = rateLimitRuleProblems(options.rules);
  if (problems.length > 0) {
    const lines = problems.map(
      (p) =>
        `rateLimits[${p.path[0]}]${p.path
          .slice(1)
          .map((s) => `.${s}`)
          .join('')}: ${p.message}`,
    );
    throw new GatewayError('SWB_ERR_CONFIG_INVALID', `invalid rate-limit rules:\n${lines.join('\n')}`);
  }
  if (options.store === 'redis' && options.redis === undefined) {
    throw new GatewayError('SWB_ERR_CONFIG_INVALID', 'rate-limit store redis needs a Redis client');
  }
  return new RuleSetLimiter(options);
}

/** A settled check of one rule: nothing (admitted), or the error it would raise. */
type Outcome = GatewayError | undefined;

const NOTHING = (): undefined => undefined;

class RuleSetLimiter implements RateLimiter {
  // A property, not a method: the gateway passes `limiter.check` around unbound.
  readonly check: (ctx: RateLimitContext) => Promise<void> | undefined;
  readonly ruleCount: number;
  readonly #rules: readonly CompiledRule[];
  readonly #buckets: TokenBucketStore;
  /** The same store when it is in memory: checks then settle synchronously. */
  readonly #memory: MemoryTokenBuckets | undefined;
  readonly #failOpen: boolean;
  readonly #logger: Logger;
  readonly #onEvent: ((event: RateLimitEvent) => void) | undefined;
  readonly #clock: () => number;
  #lastStoreLog = Number.NEGATIVE_INFINITY;
  #suppressed = 0;
  #degraded = false;
  #closed = false;

  constructor(options: RateLimiterOptions) {
    this.#failOpen = options.failOpen;
    this.#logger = options.logger;
    this.#onEvent = options.onEvent;
    this.#clock = options.clock ?? Date.now;
    this.#rules = options.rules.map((rule, i) => compileRule(rule, i, options.keyPrefix));
    this.#memory = options.store === 'redis' ? undefined : new MemoryTokenBuckets();
    this.#buckets = this.#memory ?? new RedisTokenBuckets(options.redis!);
    this.ruleCount = this.#rules.length;
    this.check = this.ruleCount === 0 ? NOTHING : (ctx) => this.#check(ctx);
  }

  #check(ctx: RateLimitContext): Promise<void> | undefined {
    if (this.#closed) return undefined;
    const rules = this.#rules;
    let first: CompiledRule | undefined;
    let more: CompiledRule[] | undefined;
    for (let i = 0; i < rules.length; i++) {
      const rule = rules[i]!;
      if (!rule.matches(ctx)) continue;
      if (first === undefined) first = rule;
      else (more ??= [first]).push(rule);
    }
    if (first === undefined) return undefined;
    const memory = this.#memory;
    if (memory !== undefined) {
      // No I/O: admit or refuse now, without a promise.
      if (more === undefined) {
        const outcome = this.#settle(first, memory.takeNow(bucketKey(first, ctx), first.emissionMs, first.capacity));
        if (outcome !== undefined) throw outcome;
        return undefined;
      }
      worstOutcome(
        more.map((rule) => this.#settle(rule, memory.takeNow(bucketKey(rule, ctx), rule.emissionMs, rule.capacity))),
      );
      return undefined;
    }
    if (more === undefined) {
      return this.#consume(first, ctx).then((outcome) => {
        if (outcome !== undefined) throw outcome;
      });
    }
    return Promise.all(more.map((rule) => this.#consume(rule, ctx))).then(worstOutcome);
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#buckets.close();
  }

  /** Takes one token of `rule`'s bucket for this request; never rejects. */
  #consume(rule: CompiledRule, ctx: RateLimitContext): Promise<Outcome> {
    return this.#buckets.take(bucketKey(rule, ctx), rule.emissionMs, rule.capacity).then(
      (waitMs) => this.#settle(rule, waitMs),
      (err: unknown) => this.#storeFailure(rule, err),
    );
  }

  /** The outcome of one rule given the store's answer (0 = admitted, else the wait in ms). */
  #settle(rule: CompiledRule, waitMs: number): Outcome {
    if (waitMs > 0) return this.#limited(rule, waitMs);
    if (this.#degraded) this.#recovered();
    return undefined;
  }

  #limited(rule: CompiledRule, waitMs: number): GatewayError {
    if (this.#degraded) this.#recovered();
    this.#onEvent?.({ type: 'limited', rule: rule.id });
    const retryAfterMs = Math.max(1, Math.ceil(waitMs));
    return new GatewayError(
      'SWB_ERR_RATE_LIMITED',
      `rate limit exceeded (rule ${rule.id}: ${rule.limit} requests per ${formatWindow(rule.windowMs)}, bursts up to ${rule.capacity}); retry in ${retryAfterSeconds(retryAfterMs)}s`,
      { data: { retryAfterMs, rule: rule.id } },
    );
  }

  #storeFailure(rule: CompiledRule, rejection: unknown): Outcome {
    this.#onEvent?.({ type: 'store_error', rule: rule.id });
    this.#logStoreError(rule, rejection);
    if (this.#failOpen) return undefined;
    return new GatewayError('SWB_ERR_RATE_LIMIT_UNAVAILABLE', 'rate limiting is temporarily unavailable', {
      cause: rejection,
      data: { rule: rule.id },
    });
  }

  #logStoreError(rule: CompiledRule, err: unknown): void {
    this.#degraded = true;
    const now = this.#clock();
    if (now - this.#lastStoreLog < STORE_ERROR_LOG_INTERVAL_MS) {
      this.#suppressed++;
      return;
    }
    this.#lastStoreLog = now;
    const suppressed = this.#suppressed;
    this.#suppressed = 0;
    this.#logger.warn(
      { err, rule: rule.id, failOpen: this.#failOpen, suppressed },
      this.#failOpen
        ? 'rate-limit store failed: requests are let through unlimited (rateLimiting.failOpen)'
        : 'rate-limit store failed: requests under rate limits are refused (rateLimiting.failOpen is false)',
    );
  }

  #recovered(): void {
    this.#degraded = false;
    this.#logger.info({ suppressed: this.#suppressed }, 'rate-limit store recovered: limits apply again');
    this.#suppressed = 0;
    this.#lastStoreLog = Number.NEGATIVE_INFINITY;
  }
}

/** The store key of `rule`'s bucket for this request: `${keyPrefix}:${rule}:${caller key}`. */
function bucketKey(rule: CompiledRule, ctx: RateLimitContext): string {
  return rule.keyPrefix + rule.keyOf(ctx);
}

/** Of several rules' outcomes: a 429 with the longest wait, else a store failure, else nothing. */
function worstOutcome(outcomes: readonly Outcome[]): void {
  let limited: GatewayError | undefined;
  let failed: GatewayError | undefined;
  for (const o of outcomes) {
    if (o === undefined) continue;
    if (o.code !== 'SWB_ERR_RATE_LIMITED') failed ??= o;
    else if (limited === undefined || retryAfter(o) > retryAfter(limited)) limited = o;
  }
  const worst = limited ?? failed;
  if (worst !== undefined) throw worst;
}

function retryAfter(e: GatewayError): number {
  const v = e.data?.retryAfterMs;
  return typeof v === 'number' ? v : 0;
}

/** `60s`, `1.5s`, `250ms` for messages. */
function formatWindow(ms: number): string {
  return ms % 1000 === 0 || ms > 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

/**
 * The rate limiter as a pipeline stage (request phase only): refuses with `SWB_ERR_RATE_LIMITED`
 * (HTTP 429 + `Retry-After` while the response has not started). Synchronous for the memory
 * store; a promise only when a rule needs a Redis round trip.
 */
export function rateLimitStage(limiter: RateLimiter): Stage {
  const check = limiter.check;
  return {
    name: 'rate-limit',
    request(ctx) {
      let pending: Promise<void> | undefined;
      try {
        pending = check(ctx);
      } catch (err) {
        ctx.stage = 'rate-limit';
        throw err;
      }
      if (pending === undefined) return undefined;
      return pending.catch((err: unknown) => {
        ctx.stage = 'rate-limit';
        throw err;
      });
    },
  };
}
