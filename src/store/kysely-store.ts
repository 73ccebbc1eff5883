/**
 * The storage ports of `./types.ts` implemented once with Kysely queries that run unchanged on
 * SQLite (better-sqlite3) and PostgreSQL (pg). Portability rules: JSON is stored as text, times
 * as `bigint` epoch milliseconds (pg returns int8 as a string, so every time is read back through
 * {@link Number}), upserts use `ON CONFLICT … DO UPDATE` (SQLite ≥ 3.24, PostgreSQL ≥ 9.5).
 *
 * This module holds {@link KyselyDatabase}, which builds one store per port over one Kysely
 * instance, migrates and closes them; the stores live in `./token-store.ts`, `./server-store.ts`,
 * `./settings-store.ts`, `./tool-pin-store.ts`, `./upstream-token-store.ts` and `./usage-store.ts`, the row shapes in
 * `./store-tables.ts`; it re-exports the stores and row shapes.
 *
 * Driver errors never leave the stores raw (`./store-errors.ts`): a unique-key violation becomes
 * `SWB_ERR_STORE_CONFLICT`, anything else `SWB_ERR_STORE_UNAVAILABLE`, with the driver error as
 * `cause`.
 *
 * @module
 */
import { sql, type Kysely } from 'kysely';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { migrateToLatest } from './migrations.js';
import type { Database } from './types.js';
import type { SqliteUsageWriter } from './sqlite-usage-writer.js';
import { KyselyUsageStore, type UsageTables } from './usage-store.js';
import { KyselyToolPinStore, type ToolPinTables } from './tool-pin-store.js';
import { KyselyCatalogStore, type CatalogTables } from './catalog-store.js';
import { KyselyUpstreamTokenStore, type UpstreamTokenTables } from './upstream-token-store.js';
import { toStoreError } from './store-errors.js';
import type { StoreTables } from './store-tables.js';
import { KyselyServerStore } from './server-store.js';
import { KyselySettingsStore } from './settings-store.js';
import { KyselyTokenStore } from './token-store.js';

export type { ServersTable, SettingsTable, StoreTables, TokensTable } from './store-tables.js';
export { KyselyServerStore } from './server-store.js';
export { KyselySettingsStore } from './settings-store.js';
export { KyselyTokenStore, MAX_TOKEN_LINEAGE, type KyselyTokenStoreOptions } from './token-store.js';

/** Default for {@link KyselyDatabaseOptions.touchFlushInterval}: 1 s. */
export const DEFAULT_TOUCH_FLUSH_INTERVAL = 1_000;

/** Default for {@link KyselyDatabaseOptions.pingTimeout}: 5 s. */
export const DEFAULT_PING_TIMEOUT = 5_000;

/** Options for {@link KyselyDatabase}. */
export interface KyselyDatabaseOptions {
  /** The Kysely instance; the database owns it and destroys it on close. */
  db: Kysely<StoreTables>;
  dialect: 'sqlite' | 'postgres';
  /** Printable location (no password). */
  location: string;
  logger: Logger;
  /**
   * PostgreSQL only: the schema the tables live in, when the caller chose one. Default: the
   * connection's `current_schema()`, read when migrating.
   */
  schema?: string;
  /** How long `tokens.touch()` times are held before one batched write, ms. Default 1000. */
  touchFlushInterval?: number;
  /** Timeout of {@link KyselyDatabase.ping}, ms. Default 5000. */
  pingTimeout?: number;
  /** Clock for `updated_at` columns, epoch ms. Default `Date.now`. */
  clock?: () => number;
  /**
   * SQLite files: the thread the usage log's `INSERT`s run on (see `./sqlite-usage-writer.ts`);
   * the database owns it and closes it on close. Default: usage rows are written through `db`.
   */
  usageWriter?: SqliteUsageWriter;
}

/**
 * A {@link Database} over one Kysely instance (either dialect). Built by `openDatabase()`; exported
 * for code that already holds a Kysely instance.
 */
export class KyselyDatabase implements Database {
  readonly dialect: 'sqlite' | 'postgres';
  readonly location: string;
  readonly tokens: KyselyTokenStore;
  readonly servers: KyselyServerStore;
  readonly settings: KyselySettingsStore;
  readonly usage: KyselyUsageStore;
  readonly toolPins: KyselyToolPinStore;
  readonly upstreamTokens: KyselyUpstreamTokenStore;
  readonly catalogs: KyselyCatalogStore;
  #db: Kysely<StoreTables>;
  #schema: string | undefined;
  #pingTimeout: number;
  #closing: Promise<void> | undefined;
  #usageWriter: SqliteUsageWriter | undefined;

