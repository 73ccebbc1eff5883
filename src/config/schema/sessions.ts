/**
 * Client sessions: idle and lifetime bounds, resumption buffer and how many a principal may hold.
 *
 * @module
 */
import { z } from 'zod';
import { Duration, KeyRing } from './common.js';

/** The `sessions` section. */
export const SessionsConfig = z
  .object({
    /**
     * A client session with no message from its client (request, notification, response, or a
     * GET opening its stream) for this long is closed, open stream or not; its next request
     * gets 404. A request still in flight keeps it. Default 30m.
     */
    idleTimeout: Duration.default(1_800_000),
    /** A client session is closed this long after `initialize`, however busy; 0 = no limit. Default 24h. */
    maxLifetime: Duration.default(86_400_000),
    /** Events kept per session for `Last-Event-ID` resumption. Default 1000. */
    eventStoreSize: z.number().int().min(0).default(1000),
    /** Maximum concurrent client sessions; more gets 503. Default 10000. */
    maxSessions: z.number().int().min(1).default(10_000),
    /** How long a call from a client declaring sampling/elicitation/roots may wait for a shared stdio child. Default 30s. */
    attributionWait: Duration.default(30_000),
    /** Concurrent sessions one principal may hold; more gets 429. `0` or `null` = no limit. Default 100. */
    maxPerPrincipal: z.number().int().min(0).nullable().default(100),
    /**
     * Seal Streamable HTTP session ids (AES-256-GCM over principal, endpoint, protocol version,
     * client capabilities and info) so that every replica with the same key serves every
     * session, and a restarted process keeps serving its sessions. Default true.
     */
    portable: z.boolean().default(true),
    /**
     * Redis pub/sub channel on which replicas announce sealed sessions that ended (the client's
     * DELETE, the operator), when `SWITCHBOARD_REDIS_URL` is set. Default `swb:sessions:ended`.
     */
    endedChannel: z.string().min(1).default('swb:sessions:ended'),
    /**
     * Redis pub/sub channel on which a replica passes on a client's answer to a server→client
     * request (sampling, elicitation, roots) that another replica sent, when
     * `SWITCHBOARD_REDIS_URL` is set. Default `swb:sessions:answers`.
     */
    answersChannel: z.string().min(1).default('swb:sessions:answers'),
    /**
     * Redis pub/sub channel on which a replica passes on a notification for one session (an
     * update of a resource it subscribed to, a message of its session-isolated connection) to
     * the replica holding the session's GET stream, and the stored events of a stream its
     * client resumes on another replica (`gateway/stream-handover.ts`), when
     * `SWITCHBOARD_REDIS_URL` is set. Default `swb:sessions:events`.
     */
    eventsChannel: z.string().min(1).default('swb:sessions:events'),
    /**
     * Prefix of the Redis keys recording which replica runs the `session`/`user`-isolated stdio
     * child of a session or principal, and of each replica's channel for calls passed on to it
     * (`upstream/ownership.ts`), when `SWITCHBOARD_REDIS_URL` is set. Default `swb:owners:`.
     */
    ownersPrefix: z.string().min(1).default('swb:owners:'),
    /**
     * Keys that seal session ids, each `{id, secret}` (secret ≥ 32 characters; put it in the
     * environment: `secret: ${SWITCHBOARD_SESSION_KEY}`). The first seals; all open ids, so a
     * rotation adds the new key first and removes the old one after `maxLifetime`. Default: one
     * key derived from the gateway's signing secret (`SWITCHBOARD_SECRET`, or the one stored in
     * the database), which every replica sharing that secret or database derives alike.
     */
    keys: KeyRing('a session key secret'),
  })
  .strict()
  .default({
    idleTimeout: 1_800_000,
    maxLifetime: 86_400_000,
    eventStoreSize: 1000,
    maxSessions: 10_000,
    attributionWait: 30_000,
    maxPerPrincipal: 100,
    portable: true,
    endedChannel: 'swb:sessions:ended',
    answersChannel: 'swb:sessions:answers',
    eventsChannel: 'swb:sessions:events',
    ownersPrefix: 'swb:owners:',
    keys: [],
  });
