/**
 * The metrics read at scrape time from the gateway's state instead of being recorded: open
 * sessions, the usage log's queue and totals, and the tools whose definition differs from their
 * pin. The gateway hands each one a source function (or object) once; the gauges and counters
 * read it in their `collect()`.
 *
 * @module
 */
import { Counter, Gauge, type Registry } from 'prom-client';
import { METRIC_PREFIX } from './metrics-labels.js';

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

/** The setters of the scrape-time sources (part of `Metrics`). */
export interface SourceSetters {
  /** Sets the function read at each scrape for `switchboard_active_sessions` (default: 0). */
  setActiveSessionsSource(source: () => number): void;
  /**
   * Sets the function read at each scrape for `switchboard_tool_pins_changed`: tools whose
   * definition differs from their pin (guardrail tool pinning). The gauge exists from the first
   * call on; a later call replaces the source.
   */
  setChangedToolsSource(source: () => number): void;
  /**
   * Sets the usage log read at each scrape for `switchboard_usage_log_queue_depth`,
   * `switchboard_usage_log_dropped_total` and `switchboard_usage_log_written_total` (all 0
   * until set).
   */
  setUsageLogSource(source: UsageLogSource): void;
}

/**
 * Registers the scrape-time gauges and counters in `registry` (`switchboard_tool_pins_changed`
 * only once its source is set) and returns the setters of their sources.
 *
 * @throws Error from prom-client when `registry` already holds a metric of the same name
 */
export function createSourceMetrics(registry: Registry): SourceSetters {
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

  return {
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

    setUsageLogSource(source): void {
      usageLog = source;
    },
  };
}
