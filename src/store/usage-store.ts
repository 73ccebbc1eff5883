/**
 * The {@link UsageStore} port over the `usage_log` table (migration `0002_usage`), with Kysely
 * queries that run on SQLite and PostgreSQL (docs/usage.md).
 *
 * Writes: the usage-log writer hands over batches; each becomes multi-row `INSERT`s of at most
 * {@link MAX_ROWS_PER_INSERT} rows (both databases cap bound parameters per statement), inside one
 * transaction when there is more than one statement.
 *
 * Reads: totals and top lists are plain `GROUP BY` queries. Latency percentiles are nearest-rank
 * on both databases: PostgreSQL's `percentile_disc`, and on SQLite the row at offset ⌈p·n⌉ − 1 of
 * the window's latencies in order — the same value. All reads of one summary run in one
 * transaction (repeatable read on PostgreSQL), so the numbers agree with each other.
 *
 * @module
 */
import { CompiledQuery, sql, type Kysely, type Transaction } from 'kysely';
import { GatewayError, isGatewayError } from '../errors.js';
import type { SqliteUsageWriter } from './sqlite-usage-writer.js';
import type {
  TokenUsage,
  TokenUsageQuery,
  UsageBucket,
  UsageCount,
  UsageRow,
  UsageSeriesQuery,
  UsageSeriesRow,
  UsageStore,
} from './types.js';
import { encodeRows, insertText, pushColumns, type UsageTables } from './usage-table.js';

export { MAX_USER_AGENT_LENGTH, type UsageLogTable, type UsageTables } from './usage-table.js';

/** Rows per `INSERT` statement: 18 parameters each stays far below SQLite's and PostgreSQL's caps. */
export const MAX_ROWS_PER_INSERT = 1_000;

/** Default for {@link TokenUsageQuery.top}. */
export const DEFAULT_TOP = 10;

/** Bucket widths of {@link UsageBucket}, ms. */
export const BUCKET_MS: Readonly<Record<UsageBucket, number>> = Object.freeze({
  minute: 60_000,
  hour: 3_600_000,
  day: 86_400_000,
});

const DAY_MS = 86_400_000;

/** Options for {@link KyselyUsageStore}. */
export interface KyselyUsageStoreOptions {
  dialect: 'sqlite' | 'postgres';
  /** Default end of {@link UsageStore.tokenUsage} windows, epoch ms. Default `Date.now`. */
  clock?: () => number;
  /**
   * SQLite only: runs the `INSERT`s on another thread (`./sqlite-usage-writer.ts`) instead of
   * through `db`, so a batch never blocks the event loop. Default: write through `db`.
   */
  writer?: Pick<SqliteUsageWriter, 'run'>;
}

/** {@link UsageStore} over the `usage_log` table of either database. */
export class KyselyUsageStore implements UsageStore {
  #db: Kysely<UsageTables>;
  #postgres: boolean;
  #clock: () => number;
  #writer: Pick<SqliteUsageWriter, 'run'> | undefined;
  /** `INSERT` texts by row count (a few sizes recur: full batches, 1000-row chunks). */
  #insertTexts = new Map<number, string>();

  /**
   * @param db - a Kysely instance whose database has migration `0002_usage` applied (the store
   *   does not own it and never destroys it).
   */
  constructor(db: Kysely<UsageTables>, options: KyselyUsageStoreOptions) {
    this.#db = db;
    this.#postgres = options.dialect === 'postgres';
    this.#clock = options.clock ?? Date.now;
    this.#writer = options.writer;
  }

