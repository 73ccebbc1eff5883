/**
 * What the health endpoints answer around start-up: until the gateway is started the listener
 * answers `/healthz` (alive) and refuses everything else with 503 `starting`; once started,
 * `/readyz` adds the stores' checks (database, Redis) to the gateway's own.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Redis } from 'ioredis';
import type { Database } from '../store/types.js';

/**
 * The request handler while the gateway starts: `/healthz` answers 200 `ok`, every other
 * request 503 `starting` with `Retry-After: 1`.
 */
export function startingHandler(req: IncomingMessage, res: ServerResponse): void {
  const live = req.url === '/healthz';
  res.writeHead(live ? 200 : 503, { 'content-type': 'application/json', 'retry-after': '1' });
  res.end(live ? '{"status":"ok"}' : '{"status":"starting"}');
}

/**
 * The extra `/readyz` checks: the database answers a ping, and Redis (when `redis()` returns a
 * client) is connected.
 */
export function readinessChecks(
  database: Database,
  redis: () => Redis | undefined,
): () => Promise<Array<{ name: string; ok: boolean }>> {
  return async () => {
    const checks = [{ name: 'database', ok: await database.ping().catch(() => false) }];
    const client = redis();
    if (client) checks.push({ name: 'redis', ok: client.status === 'ready' });
    return checks;
  };
}
