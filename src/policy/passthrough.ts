/**
 * Client header passthrough (docs/upstream-identity.md). A client header never replaces a
 * credential the operator configured.
 *
 * An operator lists client request headers (e.g. `X-Tenant-Id`) that Switchboard copies onto
 * the requests it sends to an upstream. The allowlist comes from `SWITCHBOARD_PASSTHROUGH_HEADERS`
 * and/or the stored global setting ({@link PASSTHROUGH_SETTINGS_KEY}), chosen by
 * `headers.source`; a server's own `passthroughHeaders` replaces it for that server.
 *
 * Everything that can be decided from configuration is decided once, by
 * {@link createPassthroughPolicy}, per server; the returned function only looks up the few
 * allowlisted names in the client's headers and sanitises their values.
 *
 * Rules:
 * - a client header never replaces an operator credential: `X-Upstream-Authorization` is honoured
 *   only for upstreams whose `auth.type` is `none` or `forward`, and never over an `Authorization`
 *   the operator configured in the server's `headers`;
 * - a client's own `Authorization` (its credential *to Switchboard*) is never forwarded
 *   implicitly; for `none` upstreams it must be allowlisted, for credentialed ones (OAuth client
 *   credentials included) it never passes;
 * - hop-by-hop, framing, MCP session and Switchboard identity headers are never forwarded, even
 *   when allowlisted;
 * - values are cut to 4096 *bytes* without splitting a UTF-8 sequence, after control characters
 *   are removed;
 * - invalid allowlist entries are reported once, when the policy is compiled, not per request.
 *
 * @module
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { UpstreamAuth } from '../config/schema.js';
import { HEADER_NAME_RE } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { SettingsStore } from '../store/types.js';

/** Largest header value forwarded, in bytes (4 KB). Longer values are cut. */
export const MAX_HEADER_VALUE_BYTES = 4096;

/** Settings key ({@link SettingsStore}) holding the stored global allowlist: a JSON array of header names. */
export const PASSTHROUGH_SETTINGS_KEY = 'passthrough.headers';

/** Environment variable holding the env allowlist (comma-separated, or a JSON array of strings). */
export const PASSTHROUGH_ENV_VAR = 'SWITCHBOARD_PASSTHROUGH_HEADERS';

/** The client header that carries a credential meant for the upstream (its value is sent as `Authorization`). */
export const UPSTREAM_AUTHORIZATION_HEADER = 'x-upstream-authorization';

/** Where the global allowlist comes from (`headers.source`). */
export type AllowlistSource = 'env' | 'db' | 'merge';

/**
 * Header names that are never forwarded, whatever the allowlist says (lower-case):
 * - hop-by-hop fields, RFC 9110 §7.6.1 (plus the non-standard `Proxy-Connection`; every `Proxy-*`
 *   name is refused too, see {@link isNeverForwarded});
 * - framing and content negotiation the upstream transport owns (`Host`, `Content-Length`,
 *   `Content-Type`, `Content-Encoding`, `Accept`, `Accept-Encoding`, `Expect`);
 * - MCP transport state and routing (`Mcp-Session-Id`, `MCP-Protocol-Version`, `Last-Event-ID`,
 *   `Mcp-Method`, `Mcp-Name`): they belong to the client↔Switchboard session, not to Switchboard's
 *   own session with the upstream;
 * - `Cookie`: the client's session with Switchboard (admin UI) or with some other site on the
 *   same host; forwarding it would hand that session to a third party. Upstreams that need a
 *   cookie get it from the server's configured `headers`.
 *
 * Switchboard's identity headers (`X-Switchboard-*`) are refused by prefix. `Authorization` and
 * `X-Upstream-Authorization` have their own rules (see {@link createPassthroughPolicy}).
 */
export const NEVER_FORWARDED_HEADERS: ReadonlySet<string> = new Set([
  'connection',
  'keep-alive',
  'proxy-connection',
  'te',
  'trailer',
  'transfer-encoding',
  'upgrade',
  'host',
  'content-length',
  'content-type',
  'content-encoding',
  'accept',
  'accept-encoding',
  'expect',
  'mcp-session-id',
  'mcp-protocol-version',
  'last-event-id',
  'mcp-method',
  'mcp-name',
  'cookie',
]);

