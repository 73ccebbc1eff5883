/**
 * Health of a remote upstream, from what its calls return: consecutive transport failures mark it
 * down, any answer marks it up. While it is down a cheap probe (an MCP `ping`, basic utilities
 * §Ping) runs with exponential backoff until the upstream answers again; while it is up but
 * idle, the same probe runs every probe interval so a death without traffic is noticed too.
 *
 * Only transport failures count: the network (refused, reset, DNS), a timeout, a closed
 * connection, or an HTTP status of 500 or more. Everything the upstream actually answered — a
 * result, a JSON-RPC error, an HTTP 4xx such as 401 — proves it is reachable. The gateway's own
 * refusals (credentials it could not get, concurrency limits, cancellation) count neither way.
 *
 * @module
 */
import type { JsonRpcResponse } from '../protocol/jsonrpc.js';
import { createBackoff } from '../util/backoff.js';

/** Options of {@link UpstreamHealth}. Durations in milliseconds. */
export interface UpstreamHealthOptions {
  /** Consecutive transport failures that mark the upstream down (≥ 1). */
  failureThreshold: number;
  /** First delay before a probe while down; doubles per failed probe. */
  probeIntervalMs: number;
  /** Cap of the delay between probes. */
  maxProbeIntervalMs: number;
  /**
   * Sends one probe. Its answer must reach {@link UpstreamHealth.record} (the upstream sends it
   * through the same path as every call); the returned promise only tells when it is over.
   */
  probe: () => Promise<unknown>;
  /** Called on each transition: `up` false with the last failure's message, then true when it answers. */
  onChange: (up: boolean, reason: string | undefined) => void;
}

/** `error.data` of the gateway's own upstream errors (see `src/errors.ts`). */
interface ErrorData {
  code?: unknown;
  status?: unknown;
  upstreamError?: { data?: { code?: unknown; status?: unknown } };
}

/** What one call's response says about the upstream's reachability. */
export type HealthOutcome = 'answered' | 'failed' | 'neutral';

/**
 * Classifies a call's response:
 * - `failed`, a transport failure: `error.data.code` is `SWB_ERR_UPSTREAM_TIMEOUT`,
 *   `SWB_ERR_UPSTREAM_CLOSED`, `SWB_ERR_UPSTREAM_UNAVAILABLE` (unless it wraps an HTTP answer below
 *   500, e.g. a 401 to `initialize`) or `SWB_ERR_UPSTREAM_HTTP` with `data.status` ≥ 500;
 * - `answered`: a result, the upstream's own JSON-RPC error, an HTTP status below 500, a lost
 *   session (404) or a malformed answer (`SWB_ERR_UPSTREAM_PROTOCOL`): the upstream was reached;
 * - `neutral`: the gateway's own refusals that never reached the upstream (credentials,
 *   concurrency and process limits, cancellation): they say nothing either way.
 */
export function healthOutcome(response: JsonRpcResponse): HealthOutcome {
  if (!('error' in response)) return 'answered';
  if (response.error.code === REQUEST_CANCELLED) return 'neutral';
  const data = response.error.data as ErrorData | undefined;
  const code = data?.code;
  switch (code) {
    case 'SWB_ERR_UPSTREAM_TIMEOUT':
    case 'SWB_ERR_UPSTREAM_CLOSED':
      return 'failed';
    case 'SWB_ERR_UPSTREAM_HTTP':
      return typeof data?.status === 'number' && data.status < 500 ? 'answered' : 'failed';
    case 'SWB_ERR_UPSTREAM_UNAVAILABLE': {
      const inner = data?.upstreamError?.data;
      if (inner?.code === 'SWB_ERR_UPSTREAM_HTTP' && typeof inner.status === 'number' && inner.status < 500)
        return 'answered';
      return 'failed';
    }
    case 'SWB_ERR_UPSTREAM_PROTOCOL':
    case 'SWB_ERR_UPSTREAM_SESSION_EXPIRED':
      return 'answered';
    default:
      return typeof code === 'string' && code.startsWith('SWB_ERR_') ? 'neutral' : 'answered';
  }
}

/** Delay before repeating an idle probe that failed, ms (1 s). */
export const IDLE_RETRY_MS = 1000;

/** JSON-RPC code of a request cancelled before it was answered. */
const REQUEST_CANCELLED = -32800;

