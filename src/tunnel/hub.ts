/**
 * The gateway side of the reverse tunnel (issue 6 §A, §C): one {@link TunnelSession} per accepted
 * WebSocket, with registration, heartbeats, eviction, per-session counters, operator requests and
 * a bounded live feed per subscriber.
 *
 * Transport-agnostic: the hub takes any {@link TunnelSocket} (a `ws` WebSocket fits as is). It
 * does no authentication — the HTTP edge authenticates and authorizes the upgrade *before*
 * calling {@link TunnelHub.accept} — and no routing: `onRegister` / `onUnregister` let the
 * gateway turn a registered session into an upstream (see `transport.ts`).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcResponse } from '../protocol/jsonrpc.js';
import {
  DEFAULT_MAX_TUNNEL_FRAME_BYTES,
  DEFAULT_TUNNEL_MAX_BUFFERED_BYTES,
  DEFAULT_TUNNEL_MAX_BUFFERED_FRAMES,
  TUNNEL_SERVER_NAME_RE,
  encodeTunnelMessage,
  parseTunnelMessage,
  type TunnelMessage,
  type TunnelServerInfo,
} from './protocol.js';

/** WebSocket close codes used by the hub (RFC 6455 §7.4; 4000–4999 are application codes). */
export const TUNNEL_CLOSE_CODES = Object.freeze({
  /** `unregister`, operator disconnect, gateway shutdown. */
  normal: 1000,
  /** Authentication or permission failure at the upgrade (used by the HTTP edge). */
  policyViolation: 1008,
  /** No frame for `heartbeatTimeoutMs`. */
  heartbeatTimeout: 4000,
  /** The peer did not read: over `maxBufferedBytes` / `maxBufferedFrames` (sent only when the socket cannot be terminated). */
  overflow: 4001,
});

/**
 * The minimal socket the hub needs. A `ws` `WebSocket` satisfies it; `message` data may be a
 * string, a Buffer, an ArrayBuffer or an array of Buffers (ws fragments).
 */
export interface TunnelSocket {
  /** Sends one frame; `sent` is called once the frame has left the process (or failed). */
  send(data: string, sent?: (err?: Error) => void): void;
  close(code?: number, reason?: string): void;
  /** Bytes queued and not yet sent (the `ws` `bufferedAmount`); absent: not bounded by bytes. */
  readonly bufferedAmount?: number;
  /** Drops the connection at once, without a closing handshake. */
  terminate?(): void;
  on(event: 'message', listener: (data: unknown, isBinary: boolean) => void): unknown;
  on(event: 'close', listener: (code: number, reason: unknown) => void): unknown;
}

/** Counters of one session (seed: connected at, last activity, messages, bytes). */
export interface TunnelSessionStats {
  /** Epoch ms when the socket was accepted. */
  readonly connectedAt: number;
  /** Epoch ms of the last frame in either direction. */
  readonly lastActivity: number;
  /** Epoch ms of the last frame received (heartbeat eviction looks at this one). */
  readonly lastReceived: number;
  readonly messagesIn: number;
  readonly messagesOut: number;
  /** UTF-8 bytes of the frames received / sent. */
  readonly bytesIn: number;
  readonly bytesOut: number;
}

/** Lifecycle of a session: `connected` until a `register` is accepted, `closed` at the end. */
export type TunnelSessionState = 'connected' | 'registered' | 'closed';

/** Why a session ended. */
export type TunnelCloseReason =
  | 'unregistered'
  | 'socket-closed'
  | 'heartbeat-timeout'
  | 'disconnected'
  | 'shutdown'
  /** The peer did not read its frames: over `maxBufferedBytes` / `maxBufferedFrames`. */
  | 'overflow';

/** The JSON shape of a session in `GET /reverse-proxy/sessions`. */
export interface TunnelSessionInfo {
  sessionId: string;
  state: TunnelSessionState;
  /** The registered server (`register.server`), or null before registration. */
  server: TunnelServerInfo | null;
  /** The owner's principal id and subject. */
  owner: { id: string; subject: string };
  connectedAt: string;
  lastActivity: string;
  messagesIn: number;
  messagesOut: number;
  bytesIn: number;
  bytesOut: number;
}

