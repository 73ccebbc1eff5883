/**
 * Rate limits (docs/rate-limits.md); the principal is part of every key, so one caller never
 * spends another's budget.
 *
 * `rateLimits` rules are compiled once by {@link createRateLimiter}: globs with picomatch, CIDRs
 * with ipaddr.js, and token buckets (`./token-bucket.ts`) in memory or in Redis shared by every
 * replica. The returned {@link RateLimiter.check} is on the hot path: when no rule matches a
 * request it returns `undefined` synchronously, without allocating a promise.
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
import ipaddr from 'ipaddr.js';
import type { Redis } from 'ioredis';
import picomatch from 'picomatch';
import type { Stage } from '../pipeline/stage.js';
import type { Principal } from '../auth/principal.js';
import type { RateLimitRule, RuleMatch } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { MemoryTokenBuckets, RedisTokenBuckets, type TokenBucketStore } from './token-bucket.js';

/** Smallest supported `window`, in milliseconds. */
export const MIN_WINDOW_MS = 1;

/** A store failure is logged at most once per this many milliseconds (10 s); the rest are counted. */
export const STORE_ERROR_LOG_INTERVAL_MS = 10_000;

/** What a rate-limit check sees of a request. The pipeline's `RequestContext` is one. */
export interface RateLimitContext {
  /** The authenticated (or anonymous) caller. */
  readonly principal: Principal;
  /** The client's IP address as the socket reports it (`::ffff:` prefixes allowed); may be unknown. */
  readonly ip?: string | undefined;
  /** The target server's name, when the request is routed to one. */
  readonly server?: string | undefined;
  /** The upstream's own tool name (not the namespaced one), for `tools/call`. */
  readonly tool?: string | undefined;
  /** The JSON-RPC method, e.g. `tools/call`. */
  readonly method?: string | undefined;
}

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

