/**
 * Owners of connection-bound upstream state across replicas. A stdio child of `session` or `user`
 * isolation holds state for one client session or principal (open files, a browser, a REPL), so
 * with several replicas it runs on one of them, its owner; the others pass that session's or
 * principal's calls to the owner. The application provides the implementation (Redis:
 * `app/forwarding.ts`); without one, every replica runs its own children.
 *
 * @module
 */
import type { JsonObject, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { Caller } from './attribution.js';
import type { SlotContext } from './types.js';

/** A call passed to the owning replica: its answer, and its cancellation. */
export interface ForwardedCall {
  /** Always resolves: the owner's answer, or a synthetic JSON-RPC error. */
  readonly response: Promise<JsonRpcResponse>;
  cancel(reason?: string): void;
}

/** Which replica owns a slot of an upstream, and how a call reaches it. */
export interface SlotOwnership {
  /**
   * The replica owning slot `key` (a session id or principal id) of upstream `server`: undefined
   * when it is this one (the slot was free and is now claimed here, or was claimed here before),
   * else the owner's replica tag.
   *
   * @throws Error when the shared store cannot be reached (the caller then serves locally)
   */
  ownerOf(server: string, key: string): Promise<string | undefined>;
  /**
   * Passes a call for slot `ctx` of upstream `server` to replica `owner`. Notifications related
   * to it and server→client requests come back through `caller`.
   */
  forward(
    owner: string,
    server: string,
    ctx: SlotContext,
    method: string,
    params: JsonObject | undefined,
    caller: Caller | undefined,
  ): ForwardedCall;
  /** The slot `key` of `server` was closed here: its ownership ends, another replica may claim it. */
  release(server: string, key: string): void;
}
