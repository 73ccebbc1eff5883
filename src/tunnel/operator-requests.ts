/**
 * Operator requests through a tunnel (`POST /reverse-proxy/sessions/{id}/request`): a JSON-RPC
 * request sent under a private string id, so that it never collides with the gateway's own
 * upstream ids, and its response handed back with the caller's id restored.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.js';

const OPERATOR_ID_PREFIX = 'swb-op-';

/** A request under way: the caller's id, and how to settle its promise. */
interface Operator {
  readonly originalId: JsonRpcId;
  readonly resolve: (response: JsonRpcResponse) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

function idKey(id: JsonRpcId | null): string {
  return typeof id === 'number' ? `n:${id}` : `s:${String(id)}`;
}

/** Turns anything thrown into an Error. */
export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

/** The operator requests of one session that await their responses. */
export class OperatorRequests {
  readonly #operators = new Map<string, Operator>();
  #operatorSeq = 0;
  /** The session's id, for error messages. */
  readonly id: string;

  constructor(sessionId: string) {
    this.id = sessionId;
  }

  /**
   * Sends `message` through `send` under a private id and resolves with its response, the id
   * restored to the caller's.
   *
   * @throws GatewayError `SWB_ERR_TUNNEL_TIMEOUT` (as a rejection) after `timeoutMs`
   */
  start(message: JsonRpcRequest, timeoutMs: number, send: (message: JsonRpcMessage) => void): Promise<JsonRpcResponse> {
    const privateId = `${OPERATOR_ID_PREFIX}${++this.#operatorSeq}`;
    return new Promise<JsonRpcResponse>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#operators.delete(idKey(privateId));
        reject(new GatewayError('SWB_ERR_TUNNEL_TIMEOUT', `no response through tunnel ${this.id} in ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      this.#operators.set(idKey(privateId), { originalId: message.id, resolve, reject, timer });
      try {
        send({ ...message, id: privateId });
      } catch (err) {
        clearTimeout(timer);
        this.#operators.delete(idKey(privateId));
        reject(toError(err));
      }
    });
  }

  /**
   * Settles the operator request that `message` answers, if any.
   *
   * @returns whether `message` was such an answer (and so is not for anyone else).
   */
  settle(message: JsonRpcMessage): boolean {
    if (!('method' in message) && typeof message.id === 'string' && message.id.startsWith(OPERATOR_ID_PREFIX)) {
      const op = this.#operators.get(idKey(message.id));
      if (op !== undefined) {
        this.#operators.delete(idKey(message.id));
        clearTimeout(op.timer);
        op.resolve({ ...message, id: op.originalId });
        return true;
      }
    }
    return false;
  }

  /** Rejects every request under way with `error` (the session ended). */
  rejectAll(error: Error): void {
    for (const op of this.#operators.values()) {
      clearTimeout(op.timer);
      op.reject(error);
    }
    this.#operators.clear();
  }
}
