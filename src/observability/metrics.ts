/**
 * Prometheus metrics (prom-client) for `/metrics`: requests by server/method/status, gateway and
 * upstream latency histograms, sessions, upstream state, rate limiting and the usage log.
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
 * @module
 */
import { Counter, Gauge, Registry, collectDefaultMetrics, type Metric } from 'prom-client';

/** Prefix of every metric this module defines (process metrics keep their standard names). */
export const METRIC_PREFIX = 'switchboard_';

/**
 * Histogram buckets (seconds) for gateway and upstream durations: 0.5 ms to 30 s, roughly
 * ×2–2.5 per step, so both a sub-millisecond relay and a slow tool call land in a useful bucket.
 */
export const DURATION_BUCKETS: readonly number[] = Object.freeze([
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30,
]);

/**
 * The MCP methods that get their own `method` label value (MCP 2025-11-25 client→server
 * requests and notifications, the 2026-07-28 `server/discover`, and the server→client requests
 * whose answers a client POSTs back). Anything else is counted as `other`.
 */
export const MCP_METHODS = Object.freeze([
  'initialize',
  'ping',
  'tools/list',
  'tools/call',
  'prompts/list',
  'prompts/get',
  'resources/list',
  'resources/templates/list',
  'resources/read',
  'resources/subscribe',
  'resources/unsubscribe',
  'completion/complete',
  'logging/setLevel',
  'tasks/get',
  'tasks/result',
  'tasks/list',
  'tasks/cancel',
  'server/discover',
  'notifications/initialized',
  'notifications/cancelled',
  'notifications/progress',
  'notifications/roots/list_changed',
  'sampling/createMessage',
  'elicitation/create',
  'roots/list',
] as const);

/** A `method` label value: one of {@link MCP_METHODS} or `other`. */
export type MethodLabel = (typeof MCP_METHODS)[number] | 'other';

/**
 * `status` label values of `switchboard_requests_total`:
 * - `ok`: answered with a JSON-RPC result (or an accepted notification/response, HTTP 202);
 * - `error`: answered with a JSON-RPC error (HTTP 200, or an error sent on an SSE stream);
 * - `http_4xx` / `http_5xx`: the exchange ended with that HTTP status class before any JSON-RPC
 *   answer (401, 404 unknown session, 413, 429 …; 502/503/504).
 */
export const REQUEST_STATUSES = Object.freeze(['ok', 'error', 'http_4xx', 'http_5xx'] as const);

/** A `status` label value; see {@link REQUEST_STATUSES}. */
export type RequestStatus = (typeof REQUEST_STATUSES)[number];

/** Distinct `server` label values kept before new names are counted as `(overflow)`. */
export const MAX_SERVER_LABELS = 1000;

/** `server` label value used once {@link MAX_SERVER_LABELS} is reached. */
export const OVERFLOW_SERVER_LABEL = '(overflow)';

/**
 * Maps an exchange's outcome to its `status` label: the HTTP status class when it is ≥ 400,
 * else `error` when a JSON-RPC error code was sent, else `ok`.
 *
 * @param httpStatus - HTTP status of the response (200 for a JSON-RPC error answered in-band).
 * @param jsonRpcErrorCode - the JSON-RPC `error.code` sent, if any.
 */
export function requestStatus(httpStatus: number, jsonRpcErrorCode?: number): RequestStatus {
  if (httpStatus >= 500) return 'http_5xx';
  if (httpStatus >= 400) return 'http_4xx';
  return jsonRpcErrorCode === undefined ? 'ok' : 'error';
}

const METHOD_INDEX = new Map<string, number>(MCP_METHODS.map((m, i) => [m, i]));
const OTHER_METHOD = MCP_METHODS.length;
const METHOD_LABELS: readonly MethodLabel[] = [...MCP_METHODS, 'other'];
const METHOD_COUNT = METHOD_LABELS.length;
const STATUS_COUNT = REQUEST_STATUSES.length;

/** The `method` label an MCP method name is counted under: itself when listed in {@link MCP_METHODS}, else `other`. */
export function methodLabel(method: string): MethodLabel {
  return METHOD_LABELS[METHOD_INDEX.get(method) ?? OTHER_METHOD]!;
}

