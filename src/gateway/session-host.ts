/**
 * What a client session needs from around it: the {@link OutboundChannel} its messages leave
 * through (provided by the edge per request and per standalone stream) and the
 * {@link SessionHost} services the gateway gives it. Both are re-exported by `client-session.ts`.
 *
 * @module
 */
import type { Logger } from '../observability/logger.js';
import type { Pipeline } from '../pipeline/stage.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { ClientCapabilities } from '../upstream/connection.js';
import type { ClientSession } from './client-session.js';
import type { TaskIds } from './tasks.js';
import type { View } from './view.js';

/** Where messages for a client go. */
export interface OutboundChannel {
  /** Sends one message. Must not throw; a closed channel drops it (the edge may store it for resumption). */
  send(message: JsonRpcMessage): void;
  /** Ends a request's channel without a response (after cancellation). */
  end?(): void;
  /**
   * Answers a request with an error as `encodeError` (`src/errors.ts`) decides from its family and
   * whether this channel's HTTP response has started: e.g. 429 with `Retry-After`, or a JSON-RPC
   * error. Without it, errors are sent as JSON-RPC errors.
   */
  fail?(error: unknown, id: JsonRpcId): void;
  /**
   * Sends a success response whose `result` is already JSON text (exactly what
   * `JSON.stringify(result)` gives), so a large list shared by many requests is serialised once.
   * Optional: without it the session sends the object.
   */
  sendResult?(id: JsonRpcId, resultJson: string): void;
  /** True once the client can no longer be reached through it. */
  readonly closed: boolean;
  /**
   * The capabilities the client declared for this one request (a modern request's
   * `_meta["io.modelcontextprotocol/clientCapabilities"]`); when absent, the session's
   * (declared at `initialize`) decide which server→client requests may reach it.
   */
  readonly clientCapabilities?: ClientCapabilities | undefined;
  /**
   * Who answers the server→client requests this request causes, when that is not the session's
   * one client: a stateless session serves many clients, so each of its requests is its own
   * caller for attribution (`upstream/attribution.ts`). Default: the session's id.
   */
  readonly callerId?: string | undefined;
  /**
   * Told when the upstream asked, during this request, for a capability the request did not
   * declare (the upstream is refused either way): a modern request answers MissingRequired
   * ClientCapability then. Optional.
   */
  missingCapability?(method: string, capability: 'sampling' | 'elicitation' | 'roots'): void;
  /** When true, messages sent while closed are kept for redelivery (resumable streams). */
  readonly retains?: boolean;
}

/** Services the gateway gives its sessions. */
export interface SessionHost {
  /**
   * The stages every request of this session goes through (rate limits, guardrails), composed
   * once; {@link EMPTY_PIPELINE} when none is configured. Read per request, so a reload that
   * replaces it applies to the next request.
   */
  readonly pipeline: Pipeline;
  readonly logger: Logger;
  /** Items per page of list methods results (0 = no pagination). */
  readonly pageSize: number;
  /** How long a server→client request may wait for the client's answer (ms). */
  readonly clientRequestTimeoutMs: number;
  /** Mints and checks the task ids clients see (tasks extension; `./tasks.ts`). */
  readonly taskIds: TaskIds;
  now(): number;
  /**
   * The sealed `Mcp-Session-Id` of a session whose `initialize` was just answered (protocol
   * version, capabilities and client info set), or undefined to keep its plain id. Absent: no
   * sealing.
   */
  sealSession?(session: ClientSession): string | undefined;
  /**
   * A client response of a portable session that answers no request of this process: sent on
   * to the replica whose request it answers. Absent: dropped.
   */
  forwardClientResponse?(session: ClientSession, response: JsonRpcResponse): void;
  /**
   * A notification for one portable session (its resource subscription's update, its isolated
   * connection's message) that this replica has no stream for: sent on to the replica holding
   * the session's standalone stream. Absent: dropped.
   */
  forwardNotification?(session: ClientSession, notification: JsonRpcNotification): void;
  /**
   * Called for each `tools/list` answered from its first page: the JSON bytes of the list the
   * client got and of every tool the principal may use on `view` (equal unless the view's
   * `exposure` is `search`). Absent: not measured.
   */
  readonly recordToolList?: ((view: View, sentBytes: number, fullBytes: number) => void) | undefined;
  /** Called once when the session closes. */
  onSessionClosed(session: ClientSession, reason: string): void;
}
