/**
 * One accepted tunnel connection: the frames it receives and sends (with their counters and the
 * per-socket send budget), registration, heartbeats, and the end of the session with everyone
 * told. Operator requests and the live feed are kept by their own modules.
 *
 * @module
 */
import type { Principal } from '../auth/principal.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { JsonRpcMessage, JsonRpcResponse } from '../protocol/jsonrpc.js';
import {
  TUNNEL_CLOSE_CODES,
  type RegisterDecision,
  type TunnelCloseReason,
  type TunnelEvent,
  type TunnelEventBody,
  type TunnelHubOptions,
  type TunnelSession,
  type TunnelSessionInfo,
  type TunnelSessionState,
  type TunnelSessionStats,
  type TunnelSocket,
} from './hub-types.js';
import { LiveFeed, type Subscription } from './live-feed.js';
import { OperatorRequests } from './operator-requests.js';
import {
  TUNNEL_SERVER_NAME_RE,
  encodeTunnelMessage,
  parseTunnelMessage,
  type TunnelMessage,
  type TunnelServerInfo,
} from './protocol.js';

/** What a session needs from its hub: limits, callbacks, the clock and the logger. */
export interface SessionHost {
  readonly heartbeatTimeoutMs: number;
  readonly maxFrameBytes: number;
  readonly maxBufferedBytes: number;
  readonly maxBufferedFrames: number;
  readonly onOverflow: TunnelHubOptions['onOverflow'];
  readonly logger: Logger;
  readonly onRegister: TunnelHubOptions['onRegister'];
  readonly onUnregister: TunnelHubOptions['onUnregister'];
  /** The hub's clock, in epoch ms. */
  now(): number;
  /** Removes the session `id`, which has ended, from the hub. */
  forget(id: string): void;
}

/** The text of a WebSocket frame, whatever form the socket delivers it in. */
function frameText(data: unknown): string {
  if (typeof data === 'string') return data;
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  if (Array.isArray(data)) return Buffer.concat(data as Buffer[]).toString('utf8');
  if (data instanceof ArrayBuffer) return Buffer.from(data).toString('utf8');
  return String(data);
}

/** One accepted tunnel connection (see the module documentation). */
export class Session implements TunnelSession {
  readonly id: string;
  readonly owner: Principal;
  readonly registered: Promise<void>;
  #state: TunnelSessionState = 'connected';
  #server: TunnelServerInfo | undefined;
  #registering = false;
  readonly #socket: TunnelSocket;
  readonly #hub: SessionHost;
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
  readonly #feed: LiveFeed;
  readonly #operators: OperatorRequests;
  /** Frames handed to the socket whose `sent` callback has not run yet. */
  #unsent = 0;
  readonly #sent = (): void => {
    this.#unsent--;
  };
  #closeReason: TunnelCloseReason | undefined;
  #resolveRegistered!: () => void;
  #rejectRegistered!: (error: Error) => void;

  constructor(id: string, socket: TunnelSocket, owner: Principal, hub: SessionHost) {
    this.id = id;
    this.owner = owner;
    this.#socket = socket;
    this.#hub = hub;
    this.#feed = new LiveFeed(() => hub.now());
    this.#operators = new OperatorRequests(id);
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
    const time = this.#hub.now();
    const replay: TunnelEvent[] = [{ seq: 0, time: this.#stats.connectedAt, type: 'connected', sessionId: this.id }];
    if (this.#server !== undefined) replay.push({ seq: 0, time, type: 'registered', server: this.#server });
    if (this.#closeReason !== undefined) replay.push({ seq: 0, time, type: 'closed', reason: this.#closeReason });
    return this.#feed.subscribe(max, onReadable, replay);
  }

  publish(body: TunnelEventBody): void {
    this.#feed.publish(body);
  }

  request(message: JsonRpcMessage, timeoutMs: number): Promise<JsonRpcResponse | undefined> {
    if (!('method' in message) || !('id' in message)) {
      this.send(message);
      return Promise.resolve(undefined);
    }
    if (this.#state === 'closed')
      throw new GatewayError('SWB_ERR_TUNNEL_CLOSED', `tunnel session ${this.id} is closed`);
    return this.#operators.start(message, timeoutMs, (m) => this.send(m));
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
    if (this.#operators.settle(message)) return;
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
    this.#operators.rejectAll(closed);
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
