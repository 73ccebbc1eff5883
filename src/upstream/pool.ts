/**
 * The connections of one upstream, one per slot, by isolation:
 * - `shared`: one connection for everyone (a stdio child multiplexed with id remapping);
 * - `session`: one stdio child per client session;
 * - `user`: one stdio child per principal;
 * - `principal` (remote HTTP/SSE upstreams): one upstream session per principal, independent of
 *   client sessions, re-initialised transparently when the upstream answers 404.
 *
 * A slot starts its connection on first use and after a crash waits for its backoff delay
 * (`notBefore`) before the next attempt; `session`/`user` children are bounded by
 * `maxProcesses` and reaped when idle. Restarts of the shared child are the supervisor's.
 *
 * @module
 */
import { ANONYMOUS } from '../auth/principal.js';
import type { RemoteServer, ServerConfig, StdioServer } from '../config/schema.js';
import { isStdioServer, remoteTransport } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { DestinationPolicy } from '../policy/destinations.js';
import type { JsonRpcNotification } from '../protocol/jsonrpc.js';
import { createBackoff } from '../util/backoff.js';
import { childEnvironment } from './child-env.js';
import { UpstreamConnection } from './connection.js';
import type { ConnectionBinding, OutboundHeaders } from './dispatch.js';
import { createSseTransport } from './sse-transport.js';
import { createStdioTransport } from './stdio-transport.js';
import { createStreamableHttpTransport } from './streamable-http-transport.js';
import type { MessageTransport, TransportCloseInfo } from './transport.js';
import type { Audience, SlotContext, UpstreamOptions } from './types.js';
import type { UpstreamEra, UpstreamProtocol } from './era-probe.js';

/** One connection place of an upstream: the shared one, a session's or a principal's. */
export interface Slot extends ConnectionBinding {
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
  readonly audience: Audience;
}

/** The isolation of an upstream's connections (`principal`: a remote upstream). */
export type Isolation = 'shared' | 'session' | 'user' | 'principal';

/** The key of the `shared` slot. */
export const SHARED_KEY = '*';
/** The slot context of the start-up connection and of health probes (the anonymous principal). */
export const PROBE_CONTEXT: SlotContext = { sessionId: '__probe__', principalId: ANONYMOUS.id };
const EMPTY_HEADERS: OutboundHeaders = Object.freeze({});

/** Options for {@link ConnectionPool}: the upstream's and the callbacks of its connections. */
export interface ConnectionPoolOptions extends Pick<
  UpstreamOptions,
  | 'name'
  | 'config'
  | 'gatewayVersion'
  | 'attributionWaitMs'
  | 'forbiddenEnv'
  | 'destinations'
  | 'createTransport'
  | 'connectHeaders'
> {
  logger: Logger;
  now: () => number;
  isolation: Isolation;
  /** A slot's connection opened (`initialize`, or `server/discover` for a modern upstream). */
  onConnected: (slot: Slot, conn: UpstreamConnection) => void;
  /** A connection received a notification without a related request. */
  onNotification: (slot: Slot, conn: UpstreamConnection, n: JsonRpcNotification) => void;
  /** A connection's transport closed. */
  onClose: (slot: Slot, conn: UpstreamConnection, info: TransportCloseInfo) => void;
  /** A slot was closed for good (its session ended, idle, or the pool stopped). Optional. */
  onSlotClosed?: (slot: Slot) => void;
}

/** The slots of one upstream and the connections they hold. */
export class ConnectionPool {
  readonly slots = new Map<string, Slot>();
  readonly #options: ConnectionPoolOptions;
  readonly #name: string;
  readonly #config: ServerConfig;
  readonly #isolation: Isolation;
  readonly #logger: Logger;
  readonly #now: () => number;
  readonly #destinations: DestinationPolicy | undefined;
  #stopped = false;
  /**
   * The era the last connection found (basic/versioning: the era is a property of the server,
   * cached for its configuration): later connections open in it (`legacy`: `initialize` without a
   * probe; `modern`: `server/discover` without fallback); a connection that fails to open forgets
   * it, so the next one probes.
   */
  #era: UpstreamEra | undefined;

  constructor(options: ConnectionPoolOptions) {
    this.#options = options;
    this.#name = options.name;
    this.#config = options.config;
    this.#isolation = options.isolation;
    this.#logger = options.logger;
    this.#now = options.now;
    this.#destinations = options.destinations;
  }

  /** The era the upstream was found to speak (undefined before the first connection opened). */
  get era(): UpstreamEra | undefined {
    return this.#era;
  }

