/**
 * The Redis client shared state uses (`SWITCHBOARD_REDIS_URL`): rate-limit counters
 * today, session/tunnel ownership later.
 *
 * It is built to fail fast, because every caller sits on a request's path and has a fail mode of
 * its own (e.g. `rateLimiting.failOpen`):
 * - the offline queue is off: while the connection is down a command is rejected at once instead
 *   of waiting for a reconnect;
 * - a command gets no retry (`maxRetriesPerRequest: 0`), is not re-sent after a reconnect, and
 *   times out after `commandTimeoutMs`;
 * - the connection itself is retried forever with exponential backoff capped at
 *   `maxReconnectDelayMs` (bounded delay), so a Redis that comes back is used again;
 * - it connects lazily: call {@link connectRedis} at startup (a failure there is not fatal).
 *
 * @module
 */
import { Redis } from 'ioredis';
import type { Logger } from '../observability/logger.js';

export type { Redis };

/** Options for {@link createRedisClient}. All durations in milliseconds. */
export interface RedisClientOptions {
  /** Longest wait for a TCP connection. Default 2000. */
  connectTimeoutMs?: number;
  /** Longest wait for one command's reply; it is then rejected. Default 500. */
  commandTimeoutMs?: number;
  /** First reconnect delay; doubles per failed attempt. Default 50. */
  initialReconnectDelayMs?: number;
  /** Cap of the reconnect delay. Default 2000. */
  maxReconnectDelayMs?: number;
}

/** Connection errors are logged at most once per this many milliseconds (10 s). */
export const REDIS_ERROR_LOG_INTERVAL_MS = 10_000;

/**
 * Creates a lazily connecting, fail-fast ioredis client for `url` (`redis://[user:pass@]host:port/db`,
 * `rediss://` for TLS). Connection errors are logged (at most once per
 * {@link REDIS_ERROR_LOG_INTERVAL_MS}, password redacted) and the client keeps reconnecting;
 * reconnection after an outage is logged at `info`.
 *
 * @returns the client, not yet connected (status `wait`). Close it with {@link closeRedis} on
 *   shutdown (not `quit()` alone: with the offline queue off, `quit()` is rejected while the
 *   connection is down and the reconnect loop keeps the process alive).
 */
export function createRedisClient(url: string, logger: Logger, options: RedisClientOptions = {}): Redis {
  const {
    connectTimeoutMs = 2000,
    commandTimeoutMs = 500,
    initialReconnectDelayMs = 50,
    maxReconnectDelayMs = 2000,
  } = options;
  const log = logger.child({ component: 'redis', url: redactRedisUrl(url) });
  const client = new Redis(url, {
    lazyConnect: true,
    enableOfflineQueue: false,
    maxRetriesPerRequest: 0,
    autoResendUnfulfilledCommands: false,
    connectTimeout: connectTimeoutMs,
    commandTimeout: commandTimeoutMs,
    retryStrategy: (attempt) => Math.min(initialReconnectDelayMs * 2 ** Math.min(attempt - 1, 20), maxReconnectDelayMs),
  });
  let lastErrorLog = Number.NEGATIVE_INFINITY;
  let suppressed = 0;
  let down = false;
  const warn = (fields: Record<string, unknown>, msg: string): void => {
    down = true;
    const now = Date.now();
    if (now - lastErrorLog < REDIS_ERROR_LOG_INTERVAL_MS) {
      suppressed++;
      return;
    }
    lastErrorLog = now;
    log.warn({ ...fields, suppressed }, msg);
    suppressed = 0;
  };
  client.on('error', (err: Error) => warn({ err }, 'redis connection error; reconnecting'));
  // A clean close (Redis stopped) emits no error; `reconnecting` is not emitted after quit().
  client.on('reconnecting', (delayMs: number) => {
    if (!down) warn({ delayMs }, 'redis connection lost; reconnecting');
  });
  client.on('ready', () => {
    if (down) log.info({ suppressed }, 'redis connection restored');
    else log.debug('redis connected');
    down = false;
    suppressed = 0;
    lastErrorLog = Number.NEGATIVE_INFINITY;
  });
  return client;
}

/**
 * Starts the connection of a lazy client and waits for it to be ready.
 *
 * @returns true when ready; false when the first attempt failed (logged as a warning): the client
 *   keeps reconnecting in the background and callers apply their fail mode meanwhile.
 */
export async function connectRedis(client: Redis, logger: Logger): Promise<boolean> {
  if (client.status === 'ready') return true;
  try {
    if (client.status === 'wait') {
      await client.connect();
      return true;
    }
    if (client.status === 'end' || client.status === 'close') return false;
    await new Promise<void>((resolve, reject) => {
      const onReady = (): void => {
        client.off('error', onError);
        resolve();
      };
      const onError = (err: Error): void => {
        client.off('ready', onReady);
        reject(err);
      };
      client.once('ready', onReady);
      client.once('error', onError);
    });
    return true;
  } catch (err) {
    logger.warn({ err }, 'redis is not reachable yet; continuing and reconnecting in the background');
    return false;
  }
}

/**
 * Closes a client within `timeoutMs` whatever Redis is doing. A `ready` client is sent `QUIT`
 * (pending replies are read first) for at most `timeoutMs`; then, or at once when the connection
 * is down, `disconnect()` closes the socket and cancels any scheduled reconnect, so no timer or
 * socket of the client is left to keep the process alive. Never rejects.
 *
 * @param timeoutMs - longest wait for `QUIT`'s reply, in milliseconds. Default 1000.
 */
export async function closeRedis(client: Redis, timeoutMs = 1000): Promise<void> {
  if (client.status === 'ready') {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([
      client.quit().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]);
    clearTimeout(timer);
  }
  if (client.status !== 'end') client.disconnect();
}

/** `url` with its password replaced by `***`, for logs. */
export function redactRedisUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password !== '') u.password = '***';
    return u.toString();
  } catch {
    return '<invalid redis url>';
  }
}
