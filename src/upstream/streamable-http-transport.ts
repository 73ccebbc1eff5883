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
 * @module
 */
import { Readable } from 'node:stream';
import type { LookupFunction } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  isRequest,
  isResponse,
  validateMessage,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcRequest,
} from '../protocol/jsonrpc.js';
import { createBackoff, type Backoff } from '../util/backoff.js';
import {
  closedTransportError,
  excerptOf,
  httpStatusError,
  mediaTypeOf,
  networkFailure,
  notifyClose,
  protocolError,
  readBodyExcerpt,
  safeUrl,
  staticHeaders,
  upstreamErrorResponse,
  type ResponseBody,
} from './http-common.js';
import { readSseStream, type EventSourceMessage } from './sse-parser.js';
import { IdTable } from '../protocol/id-table.js';
import {
  SENT,
  serialiseMessage,
  type IncomingMessageInfo,
  type MessageTransport,
  type SendOptions,
  type TransportCloseInfo,
} from './transport.js';

/** Options for {@link createStreamableHttpTransport}. */
export interface StreamableHttpTransportOptions {
  /** The server's MCP endpoint, e.g. `https://mcp.example.com/mcp`. Must be http(s). */
  url: string | URL;
  /**
   * Static headers sent on every request (from config: credentials, API keys). Headers this
   * transport owns (`Accept`, `Content-Type`, `Mcp-Session-Id`, `MCP-Protocol-Version`,
   * `Last-Event-ID`, hop-by-hop headers) are ignored here. Default none.
   */
  headers?: Readonly<Record<string, string>>;
  /**
   * Headers computed at send time and added to every request, the standalone GET stream
   * included (e.g. a refreshed OAuth client-credentials token). Called synchronously.
   */
  dynamicHeaders?: () => Readonly<Record<string, string>>;
  /** Logger, already bound to the server's name. */
  logger: Logger;
  /**
   * undici dispatcher to send through (an `Agent`, a `Pool`, a mock-free proxy agent …). Not
   * closed by `close()`. Default: a keep-alive `Pool` for the URL's origin, owned and closed by
   * this transport.
   */
  dispatcher?: Dispatcher;
  /**
   * Milliseconds to wait for the response headers of any request. Bodies are not timed here: a
   * request's body, JSON or SSE, lives as long as the request, and the caller's per-request
   * timeout ({@link UpstreamConnection}) ends it by sending `notifications/cancelled`, which
   * aborts the exchange. Default 60 000.
   */
  requestTimeoutMs?: number;
  /**
   * Consecutive failed attempts to resume a request's SSE stream (GET + `Last-Event-ID`) before
   * the request fails. An attempt that reopens the stream resets the count. Default 3.
   */
  maxResumeAttempts?: number;
  /** First delay before reconnecting a dropped stream when the server sent no `retry:`. Default 1000 ms. */
  reconnectInitialDelayMs?: number;
  /** Cap of the reconnection backoff. Default 30 000 ms. */
  reconnectMaxDelayMs?: number;
  /** Largest JSON body or SSE event accepted, in bytes (characters for SSE). Default 32 MiB. */
  maxMessageBytes?: number;
  /**
   * Also treat a `400` whose body mentions the session, received while holding a session id, as
   * "session expired". The spec says 404, but SDK v1 servers (e.g. server-everything) answer 400
   * "No valid session ID provided" for a session they no longer know; without this a restarted
   * upstream would stay half-alive. Default true.
   */
  sessionExpiredOn400?: boolean;
  /** Connection cap of the default pool (each open SSE stream holds one). Default 64. */
  maxConnections?: number;
  /**
   * DNS lookup for the sockets of the owned pool (`net.connect`'s `lookup`), e.g. the destination
   * policy's, which refuses addresses at connect time. Ignored with `dispatcher`. Default `dns.lookup`.
   */
  lookup?: LookupFunction;
}

