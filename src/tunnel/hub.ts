/**
 * The gateway side of the reverse tunnel: one {@link TunnelSession} per accepted WebSocket, with
 * registration, heartbeats, eviction, per-session counters, operator requests and a bounded live
 * feed per subscriber. This module is the registry of sessions; a session itself is in
 * `session.ts`, operator requests in `operator-requests.ts`, the live feed in `live-feed.ts` and
 * the public types in `hub-types.ts`.
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
import type { JsonRpcMessage, JsonRpcResponse } from '../protocol/jsonrpc.js';
import {
  TUNNEL_CLOSE_CODES,
  type TunnelHub,
  type TunnelHubOptions,
  type TunnelSession,
  type TunnelSocket,
  type TunnelSubscription,
} from './hub-types.js';
import { toError } from './operator-requests.js';
import {
  DEFAULT_MAX_TUNNEL_FRAME_BYTES,
  DEFAULT_TUNNEL_MAX_BUFFERED_BYTES,
  DEFAULT_TUNNEL_MAX_BUFFERED_FRAMES,
} from './protocol.js';
import { Session, type SessionHost } from './session.js';

export {
  TUNNEL_CLOSE_CODES,
  type RegisterDecision,
  type TunnelCloseReason,
  type TunnelEvent,
  type TunnelHub,
  type TunnelHubOptions,
  type TunnelSession,
  type TunnelSessionInfo,
  type TunnelSessionState,
  type TunnelSessionStats,
  type TunnelSocket,
  type TunnelSubscription,
} from './hub-types.js';

/** The registry of sessions; also the {@link SessionHost} of each. */
class Hub implements TunnelHub, SessionHost {
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
