/**
 * Row shapes of the tables created by `./migrations.ts`, as the Kysely stores see them, and the
 * reading of their stored JSON text. Times are `bigint` epoch milliseconds: pg returns int8 as a
 * string, so every time is read back through {@link Number}.
 *
 * @module
 */
import type { ColumnType } from 'kysely';

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

/** Parses a JSON text column. The type parameter is not checked. */
export function parseJson<T>(text: string): T {
  return JSON.parse(text) as T;
}
