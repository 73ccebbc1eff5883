/**
 * One configured upstream server: its connections (by isolation mode), supervision with
 * backoff, the cached InitializeResult and catalog (tools, prompts, resources, templates), and
 * resource subscriptions.
 *
 * Isolation (PRODUCT §4.7):
 * - `shared`: one connection for everyone (stdio child multiplexed with id remapping);
 * - `session`: one stdio child per client session;
 * - `user`: one stdio child per principal.
 * Remote (HTTP/SSE) upstreams keep one upstream session per principal, independent of client
 * sessions, re-initialised transparently when the upstream answers 404.
 *
 * @module
 */
import type { RemoteServer, ServerConfig, StdioServer } from '../config/schema.js';
import { isStdioServer, remoteTransport } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { Logger } from '../observability/logger.js';
import { createBackoff } from '../util/backoff.js';
import type { Caller } from './connection.js';
import { UpstreamConnection } from './connection.js';
import { createSseTransport } from './sse-transport.js';
import { childEnvironment } from './child-env.js';
import { createStdioTransport } from './stdio-transport.js';
import { createStreamableHttpTransport } from './streamable-http-transport.js';
import type { MessageTransport, TransportCloseInfo } from './transport.js';
import { ANONYMOUS, type Principal } from '../auth/principal.js';
import type { IncomingHttpHeaders } from 'node:http';
import type { IdentityPropagator } from '../auth/identity.js';
import type { Tracing } from '../observability/tracing.js';
import type { Span } from '@opentelemetry/api';
import type { DestinationPolicy } from '../policy/destinations.js';
import { createPassthroughPolicy, type PassthroughPolicy } from '../policy/passthrough.js';
import { createUpstreamCredentials, type UpstreamCredentials } from './credentials.js';
import { createConcurrencyLimiter, type ConcurrencyLimiter, type Release } from '../policy/concurrency.js';
import { UpstreamHealth } from './health.js';

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
}

/** Gateway-wide settings for outbound requests to remote upstreams (issue "Identity" §G, §H). */
export interface OutboundOptions {
  /** The resolved global passthrough allowlist (env / stored / merged). */
  globalAllowlist: readonly string[];
  /** `headers.overwriteBase`. */
  overwriteBase: boolean;
  /** Header names never forwarded (the trusted-proxy identity header). */
  reservedHeaders: readonly string[];
  /** Signs identity assertions for servers with `identityHeaders: true`. */
  identity?: IdentityPropagator;
}

/** The lists an upstream serves, cached at start and refreshed on `list_changed`. */
export interface Catalog {
  tools: JsonObject[];
  prompts: JsonObject[];
  resources: JsonObject[];
  resourceTemplates: JsonObject[];
}

/** Lifecycle state reported by `/readyz` and the admin API. */
export type UpstreamState = 'starting' | 'ready' | 'restarting' | 'failed' | 'stopped';

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
  /** Outbound identity settings (remote upstreams only). */
  outbound?: OutboundOptions;
  /** Tracing (only passed when enabled): a client span per upstream call. */
  tracing?: Tracing;
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
  /** Factory override (tests, tunnels): builds the transport for a new connection. */
  createTransport?: (logger: Logger) => MessageTransport;
  onEvent: (event: UpstreamEvent) => void;
}

interface Slot {
  readonly key: string;
  connection: UpstreamConnection | undefined;
  starting: Promise<UpstreamConnection> | undefined;
  readonly sessions: Set<string>;
  lastUsed: number;
  /** uri → sessions subscribed through this slot. */
  readonly subscriptions: Map<string, Set<string>>;
  readonly backoff: ReturnType<typeof createBackoff>;
  /** Earliest time a restart may be attempted (after a crash). */
  notBefore: number;
  /** Latest credential headers for this slot (used by the GET stream and initialize). */
  authHeaders: Readonly<Record<string, string>>;
  /** The principal the slot's connection was last used for. */
  principal: Principal;
  readonly audience: Audience;
}

const SHARED_KEY = '*';
/** The slot context of the start-up connection and of health probes (the anonymous principal). */
const PROBE_CONTEXT: SlotContext = { sessionId: '__probe__', principalId: ANONYMOUS.id };

