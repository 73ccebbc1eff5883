/**
 * `switchboard serve`: load the config, start the gateway and its HTTP edge, hot-reload the
 * config file, drain on SIGINT/SIGTERM.
 *
 * @module
 */
import { isConfigError, loadConfigFile, resolveConfigPath } from '../config/load.js';
import type { SwitchboardConfig } from '../config/schema.js';
import { watchConfig } from '../config/watch.js';
import { startGateway, type RunningGateway } from '../app.js';
import { createLogger, type LOG_LEVELS } from '../observability/logger.js';
import { RecentLogs } from '../observability/recent-logs.js';
import { dataDirFor } from './database.js';

/** Options of `switchboard serve`. */
export interface ServeOptions {
  config?: string;
  host?: string;
  port?: number;
  /** Allow binding beyond loopback without inbound auth (refused by default: anyone on the network could use every server). */
  insecure?: boolean;
  /** Log level; wins over `SWITCHBOARD_LOG_LEVEL` and `logging.level` (also after a reload). */
  logLevel?: (typeof LOG_LEVELS)[number];
  /** Log format; wins over `SWITCHBOARD_LOG_FORMAT`. */
  logFormat?: 'json' | 'pretty';
}

/**
 * Runs `switchboard serve` until SIGINT/SIGTERM.
 *
 * @returns the process exit code (0 after a clean shutdown, 1 on startup failure)
 */
export async function runServe(opts: ServeOptions): Promise<number> {
  // The admin API's live feed shows the most recent log lines (to admin.* principals).
  const recentLogs = new RecentLogs();
  const logger = createLogger({
    recent: recentLogs,
    ...(opts.logLevel === undefined ? {} : { level: opts.logLevel }),
    ...(opts.logFormat === undefined ? {} : { format: opts.logFormat }),
  });
  // The level from the command line or the environment wins over the file's.
  const levelFixed = opts.logLevel !== undefined || process.env.SWITCHBOARD_LOG_LEVEL !== undefined;
  let path: string;
  let config: SwitchboardConfig;
  try {
    path = resolveConfigPath(opts.config);
    config = await loadConfigFile(path, { onWarning: (w) => logger.warn(w) });
  } catch (err) {
    if (isConfigError(err)) {
      process.stderr.write(`${err.format()}\n`);
      return 1;
    }
    throw err;
  }
  if (!levelFixed) logger.level = config.logging.level;
  let running: RunningGateway;
  try {
    running = await startGateway({
      config,
      logger,
      recentLogs,
      dataDir: dataDirFor(config),
      ...(opts.host === undefined ? {} : { host: opts.host }),
      ...(opts.port === undefined ? {} : { port: opts.port }),
      ...(opts.insecure === undefined ? {} : { insecure: opts.insecure }),
    });
  } catch (err) {
    process.stderr.write(`switchboard: ${err instanceof Error ? err.message : String(err)}\n`);
    return 1;
  }
  logger.info({ config: path }, 'configuration loaded');
  const watcher = watchConfig(path, {
    logger,
    initial: config,
    onChange: (next) => {
      if (!levelFixed) logger.level = next.logging.level;
      if (next.listen.host !== config.listen.host || next.listen.port !== config.listen.port) {
        logger.warn('listen.host/listen.port changed: restart Switchboard to apply them');
      }
      running.reload(next).catch((err: unknown) => logger.error({ err }, 'reload failed'));
    },
    onError: (err) =>
      logger.error(
        { problems: err.issues.map((i) => `${i.path}: ${i.message}`) },
        `invalid configuration, keeping the running one:\n${err.format()}`,
      ),
  });
  return new Promise<number>((resolve) => {
    let stopping = false;
    const stop = (signal: string) => {
      if (stopping) return;
      stopping = true;
      const graceMs = running.gateway.config.shutdown.gracePeriod;
      logger.info({ signal, gracePeriodMs: graceMs }, 'shutting down');
      watcher.close();
      // The last word: whatever still holds the event loop open (a socket, a reconnect timer) at
      // the end of the grace period, the process exits with 1. Unref'd: never delays a clean exit.
      setTimeout(() => {
        logger.warn(
          { gracePeriodMs: graceMs, stillOpen: process.getActiveResourcesInfo() },
          'shutdown grace period over; forcing exit',
        );
        process.exit(1);
      }, graceMs).unref();
      // The steps get 90% of the grace period, so their report is logged before the timer above.
      running.shutdown({ timeoutMs: Math.floor(graceMs * 0.9) }).then(
        ({ unclosed }) => {
          if (unclosed.length > 0) {
            logger.warn(
              { unclosed, gracePeriodMs: graceMs },
              'shutdown deadline passed; abandoning what did not close',
            );
            // Nothing more is worth waiting for: what did not close would hold the process open.
            process.exit(1);
          }
          logger.info('shut down');
          resolve(0);
        },
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });
}
