/**
 * The gateway's observability sinks and what feeds them: the metrics registry, tracing (a no-op
 * unless `OTEL_*` enables it), the usage log, the recent traffic per server and the live feed of
 * the admin API; the {@link ExchangeObserver} that records every finished MCP exchange in all of
 * them (request metrics, a usage row, the server span, a traffic bucket, a live record); the
 * recorder of refused admin-API credentials; and the `/metrics` route.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Span } from '@opentelemetry/api';
import type { SwitchboardConfig } from '../config/schema.js';
import type { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { ExchangeObserver, RouteHandler } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import { errorCodeOfRpc, LiveFeed } from '../observability/live-feed.js';
import { createMetrics, requestStatus, type Metrics } from '../observability/metrics.js';
import type { RecentLogs } from '../observability/recent-logs.js';
import { RecentTraffic } from '../observability/recent-traffic.js';
import type { Tracing } from '../observability/tracing.js';
import { otelConfigured, TRACING_OFF } from '../observability/tracing-off.js';
import {
  blockedRowFor,
  createUsageLog,
  recordsUsage,
  requestFacts,
  usageRowFor,
  type UsageLog,
} from '../observability/usage-log.js';
import { packageVersion } from '../package-root.js';
import type { Database } from '../store/types.js';

/** The observability sinks of one gateway; see {@link openObservability}. */
export interface Observability {
  readonly metrics: Metrics;
  readonly tracing: Tracing;
  /** Undefined when `usage.enabled` is off or the database has no usage store. */
  readonly usageLog: UsageLog | undefined;
  /** Requests, errors and latencies per server over the last five minutes (server view `stats`). */
  readonly traffic: RecentTraffic;
  /** The most recent requests and log lines, and the live streams of `GET /api/v1/live`. */
  readonly live: LiveFeed;
}

/** Options of {@link openObservability}. */
export interface ObservabilityOptions {
  readonly config: SwitchboardConfig;
  readonly database: Database;
  readonly logger: Logger;
  /** A metrics registry to use (tests); default a new one. */
  readonly metrics?: Metrics | undefined;
  /** The process's recent log lines for the live feed; default none (no `log` events). */
  readonly recentLogs?: RecentLogs | undefined;
}

/**
 * Creates the metrics (unless given), tracing (loaded only when `OTEL_*` configures it) and the
 * usage log, and points the usage-log metrics at the usage log.
 */
export async function openObservability(options: ObservabilityOptions): Promise<Observability> {
  const { config, database, logger } = options;
  const metrics: Metrics = options.metrics ?? createMetrics();
  const tracing: Tracing = otelConfigured()
    ? (await import('../observability/tracing.js')).createTracing({
        logger: logger.child({ component: 'tracing' }),
        serviceVersion: packageVersion(),
      })
    : TRACING_OFF;
  const usageLog: UsageLog | undefined =
    config.usage.enabled && database.usage
      ? createUsageLog({
          store: database.usage,
          batchSize: config.usage.batchSize,
          flushIntervalMs: config.usage.flushInterval,
          maxQueue: config.usage.maxQueue,
          retentionMs: config.usage.retention,
          logger: logger.child({ component: 'usage' }),
        })
      : undefined;
  if (usageLog) metrics.setUsageLogSource(usageLog);
  return {
    metrics,
    tracing,
    usageLog,
    traffic: new RecentTraffic(),
    live: new LiveFeed({ logs: options.recentLogs }),
  };
}

/** Metrics, usage log, server span, recent traffic and live record of every MCP exchange. */
export function createExchangeObserver({ metrics, tracing, usageLog, traffic, live }: Observability): ExchangeObserver {
  return {
    start: tracing.enabled
      ? (req, path) =>
          tracing.startServerSpan(
            `${req.method ?? 'POST'} ${path}`,
            { 'http.request.method': req.method ?? 'POST' },
            req.headers.traceparent as string | undefined,
          )
      : undefined,
    finished(e, trace) {
      const meta = e.meta;
      const latencyMs = performance.now() - e.t0;
      const status = e.res.statusCode;
      const server = meta?.server ?? e.endpoint;
      const outcome = requestStatus(status, meta?.rpcError);
      metrics.recordRequest(
        server,
        meta?.method ?? e.req.method ?? 'POST',
        outcome,
        latencyMs / 1000,
        meta?.era === 'modern',
      );
      traffic.record(server, e.startedAt, latencyMs, outcome !== 'ok');
      // One of the feed's preallocated records, overwritten in place.
      const r = live.next();
      r.time = e.startedAt;
      r.reqId = meta?.reqId ?? null;
      r.endpoint = e.endpoint;
      r.method = meta?.method ?? null;
      r.server = meta?.server ?? null;
      r.tool = meta?.tool ?? null;
      r.principal = meta?.principal.id ?? null;
      r.status = status;
      r.durationMs = latencyMs;
      if (e.refusal !== undefined) {
        r.outcome = e.refusal.status === 429 ? 'rate_limited' : 'blocked';
        r.code = e.refusal.code;
      } else if (status === 429) {
        r.outcome = 'rate_limited';
        r.code = 'SWB_ERR_RATE_LIMITED';
      } else if (outcome === 'ok') {
        r.outcome = 'ok';
        r.code = null;
      } else {
        // A stage that set its name and then failed the request refused it.
        r.outcome = meta?.stage === undefined ? 'error' : meta.stage === 'rate-limit' ? 'rate_limited' : 'blocked';
        r.code = meta?.rpcError === undefined ? null : (errorCodeOfRpc(meta.rpcError) ?? null);
      }
      live.published();
      if (usageLog) {
        const row = e.refusal
          ? blockedRowFor(e.refusal, {
              ...requestFacts(e.req, e.path, e.startedAt, latencyMs),
              bytesOut: e.bytesOut,
              httpStatus: status,
            })
          : meta && recordsUsage(meta.principal)
            ? usageRowFor(meta.principal, {
                ...requestFacts(e.req, e.path, e.startedAt, latencyMs),
                bytesOut: e.bytesOut,
                mcpMethod: meta.method,
                server: meta.server,
                tool: meta.tool,
                upstreamSubject: meta.upstreamSubject,
                httpStatus: status,
                jsonrpcError: meta.rpcError,
                stage: meta.stage,
              })
            : undefined; // other principals are not logged: build nothing for them
        if (row) usageLog.record(row);
      }
      if (trace !== undefined)
        tracing.end(trace as Span, {
          statusCode: status,
          ...(meta?.rpcError === undefined ? {} : { jsonRpcErrorCode: meta.rpcError }),
          ...(meta?.upstreamSubject === undefined ? {} : { upstreamSubject: meta.upstreamSubject }),
        });
    },
  };
}

/**
 * Returns the listener of refused credentials on the admin and sessions APIs: each refusal
 * becomes a blocked row in the usage log (nothing without one).
 */
export function refusalRecorder(
  usageLog: UsageLog | undefined,
): (req: IncomingMessage, path: string, err: GatewayError) => void {
  return (req, path, err) => {
    const row = usageLog
      ? blockedRowFor(err, { ...requestFacts(req, path, Date.now()), httpStatus: err.status })
      : undefined;
    if (row) usageLog?.record(row);
  };
}

/** The `/metrics` route: the exposition text while `metrics.enabled` is on (else not handled). */
export function metricsRoute(gateway: Gateway, metrics: Metrics): RouteHandler {
  return async (_req, res, path) => {
    if (path !== '/metrics' || !gateway.config.metrics.enabled) return false;
    res.writeHead(200, { 'content-type': metrics.contentType });
    res.end(await metrics.metricsText());
    return true;
  };
}
