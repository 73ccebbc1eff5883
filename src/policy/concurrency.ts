/**
 * Per-upstream concurrency (config `maxInFlight`, `maxQueue`,
 * `queueTimeout` on a server).
 *
 * At most `maxInFlight` requests hold a slot at once; up to `maxQueue` more wait, first come
 * first served, for at most `queueTimeoutMs` each. Anything beyond is refused at once with
 * `SWB_ERR_UPSTREAM_BUSY` (503), so a slow upstream sheds load instead of piling up memory
 * (every queue the gateway keeps has a bound).
 *
 * A free slot is taken synchronously — `acquire()` returns the release function itself, no
 * promise — so an idle upstream costs the hot path one counter increment. A released slot passes
 * straight to the longest waiter, so a stream of new arrivals can never overtake the queue.
 *
 * @module
 */
import { GatewayError } from '../errors.js';

/** Gives a slot back. Calling it more than once is harmless: only the first call counts. */
export type Release = () => void;

/** Timers used for the queue timeout; injectable for tests. */
export interface TimerClock {
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

/** Options for {@link createConcurrencyLimiter}. */
export interface ConcurrencyLimiterOptions {
  /** Most requests holding a slot at once; an integer ≥ 1 (server `maxInFlight`). */
  maxInFlight: number;
  /** Most requests waiting for a slot; an integer ≥ 0 (server `maxQueue`, default 100). 0: never wait. */
  maxQueue: number;
  /**
   * Longest wait for a slot, in milliseconds (server `queueTimeout`, default 30000). 0: never wait
   * (same as `maxQueue: 0`).
   */
  queueTimeoutMs: number;
  /** The server's name, for error messages and `error.data.server`. */
  name?: string | undefined;
  /** Timers for the queue timeout. Default: the global `setTimeout` (unref'd) / `clearTimeout`. */
  clock?: TimerClock | undefined;
}

/** A slot counter with a bounded FIFO wait queue. */
export interface ConcurrencyLimiter {
  /**
   * Takes a slot.
   *
   * @param signal - aborting it while waiting leaves the queue and rejects with the signal's
   *   reason (e.g. the client cancelled the request or went away).
   * @returns the {@link Release} function itself when a slot is free (synchronously), otherwise a
   *   promise of it, resolved in arrival order as slots are released.
   * @throws GatewayError `SWB_ERR_UPSTREAM_BUSY` (503), synchronously, when no slot is free and
   *   the queue is full (`data.reason: 'queue_full'`); the promise rejects with the same code
   *   when the wait exceeds `queueTimeoutMs` (`data.reason: 'queue_timeout'`). An already aborted
   *   `signal` throws its reason.
   */
  acquire(signal?: AbortSignal): Promise<Release> | Release;
  /** Slots currently held. */
  readonly inFlight: number;
  /** Requests currently waiting. */
  readonly queued: number;
}

const REAL_TIMERS: TimerClock = {
  setTimeout(callback, ms) {
    const t = setTimeout(callback, ms);
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

/**
 * Creates a {@link ConcurrencyLimiter} for one upstream.
 *
 * @throws RangeError when `maxInFlight` is not an integer ≥ 1, `maxQueue` not an integer ≥ 0, or
 *   `queueTimeoutMs` not a finite number ≥ 0.
 */
export function createConcurrencyLimiter(options: ConcurrencyLimiterOptions): ConcurrencyLimiter {
  const { maxInFlight, maxQueue, queueTimeoutMs } = options;
  if (!Number.isInteger(maxInFlight) || maxInFlight < 1) {
    throw new RangeError(`maxInFlight must be an integer >= 1, got ${maxInFlight}`);
  }
  if (!Number.isInteger(maxQueue) || maxQueue < 0) {
    throw new RangeError(`maxQueue must be an integer >= 0, got ${maxQueue}`);
  }
  if (!Number.isFinite(queueTimeoutMs) || queueTimeoutMs < 0) {
    throw new RangeError(`queueTimeoutMs must be a finite number >= 0, got ${queueTimeoutMs}`);
  }
  return new SlotLimiter(options);
}

/** One request waiting for a slot: a node of the doubly linked FIFO. */
interface Waiter {
  resolve: (release: Release) => void;
  reject: (reason: unknown) => void;
  timer: unknown;
  signal: AbortSignal | undefined;
  onAbort: (() => void) | undefined;
  prev: Waiter | undefined;
  next: Waiter | undefined;
}

class SlotLimiter implements ConcurrencyLimiter {
  readonly #maxInFlight: number;
  readonly #maxQueue: number;
  readonly #queueTimeoutMs: number;
  readonly #name: string | undefined;
  readonly #clock: TimerClock;
  #inFlight = 0;
  #queued = 0;
  #head: Waiter | undefined;
  #tail: Waiter | undefined;

  constructor(options: ConcurrencyLimiterOptions) {
    this.#maxInFlight = options.maxInFlight;
    // A zero timeout means "do not wait": the same as an empty queue.
    this.#maxQueue = options.queueTimeoutMs === 0 ? 0 : options.maxQueue;
    this.#queueTimeoutMs = options.queueTimeoutMs;
    this.#name = options.name;
    this.#clock = options.clock ?? REAL_TIMERS;
  }

  get inFlight(): number {
    return this.#inFlight;
  }

  get queued(): number {
    return this.#queued;
  }

  acquire(signal?: AbortSignal): Promise<Release> | Release {
    if (signal?.aborted) throw signal.reason;
    // Slots only free up through #release, which serves the queue first: a free slot means an
    // empty queue, so taking it here never overtakes a waiter.
    if (this.#inFlight < this.#maxInFlight) {
      this.#inFlight++;
      return this.#releaser();
    }
    if (this.#queued >= this.#maxQueue) {
      throw this.#busy(
        'queue_full',
        this.#maxQueue === 0
          ? `all ${this.#maxInFlight} slots are in use`
          : `all ${this.#maxInFlight} slots are in use and ${this.#maxQueue} requests are already waiting`,
      );
    }
    return new Promise<Release>((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: undefined,
        signal,
        onAbort: undefined,
        prev: this.#tail,
        next: undefined,
      };
      if (this.#tail) this.#tail.next = waiter;
      else this.#head = waiter;
      this.#tail = waiter;
      this.#queued++;
      waiter.timer = this.#clock.setTimeout(() => {
        this.#leave(waiter);
        reject(this.#busy('queue_timeout', `no slot became free within ${this.#queueTimeoutMs}ms`));
      }, this.#queueTimeoutMs);
      if (signal) {
        waiter.onAbort = () => {
          this.#leave(waiter);
          // An AbortSignal's reason is an Error (DOMException AbortError) unless the caller chose otherwise.
          reject(signal.reason as Error);
        };
        signal.addEventListener('abort', waiter.onAbort, { once: true });
      }
    });
  }

  #releaser(): Release {
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.#release();
    };
  }

  #release(): void {
    const next = this.#head;
    if (next === undefined) {
      this.#inFlight--;
      return;
    }
    // Hand the slot over: in-flight count unchanged.
    this.#leave(next);
    next.resolve(this.#releaser());
  }

  /** Unlinks a waiter and disarms its timer and abort listener. */
  #leave(w: Waiter): void {
    if (w.prev) w.prev.next = w.next;
    else this.#head = w.next;
    if (w.next) w.next.prev = w.prev;
    else this.#tail = w.prev;
    w.prev = w.next = undefined;
    this.#queued--;
    this.#clock.clearTimeout(w.timer);
    if (w.onAbort) w.signal?.removeEventListener('abort', w.onAbort);
  }

  #busy(reason: 'queue_full' | 'queue_timeout', detail: string): GatewayError {
    const who = this.#name === undefined ? 'upstream' : `upstream ${this.#name}`;
    return new GatewayError('SWB_ERR_UPSTREAM_BUSY', `${who} is busy: ${detail}`, {
      data: { reason, ...(this.#name === undefined ? {} : { server: this.#name }) },
    });
  }
}
