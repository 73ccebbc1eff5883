/**
 * Schema migrations, kept in code (no migration files to ship) and written with Kysely's schema
 * builder so the same steps run on SQLite and PostgreSQL: text columns for ids and JSON, `bigint`
 * for epoch-millisecond times (INTEGER affinity on SQLite, int8 on PostgreSQL).
 *
 * Migrations are append-only: a released migration is never edited; later issues add new entries
 * (e.g. the usage log) with a higher number. Kysely records applied names in `kysely_migration`
 * and serialises concurrent runs with a lock (an advisory lock on PostgreSQL), so several replicas
 * starting at once migrate exactly once.
 *
 * @module
 */
import { PostgresAdapter, type Kysely } from 'kysely';
import { Migrator, type Migration, type MigrationProvider } from 'kysely/migration';
import { GatewayError } from '../errors.js';

/**
 * Every migration by name, applied in name order. Names are `NNNN_what`; never rename or edit an
 * entry once released, add a new one.
 */
export const MIGRATIONS: Readonly<Record<string, Migration>> = {
  '0001_tokens_servers_settings': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tokens')
        .addColumn('id', 'text', (c) => c.primaryKey())
        .addColumn('jti', 'text', (c) => c.notNull().unique())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('token_hash', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('permissions', 'text', (c) => c.notNull())
        .addColumn('servers', 'text', (c) => c.notNull())
        .addColumn('tools', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('expires_at', 'bigint')
        .addColumn('revoked_at', 'bigint')
        .addColumn('last_used_at', 'bigint')
        .addColumn('created_by', 'text')
        .execute();
      // Serves `list({ subject })` including its newest-first order.
      await db.schema
        .createIndex('tokens_subject_created_at_idx')
        .on('tokens')
        .columns(['subject', 'created_at'])
        .execute();

      await db.schema
        .createTable('servers')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('config', 'text', (c) => c.notNull())
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('created_by', 'text')
        .execute();

      await db.schema
        .createTable('settings')
        .addColumn('key', 'text', (c) => c.primaryKey())
        .addColumn('value', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('settings').execute();
      await db.schema.dropTable('servers').execute();
      await db.schema.dropTable('tokens').execute();
    },
  },
  /**
   * The usage log (docs/usage.md). Booleans are stored as integers 0/1 and latencies
   * as `double precision` (REAL affinity on SQLite) so both databases hold the same values.
   */
  '0002_usage': {
    async up(db: Kysely<unknown>): Promise<void> {
      // The only dialect-specific column: SQLite's AUTOINCREMENT is not PostgreSQL syntax.
      const postgres = db.getExecutor().adapter instanceof PostgresAdapter;
      await db.schema
        .createTable('usage_log')
        .addColumn('id', postgres ? 'bigserial' : 'integer', (c) =>
          postgres ? c.primaryKey() : c.primaryKey().autoIncrement(),
        )
        .addColumn('ts', 'bigint', (c) => c.notNull())
        .addColumn('token_id', 'text', (c) => c.notNull())
        .addColumn('jti', 'text', (c) => c.notNull())
        .addColumn('subject', 'text', (c) => c.notNull())
        .addColumn('endpoint', 'text', (c) => c.notNull())
        .addColumn('http_method', 'text', (c) => c.notNull())
        .addColumn('mcp_method', 'text')
        .addColumn('server', 'text')
        .addColumn('tool', 'text')
        .addColumn('http_status', 'integer', (c) => c.notNull())
        .addColumn('jsonrpc_error', 'integer')
        .addColumn('latency_ms', 'double precision', (c) => c.notNull())
        .addColumn('bytes_in', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('bytes_out', 'bigint', (c) => c.notNull().defaultTo(0))
        .addColumn('ip', 'text')
        .addColumn('user_agent', 'text')
        .addColumn('blocked', 'integer', (c) => c.notNull().defaultTo(0))
        .addColumn('block_reason', 'text')
        .execute();
      // Per-token analytics, retention purges and time series, per-server time series.
      await db.schema.createIndex('usage_log_token_id_ts_idx').on('usage_log').columns(['token_id', 'ts']).execute();
      await db.schema.createIndex('usage_log_ts_idx').on('usage_log').column('ts').execute();
      await db.schema.createIndex('usage_log_server_ts_idx').on('usage_log').columns(['server', 'ts']).execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('usage_log').execute();
    },
  },
  /**
   * Token delegation: the API token that minted a token through the admin API, so that revoking
   * it revokes everything minted from it (docs/security.md). Existing tokens have no parent.
   */
  '0003_token_parent': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('tokens').addColumn('parent_id', 'text').execute();
      // Serves the recursive walk from a token to the tokens minted from it (revocation).
      await db.schema.createIndex('tokens_parent_id_idx').on('tokens').column('parent_id').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropIndex('tokens_parent_id_idx').execute();
      await db.schema.alterTable('tokens').dropColumn('parent_id').execute();
    },
  },
  /**
   * Tool definition pins of `pinTools` guardrails (docs/guardrails.md): one row per (server,
   * tool), hex SHA-256 hashes, epoch-millisecond times.
   */
  '0004_tool_pins': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('tool_pins')
        .addColumn('server', 'text', (c) => c.notNull())
        .addColumn('tool', 'text', (c) => c.notNull())
        .addColumn('hash', 'text', (c) => c.notNull())
        .addColumn('changed_hash', 'text')
        .addColumn('pinned_at', 'bigint', (c) => c.notNull())
        .addColumn('changed_at', 'bigint')
        .addColumn('approved_by', 'text')
        .addPrimaryKeyConstraint('tool_pins_pk', ['server', 'tool'])
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('tool_pins').execute();
    },
  },
  /**
   * Per-user upstream OAuth tokens of `auth.type: oauth2-user` servers: one row per (principal,
   * server), token values sealed (AES-256-GCM, `key_id` names the key), scopes as JSON text,
   * epoch-millisecond times.
   */
  '0005_upstream_tokens': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('upstream_tokens')
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('server', 'text', (c) => c.notNull())
        .addColumn('key_id', 'text', (c) => c.notNull())
        .addColumn('access_token', 'text', (c) => c.notNull())
        .addColumn('refresh_token', 'text')
        .addColumn('expires_at', 'bigint')
        .addColumn('scopes', 'text', (c) => c.notNull())
        .addColumn('upstream_subject', 'text')
        .addColumn('created_at', 'bigint', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .addColumn('last_used_at', 'bigint')
        .addPrimaryKeyConstraint('upstream_tokens_pk', ['principal', 'server'])
        .execute();
      // Serves the admin listing by server and dropping a removed server's connections.
      await db.schema.createIndex('upstream_tokens_server_idx').on('upstream_tokens').column('server').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('upstream_tokens').execute();
    },
  },
  /**
   * The last catalog seen of each `start: lazy` upstream: one row per server, the `initialize`
   * result and the four lists as JSON text, the configuration's fingerprint, epoch-ms time.
   */
  '0006_upstream_catalogs': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema
        .createTable('upstream_catalogs')
        .addColumn('server', 'text', (c) => c.primaryKey())
        .addColumn('fingerprint', 'text', (c) => c.notNull())
        .addColumn('initialize_result', 'text', (c) => c.notNull())
        .addColumn('catalog', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'bigint', (c) => c.notNull())
        .execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.dropTable('upstream_catalogs').execute();
    },
  },
  /** The upstream identity a per-user credential used, per usage-log row (`NULL` otherwise). */
  '0007_usage_upstream_subject': {
    async up(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('usage_log').addColumn('upstream_subject', 'text').execute();
    },
    async down(db: Kysely<unknown>): Promise<void> {
      await db.schema.alterTable('usage_log').dropColumn('upstream_subject').execute();
    },
  },
};

