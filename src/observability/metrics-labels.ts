/**
 * Label values of the gateway's metrics: the metric prefix, the duration buckets, the fixed
 * `method` and `status` tables that index a server's request cells, the `server` cardinality cap
 * and the guardrail actions. Everything here is fixed at load time; recording only looks values
 * up (see `metrics.ts` for the hot-path design).
 *
 * @module
 */

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

/**
 * `era` label values of `switchboard_requests_total`: `legacy` for the 2025 era (sessions),
 * `modern` for stateless MCP 2026-07-28 requests. Index 0 and 1.
 */
export const ERAS = Object.freeze(['legacy', 'modern'] as const);

/** An `era` label value. */
export type EraLabel = (typeof ERAS)[number];

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

/** Index of each of {@link MCP_METHODS} in {@link METHOD_LABELS}. */
export const METHOD_INDEX = new Map<string, number>(MCP_METHODS.map((m, i) => [m, i]));
/** Index of `other` in {@link METHOD_LABELS}. */
export const OTHER_METHOD = MCP_METHODS.length;
/** Every `method` label value, indexed as a server's request cells are. */
export const METHOD_LABELS: readonly MethodLabel[] = [...MCP_METHODS, 'other'];
/** Number of `method` label values. */
export const METHOD_COUNT = METHOD_LABELS.length;
/** Number of `status` label values. */
export const STATUS_COUNT = REQUEST_STATUSES.length;

/** The `method` label an MCP method name is counted under: itself when listed in {@link MCP_METHODS}, else `other`. */
export function methodLabel(method: string): MethodLabel {
  return METHOD_LABELS[METHOD_INDEX.get(method) ?? OTHER_METHOD]!;
}

/**
 * Index of a `status` label value in {@link REQUEST_STATUSES} (the second coordinate of a server's
 * request cells).
 */
export function statusIndex(status: RequestStatus): number {
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

/** What a guardrail did: refused, redacted, warned (tool pinning), or failed to decide. */
export const GUARDRAIL_ACTIONS = ['deny', 'redact', 'warn', 'error'] as const;
/** One of {@link GUARDRAIL_ACTIONS}. */
export type GuardrailAction = (typeof GUARDRAIL_ACTIONS)[number];
