/**
 * The SSE streams of a Streamable HTTP session, shared by its POSTed requests and its GET stream:
 * a bounded per-session event store, event writes within the stream budget (`stream-budget.ts`),
 * the standalone GET stream with its keep-alive comments, and resumption with `Last-Event-ID`
 * (transports §Resumability and Redelivery). The request checks before a stream is opened are
 * `./streamable.ts`'s; a POSTed request's stream is opened by its `PostChannel`
 * (`./streamable-post.ts`).
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import { GatewayError } from '../errors.js';
import type { ClientSession } from '../gateway/client-session.js';
import type { Gateway } from '../gateway/gateway.js';
import { IdTable } from '../protocol/id-table.js';
import { HANDOVER_TIMEOUT_MS, parseEventId, type EventId, type StreamHandover } from '../gateway/stream-handover.js';
import { reportOverflow, writeWithin, type StreamMeter, type StreamOverflowListener } from './stream-budget.js';

/** Options for {@link createSessionStreams}: those of the streamable handler it serves. */
export interface SessionStreamsOptions {
  gateway: Gateway;
  /** Interval of SSE keep-alive comments on GET streams (ms). Default 25 000. */
  keepAliveMs?: number;
  /** Told of every SSE stream closed because its client did not read it fast enough. */
  onStreamOverflow?: StreamOverflowListener | undefined;
}

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
export interface StreamState extends StreamMeter {
  readonly id: number;
  res: ServerResponse | undefined;
  done: boolean;
}

/** Per-session edge state: SSE streams and the bounded event store. */
export interface EdgeState {
  readonly sessionId: string;
  nextStream: number;
  nextSeq: number;
  readonly events: StoredEvent[];
  /** Open SSE streams of POSTed requests by stream id (an IdTable: one insert and delete each). */
  readonly streams: IdTable<StreamState>;
  standalone: StreamState | undefined;
}

/** The stream operations of one streamable handler, over the edge state of each of its sessions. */
export interface SessionStreams {
  /** The edge state of `session`, created on first use. */
  edgeOf(session: ClientSession): EdgeState;
  /** Starts the SSE response of `stream` (headers, and the 2025-11-25 priming event). */
  openSse(
    res: ServerResponse,
    session: ClientSession,
    e: EdgeState,
    stream: StreamState,
    headers?: Record<string, string>,
  ): void;
  /** Writes one SSE event, recording it for resumption. */
  writeEvent(e: EdgeState, stream: StreamState, data: string): void;
  /**
   * Opens the session's standalone GET stream on `res`.
   *
   * @throws GatewayError `SWB_ERR_SESSION_STREAM_CONFLICT` while another GET holds it
   */
  openStandalone(res: ServerResponse, session: ClientSession, e: EdgeState): void;
  /**
   * Resumes the stream named by `lastEventId` on `res`: replays the stored events after it, then
   * carries the live stream when it still is open.
   *
   * An id another replica sent (a portable session, `./stream-handover.ts`) is resumed from that
   * replica's events: the answer is then asynchronous, and its failure goes to `fail`.
   *
   * @throws GatewayError `SWB_ERR_SESSION_EVENT_EXPIRED` when the id is malformed or the events
   *   after it are gone
   */
  resume(
    res: ServerResponse,
    session: ClientSession,
    e: EdgeState,
    lastEventId: string,
    fail: (err: unknown) => void,
  ): void;
}

