/**
 * Structured logging (pino). One root logger per gateway process; components take a child
 * logger with their own bindings (`{ component: 'upstream', server: 'everything' }`). Every line
 * written while a request is being handled carries that request's `reqId` (see
 * `request-context.ts`); secrets listed in {@link REDACT_PATHS} are replaced by `[redacted]`.
 *
 * @module
 */
import { pino, type Logger, type LevelWithSilent } from 'pino';
import { currentRequestContext } from './request-context.js';

export type { Logger };

/** Options for {@link createLogger}. */
export interface LoggerOptions {
  /** Minimum level. Default `SWITCHBOARD_LOG_LEVEL` or `info`. */
  level?: LevelWithSilent;
  /** Destination stream; default stderr (fd 2) so stdout stays free for CLI output. */
  destination?: NodeJS.WritableStream;
}

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

// Returned by the mixin outside a request. Never mutated: `mixinMergeStrategy` below hands the
// line's own object back unchanged when it sees this sentinel, so no object is allocated per
// line when there is nothing to add.
const NO_CONTEXT: Record<string, never> = Object.freeze({});

/**
 * pino `mixin`: adds `reqId` from the current request context (when there is one) to every
 * line. A `reqId` given explicitly in the line's own object wins.
 */
export function requestContextMixin(): object {
  const ctx = currentRequestContext();
  return ctx === undefined ? NO_CONTEXT : { reqId: ctx.reqId };
}

/** pino `mixinMergeStrategy` paired with {@link requestContextMixin} (same result as pino's default). */
export function requestContextMergeStrategy(mergeObject: object, mixinObject: object): object {
  return mixinObject === NO_CONTEXT ? mergeObject : Object.assign(mixinObject, mergeObject);
}

/**
 * Creates the root logger: JSON lines on stderr, or human-readable lines (pino-pretty) when
 * stderr is a terminal and `SWITCHBOARD_LOG_FORMAT` is not `json`. `SWITCHBOARD_LOG_FORMAT=pretty`
 * forces the readable form. Lines written inside `runWithRequestContext` carry `reqId`.
 */
export function createLogger(options: LoggerOptions = {}): Logger {
  const level = options.level ?? (process.env.SWITCHBOARD_LOG_LEVEL as LevelWithSilent | undefined) ?? 'info';
  const opts = {
    level,
    base: { name: 'switchboard' },
    redact: { paths: REDACT_PATHS, censor: '[redacted]' },
    mixin: requestContextMixin,
    mixinMergeStrategy: requestContextMergeStrategy,
  };
  if (options.destination) return pino(opts, options.destination);
  const format = process.env.SWITCHBOARD_LOG_FORMAT;
  if (format === 'pretty' || (format !== 'json' && process.stderr.isTTY)) {
    return pino(
      opts,
      pino.transport({
        target: 'pino-pretty',
        options: { destination: 2, translateTime: 'SYS:HH:MM:ss.l', ignore: 'pid,hostname,name', singleLine: true },
      }),
    );
  }
  return pino(opts, pino.destination({ fd: 2, sync: false }));
}

/** A logger that discards everything (tests, library use). */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
