/**
 * One configured upstream server, as the gateway sees it: a facade over its connections by
 * isolation (`pool.ts`), their supervision (`supervisor.ts`), the cached InitializeResult and
 * catalog (`catalog.ts`), resource subscriptions, and the call path: the interceptors the
 * gateway built for it (`dispatch.ts`, `interceptors/`) composed once over the connection step.
 *
 * The upstream's protocol era (`protocol` setting; `era-probe.ts`) is learnt by its first
 * connection. Towards a modern upstream (MCP 2026-07-28) the methods that era removed are not
 * sent: `logging/setLevel` and `ping` succeed locally; resource subscriptions and list changes
 * come through `subscriptions/listen` (`upstream-listen.ts`); health probes use
 * `server/discover`; the catalog is refreshed when its `ttlMs` expires while no listen stream
 * announces its changes; and an `input_required` result reaches modern clients only.
 *
 * A `start: lazy` stdio upstream is not started with the gateway: its `initialize` result and
 * lists come from the catalog stored when it last ran (`catalogStore`), its state is `idle`, the
 * first request that needs the child starts it, and {@link Upstream.reapIdle} stops it again
 * after `idleStop` without use (a child that exits is not restarted: it is `idle` again). Never seen before (nothing stored, or stored under another
 * configuration), it is started once at start to learn its catalog, which is stored, then stopped.
 *
 * Size: over 500 lines: the call path, subscriptions and calls passed to another replica
 * (`ownership.ts`) share one upstream's pool and catalog; the parts named above are modules of
 * their own.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { DEFAULT_IDLE_STOP, isStdioServer, type ServerConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { MCP_MISSING_CLIENT_CAPABILITY, REMOVED_IN_MODERN } from '../protocol/era.js';
import { errorResponse } from '../protocol/jsonrpc.js';
import { mirroredParamHeaders } from '../protocol/param-headers.js';
import type { UpstreamEra } from './era-probe.js';
import type { Logger } from '../observability/logger.js';
import type { JsonObject, JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import { CatalogCache, listChangedKinds } from './catalog.js';
import type { Caller, UpstreamConnection } from './connection.js';
import { composeDispatch, errorResponseOf, type Dispatch } from './dispatch.js';
import { createRetryInterceptor } from './interceptors/retry.js';
import { fulfilInput, INPUT_REQUIRED_METHODS, type InputCall } from './input-fulfil.js';
import { ConnectionPool, PROBE_CONTEXT, SHARED_KEY, type Isolation, type Slot } from './pool.js';
import { Supervisor } from './supervisor.js';
import type { Catalog, SlotContext, UpstreamCall, UpstreamOptions, UpstreamState } from './types.js';
import { PendingCall, SettledCall, type CallHost } from './pending-call.js';
import { UpstreamListens } from './upstream-listen.js';
import { CatalogRefresh } from './catalog-refresh.js';
import type { StoredCatalog } from '../store/types.js';

export type {
  Audience,
  Catalog,
  SlotContext,
  UpstreamCall,
  UpstreamEvent,
  UpstreamOptions,
  UpstreamState,
} from './types.js';

/**
 * A configured upstream server. `start()` connects (for `shared`/remote) or probes (for
 * `session`/`user`: one child is started to learn capabilities and the catalog, then stopped).
 */