/** Creates the per-session stream state and operations of one streamable handler. */
export function createSessionStreams(options: SessionStreamsOptions): SessionStreams {
  const { gateway } = options;
  const edge = new WeakMap<ClientSession, EdgeState>();
  const keepAliveMs = options.keepAliveMs ?? 25_000;
  // Read per use so a hot reload of `sessions.eventStoreSize` applies at once.
  const storeSizeOf = () => gateway.config.sessions.eventStoreSize;
  const link = gateway.streamHandover;
  // Portable sessions' event ids name this replica, so that another one can ask it for them.
  const ownTag = `.${link.replica}`;
  const tagOf = () => (gateway.sessionSealer === undefined ? '' : ownTag);

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
      idLine = `id: ${stream.id}.${seq}${tagOf()}\n`;
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
    res.writeHead(200, { ...SSE_HEADERS, 'mcp-session-id': session.externalId, ...headers });
    res.flushHeaders();
    // 2025-11-25: a priming event with an id lets the client resume before the first message.
    if (storeSizeOf() > 0 && session.protocolVersion === '2025-11-25') {
      res.write(`id: ${stream.id}.${e.nextSeq - 1}${tagOf()}\ndata: \n\n`);
    }
    res.on('close', () => {
      if (stream.res === res) stream.res = undefined;
    });
  }

  /** The session's standalone (GET) stream state, created on first use. */
  function standaloneOf(e: EdgeState): StreamState {
    return (e.standalone ??= { id: STANDALONE_STREAM, res: undefined, done: false, stalled: 0, overflowBytes: 0 });
  }

  function openStandalone(res: ServerResponse, session: ClientSession, e: EdgeState): void {
    if (e.standalone?.res) {
      throw new GatewayError('SWB_ERR_SESSION_STREAM_CONFLICT', 'Conflict: only one GET stream per session is allowed');
    }
    const stream = standaloneOf(e);
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

  function resume(
    res: ServerResponse,
    session: ClientSession,
    e: EdgeState,
    lastEventId: string,
    fail: (err: unknown) => void,
  ): void {
    const id = parseEventId(lastEventId);
    if (id === undefined) {
      throw new GatewayError('SWB_ERR_SESSION_EVENT_EXPIRED', `Unknown Last-Event-ID: ${lastEventId}`);
    }
    if (id.replica !== undefined && id.replica !== link.replica) {
      resumeForeign(res, session, e, id, lastEventId, fail);
      return;
    }
    const { stream: streamId, seq } = id;
    const live = streamId === STANDALONE_STREAM ? e.standalone : e.streams.get(streamId);
    const oldest = e.events.find((ev) => ev.stream === streamId);
    const replays = e.events.some((ev) => ev.stream === streamId && ev.seq > seq);
    if (!live && !replays && (oldest === undefined || oldest.seq > seq + 1)) {
      throw new GatewayError('SWB_ERR_SESSION_EVENT_EXPIRED', `Events after ${lastEventId} are no longer available`);
    }
    res.writeHead(200, { ...SSE_HEADERS, 'mcp-session-id': session.externalId });
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
      res.write(`id: ${ev.stream}.${ev.seq}${tagOf()}\nevent: message\ndata: ${ev.data}\n\n`);
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

  /**
   * Resumes on this replica a stream another replica sent `id` on: asks that replica for its
   * stored events after `id`. The standalone stream moves here (the owner has let it go, and
   * passes the session's later notifications on); when the owner does not answer (it is gone),
   * the standalone stream opens here without the events it held. A request's stream is replayed
   * with the owner's ids as far as the owner has stored it, then ended; while the request is
   * still open there, the client resumes it again for the rest.
   */
  function resumeForeign(
    res: ServerResponse,
    session: ClientSession,
    e: EdgeState,
    id: EventId,
    lastEventId: string,
    fail: (err: unknown) => void,
  ): void {
    const request = link.request;
    if (request === undefined) {
      throw new GatewayError(
        'SWB_ERR_SESSION_EVENT_EXPIRED',
        `Last-Event-ID ${lastEventId} was sent by another replica, and there is no shared channel to ask it (sessions.redisUrl)`,
      );
    }
    request(session.id, id.replica!, id.stream, id.seq, (handover) => {
      if (res.destroyed) return;
      try {
        if (id.stream === STANDALONE_STREAM) takeOverStandalone(res, session, e, id, handover);
        else replayForeign(res, session, id, handover, lastEventId);
      } catch (err) {
        fail(err);
      }
    });
  }

  function takeOverStandalone(
    res: ServerResponse,
    session: ClientSession,
    e: EdgeState,
    id: EventId,
    handover: StreamHandover | undefined,
  ): void {
    if (handover === undefined || handover.truncated === true) {
      gateway.logger.warn(
        { session: session.id, replica: id.replica, after: id.seq },
        handover === undefined
          ? `the replica that held this session's stream did not hand its events over within ${HANDOVER_TIMEOUT_MS} ms; the stream goes on here without them`
          : 'the events handed over by another replica were cut to their size bound; the stream goes on here without the rest',
      );
    }
    if (e.standalone?.res) {
      e.standalone.res.end();
      e.standalone.res = undefined;
    }
    const stream = standaloneOf(e);
    res.writeHead(200, { ...SSE_HEADERS, 'mcp-session-id': session.externalId });
    res.flushHeaders();
    stream.res = res;
    res.on('close', () => {
      if (stream.res === res) stream.res = undefined;
    });
    // Written as this replica's events (stored here, ids of this replica) before the stream is
    // attached, so they precede every notification passed on from now.
    for (const [, data] of handover?.events ?? []) writeEvent(e, stream, data);
    attachStandalone(session, e, stream, res);
  }

  function replayForeign(
    res: ServerResponse,
    session: ClientSession,
    id: EventId,
    handover: StreamHandover | undefined,
    lastEventId: string,
  ): void {
    if (handover === undefined || (!handover.live && handover.events.length === 0)) {
      throw new GatewayError('SWB_ERR_SESSION_EVENT_EXPIRED', `Events after ${lastEventId} are no longer available`);
    }
    res.writeHead(200, { ...SSE_HEADERS, 'mcp-session-id': session.externalId });
    // Still open on the owner: the client resumes again for the rest, after this pause.
    if (handover.live) res.write(`retry: ${FOREIGN_RETRY_MS}\n\n`);
    for (const [seq, data] of handover.events) {
      res.write(`id: ${id.stream}.${seq}.${id.replica!}\nevent: message\ndata: ${data}\n\n`);
    }
    res.end();
  }

  /**
   * Hands this replica's stored events of a session's stream over to another replica (see
   * `StreamHandoverLink.source`). The standalone stream is let go: its open response ended, the
   * session's channel detached, so the session passes its notifications on from now.
   */
  function handOver(session: ClientSession, streamId: number, after: number): StreamHandover | undefined {
    const e = edge.get(session);
    if (e === undefined) return undefined;
    const events: Array<readonly [number, string]> = [];
    let size = 0;
    let truncated = false;
    for (const ev of e.events) {
      if (ev.stream !== streamId || ev.seq <= after) continue;
      size += ev.data.length + 16;
      if (size > MAX_HANDOVER_CHARS) {
        truncated = true;
        break;
      }
      events.push([ev.seq, ev.data]);
    }
    if (streamId !== STANDALONE_STREAM) {
      const live = e.streams.get(streamId);
      return { events, live: live !== undefined && !live.done, ...(truncated ? { truncated } : {}) };
    }
    const standalone = e.standalone;
    if (standalone !== undefined) {
      e.standalone = undefined;
      const open = standalone.res;
      standalone.res = undefined;
      standalone.done = true;
      open?.end();
      session.attachStandalone(undefined);
    }
    // Its events now live on the new holder.
    for (let i = e.events.length - 1; i >= 0; i--) if (e.events[i]!.stream === STANDALONE_STREAM) e.events.splice(i, 1);
    return { events, live: true, ...(truncated ? { truncated } : {}) };
  }
  link.source = handOver;

  return { edgeOf, openSse, writeEvent, openStandalone, resume };
}

/** The SSE `retry` (ms) on a request stream replayed from another replica while it is still open there. */
const FOREIGN_RETRY_MS = 500;

/**
 * Largest handover answer, in characters of event data (768 KiB): it travels as one message on
 * the shared channel, whose messages are bounded at 1 MiB.
 */
const MAX_HANDOVER_CHARS = 768 * 1024;
