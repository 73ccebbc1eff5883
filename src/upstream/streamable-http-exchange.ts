/**
 * One request POST of the Streamable HTTP upstream transport, at the level of undici's dispatch
 * API: the per-request state ({@link PendingRequest}) and the dispatch handler
 * ({@link PostExchange}) that gathers a 2xx `application/json` answer in one piece and hands any
 * other answer (SSE, an HTTP error, another media type) on as a stream with undici's flow control
 * behind it ({@link ExchangeBody}).
 *
 * @module
 */
import { Readable } from 'node:stream';
import type { Dispatcher } from 'undici';
import type { GatewayError } from '../errors.js';
import type { JsonRpcId } from '../protocol/jsonrpc.js';
import type { Backoff } from '../util/backoff.js';
import { mediaTypeOf, type ResponseBody } from './http-common.js';

/** One outgoing request whose response has not arrived yet. */
export interface PendingRequest {
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
export interface HttpFailure {
  error: GatewayError;
  sessionExpired: boolean;
}

/** Stops everything still running for a request: its POST exchange and any resumption GET. */
export function abortPending(pending: PendingRequest): void {
  if (pending.aborted) return;
  pending.aborted = true;
  pending.exchange?.abort(new Error('request cancelled'));
  pending.signalController?.abort();
}

/** The signal of a request's resumption GETs (made on first use; aborted with the request). */
export function signalOf(pending: PendingRequest): AbortSignal {
  pending.signalController ??= new AbortController();
  if (pending.aborted) pending.signalController.abort();
  return pending.signalController.signal;
}

/** An answer handed on as a stream (SSE, HTTP errors, unexpected media types). */
export interface StreamedAnswer {
  readonly statusCode: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly body: ResponseBody;
}

/** The transport's side of a {@link PostExchange}. */
export interface ExchangeSink {
  /** `maxMessageBytes` (a function: the sink is a field, built before the constructor sets it). */
  maxBytes(): number;
  sessionIdHeader(header: string | string[] | undefined): void;
  json(pending: PendingRequest, text: string): void;
  streamed(pending: PendingRequest, answer: StreamedAnswer, sentSession: string | undefined): void;
  failed(pending: PendingRequest, err: unknown): void;
  tooLarge(pending: PendingRequest): void;
}

/** A body handed on as a Node stream, with undici's flow control behind it. */
export class ExchangeBody extends Readable {
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
export class PostExchange implements Dispatcher.DispatchHandler {
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
