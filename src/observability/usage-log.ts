/**
 * The usage log writer (docs/usage.md): every request made with a
 * Switchboard API token becomes one {@link UsageRow}, written to the database in batches by a
 * background writer — never one insert per request, never on the request's path.
 *
 * - {@link UsageLog.record} only appends to an in-memory queue (O(1), never awaits, never throws).
 * - A batch is written when `batchSize` rows are waiting, or `flushIntervalMs` after the first
 *   row of a partial batch arrived; one batch at a time, each a multi-row `INSERT`.
 * - A failed batch is retried (`maxRetries` times, doubling delays) and then dropped, counted and
 *   logged at error level.
 * - The queue is bounded (`maxQueue` rows, counting the batch being written): beyond it rows are
 *   dropped and counted, so a slow or dead database costs bounded memory.
 * - Rows older than `retentionMs` are purged at start and every `purgeIntervalMs`.
 * - {@link UsageLog.close} (graceful shutdown) writes everything queued before it resolves.
 *
 * This module also holds the seed-004 rules for *which* requests become rows:
 * {@link usageRowFor} (authenticated token requests) and {@link blockedRowFor} (requests refused
 * for a revoked or expired token whose jti exists in the store).
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { isGatewayError } from '../errors.js';
import type { UsageRow, UsageSink } from './usage-row.js';
import type { Logger } from './logger.js';

export type { UsageRow } from './usage-row.js';

/** Default for {@link UsageLogOptions.batchSize} (as `usage.batchSize` in the config). */
export const DEFAULT_USAGE_BATCH_SIZE = 500;
/** Default for {@link UsageLogOptions.flushIntervalMs}: 1 s. */
export const DEFAULT_USAGE_FLUSH_INTERVAL = 1_000;
/** Default for {@link UsageLogOptions.maxQueue}. */
export const DEFAULT_USAGE_MAX_QUEUE = 50_000;
/** Default for {@link UsageLogOptions.retentionMs}: 30 days. */
export const DEFAULT_USAGE_RETENTION = 30 * 86_400_000;
/** Default for {@link UsageLogOptions.purgeIntervalMs}: 10 minutes. */
export const DEFAULT_USAGE_PURGE_INTERVAL = 10 * 60_000;
/** Default for {@link UsageLogOptions.maxRetries}. */
export const DEFAULT_USAGE_MAX_RETRIES = 3;
/** Default for {@link UsageLogOptions.retryDelayMs}. */
export const DEFAULT_USAGE_RETRY_DELAY = 200;

/** Counters reported to {@link UsageLogOptions.onMetrics} (e.g. Prometheus gauges/counters). */
export interface UsageLogMetrics {
  /** Rows in memory: queued plus the batch being written. */
  queueDepth: number;
  /** Rows lost since start: queue full, batch failed after its retries, or recorded after close. */
  dropped: number;
  /** Rows stored since start. */
  written: number;
}

/** Options for {@link createUsageLog}. */
export interface UsageLogOptions {
  /** Where batches go (`database.usage`). */
  store: UsageSink;
  /** Rows per write; a full batch is written at once. Default 500. */
  batchSize?: number;
  /** Longest time a row waits in a partial batch, ms. Default 1000. */
  flushIntervalMs?: number;
  /** Rows held in memory at most (queued + being written); beyond, rows are dropped. Default 50 000. */
  maxQueue?: number;
  /** Rows older than this are deleted, ms; `0` or `Infinity` keeps everything. Default 30 days. */
  retentionMs?: number;
  /** How often old rows are purged (also once at start), ms. Default 10 minutes. */
  purgeIntervalMs?: number;
  /** Extra attempts for a failed batch before it is dropped. Default 3. */
  maxRetries?: number;
  /** Delay before the first retry, doubled for each further one, ms. Default 200. */
  retryDelayMs?: number;
  logger: Logger;
  /** Clock for the retention cutoff, epoch ms. Default `Date.now`. */
  clock?: () => number;
  /** Called whenever a counter changes (a batch written or dropped, a row dropped). Must not throw. */
  onMetrics?: (metrics: UsageLogMetrics) => void;
}

/** The usage log writer returned by {@link createUsageLog}. */
export interface UsageLog {
  /**
   * Queues a row for the next batch. O(1); never awaits, never throws, never touches the
   * database. When the queue is full (or the log is closed) the row is dropped and counted.
   */
  record(row: UsageRow): void;
  /** Writes every row queued before the call (partial batches too); resolves when they are settled. Never rejects. */
  flush(): Promise<void>;
  /**
   * Stops the timers, writes every queued row and waits for a running purge. Later
   * {@link UsageLog.record} calls are dropped. Idempotent; never rejects. If a batch still fails
   * after its retries during close, the rest of the queue is dropped at once so shutdown ends.
   */
  close(): Promise<void>;
  /** Deletes rows older than the retention now; resolves to how many (0 when retention is off). */
  purgeExpired(): Promise<number>;
  /** Rows in memory: queued plus the batch being written. */
  readonly queueDepth: number;
  /** Rows lost since start. */
  readonly dropped: number;
  /** Rows stored since start. */
  readonly written: number;
}

