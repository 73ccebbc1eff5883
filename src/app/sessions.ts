/**
 * Portable sessions: the {@link SessionSealer} built from `sessions.portable` and
 * `sessions.keys` (or, without keys, from the gateway's signing secret), and the Redis feeds on
 * which replicas announce the sessions they ended, pass on client answers and notifications, and
 * hand a session's stream over to the replica its client resumed it on.
 *
 * @module
 */
import type { TokenService } from '../auth/tokens.js';
import type { SwitchboardConfig } from '../config/schema.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../observability/logger.js';
import type { JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import { deriveSessionKey, SESSION_KEY_INFO, SessionSealer, sessionKeyOf } from '../gateway/session-seal.js';
import { startSlotForwarding } from './forwarding.js';
import { HANDOVER_TIMEOUT_MS, type StreamHandover } from '../gateway/stream-handover.js';

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
  /** At the start of a drain: lets the other replicas take over this one's isolated children. */
  drain(): Promise<void>;
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
 * {@link MAX_FORWARDED_NOTIFICATION}, it is dropped with a warning. The same channel carries the
 * stream handovers of `gateway/stream-handover.ts` ({@link handoverExchange}). And the owners of
 * session- and user-isolated stdio children are shared (`./forwarding.ts`).
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
  // connection's messages) raised on a replica that does not hold the session's stream; and the
  // handover of a session's stream to the replica its client resumed it on.
  const events = channel(config.sessions.eventsChannel, 'session notifications');
  const handovers = handoverExchange(gateway, (message) => void events.publish(message), log);
  events.subscribe((message) => {
    const o = message === undefined ? undefined : parseSessionMessage(message);
    if (o === undefined) {
      if (message !== undefined) log.debug('a malformed message on the session notifications channel was ignored');
      return;
    }
    if (o.n !== undefined) {
      if (isNotification(o.n)) gateway.deliverNotification(o.s, o.n);
    } else if (o.h !== undefined) handovers.asked(o.s, o.h);
    else if (o.o !== undefined) handovers.answered(o.o);
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
  // Session- and user-isolated stdio children run on one replica; the others pass calls on.
  const forwarding = await startSlotForwarding(gateway, config, redisUrl, logger);
  return {
    drain: () => forwarding.drain(),
    close: async () => {
      await forwarding.close();
      gateway.onSessionEnded = undefined;
      gateway.onForeignClientResponse = undefined;
      gateway.onForeignNotification = undefined;
      handovers.close();
      await Promise.all([feed.close(), answers.close(), events.close()]);
    },
  };
}

/** A message of the session channels: `{"s": session id, …}`; undefined when it is not one. */
function parseSessionMessage(message: string): (Record<string, unknown> & { s: string }) | undefined {
  try {
    const o = JSON.parse(message) as unknown;
    if (typeof o !== 'object' || o === null) return undefined;
    return typeof (o as { s?: unknown }).s === 'string' ? (o as Record<string, unknown> & { s: string }) : undefined;
  } catch {
    return undefined;
  }
}

/** Most handovers one replica waits for at once; beyond, a resumption is answered without one. */
export const MAX_PENDING_HANDOVERS = 256;

/**
 * The stream handover exchange over the session notifications channel
 * (`gateway/stream-handover.ts`): a question `{"s", "h": {"r": owner, "x": stream, "a": after,
 * "t": asker, "k": key}}`, heard by every replica and answered by the owner with `{"s", "o":
 * {"t": asker, "k": key, "e": [[seq, data], …], "l": live, "c": truncated}}` (`"none": true`
 * when it has no state for the session). Sets `gateway.streamHandover.request`.
 */
function handoverExchange(gateway: Gateway, publish: (message: string) => void, log: Logger) {
  const link = gateway.streamHandover;
  const pending = new Map<string, { done: (h: StreamHandover | undefined) => void; timer: NodeJS.Timeout }>();
  let next = 0;
  link.request = (sessionId, replica, stream, after, done) => {
    if (pending.size >= MAX_PENDING_HANDOVERS) {
      log.warn({ session: sessionId }, 'too many stream handovers in flight; this one goes on without the events');
      done(undefined);
      return;
    }
    const k = String(next++);
    const timer = setTimeout(() => {
      pending.delete(k);
      done(undefined);
    }, HANDOVER_TIMEOUT_MS);
    timer.unref();
    pending.set(k, { done, timer });
    publish(JSON.stringify({ s: sessionId, h: { r: replica, x: stream, a: after, t: link.replica, k } }));
  };
  return {
    asked(sessionId: string, h: unknown): void {
      if (typeof h !== 'object' || h === null) return;
      const q = h as Record<string, unknown>;
      if (q.r !== link.replica || typeof q.x !== 'number' || typeof q.a !== 'number') return;
      const session = gateway.sessions.get(sessionId);
      const handover = session === undefined ? undefined : link.source?.(session, q.x, q.a);
      const o =
        handover === undefined
          ? { t: q.t, k: q.k, none: true }
          : { t: q.t, k: q.k, e: handover.events, l: handover.live, c: handover.truncated === true };
      publish(JSON.stringify({ s: sessionId, o }));
    },
    answered(o: unknown): void {
      if (typeof o !== 'object' || o === null) return;
      const a = o as Record<string, unknown>;
      if (a.t !== link.replica || typeof a.k !== 'string') return;
      const waiting = pending.get(a.k);
      if (waiting === undefined) return;
      pending.delete(a.k);
      clearTimeout(waiting.timer);
      const events = Array.isArray(a.e)
        ? a.e.filter(
            (ev): ev is [number, string] => Array.isArray(ev) && typeof ev[0] === 'number' && typeof ev[1] === 'string',
          )
        : [];
      waiting.done(a.none === true ? undefined : { events, live: a.l === true, truncated: a.c === true });
    },
    close(): void {
      link.request = undefined;
      for (const { done, timer } of pending.values()) {
        clearTimeout(timer);
        done(undefined);
      }
      pending.clear();
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
