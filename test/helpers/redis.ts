/**
 * Redis for tests: the shared server at 127.0.0.1:6379 (nothing kept on disk), or
 * `SWITCHBOARD_TEST_REDIS_URL`. Each test works under its own key prefix
 * ({@link uniqueKeyPrefix}) and deletes its keys afterwards ({@link deleteKeys}), so runs never
 * see each other's counters.
 *
 * Chaos tests never stop the shared server: they start their own `redis-server` on a free port
 * ({@link startRedisServer}) and stop/restart that one.
 *
 * Locally, when Redis (or the `redis-server` binary) is missing, the Redis half of a suite is
 * skipped with a loud warning; in CI (`CI` set) {@link redisGate} / {@link redisServerGate} throw
 * instead, failing the file.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';

/** The Redis the tests use. */
export const REDIS_URL = process.env.SWITCHBOARD_TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

/** The command that starts the shared Redis of the test machine again. */
export const REDIS_START_COMMAND =
  'redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /var/lib/redis --logfile /var/log/redis/ci.log';

let available: Promise<boolean> | undefined;

/** True when {@link REDIS_URL} answers `PING` within 3 s (checked once per file). */
export function redisAvailable(): Promise<boolean> {
  available ??= (async () => {
    const client = new Redis(REDIS_URL, {
      lazyConnect: true,
      connectTimeout: 3_000,
      enableOfflineQueue: false,
      maxRetriesPerRequest: 0,
      retryStrategy: () => null,
    });
    client.on('error', () => undefined);
    try {
      await client.connect();
      return (await client.ping()) === 'PONG';
    } catch {
      return false;
    } finally {
      client.disconnect();
    }
  })();
  return available;
}

function inCi(): boolean {
  return process.env.CI !== undefined && process.env.CI !== '';
}

function skipOrFail(what: string, why: string, fix: string): false {
  if (inCi()) throw new Error(`${why}; CI must run the ${what} (${fix})`);
  console.warn(`\n!!! SKIPPED: the ${what}: ${why}.\n!!! ${fix}\n!!! (With CI set, this is a failure.)\n`);
  return false;
}

/**
 * Decides whether the tests of a file that use the shared Redis run.
 *
 * @param what - what would be skipped, for the message (e.g. `rate-limit tests on Redis`).
 * @returns true when Redis is reachable; false (after a loud `console.warn`) when it is not and
 *   `CI` is unset.
 * @throws Error when Redis is unreachable and `CI` is set: CI must run these tests for real.
 */
export async function redisGate(what: string): Promise<boolean> {
  if (await redisAvailable()) return true;
  return skipOrFail(what, `Redis is not reachable at ${REDIS_URL}`, `Start it with: ${REDIS_START_COMMAND}`);
}

/** The `redis-server` binary chaos tests start, `SWITCHBOARD_TEST_REDIS_SERVER` or from `PATH`. */
export const REDIS_SERVER_BIN = process.env.SWITCHBOARD_TEST_REDIS_SERVER ?? 'redis-server';

/**
 * Decides whether the tests of a file that start their own `redis-server` run.
 *
 * @returns true when {@link REDIS_SERVER_BIN} runs; false (loud warning) when it does not and `CI`
 *   is unset.
 * @throws Error when it does not run and `CI` is set.
 */
export function redisServerGate(what: string): boolean {
  const r = spawnSync(REDIS_SERVER_BIN, ['--version'], { encoding: 'utf8', timeout: 5_000 });
  if (r.status === 0) return true;
  return skipOrFail(what, `${REDIS_SERVER_BIN} cannot be run`, 'Install Redis (apt-get install redis-server)');
}

/** A fresh key prefix for one test: `swb_test:<prefix>:<pid>:<random>`. */
export function uniqueKeyPrefix(prefix: string): string {
  return `swb_test:${prefix}:${process.pid}:${randomBytes(4).toString('hex')}`;
}

