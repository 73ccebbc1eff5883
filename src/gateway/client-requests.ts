/**
 * Server→client requests of one client session (sampling, elicitation, roots; MCP client
 * features): each is sent to the client under an id of the session's own, and the client's
 * answer is routed back to the upstream request that is waiting for it, or the request times out.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcErrorObject, JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { OutboundChannel } from './session-host.js';

/** The client's answer to a server→client request. */
export interface ClientAnswer {
  result?: JsonObject;
  error?: JsonRpcErrorObject;
}

interface ClientRequest {
  readonly resolve: (answer: ClientAnswer) => void;
  readonly reject: (err: GatewayError) => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * This process's block of server→client request ids for portable sessions: `block × 2^32 + n`.
 * Replicas serving one session pick blocks at random (1 … 2^20), so their ids do not collide
 * (two replicas of a session share a block with probability 2^-20) and the ids stay exact
 * JSON numbers (< 2^53).
 */
export const PROCESS_ID_BLOCK = 1 + Math.floor(Math.random() * 2 ** 20);
const BLOCK_SIZE = 2 ** 32;

/** The server→client requests a session has sent and awaits answers for. */
export class ClientRequests {
  #pending = new Map<number, ClientRequest>();
  #nextId: number;

  /**
   * @param base - the first id is `base + 1`: 0 for a session only this process serves,
   *   `PROCESS_ID_BLOCK × 2^32` for a portable one (other replicas send it requests too)
   */
  constructor(base = 0) {
    this.#nextId = base + 1;
  }

  /** The base of this process's id block for portable sessions ({@link PROCESS_ID_BLOCK}). */
  static get portableBase(): number {
    return PROCESS_ID_BLOCK * BLOCK_SIZE;
  }

  /**
   * Sends `method` to the client on `ch` with the next integer id.
   *
   * @param timeoutMs - how long the client may take to answer
   * @returns the client's `result` or `error`; rejects with `SWB_ERR_UPSTREAM_TIMEOUT` when it
   *   does not answer in time, or with the error {@link rejectAll} makes
   */
  send(method: string, params: JsonObject | undefined, ch: OutboundChannel, timeoutMs: number): Promise<ClientAnswer> {
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(id);
        reject(new GatewayError('SWB_ERR_UPSTREAM_TIMEOUT', `the client did not answer ${method} in time`));
      }, timeoutMs);
      timer.unref();
      this.#pending.set(id, { resolve, reject, timer });
      const message: JsonRpcRequest =
        params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
      ch.send(message);
    });
  }

  /**
   * Routes the client's response to the request waiting for it.
   *
   * @returns false when no request of this process waits for that id (unknown, answered,
   *   timed out, or sent by another replica)
   */
  answer(r: JsonRpcResponse): boolean {
    if (typeof r.id !== 'number') return false;
    const pending = this.#pending.get(r.id);
    if (!pending) return false;
    this.#pending.delete(r.id);
    clearTimeout(pending.timer);
    pending.resolve('error' in r ? { error: r.error } : { result: r.result });
    return true;
  }

  /** Fails every request still waiting (the session closed), each with an error from `reason`. */
  rejectAll(reason: () => GatewayError): void {
    for (const p of this.#pending.values()) {
      clearTimeout(p.timer);
      p.reject(reason());
    }
    this.#pending.clear();
  }
}