const SWITCHBOARD_PREFIX = 'x-switchboard-';

/**
 * True when a (lower-case) header name may never be forwarded: a member of
 * {@link NEVER_FORWARDED_HEADERS}, any `proxy-*` name (RFC 9110 §7.6.1 / §11.7) or any
 * `x-switchboard-*` name (Switchboard's own identity headers, which a client must not forge).
 */
export function isNeverForwarded(lowerName: string): boolean {
  return (
    NEVER_FORWARDED_HEADERS.has(lowerName) || lowerName.startsWith('proxy-') || lowerName.startsWith(SWITCHBOARD_PREFIX)
  );
}

// C0 controls except HTAB, and DEL. Bytes 0x80-0xFF stay: in a node:http header string (latin1)
// they are the bytes of UTF-8 sequences (RFC 9110 §5.5 obs-text), not C1 controls.

const CONTROL_RE = /[\x00-\x08\x0a-\x1f\x7f]/;

const CONTROL_RE_G = /[\x00-\x08\x0a-\x1f\x7f]/g;

const WIDE_RE = /[^\x00-\xff]/;

function isOws(code: number): boolean {
  return code === 0x20 || code === 0x09;
}

/** Trims optional whitespace (SP, HTAB; RFC 9110 §5.6.3) only; `String#trim` would eat 0xA0 bytes. */
function trimOws(v: string): string {
  let start = 0;
  let end = v.length;
  while (start < end && isOws(v.charCodeAt(start))) start++;
  while (end > start && isOws(v.charCodeAt(end - 1))) end--;
  return start === 0 && end === v.length ? v : v.slice(start, end);
}

/**
 * Cuts a byte string (every char ≤ U+00FF) to `maxBytes` without splitting a UTF-8 sequence: when
 * the cut falls inside a well-formed sequence, the whole incomplete sequence is dropped.
 */
function cutBytes(v: string, maxBytes: number): string {
  if (v.length <= maxBytes) return v;
  let end = maxBytes;
  if ((v.charCodeAt(end) & 0xc0) === 0x80) {
    // The byte after the cut is a continuation byte: look back (at most 3 bytes) for its lead.
    let i = end - 1;
    while (i > end - 4 && i >= 0 && (v.charCodeAt(i) & 0xc0) === 0x80) i--;
    if (i >= 0 && (v.charCodeAt(i) & 0xc0) === 0xc0) end = i;
  }
  return v.slice(0, end);
}

/**
 * Makes a client header value safe to send upstream:
 * 1. removes CR, LF and every other control character (U+0000–U+001F except HTAB, and U+007F),
 *    so no header can be injected (RFC 9110 §5.5);
 * 2. trims leading/trailing SP and HTAB;
 * 3. turns characters beyond U+00FF (only possible when the caller did not get the value from
 *    node:http, which yields latin1 byte strings) into their UTF-8 bytes, as the wire needs;
 * 4. cuts the result to `maxBytes` bytes without splitting a UTF-8 sequence.
 *
 * Returns `''` when nothing is left (the header is then not forwarded).
 *
 * @param value - a header value as node:http delivers it (latin1 byte string) or any JS string.
 * @param maxBytes - byte limit; default {@link MAX_HEADER_VALUE_BYTES} (4096).
 */
export function sanitizeHeaderValue(value: string, maxBytes: number = MAX_HEADER_VALUE_BYTES): string {
  let v = CONTROL_RE.test(value) ? value.replace(CONTROL_RE_G, '') : value;
  v = trimOws(v);
  if (WIDE_RE.test(v)) v = Buffer.from(v, 'utf8').toString('latin1');
  if (v.length > maxBytes) v = trimOws(cutBytes(v, maxBytes));
  return v;
}

