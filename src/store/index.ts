/**
 * Persistence: the storage ports and their Kysely implementation over SQLite and PostgreSQL
 * (docs/storage.md).
 *
 * @module
 */
export type { Database, ServerStore, SettingsStore, StoredServer, TokenRecord, TokenStore } from './types.js';
export {
  DEFAULT_BUSY_TIMEOUT,
  DEFAULT_CONNECT_TIMEOUT,
  DEFAULT_DATABASE_FILE,
  DEFAULT_DATA_DIR_NAME,
  DEFAULT_POOL_SIZE,
  openDatabase,
  parseDatabaseUrl,
  redactUrl,
  resolveDataDir,
  type DatabaseLocation,
  type OpenDatabaseOptions,
} from './database.js';
export {
  DEFAULT_PING_TIMEOUT,
  DEFAULT_TOUCH_FLUSH_INTERVAL,
  KyselyDatabase,
  KyselyServerStore,
  KyselySettingsStore,
  KyselyTokenStore,
  MAX_TOKEN_LINEAGE,
  type KyselyDatabaseOptions,
  type KyselyTokenStoreOptions,
  type StoreTables,
} from './kysely-store.js';
export { MIGRATIONS, migrateToLatest, migrationProvider, type MigrateToLatestOptions } from './migrations.js';