/** Deletes every key under `prefix` (`SCAN` + `DEL`) from the Redis at `url`. */
export async function deleteKeys(prefix: string, url: string = REDIS_URL): Promise<void> {
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null });
  client.on('error', () => undefined);
  try {
    await client.connect();
    let cursor = '0';
    do {
      const [next, keys] = await client.scan(cursor, 'MATCH', `${prefix}:*`, 'COUNT', 1000);
      if (keys.length > 0) await client.del(...keys);
      cursor = next;
    } while (cursor !== '0');
  } finally {
    client.disconnect();
  }
}

/** Resolves when `client` is `ready` (immediately if it is), rejects after `timeoutMs`. */
export function waitForReady(client: Redis, timeoutMs = 10_000): Promise<void> {
  if (client.status === 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('ready', onReady);
      reject(new Error(`redis client not ready within ${timeoutMs}ms (status ${client.status})`));
    }, timeoutMs);
    const onReady = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('ready', onReady);
  });
}

/** Resolves when `client` has noticed its connection is gone (status no longer `ready`). */
export function waitForDisconnect(client: Redis, timeoutMs = 10_000): Promise<void> {
  if (client.status !== 'ready') return Promise.resolve();
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off('close', onClose);
      reject(new Error(`redis client still ${client.status} after ${timeoutMs}ms`));
    }, timeoutMs);
    const onClose = (): void => {
      clearTimeout(timer);
      resolve();
    };
    client.once('close', onClose);
  });
}

/** A `redis-server` this test started, on its own port and temp directory. */
export interface OwnRedisServer {
  readonly port: number;
  readonly url: string;
  /** The running process's pid (undefined while stopped). */
  readonly pid: number | undefined;
  /** Stops the server (SIGTERM, then SIGKILL after 5 s) and waits for it to exit. */
  stop(): Promise<void>;
  /** Starts it again on the same port (empty: nothing is kept on disk). */
  start(): Promise<void>;
  /** Stops it (if running) and removes its directory. */
  close(): Promise<void>;
}

/** Picks a TCP port that is free on 127.0.0.1 right now. */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('no TCP port');
  return address.port;
}

/**
 * Starts a private `redis-server --port <free> --save "" --appendonly no` for chaos tests; never
 * the shared one. Resolves once it accepts connections.
 */
export async function startRedisServer(): Promise<OwnRedisServer> {
  const port = await freePort();
  const dir = mkdtempSync(join(tmpdir(), 'swb-redis-'));
  let child: ChildProcess | undefined;

  const start = async (): Promise<void> => {
    if (child) return;
    const proc = spawn(
      REDIS_SERVER_BIN,
      ['--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', dir],
      { stdio: ['ignore', 'pipe', 'pipe'] },
    );
    child = proc;
    let output = '';
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        proc.kill('SIGKILL');
        reject(new Error(`redis-server on port ${port} did not start within 10s:\n${output}`));
      }, 10_000);
      const onData = (chunk: Buffer): void => {
        output += chunk.toString();
        if (output.includes('Ready to accept connections')) {
          clearTimeout(timer);
          resolve();
        }
      };
      proc.stdout?.on('data', onData);
      proc.stderr?.on('data', onData);
      proc.once('exit', (code, signal) => {
        clearTimeout(timer);
        reject(new Error(`redis-server on port ${port} exited (${code ?? signal}):\n${output}`));
      });
    });
    // Keep draining its output so the pipe never fills up.
    proc.stdout?.resume();
    proc.stderr?.resume();
  };

  const stop = async (): Promise<void> => {
    const proc = child;
    if (!proc) return;
    child = undefined;
    if (proc.exitCode !== null || proc.signalCode !== null) return;
    await new Promise<void>((resolve) => {
      const timer = setTimeout(() => proc.kill('SIGKILL'), 5_000);
      proc.once('exit', () => {
        clearTimeout(timer);
        resolve();
      });
      proc.kill('SIGTERM');
    });
  };

  await start();
  return {
    port,
    url: `redis://127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    stop,
    start,
    close: async () => {
      await stop();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