/**
 * Parses `SWITCHBOARD_PASSTHROUGH_HEADERS`: a comma-separated list (`X-Tenant-Id, X-Request-Id`)
 * or a JSON array of strings. Entries are trimmed, empty ones dropped,
 * duplicates (case-insensitive) removed keeping the first spelling. Names are not validated
 * here: {@link createPassthroughPolicy} drops invalid ones with a warning.
 *
 * @param value - the variable's value; `undefined`/blank gives `[]`.
 */
export function parseAllowlistEnv(value: string | undefined): string[] {
  if (value === undefined) return [];
  const trimmed = value.trim();
  if (trimmed === '') return [];
  let items: unknown[] | undefined;
  if (trimmed.startsWith('[')) {
    try {
      const parsed: unknown = JSON.parse(trimmed);
      if (Array.isArray(parsed)) items = parsed;
    } catch {
      // Not JSON after all: fall back to the comma-separated form.
    }
  }
  const names = (items ?? trimmed.split(',')).filter((n): n is string => typeof n === 'string');
  return dedupe(names.map((n) => n.trim()).filter((n) => n !== ''));
}

function dedupe(names: readonly string[]): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const n of names) {
    const lower = n.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    out.push(n);
  }
  return out;
}

/**
 * Resolves the global allowlist from its two sources according to `headers.source`:
 * - `env`: the environment list only; the stored list is ignored;
 * - `db`: the stored list when one has been stored (even an empty one, which switches
 *   passthrough off), else the environment list as the default;
 * - `merge`: the union of both, case-insensitive, the stored spelling winning for duplicates.
 *
 * @param source - `headers.source`.
 * @param env - from {@link parseAllowlistEnv}.
 * @param db - from {@link readStoredAllowlist}; `undefined` when nothing is stored.
 */
export function mergeAllowlists(
  source: AllowlistSource,
  env: readonly string[],
  db: readonly string[] | undefined,
): string[] {
  switch (source) {
    case 'env':
      return dedupe(env);
    case 'db':
      return dedupe(db ?? env);
    case 'merge':
      return dedupe([...(db ?? []), ...env]);
  }
}

/**
 * Reads the stored global allowlist ({@link PASSTHROUGH_SETTINGS_KEY}). Returns `undefined` when
 * nothing is stored or the stored value is not an array of strings (non-string entries of an
 * array are dropped).
 */
export async function readStoredAllowlist(settings: SettingsStore): Promise<string[] | undefined> {
  const stored = await settings.get<unknown>(PASSTHROUGH_SETTINGS_KEY);
  if (!Array.isArray(stored)) return undefined;
  return stored.filter((n): n is string => typeof n === 'string');
}

/**
 * The global allowlist for `headers.source`: reads the environment value and, unless the source
 * is `env` (which never touches the database), the stored list; then
 * {@link mergeAllowlists}. Call at startup and on reload, never per request.
 *
 * @param options.envValue - the value of {@link PASSTHROUGH_ENV_VAR}; default `process.env`'s.
 */
export async function loadGlobalAllowlist(options: {
  source: AllowlistSource;
  settings?: SettingsStore;
  envValue?: string | undefined;
}): Promise<string[]> {
  const env = parseAllowlistEnv('envValue' in options ? options.envValue : process.env[PASSTHROUGH_ENV_VAR]);
  const db =
    options.source === 'env' || options.settings === undefined
      ? undefined
      : await readStoredAllowlist(options.settings);
  return mergeAllowlists(options.source, env, db);
}

/** Options for {@link createPassthroughPolicy}. */
export interface PassthroughPolicyOptions {
  /** The global allowlist, already resolved ({@link loadGlobalAllowlist}). */
  globalAllowlist: readonly string[];
  /** The server's `passthroughHeaders`; when set (even to `[]`) it replaces the global list. */
  serverAllowlist?: readonly string[] | undefined;
  /** The server's `auth.type`; `'none'` when the server has no `auth`. */
  upstreamAuthType: UpstreamAuth['type'];
  /** The server's configured `headers` (operator-defined; names in any case). */
  baseHeaders: Readonly<Record<string, string>>;
  /** `headers.overwriteBase`: let a passed-through header replace a same-named base header (never `Authorization`). */
  overwriteBase: boolean;
  /** Extra names never forwarded, e.g. the trusted-proxy identity header (`X-Authenticated-User`). */
  reservedHeaders?: readonly string[];
  /** Byte limit per value. Default {@link MAX_HEADER_VALUE_BYTES}. */
  maxValueBytes?: number;
  /** Used in warnings. */
  serverName?: string;
  /** When given, each compile-time warning is logged once at `warn`. */
  logger?: Logger;
}

