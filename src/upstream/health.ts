/**
 * Health of a remote upstream, from what its calls return: consecutive transport failures mark it
 * down, any answer marks it up. While it is down a cheap probe (an MCP `ping`, basic utilities
 * §Ping) runs with exponential backoff until the upstream answers again.
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
    const outcome = healthOutcome(response);
    if (outcome === 'answered') {
      if (this.#failures !== 0 || this.#down) this.#markUp();
      return;
    }
    if (outcome === 'neutral') return;
    this.#failures++;
    if (!this.#down && this.#failures >= this.#options.failureThreshold) {
      this.markDown((response as { error: { message: string } }).error.message);
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

  /** Stops probing for good (the upstream is being stopped). */
  stop(): void {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = undefined;
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