/** How often "queue full" is logged at most, ms. */
const DROP_LOG_INTERVAL = 10_000;

/**
 * Creates the usage log writer and starts its retention purge (once now, then every
 * `purgeIntervalMs`). Timers are unref'd: they never keep the process alive.
 *
 * @throws RangeError when a size or interval option is not a positive number.
 */
export function createUsageLog(options: UsageLogOptions): UsageLog {
  const batchSize = positiveInt(options.batchSize ?? DEFAULT_USAGE_BATCH_SIZE, 'batchSize');
  const flushIntervalMs = positive(options.flushIntervalMs ?? DEFAULT_USAGE_FLUSH_INTERVAL, 'flushIntervalMs');
  const maxQueue = positiveInt(options.maxQueue ?? DEFAULT_USAGE_MAX_QUEUE, 'maxQueue');
  const retentionMs = options.retentionMs ?? DEFAULT_USAGE_RETENTION;
  const purgeIntervalMs = positive(options.purgeIntervalMs ?? DEFAULT_USAGE_PURGE_INTERVAL, 'purgeIntervalMs');
  const maxRetries = Math.max(0, Math.floor(options.maxRetries ?? DEFAULT_USAGE_MAX_RETRIES));
  const retryDelayMs = Math.max(0, options.retryDelayMs ?? DEFAULT_USAGE_RETRY_DELAY);
  const { store, logger, onMetrics } = options;
  const clock = options.clock ?? Date.now;
  const retain = retentionMs > 0 && Number.isFinite(retentionMs);

  let queue: UsageRow[] = [];
  let inFlight = 0;
  let dropped = 0;
  let written = 0;
  /** Rows accepted by record() since start, and rows of those written or dropped since. */
  let accepted = 0;
  let settled = 0;
  /** Partial batches are written while `settled < flushTarget` (a flush or close is waiting). */
  let flushTarget = 0;
  let writer: Promise<void> | undefined;
  let kicked = false;
  let timer: NodeJS.Timeout | undefined;
  let closed = false;
  let closing: Promise<void> | undefined;
  let purging: Promise<number> | undefined;
  let lastDropLog = -Infinity;

  function report(): void {
    if (onMetrics === undefined) return;
    try {
      onMetrics({ queueDepth: queue.length + inFlight, dropped, written });
    } catch (err) {
      logger.debug({ err }, 'usage log metrics callback failed');
    }
  }

  function dropAtRecord(): void {
    dropped++;
    const now = Date.now();
    if (now - lastDropLog >= DROP_LOG_INTERVAL) {
      lastDropLog = now;
      if (closed) logger.warn({ dropped }, 'usage rows recorded after the usage log closed are dropped');
      else logger.warn({ maxQueue, dropped }, 'usage log queue full; dropping rows (the database is slow or down)');
    }
    report();
  }

  function armTimer(): void {
    if (timer !== undefined || closed) return;
    timer = setTimeout(() => {
      timer = undefined;
      flushTarget = Math.max(flushTarget, accepted);
      kick();
    }, flushIntervalMs);
    timer.unref();
  }

  /** Starts the writer soon, outside the caller's stack (record() must stay O(1)). */
  function kick(): void {
    if (writer !== undefined || kicked) return;
    kicked = true;
    setImmediate(() => {
      kicked = false;
      void startWriter();
    }).unref();
  }

  function startWriter(): Promise<void> {
    writer ??= run()
      .catch((err: unknown) => logger.error({ err }, 'usage log writer failed'))
      .finally(() => {
        writer = undefined;
        // Rows may have arrived after the loop's last check.
        if (due()) kick();
        else if (queue.length > 0) armTimer();
      });
    return writer;
  }

  /** A full batch is waiting, or a partial one that a flush, close or the interval asked for. */
  function due(): boolean {
    return queue.length >= batchSize || (queue.length > 0 && settled < flushTarget);
  }

  async function run(): Promise<void> {
    while (due()) {
      const batch = queue.length <= batchSize ? queue : queue.slice(0, batchSize);
      queue = batch === queue ? [] : queue.slice(batchSize);
      inFlight = batch.length;
      const ok = await write(batch);
      inFlight = 0;
      settled += batch.length;
      if (ok) written += batch.length;
      else {
        dropped += batch.length;
        if (closed && queue.length > 0) {
          // The database is failing while we shut down: do not make shutdown wait batch by batch.
          logger.error({ rows: queue.length }, 'usage log closing with a failing database; dropping the queued rows');
          dropped += queue.length;
          settled += queue.length;
          queue = [];
        }
      }
      report();
    }
  }

  async function write(batch: UsageRow[]): Promise<boolean> {
    let lastError: unknown;
    for (let attempt = 0; attempt <= maxRetries; attempt++) {
      if (attempt > 0) await delay(retryDelayMs * 2 ** (attempt - 1));
      try {
        await store.insert(batch);
        return true;
      } catch (err) {
        lastError = err;
        logger.debug({ err, attempt, rows: batch.length }, 'usage log batch failed');
      }
    }
    logger.error(
      { err: lastError, rows: batch.length, attempts: maxRetries + 1 },
      'usage log batch dropped: the database refused it after every retry',
    );
    return false;
  }

  function purgeExpired(): Promise<number> {
    if (!retain) return Promise.resolve(0);
    purging ??= store
      .purge(clock() - retentionMs)
      .then(
        (deleted) => {
          if (deleted > 0) logger.debug({ deleted, retentionMs }, 'purged old usage rows');
          return deleted;
        },
        (err: unknown) => {
          logger.warn({ err }, 'could not purge old usage rows; will retry');
          return 0;
        },
      )
      .finally(() => {
        purging = undefined;
      });
    return purging;
  }

  async function flush(): Promise<void> {
    const target = accepted;
    flushTarget = Math.max(flushTarget, target);
    while (settled < target) await startWriter();
  }

  let purgeTimer: NodeJS.Timeout | undefined;
  if (retain) {
    void purgeExpired();
    purgeTimer = setInterval(() => void purgeExpired(), purgeIntervalMs);
    purgeTimer.unref();
  }

  return {
    record(row) {
      if (closed || queue.length + inFlight >= maxQueue) {
        dropAtRecord();
        return;
      }
      queue.push(row);
      accepted++;
      if (queue.length >= batchSize) kick();
      else armTimer();
    },
    flush,
    close() {
      closing ??= (async () => {
        closed = true;
        if (timer !== undefined) clearTimeout(timer);
        timer = undefined;
        if (purgeTimer !== undefined) clearInterval(purgeTimer);
        await flush();
        await purging;
      })();
      return closing;
    },
    purgeExpired,
    get queueDepth() {
      return queue.length + inFlight;
    },
    get dropped() {
      return dropped;
    },
    get written() {
      return written;
    },
  };
}