/** A Streamable HTTP {@link MessageTransport} exposing its session state. */
export interface StreamableHttpTransport extends MessageTransport {
  /** The `Mcp-Session-Id` the server issued in its initialize response, if any. */
  readonly sessionId: string | undefined;
  /** The `MCP-Protocol-Version` sent on requests (negotiated version), if known yet. */
  readonly protocolVersion: string | undefined;
  /** Sets the `MCP-Protocol-Version` sent from now on (always implemented here). */
  setProtocolVersion(version: string): void;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_RESUME_ATTEMPTS = 3;
const DEFAULT_RECONNECT_INITIAL_MS = 1000;
const DEFAULT_RECONNECT_MAX_MS = 30_000;
const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
const DEFAULT_MAX_CONNECTIONS = 64;
/** How long close() waits for the DELETE that ends the session. */
const DELETE_TIMEOUT_MS = 5000;
const NO_INFO: IncomingMessageInfo = Object.freeze({});
/** 4xx statuses after which reopening the standalone stream may succeed later. */
const TRANSIENT_4XX = new Set([408, 409, 425, 429]);
/** Visible ASCII only (MCP: the session id MUST consist of 0x21–0x7E). */
const SESSION_ID_RE = /^[\x21-\x7e]+$/;

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

// ---------------------------------------------------------------------------------------------
// The transport.

/** One outgoing request whose response has not arrived yet. */
interface PendingRequest {
  readonly id: JsonRpcId;
  readonly method: string;
  /** Per-request extra headers (passthrough, identity). */
  readonly extraHeaders: Readonly<Record<string, string>> | undefined;
  /** The client request's id, for log lines. */
  readonly reqId: string | undefined;
  /** Set once the request is cancelled or the transport closes: nothing more is read for it. */
  aborted: boolean;
  /** The undici controller of the POST exchange while it runs (see {@link PostExchange}). */
  exchange: Dispatcher.DispatchController | undefined;
  /** Aborts resumption GETs; made on the first resumption only. */
  signalController: AbortController | undefined;
  /** Last SSE event id seen on this request's stream: the resumption cursor. */
  lastEventId: string | undefined;
  /** The server's `retry:` for this stream, in ms. */
  retryMs: number | undefined;
  responded: boolean;
  /** Consecutive resumption GETs that did not reopen the stream. */
  failedResumes: number;
  backoff: Backoff | undefined;
}

/** Outcome of a non-2xx response. */
interface HttpFailure {
  error: GatewayError;
  sessionExpired: boolean;
}

/** Stops everything still running for a request: its POST exchange and any resumption GET. */
function abortPending(pending: PendingRequest): void {
  if (pending.aborted) return;
  pending.aborted = true;
  pending.exchange?.abort(new Error('request cancelled'));
  pending.signalController?.abort();
}

/** The signal of a request's resumption GETs (made on first use; aborted with the request). */
function signalOf(pending: PendingRequest): AbortSignal {
  pending.signalController ??= new AbortController();
  if (pending.aborted) pending.signalController.abort();
  return pending.signalController.signal;
}

/** An answer handed on as a stream (SSE, HTTP errors, unexpected media types). */
interface StreamedAnswer {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: ResponseBody;
}

/** The transport's side of a {@link PostExchange}. */
interface ExchangeSink {
  /** `maxMessageBytes` (a function: the sink is a field, built before the constructor sets it). */
  maxBytes(): number;
  sessionIdHeader(header: string | string[] | undefined): void;
  json(pending: PendingRequest, text: string): void;
  streamed(pending: PendingRequest, answer: StreamedAnswer, sentSession: string | undefined): void;
  failed(pending: PendingRequest, err: unknown): void;
  tooLarge(pending: PendingRequest): void;
}

/** A body handed on as a Node stream, with undici's flow control behind it. */
class ExchangeBody extends Readable {
  readonly #controller: Dispatcher.DispatchController;

  constructor(controller: Dispatcher.DispatchController) {
    super();
    this.#controller = controller;
  }

