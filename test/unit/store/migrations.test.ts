/**
 * The in-code migrations, run on an in-memory SQLite database (both dialects are exercised in
 * test/integration/store).
 */
import BetterSqlite3 from 'better-sqlite3';
import { Kysely, SqliteDialect, sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MIGRATIONS, migrateToLatest } from '../../../src/store/migrations.js';

let db: Kysely<unknown>;

beforeEach(() => {
  db = new Kysely<unknown>({ dialect: new SqliteDialect({ database: new BetterSqlite3(':memory:') }) });
});

afterEach(async () => {
  await db.destroy();
});

describe('migrations', () => {
  it('are named NNNN_what so that name order is application order', () => {
    const names = Object.keys(MIGRATIONS);
    expect(names.length).toBeGreaterThan(0);
    for (const name of names) expect(name).toMatch(/^\d{4}_[a-z0-9_]+$/);
    expect(names).toEqual([...names].sort());
  });

  it('create the tokens, servers, settings, usage_log, tool_pins, upstream_tokens and upstream_catalogs tables with the documented columns', async () => {
    expect(await migrateToLatest(db)).toEqual(Object.keys(MIGRATIONS));
    const tables = await db.introspection.getTables();
    const columns = Object.fromEntries(tables.map((t) => [t.name, t.columns.map((c) => c.name)]));
    expect(Object.keys(columns).sort()).toEqual([
      'servers',
      'settings',
      'tokens',
      'tool_pins',
      'upstream_catalogs',
      'upstream_tokens',
      'usage_log',
    ]);
    expect(columns.tokens).toEqual([
      'id',
      'jti',
      'name',
      'token_hash',
      'subject',
      'permissions',
      'servers',
      'tools',
      'created_at',
      'expires_at',
      'revoked_at',
      'last_used_at',
      'created_by',
      'parent_id',
    ]);
    expect(columns.servers).toEqual(['name', 'config', 'created_at', 'updated_at', 'created_by']);
    expect(columns.settings).toEqual(['key', 'value', 'updated_at']);
    expect(columns.tool_pins).toEqual([
      'server',
      'tool',
      'hash',
      'changed_hash',
      'pinned_at',
      'changed_at',
      'approved_by',
    ]);
    expect(columns.upstream_tokens).toEqual([
      'principal',
      'server',
      'key_id',
      'access_token',
      'refresh_token',
      'expires_at',
      'scopes',
      'upstream_subject',
      'created_at',
      'updated_at',
      'last_used_at',
    ]);
    expect(columns.upstream_catalogs).toEqual(['server', 'fingerprint', 'initialize_result', 'catalog', 'updated_at']);
  });

  it('index tokens by subject and by parent', async () => {
    await migrateToLatest(db);
    const { rows } = await sql<{ name: string }>`select name from pragma_index_list('tokens')`.execute(db);
    expect(rows.map((r) => r.name)).toContain('tokens_subject_created_at_idx');
    expect(rows.map((r) => r.name)).toContain('tokens_parent_id_idx');
  });

  it('report nothing to do the second time', async () => {
    await migrateToLatest(db);
    expect(await migrateToLatest(db)).toEqual([]);
  });
});
