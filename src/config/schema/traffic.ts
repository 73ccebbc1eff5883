/**
 * Traffic rules: which requests a rule selects (`match`, shared by rate limits and guardrails),
 * the `rateLimits` rules and where their counters live (`rateLimiting`).
 *
 * @module
 */
import { z } from 'zod';
import { Duration } from './common.js';

/**
 * Which requests a rule applies to (rate limits and guardrails): every given field must match;
 * no field matches every request.
 */
export const RuleMatch = z
  .object({
    /** Principal id glob, e.g. `token:alice`, `oauth:*`. */
    principal: z.string().optional(),
    /** API token id. */
    token: z.string().optional(),
    /** Server name glob. */
    server: z.string().optional(),
    /** The upstream's own tool name glob (tools/call only). */
    tool: z.string().optional(),
    /** MCP method glob, e.g. `tools/call`, `resources/*`. */
    method: z.string().optional(),
    /** Client IP or CIDR. */
    ip: z.string().optional(),
  })
  .strict();
export type RuleMatch = z.infer<typeof RuleMatch>;

/**
 * One rate-limit rule (docs/rate-limits.md). A rule applies to a request when every
 * field of `match` matches (globs); requests are counted per `key`.
 */
export const RateLimitRule = z
  .object({
    match: RuleMatch.default({}),
    /** What is counted: per principal (IP when anonymous), per IP, per token, or one global bucket. Default principal. */
    key: z.enum(['principal', 'ip', 'token', 'global']).default('principal'),
    limit: z.number().int().min(1),
    window: Duration,
    /** Extra requests allowed in a burst on top of `limit` (token bucket). Default 0. */
    burst: z.number().int().min(0).default(0),
    /** Optional label for logs and metrics. */
    name: z.string().optional(),
  })
  .strict();
export type RateLimitRule = z.infer<typeof RateLimitRule>;

/** The `rateLimiting` section: the counters' store and what happens when it fails. */
export const RateLimitingConfig = z
  .object({
    /** auto: Redis when SWITCHBOARD_REDIS_URL is set, else memory. */
    store: z.enum(['auto', 'memory', 'redis']).default('auto'),
    /** When Redis fails: true lets requests through (logged, counted); false refuses them (503). Default true. */
    failOpen: z.boolean().default(true),
    /** Redis key prefix. Default `swb:rl`. */
    keyPrefix: z.string().default('swb:rl'),
  })
  .strict()
  .default({ store: 'auto', failOpen: true, keyPrefix: 'swb:rl' });