  override _read(): void {
    if (this.#controller.paused) this.#controller.resume();
  }

  override _destroy(err: Error | null, callback: (error?: Error | null) => void): void {
    if (!this.#controller.aborted && !this.readableEnded) this.#controller.abort(err ?? new Error('body destroyed'));
    callback(err);
  }
}

/**
 * The undici dispatch handler of one request POST (undici `Dispatcher.DispatchHandler`). A 2xx
 * `application/json` answer is gathered here (bounded by `maxMessageBytes`) and delivered in one
 * piece; any other answer becomes an {@link ExchangeBody} stream for the transport's general
 * path. One object per request, no closures.
 */
class PostExchange implements Dispatcher.DispatchHandler {
  readonly #sink: ExchangeSink;
  readonly #pending: PendingRequest;
  readonly #initialize: boolean;
  readonly #sentSession: string | undefined;
  /** `json`: gathering a JSON body; `stream`: handed on; `done`: finished or failed. */
  #mode: 'start' | 'json' | 'stream' | 'done' = 'start';
  #first: Buffer | undefined = undefined;
  #more: Buffer[] | undefined = undefined;
  #size = 0;
  #body: ExchangeBody | undefined = undefined;

  constructor(sink: ExchangeSink, pending: PendingRequest, initialize: boolean, sentSession: string | undefined) {
    this.#sink = sink;
    this.#pending = pending;
    this.#initialize = initialize;
    this.#sentSession = sentSession;
  }

  onRequestStart(controller: Dispatcher.DispatchController): void {
    this.#pending.exchange = controller;
    if (this.#pending.aborted) controller.abort(new Error('request cancelled'));
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    if (this.#initialize) this.#sink.sessionIdHeader(headers['mcp-session-id']);
    if (statusCode >= 200 && statusCode < 300 && mediaTypeOf(headers['content-type']) === 'application/json') {
      this.#mode = 'json';
      return;
    }
    this.#mode = 'stream';
    const body = new ExchangeBody(controller);
    this.#body = body;
    this.#sink.streamed(this.#pending, { statusCode, headers, body }, this.#sentSession);
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#mode === 'stream') {
      if (!this.#body!.push(chunk)) controller.pause();
      return;
    }
    if (this.#mode !== 'json') return;
    this.#size += chunk.length;
    if (this.#size > this.#sink.maxBytes()) {
      this.#mode = 'done';
      this.#first = this.#more = undefined;
      controller.abort(new Error('response body too large'));
      this.#sink.tooLarge(this.#pending);
      return;
    }
    if (this.#first === undefined) this.#first = chunk;
    else (this.#more ??= [this.#first]).push(chunk);
  }

  onResponseEnd(): void {
    if (this.#mode === 'stream') {
      this.#mode = 'done';
      this.#pending.exchange = undefined; // finished: nothing left to abort
      this.#body!.push(null);
      return;
    }
    if (this.#mode !== 'json') return;
    this.#mode = 'done';
    const text =
      this.#more !== undefined
        ? Buffer.concat(this.#more, this.#size).toString('utf8')
        : (this.#first?.toString('utf8') ?? '');
    this.#first = this.#more = undefined;
    this.#pending.exchange = undefined;
    this.#sink.json(this.#pending, text);
  }

  onResponseError(_controller: Dispatcher.DispatchController, error: Error): void {
    const mode = this.#mode;
    this.#mode = 'done';
    this.#pending.exchange = undefined;
    if (mode === 'stream') {
      this.#body!.destroy(error);
      return;
    }
    if (mode !== 'done') this.#sink.failed(this.#pending, error);
  }
}

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
  #started = false;
  /** No more sends or deliveries (close() called or the session expired). */
  #closed = false;
  /** onclose has fired. */
  #closeFired = false;
  #closePromise: Promise<void> | undefined;
  /** Aborts the standalone GET stream and notification POSTs. */
  readonly #abort = new AbortController();
  readonly #pending = new IdTable<PendingRequest>();
  readonly #timers = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  #getStreamStarted = false;

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
      this.#pending.set(request.id, pending);
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
    const pending = this.#pending.get(requestId);
    if (pending === undefined) return;
    this.#pending.delete(requestId);
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
    json: (pending, text) => this.#deliverJson(text, pending),
    streamed: (pending, answer, sentSession) => {
      this.#onStreamedAnswer(answer, pending, sentSession).catch((err: unknown) => this.#exchangeFailed(pending, err));
    },
    failed: (pending, err) => this.#exchangeFailed(pending, err),
    tooLarge: (pending) =>
      this.#fail(
        pending,
        'SWB_ERR_UPSTREAM_PROTOCOL',
        `${this.description}: response body larger than ${this.#maxMessageBytes} bytes`,
      ),
  };

  /** A request's exchange failed on the network (or its dispatch threw). */
  #exchangeFailed(pending: PendingRequest, err: unknown): void {
    if (!this.#isLive(pending)) return;
    const error = networkFailure(this.description, err);
    this.#fail(pending, error.code, error.message);
  }

  /** Every answer to a request POST that is not a 2xx JSON body, read as a stream. */
  async #onStreamedAnswer(
    res: StreamedAnswer,
    pending: PendingRequest,
    sentSession: string | undefined,
  ): Promise<void> {
    const status = res.statusCode;
    if (status < 200 || status >= 300) {
      const failure = await this.#httpFailure(res, sentSession);
      this.#fail(pending, failure.error.code, failure.error.message, failure.error.data);
      if (failure.sessionExpired) this.#expire();
      return;
    }
    const type = mediaTypeOf(res.headers['content-type']);
    if (type === 'text/event-stream') {
      await this.#consumeRequestStream(res.body, pending);
      return;
    }
    const excerpt = await readBodyExcerpt(res.body);
    const reason = `HTTP ${status} ${type === '' ? 'without a body type' : `with unexpected ${type}`} in answer to a request`;
    this.#logger.warn({ reqId: pending.reqId, status, excerpt: excerptOf(excerpt) }, reason);
    this.#fail(pending, 'SWB_ERR_UPSTREAM_PROTOCOL', `${this.description}: ${reason}`, { status });
  }

  #takeSessionId(header: string | string[] | undefined): void {
    const value = firstHeader(header);
    if (value === undefined) return;
    if (!SESSION_ID_RE.test(value)) {
      this.#logger.warn('upstream sent an Mcp-Session-Id with characters outside 0x21-0x7E; ignored');
      return;
    }
    this.#sessionId = value;
    this.#logger.debug({ sessionId: value }, 'upstream session established');
  }

  /** Turns a non-2xx response into a GatewayError, detecting a lost session (404, see options). */
  async #httpFailure(
    res: { readonly statusCode: number; readonly body: ResponseBody },
    sentSession: string | undefined,
  ): Promise<HttpFailure> {
    const status = res.statusCode;
    // The body is read for the log and to recognise a lost session; the error carries the status
    // only (message and data), so nothing an upstream answers is shown to a client.
    const excerpt = await readBodyExcerpt(res.body);
    const data = { status };
    const sessionExpired =
      sentSession !== undefined &&
      (status === 404 || (status === 400 && this.#sessionExpiredOn400 && /session/i.test(excerpt)));
    if (sessionExpired) {
      this.#logger.debug({ status, excerpt: excerptOf(excerpt) }, 'upstream no longer knows the session');
      return {
        sessionExpired,
        error: new GatewayError(
          'SWB_ERR_UPSTREAM_SESSION_EXPIRED',
          `${this.description}: upstream no longer knows session (HTTP ${status})`,
          { data },
        ),
      };
    }
    return { sessionExpired, error: httpStatusError(this.#logger, this.description, 'request', status, excerpt) };
  }

  // -- incoming ----------------------------------------------------------------------------------

  /** A request's `application/json` answer: one message or an array of them. */
  #deliverJson(text: string, pending: PendingRequest): void {
    if (!this.#isLive(pending)) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.#fail(pending, 'SWB_ERR_UPSTREAM_PROTOCOL', `${this.description}: response body is not JSON`);
      return;
    }
    if (Array.isArray(parsed)) for (const item of parsed as unknown[]) this.#deliverValue(item, pending);
    else this.#deliverValue(parsed, pending);
    if (!pending.responded) {
      this.#fail(
        pending,
        'SWB_ERR_UPSTREAM_PROTOCOL',
        `${this.description}: JSON body did not contain the response to request ${JSON.stringify(pending.id)}`,
      );
    }
  }

  /** Reads a request's SSE stream; resumes it if it ends before the response arrived. */
  async #consumeRequestStream(body: ResponseBody, pending: PendingRequest): Promise<void> {
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
            this.#onEvent(event, pending);
          },
        },
        { maxBufferSize: this.#maxMessageBytes },
      );
    } catch (err) {
      failure = err;
    }
    if (!this.#isLive(pending)) return;
    if (progressed) pending.backoff?.reset();
    if (pending.lastEventId !== undefined) {
      // MCP 2025-11-25: the server may close a stream early (after a priming event) and expects
      // the client to poll it back with GET + Last-Event-ID. A disconnect is not a cancellation.
      this.#logger.debug(
        { reqId: pending.reqId, requestId: pending.id, lastEventId: pending.lastEventId },
        'resuming request stream',
      );
      void this.#resume(pending);
      return;
    }
    if (failure !== undefined) {
      const error = networkFailure(this.description, failure);
      this.#fail(pending, error.code, `${error.message} (response stream broke before the response)`);
    } else {
      this.#fail(
        pending,
        'SWB_ERR_UPSTREAM_PROTOCOL',
        `${this.description}: response stream ended before the response to request ${JSON.stringify(pending.id)} (no event id to resume from)`,
      );
    }
  }

  async #resume(pending: PendingRequest): Promise<void> {
    pending.backoff ??= createBackoff({ initialDelayMs: this.#reconnectInitialMs, maxDelayMs: this.#reconnectMaxMs });
    const backoffDelay = pending.backoff.next();
    await this.#sleep(pending.retryMs ?? backoffDelay);
    if (!this.#isLive(pending)) return;
    const sentSession = this.#sessionId;
    let error: GatewayError;
    try {
      const res = await this.#get(pending.lastEventId, signalOf(pending));
      if (!this.#isLive(pending)) {
        res.body.destroy();
        return;
      }
      const type = mediaTypeOf(res.headers['content-type']);
      if (res.statusCode >= 200 && res.statusCode < 300 && type === 'text/event-stream') {
        pending.failedResumes = 0;
        await this.#consumeRequestStream(res.body, pending);
        return;
      }
      if (res.statusCode >= 200 && res.statusCode < 300) {
        res.body.destroy();
        this.#fail(
          pending,
          'SWB_ERR_UPSTREAM_PROTOCOL',
          `${this.description}: resumption answered ${type || 'no body type'}`,
        );
        return;
      }
      const failure = await this.#httpFailure(res, sentSession);
      if (failure.sessionExpired) {
        this.#fail(pending, failure.error.code, failure.error.message, failure.error.data);
        this.#expire();
        return;
      }
      if (res.statusCode === 405) {
        // The server offers no GET: the stream cannot be resumed at all.
        this.#fail(
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
      if (!this.#isLive(pending)) return;
      error = networkFailure(this.description, err);
    }
    pending.failedResumes++;
    if (pending.failedResumes < this.#maxResumeAttempts) {
      this.#logger.debug(
        { reqId: pending.reqId, err: error, requestId: pending.id, attempt: pending.failedResumes },
        'resumption failed',
      );
      void this.#resume(pending);
      return;
    }
    this.#fail(
      pending,
      error.code,
      `${error.message} (gave up resuming the response stream after ${pending.failedResumes} attempts)`,
      error.data,
    );
  }

  /** The standalone GET stream (server-initiated requests and notifications), kept open with backoff. */
  async #runGetStream(): Promise<void> {
    const backoff = createBackoff({ initialDelayMs: this.#reconnectInitialMs, maxDelayMs: this.#reconnectMaxMs });
    let lastEventId: string | undefined;
    let retryMs: number | undefined;
    while (!this.#closed) {
      const sentSession = this.#sessionId;
      let res: Dispatcher.ResponseData;
      try {
        res = await this.#get(lastEventId, this.#abort.signal);
      } catch (err) {
        if (this.#closed) return;
        this.#logger.debug({ err: networkFailure(this.description, err) }, 'standalone SSE stream: connect failed');
        await this.#sleep(retryMs ?? backoff.next());
        continue;
      }
      if (this.#closed) {
        res.body.destroy();
        return;
      }
      const status = res.statusCode;
      if (status === 405) {
        await res.body.dump().catch(() => undefined);
        this.#logger.debug('upstream offers no standalone SSE stream (405)');
        return;
      }
      if (status < 200 || status >= 300) {
        const failure = await this.#httpFailure(res, sentSession);
        if (failure.sessionExpired) {
          this.#expire();
          return;
        }
        if (status < 500 && !TRANSIENT_4XX.has(status)) {
          this.#logger.warn({ err: failure.error }, 'standalone SSE stream refused; not retrying');
          return;
        }
        this.#logger.debug({ err: failure.error }, 'standalone SSE stream refused; retrying');
        await this.#sleep(retryMs ?? backoff.next());
        continue;
      }
      if (mediaTypeOf(res.headers['content-type']) !== 'text/event-stream') {
        res.body.destroy();
        this.#logger.warn('standalone GET answered without text/event-stream; not retrying');
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
              this.#onEvent(event, undefined);
            },
          },
          { maxBufferSize: this.#maxMessageBytes },
        );
      } catch (err) {
        if (this.#closed) return;
        this.#logger.debug({ err }, 'standalone SSE stream broke');
      }
      if (this.#closed) return;
      await this.#sleep(retryMs ?? backoff.next());
    }
  }

  #onEvent(event: EventSourceMessage, pending: PendingRequest | undefined): void {
    if (event.data.length === 0) return; // priming event / keep-alive: only its id matters
    if (event.event !== undefined && event.event !== 'message') {
      this.#logger.debug({ event: event.event }, 'ignoring SSE event of unknown type');
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(event.data);
    } catch {
      this.#reportProtocolError('SSE event data is not JSON', event.data);
      return;
    }
    this.#deliverValue(value, pending);
  }

  #deliverValue(value: unknown, pending: PendingRequest | undefined): void {
    const checked = validateMessage(value);
    if (!checked.ok) {
      this.#reportProtocolError(`invalid JSON-RPC message: ${checked.reason}`, JSON.stringify(value));
      return;
    }
    const message = checked.message;
    if (isResponse(message) && message.id !== null) {
      const target = pending !== undefined && pending.id === message.id ? pending : this.#pending.get(message.id);
      if (target !== undefined && !target.responded) {
        target.responded = true;
        this.#pending.delete(target.id);
        if (target.method === 'initialize' && 'result' in message) this.#onInitializeResult(message.result);
      }
    }
    this.#emit(message, pending === undefined ? NO_INFO : { relatedRequestId: pending.id });
  }

  #onInitializeResult(result: Record<string, unknown>): void {
    if (typeof result.protocolVersion !== 'string') return;
    // The negotiated version goes on every later request (the connection confirms it through
    // setProtocolVersion); the GET stream opened right below needs it already.
    this.#protocolVersion ??= result.protocolVersion;
    if (!this.#getStreamStarted) {
      this.#getStreamStarted = true;
      void this.#runGetStream();
    }
  }

  #reportProtocolError(reason: string, data: string): void {
    this.onerror?.(protocolError(this.#logger, this.description, reason, data));
  }

  #emit(message: JsonRpcMessage, info: IncomingMessageInfo): void {
    if (this.#closed) return;
    try {
      this.onmessage?.(message, info);
    } catch (err) {
      this.#logger.error({ err }, 'onmessage handler threw');
    }
  }

  /** Delivers the synthetic error response of a request that cannot be answered any more. */
  #fail(pending: PendingRequest, code: ErrorCode, message: string, data?: Record<string, unknown>): void {
    if (pending.responded) return;
    pending.responded = true;
    this.#pending.delete(pending.id);
    this.#logger.debug({ reqId: pending.reqId, requestId: pending.id, code, message }, 'upstream request failed');
    this.#emit(upstreamErrorResponse(pending.id, code, message, data), { relatedRequestId: pending.id });
  }

  #isLive(pending: PendingRequest): boolean {
    return !this.#closed && !pending.responded && !pending.aborted;
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
    for (const pending of this.#pending.values()) abortPending(pending);
    this.#pending.clear();
    for (const entry of this.#timers) {
      clearTimeout(entry.timer);
      entry.resolve();
    }
    this.#timers.clear();
    const dispatcher = this.#dispatcher;
    if (sendDelete && dispatcher !== undefined && this.#sessionId !== undefined) {
      // MCP: clients that no longer need a session SHOULD end it; 405 = the server does not allow it.
      try {
        const res = await dispatcher.request({
          origin: this.#origin,
          path: this.#path,
          method: 'DELETE',
          headers: this.#headers('application/json, text/event-stream'),
          signal: AbortSignal.timeout(DELETE_TIMEOUT_MS),
          headersTimeout: DELETE_TIMEOUT_MS,
          bodyTimeout: DELETE_TIMEOUT_MS,
        });
        await res.body.dump().catch(() => undefined);
        if (res.statusCode >= 300 && res.statusCode !== 404 && res.statusCode !== 405) {
          this.#logger.debug({ status: res.statusCode }, 'upstream refused session DELETE');
        }
      } catch (err) {
        this.#logger.debug({ err }, 'session DELETE failed');
      }
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