/** The state of one {@link Upstream.call}: what it was asked, where it went, whether it was cancelled. */
class PendingCall implements UpstreamCall {
  response!: Promise<JsonRpcResponse>;
  readonly ctx: SlotContext;
  readonly method: string;
  readonly params: JsonObject | undefined;
  readonly caller: Caller | undefined;
  /** The request's `_meta` and its progress token as the client sent it (restored on a retry). */
  readonly meta: JsonObject | undefined;
  readonly progressToken: unknown;
  cancelled = false;
  /** The connection and upstream id of the attempt in flight. */
  conn: UpstreamConnection | undefined = undefined;
  upstreamId = 0;
  /** `performance.now()` at the call when it is observed (metrics), else -1; -1 once observed. */
  started = -1;

  constructor(ctx: SlotContext, method: string, params: JsonObject | undefined, caller: Caller | undefined) {
    this.ctx = ctx;
    this.method = method;
    this.params = params;
    this.caller = caller;
    this.meta = params?._meta as JsonObject | undefined;
    this.progressToken = this.meta?.progressToken;
  }

  cancel(reason?: string): void {
    this.cancelled = true;
    if (this.conn !== undefined) this.conn.cancel(this.upstreamId, reason);
  }
}

/** A JSON-RPC error response (id 0; the caller restores the client's id) for a thrown error. */
function errorResponseOf(err: unknown): JsonRpcResponse {
  const ge = err instanceof GatewayError ? err : new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', String(err));
  return { jsonrpc: '2.0', id: 0, error: ge.toJsonRpcError() };
}
const EMPTY_HEADERS: Readonly<Record<string, string>> = Object.freeze({});
const LIST_METHODS: Record<keyof Catalog, { method: string; field: string; capability: string }> = {
  tools: { method: 'tools/list', field: 'tools', capability: 'tools' },
  prompts: { method: 'prompts/list', field: 'prompts', capability: 'prompts' },
  resources: { method: 'resources/list', field: 'resources', capability: 'resources' },
  resourceTemplates: { method: 'resources/templates/list', field: 'resourceTemplates', capability: 'resources' },
};
const LIST_CHANGED: Record<string, Array<keyof Catalog>> = {
  'notifications/tools/list_changed': ['tools'],
  'notifications/prompts/list_changed': ['prompts'],
  'notifications/resources/list_changed': ['resources', 'resourceTemplates'],
};

/**
 * A configured upstream server. `start()` connects (for `shared`/remote) or probes (for
 * `session`/`user`: one child is started to learn capabilities and the catalog, then stopped).
 */
export class Upstream {
  readonly name: string;
  readonly config: ServerConfig;
  readonly isolation: 'shared' | 'session' | 'user' | 'principal';
  #logger: Logger;
  #options: UpstreamOptions;
  #slots = new Map<string, Slot>();
  #state: UpstreamState = 'starting';
  #lastError: string | undefined;
  #initializeResult: JsonObject | undefined;
  #catalog: Catalog = { tools: [], prompts: [], resources: [], resourceTemplates: [] };
  #catalogVersion = 0;
  #now: () => number;
  #stopped = false;
  #restartTimer: NodeJS.Timeout | undefined;
  #credentials: UpstreamCredentials | undefined;
  #concurrency: ConcurrencyLimiter | undefined;
  #passthrough: PassthroughPolicy | undefined;
  #identity: IdentityPropagator | undefined;
  #restarts = 0;
  /** Remote upstreams only: consecutive transport failures and the probe while down. */
  #health: UpstreamHealth | undefined;
  /** The catalog was loaded once (at start, or when an upstream unreachable at start answered). */
  #catalogLoaded = false;

