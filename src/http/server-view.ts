/**
 * The admin API's view of a server (`GET /api/v1/servers[/{name}]`, and the answer of every
 * server write): where it comes from, its state and catalog counts, its isolation and live
 * sessions, its stored entry (secrets redacted for callers without `admin.*`) and its traffic over
 * the last five minutes (`observability/recent-traffic.ts`).
 *
 * Listed servers are the gateway's upstreams plus the stored runtime servers that are switched off
 * (`enabled: false` or `disabled: true` in the entry), shown with `state: "disabled"`.
 *
 * @module
 */
import type { Principal } from '../auth/principal.js';
import { isAdmin } from '../auth/rbac.js';
import { isStdioServer, ServerConfig } from '../config/schema.js';
import type { Gateway } from '../gateway/gateway.js';
import type { RecentTraffic, TrafficStats } from '../observability/recent-traffic.js';
import type { ServerStore, StoredServer } from '../store/types.js';
import type { Upstream } from '../upstream/upstream.js';

/** What replaces a secret in an entry shown to a caller without `admin.*`. */
export const REDACTED = '[redacted]';

/** The fields of an `auth` block that hold secrets. */
const AUTH_SECRETS = ['token', 'password', 'clientSecret'] as const;

/** A server as the admin API shows it. */
export interface ServerViewBody {
  readonly name: string;
  /** `file` (the configuration file), `api` (stored runtime server) or `tunnel`. */
  readonly source: 'file' | 'api' | 'tunnel';
  readonly readOnly: boolean;
  readonly transport: string | null;
  /**
   * The upstream's state (`starting`, `ready`, `idle`: a `start: lazy` server whose child is
   * not running, `restarting`, `failed`, `stopped`), or `disabled`.
   */
  readonly state: string;
  readonly error: string | null;
  readonly restarts: number;
  readonly tools: number;
  readonly prompts: number;
  readonly resources: number;
  readonly serverInfo: unknown;
  readonly protocol: string;
  readonly era: string | null;
  readonly description: string | null;
  /** A stdio server's isolation; null for URL servers. */
  readonly isolation: 'shared' | 'session' | 'user' | null;
  /**
   * Live client sessions whose endpoint reaches the server (`shared` isolation and URL servers),
   * or live children (`session`/`user` isolation); 0 when not running.
   */
  readonly sessions: number;
  /** Absolute path of the configuration file, for `source: "file"` when known; else null. */
  readonly sourceFile: string | null;
  /** False for a stored runtime server that is switched off. */
  readonly enabled: boolean;
  /**
   * True for a server of `auth.type: oauth2-user`: each principal connects its own upstream
   * account (`/api/v1/me/connections`) before calling it. Shown to every reader; no part of the
   * `auth` block itself.
   */
  readonly userConnection: boolean;
  /** The stored entry of a runtime server (secrets redacted without `admin.*`); null otherwise. */
  readonly config: Record<string, unknown> | null;
  readonly stats: TrafficStats;
}

/** Options of {@link createServerViews}. */
export interface ServerViewsOptions {
  readonly gateway: Gateway;
  readonly servers: ServerStore;
  /** Recent traffic per server; without it `stats` is empty. */
  readonly traffic?: RecentTraffic | undefined;
}

/** Builds server views; see {@link createServerViews}. */
export interface ServerViews {
  /** Every server: the upstreams, then stored servers that are switched off, in name order within each. */
  list(principal: Principal): Promise<ServerViewBody[]>;
  /** One server's view, or undefined when there is no such server (running or stored). */
  get(name: string, principal: Principal): Promise<ServerViewBody | undefined>;
}

/** `fn`, called at most once: later calls return its first result. */
function once<T>(fn: () => T): () => T {
  let value: { v: T } | undefined;
  return () => (value ??= { v: fn() }).v;
}

/** True when a stored entry is switched off (`enabled: false` or `disabled: true`). */
export function isSwitchedOff(entry: Record<string, unknown>): boolean {
  return entry.enabled === false || entry.disabled === true;
}

function redactValues(v: unknown): unknown {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return v;
  return Object.fromEntries(Object.keys(v).map((k) => [k, REDACTED]));
}

/**
 * A copy of a stored server entry with its secrets replaced by {@link REDACTED}: every `env` and
 * `headers` value, and `auth.token`, `auth.password`, `auth.clientSecret`.
 */
export function redactServerEntry(entry: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = { ...entry };
  if ('env' in out) out.env = redactValues(out.env);
  if ('headers' in out) out.headers = redactValues(out.headers);
  const auth = out.auth;
  if (typeof auth === 'object' && auth !== null && !Array.isArray(auth)) {
    const a: Record<string, unknown> = { ...(auth as Record<string, unknown>) };
    for (const k of AUTH_SECRETS) if (k in a) a[k] = REDACTED;
    out.auth = a;
  }
  return out;
}

/**
 * The entry of a `PUT` with each secret still written as {@link REDACTED} given back its stored
 * value (an entry edited from a redacted view keeps the secrets it did not change). A redacted
 * value with no stored counterpart stays as it is.
 */
