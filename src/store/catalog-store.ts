/**
 * {@link CatalogStore} over the `upstream_catalogs` table (migration `0006_upstream_catalogs`),
 * with Kysely queries that run unchanged on SQLite and PostgreSQL (the `initialize` result and
 * the lists as JSON text, times as `bigint` epoch ms read back through `Number`).
 *
 * @module
 */
import type { ColumnType, Kysely } from 'kysely';
import { GatewayError, isGatewayError } from '../errors.js';
import type { CatalogStore, StoredCatalog } from './types.js';

/** Row shape of the `upstream_catalogs` table. */
export interface UpstreamCatalogsTable {
  server: string;
  fingerprint: string;
  /** JSON text of the `initialize` result. */
  initialize_result: string;
  /** JSON text of `{tools, prompts, resources, resourceTemplates}`. */
  catalog: string;
  updated_at: ColumnType<number | string, number, number>;
}

/** The tables this store uses, as Kysely sees them. */
// A type alias, not an interface: Kysely's `withTables` needs an index signature.
export type CatalogTables = {
  upstream_catalogs: UpstreamCatalogsTable;
};

type Lists = Pick<StoredCatalog, 'tools' | 'prompts' | 'resources' | 'resourceTemplates'>;

/** The Kysely implementation of {@link CatalogStore}. */
export class KyselyCatalogStore implements CatalogStore {
  readonly #db: Kysely<CatalogTables>;

  constructor(db: Kysely<CatalogTables>) {
    this.#db = db;
  }

  async get(server: string): Promise<StoredCatalog | undefined> {
    const row = await guard('reading a stored catalog', () =>
      this.#db.selectFrom('upstream_catalogs').selectAll().where('server', '=', server).executeTakeFirst(),
    );
    if (row === undefined) return undefined;
    const lists = JSON.parse(row.catalog) as Partial<Lists>;
    return {
      server: row.server,
      fingerprint: row.fingerprint,
      initializeResult: JSON.parse(row.initialize_result) as Record<string, unknown>,
      tools: lists.tools ?? [],
      prompts: lists.prompts ?? [],
      resources: lists.resources ?? [],
      resourceTemplates: lists.resourceTemplates ?? [],
      updatedAt: Number(row.updated_at),
    };
  }

  async put(catalog: StoredCatalog): Promise<void> {
    const lists: Lists = {
      tools: catalog.tools,
      prompts: catalog.prompts,
      resources: catalog.resources,
      resourceTemplates: catalog.resourceTemplates,
    };
    const values = {
      fingerprint: catalog.fingerprint,
      initialize_result: JSON.stringify(catalog.initializeResult),
      catalog: JSON.stringify(lists),
      updated_at: catalog.updatedAt,
    };
    await guard('storing a catalog', () =>
      this.#db
        .insertInto('upstream_catalogs')
        .values({ server: catalog.server, ...values })
        .onConflict((oc) => oc.column('server').doUpdateSet(values))
        .execute(),
    );
  }

  async delete(server: string): Promise<void> {
    await guard('deleting a stored catalog', () =>
      this.#db.deleteFrom('upstream_catalogs').where('server', '=', server).execute(),
    );
  }
}

async function guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (isGatewayError(err)) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new GatewayError('SWB_ERR_STORE_UNAVAILABLE', `database error while ${what}: ${reason}`, { cause: err });
  }
}
