/**
 * The streamed answers of the Streamable HTTP upstream transport (MCP basic/transports §Streamable
 * HTTP): a request's answer that is not a 2xx JSON body (an HTTP error, an SSE stream, another
 * media type), a request's response stream, its resumption with GET + `Last-Event-ID` when it ends
 * before the response (§Resumability and Redelivery), and the standalone GET stream for
 * server-initiated messages (§Listening for Messages from the Server), kept open with backoff.
 *
 * The functions work on a {@link StreamHost}: the transport's state and its delivery of events.
 *
 * @module
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { createBackoff } from '../util/backoff.js';
import { excerptOf, mediaTypeOf, networkFailure, readBodyExcerpt, type ResponseBody } from './http-common.js';
import { readSseStream, type EventSourceMessage } from './sse-parser.js';
import { signalOf, type HttpFailure, type PendingRequest, type StreamedAnswer } from './streamable-http-exchange.js';
import type { GatewayError } from '../errors.js';

/** 4xx statuses after which reopening the standalone stream may succeed later. */
const TRANSIENT_4XX = new Set([408, 409, 425, 429]);

/** What the stream functions need from their transport. */
export interface StreamHost {
  /** The transport's description, for error messages. */
  readonly description: string;
  readonly logger: Logger;
  /** Largest SSE event accepted, in characters. */
  readonly maxMessageBytes: number;
  /** Consecutive failed resumptions before a request fails. */
  readonly maxResumeAttempts: number;
  /** First reconnection delay without a server `retry:` (ms). */
  readonly reconnectInitialMs: number;
  /** Cap of the reconnection backoff (ms). */
  readonly reconnectMaxMs: number;
  /** Aborts the standalone GET stream (the transport closing). */
  readonly abortSignal: AbortSignal;
  /** Whether the transport closed. */
  closed(): boolean;
  /** The session id now (sent with the next request). */
  sessionId(): string | undefined;
  /** Opens an SSE stream with GET. */
  get(lastEventId: string | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData>;
  /** Classifies a non-2xx response. */
  httpFailure(
    res: { readonly statusCode: number; readonly body: ResponseBody },
    sentSession: string | undefined,
  ): Promise<HttpFailure>;
  /** Whether anything is still expected for a request. */
  isLive(pending: PendingRequest): boolean;
  /** Answers a request with a synthetic error response. */
  fail(pending: PendingRequest, code: ErrorCode, message: string, data?: Record<string, unknown>): void;
  /** Delivers one SSE event (of a request's stream, or of the standalone stream when undefined). */
  onEvent(event: EventSourceMessage, pending: PendingRequest | undefined): void;
  /** Waits, or less when the transport closes meanwhile. */
  sleep(ms: number): Promise<void>;
  /** The upstream lost the session. */
  expire(): void;
  /**
   * The upstream speaks the modern era: a response stream that ended early is not resumed, and an
   * HTTP 4xx may carry the request's JSON-RPC error as its body.
   */
  modern(): boolean;
  /**
   * Delivers a JSON body that is the JSON-RPC error response to `pending`; false (nothing
   * delivered) for any other body.
   */
  deliverErrorBody(pending: PendingRequest, text: string): boolean;
}

/** Largest 4xx body read as a modern JSON-RPC error answer, bytes. */
const MODERN_ERROR_BODY_BYTES = 64 * 1024;

/** Every answer to a request POST that is not a 2xx JSON body, read as a stream. */
export async function onStreamedAnswer(
  host: StreamHost,
  res: StreamedAnswer,
  pending: PendingRequest,
  sentSession: string | undefined,
): Promise<void> {
  const status = res.statusCode;
  if (
    status >= 400 &&
    status < 500 &&
    host.modern() &&
    mediaTypeOf(res.headers['content-type']) === 'application/json'
  ) {
    // The modern era answers some JSON-RPC errors with an HTTP 4xx (transports/streamable-http
    // §Server Validation, and e.g. MissingRequiredClientCapability): the body is the answer.
    const text = await readBodyExcerpt(res.body, MODERN_ERROR_BODY_BYTES);
    if (host.deliverErrorBody(pending, text)) return;
    const failure = await host.httpFailure({ statusCode: status, body: Readable.from([text]) }, sentSession);
    host.fail(pending, failure.error.code, failure.error.message, failure.error.data);
    return;
  }
  if (status < 200 || status >= 300) {
    const failure = await host.httpFailure(res, sentSession);
    host.fail(pending, failure.error.code, failure.error.message, failure.error.data);
    if (failure.sessionExpired) host.expire();
    return;
  }
  const type = mediaTypeOf(res.headers['content-type']);
  if (type === 'text/event-stream') {
    await consumeRequestStream(host, res.body, pending);
    return;
  }
  const excerpt = await readBodyExcerpt(res.body);
  const reason = `HTTP ${status} ${type === '' ? 'without a body type' : `with unexpected ${type}`} in answer to a request`;
  host.logger.warn({ reqId: pending.reqId, status, excerpt: excerptOf(excerpt) }, reason);
  host.fail(pending, 'SWB_ERR_UPSTREAM_PROTOCOL', `${host.description}: ${reason}`, { status });
}

/** Reads a request's SSE stream; resumes it if it ends before the response arrived. */
export async function consumeRequestStream(
  host: StreamHost,
  body: ResponseBody,
  pending: PendingRequest,
): Promise<void> {
  let failure: unknown;
  let progressed = false;
  try {
    await readSseStream(
      body,
      {
        onId: (id) => {
          pending.lastEventId = id;
          progressed = true;
        },
        onRetry: (ms) => (pending.retryMs = ms),
        onEvent: (event) => {
          progressed = true;
          host.onEvent(event, pending);
        },
      },
      { maxBufferSize: host.maxMessageBytes },
    );
  } catch (err) {
    failure = err;
  }
  if (!host.isLive(pending)) return;
  if (progressed) pending.backoff?.reset();
  if (pending.lastEventId !== undefined && !host.modern()) {
    // MCP 2025-11-25: the server may close a stream early (after a priming event) and expects
    // the client to poll it back with GET + Last-Event-ID. A disconnect is not a cancellation.
    host.logger.debug(
      { reqId: pending.reqId, requestId: pending.id, lastEventId: pending.lastEventId },
      'resuming request stream',
    );
    void resumeRequestStream(host, pending);
    return;
  }
  if (failure !== undefined) {
    const error = networkFailure(host.description, failure);
    host.fail(pending, error.code, `${error.message} (response stream broke before the response)`);
  } else {
    host.fail(
      pending,
      'SWB_ERR_UPSTREAM_PROTOCOL',
      `${host.description}: response stream ended before the response to request ${JSON.stringify(pending.id)} (no event id to resume from)`,
    );
  }
}

/** Resumes a request's stream with GET + `Last-Event-ID` after the server's `retry:` or a backoff. */
export async function resumeRequestStream(host: StreamHost, pending: PendingRequest): Promise<void> {
  pending.backoff ??= createBackoff({ initialDelayMs: host.reconnectInitialMs, maxDelayMs: host.reconnectMaxMs });
  const backoffDelay = pending.backoff.next();
  await host.sleep(pending.retryMs ?? backoffDelay);
  if (!host.isLive(pending)) return;
  const sentSession = host.sessionId();
  let error: GatewayError;
  try {
    const res = await host.get(pending.lastEventId, signalOf(pending));
    if (!host.isLive(pending)) {
      res.body.destroy();
      return;
    }
    const type = mediaTypeOf(res.headers['content-type']);
    if (res.statusCode >= 200 && res.statusCode < 300 && type === 'text/event-stream') {
      pending.failedResumes = 0;
      await consumeRequestStream(host, res.body, pending);
      return;
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      res.body.destroy();
      host.fail(
        pending,
        'SWB_ERR_UPSTREAM_PROTOCOL',
        `${host.description}: resumption answered ${type || 'no body type'}`,
      );
      return;
    }
    const failure = await host.httpFailure(res, sentSession);
    if (failure.sessionExpired) {
      host.fail(pending, failure.error.code, failure.error.message, failure.error.data);
      host.expire();
      return;
    }
    if (res.statusCode === 405) {
      // The server offers no GET: the stream cannot be resumed at all.
      host.fail(
        pending,
        'SWB_ERR_UPSTREAM_UNAVAILABLE',
        `${failure.error.message} (cannot resume the response stream)`,
        {
          status: 405,
        },
      );
      return;
    }
    error = failure.error;
  } catch (err) {
    if (!host.isLive(pending)) return;
    error = networkFailure(host.description, err);
  }
  pending.failedResumes++;
  if (pending.failedResumes < host.maxResumeAttempts) {
    host.logger.debug(
      { reqId: pending.reqId, err: error, requestId: pending.id, attempt: pending.failedResumes },
      'resumption failed',
    );
    void resumeRequestStream(host, pending);
    return;
  }
  host.fail(
    pending,
    error.code,
    `${error.message} (gave up resuming the response stream after ${pending.failedResumes} attempts)`,
    error.data,
  );
}

/** The standalone GET stream (server-initiated requests and notifications), kept open with backoff. */
export async function runGetStream(host: StreamHost): Promise<void> {
  const backoff = createBackoff({ initialDelayMs: host.reconnectInitialMs, maxDelayMs: host.reconnectMaxMs });
  let lastEventId: string | undefined;
  let retryMs: number | undefined;
  while (!host.closed()) {
    const sentSession = host.sessionId();
    let res: Dispatcher.ResponseData;
    try {
      res = await host.get(lastEventId, host.abortSignal);
    } catch (err) {
      if (host.closed()) return;
      host.logger.debug({ err: networkFailure(host.description, err) }, 'standalone SSE stream: connect failed');
      await host.sleep(retryMs ?? backoff.next());
      continue;
    }
    if (host.closed()) {
      res.body.destroy();
      return;
    }
    const status = res.statusCode;
    if (status === 405) {
      await res.body.dump().catch(() => undefined);
      host.logger.debug('upstream offers no standalone SSE stream (405)');
      return;
    }
    if (status < 200 || status >= 300) {
      const failure = await host.httpFailure(res, sentSession);
      if (failure.sessionExpired) {
        host.expire();
        return;
      }
      if (status < 500 && !TRANSIENT_4XX.has(status)) {
        host.logger.warn({ err: failure.error }, 'standalone SSE stream refused; not retrying');
        return;
      }
      host.logger.debug({ err: failure.error }, 'standalone SSE stream refused; retrying');
      await host.sleep(retryMs ?? backoff.next());
      continue;
    }
    if (mediaTypeOf(res.headers['content-type']) !== 'text/event-stream') {
      res.body.destroy();
      host.logger.warn('standalone GET answered without text/event-stream; not retrying');
      return;
    }
    try {
      await readSseStream(
        res.body,
        {
          onId: (id) => {
            lastEventId = id;
            backoff.reset();
          },
          onRetry: (ms) => (retryMs = ms),
          onEvent: (event) => {
            backoff.reset();
            host.onEvent(event, undefined);
          },
        },
        { maxBufferSize: host.maxMessageBytes },
      );
    } catch (err) {
      if (host.closed()) return;
      host.logger.debug({ err }, 'standalone SSE stream broke');
    }
    if (host.closed()) return;
    await host.sleep(retryMs ?? backoff.next());
  }
}
