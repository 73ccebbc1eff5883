/**
 * Upstream transports: framing only, like the MCP TypeScript SDK's `Transport`. A transport moves
 * JSON-RPC messages to and from one upstream MCP server instance and knows nothing of ids,
 * sessions of clients, routing or policy — {@link UpstreamConnection} does that on top.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';

/** Extra facts a transport knows about an incoming message. */
export interface IncomingMessageInfo {
  /**
   * For Streamable HTTP: the id (as sent by us) of the request whose POST response stream carried
   * this message. Absent for the standalone GET stream and for stdio, where nothing on the wire
   * links a message to a request.
   */
  relatedRequestId?: JsonRpcId;
}

/** Why a transport closed. */
export interface TransportCloseInfo {
  /** The error that closed it, if any (crash, network error, protocol error). */
  error?: Error;
  /** For stdio: the child's exit code / signal. */
  exitCode?: number | null;
  signal?: NodeJS.Signals | null;
  /** For Streamable HTTP: the upstream answered 404 for our session (MCP: re-initialize). */
  sessionExpired?: boolean;
}

/** Per-message options of {@link MessageTransport.send}. */
export interface SendOptions {
  /**
   * Extra HTTP headers for this message's request (header passthrough, identity propagation).
   * Ignored by stdio. They never replace the headers the transport owns (session, version,
   * content negotiation).
   */
  headers?: Readonly<Record<string, string>>;
  /** The client request's id, for log lines about this message (observability/request-id). */
  reqId?: string | undefined;
}

/**
 * The promise a transport's `send()` returns when it accepted the message synchronously (one
 * shared, already resolved promise). Callers may compare against it to skip waiting for a
 * settlement that cannot fail; any other promise must be handled as usual.
 */
export const SENT: Promise<void> = Promise.resolve();

/**
 * One bidirectional JSON-RPC message channel to one upstream server instance.
 *
 * Lifecycle: `start()` once → any number of `send()` → `close()`. After the transport closes
 * (either side), `onclose` fires exactly once and `send()` rejects with
 * `GatewayError('SWB_ERR_UPSTREAM_CLOSED')`.
 */
export interface MessageTransport {
  /** Opens the channel (spawns the child / checks the URL). Rejects with a GatewayError on failure. */
  start(): Promise<void>;
  /**
   * Sends one message. For Streamable HTTP, a request's response (and related messages) arrive
   * later through `onmessage` with `relatedRequestId` set; an HTTP-level failure of that POST is
   * reported as an error response for that request id, produced by the transport itself
   * (`error.data.code` = the GatewayError code), so the caller never hangs.
   */
  send(message: JsonRpcMessage, options?: SendOptions): Promise<void>;
  /** Closes the channel; for stdio, terminates the child's process group (SIGTERM, then SIGKILL after a grace period). */
  close(): Promise<void>;
  /** Incoming messages. Set before `start()`. */
  onmessage?: (message: JsonRpcMessage, info: IncomingMessageInfo) => void;
  /** Fired once when the channel is closed for any reason. */
  onclose?: (info: TransportCloseInfo) => void;
  /** Non-fatal problems (unparseable line, stray event), for logging. */
  onerror?: (error: Error) => void;
  /**
   * Called by the connection after a successful initialize handshake with the negotiated
   * protocol version; HTTP transports then send `MCP-Protocol-Version` on every request.
   */
  setProtocolVersion?(version: string): void;
  /**
   * Called by the connection once the upstream is known to speak the modern era (MCP
   * 2026-07-28, basic/transports/streamable-http): an HTTP transport then sends
   * `MCP-Protocol-Version: version`, `Mcp-Method` and, for `tools/call`, `prompts/get` and
   * `resources/read`, `Mcp-Name` on every request, opens no GET stream and never resumes a
   * response stream. Transports without headers (stdio) do not implement it.
   */
  useModernEra?(version: string): void;
  /**
   * Stops reading a request's answer and closes its response stream, which a modern HTTP
   * upstream takes as the request's cancellation (transports/streamable-http §Cancellation).
   * Implemented where closing the stream is the cancellation signal; elsewhere the connection
   * sends `notifications/cancelled`.
   */
  cancelRequest?(id: JsonRpcId): void;
  /** Short description for logs, e.g. `stdio pid=123` or `http http://host/mcp`. */
  readonly description: string;
}

/**
 * The error for one message that cannot be serialised: it fails that message's request only (the
 * connection is fine, and another connection would fail the same way).
 */
export function unserialisableError(err: unknown): GatewayError {
  return new GatewayError('SWB_ERR_UPSTREAM_UNSERIALISABLE', `message not serialisable: ${String(err)}`, {
    cause: err,
  });
}

/**
 * `JSON.stringify` of one message for the wire.
 *
 * @throws GatewayError `SWB_ERR_UPSTREAM_UNSERIALISABLE` when it cannot be serialised: nesting
 *   too deep for the stack (a `RangeError`), or a cycle or `BigInt` put there by code
 */
export function serialiseMessage(message: JsonRpcMessage): string {
  try {
    return JSON.stringify(message);
  } catch (err) {
    throw unserialisableError(err);
  }
}
