/**
 * The upstream transport of a tunnelled server (docs/tunnel.md): a {@link MessageTransport} over one
 * {@link TunnelSession}, so that an `Upstream` created with `createTransport` treats a tunnel
 * like any stdio or HTTP upstream. Framing only: ids, initialize, timeouts and attribution stay
 * in `UpstreamConnection`.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { JsonRpcMessage } from '../protocol/jsonrpc.js';
import {
  unserialisableError,
  type IncomingMessageInfo,
  type MessageTransport,
  type TransportCloseInfo,
} from '../upstream/transport.js';
import type { TunnelSession } from './hub.js';

const NO_INFO: IncomingMessageInfo = Object.freeze({});

class TunnelTransport implements MessageTransport {
  onmessage?: (message: JsonRpcMessage, info: IncomingMessageInfo) => void;
  onclose?: (info: TransportCloseInfo) => void;
  onerror?: (error: Error) => void;
  readonly #session: TunnelSession;
  #started = false;
  #closed = false;
  #detach: Array<() => void> = [];

  constructor(session: TunnelSession) {
    this.#session = session;
  }

  get description(): string {
    return `tunnel ${this.#session.server?.name ?? '?'} session=${this.#session.id}`;
  }

  async start(): Promise<void> {
    if (this.#started) throw new Error('tunnel transport already started');
    this.#started = true;
    if (this.#closed) throw new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `${this.description}: transport closed`);
    try {
      await this.#session.registered;
    } catch (err) {
      this.#closed = true;
      throw new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `${this.description}: tunnel closed before registering`, {
        cause: err,
      });
    }
    if (this.#closed) throw new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `${this.description}: transport closed`);
    this.#detach.push(
      this.#session.onMessage((message) => this.onmessage?.(message, NO_INFO)),
      this.#session.onClose((reason) =>
        this.#finish({ error: new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: tunnel ${reason}`) }),
      ),
    );
  }

  async send(message: JsonRpcMessage): Promise<void> {
    if (this.#closed || !this.#started) {
      throw new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: transport closed`);
    }
    try {
      this.#session.send(message);
    } catch (err) {
      // The session refuses with a GatewayError once it is closing; anything else failed to encode
      // this one message, and the tunnel stays up.
      if (!(err instanceof GatewayError)) throw unserialisableError(err);
      throw new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: ${err.message}`, { cause: err });
    }
  }

  async close(): Promise<void> {
    this.#finish({});
  }

  #finish(info: TransportCloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const detach of this.#detach) detach();
    this.#detach = [];
    if (this.#started) this.onclose?.(info);
  }
}

/**
 * Creates the gateway's upstream transport over a tunnel session.
 *
 * - `start()` resolves once the session is registered (at once if it already is) and rejects
 *   with `SWB_ERR_UPSTREAM_UNAVAILABLE` when the session ends first.
 * - `send()` wraps the message in a `{type: 'message'}` frame; it rejects with
 *   `SWB_ERR_UPSTREAM_CLOSED` once the transport or the session is closed.
 * - Every JSON-RPC message from the tunnel (responses, notifications, server→client requests)
 *   reaches `onmessage`, except answers to operator requests (`TunnelHub.request`).
 * - When the session ends (drop, unregister, eviction, disconnect) `onclose` fires once with an
 *   `SWB_ERR_UPSTREAM_CLOSED` error, so `UpstreamConnection` fails the calls in flight at once.
 * - `close()` detaches from the session and fires `onclose`, but leaves the session open: the hub
 *   owns it, and a restarted upstream connection may attach a new transport to the same tunnel.
 *   End the session with `TunnelHub.disconnect` to drop the tunnel itself.
 */
export function createTunnelTransport(session: TunnelSession): MessageTransport {
  return new TunnelTransport(session);
}
