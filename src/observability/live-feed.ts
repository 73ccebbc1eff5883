/**
 * The live feed of the admin API (`GET /api/v1/live`, `http/console-api.ts`): the most recent
 * finished MCP requests in a ring, and the listeners (live streams) told of each new one.
 *
 * {@link LiveFeed.request} runs on the MCP hot path (the exchange observer, `app/observer.ts`): it
 * overwrites the fields of one of {@link DEFAULT_RECENT_REQUESTS} preallocated records — no
 * allocation — and, only while a live stream is open, serialises the record once for them all.
 * Log lines come from {@link RecentLogs} (`recent-logs.ts`), which the feed passes through.
 *
 * @module
 */
import { ERROR_CODES, type ErrorCode } from '../errors.js';
import type { RecentLogLine, RecentLogs } from './recent-logs.js';

/** Default of {@link LiveFeedOptions.size}: requests kept for the replay of a new stream. */
export const DEFAULT_RECENT_REQUESTS = 200;

/** How a finished request ended, as the live feed reports it. */
export type RequestOutcome = 'ok' | 'error' | 'blocked' | 'rate_limited';

/** One finished MCP request (the `request` event's data; `time` as epoch ms here). */
export interface LiveRequest {
  /** When the request arrived, epoch ms. */
  time: number;
  reqId: string | null;
  /** The endpoint label: `mcp`, the virtual server's or the server's name. */
  endpoint: string;
  /** The JSON-RPC method, when the body held one. */
  method: string | null;
  /** The upstream server the request reached, when one was resolved. */
  server: string | null;
  /** The upstream's own tool name for `tools/call`. */
  tool: string | null;
  /** The principal's id (`token:alice`); null when it was refused before authentication ended. */
  principal: string | null;
  outcome: RequestOutcome;
  /** HTTP status of the response. */
  status: number;
  /** The gateway error code, when one is known (`SWB_ERR_…`). */
  code: string | null;
  /** Arrival to end of response, ms. */
  durationMs: number;
}

/** Receives new requests and log lines; must not throw. */
export interface LiveListener {
  /** A finished request and its serialised `request` event data. */
  request(record: Readonly<LiveRequest>, json: string): void;
  /** A new log line (see `recent-logs.ts`). */
  log(line: RecentLogLine): void;
  /** The feed is closing (graceful shutdown): end the stream. */
  end(): void;
}

/** Options of {@link LiveFeed}. */
export interface LiveFeedOptions {
  /** Requests kept. Default {@link DEFAULT_RECENT_REQUESTS}. */
  readonly size?: number;
  /** The process's recent log lines; without it the feed has no `log` events. */
  readonly logs?: RecentLogs | undefined;
}

/** The unique gateway error code of each JSON-RPC error code (codes shared by several are absent). */
let codeByRpc: Map<number, ErrorCode> | undefined;

/** The gateway error code a JSON-RPC error code stands for, when exactly one does. */
export function errorCodeOfRpc(rpc: number): ErrorCode | undefined {
  if (codeByRpc === undefined) {
    const seen = new Map<number, ErrorCode | null>();
    for (const [code, spec] of Object.entries(ERROR_CODES) as Array<[ErrorCode, { jsonRpcCode: number }]>)
      seen.set(spec.jsonRpcCode, seen.has(spec.jsonRpcCode) ? null : code);
    codeByRpc = new Map();
    for (const [rpcCode, code] of seen) if (code !== null) codeByRpc.set(rpcCode, code);
  }
  return codeByRpc.get(rpc);
}

/** The `request` event's data for a record (`time` as ISO 8601). */
export function requestJson(r: Readonly<LiveRequest>): string {
  return JSON.stringify({
    time: new Date(r.time).toISOString(),
    reqId: r.reqId,
    endpoint: r.endpoint,
    method: r.method,
    server: r.server,
    tool: r.tool,
    principal: r.principal,
    outcome: r.outcome,
    status: r.status,
    code: r.code,
    durationMs: Math.round(r.durationMs * 100) / 100,
  });
}

function emptyRecord(): LiveRequest {
  return {
    time: 0,
    reqId: null,
    endpoint: '',
    method: null,
    server: null,
    tool: null,
    principal: null,
    outcome: 'ok',
    status: 0,
    code: null,
    durationMs: 0,
  };
}

/** Recent requests and the live listeners; see the module comment. */
export class LiveFeed {
  readonly #ring: LiveRequest[];
  /** Records written since start (the next slot is `#written % size`). */
  #written = 0;
  readonly #listeners = new Set<LiveListener>();
  readonly #logs: RecentLogs | undefined;
  #unsubscribeLogs: (() => void) | undefined;

  constructor(options: LiveFeedOptions = {}) {
    const size = Math.max(1, options.size ?? DEFAULT_RECENT_REQUESTS);
    this.#ring = Array.from({ length: size }, emptyRecord);
    this.#logs = options.logs;
  }

  /** Open listeners (live streams). */
  get listeners(): number {
    return this.#listeners.size;
  }

  /**
   * The record to fill for the next finished request: the oldest slot of the ring. Fill every
   * field, then call {@link published}. Synchronous use only.
   */
  next(): LiveRequest {
    return this.#ring[this.#written % this.#ring.length]!;
  }

  /** Makes the record from {@link next} the newest, and tells the listeners. */
  published(): void {
    const record = this.#ring[this.#written % this.#ring.length]!;
    this.#written++;
    if (this.#listeners.size === 0) return;
    const json = requestJson(record);
    for (const l of this.#listeners) l.request(record, json);
  }

  /** The kept requests, oldest first (copies: the ring's records are reused). */
  recentRequests(): LiveRequest[] {
    const size = this.#ring.length;
    const count = Math.min(this.#written, size);
    const out: LiveRequest[] = [];
    for (let i = this.#written - count; i < this.#written; i++) out.push({ ...this.#ring[i % size]! });
    return out;
  }

  /** The kept log lines, oldest first (none without {@link LiveFeedOptions.logs}). */
  recentLogs(): RecentLogLine[] {
    return this.#logs?.recent() ?? [];
  }

  /**
   * Ends every listener (graceful shutdown: open live streams must not hold the listener open).
   * Listeners added later are served as before.
   */
  close(): void {
    for (const l of [...this.#listeners]) l.end();
  }

  /** Adds a listener until the returned function is called. */
  subscribe(listener: LiveListener): () => void {
    this.#listeners.add(listener);
    if (this.#logs !== undefined && this.#unsubscribeLogs === undefined) {
      this.#unsubscribeLogs = this.#logs.subscribe((line) => {
        for (const l of this.#listeners) l.log(line);
      });
    }
    return () => {
      this.#listeners.delete(listener);
      if (this.#listeners.size === 0) {
        this.#unsubscribeLogs?.();
        this.#unsubscribeLogs = undefined;
      }
    };
  }
}
