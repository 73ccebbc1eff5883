/**
 * Opening the database: picks SQLite or PostgreSQL from a URL (`SWITCHBOARD_DATABASE_URL`),
 * opens it with the right pragmas or pool, and returns the {@link Database} ports.
 * Opening never migrates: the gateway calls `migrate()` on start, and `switchboard migrate` does
 * it on demand (docs/storage.md).
 *
 * @module
 */
import { mkdir } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { KyselyDatabase, type StoreTables } from './kysely-store.js';
import { SqliteUsageWriter } from './sqlite-usage-writer.js';
import type { Database } from './types.js';

/** File name of the embedded SQLite database inside the data directory. */
export const DEFAULT_DATABASE_FILE = 'switchboard.db';

/** Name of the data directory created next to the config file when `dataDir` is not set. */
export const DEFAULT_DATA_DIR_NAME = '.switchboard';

/** Default for {@link OpenDatabaseOptions.poolSize}. */
export const DEFAULT_POOL_SIZE = 10;

/** Default for {@link OpenDatabaseOptions.busyTimeout}, ms. */
export const DEFAULT_BUSY_TIMEOUT = 5_000;

/** Default for {@link OpenDatabaseOptions.connectTimeout}, ms. */
export const DEFAULT_CONNECT_TIMEOUT = 5_000;

/** Options for {@link openDatabase}. */
export interface OpenDatabaseOptions {
  /**
   * Where the data lives (see {@link parseDatabaseUrl} for the forms). Default
   * `SWITCHBOARD_DATABASE_URL` from `env`; when that is unset or empty too, the SQLite file
   * `<dataDir>/switchboard.db`.
   */
  url?: string;
  /** Data directory (absolute, or relative to the current directory); created when the default file is used. */
  dataDir: string;
  logger: Logger;
  /**
   * PostgreSQL only: a schema to use instead of the connection's default. Created if missing and
   * set as `search_path` on every pooled connection; lower-case letters, digits and `_`, not
   * starting with a digit, at most 63 characters. Tests use a unique schema per run.
   */
  schema?: string;
  /** Where `SWITCHBOARD_DATABASE_URL` is read. Default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  /** PostgreSQL: maximum pooled connections. Default 10. */
  poolSize?: number;
  /** PostgreSQL: how long to wait for a connection, ms. Default 5000. */
  connectTimeout?: number;
  /** SQLite: how long a writer waits for another connection's lock (`busy_timeout`), ms. Default 5000. */
  busyTimeout?: number;
  /** How long `tokens.touch()` times are held before one batched write, ms. Default 1000. */
  touchFlushInterval?: number;
  /** Timeout of `ping()`, ms. Default 5000. */
  pingTimeout?: number;
  /** Clock for `updated_at` columns, epoch ms. Default `Date.now`. */
  clock?: () => number;
}

/** A database location parsed from a URL by {@link parseDatabaseUrl}. */
export type DatabaseLocation =
  | {
      dialect: 'sqlite';
      /** Absolute file path, or `:memory:`. */
      path: string;
      /** True when no URL was given and the file is the default one in the data directory. */
      isDefault: boolean;
    }
  | {
      dialect: 'postgres';
      /** The connection URL as given (it may carry a password: print {@link redactUrl} of it). */
      url: string;
    };

/** PostgreSQL schema names accepted by {@link OpenDatabaseOptions.schema}. */
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

/**
 * Works out where the data lives.
 *
 * - unset or empty → SQLite file `<dataDir>/switchboard.db`;
 * - `:memory:` (also `sqlite::memory:`) → an in-memory SQLite database, gone on close;
 * - `postgres://…` / `postgresql://…` → PostgreSQL (any `pg` connection-string parameter works,
 *   e.g. `?sslmode=require` or `?options=-c%20search_path%3Dswitchboard`);
 * - `sqlite:PATH`, `sqlite://PATH` (so `sqlite:///abs/file.db`), `file:PATH`, `file:///abs/file.db`
 *   or a plain path → SQLite file. Relative paths are resolved against the current directory.
 *
 * @param url - the URL; `undefined` or `''` for the default.
 * @param dataDir - the data directory, used for the default file.
 * @throws {@link GatewayError} `SWB_ERR_CONFIG_INVALID` for any other scheme (`mysql://`, …) or an
 *   empty path.
 */
