/**
 * An in-memory transport pair: two linked ends that carry JSON-RPC messages inside one process,
 * so that `UpstreamConnection`, `Upstream`, `ClientSession` and `Gateway` can run against a real
 * MCP server (for instance the official SDK's `McpServer`) without a child process or a socket.
 *
 * - The gateway end ({@link MemoryTransportPair.upstream}) is a {@link MessageTransport}: give it
 *   to an `UpstreamConnection`, or return it from `UpstreamOptions.createTransport`.
 * - The server end ({@link MemoryTransportPair.server}) has the shape of the MCP TypeScript SDK's
 *   `Transport` (`start`, `send(message, { relatedRequestId })`, `close`, `onmessage`, `onclose`,
 *   `onerror`): pass it to `McpServer.connect()` / `Server.connect()`, or drive it by hand.
 *
 * Like a real transport, and unlike the SDK's own `InMemoryTransport`:
 * - delivery is asynchronous (a microtask per message by default) and in order, and each message
 *   is copied through `JSON.stringify`/`JSON.parse`, so neither side ever sees the other's objects;
 * - a message that cannot be serialised is refused alone with `SWB_ERR_UPSTREAM_UNSERIALISABLE`;
 * - `send()` rejects with `SWB_ERR_UPSTREAM_CLOSED` before `start()` and after either end closed;
 * - messages that reach an end before its `start()` wait for it, as a pipe holds them;
 * - closing either end closes both; messages already sent are delivered first, then each started
 *   end's `onclose` fires exactly once. The gateway end reports `{}` when it was closed itself and
 *   `{ error: GatewayError('SWB_ERR_UPSTREAM_CLOSED') }` when the server end went away (as a tunnel
 *   does), or the {@link TransportCloseInfo} given to {@link MemoryTransportPair.disconnect} (e.g.
 *   `{ exitCode: 1, signal: null }` to play a crashed stdio child).
 *
 * Library code, dependency-free: it does not import the SDK (a development dependency only).
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import {
  SENT,
  serialiseMessage,
  type IncomingMessageInfo,
  type MessageTransport,
  type TransportCloseInfo,
} from './transport.js';

/** Options of {@link createMemoryTransportPair}. */
export interface MemoryTransportOptions {
  /** Shown in the gateway end's `description` (`memory {name}`). Default `"server"`. */
  name?: string;
  /**
   * When true, a message the server end sends with `{ relatedRequestId }` (the SDK does so for
   * everything it sends while handling a request) reaches the gateway end with that id in
   * {@link IncomingMessageInfo.relatedRequestId}, as a Streamable HTTP POST response stream does.
   * When false (the default) nothing links messages to requests, as on stdio.
   */
  relatedRequestIds?: boolean;
  /**
   * Runs one delivery later. Default `queueMicrotask`, which fake timers leave alone; pass
   * `setImmediate` to deliver on a later event-loop turn, as I/O does.
   */
  schedule?: (deliver: () => void) => void;
}

/** Per-message options of {@link MemoryServerTransport.send} (the SDK's `TransportSendOptions`). */
export interface MemoryServerSendOptions {
  /** The request this message relates to (see {@link MemoryTransportOptions.relatedRequestIds}). */
  relatedRequestId?: JsonRpcId | undefined;
}

/**
 * The server end: structurally the MCP TypeScript SDK's `Transport`, so an SDK server can be
 * connected to it. `onclose` takes no argument, as in the SDK.
 */
export interface MemoryServerTransport {
  /** Starts the end; rejects when it was already started. */
  start(): Promise<void>;
  /**
   * Sends one message to the gateway end.
   *
   * `message` is any JSON-RPC message object (typed loosely so that the SDK's own message type,
   * whose error responses may lack an `id`, fits).
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_CLOSED` (as a rejection) when not started or closed;
   *   `SWB_ERR_UPSTREAM_UNSERIALISABLE` when the message cannot be serialised
   */
  send(message: object, options?: MemoryServerSendOptions): Promise<void>;
  /** Closes both ends; resolves once this end's `onclose` has fired. */
  close(): Promise<void>;
  /**
   * Messages from the gateway end, each a fresh object parsed from JSON (a {@link JsonRpcMessage};
   * typed `unknown` so that an SDK server's handler can be assigned).
   */
  onmessage?: ((message: unknown) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  /** Set by an SDK client or server after the initialize handshake; recorded only. */
  setProtocolVersion?: ((version: string) => void) | undefined;
  sessionId?: string | undefined;
}

/** Two linked ends, see the module documentation. */
export interface MemoryTransportPair {
  /** The gateway end: an upstream {@link MessageTransport}. */
  readonly upstream: MessageTransport;
  /** The server end: for an MCP server (SDK `Transport` shape). */
  readonly server: MemoryServerTransport;
  /**
   * Closes both ends from the server side, the gateway end reporting `info` (default
   * `{ exitCode: null, signal: 'SIGKILL' }`, a killed child). Messages already sent are
   * delivered first. Resolves once both started ends' `onclose` have fired.
   */
  disconnect(info?: TransportCloseInfo): Promise<void>;
  /** The protocol version the gateway end was told after initialize, if any. */
  readonly protocolVersion: string | undefined;
}

const NO_INFO: IncomingMessageInfo = Object.freeze({});

/** The state both ends share. */
class Link {
  readonly name: string;
  readonly related: boolean;
  readonly schedule: (deliver: () => void) => void;
  /** Set once either end closed: no more sends. */
  closed = false;
  protocolVersion: string | undefined;
  upstream!: UpstreamEnd;
  server!: ServerEnd;

