/**
 * A POSTed message on a Streamable HTTP endpoint (transports §Sending Messages to the Server):
 * its body, received into one object ({@link PostBody}), and the channel a POSTed request is
 * answered on ({@link PostChannel}) — JSON when the answer is the first thing to send, else an SSE
 * stream of the session (`./streamable-sse.ts`). One object of each per request, no closures.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { encodeError } from '../errors.js';
import type { ClientSession, OutboundChannel } from '../gateway/client-session.js';
import type { View } from '../gateway/view.js';
import type { RequestContext } from '../pipeline/stage.js';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { BodyReceiver } from './guards.js';
import { parseJsonRpcMessage } from './jsonrpc-body.js';
import type { EdgeState, StreamState } from './streamable-sse.js';

/** The parts of a streamable handler a {@link PostBody} calls back into. */
export interface PostEdge {
  received(req: IncomingMessage, res: ServerResponse, view: View, meta: RequestContext, message: JsonRpcMessage): void;
  answerError(res: ServerResponse, err: unknown, reqId: string | undefined): void;
}

/** Receives one POST's body (one object per POST instead of closures) and answers its failures. */
export class PostBody implements BodyReceiver {
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
export interface PostStreams {
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
export class PostChannel implements OutboundChannel {
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
            'mcp-session-id': this.#session.externalId,
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
        'mcp-session-id': this.#session.externalId,
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
