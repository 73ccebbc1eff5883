/**
 * Portable sessions: the {@link SessionSealer} built from `sessions.portable` and
 * `sessions.keys` (or, without keys, from the gateway's signing secret), and the Redis feed on
 * which replicas announce the sessions they ended.
 *
 * @module
 */
import type { TokenService } from '../auth/tokens.js';
import type { SwitchboardConfig } from '../config/schema.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../observability/logger.js';
import type { JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import { deriveSessionKey, SESSION_KEY_INFO, SessionSealer, sessionKeyOf } from '../gateway/session-seal.js';

/**
 * The sealer of `config` (undefined when `sessions.portable` is false): the configured keys,
 * the first sealing, or one key derived from the token service's signing secret. Keys are
 * derived here, once per start or reload, never per request.
 */
export function sessionSealerFor(config: SwitchboardConfig, tokens: TokenService): SessionSealer | undefined {
  const { portable, keys } = config.sessions;
  if (!portable) return undefined;
  if (keys.length > 0) return new SessionSealer(keys.map((k) => deriveSessionKey(k.secret, k.id)));
  return new SessionSealer([sessionKeyOf(tokens.deriveKey(SESSION_KEY_INFO))]);
}

/** Largest notification passed on to another replica, in characters of its JSON message (1 MiB). */
export const MAX_FORWARDED_NOTIFICATION = 1 << 20;

/** The Redis feeds of portable sessions; see {@link startSessionEndFeed}. */
export interface SessionEndFeed {
  close(): Promise<void>;
}

/**
 * Connects `gateway` to the other replicas over Redis pub/sub (`sessions.endedChannel`): a sealed
 * session this replica ends for good (the client's DELETE, the operator) is announced, and one
 * another replica announces is closed here and never restored again. Best effort: pub/sub keeps
 * nothing, so a replica that was disconnected from Redis misses the announcements of that time.
 * On a second channel (`sessions.answersChannel`) a client's answer to a server→client request
 * that another replica sent is passed on to every replica; the one whose request waits takes it.
 * On a third (`sessions.eventsChannel`) a notification for one session raised where its stream
 * is not held (an update of a resource it subscribed to through this replica, a message of its
 * session-isolated connection) goes to the replica holding the stream; larger than
 * {@link MAX_FORWARDED_NOTIFICATION}, it is dropped with a warning.
 */
export async function startSessionEndFeed(
  gateway: Gateway,
  config: SwitchboardConfig,
  redisUrl: string,
  logger: Logger,
): Promise<SessionEndFeed> {
  const { createRedisClient } = await import('../store/redis.js');
  const { createRedisRevocationFeed } = await import('../store/redis-revocations.js');
  const log = logger.child({ component: 'session-ends' });
  // One publishing and one subscribed connection per channel (a subscribed connection runs no other command).
  const channel = (name: string, what: string) =>
    createRedisRevocationFeed({
      publisher: createRedisClient(redisUrl, log),
      subscriber: createRedisClient(redisUrl, log),
      channel: name,
      logger: log,
      what,
    });
  // Answers and notifications travel as `{"s": session id, key: message}`.
  const onSessionMessage = (
    on: { subscribe(listener: (message: string | undefined) => void): void },
    key: 'r' | 'n',
    what: string,
    deliver: (session: string, message: unknown) => void,
  ): void =>
    on.subscribe((message) => {
      if (message === undefined) return;
      try {
        const o = JSON.parse(message) as Record<string, unknown>;
        if (typeof o.s === 'string') deliver(o.s, o[key]);
      } catch {
        log.debug(`a malformed message on the ${what} channel was ignored`);
      }
    });
  const feed = channel(config.sessions.endedChannel, 'ended sessions');
  feed.subscribe((message) => {
    if (message === undefined) return;
    const space = message.indexOf(' ');
    const createdAt = Number(message.slice(space + 1));
    if (space <= 0 || !Number.isFinite(createdAt)) return;
    gateway.endSession(message.slice(0, space), createdAt);
  });
  gateway.onSessionEnded = (id, createdAt) => void feed.publish(`${id} ${createdAt}`);
  // A client's answer to a server→client request another replica sent (sampling, elicitation,
  // roots): every replica hears it, the one whose request waits for it takes it.
  const answers = channel(config.sessions.answersChannel, 'client answers');
  onSessionMessage(answers, 'r', 'client answers', (s, r) => {
    if (isResponse(r)) gateway.deliverClientResponse(s, r);
  });
  gateway.onForeignClientResponse = (s, r) => void answers.publish(JSON.stringify({ s, r }));
  // A notification for one session (its subscription's resources/updated, its isolated
  // connection's messages) raised on a replica that does not hold the session's stream.
  const events = channel(config.sessions.eventsChannel, 'session notifications');
  onSessionMessage(events, 'n', 'session notifications', (s, n) => {
    if (isNotification(n)) gateway.deliverNotification(s, n);
  });
  gateway.onForeignNotification = (s, n) => {
    const message = JSON.stringify({ s, n });
    if (message.length > MAX_FORWARDED_NOTIFICATION)
      log.warn(
        { session: s, method: n.method, bytes: message.length },
        'a notification too large to pass on to another replica was dropped',
      );
    else void events.publish(message);
  };
  await Promise.all([feed.start(), answers.start(), events.start()]);
  return {
    close: async () => {
      gateway.onSessionEnded = undefined;
      gateway.onForeignClientResponse = undefined;
      gateway.onForeignNotification = undefined;
      await Promise.all([feed.close(), answers.close(), events.close()]);
    },
  };
}

function isNotification(v: unknown): v is JsonRpcNotification {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return o.jsonrpc === '2.0' && typeof o.method === 'string' && !('id' in o);
}

function isResponse(v: unknown): v is JsonRpcResponse {
  if (typeof v !== 'object' || v === null) return false;
  const o = v as Record<string, unknown>;
  return (typeof o.id === 'number' || typeof o.id === 'string') && ('result' in o || 'error' in o);
}