/** Tracks one remote upstream's health; see the module comment. */
export class UpstreamHealth {
  readonly #options: UpstreamHealthOptions;
  readonly #backoff: ReturnType<typeof createBackoff>;
  #failures = 0;
  #down = false;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;
  /** When the last call or probe was recorded, ms on the monotonic clock. */
  #lastRecordAt = performance.now();
  #idleTimer: NodeJS.Timeout | undefined;
  #active: (() => boolean) | undefined;

  constructor(options: UpstreamHealthOptions) {
    this.#options = options;
    this.#backoff = createBackoff({
      initialDelayMs: options.probeIntervalMs,
      maxDelayMs: Math.max(options.probeIntervalMs, options.maxProbeIntervalMs),
    });
  }

  /** True while the upstream is marked down. */
  get down(): boolean {
    return this.#down;
  }

  /** Consecutive transport failures so far (0 after any answer). */
  get failures(): number {
    return this.#failures;
  }

  /**
   * Counts the outcome of one call or probe. O(1), no allocation on a success while up (the hot
   * path).
   */
  record(response: JsonRpcResponse): void {
    this.#lastRecordAt = performance.now();
    const outcome = healthOutcome(response);
    if (outcome === 'answered') {
      if (this.#failures !== 0 || this.#down) this.#markUp();
      return;
    }
    if (outcome === 'neutral') return;
    this.#failures++;
    if (!this.#down && this.#failures >= this.#options.failureThreshold) {
      this.markDown((response as { error: { message: string } }).error.message);
    } else if (!this.#down && this.#active !== undefined) {
      // A failure while up: the idle watch probes again soon rather than after a whole interval.
      if (this.#idleTimer) clearTimeout(this.#idleTimer);
      this.#idleTimer = undefined;
      this.#scheduleIdle(Math.min(IDLE_RETRY_MS, this.#options.probeIntervalMs));
    }
  }

  /** Marks the upstream down at once (e.g. it could not be reached at start) and starts probing. */
  markDown(reason: string | undefined): void {
    if (this.#stopped || this.#down) return;
    this.#down = true;
    this.#backoff.reset();
    this.#options.onChange(false, reason);
    this.#schedule();
  }

  /**
   * Watches an upstream that is up but idle, so one that died without traffic is noticed (and
   * `/readyz` tells the truth): every `probeIntervalMs` in which no call was recorded, while
   * `active()` is true (the upstream is ready), a probe is sent once `probeIntervalMs` passed
   * without a recorded call. A failed idle probe is repeated after {@link IDLE_RETRY_MS} until
   * the upstream answers or `failureThreshold` consecutive failures mark it down, so an idle
   * upstream that dies is marked down within about `probeIntervalMs + (failureThreshold − 1) ×
   * IDLE_RETRY_MS` of its last call, plus the probes' own time.
   */
  watchIdle(active: () => boolean): void {
    this.#active = active;
    this.#scheduleIdle(this.#options.probeIntervalMs);
  }

  /** Stops probing for good (the upstream is being stopped). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (this.#idleTimer) clearTimeout(this.#idleTimer);
    this.#idleTimer = undefined;
  }

  #scheduleIdle(delayMs: number): void {
    if (this.#stopped || this.#idleTimer) return;
    this.#idleTimer = setTimeout(() => {
      this.#idleTimer = undefined;
      if (this.#stopped) return;
      const interval = this.#options.probeIntervalMs;
      const quietMs = performance.now() - this.#lastRecordAt;
      // Busy: look again one interval after the last call — unless the last calls failed, which
      // a probe confirms or refutes now. Down: markDown()'s probes run instead.
      if (this.#failures === 0 && quietMs < interval) return this.#scheduleIdle(interval - quietMs);
      if (this.#down || this.#active?.() !== true) return this.#scheduleIdle(interval);
      this.#options
        .probe()
        .catch(() => undefined)
        // A failed probe's answer (recorded above) has already brought the next check forward.
        .finally(() => this.#scheduleIdle(interval));
    }, delayMs);
    // Watching never keeps the process alive on its own.
    this.#idleTimer.unref();
  }

  #markUp(): void {
    this.#failures = 0;
    if (!this.#down) return;
    this.#down = false;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
    if (!this.#stopped) this.#options.onChange(true, undefined);
  }

  #schedule(): void {
    if (this.#stopped || this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      if (this.#stopped || !this.#down) return;
      this.#options
        .probe()
        .catch(() => undefined)
        .finally(() => {
          if (this.#down) this.#schedule();
        });
    }, this.#backoff.next());
    // Probing never keeps the process alive on its own.
    this.#timer.unref();
  }
}
