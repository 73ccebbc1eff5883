/**
 * The Streamable HTTP front door, MCP transports §Streamable HTTP (2025-03-26 … 2025-11-25):
 * POST answered as JSON (when nothing precedes the response) or SSE, GET standalone stream,
 * DELETE, `Mcp-Session-Id`, `MCP-Protocol-Version` checks and resumability with `Last-Event-ID`
 * from a bounded per-session event store.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { encodeError, GatewayError, isGatewayError } from '../errors.js';
import { sendHttpError } from './error-response.js';
import type { ClientSession, OutboundChannel } from '../gateway/client-session.js';
import type { RequestContext } from '../pipeline/stage.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../gateway/client-session.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import { IdTable } from '../protocol/id-table.js';
import { accepts, isJsonContentType, receiveBody, type BodyReceiver } from './guards.js';
import { parseJsonRpcMessage } from './jsonrpc-body.js';
import { reportOverflow, writeWithin, type StreamMeter, type StreamOverflowListener } from './stream-budget.js';

/** Options for {@link createStreamableHandler}. */
export interface StreamableOptions {
  gateway: Gateway;
  /** Largest accepted body (bytes). */
  maxBodyBytes: number;
  /** Events kept per session for resumption (0 disables resumability). */
  eventStoreSize: number;
  /** Interval of SSE keep-alive comments on GET streams (ms). Default 25 000. */
  keepAliveMs?: number;
  /**
   * Told of every SSE stream closed because its client did not read it fast enough
   * (`http.maxStreamBytes` / `http.maxStreamEvents`, see `stream-budget.ts`).
   */
  onStreamOverflow?: StreamOverflowListener | undefined;
}

const SUPPORTED = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);
const SSE_HEADERS = {
  'content-type': 'text/event-stream',
  'cache-control': 'no-cache, no-transform',
  connection: 'keep-alive',
  'x-accel-buffering': 'no',
};
const STANDALONE_STREAM = 0;

interface StoredEvent {
  readonly stream: number;
  readonly seq: number;
  readonly data: string;
}

/** One SSE stream of a session (the GET stream, or a POSTed request's); survives reconnections. */
interface StreamState extends StreamMeter {
  readonly id: number;
  res: ServerResponse | undefined;
  done: boolean;
}

/** Per-session edge state: SSE streams and the bounded event store. */
interface EdgeState {
  readonly sessionId: string;
  nextStream: number;
  nextSeq: number;
  readonly events: StoredEvent[];
  /** Open SSE streams of POSTed requests by stream id (an IdTable: one insert and delete each). */
  readonly streams: IdTable<StreamState>;
  standalone: StreamState | undefined;
}

/**
 * Creates the handler for one MCP endpoint family. `handle(req, res, view)` serves POST/GET/DELETE
 * on the endpoint whose view the router resolved.
 */