/**
 * A compiled passthrough policy for one upstream. Call it with the client's request headers
 * (lower-case names, as node:http delivers them); it returns the headers to add to the upstream
 * request, with lower-case names. The returned object must not be mutated (the empty result is
 * shared and frozen).
 */
export interface PassthroughPolicy {
  (clientHeaders: IncomingHttpHeaders): Readonly<Record<string, string>>;
  /** Lower-case names that may be copied from the client (after every compile-time rule). */
  readonly allowed: readonly string[];
  /** Whether a client `X-Upstream-Authorization` becomes `Authorization` for this upstream. */
  readonly upstreamAuthorization: boolean;
  /** Why allowlist entries were dropped (invalid name, never-forwarded, credential conflict…). */
  readonly warnings: readonly string[];
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});
const CREDENTIALED = new Set<UpstreamAuth['type']>(['bearer', 'basic', 'oauth2-client-credentials', 'token-exchange']);

function headerValue(raw: string | string[] | undefined): string | undefined {
  if (raw === undefined) return undefined;
  return typeof raw === 'string' ? raw : raw.join(', ');
}

/**
 * Names a client nominated as connection-specific (`Connection: keep-alive, X-Foo`); a proxy must
 * not forward those (RFC 9110 §7.6.1). `undefined` for the common `keep-alive`/`close` values.
 */
function nominatedNames(connection: string | string[] | undefined): Set<string> | undefined {
  const v = headerValue(connection);
  if (v === undefined) return undefined;
  const lower = v.toLowerCase();
  if (lower === 'keep-alive' || lower === 'close') return undefined;
  const names = new Set<string>();
  for (const part of lower.split(',')) {
    const name = part.trim();
    if (name !== '') names.add(name);
  }
  return names;
}

/**
 * Compiles the passthrough policy of one upstream (see the module comment for the rules). Build it
 * at startup and on reload, once per server; the returned function is the hot path.
 *
 * Compile-time rules, applied to each allowlist entry in order (each drop adds a warning):
 * 1. the effective list is `serverAllowlist` when set, else `globalAllowlist`;
 * 2. the name must match `^[A-Za-z0-9-]+$` ({@link HEADER_NAME_RE});
 * 3. {@link isNeverForwarded} names and `reservedHeaders` are dropped;
 * 4. `X-Upstream-Authorization` is never forwarded under its own name (see below);
 * 5. `Authorization` passes only to `none` upstreams without a configured `Authorization` base
 *    header. It is dropped for `bearer`/`basic`/`oauth2-client-credentials` (the operator's
 *    credential wins) and for `forward` (the credential layer already sends the caller's bearer);
 * 6. a name present in `baseHeaders` is dropped unless `overwriteBase`.
 *
 * `X-Upstream-Authorization` (need not be allowlisted — it exists so a client can send a
 * credential meant for the upstream while its `Authorization` authenticates it to Switchboard):
 * its value becomes `Authorization` only when the upstream's auth type is `none` or `forward` and
 * the operator configured no `Authorization` header; it then also wins over an allowlisted
 * `Authorization` and, when the caller merges in the documented order, over `forward`'s bearer.
 *
 * Per request: names the client's `Connection` header nominates are skipped (RFC 9110 §7.6.1);
 * each value goes through {@link sanitizeHeaderValue}; empty results are skipped.
 *
 * Merge order for the caller: base headers, then upstream credentials, then this result, then
 * identity headers (all lower-case names), e.g. `{...base, ...credentials, ...passthrough, ...identity}`.
 * The rules above guarantee the result never contains a name that would replace an operator
 * credential.
 */
