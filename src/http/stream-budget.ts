/**
 * Backpressure for the long-lived streams the gateway writes to (Streamable HTTP GET and POST
 * SSE streams, the legacy SSE stream): a client that does not read its stream must not make the
 * gateway buffer without bound on its behalf.
 *
 * Node queues what a socket cannot send yet in the process (`writableLength`); `write()` never
 * refuses. A stream whose queue is past its high-water mark waits for `'drain'`
 * (`writableNeedDrain`). While it waits, every further event is counted; when the next event finds
 * more than {@link StreamBudget.maxStreamBytes} bytes still queued, or more than
 * {@link StreamBudget.maxStreamEvents} events written since the stream last drained, the stream is
 * destroyed (its queue freed at once: a graceful `end()` would queue behind the backlog) and the
 * overflow reported. The check runs before the write, so one large event is always accepted by a
 * stream that keeps up: a stream holds at most `maxStreamBytes` plus one event.
 *
 * A stream that keeps up costs one property read per event (`writableNeedDrain` is false). JSON
 * answers to POSTs do not come here at all: they leave in one `end()`.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { Logger } from '../observability/logger.js';

/** Limits of one long-lived stream (the `http` section of the configuration is one). */
export interface StreamBudget {
  /** Bytes a stream may hold queued (unsent) when the next event is written. */
  readonly maxStreamBytes: number;
  /** Events that may be written while the stream waits for `'drain'`. */
  readonly maxStreamEvents: number;
}

/** The kinds of stream the gateway bounds, as counted by `switchboard_stream_overflows_total{stream}`. */
export const STREAM_KINDS = Object.freeze([
  'streamable-get',
  'streamable-post',
  'legacy-sse',
  /** The reverse tunnel's WebSocket (a tunnelled server that does not read). */
  'tunnel',
  /** An operator's live feed of a tunnel (`GET /reverse-proxy/sse/{id}`). */
  'tunnel-feed',
  /** A modern client's `subscriptions/listen` stream (`http/modern-listen.ts`). */
  'modern-listen',
  /** An admin's live feed of requests and log lines (`GET /api/v1/live`, `http/console-api.ts`). */
  'admin-live',
] as const);

/** One of {@link STREAM_KINDS}. */
export type StreamKind = (typeof STREAM_KINDS)[number];

/** What is reported when a stream is closed for being over its budget. */
export interface StreamOverflow {
  readonly stream: StreamKind;
  /** The client session (MCP session id, or the tunnel session id for `tunnel-feed`). */
  readonly sessionId: string;
  /** Bytes queued when the stream was closed. */
  readonly queuedBytes: number;
  /** Events written since the stream last drained. */
  readonly queuedEvents: number;
}

/** Called once per stream closed over its budget (metrics). Must not throw. */
export type StreamOverflowListener = (overflow: StreamOverflow) => void;

/** Reports an overflow: a `warn` line with the session id (no message content) and the listener. */
export function reportOverflow(
  logger: Logger,
  listener: StreamOverflowListener | undefined,
  overflow: StreamOverflow,
): void {
  logger.warn(overflow, 'stream closed: the client is not reading fast enough (over its buffer budget)');
  listener?.(overflow);
}

/** The per-stream count of events written while waiting for `'drain'`. */
export interface StreamMeter {
  /** Events written since the stream last had room (reset when a write finds it drained). */
  stalled: number;
  /** Bytes that were queued when the stream was found over its budget (0 until then). */
  overflowBytes: number;
}

/**
 * Writes one chunk to a long-lived stream within its budget.
 *
 * @param budget - read at each stalled write, so a hot reload of the `http` section applies at once.
 * @returns `false` when this write found the stream over its budget: the chunk was not written,
 *   the stream has been destroyed (its `'close'` follows), `meter.overflowBytes` and
 *   `meter.stalled` say how far over it was, and the caller reports it (see
 *   {@link reportOverflow}). `true` otherwise, also when the stream had already ended and
 *   nothing was written.
 */
export function writeWithin(res: ServerResponse, chunk: string, meter: StreamMeter, budget: StreamBudget): boolean {
  if (res.writableEnded || res.destroyed) return true;
  if (res.writableNeedDrain) {
    const queued = res.writableLength;
    if (++meter.stalled > budget.maxStreamEvents || queued > budget.maxStreamBytes) {
      meter.overflowBytes = queued;
      res.destroy();
      return false;
    }
  } else {
    meter.stalled = 0;
  }
  res.write(chunk);
  return true;
}
