/**
 * The storage ports of `./types.ts` implemented once with Kysely queries that run unchanged on
 * SQLite (better-sqlite3) and PostgreSQL (pg). Portability rules: JSON is stored as text, times
 * as `bigint` epoch milliseconds (pg returns int8 as a string, so every time is read back through
 * {@link Number}), upserts use `ON CONFLICT … DO UPDATE` (SQLite ≥ 3.24, PostgreSQL ≥ 9.5).
 *
 * Driver errors never leave this module raw: a unique-key violation becomes
 * `SWB_ERR_STORE_CONFLICT`, anything else `SWB_ERR_STORE_UNAVAILABLE`, with the driver error as
 * `cause`.
 *
 * @module
 */
import { sql, type ColumnType, type Kysely, type Selectable } from 'kysely';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { migrateToLatest } from './migrations.js';
import type { Database, ServerStore, SettingsStore, StoredServer, TokenRecord, TokenStore } from './types.js';
import type { SqliteUsageWriter } from './sqlite-usage-writer.js';
import { KyselyUsageStore, type UsageTables } from './usage-store.js';
import { KyselyToolPinStore, type ToolPinTables } from './tool-pin-store.js';

/** An epoch-millisecond `bigint` column: pg reads int8 as a string, better-sqlite3 as a number. */
type Millis = ColumnType<number | string, number, number>;
/** A nullable {@link Millis} column. */
type NullableMillis = ColumnType<number | string | null, number | null, number | null>;

/** Row shape of the `tokens` table. JSON arrays are stored as text. */
export interface TokensTable {
  id: string;
  jti: string;
  name: string;
  token_hash: string;
  subject: string;
  permissions: string;
  servers: string;
  tools: string;
  created_at: Millis;
  expires_at: NullableMillis;
  revoked_at: NullableMillis;
  last_used_at: NullableMillis;
  created_by: string | null;
  /** Added by migration `0003_token_parent`. */
  parent_id: string | null;
}

/** Row shape of the `servers` table (runtime servers; `config` is the JSON server entry). */
export interface ServersTable {
  name: string;
  config: string;
  created_at: Millis;
  updated_at: Millis;
  created_by: string | null;
}

/** Row shape of the `settings` table (`value` is JSON text). */
export interface SettingsTable {
  key: string;
  value: string;
  updated_at: Millis;
}

/** The tables created by `./migrations.ts`, as Kysely sees them. */
export interface StoreTables {
  tokens: TokensTable;
  servers: ServersTable;
  settings: SettingsTable;
}

/** How many ancestors {@link KyselyTokenStore.ancestors} follows at most. */
export const MAX_TOKEN_LINEAGE = 64;

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

/** Options for {@link KyselyTokenStore}. */
export interface KyselyTokenStoreOptions {
  logger: Logger;
  /** How long touches are held before one batched write, ms. */
  flushInterval: number;
}

/**
 * {@link TokenStore} over the `tokens` table.
 *
 * `touch()` never writes on the caller's path: it keeps the latest time per token id in memory
 * and one timer writes them all every `flushInterval` ms (and on {@link KyselyTokenStore.close}).
 * Reads through this store already see pending times. A failed write keeps the times for the
 * next attempt; a stored time never moves backwards.
 */
