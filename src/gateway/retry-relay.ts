/**
 * Retries of parked MCP 2026-07-28 calls across replicas (basic/patterns/mrtr). A call that asked
 * the client for input is parked in the replica that runs it, and its `requestState` names that
 * replica (`InputParking`). A retry that lands on another replica is passed to the owner over the
 * application's shared channel; the owner resumes the parked call with a {@link RelayedResponse}
 * whose writes travel back, and the receiving replica writes them on the client's response.
 *
 * The link is wired by the two sides that know the parts: the modern front door provides
 * {@link RetryRelayLink.resume} (its parking), the application's Redis feed provides
 * {@link RetryRelayLink.forward} (the channel).
 *
 * @module
 */
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import type { ClientCapabilities } from '../upstream/connection.js';
import type { JsonRpcId } from '../protocol/jsonrpc.js';
import type { RequestContext } from '../pipeline/stage.js';

/** A retry as it travels to the replica that parked its call. */
export interface RelayedRetry {
  readonly requestState: string;
  readonly method: string;
  /** `params.name` (tools/call, prompts/get) or `params.uri` (resources/read). */
  readonly name: string;
  /** The retry's own JSON-RPC id: the answer goes out under it. */
  readonly id: JsonRpcId;
  readonly inputResponses: unknown;
  readonly capabilities: ClientCapabilities;
  readonly logLevel: unknown;
}

/** One write of a relayed response: its head, a chunk, or its end (with a last chunk). */
export type RelayFrame =
  | { readonly kind: 'head'; readonly status: number; readonly headers: Record<string, string | number> }
  | { readonly kind: 'write'; readonly chunk: string }
  | { readonly kind: 'end'; readonly chunk?: string };

/**
 * The part of a `ServerResponse` a parked call writes to, relayed frame by frame to the replica
 * that received the retry. `destroyed` turns true, and `close` is emitted, when that replica says
 * its client went away ({@link RelayedResponse.clientClosed}).
 */
export class RelayedResponse extends EventEmitter {
  destroyed = false;
  headersSent = false;
  readonly #send: (frame: RelayFrame) => void;
  #ended = false;

  constructor(send: (frame: RelayFrame) => void) {
    super();
    this.#send = send;
  }

  writeHead(status: number, headers: Record<string, string | number> = {}): this {
    if (!this.headersSent && !this.destroyed) {
      this.headersSent = true;
      this.#send({ kind: 'head', status, headers });
    }
    return this;
  }

  write(chunk: string | Buffer): boolean {
    if (this.#ended || this.destroyed) return false;
    if (!this.headersSent) this.writeHead(200);
    this.#send({ kind: 'write', chunk: chunk.toString() });
    return true;
  }

  end(chunk?: string | Buffer): this {
    if (this.#ended || this.destroyed) return this;
    if (!this.headersSent) this.writeHead(200);
    this.#ended = true;
    this.#send(chunk === undefined ? { kind: 'end' } : { kind: 'end', chunk: chunk.toString() });
    this.emit('close');
    return this;
  }

  /** The receiving replica's client closed its response (or that replica is gone). */
  clientClosed(): void {
    if (this.destroyed || this.#ended) return;
    this.destroyed = true;
    this.emit('close');
  }

  /** This object, typed as the response the parked call writes to (it uses only the members above). */
  asResponse(): ServerResponse {
    return this as unknown as ServerResponse;
  }
}

/** The per-process link between the modern front door's parking and the replicas' channel. */
export class RetryRelayLink {
  /**
   * Set by the modern front door: resumes the call `retry.requestState` parked here, answering
   * on `res` (errors too: an unknown, spent or forged state is answered on `res`, never thrown).
   */
  resume: ((retry: RelayedRetry, res: ServerResponse, meta: RequestContext) => void) | undefined = undefined;

  /**
   * Set by the application's shared channel (Redis): passes `retry` to replica `replica` and
   * writes what comes back on `res`. Undefined: a retry of another replica's call is refused.
   */
  forward: ((replica: string, retry: RelayedRetry, res: ServerResponse, meta: RequestContext) => void) | undefined =
    undefined;
}
