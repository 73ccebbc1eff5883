/**
 * The gateway: upstreams, views (aggregate, virtual servers, single servers) and client
 * sessions, built from a {@link SwitchboardConfig} and updated in place by hot reload.
 *
 * This file holds the upstreams and reload; the views are `gateway-views.ts`, the session
 * registry with its limits and expiry `session-registry.ts`, and the notifications sent to
 * sessions without a request (`list_changed`, audiences) `fan-out.ts`.
 *
 * Size: over 500 lines, because `Gateway` is the one owner of the upstream map, the views and the
 * sessions; each part that needs none of that private state is a module of its own (above, and
 * `stream-handover.ts`, `retry-relay.ts`); what stays here changes the shared state (reload,
 * runtime servers, tunnels, restarts).
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { StdioServer, type ServerConfig, type SwitchboardConfig } from '../config/schema.js';
import type { MessageTransport } from '../upstream/transport.js';
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { Logger } from '../observability/logger.js';
import type { UpstreamEvent, UpstreamState } from '../upstream/upstream.js';
import type { Tracing } from '../observability/tracing.js';
import type { DestinationPolicy } from '../policy/destinations.js';
import { Upstream } from '../upstream/upstream.js';
import { createUpstreamInterceptors, type OutboundOptions } from '../upstream/interceptors/index.js';
import { ClientSession, type SessionHost, type SessionTransport } from './client-session.js';
import { TaskIds } from './tasks.js';
import { EMPTY_PIPELINE, type Pipeline } from '../pipeline/stage.js';
import { fanOut, notifyAllListChanged, notifyCatalogChanged } from './fan-out.js';
import { overlappingNamespaces } from './naming.js';
import { GatewayViews } from './gateway-views.js';
import { SessionRegistry } from './session-registry.js';
import type { NameCollision, View } from './view.js';
import type { SessionSealer } from './session-seal.js';
import { StreamHandoverLink } from './stream-handover.js';
import { RetryRelayLink } from './retry-relay.js';
import type { SlotOwnership } from '../upstream/ownership.js';
import type { CatalogStore } from '../store/types.js';

/** Options for {@link Gateway}. */
export interface GatewayOptions {
  config: SwitchboardConfig;
  logger: Logger;
  /** Reported in serverInfo and upstream clientInfo. */
  version: string;
  /** Clock (ms), injectable for tests of idle timeouts. Default `Date.now`. */
  now?: () => number;
  /** Items per page of aggregated lists (0 = one page). Default 0. */
  pageSize?: number;
  /** Interval of the idle sweeper (ms); 0 disables the timer (tests call `sweep()`). Default 10 000. */
  sweepIntervalMs?: number;
  /** Tracing: client spans for upstream calls, `traceparent` to HTTP upstreams. */
  tracing?: Tracing;
  /** Upstream observations for metrics. */
  observeUpstream?: {
    call(server: string, durationMs: number, error: boolean): void;
    state(server: string, state: UpstreamState): void;
    restart(server: string): void;
  };
  /**
   * Called for each exposed-name collision a view reports (after the gateway logged a warning),
   * e.g. to count it in metrics. The withheld item stays out of that view until the conflict ends.
   */
  onNameCollision?: (collision: NameCollision) => void;
  /**
   * Called for each `tools/list` answered from its first page, with the endpoint's path (`/mcp`,
   * `/mcp/{virtual server}`, `/servers/{name}/mcp`), the JSON bytes of the list the client got and
   * those of every tool the principal may use there, e.g. to count them in metrics.
   */
  onToolList?: (endpoint: string, sentBytes: number, fullBytes: number) => void;
  /**
   * Builds the transport of each new connection to a configured server, instead of the one its
   * configuration describes (a child process or an HTTP client): for tests and embedders that
   * serve upstreams in-process, e.g. over `upstream/memory-transport.ts`. Default: from the
   * configuration. Tunnelled servers keep their tunnel transport.
   */
  createTransport?: (server: string, config: ServerConfig, logger: Logger) => MessageTransport;
  /**
   * Where `start: lazy` servers keep their last catalog between runs (`upstream/upstream.ts`).
   * Default none: a lazy server is started once at every gateway start to learn its catalog.
   */
  catalogs?: CatalogStore;
}