export function createStreamableHandler(options: StreamableOptions) {
  const { gateway } = options;
  const edge = new WeakMap<ClientSession, EdgeState>();
  const keepAliveMs = options.keepAliveMs ?? 25_000;
  // Read per use so a hot reload of `sessions.eventStoreSize` / `http.maxBodyBytes` applies at once.
  const storeSizeOf = () => gateway.config.sessions.eventStoreSize;

  function edgeOf(session: ClientSession): EdgeState {
    let e = edge.get(session);
    if (!e) {
      e = {
        sessionId: session.id,
        nextStream: 1,
        nextSeq: 1,
        events: [],
        streams: new IdTable(),
        standalone: undefined,
      };
      edge.set(session, e);
    }
    return e;
  }

  /**
   * Writes one SSE event, recording it for resumption. A stream whose client does not keep up is
   * closed once over its budget; with an event store the client resumes with `Last-Event-ID`.
   */
  function writeEvent(e: EdgeState, stream: StreamState, data: string): void {
    let idLine = '';
    if (storeSizeOf() > 0) {
      const seq = e.nextSeq++;
      e.events.push({ stream: stream.id, seq, data });
      if (e.events.length > storeSizeOf()) e.events.shift();
      idLine = `id: ${stream.id}.${seq}\n`;
    }
    const res = stream.res;
    if (res) writeBounded(e, stream, res, `${idLine}event: message\ndata: ${data}\n\n`);
  }

  /** Writes to a long-lived stream within `http.maxStreamBytes` / `http.maxStreamEvents`. */
  function writeBounded(e: EdgeState, stream: StreamState, res: ServerResponse, chunk: string): void {
    if (writeWithin(res, chunk, stream, gateway.config.http)) return;
    if (stream.res === res) stream.res = undefined;
    reportOverflow(gateway.logger, options.onStreamOverflow, {
      stream: stream.id === STANDALONE_STREAM ? 'streamable-get' : 'streamable-post',
      sessionId: e.sessionId,
      queuedBytes: stream.overflowBytes,
      queuedEvents: stream.stalled,
    });
  }

  function openSse(
    res: ServerResponse,
    session: ClientSession,
    e: EdgeState,
    stream: StreamState,
    headers: Record<string, string> = {},
  ): void {
    res.writeHead(200, { ...SSE_HEADERS, 'mcp-session-id': session.id, ...headers });
    res.flushHeaders();
    // 2025-11-25: a priming event with an id lets the client resume before the first message.
    if (storeSizeOf() > 0 && session.protocolVersion === '2025-11-25') {
      res.write(`id: ${stream.id}.${e.nextSeq - 1}\ndata: \n\n`);
    }
    res.on('close', () => {
      if (stream.res === res) stream.res = undefined;
    });
  }

  const streams: PostStreams = { edgeOf, openSse, writeEvent };
  const postChannel = (res: ServerResponse, session: ClientSession, requestId: JsonRpcId, meta: RequestContext) =>
    new PostChannel(streams, res, session, requestId, meta);

  function checkProtocolVersion(req: IncomingMessage): void {
    const v = req.headers['mcp-protocol-version'];
    if (v !== undefined && !SUPPORTED.has(v as string)) {
      throw new GatewayError(
        'SWB_ERR_HTTP_BAD_PROTOCOL_VERSION',
        `Unsupported MCP-Protocol-Version: ${String(v)} (supported: ${[...SUPPORTED].join(', ')})`,
      );
    }
  }

  function sessionFor(req: IncomingMessage, view: View, principal: Principal): ClientSession {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id === '')
      throw new GatewayError('SWB_ERR_SESSION_REQUIRED', 'Bad Request: Mcp-Session-Id header is required');
    const session = gateway.getSession(id);
    // A session is bound to its endpoint (view) and principal; presented by anyone else, or on
    // another endpoint, it does not exist (a session id is never a credential).
    if (!session || session.view !== view || session.principal.id !== principal.id) {
      throw new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'Session not found');
    }
    return session;
  }

  /** POST: checks the headers, then reads the body; {@link received} goes on from there. */
  function post(req: IncomingMessage, res: ServerResponse, view: View, meta: RequestContext): void {
    if (!accepts(req, 'application/json') || !accepts(req, 'text/event-stream')) {
      throw new GatewayError(
        'SWB_ERR_HTTP_NOT_ACCEPTABLE',
        'Not Acceptable: Accept must list application/json and text/event-stream',
      );
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      throw new GatewayError(
        'SWB_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
        'Unsupported Media Type: Content-Type must be application/json',
      );
    }
    const http = gateway.config.http;
    receiveBody(req, http.maxBodyBytes, new PostBody(edgeHandler, req, res, view, meta, http.maxJsonDepth));
  }

  /** The POSTed message, read and valid: routes it to its session (or opens one). */
  function received(
    req: IncomingMessage,
    res: ServerResponse,
    view: View,
    meta: RequestContext,
    message: JsonRpcMessage,
  ): void {
    const principal = meta.principal;
    if ('method' in message && message.method === 'initialize' && 'id' in message) {
      if (req.headers['mcp-session-id'] !== undefined) {
        throw new GatewayError(
          'SWB_ERR_HTTP_INVALID_REQUEST',
          'Invalid Request: initialize must not carry Mcp-Session-Id',
        );
      }
      const session = gateway.createSession(view, principal, 'streamable-http');
      meta.method = 'initialize';
      session.handleRequest(message, postChannel(res, session, message.id, meta), meta);
      return;
    }
    const session = sessionFor(req, view, principal);
    checkProtocolVersion(req);
    if (!('method' in message)) {
      meta.method = 'response';
      session.handleResponse(message);
      res.writeHead(202, { 'content-length': 0 }).end();
    } else if (!('id' in message) || message.id === undefined) {
      meta.method = message.method;
      session.handleNotification(message, meta.reqId);
      res.writeHead(202, { 'content-length': 0 }).end();
    } else {
      meta.method = message.method;
      session.handleRequest(message, postChannel(res, session, message.id, meta), meta);
    }
  }

  /** Answers a failed exchange; an error that is not a GatewayError is logged with the request's id. */
  function answerError(res: ServerResponse, err: unknown, reqId: string | undefined): void {
    // A refused request is the client's doing: debug, never error (a client cannot flood the error log).
    if (!isGatewayError(err) || err.family === 'config')
      gateway.logger.error({ reqId, err }, 'unhandled error on the MCP endpoint');
    else gateway.logger.debug({ reqId, code: err.code, status: err.status }, 'request refused');
    const allow = isGatewayError(err) && err.code === 'SWB_ERR_HTTP_METHOD_NOT_ALLOWED';
    sendHttpError(res, err, null, allow ? { allow: 'GET, POST, DELETE' } : {});
  }

  const edgeHandler: PostEdge = { received, answerError };

  function get(req: IncomingMessage, res: ServerResponse, view: View, principal: Principal): void {
    if (!accepts(req, 'text/event-stream')) {
      throw new GatewayError('SWB_ERR_HTTP_NOT_ACCEPTABLE', 'Not Acceptable: Accept must list text/event-stream');
    }
    const session = sessionFor(req, view, principal);
    checkProtocolVersion(req);
    session.touch(); // opening or resuming the stream is the client's activity; the stream itself is not
    const e = edgeOf(session);
    const lastEventId = req.headers['last-event-id'];
    if (typeof lastEventId === 'string' && lastEventId !== '') {
      resume(res, session, e, lastEventId);
      return;
    }
    if (e.standalone?.res) {
      throw new GatewayError('SWB_ERR_SESSION_STREAM_CONFLICT', 'Conflict: only one GET stream per session is allowed');
    }
    const stream: StreamState = e.standalone ?? {
      id: STANDALONE_STREAM,
      res: undefined,
      done: false,
      stalled: 0,
      overflowBytes: 0,
    };
    e.standalone = stream;
    stream.res = res;
    openSse(res, session, e, stream);
    attachStandalone(session, e, stream, res);
  }

  function attachStandalone(session: ClientSession, e: EdgeState, stream: StreamState, res: ServerResponse): void {
    const keepAlive = setInterval(() => writeBounded(e, stream, res, ': keepalive\n\n'), keepAliveMs);
    keepAlive.unref();
    res.on('close', () => {
      clearInterval(keepAlive);
      // With an event store the channel stays attached while disconnected: events are kept for
      // a GET with Last-Event-ID (transports §Resumability and Redelivery).
      if (storeSizeOf() === 0 && (stream.res === undefined || stream.res === res)) session.attachStandalone(undefined);
    });
    session.attachStandalone({
      retains: storeSizeOf() > 0,
      get closed() {
        return stream.res === undefined;
      },
      send(message) {
        writeEvent(e, stream, JSON.stringify(message));
      },
      end() {
        stream.res?.end();
      },
    });
  }

  function resume(res: ServerResponse, session: ClientSession, e: EdgeState, lastEventId: string): void {
    const dot = lastEventId.indexOf('.');
    const streamId = Number(lastEventId.slice(0, dot));
    const seq = Number(lastEventId.slice(dot + 1));
    if (dot < 0 || !Number.isInteger(streamId) || !Number.isInteger(seq)) {
      throw new GatewayError('SWB_ERR_SESSION_EVENT_EXPIRED', `Unknown Last-Event-ID: ${lastEventId}`);
    }
    const live = streamId === STANDALONE_STREAM ? e.standalone : e.streams.get(streamId);
    const oldest = e.events.find((ev) => ev.stream === streamId);
    const replays = e.events.some((ev) => ev.stream === streamId && ev.seq > seq);
    if (!live && !replays && (oldest === undefined || oldest.seq > seq + 1)) {
      throw new GatewayError('SWB_ERR_SESSION_EVENT_EXPIRED', `Events after ${lastEventId} are no longer available`);
    }
    res.writeHead(200, { ...SSE_HEADERS, 'mcp-session-id': session.id });
    res.flushHeaders();
    if (live && live.res && live.res !== res) {
      live.res.end();
      live.res = undefined;
    }
    catchUp(res, session, e, streamId, seq, live);
  }

  /**
   * Replays the stored events of `streamId` after `afterSeq`, then attaches `res` as the live
   * stream. The replay is paced by `'drain'`: it stops whenever the response's queue is past its
   * high-water mark and goes on from there once the client has read it, so a resumed stream
   * holds at most one event beyond the mark however long the backlog, and live events (counted
   * against the stream budget) follow only once the client has caught up. Until then new events
   * are stored, and replayed in turn.
   */
  function catchUp(
    res: ServerResponse,
    session: ClientSession,
    e: EdgeState,
    streamId: number,
    afterSeq: number,
    live: StreamState | undefined,
  ): void {
    if (res.destroyed) return;
    let last = afterSeq;
    for (const ev of e.events) {
      if (ev.stream !== streamId || ev.seq <= last) continue;
      res.write(`id: ${ev.stream}.${ev.seq}\nevent: message\ndata: ${ev.data}\n\n`);
      last = ev.seq;
      if (res.writableNeedDrain) {
        res.once('drain', () => catchUp(res, session, e, streamId, last, live));
        return;
      }
    }
    if (live && !live.done) {
      if (live.res !== undefined) {
        res.end(); // another GET took the stream over meanwhile
        return;
      }
      live.res = res;
      res.on('close', () => {
        if (live.res === res) live.res = undefined;
      });
      if (streamId === STANDALONE_STREAM) attachStandalone(session, e, live, res);
      return;
    }
    res.end();
  }

  function del(req: IncomingMessage, res: ServerResponse, view: View, principal: Principal): void {
    const session = sessionFor(req, view, principal);
    session.close('deleted by client');
    res.writeHead(200).end();
  }

  /**
   * Serves one request on an MCP endpoint. Answers every failure itself (a JSON-RPC error body
   * with the HTTP status of its GatewayError; 500 and an `error` log line for anything else), now
   * or, for a POST, when its body has been read: no promise.
   */
  return function handle(req: IncomingMessage, res: ServerResponse, view: View, meta: RequestContext): void {
    try {
      switch (req.method) {
        case 'POST':
          post(req, res, view, meta);
          return;
        case 'GET':
          get(req, res, view, meta.principal);
          return;
        case 'DELETE':
          del(req, res, view, meta.principal);
          return;
        default:
          throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', `Method ${req.method ?? '?'} not allowed`);
      }
    } catch (err) {
      answerError(res, err, meta.reqId);
    }
  };
}