/** The parts of a request a usage row needs besides who made it and how it ended. */
export interface UsageRequestFacts {
  /** When the request arrived, epoch ms. */
  ts: number;
  /** The request path without its query. */
  endpoint: string;
  httpMethod: string;
  /** Time from arrival to the end of the response, ms. */
  latencyMs: number;
  ip?: string | undefined;
  userAgent?: string | undefined;
  /** Request body bytes. Default 0. */
  bytesIn?: number | undefined;
  /** Response body bytes. Default 0. */
  bytesOut?: number | undefined;
  mcpMethod?: string | undefined;
  server?: string | undefined;
  tool?: string | undefined;
  /** The upstream subject a per-user credential used (`RequestContext.upstreamSubject`). */
  upstreamSubject?: string | undefined;
}

/** How a request ended, for {@link usageRowFor}. */
export interface UsageOutcome extends UsageRequestFacts {
  /** The HTTP status sent. */
  httpStatus: number;
  /** The JSON-RPC `error.code` sent, if the response was a JSON-RPC error. */
  jsonrpcError?: number | undefined;
  /** The error that ended the request, if any: its `code` becomes the block reason. */
  error?: unknown;
  /**
   * The pipeline stage that refused the request (`RequestContext.stage`, e.g. `guardrail:no-rm`,
   * `rate-limit`): a response that is an error (`jsonrpcError` or a 4xx) is then blocked with this
   * as its reason.
   */
  stage?: string | undefined;
}

/**
 * The request facts available at the edge: method, peer address, `User-Agent` and the
 * `Content-Length` (0 when absent; pass the counted body size when known).
 *
 * @param startedAt - when the request arrived, epoch ms.
 * @param latencyMs - how long it took so far, ms (usually filled in at the end).
 */
export function requestFacts(
  req: IncomingMessage,
  endpoint: string,
  startedAt: number,
  latencyMs = 0,
): UsageRequestFacts {
  const length = Number(req.headers['content-length']);
  return {
    ts: startedAt,
    endpoint,
    httpMethod: req.method ?? 'GET',
    latencyMs,
    ip: req.socket.remoteAddress,
    userAgent: req.headers['user-agent'],
    bytesIn: Number.isFinite(length) && length > 0 ? length : 0,
  };
}

