/**
 * The tunnel client's contract: its options, the running client's handle, and the helpers that
 * derive the gateway's tunnel WebSocket URL and a valid server name.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { TUNNEL_SERVER_NAME_RE } from './protocol.js';

/** The gateway path of the tunnel WebSocket. */
export const TUNNEL_WS_PATH = '/reverse-proxy/ws';

/** Options for {@link startTunnelClient}. */
export interface TunnelClientOptions {
  /** The gateway's base URL (`http(s)://host:port[/prefix]`) or the WebSocket URL itself (`ws(s)://…`). */
  gateway: string;
  /** A Switchboard API token with `servers.manage` (or `servers.create` / `servers.update`). */
  token: string;
  /** Server name to register. Default: the local server's `serverInfo.name`, made a valid name. */
  name?: string;
  /** Description sent in `register`. Default: the local server's `serverInfo.title`, if any. */
  description?: string;
  /** The local stdio MCP server. */
  command: string;
  args?: readonly string[];
  /** Variables set for the local server, over this process's environment (less `SWITCHBOARD_*`). */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Consecutive failed connection attempts before giving up. Default unlimited. */
  maxRetries?: number;
  /** Reconnect backoff (ms). Defaults 500 → 30 000, factor 2, ±20 % jitter. */
  initialRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Heartbeat interval (ms) when the gateway's `register_ack` does not give one. Default 10 000. */
  heartbeatIntervalMs?: number;
  /** Timeout of the local initialize handshake (ms). Default 30 000. */
  initializeTimeoutMs?: number;
  /**
   * Bytes the WebSocket may hold unsent (`bufferedAmount`) when the next frame is sent; beyond,
   * the gateway is not reading: the connection is dropped and re-established with backoff (the
   * gateway fails the calls that were in flight). Default 16 MiB.
   */
  maxBufferedBytes?: number;
  /** Frames sent and not yet written out, likewise. Default 10 000. */
  maxBufferedFrames?: number;
  /** Version in the `clientInfo` sent to the local server. Default `0.0.0`. */
  version?: string;
  logger: Logger;
}

/** A running tunnel client. */
export interface TunnelClient {
  /** Resolves with the exit code: 0 after {@link stop}, 1 on a fatal error. */
  readonly done: Promise<number>;
  /** True while registered with the gateway. */
  readonly registered: boolean;
  /** The session id of the current registration. */
  readonly sessionId: string | undefined;
  /** Unregisters, closes the socket and stops the local server (its process group). */
  stop(): Promise<number>;
}

/**
 * Derives the tunnel WebSocket URL: `http://h:p` → `ws://h:p/reverse-proxy/ws`, `https` →
 * `wss`, keeping a path prefix; `ws://` and `wss://` URLs are taken as given.
 *
 * @throws GatewayError `SWB_ERR_TUNNEL_CONNECT` for an unparseable URL or another scheme
 */
export function tunnelWebSocketUrl(gateway: string): string {
  let url: URL;
  try {
    url = new URL(gateway);
  } catch {
    throw new GatewayError('SWB_ERR_TUNNEL_CONNECT', `invalid gateway URL "${gateway}"`);
  }
  if (url.protocol === 'ws:' || url.protocol === 'wss:') return url.toString();
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new GatewayError('SWB_ERR_TUNNEL_CONNECT', `gateway URL must be http(s) or ws(s), got "${url.protocol}"`);
  }
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = `${url.pathname.replace(/\/+$/, '')}${TUNNEL_WS_PATH}`;
  url.search = '';
  url.hash = '';
  return url.toString();
}

/** Turns any string into a valid server name (see `TUNNEL_SERVER_NAME_RE`), or `tunnel`. */
export function toServerName(raw: string): string {
  const name = raw
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return TUNNEL_SERVER_NAME_RE.test(name) ? name : 'tunnel';
}
