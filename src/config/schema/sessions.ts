/**
 * Client sessions: idle and lifetime bounds, resumption buffer and how many a principal may hold.
 *
 * @module
 */
import { z } from 'zod';
import { Duration } from './common.js';

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
  })
  .strict()
  .default({
    idleTimeout: 1_800_000,
    maxLifetime: 86_400_000,
    eventStoreSize: 1000,
    maxSessions: 10_000,
    attributionWait: 30_000,
    maxPerPrincipal: 100,
  });
