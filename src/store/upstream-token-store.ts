/**
 * {@link UpstreamTokenStore} over the `upstream_tokens` table (migration `0005_upstream_tokens`),
 * with Kysely queries that run unchanged on SQLite and PostgreSQL (times as `bigint` epoch ms,
 * read back through `Number`; scopes as JSON text). The store only moves sealed values: sealing
 * and opening is the token vault's (`src/auth/token-vault.ts`).
 *
 * @module
 */
import type { ColumnType, Kysely, Selectable } from 'kysely';
import { guard } from './store-errors.js';
import type { StoredUpstreamToken, UpstreamTokenStore } from './types.js';

type Millis = ColumnType<number | string, number, number>;
type NullableMillis = ColumnType<number | string | null, number | null, number | null>;

/** Row shape of the `upstream_tokens` table. */
export interface UpstreamTokensTable {
  principal: string;
  server: string;
  key_id: string;
  access_token: string;
  refresh_token: string | null;
  expires_at: NullableMillis;
  /** JSON array of strings. */
  scopes: string;
  upstream_subject: string | null;
  created_at: Millis;
  updated_at: Millis;
  last_used_at: NullableMillis;
}

/** The tables this store uses, as Kysely sees them. */
// A type alias, not an interface: Kysely's `withTables` needs an index signature.
export type UpstreamTokenTables = {
  upstream_tokens: UpstreamTokensTable;
};

/** The Kysely implementation of {@link UpstreamTokenStore}. */
export class KyselyUpstreamTokenStore implements UpstreamTokenStore {
  readonly #db: Kysely<UpstreamTokenTables>;

  constructor(db: Kysely<UpstreamTokenTables>) {
    this.#db = db;
  }

  async get(principal: string, server: string): Promise<StoredUpstreamToken | undefined> {
    const row = await guard('reading upstream tokens', () =>
      this.#db
        .selectFrom('upstream_tokens')
        .selectAll()
        .where('principal', '=', principal)
        .where('server', '=', server)
        .executeTakeFirst(),
    );
    return row === undefined ? undefined : toRecord(row);
  }

  async put(record: StoredUpstreamToken): Promise<void> {
    const values = {
      key_id: record.keyId,
      access_token: record.accessToken,
      refresh_token: record.refreshToken ?? null,
      expires_at: record.expiresAt ?? null,
      scopes: JSON.stringify(record.scopes),
      upstream_subject: record.upstreamSubject ?? null,
      updated_at: record.updatedAt,
    };
    await guard('storing upstream tokens', () =>
      this.#db
        .insertInto('upstream_tokens')
        .values({
          principal: record.principal,
          server: record.server,
          ...values,
          created_at: record.createdAt,
          last_used_at: record.lastUsedAt ?? null,
        })
        .onConflict((oc) => oc.columns(['principal', 'server']).doUpdateSet(values))
        .execute(),
    );
  }

  async list(filter: { principal?: string; server?: string } = {}): Promise<StoredUpstreamToken[]> {
    const rows = await guard('listing upstream tokens', () => {
      let q = this.#db.selectFrom('upstream_tokens').selectAll();
      if (filter.principal !== undefined) q = q.where('principal', '=', filter.principal);
      if (filter.server !== undefined) q = q.where('server', '=', filter.server);
      return q.orderBy('principal').orderBy('server').execute();
    });
    return rows.map(toRecord);
  }

  async delete(principal: string, server: string): Promise<boolean> {
    const result = await guard('deleting upstream tokens', () =>
      this.#db
        .deleteFrom('upstream_tokens')
        .where('principal', '=', principal)
        .where('server', '=', server)
        .executeTakeFirst(),
    );
    return result.numDeletedRows > 0n;
  }

  async touch(principal: string, server: string, at: number): Promise<void> {
    await guard('recording an upstream token use', () =>
      this.#db
        .updateTable('upstream_tokens')
        .set({ last_used_at: at })
        .where('principal', '=', principal)
        .where('server', '=', server)
        .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', at)]))
        .execute(),
    );
  }
}

function toRecord(row: Selectable<UpstreamTokensTable>): StoredUpstreamToken {
  const record: StoredUpstreamToken = {
    principal: row.principal,
    server: row.server,
    keyId: row.key_id,
    accessToken: row.access_token,
    scopes: JSON.parse(row.scopes) as string[],
    createdAt: Number(row.created_at),
    updatedAt: Number(row.updated_at),
  };
  if (row.refresh_token !== null) record.refreshToken = row.refresh_token;
  if (row.expires_at !== null) record.expiresAt = Number(row.expires_at);
  if (row.upstream_subject !== null) record.upstreamSubject = row.upstream_subject;
  if (row.last_used_at !== null) record.lastUsedAt = Number(row.last_used_at);
  return record;
}
