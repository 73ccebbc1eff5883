/**
 * {@link ServerStore} over the `servers` table (runtime servers; each one's configuration entry is
 * stored as JSON text).
 *
 * @module
 */
import type { Kysely, Selectable } from 'kysely';
import { guard } from './store-errors.js';
import { parseJson, type ServersTable, type StoreTables } from './store-tables.js';
import type { ServerStore, StoredServer } from './types.js';

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
