/**
 * The Streamable HTTP upstream transport, client side (MCP basic/transports §"Streamable HTTP",
 * protocol revisions 2025-03-26 … 2025-11-25).
 *
 * Framing only: one POST per outgoing message, JSON or SSE responses turned into incoming
 * messages tagged with the request they answer, the standalone GET stream, resumption with
 * `Last-Event-ID`, and the session header. Ids, timeouts and initialize logic belong to
 * {@link UpstreamConnection}. HTTP-level failures of a request become a JSON-RPC error response
 * for that request, produced here, so that no caller ever waits for an answer that cannot come.
 *
 * The parts: the request POST's undici handler (`streamable-http-exchange.ts`), streamed answers,
 * the SSE streams and their resumption (`streamable-http-streams.ts`), the requests in flight
 * and the delivery of their answers (`streamable-http-delivery.ts`), the session id and its
 * `DELETE` (`streamable-http-session.ts`), the options (`streamable-http-options.ts`); this
 * module holds the transport's state, sending and lifecycle.
 *
 * @module
 */
import type { LookupFunction } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { encodeHeaderValue, MODERN_METHODS } from '../protocol/era.js';
import { isRequest, type JsonRpcId, type JsonRpcMessage, type JsonRpcRequest } from '../protocol/jsonrpc.js';
import {
  closedTransportError,
  networkFailure,
  notifyClose,
  protocolError,
  safeUrl,
  staticHeaders,
  type ResponseBody,
} from './http-common.js';
import { acceptSessionId, classifyHttpFailure, deleteSession } from './streamable-http-session.js';
import {
  abortPending,
  PostExchange,
  type ExchangeSink,
  type HttpFailure,
  type PendingRequest,
} from './streamable-http-exchange.js';
import {
  DEFAULT_MAX_CONNECTIONS,
  DEFAULT_MAX_MESSAGE_BYTES,
  DEFAULT_MAX_RESUME_ATTEMPTS,
  DEFAULT_RECONNECT_INITIAL_MS,
  DEFAULT_RECONNECT_MAX_MS,
  DEFAULT_REQUEST_TIMEOUT_MS,
  type StreamableHttpTransport,
  type StreamableHttpTransportOptions,
} from './streamable-http-options.js';
import { RequestDelivery } from './streamable-http-delivery.js';
import { onStreamedAnswer, runGetStream, type StreamHost } from './streamable-http-streams.js';
import {
  SENT,
  serialiseMessage,
  type IncomingMessageInfo,
  type SendOptions,
  type TransportCloseInfo,
} from './transport.js';

export type { StreamableHttpTransport, StreamableHttpTransportOptions } from './streamable-http-options.js';

class StreamableHttpTransportImpl implements StreamableHttpTransport {
  onmessage?: (message: JsonRpcMessage, info: IncomingMessageInfo) => void;
  onclose?: (info: TransportCloseInfo) => void;
  onerror?: (error: Error) => void;

  readonly description: string;
  readonly #origin: string;
  readonly #path: string;
  readonly #static: Record<string, string>;
  readonly #dynamic: (() => Readonly<Record<string, string>>) | undefined;
  readonly #logger: Logger;
  readonly #requestTimeoutMs: number;
  readonly #maxResumeAttempts: number;
  readonly #reconnectInitialMs: number;
  readonly #reconnectMaxMs: number;
  readonly #maxMessageBytes: number;
  readonly #sessionExpiredOn400: boolean;
  readonly #maxConnections: number;
  readonly #givenDispatcher: Dispatcher | undefined;
  readonly #lookup: LookupFunction | undefined;
  #dispatcher: Dispatcher | undefined;
  #ownsDispatcher = false;

  #sessionId: string | undefined;
  #protocolVersion: string | undefined;
  /** The upstream speaks the modern era: no session, no GET stream, no resumption, mirrored headers. */
  #modern = false;
  #started = false;
  /** No more sends or deliveries (close() called or the session expired). */
  #closed = false;
  /** onclose has fired. */
  #closeFired = false;
  #closePromise: Promise<void> | undefined;
  /** Aborts the standalone GET stream and notification POSTs. */
  readonly #abort = new AbortController();
  /** The requests in flight and the delivery of their answers. */
  readonly #delivery: RequestDelivery;
  readonly #timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  #getStreamStarted = false;
  /** The transport as the SSE stream functions see it (`streamable-http-streams.ts`). */
  readonly #streams: StreamHost;