/** One event of a session's live feed (`GET /reverse-proxy/sse/{id}`). */
export type TunnelEvent =
  | { seq: number; time: number; type: 'connected'; sessionId: string }
  | { seq: number; time: number; type: 'registered'; server: TunnelServerInfo }
  | { seq: number; time: number; type: 'message'; direction: 'in' | 'out'; message: JsonRpcMessage }
  | { seq: number; time: number; type: 'closed'; reason: TunnelCloseReason };

/** A {@link TunnelEvent} before the hub stamps it with `seq` and `time`. */
type TunnelEventBody =
  | { type: 'connected'; sessionId: string }
  | { type: 'registered'; server: TunnelServerInfo }
  | { type: 'message'; direction: 'in' | 'out'; message: JsonRpcMessage }
  | { type: 'closed'; reason: TunnelCloseReason };

/** A live-feed subscription with its own bounded buffer. */
export interface TunnelSubscription {
  /**
   * Takes the buffered events (oldest first) and how many were dropped since the last call
   * because the buffer was full (oldest dropped first).
   */
  drain(): { events: TunnelEvent[]; dropped: number };
  /** True once the session ended (the `closed` event is the last) or {@link close} was called. */
  readonly closed: boolean;
  /** Total events dropped over the subscription's life. */
  readonly droppedTotal: number;
  /** Stops the subscription. */
  close(): void;
}

/** One accepted tunnel connection. */
export interface TunnelSession {
  /** Generated by the gateway (never taken from the client). */
  readonly id: string;
  /** Who opened the tunnel. */
  readonly owner: Principal;
  readonly state: TunnelSessionState;
  /** The registered server, once registered. */
  readonly server: TunnelServerInfo | undefined;
  readonly stats: TunnelSessionStats;
  /** Resolves when registered; rejects with `SWB_ERR_TUNNEL_CLOSED` if the session ends first. */
  readonly registered: Promise<void>;
  /**
   * Sends one JSON-RPC message down the tunnel as a `message` frame.
   *
   * @throws GatewayError `SWB_ERR_TUNNEL_CLOSED` after the session ended,
   *   `SWB_ERR_TUNNEL_NOT_REGISTERED` before registration
   */
  send(message: JsonRpcMessage): void;
  /**
   * Listens to JSON-RPC messages from the tunnel (except answers to {@link TunnelHub.request}).
   * Returns a function that removes the listener.
   */
  onMessage(listener: (message: JsonRpcMessage) => void): () => void;
  /** Listens for the end of the session (fires at once if already closed). Returns a remover. */
  onClose(listener: (reason: TunnelCloseReason) => void): () => void;
  /** The session as listed by the operator endpoint. */
  info(): TunnelSessionInfo;
}

/** The gateway's answer to a `register`. */
export type RegisterDecision = { ok: true } | { ok: false; reason: string };

/** Options for {@link createTunnelHub}. */
export interface TunnelHubOptions {
  /** A session with no frame received for this long is evicted by {@link TunnelHub.sweep} (ms). */
  heartbeatTimeoutMs: number;
  /** Events kept per live-feed subscriber before the oldest are dropped. */
  maxBufferPerSubscriber: number;
  /** Largest frame accepted (UTF-8 bytes). Default {@link DEFAULT_MAX_TUNNEL_FRAME_BYTES}. */
  maxFrameBytes?: number;
  /**
   * Bytes a session's socket may hold unsent (`bufferedAmount`) when the next frame is sent;
   * beyond, the peer is not reading and the session ends with reason `overflow` (the socket is
   * terminated: a closing handshake cannot pass a full buffer). Default
   * {@link DEFAULT_TUNNEL_MAX_BUFFERED_BYTES}.
   */
  maxBufferedBytes?: number;
  /** Frames sent and not yet written out, likewise. Default {@link DEFAULT_TUNNEL_MAX_BUFFERED_FRAMES}. */
  maxBufferedFrames?: number;
  /** Told when a session ends with reason `overflow` (metrics). Must not throw. */
  onOverflow?: (overflow: { sessionId: string; queuedBytes: number; queuedFrames: number }) => void;
  /** Clock in epoch ms; injectable for tests. Default `Date.now`. */
  clock?: () => number;
  logger: Logger;
  /**
   * Decides a `register` whose server name already passed {@link TUNNEL_SERVER_NAME_RE}; the
   * gateway refuses name clashes here. Must not wait for the upstream's initialize (that goes
   * through this very session): create the upstream and start it without awaiting.
   */
  onRegister?: (session: TunnelSession, server: TunnelServerInfo) => RegisterDecision | Promise<RegisterDecision>;
  /** Called once when a registered session ends (unregister, drop, eviction, disconnect). */
  onUnregister?: (session: TunnelSession, reason: TunnelCloseReason) => void;
}

