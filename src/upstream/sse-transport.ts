/**
 * The legacy HTTP+SSE upstream transport, client side (MCP 2024-11-05, basic/transports
 * §"HTTP with SSE"; deprecated by Streamable HTTP but still served by many servers).
 *
 * One long-lived `GET` SSE stream carries every server→client message; its first event,
 * `endpoint`, names the URL the client POSTs its messages to. Framing only.
 *
 * @module
 */
import type { LookupFunction } from 'node:net';
import { Pool, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { isRequest, validateMessage, type JsonRpcMessage } from '../protocol/jsonrpc.js';
import { readSseStream, type EventSourceMessage } from './sse-parser.js';
import {
  closedTransportError,
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
import {
  serialiseMessage,
  type IncomingMessageInfo,
  type MessageTransport,
  type SendOptions,
  type TransportCloseInfo,
} from './transport.js';

/** Options for {@link createSseTransport}. */
export interface SseTransportOptions {
  /** The server's SSE URL, e.g. `http://host/sse`. Must be http(s). */
  url: string | URL;
  /** Static headers sent on the GET and on every POST (from config). Default none. */
  headers?: Readonly<Record<string, string>>;
  /** Headers computed at send time for every request (e.g. a refreshed OAuth token). */
  dynamicHeaders?: () => Readonly<Record<string, string>>;
  /** Logger, already bound to the server's name. */
  logger: Logger;
  /** undici dispatcher to use; not closed by `close()`. Default: an owned keep-alive `Pool` for the origin. */
  dispatcher?: Dispatcher;
  /** Milliseconds `start()` waits for the stream to open and deliver its `endpoint` event. Default 10 000. */
  startTimeoutMs?: number;
  /** Milliseconds to wait for the answer (202) to each POST. Default 60 000. */
  requestTimeoutMs?: number;
  /** Largest SSE event accepted, in characters. Default 32 Mi. */
  maxMessageBytes?: number;
  /**
   * DNS lookup for the sockets of the owned pool (`net.connect`'s `lookup`), e.g. the destination
   * policy's, which refuses addresses at connect time. Ignored with `dispatcher`. Default `dns.lookup`.
   */
  lookup?: LookupFunction;
}

/** A legacy HTTP+SSE {@link MessageTransport}. */
export interface SseTransport extends MessageTransport {
  /** The POST endpoint announced by the server (absolute), once `start()` resolved. */
  readonly endpoint: URL | undefined;
}

const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
const NO_INFO: IncomingMessageInfo = Object.freeze({});

class SseTransportImpl implements SseTransport {
  onmessage?: (message: JsonRpcMessage, info: IncomingMessageInfo) => void;
  onclose?: (info: TransportCloseInfo) => void;
  onerror?: (error: Error) => void;

  readonly description: string;
  readonly #url: URL;
  readonly #static: Record<string, string>;
  readonly #dynamic: (() => Readonly<Record<string, string>>) | undefined;
  readonly #logger: Logger;
  readonly #startTimeoutMs: number;
  readonly #requestTimeoutMs: number;
  readonly #maxMessageBytes: number;
  readonly #givenDispatcher: Dispatcher | undefined;
  readonly #lookup: LookupFunction | undefined;
  #dispatcher: Dispatcher | undefined;
  #ownsDispatcher = false;
  #endpoint: URL | undefined;
  #endpointPath = '';
  #started = false;
  #closed = false;
  #closePromise: Promise<void> | undefined;
  readonly #abort = new AbortController();
  /** Settles start(): set while waiting for the `endpoint` event. */
  #onEndpoint: ((error: Error | undefined) => void) | undefined;

  constructor(options: SseTransportOptions) {
    const url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') {
      throw new GatewayError(
        'SWB_ERR_UPSTREAM_UNAVAILABLE',
        `unsupported URL scheme "${url.protocol}" (want http/https)`,
      );
    }
    this.#url = url;
    this.#static = staticHeaders(options.headers);
    this.#dynamic = options.dynamicHeaders;
    this.#logger = options.logger;
    this.#startTimeoutMs = options.startTimeoutMs ?? DEFAULT_START_TIMEOUT_MS;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.#maxMessageBytes = options.maxMessageBytes ?? DEFAULT_MAX_MESSAGE_BYTES;
    this.#givenDispatcher = options.dispatcher;
    this.#lookup = options.lookup;
    this.description = `sse ${safeUrl(url)}`;
  }

  get endpoint(): URL | undefined {
    return this.#endpoint;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('SSE transport already started');
    if (this.#closed) throw this.#closedError();
    this.#started = true;
    if (this.#givenDispatcher !== undefined) {
      this.#dispatcher = this.#givenDispatcher;
    } else {
      this.#dispatcher = new Pool(this.#url.origin, {
        keepAliveTimeout: 10_000,
        ...(this.#lookup === undefined ? {} : { connect: { lookup: this.#lookup } }),
      });
      this.#ownsDispatcher = true;
    }
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new GatewayError(
              'SWB_ERR_UPSTREAM_TIMEOUT',
              `${this.description}: no endpoint event within ${this.#startTimeoutMs} ms`,
            ),
          ),
        this.#startTimeoutMs,
      );
    });
    try {
      await Promise.race([this.#open(this.#dispatcher), timeout]);
      this.#logger.debug({ endpoint: safeUrl(this.#endpoint!) }, 'SSE endpoint received');
    } catch (err) {
      this.#onEndpoint = undefined;
      this.#closed = true;
      await this.#teardown();
      throw err;
    } finally {
      clearTimeout(timer);
    }
  }

  /** Opens the stream and waits for its `endpoint` event. */
  async #open(dispatcher: Dispatcher): Promise<void> {
    const endpointReady = new Promise<void>((resolve, reject) => {
      this.#onEndpoint = (error) => (error === undefined ? resolve() : reject(error));
    });
    let res: Dispatcher.ResponseData;
    try {
      res = await dispatcher.request({
        origin: this.#url.origin,
        path: `${this.#url.pathname}${this.#url.search}`,
        method: 'GET',
        headers: { ...this.#static, ...this.#dynamic?.(), accept: 'text/event-stream' },
        signal: this.#abort.signal,
        headersTimeout: this.#startTimeoutMs,
        bodyTimeout: 0,
      });
    } catch (err) {
      throw networkFailure(this.description, err);
    }
    if (res.statusCode < 200 || res.statusCode >= 300) {
      const excerpt = await readBodyExcerpt(res.body);
      throw httpStatusError(this.#logger, this.description, 'GET', res.statusCode, excerpt);
    }
    const type = mediaTypeOf(res.headers['content-type']);
    if (type !== 'text/event-stream') {
      res.body.destroy();
      throw new GatewayError(
        'SWB_ERR_UPSTREAM_PROTOCOL',
        `${this.description}: expected text/event-stream, got ${type || 'none'}`,
      );
    }
    void this.#readStream(res.body);
    await endpointReady;
  }

  async send(message: JsonRpcMessage, options?: SendOptions): Promise<void> {
    if (this.#closed) throw this.#closedError();
    if (this.#endpoint === undefined || this.#dispatcher === undefined) {
      throw new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: transport not started`);
    }
    let failure: GatewayError;
    try {
      const res = await this.#dispatcher.request({
        origin: this.#endpoint.origin,
        path: this.#endpointPath,
        method: 'POST',
        headers: { ...options?.headers, ...this.#static, ...this.#dynamic?.(), 'content-type': 'application/json' },
        body: serialiseMessage(message),
        signal: this.#abort.signal,
        headersTimeout: this.#requestTimeoutMs,
        bodyTimeout: this.#requestTimeoutMs,
      });
      if (res.statusCode >= 200 && res.statusCode < 300) {
        await res.body.dump().catch(() => undefined);
        return;
      }
      const excerpt = await readBodyExcerpt(res.body);
      failure = httpStatusError(this.#logger, this.description, 'POST', res.statusCode, excerpt);
    } catch (err) {
      if (this.#closed) throw this.#closedError();
      failure = networkFailure(this.description, err);
    }
    if (isRequest(message)) {
      // The caller waits for a response on the stream that will never come: answer it here.
      this.#emit(upstreamErrorResponse(message.id, failure.code, failure.message, failure.data));
      return;
    }
    throw failure;
  }

  close(): Promise<void> {
    this.#closePromise ??= this.#finish({});
    return this.#closePromise;
  }

  async #readStream(body: ResponseBody): Promise<void> {
    let error: Error | undefined;
    try {
      await readSseStream(body, { onEvent: (event) => this.#onEvent(event) }, { maxBufferSize: this.#maxMessageBytes });
    } catch (err) {
      error = networkFailure(this.description, err);
    }
    if (this.#closed) return;
    if (this.#onEndpoint !== undefined) {
      this.#onEndpoint(
        error ??
          new GatewayError('SWB_ERR_UPSTREAM_PROTOCOL', `${this.description}: stream ended before the endpoint event`),
      );
      return;
    }
    this.#logger.warn({ err: error }, 'upstream SSE stream ended');
    this.#closePromise ??= this.#finish({
      error: error ?? new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: upstream ended the SSE stream`),
    });
  }

  #onEvent(event: EventSourceMessage): void {
    if (event.event === 'endpoint') {
      if (this.#onEndpoint === undefined) {
        this.#logger.debug('ignoring repeated endpoint event');
        return;
      }
      const settle = this.#onEndpoint;
      this.#onEndpoint = undefined;
      let endpoint: URL;
      try {
        endpoint = new URL(event.data.trim(), this.#url);
      } catch {
        settle(new GatewayError('SWB_ERR_UPSTREAM_PROTOCOL', `${this.description}: invalid endpoint "${event.data}"`));
        return;
      }
      // Our POSTs carry the configured credentials: never send them to another origin.
      if (endpoint.origin !== this.#url.origin) {
        settle(
          new GatewayError(
            'SWB_ERR_UPSTREAM_PROTOCOL',
            `${this.description}: endpoint origin ${endpoint.origin} differs from the SSE URL's`,
          ),
        );
        return;
      }
      this.#endpoint = endpoint;
      this.#endpointPath = `${endpoint.pathname}${endpoint.search}`;
      settle(undefined);
      return;
    }
    if (event.event !== undefined && event.event !== 'message') {
      this.#logger.debug({ event: event.event }, 'ignoring SSE event of unknown type');
      return;
    }
    if (event.data.length === 0) return;
    let value: unknown;
    try {
      value = JSON.parse(event.data);
    } catch {
      this.#reportProtocolError('SSE event data is not JSON', event.data);
      return;
    }
    const checked = validateMessage(value);
    if (!checked.ok) {
      this.#reportProtocolError(`invalid JSON-RPC message: ${checked.reason}`, event.data);
      return;
    }
    this.#emit(checked.message);
  }

  #reportProtocolError(reason: string, data: string): void {
    this.onerror?.(protocolError(this.#logger, this.description, reason, data));
  }

  #emit(message: JsonRpcMessage): void {
    if (this.#closed) return;
    try {
      this.onmessage?.(message, NO_INFO);
    } catch (err) {
      this.#logger.error({ err }, 'onmessage handler threw');
    }
  }

  async #teardown(): Promise<void> {
    this.#abort.abort();
    if (this.#ownsDispatcher && this.#dispatcher !== undefined) {
      await this.#dispatcher.destroy().catch(() => undefined);
    }
  }

  async #finish(info: TransportCloseInfo): Promise<void> {
    const fire = !this.#closed;
    this.#closed = true;
    await this.#teardown();
    if (!fire) return;
    notifyClose(this.#logger, this.onclose, info);
  }

  #closedError(): GatewayError {
    return closedTransportError(this.description);
  }
}

