/**
 * The receiving half of the Streamable HTTP upstream transport: the requests in flight, and the
 * delivery of what arrives for them (a JSON body of one message or an array, or SSE events) as
 * validated JSON-RPC messages tagged with the request they relate to. A request that cannot be
 * answered any more gets a synthetic error response, so no caller waits for an answer that
 * cannot come.
 *
 * @module
 */
import type { ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { IdTable } from '../protocol/id-table.js';
import { isResponse, validateMessage, type JsonRpcMessage } from '../protocol/jsonrpc.js';
import { upstreamErrorResponse } from './http-common.js';
import type { EventSourceMessage } from './sse-parser.js';
import type { PendingRequest } from './streamable-http-exchange.js';
import type { IncomingMessageInfo } from './transport.js';

const NO_INFO: IncomingMessageInfo = Object.freeze({});

/** What {@link RequestDelivery} needs from its transport. */
export interface DeliveryHost {
  /** The transport's description, for error messages. */
  readonly description: string;
  readonly logger: Logger;
  /** Whether the transport closed (nothing is delivered any more). */
  closed(): boolean;
  /** Hands a message to the transport's `onmessage`. */
  onmessage(message: JsonRpcMessage, info: IncomingMessageInfo): void;
  /** The response to `initialize` arrived with this result. */
  onInitializeResult(result: Record<string, unknown>): void;
  /** Something arrived that is not a JSON-RPC message. */
  protocolError(reason: string, data: string): void;
}

/** The requests in flight on one transport and the delivery of their answers. */
export class RequestDelivery {
  /** Requests whose response has not arrived yet, by JSON-RPC id. */
  readonly pending = new IdTable<PendingRequest>();
  readonly #host: DeliveryHost;

  constructor(host: DeliveryHost) {
    this.#host = host;
  }

  /** A request's `application/json` answer: one message or an array of them. */
  json(text: string, pending: PendingRequest): void {
    if (!this.isLive(pending)) return;
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      this.fail(pending, 'SWB_ERR_UPSTREAM_PROTOCOL', `${this.#host.description}: response body is not JSON`);
      return;
    }
    if (Array.isArray(parsed)) for (const item of parsed as unknown[]) this.deliverValue(item, pending);
    else this.deliverValue(parsed, pending);
    if (!pending.responded) {
      this.fail(
        pending,
        'SWB_ERR_UPSTREAM_PROTOCOL',
        `${this.#host.description}: JSON body did not contain the response to request ${JSON.stringify(pending.id)}`,
      );
    }
  }

  /** One SSE `message` event of a request's stream (`pending`) or of the standalone stream. */
  onEvent(event: EventSourceMessage, pending: PendingRequest | undefined): void {
    if (event.data.length === 0) return; // priming event / keep-alive: only its id matters
    if (event.event !== undefined && event.event !== 'message') {
      this.#host.logger.debug({ event: event.event }, 'ignoring SSE event of unknown type');
      return;
    }
    let value: unknown;
    try {
      value = JSON.parse(event.data);
    } catch {
      this.#host.protocolError('SSE event data is not JSON', event.data);
      return;
    }
    this.deliverValue(value, pending);
  }

  /** One JSON-RPC message (validated here); a response settles its request. */
  deliverValue(value: unknown, pending: PendingRequest | undefined): void {
    const checked = validateMessage(value);
    if (!checked.ok) {
      this.#host.protocolError(`invalid JSON-RPC message: ${checked.reason}`, JSON.stringify(value));
      return;
    }
    const message = checked.message;
    if (isResponse(message) && message.id !== null) {
      const target = pending !== undefined && pending.id === message.id ? pending : this.pending.get(message.id);
      if (target !== undefined && !target.responded) {
        target.responded = true;
        this.pending.delete(target.id);
        if (target.method === 'initialize' && 'result' in message) this.#host.onInitializeResult(message.result);
      }
    }
    this.#emit(message, pending === undefined ? NO_INFO : { relatedRequestId: pending.id });
  }

  #emit(message: JsonRpcMessage, info: IncomingMessageInfo): void {
    if (this.#host.closed()) return;
    try {
      this.#host.onmessage(message, info);
    } catch (err) {
      this.#host.logger.error({ err }, 'onmessage handler threw');
    }
  }

  /** Delivers the synthetic error response of a request that cannot be answered any more. */
  fail(pending: PendingRequest, code: ErrorCode, message: string, data?: Record<string, unknown>): void {
    if (pending.responded) return;
    pending.responded = true;
    this.pending.delete(pending.id);
    this.#host.logger.debug({ reqId: pending.reqId, requestId: pending.id, code, message }, 'upstream request failed');
    this.#emit(upstreamErrorResponse(pending.id, code, message, data), { relatedRequestId: pending.id });
  }

  /** Whether anything is still expected for a request. */
  isLive(pending: PendingRequest): boolean {
    return !this.#host.closed() && !pending.responded && !pending.aborted;
  }
}