/** The registry of tunnel sessions of one gateway process. */
export interface TunnelHub {
  /**
   * Takes over an authenticated, authorized socket. The session id is generated here; any id the
   * client supplied (header, query) is ignored.
   */
  accept(socket: TunnelSocket, owner: Principal): TunnelSession;
  /** Every live session. */
  list(): TunnelSession[];
  get(id: string): TunnelSession | undefined;
  /** Closes a session (code 1000). False when there is no such session. */
  disconnect(id: string): boolean;
  /**
   * Sends a JSON-RPC request through the tunnel and resolves with the tunnelled server's own
   * response, its id restored to the caller's. A notification resolves `undefined` once sent.
   * The request goes out under a private string id, so it never collides with the gateway's
   * own upstream ids.
   *
   * @throws GatewayError `SWB_ERR_TUNNEL_SESSION_NOT_FOUND`, `SWB_ERR_TUNNEL_NOT_REGISTERED`,
   *   `SWB_ERR_TUNNEL_TIMEOUT` after `timeoutMs`, `SWB_ERR_TUNNEL_CLOSED` when the session ends first
   */
  request(id: string, message: JsonRpcMessage, timeoutMs: number): Promise<JsonRpcResponse | undefined>;
  /**
   * Subscribes to a session's live feed: `connected`/`registered` replayed first, then every
   * message in and out and the final `closed`. `onReadable` is called when events are buffered
   * (and on close); call `drain()` then.
   *
   * @throws GatewayError `SWB_ERR_TUNNEL_SESSION_NOT_FOUND`
   */
  subscribe(id: string, onReadable: () => void): TunnelSubscription;
  /**
   * Evicts sessions with no frame received for `heartbeatTimeoutMs` (close code 4000). Call it
   * periodically, e.g. every `heartbeatTimeoutMs / 3`. Returns the evicted session ids.
   */
  sweep(now?: number): string[];
  /** Closes every session (gateway shutdown). */
  close(): void;
}

const OPERATOR_ID_PREFIX = 'swb-op-';

interface Operator {
  readonly originalId: JsonRpcId;
  readonly resolve: (response: JsonRpcResponse) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

class Subscription implements TunnelSubscription {
  #buffer: TunnelEvent[] = [];
  #dropped = 0;
  #droppedTotal = 0;
  #closed = false;
  readonly #max: number;
  readonly #onReadable: () => void;
  readonly #remove: () => void;

  constructor(max: number, onReadable: () => void, remove: () => void) {
    this.#max = Math.max(1, max);
    this.#onReadable = onReadable;
    this.#remove = remove;
  }