  constructor(options: StreamableHttpTransportOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GatewayError(
        'SWB_ERR_UPSTREAM_UNAVAILABLE',
        `unsupported URL scheme "${url.protocol}" (want http/https)`,
      );
    }
    this.#origin = url.origin;
    this.#path = `${url.pathname}${url.search}`;
    this.#static = staticHeaders(options.headers);
    this.#dynamic = options.dynamicHeaders;
    this.#logger = options.logger;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#maxResumeAttempts = options.maxResumeAttempts ?? DEFAULT_MAX_RESUME_ATTEMPTS;
    this.#reconnectInitialMs = options.reconnectInitialDelayMs ?? DEFAULT_RECONNECT_INITIAL_MS;
    this.#reconnectMaxMs = Math.max(this.#reconnectInitialMs, options.reconnectMaxDelayMs ?? DEFAULT_RECONNECT_MAX_MS);
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#sessionExpiredOn400 = options.sessionExpiredOn400 ?? true;
    this.#maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    this.#givenDispatcher = options.dispatcher;
    this.#lookup = options.lookup;
    this.description = `http ${safeUrl(url)}`;
    this.#delivery = new RequestDelivery({
      description: this.description,
      logger: this.#logger,
      closed: () => this.#closed,
      onmessage: (message, info) => this.onmessage?.(message, info),
      onInitializeResult: (result) => this.#onInitializeResult(result),
      protocolError: (reason, data) => this.#reportProtocolError(reason, data),
    });
    this.#streams = {
      description: this.description,
      logger: this.#logger,
      maxMessageBytes: this.#maxMessageBytes,
      maxResumeAttempts: this.#maxResumeAttempts,
      reconnectInitialMs: this.#reconnectInitialMs,
      reconnectMaxMs: this.#reconnectMaxMs,
      abortSignal: this.#abort.signal,
      closed: () => this.#closed,
      sessionId: () => this.#sessionId,
      get: (lastEventId, signal) => this.#get(lastEventId, signal),
      httpFailure: (res, sentSession) => this.#httpFailure(res, sentSession),
      isLive: (pending) => this.#delivery.isLive(pending),
      fail: (pending, code, message, data) => this.#delivery.fail(pending, code, message, data),
      onEvent: (event, pending) => this.#delivery.onEvent(event, pending),
      sleep: (ms) => this.#sleep(ms),
      expire: () => this.#expire(),
      modern: () => this.#modern,
      deliverErrorBody: (pending, text) => this.#deliverErrorBody(pending, text),
    };
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  get protocolVersion(): string | undefined {
    return this.#protocolVersion;
  }

  setProtocolVersion(version: string): void {
    this.#protocolVersion = version;
  }

  useModernEra(version: string): void {
    this.#modern = true;
    this.#protocolVersion = version;
  }

  cancelRequest(id: JsonRpcId): void {
    const pending = this.#delivery.pending.get(id);
    if (pending === undefined) return;
    this.#delivery.pending.delete(id);
    pending.responded = true;
    abortPending(pending);
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('streamable HTTP transport already started');
    if (this.#closed) throw this.#closedError();
    this.#started = true;
    if (this.#givenDispatcher !== undefined) {
      this.#dispatcher = this.#givenDispatcher;
    } else {
      this.#dispatcher = new Pool(this.#origin, {
        connections: this.#maxConnections,
        keepAliveTimeout: 10_000,
        ...(this.#lookup === undefined ? {} : { connect: { lookup: this.#lookup } }),
      });
      this.#ownsDispatcher = true;
    }
  }

  send(message: JsonRpcMessage, options?: SendOptions): Promise<void> {
    if (this.#closed) return Promise.reject(this.#closedError());
    if (this.#dispatcher === undefined) {
      return Promise.reject(new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: transport not started`));
    }
    if (isRequest(message)) {
      const request = message;
      const pending: PendingRequest = {
        id: request.id,
        method: request.method,
        extraHeaders: options?.headers,
        reqId: options?.reqId,
        aborted: false,
        exchange: undefined,
        signalController: undefined,
        lastEventId: undefined,
        retryMs: undefined,
        responded: false,
        failedResumes: 0,
        backoff: undefined,
      };
      this.#delivery.pending.set(request.id, pending);
      // Resolves at once: every outcome of the exchange, failures included, arrives via onmessage.
      this.#startRequest(request, pending);
      return SENT;
    }
    return this.#postOther(message, options?.headers);
  }

  close(): Promise<void> {
    this.#closePromise ??= this.#shutdown({}, true);
    return this.#closePromise;
  }

  // -- outgoing ----------------------------------------------------------------------------------

  #headers(accept: string, lastEventId?: string, extra?: Readonly<Record<string, string>>): Record<string, string> {
    const headers: Record<string, string> =
      this.#dynamic === undefined && extra === undefined
        ? { ...this.#static, accept }
        : { ...extra, ...this.#static, ...this.#dynamic?.(), accept };
    if (this.#sessionId !== undefined) headers['mcp-session-id'] = this.#sessionId;
    if (this.#protocolVersion !== undefined) headers['mcp-protocol-version'] = this.#protocolVersion;
    if (lastEventId !== undefined) headers['last-event-id'] = lastEventId;
    return headers;
  }

  #post(
    message: JsonRpcMessage,
    signal: AbortSignal,
    extra?: Readonly<Record<string, string>>,
  ): Promise<Dispatcher.ResponseData> {
    const headers = this.#headers('application/json, text/event-stream', undefined, extra);
    headers['content-type'] = 'application/json';
    return this.#dispatcher!.request({
      origin: this.#origin,
      path: this.#path,
      method: 'POST',
      headers,
      body: serialiseMessage(message),
      signal,
      headersTimeout: this.#requestTimeoutMs,
      bodyTimeout: 0,
    });
  }

  #get(lastEventId: string | undefined, signal: AbortSignal): Promise<Dispatcher.ResponseData> {
    return this.#dispatcher!.request({
      origin: this.#origin,
      path: this.#path,
      method: 'GET',
      headers: this.#headers('text/event-stream', lastEventId),
      signal,
      headersTimeout: this.#requestTimeoutMs,
      bodyTimeout: 0,
    });
  }

  /** POSTs a notification or a response: 202 expected; failures reject send(). */
  async #postOther(message: JsonRpcMessage, extra?: Readonly<Record<string, string>>): Promise<void> {
    const sentSession = this.#sessionId;
    let res: Dispatcher.ResponseData;
    try {
      res = await this.#post(message, this.#abort.signal, extra);
    } catch (err) {
      if (this.#closed) throw this.#closedError();
      throw networkFailure(this.description, err);
    } finally {
      this.#afterNotification(message);
    }
    if (res.statusCode >= 200 && res.statusCode < 300) {
      // 202 Accepted (or a 200 some servers send); nothing in it concerns us.
      await res.body.dump().catch(() => undefined);
      return;
    }
    const failure = await this.#httpFailure(res, sentSession);
    if (failure.sessionExpired) this.#expire();
    throw failure.error;
  }

  /** After `notifications/cancelled` for a request of ours, stop listening to its stream. */
  #afterNotification(message: JsonRpcMessage): void {
    if (!('method' in message) || message.method !== 'notifications/cancelled') return;
    const requestId = message.params?.requestId as JsonRpcId | undefined;
    if (requestId === undefined) return;
    const pending = this.#delivery.pending.get(requestId);
    if (pending === undefined) return;
    this.#delivery.pending.delete(requestId);
    pending.responded = true;
    abortPending(pending);
  }

  /**
   * POSTs a request through undici's dispatch API with a {@link PostExchange} as the handler: a
   * JSON answer is collected and delivered without a body stream, a promise or a timer; anything
   * else (SSE, an HTTP error, another media type) goes on as a stream through
   * {@link #onStreamedAnswer}.
   */
  #startRequest(request: JsonRpcRequest, pending: PendingRequest): void {
    const headers = this.#headers('application/json, text/event-stream', undefined, pending.extraHeaders);
    headers['content-type'] = 'application/json';
    if (this.#modern) {
      // Mirrored into headers (transports/streamable-http §Standard Request Headers).
      headers['mcp-method'] = request.method;
      const field = MODERN_METHODS.get(request.method);
      const value = field === undefined ? undefined : request.params?.[field];
      if (typeof value === 'string') headers['mcp-name'] = encodeHeaderValue(value);
    }
    const exchange = new PostExchange(this.#exchangeSink, pending, request.method === 'initialize', this.#sessionId);
    try {
      this.#dispatcher!.dispatch(
        {
          origin: this.#origin,
          path: this.#path,
          method: 'POST',
          headers,
          body: serialiseMessage(request),
          headersTimeout: this.#requestTimeoutMs,
          bodyTimeout: 0,
        },
        exchange,
      );
    } catch (err) {
      this.#exchangeFailed(pending, err);
    }
  }

  /** What a {@link PostExchange} calls back into (one object per transport). */
  readonly #exchangeSink: ExchangeSink = {
    maxBytes: () => this.#maxMessageBytes,
    sessionIdHeader: (header) => this.#takeSessionId(header),
    json: (pending, text) => this.#delivery.json(text, pending),
    streamed: (pending, answer, sentSession) => {
      onStreamedAnswer(this.#streams, answer, pending, sentSession).catch((err: unknown) =>
        this.#exchangeFailed(pending, err),
      );
    },
    failed: (pending, err) => this.#exchangeFailed(pending, err),
    tooLarge: (pending) =>
      this.#delivery.fail(
        pending,
        'SWB_ERR_UPSTREAM_PROTOCOL',
        `${this.description}: response body larger than ${this.#maxMessageBytes} bytes`,
      ),
  };

  /** A request's exchange failed on the network (or its dispatch threw). */
  #exchangeFailed(pending: PendingRequest, err: unknown): void {
    if (!this.#delivery.isLive(pending)) return;
    const error = networkFailure(this.description, err);
    this.#delivery.fail(pending, error.code, error.message);
  }

  #takeSessionId(header: string | string[] | undefined): void {
    const value = acceptSessionId(header, this.#logger);
    if (value !== undefined) this.#sessionId = value;
  }

  /** Turns a non-2xx response into a GatewayError, detecting a lost session (404, see options). */
  #httpFailure(
    res: { readonly statusCode: number; readonly body: ResponseBody },
    sentSession: string | undefined,
  ): Promise<HttpFailure> {
    return classifyHttpFailure(res, sentSession, this.#logger, this.description, this.#sessionExpiredOn400);
  }

  // -- incoming ----------------------------------------------------------------------------------

  #onInitializeResult(result: Record<string, unknown>): void {
    if (typeof result.protocolVersion !== 'string') return;
    // The negotiated version goes on every later request (the connection confirms it through
    // setProtocolVersion); the GET stream opened right below needs it already.
    this.#protocolVersion ??= result.protocolVersion;
    if (!this.#getStreamStarted) {
      this.#getStreamStarted = true;
      void runGetStream(this.#streams);
    }
  }

  /** A modern upstream's 4xx body that is the JSON-RPC error response to `pending` is delivered as its answer. */
  #deliverErrorBody(pending: PendingRequest, text: string): boolean {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      return false;
    }
    if (typeof parsed !== 'object' || parsed === null || !('error' in parsed)) return false;
    if ((parsed as { id?: unknown }).id !== pending.id) return false;
    this.#delivery.deliverValue(parsed, pending);
    return pending.responded;
  }

  #reportProtocolError(reason: string, data: string): void {
    this.onerror?.(protocolError(this.#logger, this.description, reason, data));
  }

  // -- lifecycle ---------------------------------------------------------------------------------

  /** Waits `ms`, or less when the transport closes meanwhile. */
  #sleep(ms: number): Promise<void> {
    if (this.#closed) return Promise.resolve();
    return new Promise((resolve) => {
      const entry = {
        timer: setTimeout(() => {
          this.#timers.delete(entry);
          resolve();
        }, ms),
        resolve,
      };
      entry.timer.unref();
      this.#timers.add(entry);
    });
  }

  /** The upstream lost our session: the connection must re-initialize on a new transport. */
  #expire(): void {
    if (this.#closePromise !== undefined) return;
    this.#logger.warn({ sessionId: this.#sessionId }, 'upstream session expired');
    this.#closePromise = this.#shutdown({ sessionExpired: true }, false);
  }

  async #shutdown(info: TransportCloseInfo, sendDelete: boolean): Promise<void> {
    this.#closed = true;
    this.#abort.abort();
    for (const pending of this.#delivery.pending.values()) abortPending(pending);
    this.#delivery.pending.clear();
    for (const entry of this.#timers) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
    this.#timers.clear();
    const dispatcher = this.#dispatcher;
    if (sendDelete && dispatcher !== undefined && this.#sessionId !== undefined) {
      const headers = this.#headers('application/json, text/event-stream');
      await deleteSession(dispatcher, this.#origin, this.#path, headers, this.#logger);
    }
    if (this.#ownsDispatcher && dispatcher !== undefined) {
      await dispatcher.destroy().catch(() => undefined);
    }
    if (this.#closeFired) return;
    this.#closeFired = true;
    notifyClose(this.#logger, this.onclose, info);
  }

  #closedError(): GatewayError {
    return closedTransportError(this.description);
  }
}

/**
 * Creates a Streamable HTTP transport (MCP 2025-03-26 … 2025-11-25, basic/transports §Streamable
 * HTTP, client side).
 *
 * - Each `send()` is one POST (`Accept: application/json, text/event-stream`) with the static
 *   headers, `Mcp-Session-Id` once the initialize response carried one, and
 *   `MCP-Protocol-Version` once known (set by `setProtocolVersion()`, or taken from the
 *   initialize result).
 * - A request's answer — `application/json` (one message or an array) or `text/event-stream`
 *   (every `message` event) — is delivered with `relatedRequestId` = the request's id. Requests
 *   go through undici's dispatch API: a JSON answer is gathered without a body stream or a
 *   promise (at most `maxMessageBytes`, else `SWB_ERR_UPSTREAM_PROTOCOL`). A stream
 *   that ends before the response is resumed with GET + `Last-Event-ID`, after the server's
 *   `retry:` or a backoff (§Resumability and Redelivery); `maxResumeAttempts` consecutive failed
 *   attempts fail the request.
 * - Failures of a request's exchange (4xx/5xx, network error, timeout, broken stream) are
 *   delivered as an error response for its id: `error.data.code` is `SWB_ERR_UPSTREAM_HTTP`,
 *   `…_UNAVAILABLE`, `…_TIMEOUT`, `…_PROTOCOL` or `…_SESSION_EXPIRED`, `error.data.status` the
 *   HTTP status when there was one, and the message quotes the start of the body.
 * - 404 to a request carrying our session id (§Session Management) means the upstream lost the
 *   session: the request gets `SWB_ERR_UPSTREAM_SESSION_EXPIRED`, then the transport closes with
 *   `onclose({ sessionExpired: true })` (see `sessionExpiredOn400` for SDK v1 servers).
 * - After the initialize response, the standalone GET stream is opened (§Listening for Messages
 *   from the Server); 405 means there is none. It is reopened with backoff and `Last-Event-ID`
 *   when it drops. Its messages carry no `relatedRequestId`.
 * - `send()` of a request resolves at once; `send()` of a notification or response resolves on
 *   the 2xx and rejects with the GatewayError otherwise. After `notifications/cancelled` for a
 *   request, that request's stream is dropped.
 * - `close()` aborts every stream, sends `DELETE` with the session id (404/405 ignored), closes
 *   the default pool and fires `onclose({})`. In-flight requests get no synthetic response on
 *   close: `onclose` tells the caller.
 *
 * @throws GatewayError `SWB_ERR_UPSTREAM_UNAVAILABLE` when the URL is not http(s)
 */
export function createStreamableHttpTransport(options: StreamableHttpTransportOptions): StreamableHttpTransport {
  return new StreamableHttpTransportImpl(options);
}