export function parseDatabaseUrl(url: string | undefined, dataDir: string): DatabaseLocation {
  if (url === undefined || url.trim() === '') {
    return { dialect: 'sqlite', path: resolve(dataDir, DEFAULT_DATABASE_FILE), isDefault: true };
  }
  const value = url.trim();
  if (/^postgres(ql)?:\/\//i.test(value)) return { dialect: 'postgres', url: value };

  let path: string;
  const scheme = /^([a-z][a-z0-9+.-]+):/i.exec(value)?.[1]?.toLowerCase();
  if (scheme === undefined) {
    // No scheme (single letters are Windows drive letters): a plain path.
    path = value;
  } else if (scheme === 'sqlite') {
    path = value.slice(value.startsWith('sqlite://') ? 'sqlite://'.length : 'sqlite:'.length);
  } else if (scheme === 'file') {
    path = value.startsWith('file://') ? fileURLToPath(value) : value.slice('file:'.length);
  } else {
    throw new GatewayError(
      'SWB_ERR_CONFIG_INVALID',
      `unsupported database URL scheme "${scheme}:" in ${redactUrl(value)}: use a file path, sqlite:PATH, :memory: or postgres://…`,
    );
  }
  if (path === '') {
    throw new GatewayError('SWB_ERR_CONFIG_INVALID', `database URL ${JSON.stringify(value)} names no file`);
  }
  if (path === ':memory:') return { dialect: 'sqlite', path, isDefault: false };
  return { dialect: 'sqlite', path: resolve(path), isDefault: false };
}

/** The URL with any password replaced by `***` (safe to log and print). */
export function redactUrl(url: string): string {
  try {
    const parsed = new URL(url);
    if (parsed.password === '') return url;
    parsed.password = '***';
    return parsed.toString();
  } catch {
    return url.replace(/\/\/([^:/@]*):[^@/]*@/, '//$1:***@');
  }
}

/**
 * The data directory of a loaded configuration: `dataDir` when set (`loadConfigFile` has already
 * made it absolute against the file's directory), else `.switchboard` next to the config file,
 * else `.switchboard` in the current directory (in-memory config).
 */
export function resolveDataDir(config: { dataDir?: string | undefined; source?: string | undefined }): string {
  if (config.dataDir !== undefined) return isAbsolute(config.dataDir) ? config.dataDir : resolve(config.dataDir);
  const base = config.source === undefined ? process.cwd() : dirname(config.source);
  return join(base, DEFAULT_DATA_DIR_NAME);
}

/**
 * Opens the database named by `options.url` (see {@link parseDatabaseUrl}). Does not migrate:
 * call `migrate()` before using the stores.
 *
 * SQLite: WAL journal (readers never block the writer), `busy_timeout`, `foreign_keys = ON`;
 * the default file's directory is created. PostgreSQL: a `pg.Pool` (10 connections by default)
 * whose idle-connection errors are logged rather than crashing the process; one connection is
 * made here so a wrong URL fails at startup, not on the first request.
 *
 * @throws {@link GatewayError} `SWB_ERR_CONFIG_INVALID` for an unsupported URL or schema name;
 *   `SWB_ERR_STORE_UNAVAILABLE` when the file cannot be opened or PostgreSQL cannot be reached.
 */
export async function openDatabase(options: OpenDatabaseOptions): Promise<Database> {
  const env = options.env ?? process.env;
  const location = parseDatabaseUrl(options.url ?? env.SWITCHBOARD_DATABASE_URL, options.dataDir);
  const common = {
    logger: options.logger,
    ...(options.touchFlushInterval === undefined ? {} : { touchFlushInterval: options.touchFlushInterval }),
    ...(options.pingTimeout === undefined ? {} : { pingTimeout: options.pingTimeout }),
    ...(options.clock === undefined ? {} : { clock: options.clock }),
  };
  if (location.dialect === 'sqlite') {
    const busyTimeout = options.busyTimeout ?? DEFAULT_BUSY_TIMEOUT;
    const db = await openSqlite(location.path, location.isDefault, busyTimeout);
    options.logger.debug({ dialect: 'sqlite', path: location.path }, 'database opened');
    // A file gets a second connection on its own thread for the usage log (never `:memory:`,
    // whose second connection would be another, empty database).
    const usageWriter =
      location.path === ':memory:' ? undefined : new SqliteUsageWriter({ path: location.path, busyTimeout });
    return new KyselyDatabase({
      ...common,
      db,
      dialect: 'sqlite',
      location: location.path,
      ...(usageWriter === undefined ? {} : { usageWriter }),
    });
  }
  const db = await openPostgres(location.url, options);
  const printable = redactUrl(location.url);
  options.logger.debug({ dialect: 'postgres', url: printable, schema: options.schema }, 'database opened');
  return new KyselyDatabase({
    ...common,
    db,
    dialect: 'postgres',
    location: options.schema === undefined ? printable : `${printable} (schema ${options.schema})`,
    ...(options.schema === undefined ? {} : { schema: options.schema }),
  });
}

async function openSqlite(path: string, isDefault: boolean, busyTimeout: number): Promise<Kysely<StoreTables>> {
  // Loaded on demand: a PostgreSQL deployment never needs the native addon.
  const { default: BetterSqlite3 } = await import('better-sqlite3');
  let sqlite: InstanceType<typeof BetterSqlite3> | undefined;
  try {
    if (isDefault) await mkdir(dirname(path), { recursive: true });
    sqlite = new BetterSqlite3(path);
    if (path !== ':memory:') sqlite.pragma('journal_mode = WAL');
    sqlite.pragma(`busy_timeout = ${Math.max(0, Math.floor(busyTimeout))}`);
    sqlite.pragma('foreign_keys = ON');
  } catch (cause) {
    sqlite?.close();
    throw new GatewayError('SWB_ERR_STORE_UNAVAILABLE', `cannot open the SQLite database ${path}: ${message(cause)}`, {
      cause,
    });
  }
  return new Kysely<StoreTables>({ dialect: new SqliteDialect({ database: sqlite }) });
}

async function openPostgres(url: string, options: OpenDatabaseOptions): Promise<Kysely<StoreTables>> {
  const schema = options.schema;
  if (schema !== undefined && !SCHEMA_NAME.test(schema)) {
    throw new GatewayError(
      'SWB_ERR_CONFIG_INVALID',
      `invalid PostgreSQL schema name ${JSON.stringify(schema)}: use lower-case letters, digits and _ (at most 63)`,
    );
  }
  const { default: pg } = await import('pg');
  const pool = new pg.Pool({
    connectionString: url,
    max: options.poolSize ?? DEFAULT_POOL_SIZE,
    connectionTimeoutMillis: options.connectTimeout ?? DEFAULT_CONNECT_TIMEOUT,
    idleTimeoutMillis: 30_000,
    application_name: 'switchboard',
  });
  // Without a listener, an idle connection dropped by the server (restart, failover) would be an
  // unhandled 'error' event and end the process; the pool replaces the connection on next use.
  pool.on('error', (err) => options.logger.warn({ err }, 'idle PostgreSQL connection failed'));
  try {
    if (schema === undefined) await pool.query('select 1');
    else await createSchema(pool, schema);
  } catch (cause) {
    await pool.end().catch(() => undefined);
    throw new GatewayError(
      'SWB_ERR_STORE_UNAVAILABLE',
      `cannot use PostgreSQL at ${redactUrl(url)}: ${message(cause)}`,
      { cause },
    );
  }
  return new Kysely<StoreTables>({
    dialect: new PostgresDialect({
      pool,
      ...(schema === undefined
        ? {}
        : {
            onCreateConnection: async (connection) => {
              await connection.executeQuery(CompiledQuery.raw(`set search_path to "${schema}"`));
            },
          }),
    }),
  });
}

/**
 * `create schema if not exists`, safe when several processes run it at once: PostgreSQL checks
 * "not exists" before taking a lock, so a concurrent creator can still fail with
 * `unique_violation` (23505, on `pg_namespace`) or `duplicate_schema` (42P06). Either means the
 * schema now exists, which is all this needs.
 */
async function createSchema(pool: { query(text: string): Promise<unknown> }, schema: string): Promise<void> {
  try {
    // The schema name is validated by the caller, so it can be spliced into the statement safely.
    await pool.query(`create schema if not exists "${schema}"`);
  } catch (err) {
    const code = (err as { code?: unknown }).code;
    if (code !== '23505' && code !== '42P06') throw err;
  }
}

function message(err: unknown): string {
  if (err instanceof AggregateError && err.errors.length > 0) return err.errors.map(message).join('; ');
  if (err instanceof Error) return err.message || ((err as { code?: string }).code ?? err.name);
  return String(err);
}
