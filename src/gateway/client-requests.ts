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

/** The server→client requests a session has sent and awaits answers for. */
export class ClientRequests {
  #pending = new Map<number, ClientRequest>();
  #nextId = 1;

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

  /** Routes the client's response to the request waiting for it; ignores unknown ids. */
  answer(r: JsonRpcResponse): void {
    if (typeof r.id !== 'number') return;
    const pending = this.#pending.get(r.id);
    if (!pending) return;
    this.#pending.delete(r.id);
    clearTimeout(pending.timer);
    pending.resolve('error' in r ? { error: r.error } : { result: r.result });
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