  push(event: TunnelEvent): void {
    if (this.#closed) return;
    if (this.#buffer.length >= this.#max) {
      this.#buffer.shift();
      this.#dropped++;
      this.#droppedTotal++;
    }
    this.#buffer.push(event);
    if (event.type === 'closed') {
      this.#closed = true;
      this.#remove();
    }
    this.#onReadable();
  }

  drain(): { events: TunnelEvent[]; dropped: number } {
    const out = { events: this.#buffer, dropped: this.#dropped };
    this.#buffer = [];
    this.#dropped = 0;
    return out;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#remove();
  }
}

function frameText(data: unknown): string {
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return String(data);
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function idKey(id: JsonRpcId | null): string {
  return typeof id === 'number' ? `n:${id}` : `s:${String(id)}`;
}

class Session implements TunnelSession {
  readonly id: string;
  readonly owner: Principal;
  readonly registered: Promise<void>;
  #state: TunnelSessionState = 'connected';
  #server: TunnelServerInfo | undefined;
  #registering = false;
  readonly #socket: TunnelSocket;
  readonly #hub: Hub;
  readonly #stats: {
    connectedAt: number;
    lastActivity: number;
    lastReceived: number;
    messagesIn: number;
    messagesOut: number;
    bytesIn: number;
    bytesOut: number;
  };
  readonly #messageListeners = new Set<(message: JsonRpcMessage) => void>();
  readonly #closeListeners = new Set<(reason: TunnelCloseReason) => void>();
  readonly #subscribers = new Set<Subscription>();
  readonly #operators = new Map<string, Operator>();
  #operatorSeq = 0;
  #eventSeq = 0;
  /** Frames handed to the socket whose `sent` callback has not run yet. */
  #unsent = 0;
  readonly #sent = (): void => {
    this.#unsent--;
  };
  #closeReason: TunnelCloseReason | undefined;
  #resolveRegistered!: () => void;
  #rejectRegistered!: (error: Error) => void;

  constructor(id: string, socket: TunnelSocket, owner: Principal, hub: Hub) {
    this.id = id;
    this.owner = owner;
    this.#socket = socket;
    this.#hub = hub;
    const now = hub.now();
    this.#stats = {
      connectedAt: now,
      lastActivity: now,
      lastReceived: now,
      messagesIn: 0,
      messagesOut: 0,
      bytesIn: 0,
      bytesOut: 0,
    };
    this.registered = new Promise<void>((resolve, reject) => {
      this.#resolveRegistered = resolve;
      this.#rejectRegistered = reject;
    });
    // Nobody may be waiting; the rejection is still observed through `registered`.
    this.registered.catch(() => undefined);
  }

  get state(): TunnelSessionState {
    return this.#state;
  }

  get server(): TunnelServerInfo | undefined {
    return this.#server;
  }