export class KyselyTokenStore implements TokenStore {
  #db: Kysely<StoreTables>;
  #logger: Logger;
  #flushInterval: number;
  #pending = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(db: Kysely<StoreTables>, options: KyselyTokenStoreOptions) {
    this.#db = db;
    this.#logger = options.logger;
    this.#flushInterval = options.flushInterval;
  }

  /**
   * Stores a new token.
   *
   * @throws {@link GatewayError} `SWB_ERR_STORE_CONFLICT` when the id or the jti exists already.
   */
  async create(record: TokenRecord): Promise<void> {
    await guard('creating a token', async () => {
      await this.#db
        .insertInto('tokens')
        .values({
          id: record.id,
          jti: record.jti,
          name: record.name,
          token_hash: record.tokenHash,
          subject: record.subject,
          permissions: JSON.stringify(record.permissions),
          servers: JSON.stringify(record.servers),
          tools: JSON.stringify(record.tools),
          created_at: record.createdAt,
          expires_at: record.expiresAt ?? null,
          revoked_at: record.revokedAt ?? null,
          last_used_at: record.lastUsedAt ?? null,
          created_by: record.createdBy ?? null,
          parent_id: record.parentId ?? null,
        })
        .execute();
    });
  }

  /** The token with this id, or undefined. */
  async get(id: string): Promise<TokenRecord | undefined> {
    const row = await guard('reading a token', () =>
      this.#db.selectFrom('tokens').selectAll().where('id', '=', id).executeTakeFirst(),
    );
    return row === undefined ? undefined : this.#toRecord(row);
  }

  /** The token carrying this JWT ID (RFC 7519 §4.1.7), or undefined. */
  async getByJti(jti: string): Promise<TokenRecord | undefined> {
    const row = await guard('reading a token', () =>
      this.#db.selectFrom('tokens').selectAll().where('jti', '=', jti).executeTakeFirst(),
    );
    return row === undefined ? undefined : this.#toRecord(row);
  }

  /** All tokens, or those of `filter.subject`; newest first (ties by id, descending). */
  async list(filter: { subject?: string } = {}): Promise<TokenRecord[]> {
    const rows = await guard('listing tokens', () => {
      let query = this.#db.selectFrom('tokens').selectAll();
      if (filter.subject !== undefined) query = query.where('subject', '=', filter.subject);
      return query.orderBy('created_at', 'desc').orderBy('id', 'desc').execute();
    });
    return rows.map((row) => this.#toRecord(row));
  }

  /**
   * Marks the token and every token minted from it (transitively, through `parent_id`) revoked at
   * `at` (epoch ms), in one statement. A token revoked before keeps its first revocation time.
   *
   * @returns false when no token has this id.
   */
  async revoke(id: string, at: number): Promise<boolean> {
    // `union` (not `union all`) ends the recursion even on a corrupt, cyclic chain.
    const result = await guard('revoking a token', () =>
      this.#db
        .updateTable('tokens')
        .set({ revoked_at: sql<number>`coalesce(revoked_at, ${at})` })
        .where(
          sql<boolean>`id in (with recursive minted(id) as (select id from tokens where id = ${id} union select t.id from tokens t join minted m on t.parent_id = m.id) select id from minted)`,
        )
        .executeTakeFirst(),
    );
    return result.numUpdatedRows > 0n;
  }

  /**
   * The tokens `id` was minted from, nearest first, at most {@link MAX_TOKEN_LINEAGE}; one
   * recursive query.
   */
  async ancestors(id: string): Promise<TokenRecord[]> {
    const { rows } = await guard('reading a token lineage', () =>
      sql<Selectable<TokensTable> & { depth: number | string }>`
        with recursive lineage(id, parent_id, depth) as (
          select id, parent_id, 0 from tokens where id = ${id}
          union all
          select t.id, t.parent_id, l.depth + 1 from tokens t join lineage l on t.id = l.parent_id
          where l.depth < ${MAX_TOKEN_LINEAGE}
        )
        select t.*, l.depth from tokens t join lineage l on t.id = l.id where l.depth > 0 order by l.depth`.execute(
        this.#db,
      ),
    );
    return rows.map((row) => this.#toRecord(row));
  }

  /** Records use at `at` (epoch ms) in memory; written within `flushInterval` ms. Never throws. */
  touch(id: string, at: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    const previous = this.#pending.get(id);
    if (previous === undefined || at > previous) this.#pending.set(id, at);
    this.#schedule();
    return Promise.resolve();
  }

  /**
   * Writes every pending touch now, in one transaction, after any write already under way.
   *
   * @throws {@link GatewayError} `SWB_ERR_STORE_UNAVAILABLE` when the write fails (the times stay
   *   pending and are retried by the next flush).
   */
  flush(): Promise<void> {
    if (this.#timer !== undefined) {
      clearTimeout(this.#timer);
      this.#timer = undefined;
    }
    const run = this.#flushing.then(() => this.#writePending());
    this.#flushing = run.catch(() => undefined);
    return run;
  }

  /** Stops the timer and writes pending touches; later touches are ignored. Never throws. */
  async close(): Promise<void> {
    this.#closed = true;
    try {
      await this.flush();
    } catch (err) {
      this.#logger.warn({ err, tokens: this.#pending.size }, 'could not record token last-used times on close');
    }
  }

  #schedule(): void {
    if (this.#timer !== undefined || this.#closed) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.flush().catch((err: unknown) =>
        this.#logger.warn({ err, tokens: this.#pending.size }, 'could not record token last-used times; will retry'),
      );
    }, this.#flushInterval);
    this.#timer.unref();
  }

  async #writePending(): Promise<void> {
    if (this.#pending.size === 0) return;
    const batch = this.#pending;
    this.#pending = new Map();
    try {
      await this.#db.transaction().execute(async (trx) => {
        for (const [id, at] of batch) {
          await trx
            .updateTable('tokens')
            .set({ last_used_at: at })
            .where('id', '=', id)
            .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
            .execute();
        }
      });
    } catch (err) {
      for (const [id, at] of batch) {
        const newer = this.#pending.get(id);
        if (newer === undefined || newer < at) this.#pending.set(id, at);
      }
      this.#schedule();
      throw toStoreError(err, 'recording token last-used times');
    }
  }

  #toRecord(row: Selectable<TokensTable>): TokenRecord {
    const record: TokenRecord = {
      id: row.id,
      jti: row.jti,
      name: row.name,
      tokenHash: row.token_hash,
      subject: row.subject,
      permissions: parseJson<string[]>(row.permissions),
      servers: parseJson<string[]>(row.servers),
      tools: parseJson<string[]>(row.tools),
      createdAt: Number(row.created_at),
    };
    if (row.expires_at !== null) record.expiresAt = Number(row.expires_at);
    if (row.revoked_at !== null) record.revokedAt = Number(row.revoked_at);
    const stored = row.last_used_at === null ? undefined : Number(row.last_used_at);
    const pending = this.#pending.get(row.id);
    const lastUsedAt = pending !== undefined && (stored === undefined || pending > stored) ? pending : stored;
    if (lastUsedAt !== undefined) record.lastUsedAt = lastUsedAt;
    if (row.created_by !== null) record.createdBy = row.created_by;
    if (row.parent_id !== null) record.parentId = row.parent_id;
    return record;
  }
}