function statusIndex(status: RequestStatus): number {
  switch (status) {
    case 'ok':
      return 0;
    case 'error':
      return 1;
    case 'http_4xx':
      return 2;
    default:
      return 3;
  }
}

type Labels = Readonly<Record<string, string>>;

/** One counter series. */
interface CounterCell {
  readonly labels: Labels;
  value: number;
}

/** One histogram series: per-bucket (non-cumulative) counts, the last slot is `+Inf`. */
interface HistogramCell {
  readonly labels: Labels;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** The value objects prom-client's `Registry` formats (same shape its own metrics return). */
interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

interface ExportedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: ExportedValue[];
}

/**
 * A counter family whose series are {@link CounterCell}s. Implements the part of prom-client's
 * metric contract that `Registry` uses: `name`, `help`, `type`, `aggregator`, `get()`, `reset()`.
 */
class CounterFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #cells = new Set<CounterCell>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  cell(labels: Labels): CounterCell {
    const cell: CounterCell = { labels, value: 0 };
    this.#cells.add(cell);
    return cell;
  }

  removeWhere(predicate: (labels: Labels) => boolean): void {
    for (const cell of this.#cells) if (predicate(cell.labels)) this.#cells.delete(cell);
  }

  get(): ExportedMetric {
    const values: ExportedValue[] = [];
    for (const cell of this.#cells) values.push({ labels: { ...cell.labels }, value: cell.value });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const cell of this.#cells) cell.value = 0;
  }
}

/** A histogram family whose series are {@link HistogramCell}s; see {@link CounterFamily}. */
class HistogramFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: Float64Array;
  readonly #cells = new Set<HistogramCell>();

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#bounds = Float64Array.from(bounds);
  }

  cell(labels: Labels): HistogramCell {
    const cell: HistogramCell = { labels, counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
    this.#cells.add(cell);
    return cell;
  }

  observe(cell: HistogramCell, value: number): void {
    // NaN or a negative duration (never produced by a monotonic clock) would corrupt the sum.
    if (!(value >= 0)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
    cell.count++;
  }

  removeWhere(predicate: (labels: Labels) => boolean): void {
    for (const cell of this.#cells) if (predicate(cell.labels)) this.#cells.delete(cell);
  }

  get(): ExportedMetric {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    const bounds = this.#bounds;
    for (const cell of this.#cells) {
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({ labels: { ...cell.labels, le: bounds[i]! }, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { ...cell.labels, le: '+Inf' }, value: cell.count, metricName: bucket });
      values.push({ labels: { ...cell.labels }, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...cell.labels }, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  reset(): void {
    for (const cell of this.#cells) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}

/**
 * What the metrics read from the usage log at each scrape (`UsageLog` from `usage-log.ts`
 * satisfies it as is).
 */
export interface UsageLogSource {
  /** Rows waiting in memory (queued plus the batch being written). */
  readonly queueDepth: number;
  /** Rows lost since start (monotonic). */
  readonly dropped: number;
  /** Rows stored since start (monotonic). */
  readonly written: number;
}

/** Everything recorded for one `server` label value, found with one `Map.get` per call. */
interface ServerSeries {
  readonly name: string;
  /** `switchboard_requests_total` cells, index `method × STATUS_COUNT + status`. */
  readonly requests: (CounterCell | undefined)[];
  /** `switchboard_request_duration_seconds` cells, index `method`. */
  readonly durations: (HistogramCell | undefined)[];
  upstream: HistogramCell | undefined;
  restarts: CounterCell | undefined;
}

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
export interface Metrics {
  /** The registry holding every series below (and the process metrics, when enabled). */
  readonly registry: Registry;
  /** `Content-Type` for the `/metrics` response (Prometheus text format 0.0.4). */
  readonly contentType: string;
  /**
   * Records one finished gateway request: `switchboard_requests_total{server,method,status}`
   * +1 and `switchboard_request_duration_seconds{server,method}` observes `seconds`.
   * Allocation-free after the first call for a label combination.
   *
   * @param server - the server the request was routed to, or the endpoint's view name for
   *   requests the gateway answers itself (see docs/observability.md).
   * @param method - the JSON-RPC method; names outside {@link MCP_METHODS} count as `other`.
   * @param status - see {@link requestStatus}.
   * @param seconds - time from the request's arrival to its last response byte, in seconds.
   */
  recordRequest(server: string, method: string, status: RequestStatus, seconds: number): void;
  /** Observes one upstream call's duration (seconds) in `switchboard_upstream_request_duration_seconds{server}`. */
  recordUpstreamCall(server: string, seconds: number): void;
  /** Sets the function read at each scrape for `switchboard_active_sessions` (default: 0). */
  setActiveSessionsSource(source: () => number): void;
  /**
   * Sets the function read at each scrape for `switchboard_tool_pins_changed`: tools whose
   * definition differs from their pin (guardrail tool pinning). The gauge exists from the first
   * call on; a later call replaces the source.
   */
  setChangedToolsSource(source: () => number): void;
  /** Sets `switchboard_upstream_up{server}` to 1 (ready) or 0 (starting, restarting, failed). */
  setUpstreamUp(server: string, up: boolean): void;
  /** Counts one restart of an upstream in `switchboard_upstream_restarts_total{server}`. */
  recordUpstreamRestart(server: string): void;
  /**
   * Counts one request rejected by a rate-limit rule in `switchboard_rate_limited_total{rule}`.
   * `rule` must come from configuration (the rule's name or index), never from the request.
   */
  recordRateLimited(rule: string): void;
  /**
   * Counts one failed rate-limit store operation for `rule` (e.g. Redis down; the `failOpen`
   * setting was applied) in `switchboard_rate_limit_store_errors_total{rule}`.
   */
  recordRateLimitStoreError(rule: string): void;
  /**
   * Counts one stream closed because its reader did not keep up with it, in
   * `switchboard_stream_overflows_total{stream}`. `stream` must be one of a fixed set of kinds
   * (`streamable-get`, `streamable-post`, `legacy-sse`, `tunnel`, `tunnel-feed`), never a value from a request.
   */
  recordStreamOverflow(stream: string): void;
  /**
   * Sets the usage log read at each scrape for `switchboard_usage_log_queue_depth`,
   * `switchboard_usage_log_dropped_total` and `switchboard_usage_log_written_total` (all 0
   * until set).
   */
  setUsageLogSource(source: UsageLogSource): void;
  /**
   * Counts one tool or prompt withheld from a view because its exposed name belongs to another
   * item, in `switchboard_name_collisions_total{server,kind}` (`server`: the withheld item's
   * server; `kind`: `tool` or `prompt`). Counted once per view in which the collision appears.
   */
  recordNameCollision(server: string, kind: 'tool' | 'prompt'): void;
  /**
   * Counts one guardrail action in `switchboard_guardrail_actions_total{guardrail,action}`
   * (`action`: one of {@link GUARDRAIL_ACTIONS}). `guardrail` must be a configured guardrail's
   * name, never a value from a request. Allocation-free after the first call for a guardrail.
   */
  recordGuardrailAction(guardrail: string, action: GuardrailAction): void;
  /** Drops every series labelled with `server` (call when a server is removed by a reload). */
  forgetServer(server: string): void;
  /** The exposition text for a `/metrics` response. */
  metricsText(): Promise<string>;
}

/** What a guardrail did: refused, redacted, warned (tool pinning), or failed to decide. */
export const GUARDRAIL_ACTIONS = ['deny', 'redact', 'warn', 'error'] as const;
/** One of {@link GUARDRAIL_ACTIONS}. */
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];

/**
 * Creates the metrics registry and its recorders (see the module comment for the hot-path
 * design and docs/observability.md for the series).
 *
 * @throws Error from prom-client when `options.registry` already holds a metric of the same
 *   name (e.g. two `createMetrics` on one registry, or default metrics collected twice).
 */
export function createMetrics(options: MetricsOptions = {}): Metrics {
  const registry = options.registry ?? new Registry();
  const register = (family: CounterFamily | HistogramFamily): void =>
    // prom-client types `registerMetric` as taking its own classes; the Registry only calls
    // the collector contract these families implement (see the module comment).
    registry.registerMetric(family as unknown as Metric);

  const requests = new CounterFamily(
    `${METRIC_PREFIX}requests_total`,
    'MCP requests handled by the gateway, by server, MCP method and outcome.',
  );
  const durations = new HistogramFamily(
    `${METRIC_PREFIX}request_duration_seconds`,
    'Time from request arrival to the last response byte, in seconds.',
    DURATION_BUCKETS,
  );
  const upstreamDurations = new HistogramFamily(
    `${METRIC_PREFIX}upstream_request_duration_seconds`,
    'Duration of calls to upstream MCP servers, in seconds.',
    DURATION_BUCKETS,
  );
  const restarts = new CounterFamily(
    `${METRIC_PREFIX}upstream_restarts_total`,
    'Upstream restarts after a crash or failure.',
  );
  const rateLimited = new CounterFamily(
    `${METRIC_PREFIX}rate_limited_total`,
    'Requests rejected by a rate-limit rule.',
  );
  const storeErrors = new CounterFamily(
    `${METRIC_PREFIX}rate_limit_store_errors_total`,
    'Failed rate-limit store operations, by rule (the failOpen setting was applied).',
  );
  const collisions = new CounterFamily(
    `${METRIC_PREFIX}name_collisions_total`,
    'Tools and prompts withheld from a view because another item already has their exposed name.',
  );
  const overflows = new CounterFamily(
    `${METRIC_PREFIX}stream_overflows_total`,
    'Streams closed because their reader did not keep up (over the buffered bytes or events budget), by kind.',
  );
  const guardrailActions = new CounterFamily(
    `${METRIC_PREFIX}guardrail_actions_total`,
    'Guardrail actions (deny, redact, warn, error), by guardrail.',
  );
  for (const f of [
    requests,
    durations,
    upstreamDurations,
    restarts,
    rateLimited,
    storeErrors,
    collisions,
    overflows,
    guardrailActions,
  ])
    register(f);
  /** guardrail → one cell per action, in {@link GUARDRAIL_ACTIONS} order. */
  const guardrailCells = new Map<string, CounterCell[]>();
  const collisionCells = new Map<string, CounterCell>();
  const limitedCells = new Map<string, CounterCell>();
  const overflowCells = new Map<string, CounterCell>();
  const storeErrorCells = new Map<string, CounterCell>();

  let activeSessions: () => number = () => 0;
  let usageLog: UsageLogSource = { queueDepth: 0, dropped: 0, written: 0 };
  /** Registered on the first `setChangedToolsSource` (only gateways with tool pinning export it). */
  let changedTools: (() => number) | undefined;
  new Gauge({
    name: `${METRIC_PREFIX}active_sessions`,
    help: 'Client sessions currently open.',
    registers: [registry],
    collect() {
      this.set(activeSessions());
    },
  });
  new Gauge({
    name: `${METRIC_PREFIX}usage_log_queue_depth`,
    help: 'Usage-log rows waiting in memory to be written.',
    registers: [registry],
    collect() {
      this.set(usageLog.queueDepth);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}usage_log_dropped_total`,
    help: 'Usage-log rows lost: queue full, batch failed after its retries, or recorded after close.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(usageLog.dropped);
    },
  });
  new Counter({
    name: `${METRIC_PREFIX}usage_log_written_total`,
    help: 'Usage-log rows stored.',
    registers: [registry],
    collect() {
      this.reset();
      this.inc(usageLog.written);
    },
  });
  const upstreamUp = new Gauge({
    name: `${METRIC_PREFIX}upstream_up`,
    help: 'Whether an upstream is ready (1) or not (0).',
    labelNames: ['server'],
    registers: [registry],
  });

  if (options.collectDefault ?? true) collectDefaultMetrics({ register: registry });

  const servers = new Map<string, ServerSeries>();
  const seriesFor = (server: string): ServerSeries => {
    let s = servers.get(server);
    if (s !== undefined) return s;
    if (servers.size >= MAX_SERVER_LABELS) {
      s = servers.get(OVERFLOW_SERVER_LABEL);
      if (s !== undefined) return s;
      server = OVERFLOW_SERVER_LABEL;
    }
    s = {
      name: server,
      requests: new Array<CounterCell | undefined>(METHOD_COUNT * STATUS_COUNT).fill(undefined),
      durations: new Array<HistogramCell | undefined>(METHOD_COUNT).fill(undefined),
      upstream: undefined,
      restarts: undefined,
    };
    servers.set(server, s);
    return s;
  };

  return {
    registry,
    get contentType(): string {
      return registry.contentType;
    },

    recordRequest(server, method, status, seconds): void {
      const s = seriesFor(server);
      const m = METHOD_INDEX.get(method) ?? OTHER_METHOD;
      const ci = m * STATUS_COUNT + statusIndex(status);
      const counter =
        s.requests[ci] ??
        (s.requests[ci] = requests.cell({
          server: s.name,
          method: METHOD_LABELS[m]!,
          status: REQUEST_STATUSES[ci % STATUS_COUNT]!,
        }));
      counter.value++;
      const hist = s.durations[m] ?? (s.durations[m] = durations.cell({ server: s.name, method: METHOD_LABELS[m]! }));
      durations.observe(hist, seconds);
    },

    recordUpstreamCall(server, seconds): void {
      const s = seriesFor(server);
      upstreamDurations.observe(s.upstream ?? (s.upstream = upstreamDurations.cell({ server: s.name })), seconds);
    },

    setChangedToolsSource(source): void {
      if (changedTools === undefined) {
        new Gauge({
          name: `${METRIC_PREFIX}tool_pins_changed`,
          help: 'Tools whose definition changed since it was pinned and is not approved yet (guardrail tool pinning).',
          registers: [registry],
          collect() {
            this.set(changedTools?.() ?? 0);
          },
        });
      }
      changedTools = source;
    },

    setActiveSessionsSource(source): void {
      activeSessions = source;
    },

    setUpstreamUp(server, up): void {
      upstreamUp.set({ server: seriesFor(server).name }, up ? 1 : 0);
    },

    recordUpstreamRestart(server): void {
      const s = seriesFor(server);
      (s.restarts ?? (s.restarts = restarts.cell({ server: s.name }))).value++;
    },

    recordRateLimited(rule): void {
      let cell = limitedCells.get(rule);
      if (cell === undefined) limitedCells.set(rule, (cell = rateLimited.cell({ rule })));
      cell.value++;
    },

    recordRateLimitStoreError(rule): void {
      let cell = storeErrorCells.get(rule);
      if (cell === undefined) storeErrorCells.set(rule, (cell = storeErrors.cell({ rule })));
      cell.value++;
    },

    recordGuardrailAction(guardrail, action): void {
      let cells = guardrailCells.get(guardrail);
      if (cells === undefined) {
        cells = GUARDRAIL_ACTIONS.map((a) => guardrailActions.cell({ guardrail, action: a }));
        guardrailCells.set(guardrail, cells);
      }
      cells[GUARDRAIL_ACTIONS.indexOf(action)]!.value++;
    },

    recordStreamOverflow(stream): void {
      let cell = overflowCells.get(stream);
      if (cell === undefined) overflowCells.set(stream, (cell = overflows.cell({ stream })));
      cell.value++;
    },

    setUsageLogSource(source): void {
      usageLog = source;
    },

    recordNameCollision(server, kind): void {
      const name = seriesFor(server).name;
      const key = `${name}\0${kind}`;
      let cell = collisionCells.get(key);
      if (cell === undefined) collisionCells.set(key, (cell = collisions.cell({ server: name, kind })));
      cell.value++;
    },

    forgetServer(server): void {
      if (!servers.delete(server)) return;
      const match = (labels: Labels): boolean => labels.server === server;
      requests.removeWhere(match);
      durations.removeWhere(match);
      upstreamDurations.removeWhere(match);
      restarts.removeWhere(match);
      collisions.removeWhere(match);
      for (const key of [...collisionCells.keys()]) if (key.startsWith(`${server}\0`)) collisionCells.delete(key);
      upstreamUp.remove({ server });
    },

    metricsText(): Promise<string> {
      return registry.metrics();
    },
  };
}