  /**
   * Stores the rows: one multi-row `INSERT` per {@link MAX_ROWS_PER_INSERT} rows, all in one
   * transaction when there are several (a single statement is atomic by itself). With a
   * {@link KyselyUsageStoreOptions.writer} they run on its thread.
   *
   * @throws {@link GatewayError} `SWB_ERR_STORE_UNAVAILABLE` when the write fails; nothing is stored.
   */
  async insert(rows: readonly UsageRow[]): Promise<void> {
    if (rows.length === 0) return;
    await guard('recording usage', async () => {
      if (this.#writer !== undefined) {
        const statements = [];
        for (let i = 0; i < rows.length; i += MAX_ROWS_PER_INSERT) {
          const chunk = rows.length <= MAX_ROWS_PER_INSERT ? rows : rows.slice(i, i + MAX_ROWS_PER_INSERT);
          statements.push({ sql: this.#insertText(chunk.length), encoded: encodeRows(chunk) });
        }
        await this.#writer.run(statements);
        return;
      }
      if (rows.length <= MAX_ROWS_PER_INSERT) {
        await this.#db.executeQuery(this.#insertQuery(rows));
        return;
      }
      await this.#db.transaction().execute(async (trx) => {
        for (let i = 0; i < rows.length; i += MAX_ROWS_PER_INSERT) {
          await trx.executeQuery(this.#insertQuery(rows.slice(i, i + MAX_ROWS_PER_INSERT)));
        }
      });
    });
  }

  /** Deletes rows whose `ts` is before `before` (epoch ms); returns how many. */
  async purge(before: number): Promise<number> {
    const result = await guard('purging old usage rows', () =>
      this.#db.deleteFrom('usage_log').where('ts', '<', Math.floor(before)).executeTakeFirst(),
    );
    return Number(result.numDeletedRows);
  }

  /**
   * The token's usage from `now − days` to `now` (both inclusive): totals, success rate,
   * nearest-rank latency p50/p95 and mean of the requests that were not blocked, bytes, and the
   * top endpoints, servers and tools (most requests first, ties by name).
   *
   * @throws {@link GatewayError} `SWB_ERR_STORE_UNAVAILABLE` when the database fails.
   */
  async tokenUsage(tokenId: string, query: TokenUsageQuery): Promise<TokenUsage> {
    const to = Math.floor(query.now ?? this.#clock());
    const from = Math.floor(to - query.days * DAY_MS);
    const top = Math.max(1, Math.floor(query.top ?? DEFAULT_TOP));
    return guard('reading token usage', () =>
      this.#readTransaction(async (trx) => {
        const window = trx
          .selectFrom('usage_log')
          .where('token_id', '=', tokenId)
          .where('ts', '>=', from)
          .where('ts', '<=', to);
        const totals = await window
          .select([sql<number | string>`count(*)`.as('total'), ...OUTCOME_SUMS])
          .executeTakeFirstOrThrow();
        const total = Number(totals.total);
        const success = num(totals.success);
        const errors = num(totals.errors);
        const served = window.where('blocked', '=', 0);
        let p50: number | null = null;
        let p95: number | null = null;
        if (success + errors > 0) {
          if (this.#postgres) {
            const row = await served
              .select([
                sql<number | string | null>`percentile_disc(0.5) within group (order by latency_ms)`.as('p50'),
                sql<number | string | null>`percentile_disc(0.95) within group (order by latency_ms)`.as('p95'),
              ])
              .executeTakeFirstOrThrow();
            p50 = nullableNum(row.p50);
            p95 = nullableNum(row.p95);
          } else {
            const at = async (p: number): Promise<number | null> => {
              const offset = Math.max(0, Math.ceil(p * (success + errors)) - 1);
              const row = await served
                .select('latency_ms')
                .orderBy('latency_ms')
                .limit(1)
                .offset(offset)
                .executeTakeFirst();
              return row === undefined ? null : Number(row.latency_ms);
            };
            p50 = await at(0.5);
            p95 = await at(0.95);
          }
        }
        const topOf = async (column: 'endpoint' | 'server'): Promise<UsageCount[]> => {
          const rows = await window
            .select([column, sql<number | string>`count(*)`.as('count')])
            .where(column, 'is not', null)
            .groupBy(column)
            .orderBy(sql`count(*)`, 'desc')
            .orderBy(column)
            .limit(top)
            .execute();
          return rows.map((r) => ({ name: String(r[column]), count: Number(r.count) }));
        };
        const topEndpoints = await topOf('endpoint');
        const topServers = await topOf('server');
        const toolRows = await window
          .select(['server', 'tool', sql<number | string>`count(*)`.as('count')])
          .where('tool', 'is not', null)
          .groupBy(['server', 'tool'])
          .orderBy(sql`count(*)`, 'desc')
          .orderBy('tool')
          .orderBy('server')
          .limit(top)
          .execute();
        const topTools = toolRows.map((r) => ({
          name: String(r.tool),
          ...(r.server === null ? {} : { server: r.server }),
          count: Number(r.count),
        }));
        return {
          tokenId,
          from,
          to,
          total,
          success,
          blocked: num(totals.blocked),
          errors,
          successRate: total === 0 ? null : success / total,
          latencyMs: { p50, p95, avg: nullableNum(totals.avg_latency) },
          bytesIn: num(totals.bytes_in),
          bytesOut: num(totals.bytes_out),
          topEndpoints,
          topServers,
          topTools,
        };
      }),
    );
  }