/** The parts of a streamable handler a {@link PostBody} calls back into. */
interface PostEdge {
  received(req: IncomingMessage, res: ServerResponse, view: View, meta: RequestContext, message: JsonRpcMessage): void;
  answerError(res: ServerResponse, err: unknown, reqId: string | undefined): void;
}

/** Receives one POST's body (one object per POST instead of closures) and answers its failures. */
class PostBody implements BodyReceiver {
  readonly #edge: PostEdge;
  readonly #req: IncomingMessage;
  readonly #res: ServerResponse;
  readonly #view: View;
  readonly #meta: RequestContext;
  readonly #maxDepth: number;

  constructor(
    edge: PostEdge,
    req: IncomingMessage,
    res: ServerResponse,
    view: View,
    meta: RequestContext,
    maxDepth: number,
  ) {
    this.#edge = edge;
    this.#req = req;
    this.#res = res;
    this.#view = view;
    this.#meta = meta;
    this.#maxDepth = maxDepth;
  }

  body(text: string): void {
    const message = parseJsonRpcMessage(this.#res, text, this.#maxDepth);
    if (message === undefined) return; // answered 400
    try {
      this.#edge.received(this.#req, this.#res, this.#view, this.#meta, message);
    } catch (err) {
      this.#edge.answerError(this.#res, err, this.#meta.reqId);
    }
  }

  failed(err: unknown): void {
    this.#edge.answerError(this.#res, err, this.#meta.reqId);
  }
}

/** What a {@link PostChannel} needs from its handler's per-session stream state. */
interface PostStreams {
  edgeOf(session: ClientSession): EdgeState;
  openSse(res: ServerResponse, session: ClientSession, e: EdgeState, stream: StreamState): void;
  writeEvent(e: EdgeState, stream: StreamState, data: string): void;
}

/**
 * The channel of one POSTed request (transports §Sending Messages to the Server): the answer as
 * `application/json` when nothing precedes it, else an SSE stream opened by the first message
 * that is not the answer. One object per request with its methods on the prototype (no
 * per-request closures or `close` listener: a client gone before the answer shows as
 * `res.destroyed`).
 */
class PostChannel implements OutboundChannel {
  readonly #streams: PostStreams;
  readonly #res: ServerResponse;
  readonly #session: ClientSession;
  readonly #requestId: JsonRpcId;
  readonly #meta: RequestContext;
  #sse: StreamState | undefined;
  #done = false;

