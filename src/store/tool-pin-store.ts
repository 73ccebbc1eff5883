/**
 * {@link ToolPinStore} over the `tool_pins` table (migration `0004_tool_pins`), with Kysely
 * queries that run unchanged on SQLite and PostgreSQL (times as `bigint` epoch ms, read back
 * through `Number`).
 *
 * @module
 */
import type { ColumnType, Kysely, Selectable } from 'kysely';
import { GatewayError, isGatewayError } from '../errors.js';
import type { ToolPin, ToolPinStore } from './types.js';

type Millis = ColumnType<number | string, number, number>;
type NullableMillis = ColumnType<number | string | null, number | null, number | null>;

/** Row shape of the `tool_pins` table. */
export interface ToolPinsTable {
  server: string;
  tool: string;
  hash: string;
  changed_hash: string | null;
  pinned_at: Millis;
  changed_at: NullableMillis;
  approved_by: string | null;
}

/** The tables this store uses, as Kysely sees them. */
// A type alias, not an interface: Kysely's `withTables` needs an index signature.
export type ToolPinTables = {
  tool_pins: ToolPinsTable;
};

/** The Kysely implementation of {@link ToolPinStore}. */
export class KyselyToolPinStore implements ToolPinStore {
  readonly #db: Kysely<ToolPinTables>;

  constructor(db: Kysely<ToolPinTables>) {
    this.#db = db;
  }

  async list(server?: string): Promise<ToolPin[]> {
    const rows = await guard('listing tool pins', () => {
      let q = this.#db.selectFrom('tool_pins').selectAll();
      if (server !== undefined) q = q.where('server', '=', server);
      return q.orderBy('server').orderBy('tool').execute();
    });
    return rows.map(toPin);
  }

  async pin(server: string, tool: string, hash: string, at: number): Promise<ToolPin> {
    await guard('pinning a tool', () =>
      this.#db
        .insertInto('tool_pins')
        .values({ server, tool, hash, changed_hash: null, pinned_at: at, changed_at: null, approved_by: null })
        .onConflict((oc) => oc.columns(['server', 'tool']).doNothing())
        .execute(),
    );
    const row = await guard('reading a tool pin', () =>
      this.#db
        .selectFrom('tool_pins')
        .selectAll()
        .where('server', '=', server)
        .where('tool', '=', tool)
        .executeTakeFirstOrThrow(),
    );
    return toPin(row);
  }

  async seen(server: string, tool: string, hash: string, at: number): Promise<void> {
    await guard('recording a tool definition', async () => {
      // Back to the pinned definition: nothing is changed any more.
      await this.#db
        .updateTable('tool_pins')
        .set({ changed_hash: null, changed_at: null })
        .where('server', '=', server)
        .where('tool', '=', tool)
        .where('hash', '=', hash)
        .execute();
      // A new definition (not the one already recorded as changed): changed since now.
      await this.#db
        .updateTable('tool_pins')
        .set({ changed_hash: hash, changed_at: at })
        .where('server', '=', server)
        .where('tool', '=', tool)
        .where('hash', '<>', hash)
        .where((eb) => eb.or([eb('changed_hash', 'is', null), eb('changed_hash', '<>', hash)]))
        .execute();
    });
  }

  async approve(server: string, tool: string | undefined, by: string, at: number): Promise<string[]> {
    return guard('approving tool definitions', () =>
      this.#db.transaction().execute(async (trx) => {
        let q = trx
          .selectFrom('tool_pins')
          .select(['tool', 'changed_hash'])
          .where('server', '=', server)
          .where('changed_hash', 'is not', null);
        if (tool !== undefined) q = q.where('tool', '=', tool);
        const rows = await q.orderBy('tool').execute();
        for (const row of rows) {
          await trx
            .updateTable('tool_pins')
            .set({ hash: row.changed_hash!, changed_hash: null, changed_at: null, pinned_at: at, approved_by: by })
            .where('server', '=', server)
            .where('tool', '=', row.tool)
            .execute();
        }
        return rows.map((r) => r.tool);
      }),
    );
  }
}

function toPin(row: Selectable<ToolPinsTable>): ToolPin {
  const pin: ToolPin = { server: row.server, tool: row.tool, hash: row.hash, pinnedAt: Number(row.pinned_at) };
  if (row.changed_hash !== null) pin.changedHash = row.changed_hash;
  if (row.changed_at !== null) pin.changedAt = Number(row.changed_at);
  if (row.approved_by !== null) pin.approvedBy = row.approved_by;
  return pin;
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
