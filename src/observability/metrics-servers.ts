/**
 * The metrics kept per `server` label value: gateway requests and their durations, upstream call
 * durations, restarts and state, and name collisions. A server's cells are found with one
 * `Map.get` and indexed by the fixed `method` × `status` tables, so recording a request does not
 * allocate after the first one for a label combination. At most {@link MAX_SERVER_LABELS} server
 * names get their own series; later ones share {@link OVERFLOW_SERVER_LABEL}.
 *
 * @module
 */
import { Gauge } from 'prom-client';
import {
  CounterFamily,
  HistogramFamily,
  type CounterCell,
  type HistogramCell,
  type Labels,
} from './metrics-families.js';
import {
  DURATION_BUCKETS,
  ERAS,
  MAX_SERVER_LABELS,
  METHOD_COUNT,
  METHOD_INDEX,
  METHOD_LABELS,
  METRIC_PREFIX,
  OTHER_METHOD,
  OVERFLOW_SERVER_LABEL,
  REQUEST_STATUSES,
  STATUS_COUNT,
  statusIndex,
  type RequestStatus,
} from './metrics-labels.js';

/** Everything recorded for one `server` label value, found with one `Map.get` per call. */
interface ServerSeries {
  readonly name: string;
  /** `switchboard_requests_total` cells, index `(era × METHOD_COUNT + method) × STATUS_COUNT + status`. */
  readonly requests: (CounterCell | undefined)[];
  /** `switchboard_request_duration_seconds` cells, index `method`. */
  readonly durations: (HistogramCell | undefined)[];
  upstream: HistogramCell | undefined;
  restarts: CounterCell | undefined;
}

/** The recorders of the per-server series (part of `Metrics`). */
export interface ServerRecorders {
  /**
   * Records one finished gateway request: `switchboard_requests_total{server,method,status,era}`
   * +1 and `switchboard_request_duration_seconds{server,method}` observes `seconds`.
   * Allocation-free after the first call for a label combination.
   *
   * @param server - the server the request was routed to, or the endpoint's view name for
   *   requests the gateway answers itself (see docs/observability.md).
   * @param method - the JSON-RPC method; names outside {@link MCP_METHODS} count as `other`.
   * @param status - see {@link requestStatus}.
   * @param seconds - time from the request's arrival to its last response byte, in seconds.
   * @param modern - true for a stateless MCP 2026-07-28 request (`era="modern"`); default the
   *   2025 era (`era="legacy"`).
   */
  recordRequest(server: string, method: string, status: RequestStatus, seconds: number, modern?: boolean): void;
  /** Observes one upstream call's duration (seconds) in `switchboard_upstream_request_duration_seconds{server}`. */
  recordUpstreamCall(server: string, seconds: number): void;
  /** Sets `switchboard_upstream_up{server}` to 1 (ready) or 0 (starting, restarting, failed). */
  setUpstreamUp(server: string, up: boolean): void;
  /** Counts one restart of an upstream in `switchboard_upstream_restarts_total{server}`. */
  recordUpstreamRestart(server: string): void;
  /**
   * Counts one tool or prompt withheld from a view because its exposed name belongs to another
   * item, in `switchboard_name_collisions_total{server,kind}` (`server`: the withheld item's
   * server; `kind`: `tool` or `prompt`). Counted once per view in which the collision appears.
   */
  recordNameCollision(server: string, kind: 'tool' | 'prompt'): void;
  /** Drops every series labelled with `server` (call when a server is removed by a reload). */
  forgetServer(server: string): void;
}

/** The per-server families and their recorders; see {@link createServerMetrics}. */
export interface ServerMetrics {
  readonly requests: CounterFamily;
  readonly durations: HistogramFamily;
  readonly upstreamDurations: HistogramFamily;
  readonly restarts: CounterFamily;
  readonly collisions: CounterFamily;
  /** `switchboard_upstream_up{server}`, created without a registry. */
  readonly upstreamUp: Gauge;
  readonly recorders: ServerRecorders;
}

/**
 * Creates the per-server families and the recorders that write them. Nothing is registered:
 * the caller registers every family (and {@link ServerMetrics.upstreamUp}) in the order
 * `/metrics` lists them.
 */
export function createServerMetrics(): ServerMetrics {
  const requests = new CounterFamily(
    `${METRIC_PREFIX}requests_total`,
    'MCP requests handled by the gateway, by server, MCP method, outcome and protocol era.',
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
  const collisions = new CounterFamily(
    `${METRIC_PREFIX}name_collisions_total`,
    'Tools and prompts withheld from a view because another item already has their exposed name.',
  );
  const collisionCells = new Map<string, CounterCell>();
  const upstreamUp = new Gauge({
    name: `${METRIC_PREFIX}upstream_up`,
    help: 'Whether an upstream is ready (1) or not (0).',
    labelNames: ['server'],
    registers: [],
  });

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
      requests: new Array<CounterCell | undefined>(ERAS.length * METHOD_COUNT * STATUS_COUNT).fill(undefined),
      durations: new Array<HistogramCell | undefined>(METHOD_COUNT).fill(undefined),
      upstream: undefined,
      restarts: undefined,
    };
    servers.set(server, s);
    return s;
  };

  const recorders: ServerRecorders = {
    recordRequest(server, method, status, seconds, modern = false): void {
      const s = seriesFor(server);
      const m = METHOD_INDEX.get(method) ?? OTHER_METHOD;
      const era = modern ? 1 : 0;
      const ci = (era * METHOD_COUNT + m) * STATUS_COUNT + statusIndex(status);
      const counter =
        s.requests[ci] ??
        (s.requests[ci] = requests.cell({
          server: s.name,
          method: METHOD_LABELS[m]!,
          status: REQUEST_STATUSES[ci % STATUS_COUNT]!,
          era: ERAS[era],
        }));
      counter.value++;
      const hist = s.durations[m] ?? (s.durations[m] = durations.cell({ server: s.name, method: METHOD_LABELS[m]! }));
      durations.observe(hist, seconds);
    },

    recordUpstreamCall(server, seconds): void {
      const s = seriesFor(server);
      upstreamDurations.observe(s.upstream ?? (s.upstream = upstreamDurations.cell({ server: s.name })), seconds);
    },

    setUpstreamUp(server, up): void {
      upstreamUp.set({ server: seriesFor(server).name }, up ? 1 : 0);
    },

    recordUpstreamRestart(server): void {
      const s = seriesFor(server);
      (s.restarts ?? (s.restarts = restarts.cell({ server: s.name }))).value++;
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
  };
  return { requests, durations, upstreamDurations, restarts, collisions, upstreamUp, recorders };
}