  constructor(
    streams: PostStreams,
    res: ServerResponse,
    session: ClientSession,
    requestId: JsonRpcId,
    meta: RequestContext,
  ) {
    this.#streams = streams;
    this.#res = res;
    this.#session = session;
    this.#requestId = requestId;
    this.#meta = meta;
  }

  get closed(): boolean {
    return this.#done || (this.#sse ? this.#sse.res === undefined : this.#res.destroyed);
  }

  send(message: JsonRpcMessage): void {
    if (this.#done) return;
    const isFinal = !('method' in message) && message.id === this.#requestId;
    if (isFinal && 'error' in message) this.#meta.rpcError = message.error.code;
    this.#deliver(JSON.stringify(message), isFinal);
  }

  sendResult(id: JsonRpcId, resultJson: string): void {
    if (this.#done) return;
    // What JSON.stringify gives for { jsonrpc, id, result }, with the result already serialised.
    this.#deliver(`{"jsonrpc":"2.0","id":${JSON.stringify(id)},"result":${resultJson}}`, id === this.#requestId);
  }

  /** Sends one serialised message; `isFinal` when it is the answer to this channel's request. */
  #deliver(data: string, isFinal: boolean): void {
    const res = this.#res;
    let sse = this.#sse;
    if (!sse) {
      if (isFinal) {
        this.#done = true;
        if (!res.destroyed) {
          // Content-Length, not chunked: headers and body leave in one write (one syscall, one packet
          // for small answers).
          res.writeHead(200, {
            'content-type': 'application/json',
            'content-length': Buffer.byteLength(data),
            'mcp-session-id': this.#session.id,
          });
          res.end(data);
        }
        return;
      }
      if (res.destroyed) return; // a JSON-mode request whose client left: nothing can carry it
      const e = this.#streams.edgeOf(this.#session);
      sse = { id: e.nextStream++, res, done: false, stalled: 0, overflowBytes: 0 };
      this.#sse = sse;
      e.streams.set(sse.id, sse);
      this.#streams.openSse(res, this.#session, e, sse);
    }
    const e = this.#streams.edgeOf(this.#session);
    this.#streams.writeEvent(e, sse, data);
    if (isFinal) {
      this.#done = true;
      sse.done = true;
      e.streams.delete(sse.id);
      sse.res?.end();
    }
  }

  fail(error: unknown, id: JsonRpcId): void {
    if (this.#done) return;
    const encoded = encodeError(error, { responseStarted: this.#sse !== undefined || this.#res.destroyed, id });
    if (encoded.kind === 'http') {
      this.#done = true;
      const body = JSON.stringify(encoded.response);
      this.#res.writeHead(encoded.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        'mcp-session-id': this.#session.id,
        ...encoded.headers,
      });
      this.#res.end(body);
      return;
    }
    this.send(encoded.response);
  }

  end(): void {
    if (this.#done) return;
    this.#done = true;
    const sse = this.#sse;
    if (sse) {
      sse.done = true;
      this.#streams.edgeOf(this.#session).streams.delete(sse.id);
      sse.res?.end();
    } else if (!this.#res.destroyed) {
      this.#res.writeHead(202, { 'content-length': 0 });
      this.#res.end();
    }
  }
}
