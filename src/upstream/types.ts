/**
 * The public types of an upstream: who a call is for ({@link SlotContext}), what it serves
 * ({@link Catalog}), its lifecycle ({@link UpstreamState}), the events it emits and the options
 * it is built with. The {@link Upstream} facade re-exports them.
 *
 * @module
 */
import type { SlotOwnership } from './ownership.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { ServerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { DestinationPolicy } from '../policy/destinations.js';
import type { CatalogStore } from '../store/types.js';
import type { JsonObject, JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { OutboundHeaders, UpstreamInterceptor } from './dispatch.js';
import type { MessageTransport } from './transport.js';
import type { Upstream } from './upstream.js';
import type { UpstreamIdentitySink } from './user-credentials.js';

/** Who a request is for: picks the connection under `session`/`user` isolation. */
export interface SlotContext {
  sessionId: string;
  principalId: string;
  /** The caller (credentials for `forward`, identity headers); default: the slot's last one. */
  principal?: Principal;
  /** The client's HTTP request headers (header passthrough). */
  httpHeaders?: IncomingHttpHeaders;
  /** Opaque tracing parent of the client request (see observability/tracing). */
  trace?: unknown;
  /** The client request's id, for log lines about this call (observability/request-id). */
  reqId?: string | undefined;
  /**
   * Where the outbound-headers step reports the upstream identity the call used (the client
   * request's context: usage log, traces); absent for calls without a client request.
   */
  identity?: UpstreamIdentitySink | undefined;
}

/** The lists an upstream serves, cached at start and refreshed on `list_changed`. */
export interface Catalog {
  tools: JsonObject[];
  prompts: JsonObject[];
  resources: JsonObject[];
  resourceTemplates: JsonObject[];
}

/**
 * Lifecycle state reported by `/readyz` and the admin API. `idle`: a `start: lazy` server whose
 * child is not running; its lists are served from the stored catalog and the next request that
 * needs the child starts it.
 */
export type UpstreamState = 'starting' | 'ready' | 'idle' | 'restarting' | 'failed' | 'stopped';

/**
 * Whether an upstream in `state` can serve requests now or on demand (`ready`, or `idle`): what
 * `/readyz`, the `switchboard_upstream_up` gauge and the ready count of the admin API take as up.
 */
export function servesRequests(state: UpstreamState): boolean {
  return state === 'ready' || state === 'idle';
}

/** Which client sessions an unrelated upstream notification is for. */
export type Audience = { kind: 'all' } | { kind: 'session'; id: string } | { kind: 'principal'; id: string };

/** Events an upstream emits to the gateway. */
export type UpstreamEvent =
  | { type: 'catalog'; upstream: Upstream; changed: ReadonlyArray<keyof Catalog> }
  | { type: 'notification'; upstream: Upstream; notification: JsonRpcNotification; audience: Audience }
  | { type: 'state'; upstream: Upstream; state: UpstreamState; error?: string };

/** A request in flight on behalf of a client call. */
export interface UpstreamCall {
  /** Always resolves: the upstream response, or a synthetic JSON-RPC error. */
  readonly response: Promise<JsonRpcResponse>;
  /** Cancels the call upstream (notifications/cancelled). */
  cancel(reason?: string): void;
}

/** Options for {@link Upstream}. */
export interface UpstreamOptions {
  name: string;
  config: ServerConfig;
  logger: Logger;
  gatewayVersion: string;
  /** Bounded admission wait for bidi-capable calls on a shared stdio child (ms). */
  attributionWaitMs: number;
  /** Clock (ms) for idle reaping; injectable for tests. Default `Date.now`. */
  now?: () => number;
  /**
   * The cross-cutting steps of every call, outermost first (`dispatch.ts`; built by
   * `interceptors/index.ts` `createUpstreamInterceptors`). Composed once, over the connection
   * step. Default: the retry step alone.
   */
  interceptors?: readonly UpstreamInterceptor[];
  /**
   * Credential headers a new connection of a remote upstream is made with (initialize, the GET
   * stream), for the principal of the connection's slot. Default none.
   */
  connectHeaders?: (principal: Principal | undefined) => OutboundHeaders | Promise<OutboundHeaders>;
  /** Called when a client call finishes: MCP method, duration in ms, whether it was an error (metrics). */
  observe?: (method: string, durationMs: number, error: boolean) => void;
  /**
   * Variables a stdio child must not inherit through `inheritEnv` (those the configuration
   * interpolates outside this server's entry); see `child-env.ts`. Default none.
   */
  forbiddenEnv?: readonly string[];
  /**
   * The destination policy, for a runtime URL server only: its URL (and token endpoint) is
   * checked before each connection attempt and by the sockets' DNS lookup. Default none.
   */
  destinations?: DestinationPolicy;
  /**
   * Delays (ms) between openings of a modern upstream's `subscriptions/listen` request after its
   * stream ended or failed (`upstream-listen.ts`). Default 500 … 30 000.
   */
  listenReconnect?: { initialDelayMs: number; maxDelayMs: number };
  /**
   * The owners of `session`/`user`-isolated stdio children across replicas (`./ownership.ts`),
   * read per use (set once the application's shared store is connected). Undefined, or a getter
   * answering undefined: every replica runs its own children.
   */
  ownership?: () => SlotOwnership | undefined;
  /**
   * The replica this upstream runs on, when it is another one (a tunnelled server whose tunnel
   * reached that replica): every call and subscription is passed there through `ownership`;
   * the local connection (`createTransport`) only answers `initialize` and the lists.
   */
  remoteOwner?: string;
  /**
   * Where a `start: lazy` upstream's catalog is kept between runs: read at start (a stored catalog
   * of the same configuration spares starting the child), written whenever a live child's
   * catalog changes. Default none: a lazy upstream learns its catalog by starting at every start.
   */
  catalogStore?: CatalogStore;
  /** Factory override (tests, tunnels): builds the transport for a new connection. */
  createTransport?: (logger: Logger) => MessageTransport;
  onEvent: (event: UpstreamEvent) => void;
}