  constructor(options: UpstreamOptions) {
    this.name = options.name;
    this.config = options.config;
    this.#options = options;
    this.#logger = options.logger;
    this.#now = options.now ?? Date.now;
    this.isolation = isStdioServer(options.config) ? options.config.isolation : 'principal';
    const cfg = options.config;
    if (cfg.maxInFlight !== undefined) {
      this.#concurrency = createConcurrencyLimiter({
        maxInFlight: cfg.maxInFlight,
        maxQueue: cfg.maxQueue,
        queueTimeoutMs: cfg.queueTimeout,
        name: this.name,
      });
    }
    if (!isStdioServer(cfg)) {
      this.#credentials = createUpstreamCredentials(cfg.auth, {
        serverName: this.name,
        logger: this.#logger,
        // A runtime server's token endpoint is held to the destination policy at connect time too.
        ...(options.destinations ? { dispatcher: options.destinations.dispatcher() } : {}),
      });
      const out = options.outbound;
      this.#passthrough = createPassthroughPolicy({
        globalAllowlist: out?.globalAllowlist ?? [],
        serverAllowlist: cfg.passthroughHeaders,
        upstreamAuthType: cfg.auth?.type ?? 'none',
        baseHeaders: cfg.headers,
        overwriteBase: out?.overwriteBase ?? false,
        reservedHeaders: out?.reservedHeaders ?? [],
        serverName: this.name,
        logger: this.#logger,
      });
      this.#identity = cfg.identityHeaders ? out?.identity : undefined;
      // Tunnelled servers (a transport factory) are watched by the tunnel hub instead.
      if (options.createTransport === undefined) {
        this.#health = new UpstreamHealth({
          failureThreshold: cfg.health.failureThreshold,
          probeIntervalMs: cfg.health.probeInterval,
          maxProbeIntervalMs: cfg.health.maxProbeInterval,
          probe: () => this.#run(new PendingCall(PROBE_CONTEXT, 'ping', undefined, undefined), 0),
          onChange: (up, reason) => this.#onHealth(up, reason),
        });
      }
    }
  }

  /**
   * Headers for one request to a remote upstream: credentials, then passed-through client
   * headers, then identity headers (the documented merge order of `policy/passthrough.ts`).
   * `undefined` for stdio upstreams.
   */
  /**
   * The outbound headers of one call: credentials, passed-through client headers and identity
   * assertion. Synchronous when no part needs I/O (a static bearer, `none`, `forward`, no identity
   * assertion), so the hot path of a remote upstream awaits nothing extra.
   */
  #outboundHeaders(
    ctx: SlotContext,
    slot: Slot | undefined,
  ): Readonly<Record<string, string>> | undefined | Promise<Readonly<Record<string, string>>> {
    const creds = this.#credentials;
    if (!creds) return undefined;
    const principal = ctx.principal ?? slot?.principal ?? ANONYMOUS;
    const auth = creds.headersFor(principal);
    return auth instanceof Promise
      ? auth.then((a) => this.#withAuth(ctx, slot, principal, a))
      : this.#withAuth(ctx, slot, principal, auth);
  }

  #withAuth(
    ctx: SlotContext,
    slot: Slot | undefined,
    principal: Principal,
    auth: Readonly<Record<string, string>>,
  ): Readonly<Record<string, string>> | Promise<Readonly<Record<string, string>>> {
    if (slot) {
      slot.authHeaders = auth;
      slot.principal = principal;
    }
    const passed = ctx.httpHeaders && this.#passthrough ? this.#passthrough(ctx.httpHeaders) : EMPTY_HEADERS;
    if (this.#identity) {
      return this.#identity
        .headersFor({ serverName: this.name, principal, sessionId: ctx.sessionId })
        .then((identity) => ({ ...auth, ...passed, ...identity }));
    }
    // Nothing to merge: the (frozen) credential headers as they are, no copy.
    if (passed === EMPTY_HEADERS) return auth;
    return { ...auth, ...passed };
  }

  /** Current lifecycle state. */
  get state(): UpstreamState {
    return this.#state;
  }

  /** Last start/crash error message, if any. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Restarts since start (crash recoveries of shared children). */
  get restarts(): number {
    return this.#restarts;
  }

  /** The cached InitializeResult of the upstream. */
  get initializeResult(): JsonObject | undefined {
    return this.#initializeResult;
  }

  /** Server capabilities (from the cached InitializeResult). */
  get capabilities(): JsonObject {
    return (this.#initializeResult?.capabilities as JsonObject | undefined) ?? {};
  }

  /** The cached catalog. */
  get catalog(): Readonly<Catalog> {
    return this.#catalog;
  }

  /** Increments whenever the catalog changes. */
  get catalogVersion(): number {
    return this.#catalogVersion;
  }

  /** Number of live connections (children for stdio). */
  get connectionCount(): number {
    let n = 0;
    for (const s of this.#slots.values()) if (s.connection && !s.connection.closed) n++;
    return n;
  }

  /**
   * Connects and loads the catalog. Resolves when ready; on failure the state becomes `failed`
   * (shared stdio children keep retrying with backoff) and the error is rethrown.
   */
  async start(): Promise<void> {
    this.#setState('starting');
    try {
      const slot = this.#slotFor(PROBE_CONTEXT, true);
      const conn = await this.#connect(slot);
      await this.#loadCatalog(conn, undefined);
      this.#catalogLoaded = true;
      if (this.isolation === 'session' || this.isolation === 'user') {
        // The probe child only taught us capabilities and the catalog.
        this.#slots.delete(slot.key);
        await conn.close();
      }
      this.#setState('ready');
    } catch (err) {
      this.#lastError = err instanceof Error ? err.message : String(err);
      this.#setState('failed', this.#lastError);
      if (this.isolation === 'shared' && !this.#stopped) this.#scheduleRestart(this.#slots.get(SHARED_KEY));
      // A remote upstream not reachable at start is probed until it answers.
      this.#health?.markDown(this.#lastError);
      throw err;
    }
  }

  /** Stops every connection; no restarts afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    this.#health?.stop();
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    const closing = [...this.#slots.values()].flatMap((s) => (s.connection ? [s.connection.close()] : []));
    this.#slots.clear();
    await Promise.allSettled(closing);
    this.#setState('stopped');
  }

  /**
   * Sends a request for a client call. Retries once on a fresh upstream session when the
   * upstream answered 404 (session lost) — MCP transports §Session Management.
   */
  call(ctx: SlotContext, method: string, params: JsonObject | undefined, caller: Caller | undefined): UpstreamCall {
    // One object per call, methods on the prototype: no per-call closures on the hot path.
    const call = new PendingCall(ctx, method, params, caller);
    if (this.#options.observe !== undefined) call.started = performance.now();
    const limiter = this.#concurrency;
    let response: Promise<JsonRpcResponse>;
    if (limiter === undefined) response = this.#run(call, 0);
    else {
      // Per-upstream max in-flight with a bounded FIFO queue (issue "Traffic control" §A).
      let slot: Promise<Release> | Release;
      try {
        slot = limiter.acquire();
      } catch (err) {
        slot = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      response =
        typeof slot === 'function'
          ? this.#run(call, 0).finally(slot)
          : slot.then(
              (release) => this.#run(call, 0).finally(release),
              (err: unknown) => this.#done(call, errorResponseOf(err)),
            );
    }
    call.response = response;
    return call;
  }

  /**
   * Every answer of a call leaves through here: the metrics observer sees it once (in the same
   * step, not through one more promise per call).
   */
  #done(call: PendingCall, response: JsonRpcResponse): JsonRpcResponse {
    if (call.started >= 0) {
      this.#options.observe?.(call.method, performance.now() - call.started, 'error' in response);
      call.started = -1;
    }
    if (this.#health !== undefined) this.#health.record(response);
    return response;
  }

  /**
   * A remote upstream's health changed: down → state `failed` (`/readyz` 503,
   * `switchboard_upstream_up` 0); up again → `ready`, after loading the catalog when it was never
   * loaded (the upstream was unreachable at start; when that load fails, it is marked down again
   * and probing goes on).
   */
  #onHealth(up: boolean, reason: string | undefined): void {
    if (this.#stopped) return;
    if (!up) {
      this.#lastError = reason ?? 'consecutive transport failures';
      this.#logger.warn(
        { failures: this.#health?.failures, err: this.#lastError },
        'upstream marked down; probing until it answers',
      );
      this.#setState('failed', this.#lastError);
      return;
    }
    const ready = (): void => {
      if (this.#stopped || this.#health?.down === true) return;
      this.#logger.info('upstream answers again; marked up');
      this.#setState('ready');
    };
    if (this.#catalogLoaded) return ready();
    this.acquire(PROBE_CONTEXT)
      .then((conn) => this.#loadCatalog(conn, undefined))
      .then(
        () => {
          this.#catalogLoaded = true;
          ready();
        },
        (err: unknown) => {
          this.#logger.warn({ err }, 'catalog load after recovery failed');
          // Keep probing: the next answer tries the catalog again.
          this.#health?.markDown(err instanceof Error ? err.message : String(err));
        },
      );
  }

  /** One attempt of a call (see {@link call}); a retry is attempt 1 on a fresh connection. */
  async #run(call: PendingCall, attempt: number): Promise<JsonRpcResponse> {
    const { ctx, method, params } = call;
    // Hot path: a shared upstream's live connection needs no await.
    let conn: UpstreamConnection | undefined = attempt === 0 ? this.#sharedLive() : undefined;
    if (conn === undefined) {
      try {
        conn = await this.acquire(ctx);
      } catch (err) {
        return this.#done(call, errorResponseOf(err));
      }
    }
    if (call.cancelled)
      return this.#done(call, { jsonrpc: '2.0', id: 0, error: { code: -32800, message: 'Request cancelled' } });
    // The connection rewrites _meta.progressToken in place; a retry must start from the client's token.
    if (attempt > 0 && call.meta !== undefined) call.meta.progressToken = call.progressToken;
    let headers: Readonly<Record<string, string>> | undefined;
    try {
      // stdio upstreams have no outbound headers, and static credentials need no I/O: no await,
      // no extra promise on the hot path.
      if (this.#credentials) {
        const pending = this.#outboundHeaders(ctx, this.#slotFor(ctx, false));
        headers = pending instanceof Promise ? await pending : pending;
      }
    } catch (err) {
      return this.#done(call, errorResponseOf(err));
    }
    const tracing = this.#options.tracing;
    let span: Span | undefined;
    if (tracing && ctx.trace !== undefined) {
      span = tracing.startClientSpan(method, ctx.trace as Span, {
        'mcp.method.name': method,
        'switchboard.server.name': this.name,
      });
      const traceparent = this.#credentials ? tracing.traceparentOf(span) : undefined;
      if (traceparent !== undefined) headers = { ...headers, traceparent };
    }
    const inflight = conn.request(
      method,
      params,
      headers === undefined
        ? { caller: call.caller, reqId: ctx.reqId }
        : { caller: call.caller, headers, reqId: ctx.reqId },
    );
    call.conn = conn;
    call.upstreamId = inflight.upstreamId;
    const response = await inflight.response;
    if (span && tracing) tracing.end(span, 'error' in response ? { jsonRpcErrorCode: response.error.code } : {});
    const data =
      'error' in response ? (response.error.data as { code?: string; notSent?: boolean } | undefined) : undefined;
    // Retry once on a fresh connection when the upstream lost our session (transports §Session
    // Management) or when the request never left the gateway (the transport was closing).
    if (
      attempt === 0 &&
      !call.cancelled &&
      (data?.code === 'SWB_ERR_UPSTREAM_SESSION_EXPIRED' || data?.notSent === true)
    ) {
      this.#logger.info(
        { reqId: ctx.reqId, reason: data.code },
        'upstream connection lost; reconnecting and retrying once',
      );
      this.#forget(conn);
      return this.#run(call, 1);
    }
    return this.#done(call, response);
  }

  /** The live connection of a `shared` upstream, if any (no slot bookkeeping needed for it). */
  #sharedLive(): UpstreamConnection | undefined {
    if (this.isolation !== 'shared' || this.#stopped) return undefined;
    const conn = this.#slots.get(SHARED_KEY)?.connection;
    return conn !== undefined && !conn.closed ? conn : undefined;
  }

  /**
   * Returns the connection for a caller, starting it when needed.
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_PROCESS_LIMIT` when `maxProcesses` children are busy,
   *   `SWB_ERR_UPSTREAM_UNAVAILABLE` when it cannot start
   */
  async acquire(ctx: SlotContext): Promise<UpstreamConnection> {
    if (this.#stopped) throw new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `upstream "${this.name}" is stopped`);
    const slot = this.#slotFor(ctx, true);
    slot.lastUsed = this.#now();
    if (this.isolation === 'session' || this.isolation === 'user') slot.sessions.add(ctx.sessionId);
    const conn = slot.connection;
    if (conn && !conn.closed) return conn;
    return slot.starting ?? this.#connect(slot);
  }

  /** Tells the upstream a client session ended: session-isolated children become idle, subscriptions drop. */
  releaseSession(sessionId: string, principalId: string): void {
    for (const slot of this.#slots.values()) {
      if (!slot.sessions.delete(sessionId)) continue;
      slot.lastUsed = this.#now();
      for (const [uri, subs] of slot.subscriptions) {
        if (subs.delete(sessionId) && subs.size === 0) {
          slot.subscriptions.delete(uri);
          if (slot.connection) void slot.connection.request('resources/unsubscribe', { uri }).response;
        }
      }
    }
    if (this.isolation === 'session') {
      const slot = this.#slots.get(sessionId);
      if (slot) this.#closeSlot(slot, 'session closed');
    }
    void principalId;
  }

  /** Subscribes a client session to a resource URI (refcounted per connection). */
  async subscribe(ctx: SlotContext, uri: string, caller: Caller | undefined): Promise<JsonRpcResponse> {
    const slot = this.#slotFor(ctx, true);
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

  /** Removes a client session's subscription; unsubscribes upstream when it was the last. */
  async unsubscribe(ctx: SlotContext, uri: string, caller: Caller | undefined): Promise<JsonRpcResponse> {
    const slot = this.#slotFor(ctx, false);
    const subs = slot?.subscriptions.get(uri);
    if (slot && subs?.delete(ctx.sessionId) && subs.size === 0) {
      slot.subscriptions.delete(uri);
      return this.call(ctx, 'resources/unsubscribe', { uri }, caller).response;
    }
    return { jsonrpc: '2.0', id: 0, result: {} };
  }

  /** Client sessions subscribed to `uri` through any connection. */
  subscribersOf(uri: string): Set<string> {
    const out = new Set<string>();
    for (const slot of this.#slots.values()) for (const s of slot.subscriptions.get(uri) ?? []) out.add(s);
    return out;
  }

  /**
   * Stops idle connections of `session`/`user` isolation: no session attached, no request in
   * flight, unused for `idleTimeout`. Called periodically by the gateway; returns how many were reaped.
   */
  reapIdle(): number {
    if (!isStdioServer(this.config) || this.isolation === 'shared') return 0;
    const idleMs = this.config.idleTimeout;
    const now = this.#now();
    let reaped = 0;
    for (const slot of [...this.#slots.values()]) {
      const conn = slot.connection;
      const busy = conn !== undefined && conn.inFlight > 0;
      const attached = slot.sessions.size > 0;
      if (!busy && !attached && now - slot.lastUsed >= idleMs) {
        this.#closeSlot(slot, 'idle');
        reaped++;
      }
    }
    return reaped;
  }

  #slotFor(ctx: SlotContext, create: true): Slot;
  #slotFor(ctx: SlotContext, create: false): Slot | undefined;
  #slotFor(ctx: SlotContext, create: boolean): Slot | undefined {
    const key =
      this.isolation === 'session' ? ctx.sessionId : this.isolation === 'shared' ? SHARED_KEY : ctx.principalId;
    let slot = this.#slots.get(key);
    if (slot || !create) return slot;
    if ((this.isolation === 'session' || this.isolation === 'user') && isStdioServer(this.config)) {
      const max = this.config.maxProcesses;
      if (this.#slots.size >= max) {
        this.reapIdle();
        if (this.#slots.size >= max) {
          throw new GatewayError(
            'SWB_ERR_UPSTREAM_PROCESS_LIMIT',
            `upstream "${this.name}" already runs maxProcesses=${max} children (isolation: ${this.isolation}); try again later or raise maxProcesses`,
          );
        }
      }
    }
    const restart = isStdioServer(this.config) ? this.config.restart : { initialDelay: 250, maxDelay: 30_000 };
    slot = {
      key,
      connection: undefined,
      starting: undefined,
      sessions: new Set(),
      lastUsed: this.#now(),
      subscriptions: new Map(),
      backoff: createBackoff({ initialDelayMs: restart.initialDelay, maxDelayMs: restart.maxDelay }),
      notBefore: 0,
      authHeaders: EMPTY_HEADERS,
      principal: ctx.principal ?? ANONYMOUS,
      // A connection held for one session or principal speaks for that one only (a remote
      // upstream's connection is per principal: its notifications are that principal's).
      audience:
        this.isolation === 'session'
          ? { kind: 'session', id: key }
          : this.isolation === 'shared'
            ? { kind: 'all' }
            : { kind: 'principal', id: key },
    };
    this.#slots.set(key, slot);
    return slot;
  }

  #connect(slot: Slot): Promise<UpstreamConnection> {
    const p = this.#doConnect(slot).finally(() => {
      if (slot.starting === p) slot.starting = undefined;
    });
    slot.starting = p;
    return p;
  }

  async #doConnect(slot: Slot): Promise<UpstreamConnection> {
    const wait = slot.notBefore - this.#now();
    if (wait > 0) await new Promise((r) => setTimeout(r, wait));
    const logger = this.#logger.child({ slot: slot.key });
    const destinations = this.#options.destinations;
    if (destinations !== undefined && !isStdioServer(this.config)) {
      try {
        await destinations.check(this.config.url);
        if (this.config.auth?.type === 'oauth2-client-credentials') await destinations.check(this.config.auth.tokenUrl);
      } catch (err) {
        slot.notBefore = this.#now() + slot.backoff.next();
        throw err;
      }
    }
    if (this.#credentials) {
      // The connection is made for the slot's principal; initialize and the GET stream carry its credential.
      slot.authHeaders = await this.#credentials.headersFor(slot.principal);
    }
    const transport = this.#options.createTransport?.(logger) ?? this.#createTransport(logger, slot);
    const conn: UpstreamConnection = new UpstreamConnection(transport, {
      name: this.name,
      logger,
      requestTimeoutMs: this.config.timeout ?? 60_000,
      exclusiveAttribution:
        isStdioServer(this.config) || (!isStdioServer(this.config) && remoteTransport(this.config) === 'sse'),
      attributionWaitMs: this.#options.attributionWaitMs,
      gatewayVersion: this.#options.gatewayVersion,
      onNotification: (n) => this.#onNotification(slot, conn, n),
      onClose: (info) => this.#onClose(slot, conn, info),
    });
    try {
      await conn.initialize();
    } catch (err) {
      slot.notBefore = this.#now() + slot.backoff.next();
      await conn.close().catch(() => undefined);
      throw err instanceof GatewayError
        ? err
        : new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `upstream "${this.name}": ${String(err)}`, { cause: err });
    }
    slot.connection = conn;
    slot.backoff.reset();
    this.#initializeResult ??= conn.initializeResult;
    logger.info({ transport: transport.description }, 'upstream connected');
    // Re-establish subscriptions after a reconnect.
    for (const uri of slot.subscriptions.keys()) void conn.request('resources/subscribe', { uri }).response;
    return conn;
  }

  #createTransport(logger: Logger, slot: Slot): MessageTransport {
    const cfg = this.config;
    if (isStdioServer(cfg)) {
      const s: StdioServer = cfg;
      return createStdioTransport({
        command: s.command,
        args: s.args,
        env: childEnvironment({ env: s.env, inherit: s.inheritEnv, forbidden: this.#options.forbiddenEnv ?? [] }),
        ...(s.cwd === undefined ? {} : { cwd: s.cwd }),
        stderrLines: s.stderrLines,
        logger,
      });
    }
    const r: RemoteServer = cfg;
    const dynamicHeaders = () => slot.authHeaders;
    const lookup = this.#options.destinations?.lookup;
    const common = { url: r.url, headers: r.headers, dynamicHeaders, logger, ...(lookup ? { lookup } : {}) };
    if (remoteTransport(r) === 'sse') return createSseTransport(common);
    return createStreamableHttpTransport(common);
  }

  async #loadCatalog(conn: UpstreamConnection, only: ReadonlyArray<keyof Catalog> | undefined): Promise<void> {
    const caps = conn.capabilities;
    const kinds = only ?? (Object.keys(LIST_METHODS) as Array<keyof Catalog>);
    const changed: Array<keyof Catalog> = [];
    await Promise.all(
      kinds.map(async (kind) => {
        const spec = LIST_METHODS[kind];
        if (caps[spec.capability] === undefined) return;
        const items: JsonObject[] = [];
        const before = JSON.stringify(this.#catalog[kind]);
        let cursor: unknown;
        for (let page = 0; page < 1000; page++) {
          const params: JsonObject | undefined = cursor === undefined ? undefined : { cursor };
          const response = await conn.request(spec.method, params).response;
          if ('error' in response) {
            if (response.error.code !== -32601) {
              this.#logger.warn({ method: spec.method, error: response.error }, 'listing failed');
            }
            return;
          }
          const list = response.result[spec.field];
          if (Array.isArray(list)) items.push(...(list as JsonObject[]));
          cursor = response.result.nextCursor;
          if (typeof cursor !== 'string' || cursor === '') break;
        }
        if (JSON.stringify(items) === before) return;
        this.#catalog = { ...this.#catalog, [kind]: items };
        changed.push(kind);
      }),
    );
    if (changed.length > 0) {
      this.#catalogVersion++;
      this.#options.onEvent({ type: 'catalog', upstream: this, changed });
    }
  }

  #onNotification(slot: Slot, conn: UpstreamConnection, n: JsonRpcNotification): void {
    const kinds = LIST_CHANGED[n.method];
    if (kinds) {
      this.#loadCatalog(conn, kinds).catch((err: unknown) => this.#logger.warn({ err }, 'catalog refresh failed'));
      return;
    }
    this.#options.onEvent({ type: 'notification', upstream: this, notification: n, audience: slot.audience });
  }

  #onClose(slot: Slot, conn: UpstreamConnection, info: TransportCloseInfo): void {
    if (slot.connection === conn) slot.connection = undefined;
    if (this.#stopped || this.#slots.get(slot.key) !== slot) return;
    if (info.sessionExpired) {
      this.#logger.info('upstream session expired; the next request re-initialises');
      return;
    }
    const why = info.error?.message ?? (info.signal ? `signal ${info.signal}` : `exit code ${info.exitCode ?? '?'}`);
    this.#logger.warn({ exitCode: info.exitCode, signal: info.signal, err: info.error }, 'upstream connection closed');
    slot.notBefore = this.#now() + slot.backoff.next();
    if (slot.key === SHARED_KEY && this.isolation === 'shared') {
      this.#lastError = why;
      this.#setState('restarting', why);
      this.#scheduleRestart(slot);
    }
  }

  #scheduleRestart(slot: Slot | undefined): void {
    if (this.#stopped || this.#restartTimer) return;
    const s = slot ?? this.#slotFor({ sessionId: SHARED_KEY, principalId: SHARED_KEY }, true);
    const maxRetries = isStdioServer(this.config) ? this.config.restart.maxRetries : 0;
    if (maxRetries > 0 && s.backoff.attempts > maxRetries) {
      this.#setState('failed', `gave up after ${maxRetries} restarts`);
      return;
    }
    const delay = Math.max(0, s.notBefore - this.#now());
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#stopped) return;
      const live = s.connection && !s.connection.closed ? s.connection : undefined;
      const p = live ? Promise.resolve(live) : (s.starting ?? this.#connect(s));
      p.then(
        async (conn) => {
          this.#restarts++;
          await this.#loadCatalog(conn, undefined);
          this.#setState('ready');
        },
        (err: unknown) => {
          this.#lastError = err instanceof Error ? err.message : String(err);
          this.#logger.warn({ err }, 'upstream restart failed');
          this.#scheduleRestart(s);
        },
      );
    }, delay);
    this.#restartTimer.unref();
  }

  /** Stops handing out a connection that is closing (its transport may not have said so yet). */
  #forget(conn: UpstreamConnection): void {
    for (const slot of this.#slots.values()) if (slot.connection === conn) slot.connection = undefined;
    conn.close().catch((err: unknown) => this.#logger.debug({ err }, 'close failed'));
  }

  #closeSlot(slot: Slot, why: string): void {
    this.#slots.delete(slot.key);
    const conn = slot.connection;
    slot.connection = undefined;
    if (conn) {
      this.#logger.info({ slot: slot.key, why }, 'stopping upstream connection');
      conn.close().catch((err: unknown) => this.#logger.warn({ err }, 'close failed'));
    }
  }

  #setState(state: UpstreamState, error?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#options.onEvent(
      error === undefined ? { type: 'state', upstream: this, state } : { type: 'state', upstream: this, state, error },
    );
  }
}
