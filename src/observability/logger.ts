/**
 * Structured logging (pino). One root logger per gateway process; components take a child
 * logger with their own bindings (`{ component: 'upstream', server: 'everything' }`). A line
 * that concerns one request carries its `reqId` as a field (see `request-id.ts`); secrets
 * listed in {@link REDACT_PATHS} are replaced by `[redacted]`.
 *
 * @module
 */
import { pino, type DestinationStream, type Logger, type LevelWithSilent } from 'pino';
import type { RecentLogs } from './recent-logs.js';

export type { Logger };

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. Default `SWITCHBOARD_LOG_LEVEL` or `info`. */
  level?: LevelWithSilent;
  /** Destination stream; default stderr (fd 2) so stdout stays free for CLI output. */
  destination?: NodeJS.WritableStream;
  /**
   * `json` (one JSON object per line) or `pretty` (readable lines). Default
   * `SWITCHBOARD_LOG_FORMAT`, else `pretty` when stderr is a terminal and `json` otherwise.
   */
  format?: 'json' | 'pretty';
  /**
   * Also hands every line written (after redaction) to this ring of recent lines, for the admin
   * API's live feed (`recent-logs.ts`). What the destination receives is unchanged. Default none.
   */
  recent?: RecentLogs;
}

/** The levels `logging.level`, `SWITCHBOARD_LOG_LEVEL` and `--log-level` accept, most severe first. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/**
 * Header and field names whose values never reach the logs (pino redact paths: a field at the
 * top level of a line's object or one level down, e.g. `{ token }` and `{ auth: { token } }`).
 */
export const REDACT_PATHS = [
  'req.headers.authorization',
  'req.headers["proxy-authorization"]',
  'req.headers.cookie',
  'headers.authorization',
  'headers.Authorization',
  'headers["proxy-authorization"]',
  'headers.cookie',
  'token',
  'accessToken',
  'refreshToken',
  'clientSecret',
  'client_secret',
  'password',
  '*.token',
  '*.accessToken',
  '*.refreshToken',
  '*.clientSecret',
  '*.client_secret',
  '*.password',
];

/**
 * Creates the root logger: JSON lines on stderr, or human-readable lines (pino-pretty) when
 * stderr is a terminal and the format (`options.format`, else `SWITCHBOARD_LOG_FORMAT`) is not
 * `json`. Format `pretty` forces the readable form.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.SWITCHBOARD_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const opts = {
    level,
    base: { name: 'switchboard' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
  };
  const recent = options.recent;
  // Beside the real destination, the ring of recent lines gets the same serialised lines.
  const to = (destination: DestinationStream | NodeJS.WritableStream): Logger =>
    recent === undefined
      ? pino(opts, destination)
      : pino(
          opts,
          pino.multistream([
            { level: 'trace', stream: destination },
            { level: 'trace', stream: recent },
          ]),
        );
  if (options.destination) return to(options.destination);
  const format = options.format ?? process.env.SWITCHBOARD_LOG_FORMAT;
  if (format === 'pretty' || (format !== 'json' && process.stderr.isTTY)) {
    return to(
      pino.transport({
        target: 'pino-pretty',
        options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', singleLine: true },
      }),
    );
  }
  return to(pino.destination({ fd: 2, sync: false }));
}

/** A logger that discards everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