  constructor(options: KyselyDatabaseOptions) {
    this.dialect = options.dialect;
    this.location = options.location;
    this.#db = options.db;
    this.#schema = options.schema;
    this.#pingTimeout = options.pingTimeout ?? DEFAULT_PING_TIMEOUT;
    const clock = options.clock ?? Date.now;
    const logger = options.logger;
    this.tokens = new KyselyTokenStore(options.db, {
      logger,
      flushInterval: options.touchFlushInterval ?? DEFAULT_TOUCH_FLUSH_INTERVAL,
    });
    this.servers = new KyselyServerStore(options.db);
    this.settings = new KyselySettingsStore(options.db, clock);
    this.#usageWriter = options.usageWriter;
    this.toolPins = new KyselyToolPinStore(options.db.withTables<ToolPinTables>());
    this.upstreamTokens = new KyselyUpstreamTokenStore(options.db.withTables<UpstreamTokenTables>());
    this.catalogs = new KyselyCatalogStore(options.db.withTables<CatalogTables>());
    this.usage = new KyselyUsageStore(options.db.withTables<UsageTables>(), {
      dialect: options.dialect,
      clock,
      ...(options.usageWriter === undefined ? {} : { writer: options.usageWriter }),
    });
  }

  /**
   * Applies pending migrations (see `./migrations.ts`).
   *
   * @returns the names applied, in order; empty when up to date.
   * @throws {@link GatewayError} `SWB_ERR_STORE_MIGRATION` when a migration fails,
   *   `SWB_ERR_STORE_UNAVAILABLE` when the database cannot be reached.
   */
  async migrate(): Promise<string[]> {
    try {
      if (this.dialect === 'postgres') {
        // Kysely runs the whole batch in one transaction under a PostgreSQL advisory lock.
        const schema = this.#schema ?? (await this.#currentSchema());
        return await migrateToLatest(this.#db as Kysely<unknown>, { schema });
      }
      return await this.#migrateSqlite();
    } catch (err) {
      throw toStoreError(err, 'running migrations');
    }
  }

  /** True when `select 1` succeeds within the ping timeout (5 s by default); never throws. */
  async ping(): Promise<boolean> {
    if (this.#closing !== undefined) return false;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<false>((resolve) => {
      timer = setTimeout(() => resolve(false), this.#pingTimeout);
    });
    try {
      const ok = sql`select 1`.execute(this.#db).then(
        () => true,
        () => false,
      );
      return await Promise.race([ok, timeout]);
    } finally {
      clearTimeout(timer);
    }
  }

  /**
   * Writes batched token touches, then closes the connections. Idempotent; a failed final flush
   * is logged, not thrown, so shutdown always completes.
   */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      await this.tokens.close();
      await this.#usageWriter?.close();
      await this.#db.destroy();
    })();
    return this.#closing;
  }

  /**
   * Kysely takes no lock on SQLite (it assumes one connection) and runs DDL outside transactions.
   * `BEGIN IMMEDIATE` gives both: another process migrating the same file waits (`busy_timeout`)
   * and then finds nothing to do, and a failed run leaves nothing behind. The driver has a single
   * connection, so every statement of the migrator runs inside this transaction.
   */
  async #migrateSqlite(): Promise<string[]> {
    await sql`begin immediate`.execute(this.#db);
    try {
      const applied = await migrateToLatest(this.#db as Kysely<unknown>);
      await sql`commit`.execute(this.#db);
      return applied;
    } catch (err) {
      await sql`rollback`.execute(this.#db).catch(() => undefined);
      throw err;
    }
  }

  async #currentSchema(): Promise<string> {
    try {
      const { rows } = await sql<{ schema: string | null }>`select current_schema() as schema`.execute(this.#db);
      const schema = rows[0]?.schema;
      if (schema === null || schema === undefined) {
        throw new GatewayError(
          'SWB_ERR_STORE_MIGRATION',
          'PostgreSQL has no current schema: the search_path names no existing schema',
        );
      }
      return schema;
    } catch (err) {
      throw toStoreError(err, 'reading the current schema');
    }
  }
}
