/**
 * The call path of an upstream as composable steps, like undici's dispatcher interceptors: a
 * {@link Dispatch} sends one {@link UpstreamRequest} and resolves with its JSON-RPC response; an
 * {@link UpstreamInterceptor} wraps the next dispatch and can change the request on the way in
 * and see the response on the way out.
 *
 * An upstream composes its interceptors once, at construction (a reload builds a new upstream),
 * outermost first. The order the gateway builds (`interceptors/index.ts`):
 *
 *   concurrency → retry → tracing → outbound headers (credentials, passthrough, identity) → connection
 *
 * Cost rules, because this is the hot path:
 * - A concern that is not configured contributes no interceptor: an upstream with none of them
 *   composes to retry over the bare connection step, the same work as one `async` function.
 * - An interceptor that has nothing to do for a request calls `next(request)` and returns its
 *   promise as it is (no `async` frame, no `.then`).
 * - A dispatch always resolves (never rejects): failures become JSON-RPC error responses
 *   ({@link errorResponseOf}).
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { Caller, UpstreamConnection } from './connection.js';
import type { SlotContext } from './types.js';

/** Outbound HTTP headers of one request (lower-case names; never mutated once built). */
export type OutboundHeaders = Readonly<Record<string, string>>;

/**
 * What a connection of a remote upstream was last used with: the principal and its credential
 * headers, which the connection's own traffic (initialize, the GET stream, notifications) carries.
 */
export interface ConnectionBinding {
  /** The principal the connection was last used for (undefined: the anonymous principal). */
  principal: SlotContext['principal'];
  /** The latest credential headers for that principal. */
  authHeaders: OutboundHeaders;
}

/** One client call on its way to an upstream, as the interceptors see it. */
export interface UpstreamRequest {
  /** Who the call is for: picks the connection, carries the caller's principal and headers. */
  readonly ctx: SlotContext;
  /** The JSON-RPC method. */
  readonly method: string;
  /** The JSON-RPC params (the connection rewrites `_meta.progressToken` in place). */
  readonly params: JsonObject | undefined;
  /** The client session and channel the call came from (server→client attribution). */
  readonly caller: Caller | undefined;
  /** 0 for the first attempt, 1 for the one retry. */
  readonly attempt: number;
  /** Whether the client cancelled the call. */
  readonly cancelled: boolean;
  /** A health probe sent by the gateway itself: admission limits let it through. */
  readonly probe: boolean;
  /**
   * The HTTP headers of this attempt (remote upstreams). An interceptor that adds headers merges
   * them into a new object; the outbound-headers step puts whatever an outer step set last.
   */
  headers: OutboundHeaders | undefined;
  /** The binding of the connection this call's slot holds, when the slot exists. */
  binding(): ConnectionBinding | undefined;
  /**
   * Prepares another attempt: stops handing out the connection the last attempt used, restores
   * the client's `_meta.progressToken`, clears the headers and increments {@link attempt}.
   */
  reattempt(): void;
  /**
   * Every final answer of a call passes here exactly once, in the same step (no extra promise):
   * the metrics observer and the health tracker see it. The retry step, which decides that an
   * answer is final, calls it, and so does a step that answers without calling `next` before
   * the retry step (the concurrency limit refusing). Returns `response`.
   */
  settle(response: JsonRpcResponse): JsonRpcResponse;
  /** The connection of the attempt in flight (set by the connection step). */
  readonly connection: UpstreamConnection | undefined;
}

/** Sends one request; always resolves, with the upstream's response or a synthetic JSON-RPC error. */
export type Dispatch = (request: UpstreamRequest) => Promise<JsonRpcResponse>;

/** Wraps the next step of the call path (undici's `(dispatch) => dispatch` interceptor shape). */
export type UpstreamInterceptor = (next: Dispatch) => Dispatch;

/**
 * Composes interceptors (outermost first) over the final dispatch, once.
 *
 * @returns `dispatch` itself when there are no interceptors
 */
export function composeDispatch(interceptors: readonly UpstreamInterceptor[], dispatch: Dispatch): Dispatch {
  let out = dispatch;
  for (let i = interceptors.length - 1; i >= 0; i--) out = interceptors[i]!(out);
  return out;
}

/** A JSON-RPC error response (id 0; the caller restores the client's id) for a thrown error. */
export function errorResponseOf(err: unknown): JsonRpcResponse {
  const ge = err instanceof GatewayError ? err : new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', String(err));
  return { jsonrpc: '2.0', id: 0, error: ge.toJsonRpcError() };
}
