/**
 * Prometheus metrics (prom-client) for `/metrics`: requests by server/method/status, gateway and
 * upstream latency histograms, sessions, upstream state, rate limiting, tool-list sizes and the usage log.
 *
 * **Hot path.** Per-request recording ({@link Metrics.recordRequest},
 * {@link Metrics.recordUpstreamCall}) and the counters that can fire on every request under
 * abuse or an outage (rate-limited, rate-limit store errors) never allocate:
 * each series is a pre-bound cell (a number, or a `Float64Array` of bucket counts plus a sum),
 * created once the first time its label combination is seen and found again through a `Map`
 * from server name to an array indexed by the method and status from fixed tables. Recording is
 * one `Map.get`, one table lookup and a few additions. prom-client's own `labels(...)` children
 * would still hash the label values and allocate on every `inc`/`observe` (measured ≈ 1.3–2 µs
 * and a minor GC every ~5 000 requests, against ≈ 40–80 ns and none here), so these families
 * implement prom-client's collector contract themselves (`get()` returning the same value
 * objects prom-client's Counter and Histogram produce) and the `Registry` formats them with
 * everything else. Gauges and the usage-log counters, read at scrape time or set on rare state
 * changes, are plain prom-client metrics.
 *
 * **Cardinality.** `server` is a configured server name (at most {@link MAX_SERVER_LABELS}
 * distinct values, then `(overflow)`; {@link Metrics.forgetServer} drops a removed server's
 * series), `method` one of {@link MCP_METHODS} or `other`, `status` one of
 * {@link REQUEST_STATUSES}.
 *
 * The parts: label tables (`metrics-labels.ts`), the allocation-free families
 * (`metrics-families.ts`), the per-server series (`metrics-servers.ts`), the rate-limit,
 * guardrail and stream-overflow counters (`metrics-limits.ts`) and the scrape-time sources
 * (`metrics-sources.ts`). This module puts them in one registry, in a fixed order.
 *
 * @module
 */
import { Registry, collectDefaultMetrics } from 'prom-client';
import { registerFamily } from './metrics-families.js';
import { createLimitMetrics, type LimitRecorders } from './metrics-limits.js';
import { createServerMetrics, type ServerRecorders } from './metrics-servers.js';
import { createSourceMetrics, type SourceSetters } from './metrics-sources.js';
import { createToolListMetrics, type ToolListRecorders } from './metrics-tool-lists.js';

export {
  DURATION_BUCKETS,
  GUARDRAIL_ACTIONS,
  MAX_SERVER_LABELS,
  MCP_METHODS,
  METRIC_PREFIX,
  OVERFLOW_SERVER_LABEL,
  REQUEST_STATUSES,
  methodLabel,
  requestStatus,
  type GuardrailAction,
  type MethodLabel,
  type RequestStatus,
} from './metrics-labels.js';
export type { UsageLogSource } from './metrics-sources.js';

/** Options for {@link createMetrics}. */
export interface MetricsOptions {
  /** Registry to register into. Default: a new, dedicated `Registry` (never prom-client's global one). */
  registry?: Registry;
  /**
   * Also export prom-client's default process and Node.js metrics (`process_cpu_seconds_total`,
   * `process_resident_memory_bytes`, `nodejs_eventloop_lag_seconds`, `nodejs_heap_size_used_bytes`
   * …), under their standard unprefixed names so stock dashboards work. Default `true`.
   */
  collectDefault?: boolean;
}

/**
 * The gateway's metrics: a registry plus typed recorders. Create one per process with
 * {@link createMetrics}; every recorder is safe to call on the hot path.
 */
export interface Metrics extends ServerRecorders, LimitRecorders, ToolListRecorders, SourceSetters {
  /** The registry holding every series below (and the process metrics, when enabled). */
  readonly registry: Registry;
  /** `Content-Type` for the `/metrics` response (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /** The exposition text for a `/metrics` response. */
  metricsText(): Promise<string>;
}

/**
 * Creates the metrics registry and its recorders (see the module comment for the hot-path
 * design and docs/observability.md for the series).
 *
 * @throws Error from prom-client when `options.registry` already holds a metric of the same
 *   name (e.g. two `createMetrics` on one registry, or default metrics collected twice).
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = options.registry ?? new Registry();
  const servers = createServerMetrics();
  const limits = createLimitMetrics();
  const toolLists = createToolListMetrics();
  // Registration order is the order `/metrics` lists the families in.
  for (const f of [
    servers.requests,
    servers.durations,
    servers.upstreamDurations,
    servers.restarts,
    limits.rateLimited,
    limits.storeErrors,
    servers.collisions,
    limits.overflows,
    limits.guardrailActions,
    toolLists.sent,
    toolLists.full,
  ])
    registerFamily(registry, f);
  const sources = createSourceMetrics(registry);
  registry.registerMetric(servers.upstreamUp);

  if (options.collectDefault ?? true) collectDefaultMetrics({ register: registry });

  return {
    registry,
    get contentType(): string {
      return registry.contentType;
    },
    ...servers.recorders,
    ...limits.recorders,
    ...toolLists.recorders,
    ...sources,

    metricsText(): Promise<string> {
      return registry.metrics();
    },
  };
}
