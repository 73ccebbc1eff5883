/**
 * Exponential backoff with jitter, shared by the stdio supervisor (restart after a crash), the
 * HTTP transports (reconnecting SSE streams), the tunnel client (reconnecting to the gateway) and
 * OAuth discovery (retrying the authorization server's metadata).
 *
 * @module
 */

/** Options for {@link createBackoff}. All delays are in milliseconds. */
export interface BackoffOptions {
  /** Delay returned by the first `next()` (before jitter). Must be ≥ 0. */
  initialDelayMs: number;
  /** Upper bound of every returned delay, jitter included. Must be ≥ `initialDelayMs`. */
  maxDelayMs: number;
  /** Growth factor between consecutive delays. Must be ≥ 1. Default 2. */
  factor?: number;
  /**
   * Relative jitter in [0, 1]: each delay is drawn uniformly from `base × (1 ± jitter)` so that
   * many clients retrying at once spread out. Default 0.2 (±20 %).
   */
  jitter?: number;
  /** Source of randomness in [0, 1); injectable for deterministic tests. Default `Math.random`. */
  random?: () => number;
}

/** A backoff sequence: each `next()` returns the delay to wait before the next attempt. */
export interface Backoff {
  /** Returns the next delay in milliseconds (an integer in [0, maxDelayMs]) and counts an attempt. */
  next(): number;
  /** Starts over from `initialDelayMs` (call after a success). */
  reset(): void;
  /** Number of `next()` calls since creation or the last `reset()`. */
  readonly attempts: number;
}

/**
 * Creates an exponential backoff: `initialDelayMs × factor^n`, capped at `maxDelayMs`, with
 * uniform ± `jitter` applied and the result capped again.
 *
 * @throws RangeError when an option is out of range (negative delays, `maxDelayMs <
 *   initialDelayMs`, `factor < 1`, `jitter` outside [0, 1]).
 */
export function createBackoff(options: BackoffOptions): Backoff {
  const { initialDelayMs, maxDelayMs, factor = 2, jitter = 0.2, random = Math.random } = options;
  if (!(initialDelayMs >= 0) || !Number.isFinite(initialDelayMs)) {
    throw new RangeError(`initialDelayMs must be a finite number >= 0, got ${initialDelayMs}`);
  }
  if (!(maxDelayMs >= initialDelayMs) || !Number.isFinite(maxDelayMs)) {
    throw new RangeError(`maxDelayMs must be a finite number >= initialDelayMs, got ${maxDelayMs}`);
  }
  if (!(factor >= 1) || !Number.isFinite(factor)) throw new RangeError(`factor must be >= 1, got ${factor}`);
  if (!(jitter >= 0 && jitter <= 1)) throw new RangeError(`jitter must be within [0, 1], got ${jitter}`);

  let attempts = 0;
  // The un-jittered delay of the next attempt; grown multiplicatively and capped, so it never
  // overflows however many attempts are made.
  let base = initialDelayMs;
  return {
    next(): number {
      attempts++;
      const spread = jitter === 0 ? 1 : 1 + jitter * (2 * random() - 1);
      const delay = Math.min(maxDelayMs, Math.max(0, Math.round(base * spread)));
      base = Math.min(maxDelayMs, base * factor);
      return delay;
    },
    reset(): void {
      attempts = 0;
      base = initialDelayMs;
    },
    get attempts(): number {
      return attempts;
    },
  };
}
