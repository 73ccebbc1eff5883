/**
 * The options of the Streamable HTTP upstream transport and their defaults, and the transport's
 * interface beyond {@link MessageTransport} (its session state).
 *
 * @module
 */
import type { LookupFunction } from 'node:net';
import type { Dispatcher } from 'undici';
import type { Logger } from '../observability/logger.js';
import type { MessageTransport } from './transport.js';

/** Options for {@link createStreamableHttpTransport}. */
export interface StreamableHttpTransportOptions {
  /** The server's MCP endpoint, e.g. `https://mcp.example.com/mcp`. Must be http(s). */
  url: string | URL;
  /**
   * Static headers sent on every request (from config: credentials, API keys). Headers this
   * transport owns (`Accept`, `Content-Type`, `Mcp-Session-Id`, `MCP-Protocol-Version`,
   * `Last-Event-ID`, hop-by-hop headers) are ignored here. Default none.
   */
  headers?: Readonly<Record<string, string>>;
  /**
   * Headers computed at send time and added to every request, the standalone GET stream
   * included (e.g. a refreshed OAuth client-credentials token). Called synchronously.
   */
  dynamicHeaders?: () => Readonly<Record<string, string>>;
  /** Logger, already bound to the server's name. */
  logger: Logger;
  /**
   * undici dispatcher to send through (an `Agent`, a `Pool`, a mock-free proxy agent …). Not
   * closed by `close()`. Default: a keep-alive `Pool` for the URL's origin, owned and closed by
   * this transport.
   */
  dispatcher?: Dispatcher;
  /**
   * Milliseconds to wait for the response headers of any request. Bodies are not timed here: a
   * request's body, JSON or SSE, lives as long as the request, and the caller's per-request
   * timeout ({@link UpstreamConnection}) ends it by sending `notifications/cancelled`, which
   * aborts the exchange. Default 60 000.
   */
  requestTimeoutMs?: number;
  /**
   * Consecutive failed attempts to resume a request's SSE stream (GET + `Last-Event-ID`) before
   * the request fails. An attempt that reopens the stream resets the count. Default 3.
   */
  maxResumeAttempts?: number;
  /** First delay before reconnecting a dropped stream when the server sent no `retry:`. Default 1000 ms. */
  reconnectInitialDelayMs?: number;
  /** Cap of the reconnection backoff. Default 30 000 ms. */
  reconnectMaxDelayMs?: number;
  /** Largest JSON body or SSE event accepted, in bytes (characters for SSE). Default 32 MiB. */
  maxMessageBytes?: number;
  /**
   * Also treat a `400` whose body mentions the session, received while holding a session id, as
   * "session expired". The spec says 404, but SDK v1 servers (e.g. server-everything) answer 400
   * "No valid session ID provided" for a session they no longer know; without this a restarted
   * upstream would stay half-alive. Default true.
   */
  sessionExpiredOn400?: boolean;
  /** Connection cap of the default pool (each open SSE stream holds one). Default 64. */
  maxConnections?: number;
  /**
   * DNS lookup for the sockets of the owned pool (`net.connect`'s `lookup`), e.g. the destination
   * policy's, which refuses addresses at connect time. Ignored with `dispatcher`. Default `dns.lookup`.
   */
  lookup?: LookupFunction;
}

/** A Streamable HTTP {@link MessageTransport} exposing its session state. */
export interface StreamableHttpTransport extends MessageTransport {
  /** The `Mcp-Session-Id` the server issued in its initialize response, if any. */
  readonly sessionId: string | undefined;
  /** The `MCP-Protocol-Version` sent on requests (negotiated version), if known yet. */
  readonly protocolVersion: string | undefined;
  /** Sets the `MCP-Protocol-Version` sent from now on (always implemented here). */
  setProtocolVersion(version: string): void;
}

export const DEFAULT_REQUEST_TIMEOUT_MS = 60_000;
export const DEFAULT_MAX_RESUME_ATTEMPTS = 3;
export const DEFAULT_RECONNECT_INITIAL_MS = 1000;
export const DEFAULT_RECONNECT_MAX_MS = 30_000;
export const DEFAULT_MAX_MESSAGE_BYTES = 32 * 1024 * 1024;
export const DEFAULT_MAX_CONNECTIONS = 64;
