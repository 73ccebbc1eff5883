/**
 * allow / deny / rename filters for tools, prompts and resources (issue "Routing").
 *
 * Globs use picomatch syntax and match the upstream's own name (for resources: the URI).
 * `allow` (default: everything) is applied first, then `deny`, then `rename`.
 *
 * @module
 */
import picomatch from 'picomatch';
import type { NameFilter } from '../config/schema.js';

/** Maps an upstream name to its exposed (renamed) name, or `undefined` when filtered out. */
export type CompiledFilter = (name: string) => string | undefined;

const PASS: CompiledFilter = (name) => name;

/**
 * Compiles a {@link NameFilter} once at startup.
 *
 * @returns a function from upstream name to exposed name, `undefined` when hidden
 */
export function compileFilter(filter: NameFilter | undefined): CompiledFilter {
  if (!filter || (!filter.allow && !filter.deny && !filter.rename)) return PASS;
  const opts = { dot: true, nocase: false };
  const allow = filter.allow ? picomatch(filter.allow, opts) : undefined;
  const deny = filter.deny && filter.deny.length > 0 ? picomatch(filter.deny, opts) : undefined;
  const rename = filter.rename;
  return (name) => {
    if (allow && !allow(name)) return undefined;
    if (deny?.(name)) return undefined;
    // Own keys only: a tool named `toString` or `constructor` must not pick up Object.prototype members.
    return (rename && Object.hasOwn(rename, name) ? rename[name] : undefined) ?? name;
  };
}

/** Composes two filters: the inner (server's own) first, then the outer (virtual server member). The outer matches the upstream's name too. */
export function composeFilters(inner: CompiledFilter, outer: CompiledFilter): CompiledFilter {
  if (outer === PASS) return inner;
  if (inner === PASS) return outer;
  return (name) => {
    const a = inner(name);
    if (a === undefined) return undefined;
    const b = outer(name);
    if (b === undefined) return undefined;
    // An explicit rename in the outer filter wins; otherwise keep the inner one's.
    return b !== name ? b : a;
  };
}