/** Upstreams, views and sessions of one running gateway. */
export class Gateway implements SessionHost {
  readonly logger: Logger;
  readonly version: string;
  readonly pageSize: number;
  readonly clientRequestTimeoutMs = 600_000;
  readonly taskIds = new TaskIds();
  /**
   * The request pipeline's stages (rate limits, guardrails), composed; replaced as a whole at
   * reload, read by sessions per request. {@link EMPTY_PIPELINE} until the application sets it.
   */
  pipeline: Pipeline = EMPTY_PIPELINE;
  /**
   * Called with a server's whole tool list (upstream names) whenever it changes, starting with the
   * first load (guardrail tool pinning). Set by the application; undefined: nobody listens.
   */
  onToolCatalog: ((server: string, tools: readonly JsonObject[]) => void) | undefined = undefined;
  /**
   * Seals the ids of Streamable HTTP sessions so that any replica with the same key can restore
   * them ({@link findSession}); undefined: plain ids, known to this process only. Set by the
   * application (`sessions.portable`).
   */
  sessionSealer: SessionSealer | undefined = undefined;
  /**
   * The owners of `session`/`user`-isolated stdio children across replicas
   * (`upstream/ownership.ts`); set by the application when replicas share Redis. Undefined: every
   * replica runs its own children.
   */
  slotOwnership: SlotOwnership | undefined = undefined;
  /** Resumption of a portable session's stream on another replica (`./stream-handover.ts`). */
  readonly streamHandover = new StreamHandoverLink();
  /** Retries of parked 2026-07-28 calls that land on another replica (`./retry-relay.ts`). */
  readonly retryRelay = new RetryRelayLink();
  /**
   * Told when a sealed session ends here by the client's DELETE or the operator, so other
   * replicas can end their copies ({@link endSession}). Set by the application.
   */
  onSessionEnded: ((id: string, createdAt: number) => void) | undefined = undefined;
  /**
   * True once the gateway is stopping (SIGTERM): `/readyz` fails, no new session is opened
   * (`SWB_ERR_SESSION_DRAINING`), responses ask clients and balancers to close the connection,
   * and what is in flight — requests of existing sessions included — is still served.
   */
  draining = false;
  #config: SwitchboardConfig;
  /** The configuration file's content; `#config` is it plus the runtime servers. */
  #fileConfig: SwitchboardConfig;
  #runtimeServers: Record<string, ServerConfig> = {};
  /** Names of tunnelled servers (not in any configuration). */
  #tunnels = new Set<string>();
  #upstreams = new Map<string, Upstream>();
  readonly #catalogs: CatalogStore | undefined;
  #views: GatewayViews;
  #registry: SessionRegistry;
  #now: () => number;
  #sweepTimer: NodeJS.Timeout | undefined;
  #outbound: OutboundOptions | undefined;
  #destinations: DestinationPolicy | undefined;
  /** Bumped when outbound settings change: remote upstreams built before are restarted on apply. */
  #outboundVersion = 0;
  #upstreamOutbound = new WeakMap<Upstream, number>();
  #sweepIntervalMs: number;
  #tracing: Tracing | undefined;
  #observe: GatewayOptions['observeUpstream'];
  #restartsSeen = new WeakMap<Upstream, number>();
  #createTransport: GatewayOptions['createTransport'];

