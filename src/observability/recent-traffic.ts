/**
 * Recent traffic per server for the admin API's server view (`stats`): requests and errors over
 * the last five minutes in 10-second buckets, and latency percentiles over the same window.
 *
 * Fed by the exchange observer (`app/observer.ts`) with the same per-request observation that
 * feeds `/metrics`, so it sits on the MCP hot path: {@link RecentTraffic.record} is O(1) and
 * allocates nothing once a server's series exists. Each series is a fixed ring of
 * {@link BUCKET_COUNT} buckets; a bucket holds its request and error counts and a latency
 * histogram of {@link LATENCY_BINS} log-scale bins (four per power of two, from
 * {@link LATENCY_MIN_MS}), so a percentile is within ±9 % of the true value. A bucket is cleared
 * when the ring comes round to it again; reading sums the buckets still inside the window.
 *
 * @module
 */

/** Width of one bucket, ms (10 s). */
export const BUCKET_MS = 10_000;
/** Buckets in the window (30 × 10 s = 5 minutes). */
export const BUCKET_COUNT = 30;
/** The window, s (300). */
export const WINDOW_SECONDS = (BUCKET_MS * BUCKET_COUNT) / 1000;
/** Lower bound of the latency histogram, ms: faster requests land in the first bin. */
export const LATENCY_MIN_MS = 0.05;
/** Bins per power of two of the latency histogram. */
const BINS_PER_OCTAVE = 4;
/** Latency bins per bucket: up to 0.05 ms × 2^(95/4) ≈ 12 minutes; slower requests land in the last. */
export const LATENCY_BINS = 96;
/** Default of {@link RecentTrafficOptions.maxSeries}. */
export const DEFAULT_MAX_SERIES = 1024;

/** One bucket of {@link TrafficStats.series}. */
export interface TrafficPoint {
  /** Start of the bucket, epoch ms. */
  readonly t: number;
  readonly requests: number;
  readonly errors: number;
}

/** A server's traffic over the window, as the admin API's server view shows it (`stats`). */
export interface TrafficStats {
  /** Length of the window, s (300). */
  readonly windowSeconds: number;
  readonly requests: number;
  /** Requests answered with an HTTP error status or a JSON-RPC error. */
  readonly errors: number;
  /** `errors / requests`, 0 without requests. */
  readonly errorRate: number;
  /** Requests per minute averaged over the window. */
  readonly ratePerMinute: number;
  /** Median latency (arrival to end of response), ms; null without requests. */
  readonly p50Ms: number | null;
  /** 95th percentile latency, ms; null without requests. */
  readonly p95Ms: number | null;
  /** The window's buckets, oldest first ({@link BUCKET_COUNT} of them, empty ones included). */
  readonly series: TrafficPoint[];
}

/** Options of {@link RecentTraffic}. */
export interface RecentTrafficOptions {
  /**
   * Series kept at most (one per server or endpoint label); observations for a further label are
   * not recorded. Default {@link DEFAULT_MAX_SERIES}.
   */
  readonly maxSeries?: number;
}

/** The ring of one server: parallel typed arrays indexed by bucket slot. */
class Series {
  /** Bucket number (`floor(t / BUCKET_MS)`) held by each slot; -1 when empty. */
  readonly epoch = new Float64Array(BUCKET_COUNT).fill(-1);
  readonly requests = new Uint32Array(BUCKET_COUNT);
  readonly errors = new Uint32Array(BUCKET_COUNT);
  /** `LATENCY_BINS` counts per slot. */
  readonly latency = new Uint32Array(BUCKET_COUNT * LATENCY_BINS);
}

/** The latency bin of `ms` (see the module comment). */
function binOf(ms: number): number {
  if (!(ms > LATENCY_MIN_MS)) return 0;
  const bin = Math.ceil(Math.log2(ms / LATENCY_MIN_MS) * BINS_PER_OCTAVE);
  return bin < LATENCY_BINS ? bin : LATENCY_BINS - 1;
}

