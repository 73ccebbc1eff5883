/**
 * Storage ports: each store is an interface with several implementations, chosen by config.
 * Implementations: Kysely over better-sqlite3 (default, a file in the data directory) and over
 * `pg` (`SWITCHBOARD_DATABASE_URL=postgres://…`). Times are epoch milliseconds.
 *
 * @module
 */
import type { UsageSink } from '../observability/usage-row.js';

export type { UsageRow, UsageSink } from '../observability/usage-row.js';

/** A stored API token. The token itself is never stored: only a SHA-256 hash of it. */
export interface TokenRecord {
  /** Public identifier (UUID) used in the API and CLI. */
  id: string;
  /** JWT ID (RFC 7519 §4.1.7) carried in the token; unique. */
  jti: string;
  /** Human label. */
  name: string;
  /** Hex SHA-256 of the full token string. */
  tokenHash: string;
  /** Principal id the token acts as (the owner). */
  subject: string;
  /** `resource.action` permissions (may contain `*`). */
  permissions: string[];
  /** Server names the token may reach; empty = all. */
  servers: string[];
  /** Tool-name globs (upstream names) the token may call; empty = all. */
  tools: string[];
  createdAt: number;
  /** Absent = never expires. */
  expiresAt?: number;
  revokedAt?: number;
  lastUsedAt?: number;
  /** Who created it (principal id), for audit. */
  createdBy?: string;
  /**
   * The API token ({@link TokenRecord.id}) that minted this one through the admin API; absent for
   * tokens created by the operator (CLI) or by a principal that is not an API token. Revoking the
   * parent revokes this token too, and a token whose parent is revoked is refused.
   */
  parentId?: string;
}

/** Token persistence. */
export interface TokenStore {
  create(record: TokenRecord): Promise<void>;
  get(id: string): Promise<TokenRecord | undefined>;
  getByJti(jti: string): Promise<TokenRecord | undefined>;
  /** All tokens, or those of one subject; newest first. */
  list(filter?: { subject?: string }): Promise<TokenRecord[]>;
  /**
   * Marks the token and every token minted from it, transitively ({@link TokenRecord.parentId}),
   * revoked at `at`; a token revoked before keeps its first revocation time. Returns false when
   * the id is unknown.
   */
  revoke(id: string, at: number): Promise<boolean>;
  /**
   * The tokens this one was minted from: its parent, the parent's parent, … (nearest first; at
   * most 64 of them, a guard against a corrupt chain). Empty for a token without a parent or an unknown id.
   */
  ancestors(id: string): Promise<TokenRecord[]>;
  /** Records last use; implementations may batch. */
  touch(id: string, at: number): Promise<void>;
  /** Writes batched {@link TokenStore.touch} times now (implementations that batch provide it). */
  flush?(): Promise<void>;
}

/** A server added at run time through the admin API (file-declared servers are not stored). */
export interface StoredServer {
  name: string;
  /** The server entry exactly as accepted by the config schema (input shape, JSON). */
  config: Record<string, unknown>;
  createdAt: number;
  updatedAt: number;
  createdBy?: string;
}

/** Runtime server persistence. */
export interface ServerStore {
  list(): Promise<StoredServer[]>;
  get(name: string): Promise<StoredServer | undefined>;
  /** Insert or replace. */
  put(server: StoredServer): Promise<void>;
  /** Returns false when the name is unknown. */
  delete(name: string): Promise<boolean>;
}

/** Small global settings (JSON values): signing keys, the stored passthrough allowlist, … */
export interface SettingsStore {
  get<T = unknown>(key: string): Promise<T | undefined>;
  set(key: string, value: unknown): Promise<void>;
  /**
   * Stores `value` under `key` unless the key already holds a value, and returns what the key
   * holds afterwards: the first writer wins, so replicas starting together on an empty database
   * all settle on one value (one `INSERT … ON CONFLICT DO NOTHING`, then a read).
   *
   * @throws TypeError for values JSON cannot represent
   */
  setIfAbsent<T = unknown>(key: string, value: T): Promise<T>;
}