export function createPassthroughPolicy(options: PassthroughPolicyOptions): PassthroughPolicy {
  const warnings: string[] = [];
  const where = options.serverName === undefined ? '' : ` for server "${options.serverName}"`;
  const warn = (msg: string): void => {
    warnings.push(msg);
    options.logger?.warn({ server: options.serverName }, msg);
  };
  const authType = options.upstreamAuthType;
  const base = new Set(Object.keys(options.baseHeaders).map((n) => n.toLowerCase()));
  const baseHasAuthorization = base.has('authorization');
  const reserved = new Set((options.reservedHeaders ?? []).map((n) => n.toLowerCase()));
  const maxBytes = options.maxValueBytes ?? MAX_HEADER_VALUE_BYTES;
  const list = options.serverAllowlist ?? options.globalAllowlist;

  const allowed: string[] = [];
  const seen = new Set<string>();
  for (const entry of list) {
    const name = entry.trim();
    if (!HEADER_NAME_RE.test(name)) {
      warn(`passthrough header ${JSON.stringify(entry)} ignored${where}: names must match ${HEADER_NAME_RE.source}`);
      continue;
    }
    const lower = name.toLowerCase();
    if (seen.has(lower)) continue;
    seen.add(lower);
    if (isNeverForwarded(lower) || reserved.has(lower)) {
      warn(
        `passthrough header "${name}" ignored${where}: it is never forwarded (hop-by-hop, transport, session or identity header)`,
      );
      continue;
    }
    if (lower === UPSTREAM_AUTHORIZATION_HEADER) {
      warn(
        `passthrough header "${name}" ignored${where}: it is not forwarded under its own name; it becomes Authorization for upstreams with auth type none or forward`,
      );
      continue;
    }
    if (lower === 'authorization') {
      if (CREDENTIALED.has(authType)) {
        warn(
          `passthrough header "${name}" ignored${where}: the upstream's ${authType} credential is never replaced by a client header`,
        );
        continue;
      }
      if (authType === 'forward') {
        warn(`passthrough header "${name}" ignored${where}: auth type forward already sends the caller's bearer token`);
        continue;
      }
      if (baseHasAuthorization) {
        warn(
          `passthrough header "${name}" ignored${where}: the configured Authorization header is never replaced by a client header`,
        );
        continue;
      }
      warn(
        `passthrough header "${name}"${where}: the caller's Authorization (its credential to Switchboard) will be sent to this upstream; prefer auth type forward`,
      );
    } else if (base.has(lower) && !options.overwriteBase) {
      warn(
        `passthrough header "${name}" ignored${where}: the server configures it (set headers.overwriteBase to let clients replace it)`,
      );
      continue;
    }
    allowed.push(lower);
  }

  const upstreamAuthorization = (authType === 'none' || authType === 'forward') && !baseHasAuthorization;
  const names = Object.freeze([...allowed]);

  const policy = (clientHeaders: IncomingHttpHeaders): Readonly<Record<string, string>> => {
    let out: Record<string, string> | undefined;
    const nominated = clientHeaders.connection === undefined ? undefined : nominatedNames(clientHeaders.connection);
    if (upstreamAuthorization && !nominated?.has(UPSTREAM_AUTHORIZATION_HEADER)) {
      const raw = headerValue(clientHeaders[UPSTREAM_AUTHORIZATION_HEADER]);
      if (raw !== undefined) {
        const v = sanitizeHeaderValue(raw, maxBytes);
        if (v !== '') (out ??= {}).authorization = v;
      }
    }
    for (const name of names) {
      const raw = headerValue(clientHeaders[name]);
      if (raw === undefined || nominated?.has(name) === true) continue;
      if (name === 'authorization' && out?.authorization !== undefined) continue;
      const v = sanitizeHeaderValue(raw, maxBytes);
      if (v !== '') (out ??= {})[name] = v;
    }
    return out ?? EMPTY;
  };
  return Object.assign(policy, {
    allowed: names,
    upstreamAuthorization,
    warnings: Object.freeze([...warnings]),
  });
}
