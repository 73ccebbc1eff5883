/**
 * The gateway: upstreams, views (aggregate, virtual servers, single servers) and client
 * sessions, built from a {@link SwitchboardConfig} and updated in place by hot reload.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import type { Principal } from '../auth/principal.js';
import { StdioServer, type ServerConfig, type SwitchboardConfig, type VirtualServer } from '../config/schema.js';
import type { MessageTransport } from '../upstream/transport.js';
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcNotification } from '../protocol/jsonrpc.js';
import type { Logger } from '../observability/logger.js';
import type { Audience, UpstreamEvent, UpstreamState } from '../upstream/upstream.js';
import type { Tracing } from '../observability/tracing.js';
import type { DestinationPolicy } from '../policy/destinations.js';
import { Upstream } from '../upstream/upstream.js';
import { createUpstreamInterceptors, type OutboundOptions } from '../upstream/interceptors/index.js';
import { ClientSession, type SessionHost } from './client-session.js';
import { EMPTY_PIPELINE, type Pipeline } from '../pipeline/stage.js';
import { compileFilter, composeFilters } from './filters.js';
import { overlappingNamespaces } from './naming.js';
import { View, type NameCollision, type ViewMember } from './view.js';

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
}

const NO_SESSIONS: ReadonlySet<ClientSession> = new Set();

const LIST_CHANGED_METHOD = {
  tools: 'notifications/tools/list_changed',
  prompts: 'notifications/prompts/list_changed',
  resources: 'notifications/resources/list_changed',
  resourceTemplates: 'notifications/resources/list_changed',
} as const;

/** True when a notification for `audience` may go to session `s`. */
function reaches(audience: Audience, s: ClientSession): boolean {
  return audience.kind === 'all' || (audience.kind === 'session' ? s.id : s.principal.id) === audience.id;
}