export function restoreRedacted(
  entry: Record<string, unknown>,
  stored: Record<string, unknown> | undefined,
): Record<string, unknown> {
  if (stored === undefined) return entry;
  const out: Record<string, unknown> = { ...entry };
  for (const field of ['env', 'headers'] as const) {
    const now = out[field];
    const before = stored[field];
    if (typeof now !== 'object' || now === null || typeof before !== 'object' || before === null) continue;
    const merged: Record<string, unknown> = { ...(now as Record<string, unknown>) };
    for (const [k, v] of Object.entries(merged))
      if (v === REDACTED && Object.hasOwn(before, k)) merged[k] = (before as Record<string, unknown>)[k];
    out[field] = merged;
  }
  const auth = out.auth;
  const storedAuth = stored.auth;
  if (typeof auth === 'object' && auth !== null && typeof storedAuth === 'object' && storedAuth !== null) {
    const a: Record<string, unknown> = { ...(auth as Record<string, unknown>) };
    const b = storedAuth as Record<string, unknown>;
    if (a.type === b.type) for (const k of AUTH_SECRETS) if (a[k] === REDACTED && Object.hasOwn(b, k)) a[k] = b[k];
    out.auth = a;
  }
  return out;
}

/** Creates the server view builder of the admin API. */
export function createServerViews(options: ServerViewsOptions): ServerViews {
  const { gateway, servers, traffic } = options;

  function stats(name: string): TrafficStats {
    if (traffic !== undefined) return traffic.stats(name);
    return {
      windowSeconds: 300,
      requests: 0,
      errors: 0,
      errorRate: 0,
      ratePerMinute: 0,
      p50Ms: null,
      p95Ms: null,
      series: [],
    };
  }

  /** Live sessions per upstream, counted in one pass over the sessions (for one answer). */
  function sessionCounts(): Map<Upstream, number> {
    const counts = new Map<Upstream, number>();
    for (const s of gateway.sessions.values())
      for (const m of s.view.members) counts.set(m.upstream, (counts.get(m.upstream) ?? 0) + 1);
    return counts;
  }

  function liveSessions(name: string, counts: () => Map<Upstream, number>): number {
    const u = gateway.upstreams.get(name);
    if (u === undefined) return 0;
    if (u.isolation === 'session' || u.isolation === 'user') return u.connectionCount;
    return counts().get(u) ?? 0;
  }

  function running(
    name: string,
    principal: Principal,
    stored: StoredServer | undefined,
    counts: () => Map<Upstream, number>,
  ): ServerViewBody {
    const u = gateway.upstreams.get(name);
    const cfg = gateway.config.servers[name];
    const source = gateway.isTunnel(name) ? 'tunnel' : gateway.isFileServer(name) ? 'file' : 'api';
    return {
      name,
      source,
      readOnly: source !== 'api',
      transport:
        cfg && 'command' in cfg
          ? 'stdio'
          : cfg && 'url' in cfg
            ? (cfg.transport ?? (cfg.type === 'sse' ? 'sse' : 'streamable-http'))
            : null,
      state: u?.state ?? 'stopped',
      error: u?.lastError ?? null,
      restarts: u?.restarts ?? 0,
      tools: u?.catalog.tools.length ?? 0,
      prompts: u?.catalog.prompts.length ?? 0,
      resources: u?.catalog.resources.length ?? 0,
      serverInfo: u?.initializeResult?.serverInfo ?? null,
      protocol: cfg?.protocol ?? 'auto',
      era: u?.era ?? null,
      description: cfg?.description ?? null,
      isolation: cfg && isStdioServer(cfg) ? cfg.isolation : null,
      sessions: liveSessions(name, counts),
      sourceFile: source === 'file' ? (gateway.config.source ?? null) : null,
      enabled: true,
      userConnection: cfg !== undefined && !isStdioServer(cfg) && cfg.auth?.type === 'oauth2-user',
      config: source === 'api' && stored ? shown(stored.config, principal) : null,
      stats: stats(name),
    };
  }

  function switchedOff(stored: StoredServer, principal: Principal): ServerViewBody {
    const parsed = ServerConfig.safeParse(stored.config);
    const cfg = parsed.success ? parsed.data : undefined;
    const description = stored.config.description;
    return {
      name: stored.name,
      source: 'api',
      readOnly: false,
      transport:
        cfg === undefined
          ? null
          : isStdioServer(cfg)
            ? 'stdio'
            : (cfg.transport ?? (cfg.type === 'sse' ? 'sse' : 'streamable-http')),
      state: 'disabled',
      error: parsed.success ? null : 'the stored entry is invalid',
      restarts: 0,
      tools: 0,
      prompts: 0,
      resources: 0,
      serverInfo: null,
      protocol: cfg?.protocol ?? 'auto',
      era: null,
      description: typeof description === 'string' ? description : null,
      isolation: cfg && isStdioServer(cfg) ? cfg.isolation : null,
      sessions: 0,
      sourceFile: null,
      enabled: false,
      // Runtime servers cannot be oauth2-user servers (refused when added through the API).
      userConnection: false,
      config: shown(stored.config, principal),
      stats: stats(stored.name),
    };
  }

  function shown(entry: Record<string, unknown>, principal: Principal): Record<string, unknown> {
    return isAdmin(principal) ? entry : redactServerEntry(entry);
  }

  /** A stored server that is not running because it is switched off (and not shadowed by the file). */
  function isDisabled(s: StoredServer): boolean {
    return !gateway.upstreams.has(s.name) && !gateway.isFileServer(s.name) && isSwitchedOff(s.config);
  }

  return {
    async list(principal) {
      const stored = await servers.list();
      const byName = new Map(stored.map((s) => [s.name, s]));
      const counts = once(sessionCounts);
      const out = [...gateway.upstreams.keys()].map((name) => running(name, principal, byName.get(name), counts));
      for (const s of stored) if (isDisabled(s)) out.push(switchedOff(s, principal));
      return out;
    },
    async get(name, principal) {
      const stored = await servers.get(name);
      if (gateway.upstreams.has(name)) return running(name, principal, stored, once(sessionCounts));
      if (stored !== undefined && isDisabled(stored)) return switchedOff(stored, principal);
      return undefined;
    },
  };
}