/**
 * True when requests of `principal` are recorded (Switchboard API tokens only), so a
 * caller can skip building the facts of a request that will not be logged.
 */
export function recordsUsage(
  principal: Principal,
): principal is Principal & { kind: 'token'; tokenId: string; jti: string } {
  return principal.kind === 'token' && principal.tokenId !== undefined && principal.jti !== undefined;
}

/**
 * The row for a request authenticated with a Switchboard API token, or `undefined` for any other
 * principal (OAuth, proxy header, anonymous: the usage log records API-token usage only).
 *
 * Blocked: a 4xx HTTP status, or an `error` whose status is 4xx (a denial sent as a
 * JSON-RPC error, e.g. `SWB_ERR_AUTH_FORBIDDEN` for a missing `tools.execute`). The reason is the
 * error's `SWB_ERR_…` code, else `http_<status>`. 5xx are failures, not denials.
 */
export function usageRowFor(principal: Principal, outcome: UsageOutcome): UsageRow | undefined {
  if (!recordsUsage(principal)) return undefined;
  const error = outcome.error;
  const errorStatus = isGatewayError(error) ? error.status : undefined;
  const stage = outcome.stage;
  const blocked =
    isClientError(outcome.httpStatus) ||
    (errorStatus !== undefined && isClientError(errorStatus)) ||
    (stage !== undefined && outcome.jsonrpcError !== undefined);
  // One literal, no spreads: this runs once per request with the usage log on.
  return {
    ts: outcome.ts,
    tokenId: principal.tokenId,
    jti: principal.jti,
    subject: principal.subject,
    endpoint: outcome.endpoint,
    httpMethod: outcome.httpMethod,
    mcpMethod: outcome.mcpMethod,
    server: outcome.server,
    tool: outcome.tool,
    upstreamSubject: outcome.upstreamSubject,
    httpStatus: outcome.httpStatus,
    jsonrpcError: outcome.jsonrpcError,
    latencyMs: outcome.latencyMs,
    bytesIn: outcome.bytesIn ?? 0,
    bytesOut: outcome.bytesOut ?? 0,
    ip: outcome.ip,
    userAgent: outcome.userAgent,
    blocked,
    blockReason: blocked ? (stage ?? (isGatewayError(error) ? error.code : `http_${outcome.httpStatus}`)) : undefined,
  };
}

/**
 * The seed-004 rule for refused credentials: the row for a request rejected because its API
 * token is revoked or expired, or `undefined` when the attempt must not be recorded.
 *
 * Recorded only for `SWB_ERR_AUTH_REVOKED_TOKEN` / `SWB_ERR_AUTH_EXPIRED_TOKEN` errors carrying
 * `data.tokenId`, `data.subject` and `data.jti`. The token service (`src/auth/tokens.ts`) sets
 * those only after the presented token matched a stored record (its jti exists and its hash
 * matches), so the row is attributed to the stored owner, never to an unverified claim. A forged
 * or unknown jti fails as `SWB_ERR_AUTH_INVALID_TOKEN` and yields `undefined`, so nobody can
 * pollute another user's usage with made-up tokens.
 *
 * @param facts - the request; `httpStatus` defaults to the error's status (401).
 * @returns a row with `blocked: true` and `blockReason` the error code.
 */
export function blockedRowFor(
  error: unknown,
  facts: UsageRequestFacts & { httpStatus?: number | undefined },
): UsageRow | undefined {
  if (!isGatewayError(error)) return undefined;
  if (error.code !== 'SWB_ERR_AUTH_REVOKED_TOKEN' && error.code !== 'SWB_ERR_AUTH_EXPIRED_TOKEN') return undefined;
  const tokenId = error.data?.tokenId;
  const subject = error.data?.subject;
  const jti = error.data?.jti;
  if (typeof tokenId !== 'string' || typeof subject !== 'string' || typeof jti !== 'string') return undefined;
  return {
    ...facts,
    tokenId,
    jti,
    subject,
    httpStatus: facts.httpStatus ?? error.status,
    bytesIn: facts.bytesIn ?? 0,
    bytesOut: facts.bytesOut ?? 0,
    blocked: true,
    blockReason: error.code,
  };
}

function isClientError(status: number): boolean {
  return status >= 400 && status < 500;
}

function delay(ms: number): Promise<void> {
  // Not unref'd: a retry during close() must keep the process alive until the batch settles.
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function positive(value: number, name: string): number {
  if (!(value > 0) || !Number.isFinite(value)) throw new RangeError(`usage log: ${name} must be a positive number`);
  return value;
}

function positiveInt(value: number, name: string): number {
  return Math.floor(positive(value, name)) || 1;
}
