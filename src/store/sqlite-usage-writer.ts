/**
 * Runs the usage log's SQLite `INSERT`s on a worker thread (`./sqlite-usage-worker.ts`).
 *
 * better-sqlite3 is synchronous: on the main thread a 500-row batch holds the event loop for
 * ~5 ms (index upkeep), which every in-flight request waits out. The usage log must stay off the
 * request's critical path, so SQLite files get this writer; the main thread only
 * pays for posting the flat parameter array (~0.3 µs per row). PostgreSQL needs none of this: `pg`
 * is asynchronous already. An in-memory database (`:memory:`) cannot be shared with a second
 * connection, so it keeps writing in-thread.
 *
 * The thread starts on the first batch (after migrations have created the table) and is started
 * again after it dies; it is referenced only while a batch is in flight, so it never keeps an
 * idle process alive.
 *
 * @module
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import type { SqliteUsageWorkerData, SqliteUsageWorkerReply, SqliteUsageWorkerRequest } from './sqlite-usage-worker.js';

/**
 * Parameters packed for a cheap `postMessage` (the `values` buffer is transferred): `values`
 * holds `text.length` cells per row, in placeholder order. A cell of a text column is an index
 * into `strings`, or −1 for NULL; a cell of a number column is the value, or NaN for NULL.
 */
export interface EncodedParams {
  values: Float64Array<ArrayBuffer>;
  strings: string[];
  text: readonly boolean[];
}

/**
 * One statement of a batch: SQL text with `?` placeholders and its parameters, either as they
 * are (`params`) or packed (`encoded`, see {@link EncodedParams}).
 */
export type SqliteStatement = { sql: string; params: unknown[] } | { sql: string; encoded: EncodedParams };

/** Options of {@link SqliteUsageWriter}. */
export interface SqliteUsageWriterOptions {
  /** The SQLite file. */
  path: string;
  /** `busy_timeout` of the writer's connection, ms. */
  busyTimeout: number;
}

interface Pending {
  resolve: () => void;
  reject: (err: Error) => void;
  /** Settles with the batch, for {@link SqliteUsageWriter.close}. */
  done: Promise<void>;
}

/** How long {@link SqliteUsageWriter.close} waits for the thread to end before terminating it, ms. */
const CLOSE_TIMEOUT = 5_000;

/** The worker module next to this one: `.js` in `dist/`, `.ts` when running from `src/`. */
function workerUrl(): URL {
  const js = new URL('./sqlite-usage-worker.js', import.meta.url);
  if (existsSync(fileURLToPath(js))) return js;
  return new URL('./sqlite-usage-worker.ts', import.meta.url);
}

/** A connection to the SQLite file on its own thread, for batched usage-log writes. */
export class SqliteUsageWriter {
  #options: SqliteUsageWriterOptions;
  #worker: Worker | undefined;
  #pending = new Map<number, Pending>();
  #nextId = 1;
  #closing: Promise<void> | undefined;

  constructor(options: SqliteUsageWriterOptions) {
    this.#options = options;
  }

  /**
   * Runs the statements on the writer thread, in one transaction when there are several.
   *
   * @throws Error with SQLite's message when a statement fails (the transaction is rolled back),
   *   when the thread dies before replying, or after {@link close}.
   */
  run(statements: SqliteStatement[]): Promise<void> {
    if (this.#closing !== undefined) return Promise.reject(new Error('the usage writer is closed'));
    const worker = this.#start();
    const id = this.#nextId++;
    let settle!: Pick<Pending, 'resolve' | 'reject'>;
    const done = new Promise<void>((resolve, reject) => (settle = { resolve, reject }));
    this.#pending.set(id, { ...settle, done });
    if (this.#pending.size === 1) worker.ref();
    const transfer = statements.flatMap((st) => ('encoded' in st ? [st.encoded.values.buffer] : []));
    worker.postMessage({ id, statements } satisfies SqliteUsageWorkerRequest, transfer);
    return done;
  }

  /** Lets in-flight batches finish, closes the connection and ends the thread. Idempotent. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      const worker = this.#worker;
      if (worker === undefined) return;
      await Promise.allSettled([...this.#pending.values()].map((p) => p.done));
      const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
      worker.ref();
      worker.postMessage({ close: true });
      const timer = setTimeout(() => void worker.terminate(), CLOSE_TIMEOUT);
      await exited;
      clearTimeout(timer);
    })();
    return this.#closing;
  }

  #start(): Worker {
    if (this.#worker !== undefined) return this.#worker;
    const worker = new Worker(workerUrl(), {
      workerData: { path: this.#options.path, busyTimeout: this.#options.busyTimeout } satisfies SqliteUsageWorkerData,
    });
    worker.unref();
    worker.on('message', (reply: SqliteUsageWorkerReply) => {
      const pending = this.#pending.get(reply.id);
      if (pending === undefined) return;
      this.#pending.delete(reply.id);
      if (this.#pending.size === 0) worker.unref();
      if (reply.error === undefined) pending.resolve();
      else pending.reject(new Error(reply.error));
    });
    const fail = (err: Error): void => {
      if (this.#worker === worker) this.#worker = undefined;
      const pending = [...this.#pending.values()];
      this.#pending.clear();
      for (const p of pending) p.reject(err);
    };
    worker.on('error', (err) => fail(new Error(`the usage writer thread failed: ${err.message}`, { cause: err })));
    worker.on('exit', (code) => fail(new Error(`the usage writer thread exited (code ${code})`)));
    this.#worker = worker;
    return worker;
  }
}
