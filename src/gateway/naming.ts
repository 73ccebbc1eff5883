/**
 * Namespaced names for aggregated tools and prompts.
 *
 * An aggregate exposes `{server}{separator}{name}`. LLM APIs accept tool names matching
 * `^[A-Za-z0-9_-]{1,64}$`, so a name that would be longer than 64 characters, or that contains
 * other characters, is shortened deterministically: invalid characters become `_`, the result is
 * cut and suffixed with `_` + 8 hex digits of SHA-256 over the unshortened name. The same inputs
 * always give the same output, and the catalog keeps the exposed → original map so the round
 * trip is exact.
 *
 * @module
 */
import { createHash } from 'node:crypto';

/** Longest exposed name. */
export const MAX_EXPOSED_NAME_LENGTH = 64;
const VALID = /^[A-Za-z0-9_-]+$/;
const INVALID_CHAR = /[^A-Za-z0-9_-]/g;
const HASH_LENGTH = 8;

/**
 * The exposed name of `name` from `server` in an aggregate.
 *
 * @param server - server name (the namespace)
 * @param name - the upstream's name after any `rename`
 * @param separator - from `[A-Za-z0-9_-]`, default `__`
 * @param maxLength - default 64
 * @returns `server + separator + name` when valid and short enough, else a deterministic shortening
 */
export function namespacedName(
  server: string,
  name: string,
  separator: string,
  maxLength = MAX_EXPOSED_NAME_LENGTH,
): string {
  const full = server + separator + name;
  if (full.length <= maxLength && VALID.test(full)) return full;
  const hash = createHash('sha256').update(full).digest('hex').slice(0, HASH_LENGTH);
  const cleaned = full.replace(INVALID_CHAR, '_');
  return `${cleaned.slice(0, maxLength - HASH_LENGTH - 1)}_${hash}`;
}

/**
 * Pairs of servers whose namespaced names can coincide in one aggregate: `server + separator +
 * name` of one equals that of the other exactly when the longer server name starts with the
 * shorter one plus the separator (`a` and `a__b` with `__`: `a__b__c` is both `a`'s tool `b__c`
 * and `a__b`'s tool `c`).
 *
 * @param servers - server names, in configuration order
 * @param separator - the namespace separator (`namespaceSeparator`, default `__`)
 * @returns `[shorter, longer]` pairs, in configuration order of the longer name
 */
export function overlappingNamespaces(servers: readonly string[], separator: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const longer of servers)
    for (const shorter of servers) if (longer.startsWith(shorter + separator)) out.push([shorter, longer]);
  return out;
}
