/**
 * MCP log levels (server utilities §Logging, the RFC 5424 severities) and the filter a client's
 * `logging/setLevel` puts on the `notifications/message` it receives.
 *
 * @module
 */
import type { JsonRpcNotification } from '../protocol/jsonrpc.js';

/** The levels, least severe first. */
export const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

/** The severity index of `level`, or -1 when it is not a log level. */
export function logLevelIndex(level: unknown): number {
  return typeof level === 'string' ? LOG_LEVELS.indexOf(level) : -1;
}

/**
 * True when a `notifications/message` may go to a client whose minimum level has index `min`
 * (-1: no level set, everything goes). A message whose `level` is not a string passes; an
 * unknown level name ranks below every level.
 */
export function logLevelAllows(min: number, n: JsonRpcNotification): boolean {
  if (min < 0) return true;
  const level = n.params?.level;
  return typeof level !== 'string' || LOG_LEVELS.indexOf(level) >= min;
}