  /**
   * Requests per UTC-aligned bucket and group over [`from`, `to`), ordered by bucket, then key
   * (requests with no server/tool form the `null` group and come first).
   *
   * @throws {@link GatewayError} `SWB_ERR_STORE_UNAVAILABLE` when the database fails.
   */
  async usageSeries(query: UsageSeriesQuery): Promise<UsageSeriesRow[]> {
    const width = BUCKET_MS[query.bucket];
    // A literal, not a parameter: PostgreSQL must see the same expression in SELECT and GROUP BY.
    const bucket = sql<number | string>`(ts / ${sql.lit(width)}) * ${sql.lit(width)}`;
    const metrics = [bucket.as('bucket'), sql<number | string>`count(*)`.as('count'), ...OUTCOME_SUMS] as const;
    let base = this.#db
      .selectFrom('usage_log')
      .where('ts', '>=', Math.floor(query.from))
      .where('ts', '<', Math.ceil(query.to));
    if (query.tokenId !== undefined) base = base.where('token_id', '=', query.tokenId);
    // SQLite sorts NULL first in ascending order, PostgreSQL last: order by `x is not null` first.
    const nullsFirst = (column: 'server' | 'tool') => sql`${sql.ref(column)} is not null`;
    return guard('reading the usage series', async () => {
      switch (query.groupBy) {
        case 'token': {
          const rows = await base
            .select([...metrics, sql<string>`token_id`.as('key'), sql<string>`max(subject)`.as('subject')])
            .groupBy([bucket, 'token_id'])
            .orderBy('bucket')
            .orderBy('token_id')
            .execute();
          return rows.map((r) => ({ ...seriesRow(r), subject: r.subject }));
        }
        case 'server': {
          const rows = await base
            .select([...metrics, sql<string | null>`server`.as('key')])
            .groupBy([bucket, 'server'])
            .orderBy('bucket')
            .orderBy(nullsFirst('server'))
            .orderBy('server')
            .execute();
          return rows.map(seriesRow);
        }
        case 'tool': {
          const rows = await base
            .select([...metrics, sql<string | null>`tool`.as('key'), 'server'])
            .groupBy([bucket, 'server', 'tool'])
            .orderBy('bucket')
            .orderBy(nullsFirst('tool'))
            .orderBy('tool')
            .orderBy(nullsFirst('server'))
            .orderBy('server')
            .execute();
          return rows.map((r) => ({ ...seriesRow(r), server: r.server }));
        }
      }
    });
  }

  /**
   * One multi-row `INSERT` with bound parameters. Built by hand rather than with the query
   * builder: compiling 500 rows × 18 values through Kysely costs ~6 µs per row of event-loop
   * time, which at the gateway's peak rate would be a measurable share of the main thread; this
   * text is cached per row count and only the parameters change.
   */
  #insertQuery(rows: readonly UsageRow[]): CompiledQuery {
    const params: unknown[] = [];
    for (const row of rows) pushColumns(params, row);
    return CompiledQuery.raw(this.#insertText(rows.length), params);
  }

  #insertText(count: number): string {
    let text = this.#insertTexts.get(count);
    if (text === undefined) {
      text = insertText(this.#postgres, count);
      if (this.#insertTexts.size >= 4) this.#insertTexts.delete(this.#insertTexts.keys().next().value as number);
      this.#insertTexts.set(count, text);
    }
    return text;
  }

  /** Runs the reads of one summary in one transaction, repeatable read on PostgreSQL. */
  #readTransaction<T>(fn: (trx: Transaction<UsageTables>) => Promise<T>): Promise<T> {
    const builder = this.#db.transaction();
    return (this.#postgres ? builder.setIsolationLevel('repeatable read') : builder).execute(fn);
  }
}

/** A served request without an error: not blocked, HTTP status < 400, no JSON-RPC error. */
const SUCCESS = sql`case when blocked = 0 and http_status < 400 and jsonrpc_error is null then 1 else 0 end`;

/** A served request that failed: not blocked, and an HTTP status ≥ 400 or a JSON-RPC error. */
const ERROR = sql`case when blocked = 0 and (http_status >= 400 or jsonrpc_error is not null) then 1 else 0 end`;

/** The outcome aggregates a token summary and a series bucket share (count(*) aside). */
const OUTCOME_SUMS = [
  sql<number | string | null>`sum(${SUCCESS})`.as('success'),
  sql<number | string | null>`sum(blocked)`.as('blocked'),
  sql<number | string | null>`sum(${ERROR})`.as('errors'),
  sql<number | string | null>`avg(case when blocked = 0 then latency_ms end)`.as('avg_latency'),
  sql<number | string | null>`sum(bytes_in)`.as('bytes_in'),
  sql<number | string | null>`sum(bytes_out)`.as('bytes_out'),
] as const;

/** The aggregate columns of one series query row. */
interface SeriesColumns {
  bucket: number | string;
  key: string | null;
  count: number | string;
  success: number | string | null;
  blocked: number | string | null;
  errors: number | string | null;
  avg_latency: number | string | null;
  bytes_in: number | string | null;
  bytes_out: number | string | null;
}

function seriesRow(r: SeriesColumns): UsageSeriesRow {
  return {
    bucket: Number(r.bucket),
    key: r.key,
    count: Number(r.count),
    success: num(r.success),
    blocked: num(r.blocked),
    errors: num(r.errors),
    avgLatencyMs: nullableNum(r.avg_latency),
    bytesIn: num(r.bytes_in),
    bytesOut: num(r.bytes_out),
  };
}

function num(v: number | string | null | undefined): number {
  return v === null || v === undefined ? 0 : Number(v);
}

function nullableNum(v: number | string | null | undefined): number | null {
  return v === null || v === undefined ? null : Number(v);
}

/** Runs one store operation, turning driver errors into {@link GatewayError}s. */
async function guard<T>(what: string, operation: () => Promise<T>): Promise<T> {
  try {
    return await operation();
  } catch (err) {
    if (isGatewayError(err)) throw err;
    const reason = err instanceof Error ? err.message : String(err);
    throw new GatewayError('SWB_ERR_STORE_UNAVAILABLE', `database error while ${what}: ${reason}`, { cause: err });
  }
}