  constructor(options: MemoryTransportOptions) {
    this.name = options.name ?? 'server';
    this.related = options.relatedRequestIds ?? false;
    this.schedule = options.schedule ?? queueMicrotask;
  }

  /** Ends the link: both started ends hear `onclose` after the deliveries already scheduled. */
  shutdown(upstreamInfo: TransportCloseInfo): Promise<void> {
    if (this.closed) return Promise.all([this.upstream.finished, this.server.finished]).then(() => undefined);
    this.closed = true;
    this.schedule(() => {
      this.upstream.finish(upstreamInfo);
      this.server.finish();
    });
    return Promise.all([this.upstream.finished, this.server.finished]).then(() => undefined);
  }
}

/** Serialises `message` (copying it as a wire would) or returns the rejection for `send()`. */
function encode(link: Link, message: JsonRpcMessage, started: boolean): string | Promise<void> {
  if (link.closed || !started) {
    return Promise.reject(
      new GatewayError(
        'SWB_ERR_UPSTREAM_CLOSED',
        `memory ${link.name}: transport ${started ? 'closed' : 'not started'}`,
      ),
    );
  }
  try {
    return serialiseMessage(message);
  } catch (err) {
    return Promise.reject(err instanceof Error ? err : new Error(String(err)));
  }
}

/**
 * One end's lifecycle: started or not, closed or not, the messages that reached it before
 * `start()` (kept and delivered in order once it starts, as a pipe would hold them), and a
 * promise that settles once its `onclose` has run.
 */
abstract class End {
  readonly link: Link;
  started = false;
  /** True once `onclose` ran (or would have, for an end never started): later deliveries are dropped. */
  done = false;
  #backlog: Array<() => void> = [];
  #resolveFinished!: () => void;
  readonly finished: Promise<void>;

  constructor(link: Link) {
    this.link = link;
    this.finished = new Promise((resolve) => (this.#resolveFinished = resolve));
  }

  start(): Promise<void> {
    if (this.started) return Promise.reject(new Error(`memory ${this.link.name}: transport already started`));
    if (this.link.closed) {
      return Promise.reject(
        new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `memory ${this.link.name}: transport closed`),
      );
    }
    this.started = true;
    const backlog = this.#backlog;
    this.#backlog = [];
    for (const deliver of backlog) this.link.schedule(deliver);
    return Promise.resolve();
  }

  /** Runs `deliver` (a message for this end) now, or after `start()` when it has not started. */
  receive(deliver: () => void): void {
    if (this.done) return;
    if (this.started) deliver();
    else this.#backlog.push(deliver);
  }

  /** Runs this end's close callback once (only when it was started); drops what was not delivered. */
  protected finishWith(fire: () => void): void {
    if (this.done) return;
    this.done = true;
    this.#backlog = [];
    try {
      if (this.started) fire();
    } finally {
      this.#resolveFinished();
    }
  }
}

class UpstreamEnd extends End implements MessageTransport {
  onmessage?: (message: JsonRpcMessage, info: IncomingMessageInfo) => void;
  onclose?: (info: TransportCloseInfo) => void;
  onerror?: (error: Error) => void;

  get description(): string {
    return `memory ${this.link.name}`;
  }

  send(message: JsonRpcMessage): Promise<void> {
    const link = this.link;
    const line = encode(link, message, this.started);
    if (typeof line !== 'string') return line;
    const server = link.server;
    link.schedule(() => server.receive(() => server.onmessage?.(JSON.parse(line))));
    return SENT;
  }

  close(): Promise<void> {
    return this.link.shutdown({});
  }

  setProtocolVersion(version: string): void {
    this.link.protocolVersion = version;
  }

  finish(info: TransportCloseInfo): void {
    this.finishWith(() => this.onclose?.(info));
  }
}

class ServerEnd extends End implements MemoryServerTransport {
  onmessage?: ((message: unknown) => void) | undefined;
  onclose?: (() => void) | undefined;
  onerror?: ((error: Error) => void) | undefined;
  sessionId?: string | undefined;

  send(message: object, options?: MemoryServerSendOptions): Promise<void> {
    const link = this.link;
    const line = encode(link, message as JsonRpcMessage, this.started);
    if (typeof line !== 'string') return line;
    const related = link.related ? options?.relatedRequestId : undefined;
    const info: IncomingMessageInfo = related === undefined ? NO_INFO : { relatedRequestId: related };
    const upstream = link.upstream;
    link.schedule(() => upstream.receive(() => upstream.onmessage?.(JSON.parse(line) as JsonRpcMessage, info)));
    return SENT;
  }

  close(): Promise<void> {
    return this.link.shutdown({
      error: new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `memory ${this.link.name}: the server end closed`),
    });
  }

  setProtocolVersion(_version: string): void {
    // Recorded by the SDK for HTTP headers; nothing to do in memory.
  }

  finish(): void {
    this.finishWith(() => this.onclose?.());
  }
}

/**
 * Creates two linked in-memory ends; see the module documentation for the semantics.
 *
 * @example
 * ```ts
 * const pair = createMemoryTransportPair({ name: 'echo' });
 * await new McpServer({ name: 'echo', version: '1' }).connect(pair.server);
 * const conn = new UpstreamConnection(pair.upstream, { name: 'echo', logger });
 * await conn.initialize();
 * ```
 */
export function createMemoryTransportPair(options: MemoryTransportOptions = {}): MemoryTransportPair {
  const link = new Link(options);
  link.upstream = new UpstreamEnd(link);
  link.server = new ServerEnd(link);
  return {
    upstream: link.upstream,
    server: link.server,
    disconnect: (info = { exitCode: null, signal: 'SIGKILL' }) => link.shutdown(info),
    get protocolVersion() {
      return link.protocolVersion;
    },
  };
}