  get stats(): TunnelSessionStats {
    return { ...this.#stats };
  }

  info(): TunnelSessionInfo {
    const s = this.#stats;
    return {
      sessionId: this.id,
      state: this.#state,
      server: this.#server ?? null,
      owner: { id: this.owner.id, subject: this.owner.subject },
      connectedAt: new Date(s.connectedAt).toISOString(),
      lastActivity: new Date(s.lastActivity).toISOString(),
      messagesIn: s.messagesIn,
      messagesOut: s.messagesOut,
      bytesIn: s.bytesIn,
      bytesOut: s.bytesOut,
    };
  }

  send(message: JsonRpcMessage): void {
    if (this.#state === 'closed')
      throw new GatewayError('SWB_ERR_TUNNEL_CLOSED', `tunnel session ${this.id} is closed`);
    if (this.#state !== 'registered') {
      throw new GatewayError('SWB_ERR_TUNNEL_NOT_REGISTERED', `tunnel session ${this.id} has not registered`);
    }
    this.#write({ type: 'message', message });
    this.publish({ type: 'message', direction: 'out', message });
  }

  onMessage(listener: (message: JsonRpcMessage) => void): () => void {
    this.#messageListeners.add(listener);
    return () => this.#messageListeners.delete(listener);
  }

  onClose(listener: (reason: TunnelCloseReason) => void): () => void {
    if (this.#closeReason !== undefined) {
      listener(this.#closeReason);
      return () => undefined;
    }
    this.#closeListeners.add(listener);
    return () => this.#closeListeners.delete(listener);
  }

  // -- used by the hub ---------------------------------------------------------------------------

  subscribe(max: number, onReadable: () => void): Subscription {
    const sub = new Subscription(max, onReadable, () => this.#subscribers.delete(sub));
    this.#subscribers.add(sub);
    const time = this.#hub.now();
    sub.push({ seq: 0, time: this.#stats.connectedAt, type: 'connected', sessionId: this.id });
    if (this.#server !== undefined) sub.push({ seq: 0, time, type: 'registered', server: this.#server });
    if (this.#closeReason !== undefined) sub.push({ seq: 0, time, type: 'closed', reason: this.#closeReason });
    return sub;
  }

  publish(body: TunnelEventBody): void {
    if (this.#subscribers.size === 0) return;
    const event = { seq: ++this.#eventSeq, time: this.#hub.now(), ...body };
    for (const sub of [...this.#subscribers]) sub.push(event);
  }

  request(message: JsonRpcMessage, timeoutMs: number): Promise<JsonRpcResponse | undefined> {
    if (!('method' in message) || !('id' in message)) {
      this.send(message);
      return Promise.resolve(undefined);
    }
    if (this.#state === 'closed')
      throw new GatewayError('SWB_ERR_TUNNEL_CLOSED', `tunnel session ${this.id} is closed`);
    const privateId = `${OPERATOR_ID_PREFIX}${++this.#operatorSeq}`;
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#operators.delete(idKey(privateId));
        reject(new GatewayError('SWB_ERR_TUNNEL_TIMEOUT', `no response through tunnel ${this.id} in ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#operators.set(idKey(privateId), { originalId: message.id, resolve, reject, timer });
      try {
        this.send({ ...message, id: privateId });
      } catch (err) {
        clearTimeout(timer);
        this.#operators.delete(idKey(privateId));
        reject(toError(err));
      }
    });
  }

  receive(data: unknown): void {
    if (this.#state === 'closed') return;
    const text = frameText(data);
    const now = this.#hub.now();
    const s = this.#stats;
    s.lastActivity = now;
    s.lastReceived = now;
    s.messagesIn++;
    s.bytesIn += Buffer.byteLength(text, 'utf8');
    const parsed = parseTunnelMessage(text, { maxBytes: this.#hub.maxFrameBytes });
    if (!parsed.ok) {
      this.#hub.logger.debug({ sessionId: this.id, error: parsed.error }, 'invalid tunnel frame');
      this.#sendError('SWB_ERR_TUNNEL_INVALID_MESSAGE', parsed.error);
      return;
    }
    this.#dispatch(parsed.message);
  }

  #dispatch(frame: TunnelMessage): void {
    switch (frame.type) {
      case 'register':
        void this.#register(frame.server);
        return;
      case 'heartbeat':
        this.#write({ type: 'heartbeat_ack', timestamp: new Date(this.#hub.now()).toISOString() });
        return;
      case 'unregister':
        this.end('unregistered', TUNNEL_CLOSE_CODES.normal, 'unregistered');
        return;
      case 'message':
        this.#onJsonRpc(frame.message);
        return;
      case 'error':
        this.#hub.logger.warn(
          { sessionId: this.id, code: frame.code, error: frame.message },
          'tunnel reported an error',
        );
        return;
      default:
        // register_ack / heartbeat_ack flow gateway → tunnel only; answering them could loop.
        this.#sendError('SWB_ERR_TUNNEL_INVALID_MESSAGE', `"${frame.type}" is not accepted from a tunnel`);
    }
  }

  async #register(server: TunnelServerInfo): Promise<void> {
    if (this.#state !== 'connected' || this.#registering) {
      this.#sendError('SWB_ERR_TUNNEL_REGISTER_REFUSED', 'this session has already registered');
      return;
    }
    if (!TUNNEL_SERVER_NAME_RE.test(server.name)) {
      this.#sendError(
        'SWB_ERR_TUNNEL_REGISTER_REFUSED',
        `invalid server name "${server.name.slice(0, 80)}": use 1-64 of [A-Za-z0-9_.-], starting with a letter or digit`,
      );
      return;
    }
    this.#registering = true;
    let decision: RegisterDecision;
    try {
      decision = (await this.#hub.onRegister?.(this, server)) ?? { ok: true };
    } catch (err) {
      this.#hub.logger.error({ err, sessionId: this.id }, 'tunnel onRegister failed');
      decision = { ok: false, reason: 'registration failed' };
    } finally {
      this.#registering = false;
    }
    // The socket may have closed while onRegister was deciding.
    if ((this.#state as TunnelSessionState) === 'closed') return;
    if (!decision.ok) {
      this.#sendError('SWB_ERR_TUNNEL_REGISTER_REFUSED', decision.reason);
      return;
    }
    this.#server = server;
    this.#state = 'registered';
    this.#hub.logger.info({ sessionId: this.id, server: server.name, owner: this.owner.id }, 'tunnel registered');
    this.#write({
      type: 'register_ack',
      sessionId: this.id,
      status: 'success',
      heartbeatIntervalMs: Math.max(1, Math.floor(this.#hub.heartbeatTimeoutMs / 3)),
    });
    this.publish({ type: 'registered', server });
    this.#resolveRegistered();
  }

  #onJsonRpc(message: JsonRpcMessage): void {
    if (this.#state !== 'registered') {
      this.#sendError('SWB_ERR_TUNNEL_NOT_REGISTERED', 'register before sending JSON-RPC messages');
      return;
    }
    this.publish({ type: 'message', direction: 'in', message });
    if (!('method' in message) && typeof message.id === 'string' && message.id.startsWith(OPERATOR_ID_PREFIX)) {
      const op = this.#operators.get(idKey(message.id));
      if (op !== undefined) {
        this.#operators.delete(idKey(message.id));
        clearTimeout(op.timer);
        op.resolve({ ...message, id: op.originalId });
        return;
      }
    }
    for (const listener of [...this.#messageListeners]) {
      try {
        listener(message);
      } catch (err) {
        this.#hub.logger.error({ err, sessionId: this.id }, 'tunnel message listener threw');
      }
    }
  }

  #sendError(code: string, message: string): void {
    this.#write({ type: 'error', code, message });
  }

  #write(frame: TunnelMessage): void {
    const socket = this.#socket;
    // Checked before the frame is queued, so one large frame always passes a peer that reads.
    const queued = socket.bufferedAmount ?? 0;
    if (queued > this.#hub.maxBufferedBytes || this.#unsent >= this.#hub.maxBufferedFrames) {
      this.#overflow(queued);
      return;
    }
    const text = encodeTunnelMessage(frame);
    const s = this.#stats;
    s.lastActivity = this.#hub.now();
    s.messagesOut++;
    s.bytesOut += Buffer.byteLength(text, 'utf8');
    try {
      this.#unsent++;
      socket.send(text, this.#sent);
    } catch (err) {
      this.#unsent--;
      this.#hub.logger.debug({ err, sessionId: this.id }, 'tunnel send failed');
    }
  }

  /** The peer does not read: drop the connection and everything queued for it. */
  #overflow(queuedBytes: number): void {
    const overflow = { sessionId: this.id, queuedBytes, queuedFrames: this.#unsent };
    this.#hub.logger.warn(
      { ...overflow, server: this.#server?.name },
      'tunnel closed: the peer is not reading fast enough (over its buffer budget)',
    );
    try {
      this.#hub.onOverflow?.(overflow);
    } catch (err) {
      this.#hub.logger.error({ err, sessionId: this.id }, 'tunnel onOverflow threw');
    }
    const socket = this.#socket;
    if (socket.terminate) {
      this.end('overflow', undefined, '');
      try {
        socket.terminate();
      } catch (err) {
        this.#hub.logger.debug({ err, sessionId: this.id }, 'tunnel socket terminate failed');
      }
    } else {
      this.end('overflow', TUNNEL_CLOSE_CODES.overflow, 'peer not reading');
    }
  }

  /** Ends the session once: closes the socket (unless it is already gone) and notifies everyone. */
  end(reason: TunnelCloseReason, code: number | undefined, text: string): void {
    if (this.#state === 'closed') return;
    const wasRegistered = this.#state === 'registered';
    this.#state = 'closed';
    this.#closeReason = reason;
    this.#hub.forget(this.id);
    if (code !== undefined) {
      try {
        this.#socket.close(code, text);
      } catch (err) {
        this.#hub.logger.debug({ err, sessionId: this.id }, 'tunnel socket close failed');
      }
    }
    this.#hub.logger.info({ sessionId: this.id, server: this.#server?.name, reason }, 'tunnel session ended');
    const closed = new GatewayError('SWB_ERR_TUNNEL_CLOSED', `tunnel session ${this.id} closed (${reason})`);
    this.#rejectRegistered(closed);
    for (const op of this.#operators.values()) {
      clearTimeout(op.timer);
      op.reject(closed);
    }
    this.#operators.clear();
    for (const listener of [...this.#closeListeners]) {
      try {
        listener(reason);
      } catch (err) {
        this.#hub.logger.error({ err, sessionId: this.id }, 'tunnel close listener threw');
      }
    }
    this.#closeListeners.clear();
    this.#messageListeners.clear();
    if (wasRegistered) {
      try {
        this.#hub.onUnregister?.(this, reason);
      } catch (err) {
        this.#hub.logger.error({ err, sessionId: this.id }, 'tunnel onUnregister threw');
      }
    }
    this.publish({ type: 'closed', reason });
  }
}

class Hub implements TunnelHub {
  readonly heartbeatTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly maxBufferedBytes: number;
  readonly maxBufferedFrames: number;
  readonly onOverflow: TunnelHubOptions['onOverflow'];
  readonly logger: Logger;
  readonly onRegister: TunnelHubOptions['onRegister'];
  readonly onUnregister: TunnelHubOptions['onUnregister'];
  readonly #maxBuffer: number;
  readonly #clock: () => number;
  readonly #sessions = new Map<string, Session>();

  constructor(options: TunnelHubOptions) {
    if (!(options.heartbeatTimeoutMs > 0)) throw new RangeError('heartbeatTimeoutMs must be > 0');
    if (!(options.maxBufferPerSubscriber >= 1)) throw new RangeError('maxBufferPerSubscriber must be >= 1');
    this.heartbeatTimeoutMs = options.heartbeatTimeoutMs;
    this.#maxBuffer = Math.floor(options.maxBufferPerSubscriber);
    this.maxFrameBytes = options.maxFrameBytes ?? DEFAULT_MAX_TUNNEL_FRAME_BYTES;
    this.maxBufferedBytes = options.maxBufferedBytes ?? DEFAULT_TUNNEL_MAX_BUFFERED_BYTES;
    this.maxBufferedFrames = options.maxBufferedFrames ?? DEFAULT_TUNNEL_MAX_BUFFERED_FRAMES;
    this.onOverflow = options.onOverflow;
    this.#clock = options.clock ?? Date.now;
    this.logger = options.logger;
    this.onRegister = options.onRegister;
    this.onUnregister = options.onUnregister;
  }

  now(): number {
    return this.#clock();
  }

  forget(id: string): void {
    this.#sessions.delete(id);
  }

  accept(socket: TunnelSocket, owner: Principal): TunnelSession {
    const session = new Session(randomUUID(), socket, owner, this);
    this.#sessions.set(session.id, session);
    socket.on('message', (data) => session.receive(data));
    socket.on('close', () => session.end('socket-closed', undefined, ''));
    this.logger.info({ sessionId: session.id, owner: owner.id }, 'tunnel connected');
    return session;
  }

  list(): TunnelSession[] {
    return [...this.#sessions.values()];
  }

  get(id: string): TunnelSession | undefined {
    return this.#sessions.get(id);
  }

  disconnect(id: string): boolean {
    const session = this.#sessions.get(id);
    if (session === undefined) return false;
    session.end('disconnected', TUNNEL_CLOSE_CODES.normal, 'disconnected by operator');
    return true;
  }

  request(id: string, message: JsonRpcMessage, timeoutMs: number): Promise<JsonRpcResponse | undefined> {
    try {
      return this.#require(id).request(message, timeoutMs);
    } catch (err) {
      return Promise.reject(toError(err));
    }
  }

  subscribe(id: string, onReadable: () => void): TunnelSubscription {
    return this.#require(id).subscribe(this.#maxBuffer, onReadable);
  }

  sweep(now: number = this.#clock()): string[] {
    const evicted: string[] = [];
    for (const session of [...this.#sessions.values()]) {
      if (now - session.stats.lastReceived < this.heartbeatTimeoutMs) continue;
      evicted.push(session.id);
      this.logger.warn({ sessionId: session.id, server: session.server?.name }, 'tunnel heartbeat timeout');
      session.end('heartbeat-timeout', TUNNEL_CLOSE_CODES.heartbeatTimeout, 'heartbeat timeout');
    }
    return evicted;
  }

  close(): void {
    for (const session of [...this.#sessions.values()]) {
      session.end('shutdown', TUNNEL_CLOSE_CODES.normal, 'gateway shutting down');
    }
  }

  #require(id: string): Session {
    const session = this.#sessions.get(id);
    if (session === undefined) {
      throw new GatewayError('SWB_ERR_TUNNEL_SESSION_NOT_FOUND', `no tunnel session ${id}`);
    }
    return session;
  }
}

/**
 * Creates the hub of reverse-tunnel sessions.
 *
 * @throws RangeError when `heartbeatTimeoutMs` ≤ 0 or `maxBufferPerSubscriber` < 1
 */
export function createTunnelHub(options: TunnelHubOptions): TunnelHub {
  return new Hub(options);
}