/** A Kysely {@link MigrationProvider} serving {@link MIGRATIONS} from memory. */
export const migrationProvider: MigrationProvider = {
  getMigrations: () => Promise.resolve({ ...MIGRATIONS }),
};

/** Options for {@link migrateToLatest}. */
export interface MigrateToLatestOptions {
  /**
   * PostgreSQL schema holding Kysely's bookkeeping tables. Required on PostgreSQL whenever other
   * schemas of the same database may hold their own `kysely_migration` table: Kysely looks for
   * that table across all schemas unless told which one. Omit on SQLite.
   */
  schema?: string;
}

/**
 * Applies every pending migration of {@link MIGRATIONS}, in order.
 *
 * @returns the names applied by this call, in order; empty when the database was up to date.
 * Run it inside a transaction on SQLite (Kysely does not open one there); on PostgreSQL Kysely
 * runs the whole batch in one transaction under an advisory lock.
 *
 * @throws {@link GatewayError} `SWB_ERR_STORE_MIGRATION` naming the migration that failed (the
 *   driver error as `cause`).
 */
export async function migrateToLatest(db: Kysely<unknown>, options: MigrateToLatestOptions = {}): Promise<string[]> {
  const migrator = new Migrator({
    db,
    provider: migrationProvider,
    ...(options.schema === undefined ? {} : { migrationTableSchema: options.schema }),
  });
  const { error, results = [] } = await migrator.migrateToLatest();
  if (error !== undefined) {
    const failed = results.find((r) => r.status === 'Error')?.migrationName;
    const reason = error instanceof Error ? error.message : JSON.stringify(error);
    throw new GatewayError(
      'SWB_ERR_STORE_MIGRATION',
      failed === undefined ? `database migration failed: ${reason}` : `database migration ${failed} failed: ${reason}`,
      { cause: error },
    );
  }
  return results.filter((r) => r.status === 'Success').map((r) => r.migrationName);
}
