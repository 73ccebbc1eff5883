/**
 * Supervision of one upstream: its lifecycle state, restarts of a crashed `shared` child with
 * backoff (bounded by `restart.maxRetries`), and the health of a remote upstream (consecutive
 * transport failures mark it down; a `ping` probe runs until it answers, `health.ts`).
 *
 * @module
 */
import { isStdioServer, type ServerConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { CatalogCache } from './catalog.js';
import type { UpstreamConnection } from './connection.js';
import { createBackoff, type Backoff } from '../util/backoff.js';
import { UpstreamHealth } from './health.js';
import { PROBE_CONTEXT, SHARED_KEY, type ConnectionPool, type Slot } from './pool.js';
import type { TransportCloseInfo } from './transport.js';
import type { UpstreamState } from './types.js';

/** Options for {@link Supervisor}. */
export interface SupervisorOptions {
  config: ServerConfig;
  logger: Logger;
  now: () => number;
  pool: ConnectionPool;
  catalog: CatalogCache;
  /** Whether to track health (remote upstreams, except tunnelled ones: the tunnel hub watches those). */
  watchHealth: boolean;
  /** Sends one health probe (a `ping` through the call path, whose answer reaches {@link Supervisor.record}). */
  probe: () => Promise<unknown>;
  /**
   * The shared child runs on demand (`start: lazy`): when it exits it is not restarted; the state
   * becomes `idle` and the next request starts it (after the restart backoff). Default false.
   */
  onDemand?: boolean;
  /** Reports a state change. */
  onState: (state: UpstreamState, error: string | undefined) => void;
  /**
   * Runs the start again (stdio `session`/`user` isolation: a probe child that learns the
   * catalog); rejects when it fails, after reporting the failure through {@link Supervisor.startFailed}.
   */
  retryStart?: () => Promise<void>;
}

/** The lifecycle of one upstream's connections. */
export class Supervisor {
  readonly #options: SupervisorOptions;
  readonly #logger: Logger;
  readonly #pool: ConnectionPool;
  readonly #catalog: CatalogCache;
  #state: UpstreamState = 'starting';
  #lastError: string | undefined;
  #restartTimer: NodeJS.Timeout | undefined;
  #startRetryTimer: NodeJS.Timeout | undefined;
  #startBackoff: Backoff | undefined;
  #restarts = 0;
  /** Remote upstreams only: consecutive transport failures and the probe while down. */
  readonly #health: UpstreamHealth | undefined;

  constructor(options: SupervisorOptions) {
    this.#options = options;
    this.#logger = options.logger;
    this.#pool = options.pool;
    this.#catalog = options.catalog;
    const cfg = options.config;
    if (options.watchHealth && !isStdioServer(cfg)) {
      this.#health = new UpstreamHealth({
        failureThreshold: cfg.health.failureThreshold,
        probeIntervalMs: cfg.health.probeInterval,
        maxProbeIntervalMs: cfg.health.maxProbeInterval,
        probe: options.probe,
        onChange: (up, reason) => this.#onHealth(up, reason),
      });
      // An idle upstream that died is noticed by a probe, not by the next client's failed call.
      this.#health.watchIdle(() => this.#state === 'ready');
    }
  }

  /** Current lifecycle state. */
  get state(): UpstreamState {
    return this.#state;
  }

  /** Last start/crash error message, if any. */
  get lastError(): string | undefined {
    return this.#lastError;
  }

  /** Restart attempts since start: of a crashed shared child, or of a failed start (successful or not). */
  get restarts(): number {
    return this.#restarts;
  }

  /** Whether health is tracked (a remote upstream's calls must reach {@link record}). */
  get tracksHealth(): boolean {
    return this.#health !== undefined;
  }

  /** Sees a call's final answer (remote upstreams' health). */
  record(response: JsonRpcResponse): void {
    if (this.#health !== undefined) this.#health.record(response);
  }

  /** Changes the state and reports it (nothing when unchanged). */
  setState(state: UpstreamState, error?: string): void {
    if (this.#state === state) return;
    this.#state = state;
    this.#options.onState(state, error);
  }

  /**
   * The start failed: state `failed`; a shared child keeps retrying with backoff, a remote
   * upstream is probed until it answers.
   */
  startFailed(err: unknown, isolation: string): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
    this.setState('failed', this.#lastError);
    if (isolation === 'shared' && !this.#pool.stopped) this.#scheduleRestart(this.#pool.slots.get(SHARED_KEY));
    if ((isolation === 'session' || isolation === 'user') && !this.#pool.stopped) this.#scheduleStartRetry();
    // A remote upstream not reachable at start is probed until it answers.
    this.#health?.markDown(this.#lastError);
  }

  /**
   * A lazy server's start on demand failed: state `failed` with the error, no retry of its own
   * (the next request tries again; a start that succeeds makes it `ready`).
   */
  onDemandFailed(err: unknown): void {
    this.#lastError = err instanceof Error ? err.message : String(err);
    this.setState('failed', this.#lastError);
  }

  /** A connection's transport closed: a crashed shared child is restarted with backoff. */
  onClose(slot: Slot, conn: UpstreamConnection, info: TransportCloseInfo, isolation: string): void {
    if (slot.connection === conn) slot.connection = undefined;
    if (this.#pool.stopped || this.#pool.slots.get(slot.key) !== slot) return;
    // A connection that never opened (its probe or handshake failed): the failed start reports
    // the reason and schedules what follows; its close is not a crash.
    if (conn.era === undefined) return;
    if (info.sessionExpired) {
      this.#logger.info('upstream session expired; the next request re-initialises');
      return;
    }
    const why = info.error?.message ?? (info.signal ? `signal ${info.signal}` : `exit code ${info.exitCode ?? '?'}`);
    this.#logger.warn({ exitCode: info.exitCode, signal: info.signal, err: info.error }, 'upstream connection closed');
    slot.notBefore = this.#options.now() + slot.backoff.next();
    if (slot.key === SHARED_KEY && isolation === 'shared' && this.#options.onDemand === true) {
      this.#lastError = why;
      this.setState('idle', why);
      return;
    }
    if (slot.key === SHARED_KEY && isolation === 'shared') {
      this.#lastError = why;
      this.setState('restarting', why);
      this.#scheduleRestart(slot);
    }
  }

  /** Stops restarts and probes. */
  stop(): void {
    this.#health?.stop();
    if (this.#restartTimer) clearTimeout(this.#restartTimer);
    if (this.#startRetryTimer) clearTimeout(this.#startRetryTimer);
  }

  /**
   * A failed start of `session`/`user` isolation is tried again after the `restart` policy's
   * backoff (jittered, capped at `restart.maxDelay`), until it succeeds or `restart.maxRetries`
   * (when > 0) attempts failed.
   */
  #scheduleStartRetry(): void {
    const retry = this.#options.retryStart;
    const cfg = this.#options.config;
    if (retry === undefined || !isStdioServer(cfg) || this.#startRetryTimer) return;
    this.#startBackoff ??= createBackoff({
      initialDelayMs: cfg.restart.initialDelay,
      maxDelayMs: cfg.restart.maxDelay,
    });
    const backoff = this.#startBackoff;
    if (cfg.restart.maxRetries > 0 && backoff.attempts >= cfg.restart.maxRetries) {
      this.setState('failed', `gave up after ${cfg.restart.maxRetries} start attempts: ${this.#lastError ?? ''}`);
      return;
    }
    this.#startRetryTimer = setTimeout(() => {
      this.#startRetryTimer = undefined;
      if (this.#pool.stopped) return;
      this.#restarts++;
      retry().then(
        () => backoff.reset(),
        // startFailed() ran inside the retry and scheduled the next one.
        (err: unknown) => this.#logger.warn({ err }, 'upstream start failed again; retrying with backoff'),
      );
    }, backoff.next());
    this.#startRetryTimer.unref();
  }

  #scheduleRestart(slot: Slot | undefined): void {
    if (this.#pool.stopped || this.#restartTimer) return;
    const s = slot ?? this.#pool.slotFor({ sessionId: SHARED_KEY, principalId: SHARED_KEY }, true);
    const cfg = this.#options.config;
    const maxRetries = isStdioServer(cfg) ? cfg.restart.maxRetries : 0;
    if (maxRetries > 0 && s.backoff.attempts > maxRetries) {
      this.setState('failed', `gave up after ${maxRetries} restarts`);
      return;
    }
    const delay = Math.max(0, s.notBefore - this.#options.now());
    this.#restartTimer = setTimeout(() => {
      this.#restartTimer = undefined;
      if (this.#pool.stopped) return;
      const live = s.connection && !s.connection.closed ? s.connection : undefined;
      // Every attempt counts, so a crash loop shows in `restarts` (not only the recoveries).
      this.#restarts++;
      const p = live ? Promise.resolve(live) : (s.starting ?? this.#pool.connect(s));
      p.then(
        async (conn) => {
          await this.#catalog.load(conn, undefined);
          this.setState('ready');
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

  /**
   * A remote upstream's health changed: down → state `failed` (`/readyz` 503,
   * `switchboard_upstream_up` 0); up again → `ready`, after loading the catalog when it was never
   * loaded (the upstream was unreachable at start; when that load fails, it is marked down again
   * and probing goes on).
   */
  #onHealth(up: boolean, reason: string | undefined): void {
    if (this.#pool.stopped) return;
    if (!up) {
      this.#lastError = reason ?? 'consecutive transport failures';
      this.#logger.warn(
        { failures: this.#health?.failures, err: this.#lastError },
        'upstream marked down; probing until it answers',
      );
      this.setState('failed', this.#lastError);
      return;
    }
    const ready = (): void => {
      if (this.#pool.stopped || this.#health?.down === true) return;
      this.#logger.info('upstream answers again; marked up');
      this.setState('ready');
    };
    if (this.#catalog.loaded) return ready();
    this.#pool
      .acquire(PROBE_CONTEXT)
      .then((conn) => this.#catalog.load(conn, undefined))
      .then(
        () => {
          this.#catalog.loaded = true;
          ready();
        },
        (err: unknown) => {
          this.#logger.warn({ err }, 'catalog load after recovery failed');
          // Keep probing: the next answer tries the catalog again.
          this.#health?.markDown(err instanceof Error ? err.message : String(err));
        },
      );
  }
}