  /**
   * How the next connection opens: the cached era, else the `protocol` setting. The deprecated
   * HTTP+SSE transport exists in the 2025 era only: `auto` opens it with `initialize` at once.
   */
  #protocol(): UpstreamProtocol {
    const configured = this.#config.protocol ?? 'auto';
    if (configured !== 'auto') return configured;
    if (!isStdioServer(this.#config) && remoteTransport(this.#config) === 'sse') return 'legacy';
    return this.#era ?? 'auto';
  }

  /** Whether {@link stop} was called. */
  get stopped(): boolean {
    return this.#stopped;
  }

  /** Number of live connections (children for stdio). */
  get connectionCount(): number {
    let n = 0;
    for (const s of this.slots.values()) if (s.connection && !s.connection.closed) n++;
    return n;
  }

  /** The live connection of a `shared` upstream, if any (no slot bookkeeping needed for it). */
  #sharedLive(): UpstreamConnection | undefined {
    if (this.#isolation !== 'shared' || this.#stopped) return undefined;
    const conn = this.slots.get(SHARED_KEY)?.connection;
    return conn !== undefined && !conn.closed ? conn : undefined;
  }

  /**
   * The caller's live connection without a promise (the hot path), with the bookkeeping of
   * {@link acquire}; undefined when it has to be started or waited for (then call `acquire`).
   */
  liveFor(ctx: SlotContext): UpstreamConnection | undefined {
    if (this.#isolation === 'shared') return this.#sharedLive();
    if (this.#stopped) return undefined;
    const slot = this.slotFor(ctx, false);
    const conn = slot?.connection;
    if (conn === undefined || conn.closed) return undefined;
    slot!.lastUsed = this.#now();
    if (this.#isolation === 'session' || this.#isolation === 'user') slot!.sessions.add(ctx.sessionId);
    return conn;
  }

  /**
   * Returns the connection for a caller, starting it when needed.
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_PROCESS_LIMIT` when `maxProcesses` children are busy,
   *   `SWB_ERR_UPSTREAM_UNAVAILABLE` when it cannot start
   */
  async acquire(ctx: SlotContext): Promise<UpstreamConnection> {
    if (this.#stopped) throw new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `upstream "${this.#name}" is stopped`);
    const slot = this.slotFor(ctx, true);
    slot.lastUsed = this.#now();
    if (this.#isolation === 'session' || this.#isolation === 'user') slot.sessions.add(ctx.sessionId);
    const conn = slot.connection;
    if (conn && !conn.closed) return conn;
    return slot.starting ?? this.connect(slot);
  }

  /**
   * Stops idle connections of `session`/`user` isolation: no session attached, no request in
   * flight, unused for `idleTimeout`. Returns how many were reaped.
   */
  reapIdle(): number {
    if (!isStdioServer(this.#config) || this.#isolation === 'shared') return 0;
    const idleMs = this.#config.idleTimeout;
    const now = this.#now();
    let reaped = 0;
    for (const slot of [...this.slots.values()]) {
      const conn = slot.connection;
      const busy = conn !== undefined && conn.inFlight > 0;
      const attached = slot.sessions.size > 0;
      if (!busy && !attached && now - slot.lastUsed >= idleMs) {
        this.closeSlot(slot, 'idle');
        reaped++;
      }
    }
    return reaped;
  }

  /** The slot of a caller by isolation; created (bounded by `maxProcesses`) when `create`. */
  slotFor(ctx: SlotContext, create: true): Slot;
  slotFor(ctx: SlotContext, create: false): Slot | undefined;
  slotFor(ctx: SlotContext, create: boolean): Slot | undefined {
    const key =
      this.#isolation === 'session' ? ctx.sessionId : this.#isolation === 'shared' ? SHARED_KEY : ctx.principalId;
    let slot = this.slots.get(key);
    if (slot || !create) return slot;
    if ((this.#isolation === 'session' || this.#isolation === 'user') && isStdioServer(this.#config)) {
      const max = this.#config.maxProcesses;
      if (this.slots.size >= max) {
        this.reapIdle();
        if (this.slots.size >= max) {
          throw new GatewayError(
            'SWB_ERR_UPSTREAM_PROCESS_LIMIT',
            `upstream "${this.#name}" already runs maxProcesses=${max} children (isolation: ${this.#isolation}); try again later or raise maxProcesses`,
          );
        }
      }
    }
    const restart = isStdioServer(this.#config) ? this.#config.restart : { initialDelay: 250, maxDelay: 30_000 };
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
      principal: ctx.principal,
      // A connection held for one session or principal speaks for that one only (a remote
      // upstream's connection is per principal: its notifications are that principal's).
      audience:
        this.#isolation === 'session'
          ? { kind: 'session', id: key }
          : this.#isolation === 'shared'
            ? { kind: 'all' }
            : { kind: 'principal', id: key },
    };
    this.slots.set(key, slot);
    return slot;
  }

  /** Starts the slot's connection (one attempt; concurrent callers share it). */
  connect(slot: Slot): Promise<UpstreamConnection> {
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
    const destinations = this.#destinations;
    if (destinations !== undefined && !isStdioServer(this.#config)) {
      try {
        await destinations.check(this.#config.url);
        if (this.#config.auth?.type === 'oauth2-client-credentials')
          await destinations.check(this.#config.auth.tokenUrl);
        if (this.#config.auth?.type === 'token-exchange' && this.#config.auth.tokenEndpoint !== undefined)
          await destinations.check(this.#config.auth.tokenEndpoint);
      } catch (err) {
        slot.notBefore = this.#now() + slot.backoff.next();
        throw err;
      }
    }
    if (this.#options.connectHeaders) {
      // The connection is made for the slot's principal; initialize and the GET stream carry its credential.
      slot.authHeaders = await this.#options.connectHeaders(slot.principal);
    }
    const transport = this.#options.createTransport?.(logger) ?? this.#createTransport(logger, slot);
    const protocol = this.#protocol();
    const conn: UpstreamConnection = new UpstreamConnection(transport, {
      protocol,
      name: this.#name,
      logger,
      requestTimeoutMs: this.#config.timeout ?? 60_000,
      initializeTimeoutMs: this.#config.initializeTimeout,
      exclusiveAttribution:
        isStdioServer(this.#config) || (!isStdioServer(this.#config) && remoteTransport(this.#config) === 'sse'),
      attributionWaitMs: this.#options.attributionWaitMs,
      gatewayVersion: this.#options.gatewayVersion,
      onNotification: (n) => this.#options.onNotification(slot, conn, n),
      onClose: (info) => this.#options.onClose(slot, conn, info),
    });
    try {
      await conn.open();
    } catch (err) {
      if (protocol !== (this.#config.protocol ?? 'auto'))
        this.#era = undefined; // re-probe next time
      // An upstream that closed on the probe is not modern (transports/stdio §Backward
      // Compatibility: anything but a DiscoverResult or a modern error): next time, initialize.
      else if (protocol === 'auto' && err instanceof GatewayError && err.data?.closedByProbe === true)
        this.#era = 'legacy';
      slot.notBefore = this.#now() + slot.backoff.next();
      await conn.close().catch(() => undefined);
      throw err instanceof GatewayError
        ? err
        : new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `upstream "${this.#name}": ${String(err)}`, { cause: err });
    }
    // The slot may have been closed while this connection started (its session ended, or the
    // upstream stopped): nothing would ever release the connection, so it is closed now.
    if (this.#stopped || this.slots.get(slot.key) !== slot) {
      await conn.close().catch(() => undefined);
      throw new GatewayError(
        'SWB_ERR_UPSTREAM_CLOSED',
        `upstream "${this.#name}": the connection's session ended while it was starting`,
      );
    }
    slot.connection = conn;
    slot.backoff.reset();
    this.#era = conn.era;
    this.#options.onConnected(slot, conn);
    logger.info({ transport: transport.description, era: conn.era }, 'upstream connected');
    // Re-establish subscriptions after a reconnect (a modern upstream's are its listen request's).
    if (conn.era !== 'modern')
      for (const uri of slot.subscriptions.keys()) void conn.request('resources/subscribe', { uri }).response;
    return conn;
  }

  #createTransport(logger: Logger, slot: Slot): MessageTransport {
    const cfg = this.#config;
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
    const lookup = this.#destinations?.lookup;
    const common = { url: r.url, headers: r.headers, dynamicHeaders, logger, ...(lookup ? { lookup } : {}) };
    if (remoteTransport(r) === 'sse') return createSseTransport(common);
    return createStreamableHttpTransport(common);
  }

  /** Stops handing out a connection that is closing (its transport may not have said so yet). */
  forget(conn: UpstreamConnection): void {
    for (const slot of this.slots.values()) if (slot.connection === conn) slot.connection = undefined;
    conn.close().catch((err: unknown) => this.#logger.debug({ err }, 'close failed'));
  }

  /** Removes a slot and closes its connection. */
  closeSlot(slot: Slot, why: string): void {
    this.slots.delete(slot.key);
    this.#options.onSlotClosed?.(slot);
    const conn = slot.connection;
    slot.connection = undefined;
    if (conn) {
      this.#logger.info({ slot: slot.key, why }, 'stopping upstream connection');
      conn.close().catch((err: unknown) => this.#logger.warn({ err }, 'close failed'));
    }
  }

  /** Stops every connection; nothing is handed out afterwards. */
  async stop(): Promise<void> {
    this.#stopped = true;
    const closing = [...this.slots.values()].flatMap((s) => (s.connection ? [s.connection.close()] : []));
    for (const slot of this.slots.values()) this.#options.onSlotClosed?.(slot);
    this.slots.clear();
    await Promise.allSettled(closing);
  }
}
