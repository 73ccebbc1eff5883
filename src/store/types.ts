/**
 * Storage ports (STYLE.md: stores are interfaces with several implementations, chosen by config).
 * Implementations: Kysely over better-sqlite3 (default, a file in the data directory) and over
 * `pg` (`SWITCHBOARD_DATABASE_URL=postgres://…`). Times are epoch milliseconds.
 *
 * @module
 */

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
}

/** Token persistence. */
export interface TokenStore {
  create(record: TokenRecord): Promise<void>;
  get(id: string): Promise<TokenRecord | undefined>;
  getByJti(jti: string): Promise<TokenRecord | undefined>;
  /** All tokens, or those of one subject; newest first. */
  list(filter?: { subject?: string }): Promise<TokenRecord[]>;
  /** Marks revoked (idempotent); returns false when the id is unknown. */
  revoke(id: string, at: number): Promise<boolean>;
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
}

/** An open database with every store. */
export interface Database {
  readonly dialect: 'sqlite' | 'postgres';
  /** Where the data lives, safe to print: a file path, `:memory:`, or a URL without its password. */
  readonly location?: string;
  readonly tokens: TokenStore;
  readonly servers: ServerStore;
  readonly settings: SettingsStore;
  /** Applies pending migrations; returns the names applied. */
  migrate(): Promise<string[]>;
  /** True when a trivial query succeeds (for /readyz). */
  ping(): Promise<boolean>;
  close(): Promise<void>;
}