/** The value reported for a bin: the geometric middle of its range, ms. */
function binValue(bin: number): number {
  if (bin === 0) return LATENCY_MIN_MS;
  return LATENCY_MIN_MS * 2 ** ((bin - 0.5) / BINS_PER_OCTAVE);
}

/** Rounds to 0.01 ms (the histogram is not more precise than that). */
function round(ms: number): number {
  return Math.round(ms * 100) / 100;
}

/** Per-server request counts and latencies over the last five minutes; see the module comment. */
export class RecentTraffic {
  readonly #series = new Map<string, Series>();
  readonly #maxSeries: number;

  constructor(options: RecentTrafficOptions = {}) {
    this.#maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
  }

  /**
   * Records one finished request. O(1); allocates only the first time a label is seen.
   *
   * @param server - the server's configured name (or the endpoint label when no server was resolved)
   * @param at - when the request arrived, epoch ms
   * @param latencyMs - arrival to end of response, ms
   * @param error - answered with an HTTP error status or a JSON-RPC error
   */
  record(server: string, at: number, latencyMs: number, error: boolean): void {
    let s = this.#series.get(server);
    if (s === undefined) {
      if (this.#series.size >= this.#maxSeries) return;
      s = new Series();
      this.#series.set(server, s);
    }
    const bucket = Math.floor(at / BUCKET_MS);
    const slot = bucket % BUCKET_COUNT;
    if (s.epoch[slot] !== bucket) {
      s.epoch[slot] = bucket;
      s.requests[slot] = 0;
      s.errors[slot] = 0;
      s.latency.fill(0, slot * LATENCY_BINS, (slot + 1) * LATENCY_BINS);
    }
    s.requests[slot]!++;
    if (error) s.errors[slot]!++;
    s.latency[slot * LATENCY_BINS + binOf(latencyMs)]!++;
  }

  /** Forgets a server's series (a server removed from the configuration). */
  delete(server: string): void {
    this.#series.delete(server);
  }

  /**
   * The server's traffic over the window ending in the bucket of `now`.
   *
   * @param now - epoch ms; default `Date.now()`
   */
  stats(server: string, now = Date.now()): TrafficStats {
    const s = this.#series.get(server);
    const last = Math.floor(now / BUCKET_MS);
    const first = last - BUCKET_COUNT + 1;
    const series: TrafficPoint[] = [];
    let requests = 0;
    let errors = 0;
    const bins = new Uint32Array(LATENCY_BINS);
    for (let bucket = first; bucket <= last; bucket++) {
      const slot = bucket % BUCKET_COUNT;
      const live = s !== undefined && s.epoch[slot] === bucket;
      const r = live ? s.requests[slot]! : 0;
      const e = live ? s.errors[slot]! : 0;
      series.push({ t: bucket * BUCKET_MS, requests: r, errors: e });
      requests += r;
      errors += e;
      if (live && r > 0) for (let b = 0; b < LATENCY_BINS; b++) bins[b]! += s.latency[slot * LATENCY_BINS + b]!;
    }
    return {
      windowSeconds: WINDOW_SECONDS,
      requests,
      errors,
      errorRate: requests === 0 ? 0 : errors / requests,
      ratePerMinute: requests / (WINDOW_SECONDS / 60),
      p50Ms: percentile(bins, requests, 0.5),
      p95Ms: percentile(bins, requests, 0.95),
      series,
    };
  }
}

/** The `q` quantile (0..1) of a histogram holding `total` observations, ms; null when empty. */
function percentile(bins: Uint32Array, total: number, q: number): number | null {
  if (total === 0) return null;
  const rank = Math.max(1, Math.ceil(q * total));
  let seen = 0;
  for (let b = 0; b < bins.length; b++) {
    seen += bins[b]!;
    if (seen >= rank) return round(binValue(b));
  }
  return round(binValue(bins.length - 1));
}
