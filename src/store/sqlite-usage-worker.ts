/**
 * The worker thread behind {@link SqliteUsageWriter} (`./sqlite-usage-writer.ts`): it owns a second
 * better-sqlite3 connection to the gateway's SQLite file and runs the usage log's batched
 * `INSERT`s there, so their CPU time (index upkeep dominates: ~9 µs per row) and any lock wait
 * never block the gateway's event loop. SQLite's WAL journal lets this connection write while the
 * main thread's connection reads; writers take turns through `busy_timeout`.
 *
 * Kept free of other Switchboard modules: Node loads it directly (as `.js` from `dist/`, or as
 * `.ts` with type stripping when tests run from `src/`).
 *
 * Protocol (structured-clone messages over the worker port):
 * - in: `{ id, statements: [{ sql, params } | { sql, encoded }] }` → out: `{ id }` when all ran (in one transaction
 *   when there are several), or `{ id, error }` with the SQLite message; nothing is stored then.
 * - in: `{ close: true }` → closes the connection and lets the thread end.
 *
 * @module
 */
import { parentPort, workerData } from 'node:worker_threads';
import BetterSqlite3 from 'better-sqlite3';

/** `workerData` of the usage writer thread. */
export interface SqliteUsageWorkerData {
  /** The database file (never `:memory:`: a second connection would see another database). */
  path: string;
  /** `busy_timeout`, ms. */
  busyTimeout: number;
}

/** One batch to run (statements as `SqliteStatement` in `./sqlite-usage-writer.ts`). */
export interface SqliteUsageWorkerRequest {
  id: number;
  statements: (
    | { sql: string; params: unknown[] }
    | { sql: string; encoded: { values: Float64Array; strings: string[]; text: readonly boolean[] } }
  )[];
}

type Statement = SqliteUsageWorkerRequest['statements'][number];

/** The statement's parameters, unpacked when they came packed. */
function paramsOf(statement: Statement): unknown[] {
  if ('params' in statement) return statement.params;
  const { values, strings, text } = statement.encoded;
  const width = text.length;
  const params = new Array<unknown>(values.length);
  for (let i = 0; i < values.length; i++) {
    const v = values[i]!;
    params[i] = text[i % width] ? (v < 0 ? null : strings[v]) : Number.isNaN(v) ? null : v;
  }
  return params;
}

/** The reply to {@link SqliteUsageWorkerRequest}. */
export interface SqliteUsageWorkerReply {
  id: number;
  /** Set when the batch failed (and was rolled back). */
  error?: string;
}

/** Prepared statements kept by SQL text; a few batch sizes recur. */
const MAX_CACHED_STATEMENTS = 4;

if (parentPort !== null) {
  const port = parentPort;
  const data = workerData as SqliteUsageWorkerData;
  const db = new BetterSqlite3(data.path);
  db.pragma(`busy_timeout = ${Math.max(0, Math.floor(data.busyTimeout))}`);
  // WAL with synchronous=NORMAL: a commit appends to the WAL without an fsync (the WAL is synced
  // at checkpoints). A power loss can drop the last batches of usage rows but never corrupts the
  // file; an application crash loses nothing that was committed. Saves ~0.4 µs of this thread's
  // CPU per row and an fsync per batch (https://www.sqlite.org/pragma.html#pragma_synchronous).
  db.pragma('synchronous = NORMAL');
  const statements = new Map<string, BetterSqlite3.Statement>();

  const prepare = (text: string): BetterSqlite3.Statement => {
    let statement = statements.get(text);
    if (statement === undefined) {
      statement = db.prepare(text);
      if (statements.size >= MAX_CACHED_STATEMENTS) statements.delete(statements.keys().next().value as string);
      statements.set(text, statement);
    }
    return statement;
  };
  const runAll = db.transaction((batch: Statement[]) => {
    for (const statement of batch) prepare(statement.sql).run(paramsOf(statement));
  });

  port.on('message', (message: SqliteUsageWorkerRequest | { close: true }) => {
    if ('close' in message) {
      db.close();
      port.close();
      return;
    }
    try {
      const [only, ...rest] = message.statements;
      if (only !== undefined && rest.length === 0) prepare(only.sql).run(paramsOf(only));
      else runAll(message.statements);
      port.postMessage({ id: message.id } satisfies SqliteUsageWorkerReply);
    } catch (err) {
      port.postMessage({
        id: message.id,
        error: err instanceof Error ? err.message : String(err),
      } satisfies SqliteUsageWorkerReply);
    }
  });
}