/** One problem found in `rateLimits`; `path` starts at the rule's index. */
export interface RateLimitRuleProblem {
  path: (string | number)[];
  message: string;
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
 * Checks what the schema cannot: windows the stores support, `match.ip` syntax, glob syntax and
 * unique rule ids (a rule's `name`, or its index when unnamed; ids are part of the keys). Used by
 * {@link createRateLimiter}; `switchboard check` can call it to print every problem.
 *
 * @returns the problems, empty when the rules are usable; paths are relative to `rateLimits`.
 */
export function rateLimitRuleProblems(rules: readonly RateLimitRule[]): RateLimitRuleProblem[] {
  const problems: RateLimitRuleProblem[] = [];
  const ids = new Map<string, number>();
  rules.forEach((rule, i) => {
    if (!Number.isFinite(rule.window) || rule.window < MIN_WINDOW_MS) {
      problems.push({ path: [i, 'window'], message: `window must be at least 1ms (got ${rule.window}ms)` });
    }
    for (const p of ruleMatchProblems(rule.match)) problems.push({ path: [i, ...p.path], message: p.message });
    const id = ruleId(rule, i);
    const other = ids.get(id);
    if (other !== undefined) {
      problems.push({
        path: [i, 'name'],
        message: `rule id "${id}" is also used by rateLimits[${other}]; rule names must be unique and must not equal the position of an unnamed rule`,
      });
    } else {
      ids.set(id, i);
    }
  });
  return problems;
}

/**
 * Checks a rule's `match` (the shape shared by `rateLimits` and `guardrails`): `ip` must be an IP
 * address or CIDR, every glob must compile and must not be empty.
 *
 * @returns the problems, empty when usable; paths start at `match`, e.g. `['match', 'ip']`.
 */
export function ruleMatchProblems(match: RuleMatch): RateLimitRuleProblem[] {
  const problems: RateLimitRuleProblem[] = [];
  const { ip, ...globs } = match;
  if (ip !== undefined && parseCidr(ip) === undefined) {
    problems.push({ path: ['match', 'ip'], message: `expected an IP address or CIDR, got ${JSON.stringify(ip)}` });
  }
  for (const [field, glob] of Object.entries(globs)) {
    if (glob === undefined) continue;
    if (glob === '') {
      problems.push({
        path: ['match', field],
        message: 'an empty pattern matches nothing; remove the field to match everything',
      });
      continue;
    }
    try {
      compileGlob(glob);
    } catch (e) {
      problems.push({
        path: ['match', field],
        message: `invalid glob ${JSON.stringify(glob)}: ${(e as Error).message}`,
      });
    }
  }
  return problems;
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

interface CompiledRule {
  readonly id: string;
  /** Requests per window (the refill rate). */
  readonly limit: number;
  /** `limit + burst`: the bucket's size, the most requests admitted at once. */
  readonly capacity: number;
  /** `window / limit`: time to refill one token, ms. */
  readonly emissionMs: number;
  readonly windowMs: number;
  /** `${keyPrefix}:${id}:` */
  readonly keyPrefix: string;
  readonly matches: (ctx: RateLimitContext) => boolean;
  readonly keyOf: (ctx: RateLimitContext) => string;
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
    this.#rules = options.rules.map((rule, i) => compileRule(rule, i, options));
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

/** Of several rules' outcomes: a 429 with the longest wait, else a store failure, else nothing. */
/** The store key of `rule`'s bucket for this request: `${keyPrefix}:${rule}:${caller key}`. */
function bucketKey(rule: CompiledRule, ctx: RateLimitContext): string {
  return rule.keyPrefix + rule.keyOf(ctx);
}

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

function ruleId(rule: RateLimitRule, index: number): string {
  return rule.name ?? String(index);
}

function compileRule(rule: RateLimitRule, index: number, options: RateLimiterOptions): CompiledRule {
  const id = ruleId(rule, index);
  return {
    id,
    limit: rule.limit,
    capacity: rule.limit + rule.burst,
    emissionMs: rule.window / rule.limit,
    windowMs: rule.window,
    keyPrefix: `${options.keyPrefix}:${id}:`,
    matches: compileMatch(rule.match),
    keyOf: compileKey(rule.key),
  };
}

/** `60s`, `1.5s`, `250ms` for messages. */
function formatWindow(ms: number): string {
  return ms % 1000 === 0 || ms > 1000 ? `${ms / 1000}s` : `${ms}ms`;
}

type Predicate = (ctx: RateLimitContext) => boolean;

const ALWAYS: Predicate = () => true;

/**
 * Picomatch with `bash: true`: `*` also crosses `/`, so `oauth:*` matches
 * `oauth:https://issuer/#sub` and `*` matches `tools/call`. Literal patterns compare as strings.
 */
function compileGlob(pattern: string): (value: string) => boolean {
  if (!picomatch.scan(pattern).isGlob) return (value) => value === pattern;
  return picomatch(pattern, { dot: true, bash: true });
}

/**
 * Compiles a rule's `match` (shared by `rateLimits` and `guardrails`) into a predicate over the
 * request: every given field must match (globs with picomatch, `bash: true`; `ip` by CIDR). An
 * empty `match` matches every request. The match must have passed {@link ruleMatchProblems}.
 */
export function compileMatch(match: RuleMatch): (ctx: RateLimitContext) => boolean {
  const tests: Predicate[] = [];
  // Cheapest and most selective first.
  if (match.server !== undefined) {
    const m = compileGlob(match.server);
    tests.push((c) => c.server !== undefined && m(c.server));
  }
  if (match.tool !== undefined) {
    const m = compileGlob(match.tool);
    tests.push((c) => c.tool !== undefined && m(c.tool));
  }
  if (match.method !== undefined) {
    const m = compileGlob(match.method);
    tests.push((c) => c.method !== undefined && m(c.method));
  }
  if (match.principal !== undefined) {
    const m = compileGlob(match.principal);
    tests.push((c) => m(c.principal.id));
  }
  if (match.token !== undefined) {
    const m = compileGlob(match.token);
    tests.push((c) => c.principal.tokenId !== undefined && m(c.principal.tokenId));
  }
  if (match.ip !== undefined) {
    const [range, bits] = parseCidr(match.ip)!;
    tests.push((c) => {
      const addr = parseAddress(c.ip);
      return addr !== undefined && addr.kind() === range.kind() && addr.match(range, bits);
    });
  }
  if (tests.length === 0) return ALWAYS;
  if (tests.length === 1) return tests[0]!;
  return (c) => {
    for (let i = 0; i < tests.length; i++) if (!tests[i]!(c)) return false;
    return true;
  };
}

function compileKey(key: RateLimitRule['key']): (ctx: RateLimitContext) => string {
  switch (key) {
    case 'principal':
      return principalKey;
    case 'ip':
      return (c) => ipKey(c.ip);
    case 'token':
      return (c) => c.principal.tokenId ?? principalKey(c);
    case 'global':
      return () => 'global';
  }
}

function principalKey(c: RateLimitContext): string {
  return c.principal.kind === 'anonymous' ? ipKey(c.ip) : c.principal.id;
}

/** `ip:<address>`, IPv4-mapped IPv6 as IPv4 and IPv6 in its canonical form; `ip:unknown` without one. */
function ipKey(ip: string | undefined): string {
  const addr = parseAddress(ip);
  if (addr !== undefined) return `ip:${addr.toString()}`;
  return ip === undefined || ip === '' ? 'ip:unknown' : `ip:${ip}`;
}

type Address = ipaddr.IPv4 | ipaddr.IPv6;

function parseAddress(ip: string | undefined): Address | undefined {
  if (ip === undefined || !ipaddr.isValid(ip)) return undefined;
  return ipaddr.process(ip);
}

function parseCidr(text: string): [Address, number] | undefined {
  try {
    if (text.includes('/')) {
      const [range, bits] = ipaddr.parseCIDR(text);
      // `::ffff:10.0.0.0/104` is an IPv4 range: compare it with IPv4 (processed) addresses.
      if (range.kind() === 'ipv6' && (range as ipaddr.IPv6).isIPv4MappedAddress() && bits >= 96) {
        return [(range as ipaddr.IPv6).toIPv4Address(), bits - 96];
      }
      return [range, bits];
    }
    if (!ipaddr.isValid(text)) return undefined;
    const addr = ipaddr.process(text);
    return [addr, addr.kind() === 'ipv4' ? 32 : 128];
  } catch {
    return undefined;
  }
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
