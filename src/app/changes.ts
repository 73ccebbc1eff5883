/**
 * Shared changes between replicas: runtime servers written through one replica's admin API and
 * tool approvals are announced over Redis pub/sub (`runtimeServers.changesChannel`), and every
 * other replica re-reads them from the shared database at once instead of at its next restart
 * (servers) or its next pin re-read (approvals, every 5 s while a tool is changed).
 *
 * A message is `{origin} {kind}`: `origin` is a random id per process (a replica ignores its own
 * announcements, whose effect it already applied), `kind` is `servers`, `pins` or `identity`
 * (a rotation of the identity signing key, `switchboard identity rotate`). The database is
 * the source of truth; a message only says "re-read now", so a lost one (Redis down) costs time,
 * never correctness, and a reconnect re-reads both.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { Gateway } from '../gateway/gateway.js';
import type { PinRegistry } from '../guardrails/pins.js';
import { applyRuntimeServers } from '../http/admin-api.js';
import type { Logger } from '../observability/logger.js';
import type { ServerStore } from '../store/types.js';

/** What changed: the runtime servers, the approvals of tool pins, or the identity signing keys. */
export type SharedChange = 'servers' | 'pins' | 'identity';

/** The feed of shared changes; see {@link startChangeFeed}. */
export interface ChangeFeed {
  /** Tells the other replicas that `kind` changed in the database. Never throws. */
  announce(kind: SharedChange): void;
  /** Waits for the re-reads under way (tests, shutdown). */
  settled(): Promise<void>;
  close(): Promise<void>;
}

/** Options of {@link startChangeFeed}. */
export interface ChangeFeedOptions {
  gateway: Gateway;
  servers: ServerStore;
  /** The pin registry, when a `pinTools` guardrail made one (it may appear on a reload). */
  pins: () => PinRegistry | undefined;
  redisUrl: string;
  /** Pub/sub channel; every replica of one deployment uses the same. */
  channel: string;
  /** Re-reads the identity signing keys (after a rotation). */
  identityKeys?: () => Promise<void>;
  logger: Logger;
}

/**
 * Subscribes to the changes channel and returns the feed that announces this replica's changes.
 * Re-reads run one at a time; announcements that arrive while one runs are folded into one
 * more re-read of that kind.
 */
export async function startChangeFeed(options: ChangeFeedOptions): Promise<ChangeFeed> {
  const { gateway, servers, pins, redisUrl, channel } = options;
  const { createRedisClient } = await import('../store/redis.js');
  const { createRedisRevocationFeed } = await import('../store/redis-revocations.js');
  const log = options.logger.child({ component: 'shared-changes' });
  const origin = randomBytes(8).toString('hex');
  const feed = createRedisRevocationFeed({
    publisher: createRedisClient(redisUrl, log),
    subscriber: createRedisClient(redisUrl, log),
    channel,
    logger: log,
    what: 'runtime server changes and tool approvals',
  });

  const pending = new Set<SharedChange>();
  let running: Promise<void> = Promise.resolve();
  let closed = false;
  const reread = async (kind: SharedChange): Promise<void> => {
    if (kind === 'servers') {
      // Without waiting for the servers to start: a hanging one must not hold the next re-read.
      const result = await applyRuntimeServers(gateway, servers, 0);
      if (result.added.length + result.removed.length + result.changed.length > 0)
        log.info(result, 'runtime servers changed by another replica');
    } else if (kind === 'pins') {
      await pins()?.refresh();
    } else {
      await options.identityKeys?.();
    }
  };
  const schedule = (kind: SharedChange): void => {
    if (closed || pending.has(kind)) return;
    pending.add(kind);
    running = running.then(async () => {
      pending.delete(kind);
      if (closed) return;
      try {
        await reread(kind);
      } catch (err) {
        log.warn({ err, kind }, 'could not apply a change announced by another replica; it applies at the next one');
      }
    });
  };

  feed.subscribe((message) => {
    // undefined: the subscription was re-established and announcements may have been missed.
    if (message === undefined) {
      schedule('servers');
      schedule('pins');
      schedule('identity');
      return;
    }
    const space = message.indexOf(' ');
    if (space <= 0 || message.slice(0, space) === origin) return;
    const kind = message.slice(space + 1);
    if (kind === 'servers' || kind === 'pins' || kind === 'identity') schedule(kind);
  });
  await feed.start();
  return {
    announce(kind) {
      void feed.publish(`${origin} ${kind}`);
    },
    settled: () => running,
    async close() {
      closed = true;
      await running;
      await feed.close();
    },
  };
}