/**
 * Creates a legacy HTTP+SSE transport (MCP 2024-11-05, basic/transports §HTTP with SSE).
 *
 * - `start()` opens `GET url` (`Accept: text/event-stream`) and resolves on the first `endpoint`
 *   event, whose data is a URL relative to the SSE URL; it must be on the same origin (our
 *   POSTs carry the configured credentials).
 * - `send()` POSTs one JSON message to the endpoint and resolves on a 2xx (the server answers
 *   202). A non-2xx or network failure of a request is delivered as a synthetic error response
 *   for its id (`error.data.code` = `SWB_ERR_UPSTREAM_HTTP` with `data.status`, or
 *   `…_UNAVAILABLE` / `…_TIMEOUT`) and send() resolves; for a notification or response, send()
 *   rejects with that GatewayError.
 * - `message` events are delivered with no extra info; other event types are ignored.
 * - The stream ending or failing closes the transport: `onclose({ error })` (no resumption in
 *   this protocol revision). `close()` aborts the stream and fires `onclose({})`.
 *
 * @throws GatewayError `SWB_ERR_UPSTREAM_UNAVAILABLE` when the URL is not http(s). `start()`
 *   rejects with `SWB_ERR_UPSTREAM_UNAVAILABLE` (network), `SWB_ERR_UPSTREAM_HTTP` (status, in
 *   `data.status`), `SWB_ERR_UPSTREAM_PROTOCOL` (not SSE, bad endpoint) or
 *   `SWB_ERR_UPSTREAM_TIMEOUT` (no endpoint within `startTimeoutMs`).
 */
export function createSseTransport(options: SseTransportOptions): SseTransport {
  return new SseTransportImpl(options);
}
