/**
 * Rate-limit rules before any counting: what the schema cannot check ({@link rateLimitRuleProblems},
 * {@link ruleMatchProblems}), and compiling a rule into a predicate over the request (globs with
 * picomatch, `ip` by CIDR with ipaddr.js) and a function giving the caller's key (principal, IP,
 * token or global; see `./rate-limit.ts`). {@link compileMatch} and {@link ruleMatchProblems}
 * serve the guardrails' `match` too.
 *
 * @module
 */
import ipaddr from 'ipaddr.js';
import picomatch from 'picomatch';
import type { Principal } from '../auth/principal.js';
import type { RateLimitRule, RuleMatch } from '../config/schema.js';

/** Smallest supported `window`, in milliseconds. */
export const MIN_WINDOW_MS = 1;

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

/** One problem found in `rateLimits`; `path` starts at the rule's index. */
export interface RateLimitRuleProblem {
  path: (string | number)[];
  message: string;
}

/**
 * Checks what the schema cannot: windows the stores support, `match.ip` syntax, glob syntax and
 * unique rule ids (a rule's `name`, or its index when unnamed; ids are part of the keys). Used by
 * `createRateLimiter` (`./rate-limit.ts`); `switchboard check` can call it to print every problem.
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

/** A rule ready to count: its id, bucket parameters, key prefix, predicate and key function. */
export interface CompiledRule {
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

function ruleId(rule: RateLimitRule, index: number): string {
  return rule.name ?? String(index);
}

/** Compiles one valid rule; `keyPrefix` is `rateLimiting.keyPrefix`. */
export function compileRule(rule: RateLimitRule, index: number, keyPrefix: string): CompiledRule {
  const id = ruleId(rule, index);
  return {
    id,
    limit: rule.limit,
    capacity: rule.limit + rule.burst,
    emissionMs: rule.window / rule.limit,
    windowMs: rule.window,
    keyPrefix: `${keyPrefix}:${id}:`,
    matches: compileMatch(rule.match),
    keyOf: compileKey(rule.key),
  };
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