/** Upstreams, views and sessions of one running gateway. */
export class Gateway implements SessionHost {
  readonly logger: Logger;
  readonly version: string;
  readonly pageSize: number;
  readonly clientRequestTimeoutMs = 600_000;
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
  #config: SwitchboardConfig;
  /** The configuration file's content; `#config` is it plus the runtime servers. */
  #fileConfig: SwitchboardConfig;
  #runtimeServers: Record<string, ServerConfig> = {};
  /** Names of tunnelled servers (not in any configuration). */
  #tunnels = new Set<string>();
  #upstreams = new Map<string, Upstream>();
  #aggregate: View;
  #virtuals = new Map<string, View>();
  #singles = new Map<string, View>();
  #sessions = new Map<string, ClientSession>();
  /** Open sessions per principal id (sessions.maxPerPrincipal, the admin API's filter). */
  #byPrincipal = new Map<string, Set<ClientSession>>();
  /** When the global limit last expired sessions itself (gateway clock, ms). */
  #limitSweepAt = -Infinity;
  /** The earliest expiry deadline seen by the last pass over all sessions (gateway clock, ms). */
  #nextExpiry = Infinity;
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
  #onNameCollision: (collision: NameCollision) => void;

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
    const report = options.onNameCollision;
    this.#onNameCollision = (c) => {
      this.logger.warn(
        { view: c.view, kind: c.kind, exposed: c.exposed, kept: c.kept, withheld: c.withheld },
        `${c.kind} "${c.withheld.name}" of server "${c.withheld.server}" is withheld: its exposed name "${c.exposed}" belongs to "${c.kept.name}" of server "${c.kept.server}"`,
      );
      report?.(c);
    };
    this.#aggregate = new View({
      name: 'default',
      kind: 'aggregate',
      members: [],
      separator: options.config.namespaceSeparator,
      gatewayVersion: this.version,
      onCollision: this.#onNameCollision,
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
    return this.#sessions;
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

  /** Starts every upstream (in parallel; a failing one is logged and retried, not fatal). */
  async start(): Promise<void> {
    for (const [name, cfg] of Object.entries(this.#config.servers))
      this.#upstreams.set(name, this.#createUpstream(name, cfg));
    this.#rebuildViews();
    await Promise.all([...this.#upstreams.values()].map((u) => this.#startUpstream(u)));
    if (this.#sweepIntervalMs > 0) {
      this.#sweepTimer = setInterval(() => this.sweep(), this.#sweepIntervalMs);
      this.#sweepTimer.unref();
    }
  }

  /** Stops sessions and upstreams. */
  async stop(): Promise<void> {
    if (this.#sweepTimer) clearInterval(this.#sweepTimer);
    for (const s of [...this.#sessions.values()]) s.close('shutdown');
    await Promise.allSettled([...this.#upstreams.values()].map((u) => u.stop()));
  }

  /** The aggregate view (`/mcp`). */
  get aggregate(): View {
    return this.#aggregate;
  }

  /** A virtual server's view (`/mcp/{name}`). */
  virtualView(name: string): View | undefined {
    return this.#virtuals.get(name);
  }

  /** One upstream's view (`/servers/{name}/mcp`). */
  serverView(name: string): View | undefined {
    return this.#singles.get(name);
  }

  /**
   * Creates a client session on a view. The principal's own limit is checked first, so one
   * principal at its limit never costs a pass over every session.
   *
   * @throws GatewayError `SWB_ERR_SESSION_PRINCIPAL_LIMIT` (429) when the principal holds
   *   `sessions.maxPerPrincipal` live sessions; `SWB_ERR_SESSION_LIMIT` (503) when
   *   `sessions.maxSessions` are open. Both carry `data.retryAfterMs`: the time until the first
   *   of those sessions expires (at least 1 s), for the edge's `Retry-After` (RFC 9110 §10.2.3).
   */
  createSession(view: View, principal: Principal, transportKind: 'streamable-http' | 'sse'): ClientSession {
    const cfg = this.#config.sessions;
    const cap = cfg.maxPerPrincipal;
    const own = this.#byPrincipal.get(principal.id);
    if (cap && own && own.size >= cap) {
      const now = this.#now();
      let next = Infinity;
      for (const s of [...own]) {
        const reason = this.#expiry(s, now);
        if (reason !== undefined) s.close(reason);
        else next = Math.min(next, this.#deadline(s));
      }
      if (own.size >= cap) {
        throw new GatewayError(
          'SWB_ERR_SESSION_PRINCIPAL_LIMIT',
          `this principal already holds ${own.size} sessions (sessions.maxPerPrincipal=${cap}); close one (DELETE) or let one expire`,
          { data: { limit: cap, retryAfterMs: this.#retryAfterMs(next, now) } },
        );
      }
    }
    if (this.#sessions.size >= cfg.maxSessions) {
      const now = this.#now();
      // At most one pass over every session per second: refused initializes stay cheap.
      if (now - this.#limitSweepAt >= 1000) {
        this.#limitSweepAt = now;
        this.#expireSessions(now);
      }
      if (this.#sessions.size >= cfg.maxSessions) {
        throw new GatewayError('SWB_ERR_SESSION_LIMIT', `too many sessions (sessions.maxSessions=${cfg.maxSessions})`, {
          data: { retryAfterMs: this.#retryAfterMs(this.#nextExpiry, now) },
        });
      }
    }
    const session = new ClientSession(randomUUID(), view, principal, transportKind, this);
    this.#sessions.set(session.id, session);
    // Looked up again: closing the principal's expired sessions above may have removed its set.
    const set = this.#byPrincipal.get(principal.id);
    if (set) set.add(session);
    else this.#byPrincipal.set(principal.id, new Set([session]));
    return session;
  }

  /** A live session, or undefined when unknown, closed, idle past `sessions.idleTimeout` or past `sessions.maxLifetime`. */
  getSession(id: string): ClientSession | undefined {
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    const reason = this.#expiry(s, this.#now());
    if (reason !== undefined) {
      s.close(reason);
      return undefined;
    }
    return s;
  }

  /** The live sessions of one principal (empty when it holds none). */
  sessionsOf(principalId: string): ReadonlySet<ClientSession> {
    return this.#byPrincipal.get(principalId) ?? NO_SESSIONS;
  }

  /**
   * When a session expires if its client stays silent (gateway clock, ms): the earlier of
   * `lastActivity + sessions.idleTimeout` and `createdAt + sessions.maxLifetime`. A request in
   * flight postpones the idle expiry, not the lifetime's.
   */
  expiresAt(session: ClientSession): number {
    return this.#deadline(session);
  }

  /** SessionHost: forget a closed session. */
  onSessionClosed(session: ClientSession, reason: string): void {
    if (!this.#sessions.delete(session.id)) return;
    const own = this.#byPrincipal.get(session.principal.id);
    own?.delete(session);
    if (own?.size === 0) this.#byPrincipal.delete(session.principal.id);
    this.logger.debug({ session: session.id, reason }, 'session closed');
  }

  /**
   * Closes expired sessions (idle or past their lifetime, open streams included: their streams
   * end) and reaps idle isolated children. Runs on a timer; tests call it directly.
   */
  sweep(): { sessions: number; children: number } {
    const sessions = this.#expireSessions(this.#now());
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
   */
  async setRuntimeServers(
    servers: Record<string, ServerConfig>,
  ): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
    this.#runtimeServers = { ...servers };
    return this.#apply(this.#effective());
  }

  /**
   * Adds a tunnelled server (issue "Reverse tunnel" §B): an upstream backed by a transport over
   * the tunnel session, started without waiting (its initialize travels through that session).
   *
   * @throws GatewayError `SWB_ERR_HTTP_CONFLICT` when a server of that name exists, or one whose
   *   namespaced names could coincide with its own ({@link Gateway.namespaceConflict})
   */
  attachTunnel(name: string, description: string | undefined, createTransport: () => MessageTransport): Upstream {
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
    const u = this.#newUpstream(name, config, createTransport);
    this.#upstreams.set(name, u);
    this.#tunnels.add(name);
    this.#rebuildViews();
    void this.#startUpstream(u);
    return u;
  }

  /** Removes a tunnelled server (the tunnel went away); sessions that saw it get list_changed. */
  async detachTunnel(name: string): Promise<void> {
    const u = this.#upstreams.get(name);
    if (!u || !this.#tunnels.delete(name)) return;
    this.#upstreams.delete(name);
    for (const s of [...this.#sessions.values()])
      if (s.view.kind === 'single' && s.view.members[0]?.upstream === u) s.close('tunnel closed');
    this.#rebuildViews();
    await u.stop();
    this.#notifyAllListChanged();
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

  async #apply(next: SwitchboardConfig): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
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
      for (const s of [...this.#sessions.values()])
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
    await Promise.all(starting.map((u) => this.#startUpstream(u)));
    if (added.length + removed.length + changed.length > 0) this.#notifyAllListChanged();
    this.logger.info({ added, removed, changed }, 'configuration reloaded');
    return { added, removed, changed };
  }

  /** Closes every expired session; returns how many, and records the next deadline. */
  #expireSessions(now: number): number {
    let closed = 0;
    let next = Infinity;
    for (const s of [...this.#sessions.values()]) {
      const reason = this.#expiry(s, now);
      if (reason !== undefined) {
        s.close(reason);
        closed++;
      } else next = Math.min(next, this.#deadline(s));
    }
    this.#nextExpiry = next;
    return closed;
  }

  /**
   * Why a session has expired at `now`, or undefined. An open stream (GET or legacy SSE) does
   * not keep a session alive: only messages from the client do, and a request in flight.
   */
  #expiry(s: ClientSession, now: number): string | undefined {
    const { idleTimeout, maxLifetime } = this.#config.sessions;
    if (maxLifetime > 0 && now - s.createdAt >= maxLifetime) return 'maximum lifetime reached';
    if (s.inFlight === 0 && now - s.lastActivity >= idleTimeout) return 'idle timeout';
    return undefined;
  }

  #deadline(s: ClientSession): number {
    const { idleTimeout, maxLifetime } = this.#config.sessions;
    const idle = s.inFlight === 0 ? s.lastActivity + idleTimeout : Infinity;
    return maxLifetime > 0 ? Math.min(idle, s.createdAt + maxLifetime) : idle;
  }

  /** Milliseconds until `deadline`, at least 1 s; the idle timeout when nothing is due to expire. */
  #retryAfterMs(deadline: number, now: number): number {
    return Number.isFinite(deadline) ? Math.max(1000, deadline - now) : this.#config.sessions.idleTimeout;
  }

  #createUpstream(name: string, cfg: ServerConfig): Upstream {
    const u = this.#newUpstream(name, cfg);
    this.#upstreamOutbound.set(u, this.#outboundVersion);
    return u;
  }

  #newUpstream(name: string, cfg: ServerConfig, createTransport?: () => MessageTransport): Upstream {
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
        'upstream ready',
      );
    } catch (err) {
      this.logger.error({ server: u.name, err }, 'upstream failed to start; will keep retrying where possible');
    }
  }

  #rebuildViews(): void {
    const cfg = this.#config;
    const sep = cfg.namespaceSeparator;
    const member = (u: Upstream, extra?: VirtualServer['servers']): ViewMember => {
      const sc = u.config;
      const m = extra && !Array.isArray(extra) ? extra[u.name] : undefined;
      return {
        upstream: u,
        tools: composeFilters(compileFilter(sc.tools), compileFilter(m?.tools)),
        prompts: composeFilters(compileFilter(sc.prompts), compileFilter(m?.prompts)),
        resources: composeFilters(compileFilter(sc.resources), compileFilter(m?.resources)),
      };
    };
    this.#aggregate.setMembers(
      [...this.#upstreams.values()].map((u) => member(u)),
      sep,
    );
    // The loader, the admin API and tunnels refuse these; a reloaded file can still declare a
    // server beside a runtime one it overlaps (file servers take precedence).
    for (const [shorter, longer] of overlappingNamespaces([...this.#upstreams.keys()], sep))
      this.logger.warn(
        { servers: [shorter, longer], separator: sep },
        `servers "${shorter}" and "${longer}" can expose the same names; a colliding newcomer is withheld`,
      );
    // Single-server views: keep the object for unchanged upstreams so sessions stay valid.
    for (const [name, view] of this.#singles) {
      const u = this.#upstreams.get(name);
      if (!u || view.members[0]?.upstream !== u) this.#singles.delete(name);
    }
    for (const u of this.#upstreams.values()) {
      if (this.#singles.has(u.name)) {
        this.#singles.get(u.name)?.setMembers([member(u)], sep);
        continue;
      }
      this.#singles.set(
        u.name,
        new View({
          name: u.name,
          kind: 'single',
          members: [member(u)],
          separator: sep,
          gatewayVersion: this.version,
          onCollision: this.#onNameCollision,
        }),
      );
    }
    const seen = new Set<string>();
    for (const [name, vs] of Object.entries(cfg.virtualServers)) {
      seen.add(name);
      const names = Array.isArray(vs.servers) ? vs.servers : Object.keys(vs.servers);
      const members = names.flatMap((n) => {
        const u = this.#upstreams.get(n);
        return u ? [member(u, vs.servers)] : [];
      });
      const existing = this.#virtuals.get(name);
      if (existing) existing.setMembers(members, sep);
      else {
        const opts = {
          name,
          kind: 'virtual' as const,
          members,
          separator: sep,
          gatewayVersion: this.version,
          onCollision: this.#onNameCollision,
        };
        this.#virtuals.set(
          name,
          new View(vs.description === undefined ? opts : { ...opts, description: vs.description }),
        );
      }
    }
    for (const [name, view] of this.#virtuals) {
      if (seen.has(name)) continue;
      this.#virtuals.delete(name);
      for (const s of [...this.#sessions.values()]) if (s.view === view) s.close('virtual server removed');
    }
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
        for (const view of this.#viewsOf(e.upstream)) view.prepare();
        if (e.changed.includes('tools')) this.onToolCatalog?.(e.upstream.name, e.upstream.catalog.tools);
        const methods = new Set(e.changed.map((k) => LIST_CHANGED_METHOD[k]));
        for (const s of this.#sessions.values()) {
          if (!s.initialized || !s.view.includes(e.upstream)) continue;
          for (const method of methods) s.sendUnrelated({ jsonrpc: '2.0', method });
        }
        return;
      }
      case 'notification':
        this.#fanOut(e.upstream, e.notification, e.audience);
        return;
    }
  }

  #viewsOf(upstream: Upstream): View[] {
    const out: View[] = [];
    if (this.#aggregate.includes(upstream)) out.push(this.#aggregate);
    for (const v of this.#virtuals.values()) if (v.includes(upstream)) out.push(v);
    const single = this.#singles.get(upstream.name);
    if (single?.includes(upstream)) out.push(single);
    return out;
  }

  #fanOut(upstream: Upstream, n: JsonRpcNotification, audience: Audience): void {
    if (n.method === 'notifications/resources/updated') {
      const uri = n.params?.uri;
      if (typeof uri !== 'string') return;
      // Subscribers through the connection that announced it: an isolated connection's resource
      // is not another session's or principal's, even under the same URI.
      for (const id of upstream.subscribersOf(uri)) {
        const s = this.#sessions.get(id);
        if (!s || !s.view.includes(upstream) || !reaches(audience, s)) continue;
        s.deliverResourceUpdated(upstream, n);
      }
      return;
    }
    for (const s of this.#sessions.values()) {
      if (!s.initialized || !s.view.includes(upstream) || !reaches(audience, s)) continue;
      s.deliverNotification(n);
    }
  }

  #notifyAllListChanged(): void {
    for (const s of this.#sessions.values()) {
      if (!s.initialized || s.view.kind === 'single') continue;
      s.sendUnrelated({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
      s.sendUnrelated({ jsonrpc: '2.0', method: 'notifications/prompts/list_changed' });
      s.sendUnrelated({ jsonrpc: '2.0', method: 'notifications/resources/list_changed' });
    }
  }
}
