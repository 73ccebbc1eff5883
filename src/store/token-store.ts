/**
 * {@link TokenStore} over the `tokens` table, with last-used times batched in memory and written
 * by one timer.
 *
 * @module
 */
import { sql, type Kysely, type Selectable } from 'kysely';
import type { Logger } from '../observability/logger.js';
import { guard, toStoreError } from './store-errors.js';
import { parseJson, type StoreTables, type TokensTable } from './store-tables.js';
import type { TokenRecord, TokenStore } from './types.js';

/** How many ancestors {@link KyselyTokenStore.ancestors} follows at most. */
export const MAX_TOKEN_LINEAGE = 64;

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
