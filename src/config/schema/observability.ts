/**
 * Observability: the usage log, Prometheus metrics and the log level.
 *
 * @module
 */
import { z } from 'zod';
import { Duration } from './common.js';

/** The `usage` section: the usage log of requests made with API tokens. */
export const UsageConfig = z
  .object({
    /** Record requests made with API tokens (docs/usage.md). Default true. */
    enabled: z.boolean().default(true),
    /** Rows per batched write. Default 500. */
    batchSize: z.number().int().min(1).default(500),
    /** Longest time a row waits before it is written. Default 1s. */
    flushInterval: Duration.default(1000),
    /** Rows held in memory at most; beyond, rows are dropped and counted. Default 50000. */
    maxQueue: z.number().int().min(1).default(50_000),
    /** Rows older than this are deleted. Default 30d. */
    retention: Duration.default(30 * 86_400_000),
  })
  .strict()
  .default({ enabled: true, batchSize: 500, flushInterval: 1000, maxQueue: 50_000, retention: 30 * 86_400_000 });

/** The `metrics` section: the Prometheus endpoint. */
export const MetricsConfig = z
  .object({
    /** Serve Prometheus metrics. Default true. */
    enabled: z.boolean().default(true),
    /** Require `admin.*`/`metrics.read` to scrape. Default false (protect it at the network instead). */
    protected: z.boolean().default(false),
  })
  .strict()
  .default({ enabled: true, protected: false });

/** The `logging` section. */
export const LoggingConfig = z
  .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
  .strict()
  .default({ level: 'info' });
