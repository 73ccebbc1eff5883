/**
 * A tunnelled server seen from the replicas its tunnel did not reach. The replica holding the
 * tunnel publishes a {@link RemoteTunnelRecord} (the server's `initialize` result and lists);
 * another replica serves the same server from it: an `Upstream` whose calls are all passed to
 * the holder (`UpstreamOptions.remoteOwner`) and whose connection is a {@link CatalogTransport}
 * answering `initialize`, `ping` and the list methods from the record. When the record changes,
 * the transport announces `list_changed` for the lists that changed, so the upstream re-reads
 * them and clients are told.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcMessage } from '../protocol/jsonrpc.js';
import type { IncomingMessageInfo, MessageTransport, TransportCloseInfo } from '../upstream/transport.js';

/** What the replica holding a tunnel publishes about its server. */
export interface RemoteTunnelRecord {
  /** The replica holding the tunnel (its tag, `StreamHandoverLink.replica`). */
  readonly replica: string;
  readonly description?: string | undefined;
  /** The server's `initialize` result (protocol version, capabilities, serverInfo, instructions). */
  readonly initializeResult: JsonObject;
  readonly tools: readonly JsonObject[];
  readonly prompts: readonly JsonObject[];
  readonly resources: readonly JsonObject[];
  readonly resourceTemplates: readonly JsonObject[];
}

const LISTS = {
  'tools/list': ['tools', 'notifications/tools/list_changed'],
  'prompts/list': ['prompts', 'notifications/prompts/list_changed'],
  'resources/list': ['resources', 'notifications/resources/list_changed'],
  'resources/templates/list': ['resourceTemplates', 'notifications/resources/list_changed'],
} as const;

/** True when `v` has the shape of a {@link RemoteTunnelRecord}. */
export function isRemoteTunnelRecord(v: unknown): v is RemoteTunnelRecord {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return (
    typeof r.replica === 'string' &&
    typeof r.initializeResult === 'object' &&
    r.initializeResult !== null &&
    Array.isArray(r.tools) &&
    Array.isArray(r.prompts) &&
    Array.isArray(r.resources) &&
    Array.isArray(r.resourceTemplates)
  );
}

/** The local connection of a remote tunnelled server: answers from its record. */
export class CatalogTransport implements MessageTransport {
  onmessage?: (message: JsonRpcMessage, info: IncomingMessageInfo) => void;
  onclose?: (info: TransportCloseInfo) => void;
  onerror?: (error: Error) => void;
  #record: RemoteTunnelRecord;
  #closed = false;
  readonly #name: string;

  constructor(name: string, record: RemoteTunnelRecord) {
    this.#name = name;
    this.#record = record;
  }

  get description(): string {
    return `tunnel ${this.#name} on replica ${this.#record.replica}`;
  }

  start(): Promise<void> {
    return Promise.resolve();
  }

  /**
   * Takes a newer record: announces `list_changed` for each list whose content changed (the
   * upstream then re-reads it from here).
   */
  update(record: RemoteTunnelRecord): void {
    const before = this.#record;
    this.#record = record;
    if (this.#closed) return;
    const sent = new Set<string>();
    for (const [, [field, notification]] of Object.entries(LISTS)) {
      if (sent.has(notification) || JSON.stringify(before[field]) === JSON.stringify(record[field])) continue;
      sent.add(notification);
      this.onmessage?.({ jsonrpc: '2.0', method: notification }, {});
    }
  }

  send(message: JsonRpcMessage): Promise<void> {
    if (this.#closed) return Promise.reject(new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${this.description}: closed`));
    if (!('method' in message) || !('id' in message) || message.id === undefined) return Promise.resolve();
    const { id, method } = message;
    let result: JsonObject | undefined;
    if (method === 'initialize') result = this.#record.initializeResult;
    else if (method === 'ping') result = {};
    else if (method in LISTS) {
      const field = LISTS[method as keyof typeof LISTS][0];
      result = { [field]: this.#record[field] as unknown as JsonObject[] };
    }
    // Answered after this call returns, like a real transport.
    queueMicrotask(() => {
      if (this.#closed) return;
      this.onmessage?.(
        result === undefined
          ? { jsonrpc: '2.0', id, error: { code: -32601, message: `${method} goes to the replica holding the tunnel` } }
          : { jsonrpc: '2.0', id, result },
        {},
      );
    });
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.onclose?.({});
    }
    return Promise.resolve();
  }
}