/** An open database with every store. */
export interface Database {
  readonly dialect: 'sqlite' | 'postgres';
  /** Where the data lives, safe to print: a file path, `:memory:`, or a URL without its password. */
  readonly location?: string;
  readonly tokens: TokenStore;
  readonly servers: ServerStore;
  readonly settings: SettingsStore;
  /** The usage log (present on every SQL database; optional for other implementations). */
  readonly usage?: UsageStore;
  /** Tool definition pins of `pinTools` guardrails (present on every SQL database). */
  readonly toolPins?: ToolPinStore;
  /** Per-user upstream OAuth tokens, sealed (present on every SQL database). */
  readonly upstreamTokens?: UpstreamTokenStore;
  /** The last catalogs seen of `start: lazy` upstreams (present on every SQL database). */
  readonly catalogs?: CatalogStore;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  /** True when a trivial query succeeds (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}

/** Options of {@link UsageStore.tokenUsage}. */
export interface TokenUsageQuery {
  /** The window: the last `days` days up to `now` (fractions allowed). */
  days: number;
  /** End of the window, epoch ms. Default: the store's clock. */
  now?: number;
  /** Entries per top list. Default 10. */
  top?: number;
}

/** One entry of a top list: a name and how many requests it had. */
export interface UsageCount {
  /** The endpoint path, the server name, or the tool name. */
  name: string;
  /** For tools: the server the tool belongs to. */
  server?: string;
  count: number;
}

/**
 * A token's usage over a window (`GET /api/v1/tokens/{id}/usage`). Every request is exactly one
 * of `success` (not blocked, HTTP status < 400, no JSON-RPC error), `blocked`, or `errors`.
 */
export interface TokenUsage {
  tokenId: string;
  /** Window start and end, epoch ms, both inclusive. */
  from: number;
  to: number;
  total: number;
  success: number;
  blocked: number;
  errors: number;
  /** `success / total` in [0, 1]; `null` when there were no requests. */
  successRate: number | null;
  /**
   * Latency of the requests that were not blocked, ms. Percentiles are nearest-rank (the value at
   * rank ⌈p·n⌉ of the sorted latencies, as PostgreSQL's `percentile_disc`); `null` with no such requests.
   */
  latencyMs: { p50: number | null; p95: number | null; avg: number | null };
  bytesIn: number;
  bytesOut: number;
  /** Most requested endpoints, most first (ties by name). */
  topEndpoints: UsageCount[];
  /** Most requested servers (requests that reached one), most first. */
  topServers: UsageCount[];
  /** Most called tools, most first; `server` says whose tool. */
  topTools: UsageCount[];
}

/** Time-series grouping of {@link UsageStore.usageSeries}. */
export type UsageGroupBy = 'token' | 'server' | 'tool';

/** Time-series bucket width of {@link UsageStore.usageSeries}: UTC minutes, hours or days. */
export type UsageBucket = 'minute' | 'hour' | 'day';

/** Options of {@link UsageStore.usageSeries}. */
export interface UsageSeriesQuery {
  groupBy: UsageGroupBy;
  /** Window start (inclusive) and end (exclusive), epoch ms. */
  from: number;
  to: number;
  bucket: UsageBucket;
  /** Only this token's requests. */
  tokenId?: string;
}

/** One point of a usage time series: the requests of one group in one bucket. */
export interface UsageSeriesRow {
  /** Bucket start, epoch ms (UTC-aligned). */
  bucket: number;
  /** The token id, server name or tool name; `null` for requests that reached no server/tool. */
  key: string | null;
  /** `groupBy: 'tool'`: the tool's server. */
  server?: string | null;
  /** `groupBy: 'token'`: the token's owner. */
  subject?: string;
  count: number;
  success: number;
  blocked: number;
  errors: number;
  /** Mean latency of the requests that were not blocked, ms; `null` when all were blocked. */
  avgLatencyMs: number | null;
  bytesIn: number;
  bytesOut: number;
}

/**
 * Usage-log persistence: the writes of {@link UsageSink}, and the reads behind the usage API.
 * Writes come in batches from the usage-log writer (`src/observability/usage-log.ts`), never one
 * per request.
 */
export interface UsageStore extends UsageSink {
  /** A token's totals, latency percentiles and top lists over the last `days` days. */
  tokenUsage(tokenId: string, query: TokenUsageQuery): Promise<TokenUsage>;
  /** Requests per bucket and group, ordered by bucket, then key (nulls first). */
  usageSeries(query: UsageSeriesQuery): Promise<UsageSeriesRow[]>;
}

/**
 * The pinned definition of one upstream tool (guardrails `pinTools`, docs/guardrails.md): the
 * SHA-256 of its name, description, inputSchema and outputSchema when first seen, and the hash of
 * a different definition seen since, until an operator approves it.
 */
export interface ToolPin {
  /** The upstream server's configured name. */
  server: string;
  /** The upstream's own tool name. */
  tool: string;
  /** Hex SHA-256 of the pinned (accepted) definition. */
  hash: string;
  /** Hex SHA-256 of the definition last seen, when it differs from `hash`. */
  changedHash?: string;
  /** When the pin was first taken or last approved, epoch ms. */
  pinnedAt: number;
  /** When the changed definition was first seen, epoch ms. */
  changedAt?: number;
  /** Who approved the current pin (principal id, or `cli` for `switchboard tools approve`). */
  approvedBy?: string;
}

/** Storage of {@link ToolPin}s, one per (server, tool). Errors are `SWB_ERR_STORE_*` GatewayErrors. */
export interface ToolPinStore {
  /** Every pin, or those of one server, ordered by server then tool. */
  list(server?: string): Promise<ToolPin[]>;
  /**
   * Pins `hash` for (server, tool) unless a pin exists (first sight wins, also across replicas).
   *
   * @returns the stored pin (the existing one when there was one)
   */
  pin(server: string, tool: string, hash: string, at: number): Promise<ToolPin>;
  /**
   * Records the definition seen now: sets `changedHash` (keeping the first `changedAt`) when it
   * differs from the pin, clears both when it equals the pin. No-op without a pin.
   */
  seen(server: string, tool: string, hash: string, at: number): Promise<void>;
  /**
   * Accepts the changed definitions of `server` (all its tools, or only `tool`): each pin with a
   * `changedHash` takes it as its `hash`.
   *
   * @returns the names of the tools approved (empty when nothing was changed)
   */
  approve(server: string, tool: string | undefined, by: string, at: number): Promise<string[]>;
}

/**
 * The upstream OAuth tokens one principal holds for one `auth.type: oauth2-user` server, as
 * stored: the token values are sealed by the token vault (`src/auth/token-vault.ts`, AES-256-GCM
 * with a per-value IV and the (principal, server) pair as additional authenticated data), never
 * plain text. Times are epoch milliseconds.
 */
export interface StoredUpstreamToken {
  /** The principal id the tokens belong to. */
  principal: string;
  /** The upstream server's configured name. */
  server: string;
  /** Id of the vault key that sealed {@link accessToken} and {@link refreshToken}. */
  keyId: string;
  /** The sealed access token (RFC 6749 §5.1 `access_token`). */
  accessToken: string;
  /** The sealed refresh token (RFC 6749 §5.1 `refresh_token`), when the upstream issued one. */
  refreshToken?: string;
  /** When the access token expires (from `expires_in`); absent when the upstream did not say. */
  expiresAt?: number;
  /** The scopes granted (RFC 6749 §5.1 `scope`, split on spaces). */
  scopes: string[];
  /** The upstream's subject for this principal (e.g. the ID token's `sub`), when known. */
  upstreamSubject?: string;
  createdAt: number;
  updatedAt: number;
  lastUsedAt?: number;
}

/** Storage of {@link StoredUpstreamToken}s, one per (principal, server). Errors are `SWB_ERR_STORE_*` GatewayErrors. */
export interface UpstreamTokenStore {
  get(principal: string, server: string): Promise<StoredUpstreamToken | undefined>;
  /**
   * Inserts or replaces the tokens of (principal, server). A replacement keeps the first
   * `createdAt` and the stored `lastUsedAt`.
   */
  put(record: StoredUpstreamToken): Promise<void>;
  /** Every entry, or those of one principal and/or one server, ordered by principal then server. */
  list(filter?: { principal?: string; server?: string }): Promise<StoredUpstreamToken[]>;
  /** Removes the tokens of (principal, server); false when there were none. */
  delete(principal: string, server: string): Promise<boolean>;
  /** Records a use of the tokens at `at` (never moves the time backwards). */
  touch(principal: string, server: string, at: number): Promise<void>;
}

/**
 * What an upstream served when it last ran: its `initialize` result (capabilities, serverInfo,
 * instructions) and its lists, as JSON objects exactly as the upstream sent them.
 */
export interface StoredCatalog {
  /** The upstream server's name in the configuration. */
  server: string;
  /**
   * A digest of the configuration that produced this catalog (command, arguments, environment,
   * working directory): a catalog stored under another one is not the same server's.
   */
  fingerprint: string;
  /** The upstream's `initialize` result (MCP basic/lifecycle §Initialization). */
  initializeResult: Record<string, unknown>;
  tools: Array<Record<string, unknown>>;
  prompts: Array<Record<string, unknown>>;
  resources: Array<Record<string, unknown>>;
  resourceTemplates: Array<Record<string, unknown>>;
  /** When it was stored, epoch ms. */
  updatedAt: number;
}

/**
 * Storage of the last catalog seen per upstream server, one row per server (the newest write
 * wins). Errors are `SWB_ERR_STORE_*` GatewayErrors.
 */
export interface CatalogStore {
  /** The stored catalog of `server`, or undefined when none was stored. */
  get(server: string): Promise<StoredCatalog | undefined>;
  /** Stores (inserts or replaces) the catalog of `catalog.server`. */
  put(catalog: StoredCatalog): Promise<void>;
  /** Removes the stored catalog of `server`; no-op when none. */
  delete(server: string): Promise<void>;
}
