/**
 * One call through an `Upstream`: `PendingCall` carries what it was asked, where its
 * attempt in flight went (for cancellation and the retry), and, for a 2025-era client of a modern
 * upstream, the `input_required` round in flight; `SettledCall` is an answer known at once.
 *
 * @module
 */
import type { ForwardedCall } from './ownership.js';
import type { JsonObject, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { Caller, UpstreamConnection } from './connection.js';
import type { ConnectionBinding, OutboundHeaders, UpstreamRequest } from './dispatch.js';
import type { SlotContext, UpstreamCall } from './types.js';

/** What a {@link PendingCall} needs from its upstream. */
export interface CallHost {
  /** The binding of the slot `ctx` maps to, when it exists. */
  bindingOf(ctx: SlotContext): ConnectionBinding | undefined;
  /** Stops handing out a connection. */
  forget(conn: UpstreamConnection): void;
  /** Sees a call's final answer once (metrics, health). */
  settle(call: PendingCall, response: JsonRpcResponse): JsonRpcResponse;
}

/** The state of one {@link Upstream.call}: what it was asked, where it went, whether it was cancelled. */
export class PendingCall implements UpstreamCall, UpstreamRequest {
  response!: Promise<JsonRpcResponse>;
  readonly ctx: SlotContext;
  readonly method: string;
  readonly params: JsonObject | undefined;
  readonly caller: Caller | undefined;
  readonly probe: boolean;
  readonly #host: CallHost;
  /** The request's `_meta` and its progress token as the client sent it (restored on a retry). */
  readonly meta: JsonObject | undefined;
  readonly progressToken: unknown;
  cancelled = false;
  /** A 2025-era client's call to a modern upstream: `input_required` is answered for it, not refused. */
  fulfils = false;
  /** The retry in flight of an `input_required` round (cancelled with this call). */
  round: PendingCall | undefined = undefined;
  attempt = 0;
  headers: OutboundHeaders | undefined = undefined;
  /** The connection and upstream id of the attempt in flight. */
  connection: UpstreamConnection | undefined = undefined;
  upstreamId = 0;
  /** `performance.now()` at the call when it is observed (metrics), else -1; -1 once observed. */
  started = -1;
  /** The attempt in flight when it was passed to the replica owning the slot (`./ownership.ts`). */
  forwarded: ForwardedCall | undefined = undefined;

  constructor(
    host: CallHost,
    ctx: SlotContext,
    method: string,
    params: JsonObject | undefined,
    caller: Caller | undefined,
    probe: boolean,
  ) {
    this.#host = host;
    this.ctx = ctx;
    this.method = method;
    this.params = params;
    this.caller = caller;
    this.probe = probe;
    this.meta = params?._meta as JsonObject | undefined;
    this.progressToken = this.meta?.progressToken;
  }

  cancel(reason?: string): void {
    this.cancelled = true;
    if (this.connection !== undefined) this.connection.cancel(this.upstreamId, reason);
    this.forwarded?.cancel(reason);
    this.round?.cancel(reason);
  }

  binding(): ConnectionBinding | undefined {
    return this.#host.bindingOf(this.ctx);
  }

  reattempt(): void {
    if (this.connection !== undefined) this.#host.forget(this.connection);
    // The connection rewrites _meta.progressToken in place; a retry must start from the client's token.
    if (this.meta !== undefined) this.meta.progressToken = this.progressToken;
    this.headers = undefined;
    this.attempt++;
  }

  settle(response: JsonRpcResponse): JsonRpcResponse {
    return this.#host.settle(this, response);
  }
}

/** An answer settled at once (a method a modern upstream does not have). */
export class SettledCall implements UpstreamCall {
  readonly response: Promise<JsonRpcResponse>;
  constructor(response: JsonRpcResponse) {
    this.response = Promise.resolve(response);
  }
  cancel(): void {}
}