/** {@link ServerStore} over the `servers` table. */
export class KyselyServerStore implements ServerStore {
  #db: Kysely<StoreTables>;

  constructor(db: Kysely<StoreTables>) {
    this.#db = db;
  }

  /** Every stored server, by name. */
  async list(): Promise<StoredServer[]> {
    const rows = await guard('listing servers', () =>
      this.#db.selectFrom('servers').selectAll().orderBy('name').execute(),
    );
    return rows.map(toServer);
  }

  /** The stored server with this name, or undefined. */
  async get(name: string): Promise<StoredServer | undefined> {
    const row = await guard('reading a server', () =>
      this.#db.selectFrom('servers').selectAll().where('name', '=', name).executeTakeFirst(),
    );
    return row === undefined ? undefined : toServer(row);
  }

  /** Inserts the server, or replaces every field of the one with the same name. */
  async put(server: StoredServer): Promise<void> {
    const row = {
      config: JSON.stringify(server.config),
      created_at: server.createdAt,
      updated_at: server.updatedAt,
      created_by: server.createdBy ?? null,
    };
    await guard('storing a server', () =>
      this.#db
        .insertInto('servers')
        .values({ name: server.name, ...row })
        .onConflict((oc) => oc.column('name').doUpdateSet(row))
        .execute(),
    );
  }

  /** Deletes the server; false when the name is unknown. */
  async delete(name: string): Promise<boolean> {
    const result = await guard('deleting a server', () =>
      this.#db.deleteFrom('servers').where('name', '=', name).executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }
}

/** {@link SettingsStore} over the `settings` table; values are stored as JSON text. */
export class KyselySettingsStore implements SettingsStore {
  #db: Kysely<StoreTables>;
  #clock: () => number;

  constructor(db: Kysely<StoreTables>, clock: () => number) {
    this.#db = db;
    this.#clock = clock;
  }

  /** The value stored under `key` (parsed JSON), or undefined. The type parameter is not checked. */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    const row = await guard('reading a setting', () =>
      this.#db.selectFrom('settings').select('value').where('key', '=', key).executeTakeFirst(),
    );
    return row === undefined ? undefined : parseJson<T>(row.value);
  }

  /**
   * Stores `value` as JSON under `key`, replacing any previous value; `undefined` deletes the key.
   *
   * @throws TypeError for values JSON cannot represent (a function, a BigInt, a cycle).
   */
  async set(key: string, value: unknown): Promise<void> {
    if (value === undefined) {
      await guard('deleting a setting', () => this.#db.deleteFrom('settings').where('key', '=', key).execute());
      return;
    }
    const text = JSON.stringify(value) as string | undefined;
    if (text === undefined) throw new TypeError(`setting ${JSON.stringify(key)}: value cannot be stored as JSON`);
    const updatedAt = this.#clock();
    await guard('storing a setting', () =>
      this.#db
        .insertInto('settings')
        .values({ key, value: text, updated_at: updatedAt })
        .onConflict((oc) => oc.column('key').doUpdateSet({ value: text, updated_at: updatedAt }))
        .execute(),
    );
  }
}

function toServer(row: Selectable<ServersTable>): StoredServer {
  const server: StoredServer = {
    name: row.name,
    config: parseJson<Record<string, unknown>>(row.config),
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
  if (row.created_by !== null) server.createdBy = row.created_by;
  return server;
}

function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}

/** Runs one store operation, turning driver errors into {@link GatewayError}s. */
async function guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    throw toStoreError(err, what);
  }
}

/**
 * Maps a driver error: unique violations (SQLite `SQLITE_CONSTRAINT_UNIQUE` /
 * `SQLITE_CONSTRAINT_PRIMARYKEY`, PostgreSQL SQLSTATE 23505) → `SWB_ERR_STORE_CONFLICT`, anything
 * else → `SWB_ERR_STORE_UNAVAILABLE`. GatewayErrors pass through.
 */
function toStoreError(err: unknown, what: string): GatewayError {
  if (isGatewayError(err)) return err;
  const code = (err as { code?: unknown } | null)?.code;
  if (code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE' || code === 'SQLITE_CONSTRAINT_PRIMARYKEY') {
    return new GatewayError('SWB_ERR_STORE_CONFLICT', `${what}: an entry with the same key exists already`, {
      cause: err,
    });
  }
  const reason = err instanceof Error ? err.message : String(err);
  return new GatewayError('SWB_ERR_STORE_UNAVAILABLE', `database error while ${what}: ${reason}`, { cause: err });
}