  constructor(options: GatewayOptions) {
    this.logger = options.logger;
    this.version = options.version;
    this.#config = options.config;
    this.#fileConfig = options.config;
    this.#now = options.now ?? Date.now;
    this.pageSize = options.pageSize ?? 0;
    this.#sweepIntervalMs = options.sweepIntervalMs ?? 10_000;
    this.#tracing = options.tracing;
    this.#observe = options.observeUpstream;
    const onToolList = options.onToolList;
    if (onToolList !== undefined)
      this.recordToolList = (view, sent, full) => onToolList(endpointPath(view), sent, full);
    this.#createTransport = options.createTransport;
    this.#catalogs = options.catalogs;
    this.#registry = new SessionRegistry({ settings: () => this.#config.sessions, now: this.#now });
    this.#views = new GatewayViews({
      separator: options.config.namespaceSeparator,
      gatewayVersion: this.version,
      logger: this.logger,
      ...(options.onNameCollision ? { onNameCollision: options.onNameCollision } : {}),
    });
  }

  /** The configuration in force. */
  get config(): SwitchboardConfig {
    return this.#config;
  }

  /** Configured upstreams by name. */
  get upstreams(): ReadonlyMap<string, Upstream> {
    return this.#upstreams;
  }

  /** Live client sessions by id. */
  get sessions(): ReadonlyMap<string, ClientSession> {
    return this.#registry.sessions;
  }

  now(): number {
    return this.#now();
  }

  /** Sets the outbound identity settings used by upstreams created from now on (call before `start`). */
  setOutbound(outbound: OutboundOptions): void {
    const before = this.#outbound;
    this.#outbound = outbound;
    if (
      before &&
      (JSON.stringify(before.globalAllowlist) !== JSON.stringify(outbound.globalAllowlist) ||
        before.overwriteBase !== outbound.overwriteBase ||
        JSON.stringify(before.reservedHeaders) !== JSON.stringify(outbound.reservedHeaders))
    ) {
      this.#outboundVersion++;
    }
  }

  /**
   * Sets the destination policy of runtime URL servers (call before `start`); servers of the
   * configuration file are not subject to it.
   */
  setDestinationPolicy(policy: DestinationPolicy): void {
    this.#destinations = policy;
  }

  /** The destination policy of runtime URL servers, if set. */
  get destinations(): DestinationPolicy | undefined {
    return this.#destinations;
  }

  /**
   * Creates every upstream of the configuration (synchronously, before the first `await`: the
   * views exist when this returns its promise) and starts them in parallel; a failing one is
   * logged and retried, not fatal. Requests may be served meanwhile: a session sees the
   * upstreams ready so far, and each one that comes up later announces its lists with
   * `list_changed`.
   *
   * @param waitMs - resolve once every upstream has settled (ready or failed) or after this many
   *   ms, whichever comes first. Default: until every upstream has settled.
   */
  async start(waitMs = Number.POSITIVE_INFINITY): Promise<void> {
    for (const [name, cfg] of Object.entries(this.#config.servers))
      this.#upstreams.set(name, this.#createUpstream(name, cfg));
    this.#rebuildViews();
    if (this.#sweepIntervalMs > 0) {
      this.#sweepTimer = setInterval(() => this.sweep(), this.#sweepIntervalMs);
      this.#sweepTimer.unref();
    }
    await settledWithin(Promise.all([...this.#upstreams.values()].map((u) => this.#startUpstream(u))), waitMs);
  }

  /** Stops sessions and upstreams. */
  async stop(): Promise<void> {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    for (const s of [...this.#registry.sessions.values()]) s.close('shutdown');
    await Promise.allSettled([...this.#upstreams.values()].map((u) => u.stop()));
  }

  /** The aggregate view (`/mcp`). */
  get aggregate(): View {
    return this.#views.aggregate;
  }

  /** A virtual server's view (`/mcp/{name}`). */
  virtualView(name: string): View | undefined {
    return this.#views.virtual(name);
  }

  /** One upstream's view (`/servers/{name}/mcp`). */
  serverView(name: string): View | undefined {
    return this.#views.single(name);
  }

  /**
   * Creates a client session on a view. The principal's own limit is checked first, so one
   * principal at its limit never costs a pass over every session.
   *
   * @throws GatewayError `SWB_ERR_SESSION_PRINCIPAL_LIMIT` (429) when the principal holds
   *   `sessions.maxPerPrincipal` live sessions; `SWB_ERR_SESSION_LIMIT` (503) when
   *   `sessions.maxSessions` are open. Both carry `data.retryAfterMs`: the time until the first
   *   of those sessions expires (at least 1 s), for the edge's `Retry-After` (RFC 9110 §10.2.3).
   *   `SWB_ERR_SESSION_DRAINING` (503) for a session with a client stream while {@link draining}.
   */
  createSession(view: View, principal: Principal, transportKind: SessionTransport): ClientSession {
    if (this.draining && transportKind !== 'stateless') {
      throw new GatewayError('SWB_ERR_SESSION_DRAINING', 'this replica is shutting down; open the session again', {
        data: { retryAfterMs: 1000 },
      });
    }
    this.#registry.admit(principal);
    const session = new ClientSession(randomUUID(), view, principal, transportKind, this);
    this.#registry.add(session);
    return session;
  }

  /** A live session, or undefined when unknown, closed, idle past `sessions.idleTimeout` or past `sessions.maxLifetime`. */
  getSession(id: string): ClientSession | undefined {
    const dot = id.indexOf('.');
    if (dot < 0) return this.#registry.get(id);
    // A sealed id as the client presents it: this process's copy, if it has one.
    const session = this.#registry.get(id.slice(0, dot));
    return session?.externalId === id ? session : undefined;
  }

  /**
   * SessionHost: the sealed id of a Streamable HTTP session (see {@link sessionSealer}), or
   * undefined to keep its plain id.
   */
  sealSession(session: ClientSession): string | undefined {
    const sealer = this.sessionSealer;
    if (sealer === undefined || session.transportKind !== 'streamable-http') return undefined;
    return sealer.seal({
      sid: session.id,
      principal: session.principal.id,
      endpoint: endpointOf(session.view),
      protocolVersion: session.protocolVersion ?? '',
      clientCapabilities: session.clientCapabilities ?? {},
      clientInfo: session.clientInfo,
      createdAt: session.createdAt,
    });
  }

  /**
   * The session a client names with `Mcp-Session-Id` on `view`'s endpoint, as `principal`: a
   * live session of this process, or one restored from its sealed id (opened on another
   * replica, or before this process restarted) — bound, like any session, to that principal and
   * endpoint. Undefined for anything else (unknown, ended, expired, another principal's, another
   * endpoint's, an id that does not open): the caller answers 404.
   *
   * @throws GatewayError `SWB_ERR_SESSION_PRINCIPAL_LIMIT` / `SWB_ERR_SESSION_LIMIT` when
   *   restoring would exceed the session limits
   */
  findSession(externalId: string, view: View, principal: Principal): ClientSession | undefined {
    const dot = externalId.indexOf('.');
    const sid = dot < 0 ? externalId : externalId.slice(0, dot);
    const local = this.#registry.get(sid);
    if (local !== undefined) {
      return local.externalId === externalId && local.view === view && local.principal.id === principal.id
        ? local
        : undefined;
    }
    const sealer = this.sessionSealer;
    if (dot < 0 || sealer === undefined || this.#registry.hasEnded(sid)) return undefined;
    const claims = sealer.open(externalId);
    if (claims === undefined || claims.principal !== principal.id || claims.endpoint !== endpointOf(view)) {
      return undefined;
    }
    const { maxLifetime } = this.#config.sessions;
    if (maxLifetime > 0 && this.#now() - claims.createdAt >= maxLifetime) return undefined;
    this.#registry.admit(principal);
    const session = new ClientSession(sid, view, principal, 'streamable-http', this, claims.createdAt);
    session.protocolVersion = claims.protocolVersion;
    session.clientCapabilities = claims.clientCapabilities;
    session.clientInfo = claims.clientInfo;
    session.initialized = true;
    session.adoptSealedId(externalId);
    this.#registry.add(session);
    this.logger.debug({ session: sid, endpoint: claims.endpoint }, 'session restored from its sealed id');
    return session;
  }

  /**
   * Sends a portable session's client response that answers no request of this process to the
   * other replicas (set by the application with Redis); undefined: such responses are dropped.
   */
  onForeignClientResponse: ((sessionId: string, response: JsonRpcResponse) => void) | undefined = undefined;

  /** SessionHost: see {@link onForeignClientResponse}. */
  forwardClientResponse(session: ClientSession, response: JsonRpcResponse): void {
    this.onForeignClientResponse?.(session.id, response);
  }

  /**
   * A client response another replica received for a portable session this process holds:
   * answers the server→client request of this process waiting for it, if any.
   */
  deliverClientResponse(sessionId: string, response: JsonRpcResponse): void {
    this.#registry.sessions.get(sessionId)?.answerForwarded(response);
  }

  /**
   * Sends a portable session's notification that this process holds no stream for to the other
   * replicas (set by the application with Redis); undefined: such notifications are dropped.
   */
  onForeignNotification: ((sessionId: string, notification: JsonRpcNotification) => void) | undefined = undefined;

  /** SessionHost: see {@link onForeignNotification}. */
  forwardNotification(session: ClientSession, notification: JsonRpcNotification): void {
    this.onForeignNotification?.(session.id, notification);
  }

  /**
   * A notification another replica passed on for a portable session: sent on this process's
   * standalone stream of that session, if it holds one.
   */
  deliverNotification(sessionId: string, notification: JsonRpcNotification): void {
    this.#registry.sessions.get(sessionId)?.deliverForwarded(notification);
  }

  /**
   * Ends a session for good — the client's DELETE, the operator — and, for a sealed session,
   * tells the other replicas ({@link onSessionEnded}), which end their copies.
   */
  closeSession(session: ClientSession, reason: string): void {
    session.close(reason);
    if (session.externalId !== session.id) this.onSessionEnded?.(session.id, session.createdAt);
  }

  /**
   * Ends a sealed session another replica reports ended (the client's DELETE, the operator):
   * closes this process's copy if it has one, and never restores it again.
   */
  endSession(id: string, createdAt: number): void {
    this.#registry.markEnded(id, createdAt);
    const session = this.#registry.sessions.get(id);
    if (session !== undefined) session.close('ended on another replica');
    // Children run here for it through calls other replicas passed on (`upstream/ownership.ts`).
    else for (const upstream of this.upstreams.values()) upstream.releaseSession(id, '');
  }

  /** The live sessions of one principal (empty when it holds none). */
  sessionsOf(principalId: string): ReadonlySet<ClientSession> {
    return this.#registry.sessionsOf(principalId);
  }

  /**
   * When a session expires if its client stays silent (gateway clock, ms): the earlier of
   * `lastActivity + sessions.idleTimeout` and `createdAt + sessions.maxLifetime`. A request in
   * flight postpones the idle expiry, not the lifetime's.
   */
  expiresAt(session: ClientSession): number {
    return this.#registry.expiresAt(session);
  }

  /** SessionHost: forget a closed session. */
  /** See {@link SessionHost.recordToolList}; set when {@link GatewayOptions.onToolList} is. */
  readonly recordToolList: ((view: View, sentBytes: number, fullBytes: number) => void) | undefined;

  onSessionClosed(session: ClientSession, reason: string): void {
    if (!this.#registry.remove(session)) return;
    this.logger.debug({ session: session.id, reason }, 'session closed');
  }

  /**
   * Closes expired sessions (idle or past their lifetime, open streams included: their streams
   * end) and reaps idle isolated children. Runs on a timer; tests call it directly.
   */
  sweep(): { sessions: number; children: number } {
    const sessions = this.#registry.expire(this.#now());
    let children = 0;
    for (const u of this.#upstreams.values()) children += u.reapIdle();
    return { sessions, children };
  }

  /**
   * Applies a new configuration: servers added/removed/changed are started/stopped/restarted,
   * sessions on unaffected servers are untouched, views and virtual servers are rebuilt.
   */
  async reload(next: SwitchboardConfig): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
    this.#fileConfig = next;
    return this.#apply(this.#effective());
  }

  /**
   * Replaces the servers added at run time (admin API, tunnels). File-declared servers keep
   * precedence; callers refuse clashing names before calling this.
   *
   * @param waitMs - resolve once the added and changed servers have settled (ready or failed)
   *   or after this many ms, whichever comes first; one still starting then comes up on its own
   *   and announces its lists with `list_changed`. Default: until they have settled.
   */
  async setRuntimeServers(
    servers: Record<string, ServerConfig>,
    waitMs = Number.POSITIVE_INFINITY,
  ): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
    this.#runtimeServers = { ...servers };
    return this.#apply(this.#effective(), waitMs);
  }

  /**
   * Restarts one upstream with its configuration unchanged (the admin API's
   * `POST /api/v1/servers/{name}/restart`): its connections (stdio children) are stopped, client
   * sessions bound to that one server (`/servers/{name}/mcp`) end as when it is reconfigured, and
   * a new upstream is started in its place; sessions of aggregates and virtual servers get
   * `list_changed` once it is up.
   *
   * @param waitMs - resolve once the new upstream has settled (ready or failed) or after this many
   *   ms, whichever comes first. Default: until it has settled.
   * @throws GatewayError `SWB_ERR_HTTP_NOT_FOUND` for an unknown server; `SWB_ERR_HTTP_CONFLICT`
   *   for a tunnelled server (its transport belongs to the tunnel, which must reconnect instead)
   */
  async restartUpstream(name: string, waitMs = Number.POSITIVE_INFINITY): Promise<void> {
    const u = this.#upstreams.get(name);
    const cfg = this.#config.servers[name];
    if (u === undefined) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `server "${name}" not found`);
    if (this.#tunnels.has(name) || cfg === undefined) {
      throw new GatewayError(
        'SWB_ERR_HTTP_CONFLICT',
        `server "${name}" is a tunnel: reconnect the tunnel to restart it`,
      );
    }
    this.#upstreams.delete(name);
    for (const s of [...this.#registry.sessions.values()])
      if (s.view.kind === 'single' && s.view.members[0]?.upstream === u) s.close('server restarted');
    await u.stop();
    // A reload or another restart may have replaced it meanwhile: theirs stands.
    if (this.#upstreams.has(name) || this.#config.servers[name] !== cfg) return;
    const next = this.#createUpstream(name, cfg);
    this.#upstreams.set(name, next);
    this.#rebuildViews();
    const started = this.#startUpstream(next).then(() => {
      notifyAllListChanged(this.#registry.sessions.values());
      this.logger.info({ server: name }, 'upstream restarted');
    });
    await settledWithin(started, waitMs);
  }

  /**
   * Adds a tunnelled server (a reverse tunnel, `tunnel/`): an upstream backed by a transport over
   * the tunnel session, started without waiting (its initialize travels through that session).
   *
   * @throws GatewayError `SWB_ERR_HTTP_CONFLICT` when a server of that name exists, or one whose
   *   namespaced names could coincide with its own ({@link Gateway.namespaceConflict})
   */
  attachTunnel(
    name: string,
    description: string | undefined,
    createTransport: () => MessageTransport,
    remoteOwner?: string,
  ): Upstream {
    if (this.#upstreams.has(name)) {
      throw new GatewayError('SWB_ERR_HTTP_CONFLICT', `a server named "${name}" already exists`);
    }
    const overlap = this.namespaceConflict(name);
    if (overlap !== undefined) {
      throw new GatewayError(
        'SWB_ERR_HTTP_CONFLICT',
        `servers "${name}" and "${overlap}" could expose the same names (namespaceSeparator "${this.#config.namespaceSeparator}")`,
      );
    }
    const config = StdioServer.parse({
      command: 'tunnel',
      ...(description === undefined ? {} : { description }),
      restart: { maxRetries: 1 },
    });
    const u = this.#newUpstream(name, config, createTransport, remoteOwner);
    this.#upstreams.set(name, u);
    this.#tunnels.add(name);
    if (remoteOwner === undefined) this.#localTunnels.add(name);
    this.#rebuildViews();
    void this.#startUpstream(u).then(() => this.#tunnelChanged(name));
    return u;
  }

  /**
   * Told when a tunnel whose connection this replica holds appears, changes its lists or goes
   * away (`name`), so the other replicas can serve it too (`app/forwarding.ts`). Set by the
   * application when replicas share Redis.
   */
  onLocalTunnel: ((name: string, upstream: Upstream | undefined) => void) | undefined = undefined;

  /** Tunnels whose connection this replica holds (not those served from another replica's record). */
  readonly #localTunnels = new Set<string>();

  /** True when `name` is a tunnel whose connection this replica holds. */
  isLocalTunnel(name: string): boolean {
    return this.#localTunnels.has(name);
  }

  #tunnelChanged(name: string): void {
    if (!this.#localTunnels.has(name)) return;
    this.onLocalTunnel?.(name, this.#upstreams.get(name));
  }

  /** Removes a tunnelled server (the tunnel went away); sessions that saw it get list_changed. */
  async detachTunnel(name: string): Promise<void> {
    const u = this.#upstreams.get(name);
    if (!u || !this.#tunnels.delete(name)) return;
    if (this.#localTunnels.delete(name)) this.onLocalTunnel?.(name, undefined);
    this.#upstreams.delete(name);
    for (const s of [...this.#registry.sessions.values()])
      if (s.view.kind === 'single' && s.view.members[0]?.upstream === u) s.close('tunnel closed');
    this.#rebuildViews();
    await u.stop();
    notifyAllListChanged(this.#registry.sessions.values());
  }

  /**
   * Another server whose namespaced names can coincide with those of a server called `name` in the
   * aggregate (`a` and `a__b` with separator `__`), or `undefined`. The admin API and tunnels
   * refuse such a name as the configuration loader does.
   */
  namespaceConflict(name: string): string | undefined {
    const sep = this.#config.namespaceSeparator;
    for (const other of this.#upstreams.keys()) {
      if (other !== name && overlappingNamespaces([name, other], sep).length > 0) return other;
    }
    return undefined;
  }

  /** True when `name` is a tunnelled server. */
  isTunnel(name: string): boolean {
    return this.#tunnels.has(name);
  }

  /** True when `name` is a server added through the admin API (and not shadowed by the file). */
  #isRuntimeServer(name: string): boolean {
    return Object.hasOwn(this.#runtimeServers, name) && !this.isFileServer(name);
  }

  /** True when `name` is declared in the configuration file (read-only through the admin API). */
  isFileServer(name: string): boolean {
    return Object.hasOwn(this.#fileConfig.servers, name);
  }

  /** Servers added at run time. */
  get runtimeServers(): Readonly<Record<string, ServerConfig>> {
    return this.#runtimeServers;
  }

  #effective(): SwitchboardConfig {
    if (Object.keys(this.#runtimeServers).length === 0) return this.#fileConfig;
    return { ...this.#fileConfig, servers: { ...this.#runtimeServers, ...this.#fileConfig.servers } };
  }

  async #apply(
    next: SwitchboardConfig,
    waitMs = Number.POSITIVE_INFINITY,
  ): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
    const prev = this.#config.servers;
    const added: string[] = [];
    const removed: string[] = [];
    const changed: string[] = [];
    for (const name of Object.keys(prev)) if (!(name in next.servers)) removed.push(name);
    for (const [name, cfg] of Object.entries(next.servers)) {
      if (this.#tunnels.has(name)) {
        this.logger.warn(
          { server: name },
          'a configured server has the name of a live tunnel; it starts when the tunnel goes away',
        );
        continue;
      }
      if (!(name in prev)) added.push(name);
      else if (JSON.stringify(prev[name]) !== JSON.stringify(cfg)) changed.push(name);
      else if (!('command' in cfg)) {
        const u = this.#upstreams.get(name);
        if (u && this.#upstreamOutbound.get(u) !== this.#outboundVersion) changed.push(name);
      }
    }
    this.#config = next;
    const stopping: Array<Promise<void>> = [];
    for (const name of [...removed, ...changed]) {
      const u = this.#upstreams.get(name);
      if (!u) continue;
      this.#upstreams.delete(name);
      // Sessions bound to this one server end: their next request gets 404 and re-initialises.
      for (const s of [...this.#registry.sessions.values()])
        if (s.view.kind === 'single' && s.view.members[0]?.upstream === u) s.close('server removed');
      stopping.push(u.stop());
    }
    await Promise.allSettled(stopping);
    const starting: Upstream[] = [];
    for (const name of [...added, ...changed]) {
      const cfg = next.servers[name];
      if (!cfg) continue;
      const u = this.#createUpstream(name, cfg);
      this.#upstreams.set(name, u);
      starting.push(u);
    }
    this.#rebuildViews();
    const started = Promise.all(starting.map((u) => this.#startUpstream(u))).then(() => {
      if (added.length + removed.length + changed.length > 0) notifyAllListChanged(this.#registry.sessions.values());
      this.logger.info({ added, removed, changed }, 'configuration reloaded');
    });
    await settledWithin(started, waitMs);
    return { added, removed, changed };
  }

  #createUpstream(name: string, cfg: ServerConfig): Upstream {
    const u = this.#newUpstream(name, cfg);
    this.#upstreamOutbound.set(u, this.#outboundVersion);
    return u;
  }

  #newUpstream(name: string, cfg: ServerConfig, tunnel?: () => MessageTransport, remoteOwner?: string): Upstream {
    const custom = this.#createTransport;
    const createTransport =
      tunnel ?? (custom === undefined ? undefined : (logger: Logger) => custom(name, cfg, logger));
    const logger = this.logger.child({ server: name });
    const destinations = this.#destinations && this.#isRuntimeServer(name) ? this.#destinations : undefined;
    return new Upstream({
      ...(createTransport ? { createTransport } : {}),
      name,
      config: cfg,
      logger,
      gatewayVersion: this.version,
      attributionWaitMs: this.#config.sessions.attributionWait,
      ...createUpstreamInterceptors({
        name,
        config: cfg,
        logger,
        outbound: this.#outbound,
        tracing: this.#tracing?.enabled ? this.#tracing : undefined,
        destinations,
      }),
      ...(this.#observe
        ? { observe: (_method: string, ms: number, error: boolean) => this.#observe?.call(name, ms, error) }
        : {}),
      forbiddenEnv: this.#forbiddenEnv(name),
      ...(destinations ? { destinations } : {}),
      now: this.#now,
      ownership: () => this.slotOwnership,
      ...(remoteOwner === undefined ? {} : { remoteOwner }),
      ...(this.#catalogs === undefined ? {} : { catalogStore: this.#catalogs }),
      onEvent: (e) => this.#onUpstreamEvent(e),
    });
  }

  /**
   * The variables server `name`'s child may not inherit: those the configuration file
   * interpolated outside that server's own entry (all of them for a runtime server).
   */
  #forbiddenEnv(name: string): string[] {
    const read = this.#fileConfig.interpolated;
    if (read === undefined) return [];
    const out = new Set(read.other);
    const own = this.isFileServer(name) ? name : undefined;
    for (const [server, names] of Object.entries(read.servers)) if (server !== own) for (const n of names) out.add(n);
    return [...out];
  }

  async #startUpstream(u: Upstream): Promise<void> {
    try {
      await u.start();
      this.logger.info(
        {
          server: u.name,
          tools: u.catalog.tools.length,
          prompts: u.catalog.prompts.length,
          resources: u.catalog.resources.length,
        },
        u.state === 'idle' ? 'upstream idle (start: lazy): serving its stored catalog' : 'upstream ready',
      );
    } catch (err) {
      this.logger.error({ server: u.name, err }, 'upstream failed to start; will keep retrying where possible');
    }
  }

  #rebuildViews(): void {
    for (const view of this.#views.rebuild(this.#upstreams, this.#config))
      for (const s of [...this.#registry.sessions.values()]) if (s.view === view) s.close('virtual server removed');
  }

  #onUpstreamEvent(e: UpstreamEvent): void {
    switch (e.type) {
      case 'state': {
        this.logger.info({ server: e.upstream.name, state: e.state, error: e.error }, 'upstream state');
        this.#observe?.state(e.upstream.name, e.state);
        const seen = this.#restartsSeen.get(e.upstream) ?? 0;
        if (e.upstream.restarts > seen) {
          this.#restartsSeen.set(e.upstream, e.upstream.restarts);
          this.#observe?.restart(e.upstream.name);
        }
        return;
      }
      case 'catalog': {
        // Compile the views now, so a name collision is reported when it appears.
        for (const view of this.#views.viewsOf(e.upstream)) view.prepare();
        if (e.changed.includes('tools')) this.onToolCatalog?.(e.upstream.name, e.upstream.catalog.tools);
        notifyCatalogChanged(this.#registry.sessions.values(), e.upstream, e.changed);
        if (this.#upstreams.get(e.upstream.name) === e.upstream) this.#tunnelChanged(e.upstream.name);
        return;
      }
      case 'notification':
        fanOut(this.#registry.sessions, e.upstream, e.notification, e.audience, this.onForeignNotification);
        return;
    }
  }
}

/** Waits for `work`, or `waitMs` at most (infinite: no bound); never rejects. */
export async function settledWithin(work: Promise<unknown>, waitMs: number): Promise<void> {
  const done = work.then(
    () => undefined,
    () => undefined,
  );
  if (!Number.isFinite(waitMs)) return done;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([done, new Promise<void>((resolve) => (timer = setTimeout(resolve, Math.max(0, waitMs))))]);
  clearTimeout(timer);
}

/** The endpoint path of a view: `/mcp`, `/mcp/{virtual}` or `/servers/{name}/mcp`. */
export function endpointOf(view: View): string {
  switch (view.kind) {
    case 'aggregate':
      return '/mcp';
    case 'virtual':
      return `/mcp/${view.name}`;
    default:
      return `/servers/${view.name}/mcp`;
  }
}

/** The MCP path a view is served at. */
function endpointPath(view: View): string {
  if (view.kind === 'aggregate') return '/mcp';
  return view.kind === 'virtual' ? `/mcp/${view.name}` : `/servers/${view.name}/mcp`;
}
