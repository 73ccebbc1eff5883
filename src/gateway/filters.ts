/**
 * allow / deny / rename filters for tools, prompts and resources.
 *
 * Globs use picomatch syntax and match the upstream's own name (for resources: the URI).
 * `allow` (default: everything) is applied first, then `deny`, then `rename`. A resource URI a
 * client sends passes only when every spelling of it passes ({@link filterResourceUri}).
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

/** Most rounds of percent-decoding applied to a URI before filtering (`%2573` → `%73` → `s`). */
const MAX_DECODE_ROUNDS = 4;
const PERCENT_OCTET = /%([0-9A-Fa-f]{2})/g;
const URI_PARTS = /^([A-Za-z][A-Za-z0-9+.-]*):(\/\/[^/?#]*)?([^?#]*)([\s\S]*)$/;

/**
 * Percent-decodes `uri` until it no longer changes (at most {@link MAX_DECODE_ROUNDS} rounds), so
 * doubly encoded octets are seen too. A malformed UTF-8 sequence is decoded octet by octet.
 */
function percentDecode(uri: string): string {
  let out = uri;
  for (let round = 0; round < MAX_DECODE_ROUNDS && out.includes('%'); round++) {
    let next: string;
    try {
      next = decodeURIComponent(out);
    } catch {
      next = out.replace(PERCENT_OCTET, (_, hex: string) => String.fromCharCode(parseInt(hex, 16)));
    }
    if (next === out) break;
    out = next;
  }
  return out;
}

/** RFC 3986 §5.2.4 remove_dot_segments, on a path that may be relative. */
function removeDotSegments(path: string): string {
  const segments = path.split('/');
  const out: string[] = [];
  for (let i = 0; i < segments.length; i++) {
    const s = segments[i]!;
    if (s === '.' || s === '..') {
      if (s === '..' && out.length > 0 && !(out.length === 1 && out[0] === '')) out.pop();
      if (i === segments.length - 1) out.push('');
      continue;
    }
    out.push(s);
  }
  return out.join('/');
}

/**
 * The normal form of a (percent-decoded) URI that servers commonly treat as the same resource:
 * the scheme in lower case (RFC 3986 §3.1), a backslash read as `/`, runs of `/` in the path collapsed
 * and dot segments removed (§5.2.4). The authority, query and fragment are kept.
 */
function normaliseUri(uri: string): string {
  const m = URI_PARTS.exec(uri);
  if (!m) return removeDotSegments(uri.replace(/\\/g, '/').replace(/\/{2,}/g, '/'));
  const path = removeDotSegments(m[3]!.replace(/\\/g, '/').replace(/\/{2,}/g, '/'));
  return `${m[1]!.toLowerCase()}:${m[2] ?? ''}${path}${m[4]!}`;
}

/**
 * Applies a resource filter to a URI sent by a client: to the URI as sent, to its
 * percent-decoded form and to that form normalised (lower-case scheme, dot segments removed), so
 * `fixture://a/%73ecret`, `fixture://a/x/../secret` and `FIXTURE://a/secret` are denied by
 * `deny: ["fixture://a/secret*"]` as the upstream may well read all of them as the same resource.
 *
 * @returns the filter's answer for the URI as sent, or `undefined` when any spelling is hidden
 */
export function filterResourceUri(filter: CompiledFilter, uri: string): string | undefined {
  const exposed = filter(uri);
  if (exposed === undefined || filter === PASS) return exposed;
  const decoded = percentDecode(uri);
  if (decoded !== uri && filter(decoded) === undefined) return undefined;
  const normal = normaliseUri(decoded);
  if (normal !== decoded && filter(normal) === undefined) return undefined;
  return exposed;
}