export class Upstream {
  readonly name: string;
  readonly config: ServerConfig;
  readonly isolation: Isolation;
  #logger: Logger;
  #options: UpstreamOptions;
  #now: () => number;
  #initializeResult: JsonObject | undefined;
  readonly #pool: ConnectionPool;
  readonly #catalog: CatalogCache;
  readonly #supervisor: Supervisor;
  /** The composed call path: the interceptors over {@link #send}. */
  readonly #dispatch: Dispatch;
  /** Whether {@link #settle} reports health (remote upstreams). */
  readonly #tracksHealth: boolean;
  /** The upstream speaks the modern era (learnt by its connections). */
  #modern = false;
  /** The `ttlMs` refresh of a modern upstream's catalog. */
  readonly #refresh: CatalogRefresh;
  /** The `subscriptions/listen` requests of a modern upstream's connections. */
  readonly #listens: UpstreamListens;
  #stopped = false;
  /** Calls of a session's or principal's child may belong to another replica (`./ownership.ts`). */
  readonly #ownsSlots: boolean;
  /** When the unreachable owner records were last logged (ms, {@link #now}). */
  #ownersWarnedAt = Number.NEGATIVE_INFINITY;
  /** `start: lazy`: the child runs only while used (a `shared` stdio upstream). */
  readonly #lazy: boolean;
  /** A lazy child unused this long is stopped (ms). */
  readonly #idleStopMs: number;
  /** When a lazy upstream was last used: a call started or answered (ms, {@link #now}). */
  #lastUsed = 0;
  /** A stored catalog is being restored: not written back. */
  #restoring = false;
  readonly #host: CallHost = {
    bindingOf: (ctx) => this.#pool.slotFor(ctx, false),
    forget: (conn) => this.#pool.forget(conn),
    settle: (call, response) => this.#settle(call, response),
  };

  constructor(options: UpstreamOptions) {
    this.name = options.name;
    this.config = options.config;
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.isolation = isStdioServer(options.config) ? options.config.isolation : 'principal';
    this.#ownsSlots = options.ownership !== undefined && (this.isolation === 'session' || this.isolation === 'user');
    const cfg = options.config;
    this.#lazy = isStdioServer(cfg) && cfg.start === 'lazy' && this.isolation === 'shared';
    this.#idleStopMs = isStdioServer(cfg) ? (cfg.idleStop ?? DEFAULT_IDLE_STOP) : DEFAULT_IDLE_STOP;
    this.#catalog = new CatalogCache({
      logger: this.#logger,
      onChange: (changed) => {
        if (this.#lazy && !this.#restoring && this.#catalog.loaded) void this.#store();
        options.onEvent({ type: 'catalog', upstream: this, changed });
      },
      onLoaded: () => {
        if (this.#modern) this.#refresh.schedule();
      },
    });
    this.#pool = new ConnectionPool({
      name: options.name,
      config: options.config,
      gatewayVersion: options.gatewayVersion,
      attributionWaitMs: options.attributionWaitMs,
      ...(options.forbiddenEnv === undefined ? {} : { forbiddenEnv: options.forbiddenEnv }),
      ...(options.destinations === undefined ? {} : { destinations: options.destinations }),
      ...(options.createTransport === undefined ? {} : { createTransport: options.createTransport }),
      ...(options.connectHeaders === undefined ? {} : { connectHeaders: options.connectHeaders }),
      logger: this.#logger,
      now: this.#now,
      isolation: this.isolation,
      onConnected: (slot, conn) => {
        this.#initializeResult ??= conn.initializeResult;
        this.#modern = conn.era === 'modern';
        if (this.#modern) this.#listens.sync(slot);
        if (this.#lazy && this.#catalog.loaded) this.#woke(conn);
      },
      onNotification: (slot, conn, n) => this.#onNotification(slot, conn, n),
      onClose: (slot, conn, info) => this.#supervisor.onClose(slot, conn, info, this.isolation),
      onSlotClosed: (slot) => {
        if (this.#ownsSlots) options.ownership?.()?.release(this.name, slot.key);
      },
    });
    this.#supervisor = new Supervisor({
      config: options.config,
      logger: this.#logger,
      now: this.#now,
      pool: this.#pool,
      catalog: this.#catalog,
      // Tunnelled servers (a transport factory) are watched by the tunnel hub instead.
      watchHealth: options.createTransport === undefined,
      onDemand: this.#lazy,
      // A ping; a modern upstream is sent server/discover instead (#sendOn): that era has no ping.
      probe: () => this.#dispatch(new PendingCall(this.#host, PROBE_CONTEXT, 'ping', undefined, undefined, true)),
      retryStart: () => this.#open(),
      onState: (state, error) =>
        options.onEvent(
          error === undefined
            ? { type: 'state', upstream: this, state }
            : { type: 'state', upstream: this, state, error },
        ),
    });
    this.#tracksHealth = this.#supervisor.tracksHealth;
    this.#refresh = new CatalogRefresh({
      catalog: this.#catalog,
      logger: this.#logger,
      connection: () => this.#catalogConnection(),
      covered: () => this.#listens.listsCovered,
    });
    this.#listens = new UpstreamListens({
      name: options.name,
      logger: this.#logger,
      connectionOf: (slot) => slot.connection,
      holds: (slot) => !this.#stopped && this.#pool.slots.get(slot.key) === slot,
      // Each stdio child of session/user isolation is a server of its own; remote connections
      // per principal reach one server, followed through the start-up principal's connection.
      watchesLists: (slot) => this.isolation !== 'principal' || slot.key === PROBE_CONTEXT.principalId,
      onNotification: (slot, conn, n) => this.#onNotification(slot, conn, n),
      onListsCovered: (covered, conn) => this.#refresh.listsCovered(covered, conn),
      ...(options.listenReconnect === undefined ? {} : { reconnect: options.listenReconnect }),
    });
    this.#dispatch = composeDispatch(options.interceptors ?? [createRetryInterceptor(this.#logger)], this.#send);
  }

  /** Current lifecycle state. */
  get state(): UpstreamState {
    return this.#supervisor.state;
  }

  /** Last start/crash error message, if any. */
  get lastError(): string | undefined {
    return this.#supervisor.lastError;
  }

  /** Restarts since start (crash recoveries of shared children). */
  get restarts(): number {
    return this.#supervisor.restarts;
  }

  /** The cached InitializeResult of the upstream. */
  get initializeResult(): JsonObject | undefined {
    return this.#initializeResult;
  }

  /**
   * The protocol era the upstream speaks (`modern`: MCP 2026-07-28, stateless; `legacy`: a 2025
   * session opened with `initialize`), once a connection opened; undefined before.
   */
  get era(): UpstreamEra | undefined {
    return this.#pool.era;
  }

  /** Server capabilities (from the cached InitializeResult). */
  get capabilities(): JsonObject {
    return (this.#initializeResult?.capabilities as JsonObject | undefined) ?? {};
  }

  /** The cached catalog. */
  get catalog(): Readonly<Catalog> {
    return this.#catalog.catalog;
  }

  /** Increments whenever the catalog changes. */
  get catalogVersion(): number {
    return this.#catalog.version;
  }

  /** Number of live connections (children for stdio). */
  get connectionCount(): number {
    return this.#pool.connectionCount;
  }

  /**
   * Connects and loads the catalog. Resolves when ready; on failure the state becomes `failed`
   * and the error is rethrown; the supervisor retries with backoff (stdio: a shared child is
   * restarted, the probe child of `session`/`user` isolation started again; remote: probed).
   */
  async start(): Promise<void> {
    this.#supervisor.setState('starting');
    if (this.#lazy) return this.#startLazy();
    return this.#open();
  }

  /**
   * A credential for the start-up connection may exist now (a user connected to an
   * `oauth2-user` server): a failed start is tried again at once rather than at the next probe.
   */
  credentialAvailable(): void {
    if (this.#stopped || this.#lazy || this.state !== 'failed') return;
    this.#open().catch((err: unknown) => this.#logger.debug({ err }, 'upstream start with the new credential failed'));
  }

  /** Whether the upstream is `start: lazy` (its child runs only while used). */
  get lazy(): boolean {
    return this.#lazy;
  }

  /**
   * {@link start} of a lazy upstream: the stored catalog, state `idle`; without one, the child
   * is started to learn the catalog, which is stored, and stopped again.
   */
  async #startLazy(): Promise<void> {
    const stored = await this.#readStored();
    if (stored !== undefined) {
      this.#initializeResult = stored.initializeResult;
      this.#restoring = true;
      try {
        this.#catalog.restore({
          tools: stored.tools,
          prompts: stored.prompts,
          resources: stored.resources,
          resourceTemplates: stored.resourceTemplates,
        });
      } finally {
        this.#restoring = false;
      }
      this.#supervisor.setState('idle');
      return;
    }
    await this.#open();
    await this.#store();
    const slot = this.#pool.slots.get(SHARED_KEY);
    // A call that arrived meanwhile keeps the child; it is then stopped after `idleStop`.
    if (
      slot !== undefined &&
      !this.#stopped &&
      (slot.connection?.inFlight ?? 0) === 0 &&
      slot.subscriptions.size === 0
    ) {
      this.#pool.closeSlot(slot, 'catalog learnt; start: lazy');
      this.#supervisor.setState('idle');
    } else {
      this.#lastUsed = this.#now();
    }
  }

  /**
   * A digest of what makes the child the same server: command, arguments, environment and
   * working directory (hex SHA-256).
   */
  #fingerprint(): string {
    const cfg = this.config;
    const parts = isStdioServer(cfg) ? [cfg.command, cfg.args, cfg.env, cfg.cwd ?? null] : [cfg.url];
    return createHash('sha256').update(JSON.stringify(parts)).digest('hex');
  }

  /** The stored catalog of this configuration, or undefined (none, another configuration's, or the store failed: logged). */
  async #readStored(): Promise<StoredCatalog | undefined> {
    const store = this.#options.catalogStore;
    if (store === undefined) return undefined;
    try {
      const stored = await store.get(this.name);
      if (stored === undefined) {
        this.#logger.info('no stored catalog; starting the lazy server once to learn it');
        return undefined;
      }
      if (stored.fingerprint !== this.#fingerprint()) {
        this.#logger.info('the stored catalog is of another configuration; starting the lazy server once to learn it');
        return undefined;
      }
      return stored;
    } catch (err) {
      this.#logger.warn({ err }, 'could not read the stored catalog; starting the lazy server to learn it');
      return undefined;
    }
  }

  /** Writes the current `initialize` result and lists to the catalog store; a failure is logged. */
  async #store(): Promise<void> {
    const store = this.#options.catalogStore;
    if (store === undefined || this.#initializeResult === undefined) return;
    const catalog = this.#catalog.catalog;
    try {
      await store.put({
        server: this.name,
        fingerprint: this.#fingerprint(),
        initializeResult: this.#initializeResult,
        tools: catalog.tools,
        prompts: catalog.prompts,
        resources: catalog.resources,
        resourceTemplates: catalog.resourceTemplates,
        updatedAt: this.#now(),
      });
    } catch (err) {
      this.#logger.warn({ err }, 'could not store the catalog of the lazy server');
    }
  }

  /**
   * A lazy upstream's child started on demand: its `initialize` result replaces the stored one,
   * its lists are loaded again (a change is stored and announced), the state becomes `ready`.
   */
  #woke(conn: UpstreamConnection): void {
    this.#lastUsed = this.#now();
    const before = JSON.stringify(this.#initializeResult);
    this.#initializeResult = conn.initializeResult;
    this.#supervisor.setState('ready');
    const initializeChanged = JSON.stringify(this.#initializeResult) !== before;
    const version = this.#catalog.version;
    this.#catalog.load(conn, undefined).then(
      // A changed list was stored by the catalog's change; a changed initialize result alone is stored here.
      () => (initializeChanged && this.#catalog.version === version ? this.#store() : undefined),
      (err: unknown) => this.#logger.warn({ err }, 'catalog refresh failed'),
    );
  }

  /** The work of {@link start}, also run again by the supervisor after a failed start of `session`/`user` isolation. */
  async #open(): Promise<void> {
    try {
      const slot = this.#pool.slotFor(PROBE_CONTEXT, true);
      const conn = await this.#pool.connect(slot);
      await this.#catalog.load(conn, undefined);
      this.#catalog.loaded = true;
      if (this.isolation === 'session' || this.isolation === 'user') {
        // The probe child only taught us capabilities and the catalog.
        this.#pool.slots.delete(slot.key);
        await conn.close();
      }
      this.#supervisor.setState('ready');
    } catch (err) {
      this.#supervisor.startFailed(err, this.isolation);
      throw err;
    }
  }

  /** Stops every connection; no restarts afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#refresh.stop();
    this.#listens.stop();
    const closing = this.#pool.stop();
    this.#supervisor.stop();
    await closing;
    this.#supervisor.setState('stopped');
  }

  /**
   * Sends a request for a client call through the upstream's interceptors. Retries once on a
   * fresh upstream session when the upstream answered 404 (session lost), MCP transports
   * §Session Management.
   */
  call(ctx: SlotContext, method: string, params: JsonObject | undefined, caller: Caller | undefined): UpstreamCall {
    if (this.#modern && REMOVED_IN_MODERN.has(method)) return this.#removedMethod(method);
    if (this.#lazy) {
      // Not worth starting a child for: the gateway filters log messages by each session's level
      // itself, and a server that is not running has nothing to answer a ping with.
      if ((method === 'logging/setLevel' || method === 'ping') && this.#pool.connectionCount === 0)
        return new SettledCall({ jsonrpc: '2.0', id: 0, result: {} });
      this.#lastUsed = this.#now();
    }
    // One object per call, methods on the prototype: no per-call closures on the hot path.
    const call = new PendingCall(this.#host, ctx, method, params, caller, false);
    if (this.#options.observe !== undefined) call.started = performance.now();
    call.response = this.#dispatch(call);
    if (this.#modern && caller !== undefined && caller.modern !== true && INPUT_REQUIRED_METHODS.has(method)) {
      // A 2025-era client: the upstream's requests for input are asked of it as server→client requests.
      call.fulfils = true;
      call.response = call.response.then((r) =>
        fulfilInput(r, call as InputCall, (p) => this.#round(call, p), this.#refuseInput(method)),
      );
    }
    return call;
  }

  /** One retry of an `input_required` round, as a call of its own (interceptors, metrics). */
  #round(outer: PendingCall, params: JsonObject): Promise<JsonRpcResponse> {
    const next = new PendingCall(this.#host, outer.ctx, outer.method, params, outer.caller, false);
    next.fulfils = true;
    outer.round = next;
    next.response = this.#dispatch(next);
    return next.response.finally(() => {
      if (outer.round === next) outer.round = undefined;
    });
  }

  #refuseInput(method: string): (response: JsonRpcResponse, detail: string) => JsonRpcResponse {
    return (response, detail) => this.#inputRequired(response, method, detail);
  }

  /**
   * Every answer of a call leaves through here: the metrics observer sees it once (in the same
   * step, not through one more promise per call).
   */
  #settle(call: PendingCall, response: JsonRpcResponse): JsonRpcResponse {
    if (this.#modern && call.caller?.modern !== true && !call.fulfils) {
      if ('result' in response) {
        if (response.result.resultType === 'input_required') response = this.#inputRequired(response, call.method, '');
      } else if (response.error.code === MCP_MISSING_CLIENT_CAPABILITY) {
        response = this.#inputRequired(response, call.method, ` (${response.error.message})`);
      }
    }
    if (call.started >= 0) {
      this.#options.observe?.(call.method, performance.now() - call.started, 'error' in response);
      call.started = -1;
    }
    if (this.#tracksHealth) this.#supervisor.record(response);
    if (this.#lazy) this.#lastUsed = this.#now();
    return response;
  }

  /**
   * The connection step, last of the call path: the slot's connection (a live one without an
   * await), then the request on it. Returns the connection's own promise.
   */
  readonly #send: Dispatch = (request) => {
    const call = request as PendingCall;
    if (this.#options.remoteOwner !== undefined) return this.#forward(this.#options.remoteOwner, call);
    // Hot path: a live connection needs no await (a retry always goes through acquire).
    const conn = call.attempt === 0 ? this.#pool.liveFor(call.ctx) : undefined;
    return conn === undefined ? this.#acquireAndSend(call) : this.#sendOn(conn, call);
  };

  async #acquireAndSend(call: PendingCall): Promise<JsonRpcResponse> {
    if (this.#ownsSlots) {
      const owner = await this.#remoteOwner(call.ctx);
      if (owner !== undefined) return this.#forward(owner, call);
    }
    let conn: UpstreamConnection;
    try {
      conn = await this.#pool.acquire(call.ctx);
    } catch (err) {
      // A lazy server that cannot be started on demand is not ready: `/readyz` says so, with the
      // error, until a start succeeds (`#woke`).
      if (this.#lazy) this.#supervisor.onDemandFailed(err);
      return errorResponseOf(err);
    }
    return this.#sendOn(conn, call);
  }

  /**
   * The replica owning the caller's child, when it is another one and this replica holds no live
   * child for the caller; undefined: serve here. A shared store that cannot be reached is logged
   * and the call served here (availability first).
   */
  async #remoteOwner(ctx: SlotContext): Promise<string | undefined> {
    const owners = this.#options.ownership?.();
    if (owners === undefined || this.#pool.liveFor(ctx) !== undefined) return undefined;
    const key = this.isolation === 'session' ? ctx.sessionId : ctx.principalId;
    try {
      return await owners.ownerOf(this.name, key);
    } catch (err) {
      // Once per 10 s at most: while Redis is down every such call lands here.
      const now = this.#now();
      if (now - this.#ownersWarnedAt >= 10_000) {
        this.#ownersWarnedAt = now;
        this.#logger.warn({ err, slot: key }, 'could not reach the owners of isolated children; serving calls here');
      }
      return undefined;
    }
  }

  /** Passes the call to the replica owning the caller's child. */
  #forward(owner: string, call: PendingCall): Promise<JsonRpcResponse> {
    if (call.cancelled)
      return Promise.resolve(errorResponseOf(new GatewayError('SWB_ERR_CANCELLED', 'Request cancelled')));
    const forwarded = this.#passOn(owner, call.ctx, call.method, call.params, call.caller);
    call.forwarded = forwarded;
    return forwarded.response;
  }

  /** Sends a request to replica `owner` (`./ownership.ts`); settled with an error without a shared channel. */
  #passOn(
    owner: string,
    ctx: SlotContext,
    method: string,
    params: JsonObject | undefined,
    caller: Caller | undefined,
  ): UpstreamCall {
    const owners = this.#options.ownership?.();
    if (owners !== undefined) return owners.forward(owner, this.name, ctx, method, params, caller);
    const err = new GatewayError(
      'SWB_ERR_UPSTREAM_UNAVAILABLE',
      `server "${this.name}" runs on another replica, which cannot be reached`,
    );
    return new SettledCall(errorResponseOf(err));
  }

  /**
   * Takes a call another replica passed on for a child this replica owns: a plain call, or a
   * `resources/subscribe` / `resources/unsubscribe` (recorded here, where the child's updates
   * arrive).
   */
  serveForwarded(ctx: SlotContext, method: string, params: JsonObject | undefined, caller: Caller): UpstreamCall {
    const uri = params?.uri;
    if ((method === 'resources/subscribe' || method === 'resources/unsubscribe') && typeof uri === 'string') {
      const response =
        method === 'resources/subscribe' ? this.subscribe(ctx, uri, caller) : this.unsubscribe(ctx, uri, caller);
      return { response, cancel: () => undefined };
    }
    return this.call(ctx, method, params, caller);
  }

  /**
   * A session served here only through calls passed on from other replicas has no call in
   * flight: its child stays (another call may come) but counts as unattached, so it is reaped
   * after `idleTimeout` without use.
   */
  detachSession(sessionId: string): void {
    for (const slot of this.#pool.slots.values()) {
      if (slot.sessions.delete(sessionId)) slot.lastUsed = this.#now();
    }
  }

  #sendOn(conn: UpstreamConnection, call: PendingCall): Promise<JsonRpcResponse> {
    if (call.cancelled)
      return Promise.resolve(errorResponseOf(new GatewayError('SWB_ERR_CANCELLED', 'Request cancelled')));
    const ctx = call.ctx;
    let headers: Readonly<Record<string, string>> | undefined = call.headers;
    // The era is known only once the connection opened (a probe may be what opens it).
    const method = call.probe && call.method === 'ping' && conn.era === 'modern' ? 'server/discover' : call.method;
    if (method === 'tools/call' && conn.era === 'modern') {
      // Over HTTP, the arguments the upstream's schema marks are mirrored into headers.
      const mirrored = mirroredParamHeaders(this.catalog.tools, call.params);
      if (mirrored !== undefined) headers = headers === undefined ? mirrored : { ...headers, ...mirrored };
    }
    const inflight = conn.request(
      method,
      call.params,
      headers === undefined
        ? { caller: call.caller, reqId: ctx.reqId }
        : { caller: call.caller, headers, reqId: ctx.reqId },
    );
    call.connection = conn;
    call.upstreamId = inflight.upstreamId;
    return inflight.response;
  }

  /**
   * Returns the connection for a caller, starting it when needed.
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_PROCESS_LIMIT` when `maxProcesses` children are busy,
   *   `SWB_ERR_UPSTREAM_UNAVAILABLE` when it cannot start
   */
  acquire(ctx: SlotContext): Promise<UpstreamConnection> {
    return this.#pool.acquire(ctx);
  }

  /** Tells the upstream a client session ended: session-isolated children become idle, subscriptions drop. */
  releaseSession(sessionId: string, principalId: string): void {
    for (const slot of this.#pool.slots.values()) {
      if (slot.sessions.delete(sessionId)) slot.lastUsed = this.#now();
      // A shared or per-principal slot does not list its sessions, but holds their subscriptions.
      for (const [uri, subs] of slot.subscriptions) {
        if (subs.delete(sessionId) && subs.size === 0) {
          slot.subscriptions.delete(uri);
          if (this.#modern) this.#listens.sync(slot);
          else if (slot.connection) void slot.connection.request('resources/unsubscribe', { uri }).response;
        }
      }
    }
    if (this.isolation === 'session') {
      const slot = this.#pool.slots.get(sessionId);
      if (slot) this.#pool.closeSlot(slot, 'session closed');
    }
    void principalId;
  }

  /**
   * Subscribes a client session to a resource URI (refcounted per connection): the first session
   * sends `resources/subscribe`; towards a modern upstream the URI joins the filter of the
   * connection's `subscriptions/listen` request, and the answer waits for its acknowledgement.
   */
  async subscribe(ctx: SlotContext, uri: string, caller: Caller | undefined): Promise<JsonRpcResponse> {
    const owner = this.#options.remoteOwner ?? (this.#ownsSlots ? await this.#remoteOwner(ctx) : undefined);
    if (owner !== undefined) return this.#forwardSubscription(owner, ctx, 'resources/subscribe', uri, caller);
    if (this.#modern) return this.#subscribeModern(ctx, uri);
    const slot = this.#pool.slotFor(ctx, true);
    let subs = slot.subscriptions.get(uri);
    if (!subs) {
      const response = await this.call(ctx, 'resources/subscribe', { uri }, caller).response;
      if ('error' in response) return response;
      subs = new Set();
      slot.subscriptions.set(uri, subs);
    }
    subs.add(ctx.sessionId);
    return { jsonrpc: '2.0', id: 0, result: {} };
  }

  /**
   * Removes a client session's subscription; when it was the last, unsubscribes upstream (a
   * modern upstream's listen request is opened again without the URI).
   */
  async unsubscribe(ctx: SlotContext, uri: string, caller: Caller | undefined): Promise<JsonRpcResponse> {
    const owner = this.#options.remoteOwner ?? (this.#ownsSlots ? await this.#remoteOwner(ctx) : undefined);
    if (owner !== undefined) return this.#forwardSubscription(owner, ctx, 'resources/unsubscribe', uri, caller);
    const slot = this.#pool.slotFor(ctx, false);
    const subs = slot?.subscriptions.get(uri);
    if (slot && subs?.delete(ctx.sessionId) && subs.size === 0) {
      slot.subscriptions.delete(uri);
      if (this.#modern) this.#listens.sync(slot);
      else return this.call(ctx, 'resources/unsubscribe', { uri }, caller).response;
    }
    return { jsonrpc: '2.0', id: 0, result: {} };
  }

  /** A subscription change for a child another replica owns: recorded there, where its updates arrive. */
  #forwardSubscription(
    owner: string,
    ctx: SlotContext,
    method: 'resources/subscribe' | 'resources/unsubscribe',
    uri: string,
    caller: Caller | undefined,
  ): Promise<JsonRpcResponse> {
    return this.#passOn(owner, ctx, method, { uri }, caller).response;
  }

  /** {@link subscribe} towards a modern upstream: through its connection's listen request. */
  async #subscribeModern(ctx: SlotContext, uri: string): Promise<JsonRpcResponse> {
    try {
      // The listen request goes on the caller's connection, which must be open.
      await this.#pool.acquire(ctx);
    } catch (err) {
      return errorResponseOf(err);
    }
    const slot = this.#pool.slotFor(ctx, true);
    let subs = slot.subscriptions.get(uri);
    if (subs === undefined) {
      subs = new Set();
      slot.subscriptions.set(uri, subs);
    }
    subs.add(ctx.sessionId);
    const response = await this.#listens.subscribe(slot, uri);
    if ('error' in response && subs.delete(ctx.sessionId) && subs.size === 0 && slot.subscriptions.get(uri) === subs) {
      slot.subscriptions.delete(uri);
      this.#listens.sync(slot);
    }
    return response;
  }

  /** Client sessions subscribed to `uri` through any connection. */
  subscribersOf(uri: string): Set<string> {
    const out = new Set<string>();
    for (const slot of this.#pool.slots.values()) for (const s of slot.subscriptions.get(uri) ?? []) out.add(s);
    return out;
  }

  /**
   * Stops idle connections of `session`/`user` isolation: no session attached, no request in
   * flight, unused for `idleTimeout`. Called periodically by the gateway; returns how many were reaped.
   */
  reapIdle(): number {
    return this.#pool.reapIdle() + (this.#lazy && this.#stopIfIdle() ? 1 : 0);
  }

  /**
   * Stops a lazy upstream's child unused for `idleStop`: no call in flight, no resource
   * subscription held, no call started or answered since. The state becomes `idle`.
   */
  #stopIfIdle(): boolean {
    const slot = this.#pool.slots.get(SHARED_KEY);
    const conn = slot?.connection;
    if (slot === undefined || conn === undefined || conn.closed || slot.starting !== undefined) return false;
    if (conn.inFlight > 0 || slot.subscriptions.size > 0) return false;
    if (this.#now() - this.#lastUsed < this.#idleStopMs) return false;
    this.#pool.closeSlot(slot, `unused for idleStop (${this.#idleStopMs} ms)`);
    this.#supervisor.setState('idle');
    return true;
  }

  /**
   * A method the modern era removed, asked of a modern upstream as a call: `logging/setLevel` and
   * `ping` succeed locally (the gateway filters log notifications itself; the upstream is
   * reachable through its calls), anything else is refused (resource subscriptions go through
   * {@link subscribe}, not here).
   */
  #removedMethod(method: string): UpstreamCall {
    if (method === 'logging/setLevel' || method === 'ping')
      return new SettledCall({ jsonrpc: '2.0', id: 0, result: {} });
    const error = new GatewayError(
      'SWB_ERR_UPSTREAM_METHOD_REMOVED',
      `${method} is not available for upstream "${this.name}": it speaks MCP 2026-07-28, which removed ${method}`,
    );
    return new SettledCall(errorResponse(0, error.jsonRpcCode, error.message, { code: error.code }));
  }

  /**
   * The answer a 2025-era client gets when a modern upstream needs input from the client
   * (basic/patterns/mrtr): an `input_required` result, or `MissingRequiredClientCapability`
   * (-32021, its message in `detail`) because the gateway declares no client capabilities on that
   * client's behalf.
   */
  #inputRequired(response: JsonRpcResponse, method: string, detail: string): JsonRpcResponse {
    const error = new GatewayError(
      'SWB_ERR_UPSTREAM_INPUT_REQUIRED',
      `upstream "${this.name}" needs input from the client to complete ${method}${detail}`,
    );
    return errorResponse(response.id, error.jsonRpcCode, error.message, { code: error.code });
  }

  /**
   * The connection a `ttlMs` refresh loads the catalog from: a live one (the shared or start-up
   * principal's first), else for `shared` and remote upstreams a new one; none under
   * `session`/`user` isolation without a live child.
   */
  async #catalogConnection(): Promise<UpstreamConnection | undefined> {
    let conn: UpstreamConnection | undefined;
    for (const slot of this.#pool.slots.values()) {
      if (slot.connection !== undefined && !slot.connection.closed) {
        conn = slot.connection;
        if (slot.key === SHARED_KEY || slot.key === PROBE_CONTEXT.principalId) break;
      }
    }
    // A lazy upstream's child is not started for a refresh: its stored lists stand until it runs.
    if (conn === undefined && this.isolation !== 'session' && this.isolation !== 'user' && !this.#lazy) {
      conn = await this.#pool.acquire(PROBE_CONTEXT);
    }
    return conn;
  }

  #onNotification(slot: Slot, conn: UpstreamConnection, n: JsonRpcNotification): void {
    const kinds = listChangedKinds(n.method);
    if (kinds) {
      this.#catalog.load(conn, kinds).catch((err: unknown) => this.#logger.warn({ err }, 'catalog refresh failed'));
      return;
    }
    this.#options.onEvent({ type: 'notification', upstream: this, notification: n, audience: slot.audience });
  }
}
