/**
 * Token revocations announced across replicas over Redis pub/sub: each replica publishes the id
 * of a token it revoked on one channel, and every replica drops that token — and the tokens minted
 * from it — from its verification cache when the message arrives, instead of serving them until
 * the cache entry lapses (5 s).
 *
 * Best effort by design: the database stays the authority, so a lost message only means the
 * 5 s bound applies. Messages sent while a replica's subscription was down are lost (Redis pub/sub
 * keeps nothing), so a replica that reconnects clears its whole cache.
 *
 * @module
 */
import type { RevocationFeed } from '../auth/tokens.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import { closeRedis, connectRedis, createRedisClient, type Redis } from './redis.js';

/** Default channel of {@link createRedisRevocationFeed} (as `auth.revocationChannel`). */
export const DEFAULT_REVOCATION_CHANNEL = 'swb:tokens:revoked';

/** Options for {@link createRedisRevocationFeed}. */
export interface RedisRevocationFeedOptions {
  /** Connection that publishes (a fail-fast client from `createRedisClient`). The feed owns it. */
  publisher: Redis;
  /**
   * A connection of its own: a subscribed Redis connection can run no other command. The feed
   * owns it.
   */
  subscriber: Redis;
  /** Pub/sub channel; every replica of one deployment must use the same. Pub/sub ignores the db index. */
  channel: string;
  logger: Logger;
  /**
   * What the messages announce, for log lines. Default `token revocations` (the feed also
   * carries other announcements of one id, e.g. ended sessions).
   */
  what?: string;
}

/** A {@link RevocationFeed} with the step that connects it. */
export interface RedisRevocationFeed extends RevocationFeed {
  /**
   * Connects both clients and subscribes. Never throws: when Redis is not reachable yet the
   * clients keep reconnecting and the subscription is made on the first `ready`.
   */
  start(): Promise<void>;
}

/**
 * Creates the feed (not connected: call {@link RedisRevocationFeed.start}). Every `ready` of the
 * subscriber after the first tells the listeners that messages may have been lost (`undefined`).
 */
export function createRedisRevocationFeed(options: RedisRevocationFeedOptions): RedisRevocationFeed {
  const { publisher, subscriber, channel, logger } = options;
  const what = options.what ?? 'token revocations';
  const listeners: Array<(tokenId: string | undefined) => void> = [];
  let started = false;
  let readyBefore = false;
  const subscribe = (): Promise<void> =>
    subscriber.subscribe(channel).then(
      () => undefined,
      (err: unknown) =>
        logger.warn({ err, channel }, `could not subscribe to ${what}; those of other replicas are not heard`),
    );
  subscriber.on('message', (from: string, message: string) => {
    if (from !== channel || message === '') return;
    for (const listener of listeners) listener(message);
  });
  subscriber.on('ready', () => {
    if (readyBefore) for (const listener of listeners) listener(undefined);
    readyBefore = true;
    // A reconnect, or a first connection that `start()` could not make: (re)subscribe.
    if (started) void subscribe();
  });
  return {
    async start() {
      await connectRedis(publisher, logger);
      if (await connectRedis(subscriber, logger)) await subscribe();
      started = true;
    },
    async publish(tokenId) {
      try {
        await publisher.publish(channel, tokenId);
      } catch (err) {
        logger.warn({ err, channel }, `could not announce one of the ${what} to other replicas`);
      }
    },
    subscribe(listener) {
      listeners.push(listener);
    },
    async close() {
      // Not quit() alone: while Redis is unreachable it is rejected and the reconnect loop goes on.
      await Promise.all([closeRedis(publisher), closeRedis(subscriber)]);
    },
  };
}

/**
 * Publishes one message from a process that does not run a gateway (`switchboard token revoke`
 * announces a revoked token id, `switchboard tools approve` an approval): connects, publishes
 * `message` on `channel`, disconnects.
 *
 * @returns false when Redis could not be reached or refused the command (never throws)
 */
export async function publishOnce(url: string, channel: string, message: string): Promise<boolean> {
  const logger = silentLogger();
  const client = createRedisClient(url, logger);
  try {
    if (!(await connectRedis(client, logger))) return false;
    await client.publish(channel, message);
    return true;
  } catch {
    return false;
  } finally {
    client.disconnect();
  }
}
