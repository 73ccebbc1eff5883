/**
 * The gateway's graceful stop: first a drain (`/readyz` fails, no new sessions, every response
 * closes its connection, for `shutdown.drainDelay`), then named steps run one after another (HTTP listener, upstreams,
 * destination policy, usage log, tracing, rate limiter, guardrails, Redis, token revocations, session ends,
 * database), all bounded by one deadline. A step still open at the deadline is abandoned and
 * named in the {@link CloseReport}; a step that fails is logged and counts as closed.
 *
 * @module
 */
import type { Server } from 'node:http';
import type { RevocationFeed } from '../auth/tokens.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../observability/logger.js';
import type { Tracing } from '../observability/tracing.js';
import type { UsageLog } from '../observability/usage-log.js';
import type { Database } from '../store/types.js';
import type { Stages } from './pipeline.js';
import type { Tunnels } from './tunnels.js';

/** Options of {@link RunningGateway.close}. */
export interface CloseOptions {
  /** Time for every step together, in milliseconds. Default: `shutdown.gracePeriod` (10 s). */
  timeoutMs?: number;
}

/** What {@link RunningGateway.close} did. */
export interface CloseReport {
  /** Steps that had not finished by the deadline, e.g. `["upstreams", "usage log"]`; empty when all closed. */
  readonly unclosed: readonly string[];
}

/** What {@link createShutdown} closes. */
export interface ShutdownParts {
  readonly server: Server;
  readonly gateway: Gateway;
  readonly tunnels: Tunnels;
  /** The admin API's live feed: its open streams end before the listener closes. */
  readonly live?: { close(): void } | undefined;
  readonly usageLog: UsageLog | undefined;
  readonly tracing: Tracing;
  /** The rate limiter, guardrails, tool pins and Redis client of the request pipeline. */
  readonly stages: Stages;
  readonly revocations: RevocationFeed | undefined;
  /** The Redis feed of ended sessions (`./sessions.ts`), when Redis is configured. */
  readonly sessionEnds?: { drain?(): Promise<void>; close(): Promise<void> } | undefined;
  /** The Redis feed of runtime server changes and tool approvals (`./changes.ts`). */
  readonly changes?: { close(): Promise<void> } | undefined;
  /** Authentication; its periodic re-read of the identity keys is stopped. */
  readonly auth?: { close(): void } | undefined;
  readonly database: Database;
  /** Whether the gateway opened `database` (then it closes it too). */
  readonly ownsDatabase: boolean;
  readonly logger: Logger;
}

/**
 * Returns `RunningGateway.shutdown`: the graceful stop of `parts`, bounded by
 * `closeOptions.timeoutMs` (default `shutdown.gracePeriod` of the gateway's current config).
 * The returned function never rejects.
 */
export function createShutdown(parts: ShutdownParts): (closeOptions?: CloseOptions) => Promise<CloseReport> {
  const {
    server,
    gateway,
    tunnels,
    usageLog,
    tracing,
    stages,
    revocations,
    sessionEnds,
    changes,
    auth,
    database,
    ownsDatabase,
    logger,
  } = parts;
  return async (closeOptions: CloseOptions = {}): Promise<CloseReport> => {
    const timeoutMs = closeOptions.timeoutMs ?? gateway.config.shutdown.gracePeriod;
    const deadline = performance.now() + timeoutMs;
    const unclosed: string[] = [];
    const step = async (name: string, work: () => unknown): Promise<void> => {
      let timer: NodeJS.Timeout | undefined;
      const finished = await Promise.race([
        // Started in a microtask, before the timer can fire: every step runs, even past the deadline.
        Promise.resolve()
          .then(work)
          .then(
            () => true,
            (err: unknown) => {
              logger.warn({ err, step: name }, 'shutdown step failed');
              return true;
            },
          ),
        new Promise<false>((resolve) => {
          timer = setTimeout(() => resolve(false), Math.max(0, deadline - performance.now()));
        }),
      ]);
      clearTimeout(timer);
      if (!finished) unclosed.push(name);
    };
    // Drain: fail /readyz and refuse new sessions while still serving, so a load balancer stops
    // sending here before the listener closes (`shutdown.drainDelay`).
    gateway.draining = true;
    // Isolated children owned here: the other replicas start their own for the next calls.
    if (sessionEnds?.drain) await step('isolated children handover', () => sessionEnds.drain!());
    const drainDelay = Math.min(gateway.config.shutdown.drainDelay, timeoutMs / 2);
    if (drainDelay > 0) {
      logger.info({ drainDelayMs: drainDelay }, 'draining: /readyz fails, no new sessions; still serving');
      await new Promise((resolve) => setTimeout(resolve, drainDelay));
    }
    // Tunnels and live feeds first: their sockets would otherwise keep server.close() waiting.
    tunnels.close();
    parts.live?.close();
    await step(
      'http server',
      () =>
        new Promise<void>((resolve) => {
          server.close(() => resolve());
          server.closeIdleConnections();
          // Open streams (SSE) get a short drain, then are cut.
          setTimeout(() => server.closeAllConnections(), Math.min(2000, timeoutMs / 4)).unref();
        }),
    );
    await step('upstreams', () => gateway.stop());
    await step('destination policy', () => gateway.destinations?.close());
    await step('usage log', () => usageLog?.close());
    await step('tracing', () => tracing.shutdown());
    await step('rate limiter', () => stages.limiter?.close());
    await step('guardrails', async () => {
      await stages.guardrails?.close();
      await stages.pins?.close();
    });
    const client = stages.redis;
    if (client) {
      const { closeRedis } = await import('../store/redis.js');
      await step('redis', () => closeRedis(client, Math.min(1000, timeoutMs / 4)));
    }
    if (revocations) {
      const feed = revocations;
      await step('token revocations', () => feed.close());
    }
    if (sessionEnds) await step('session ends', () => sessionEnds.close());
    if (changes) await step('shared changes', () => changes.close());
    auth?.close();
    if (ownsDatabase) await step('database', () => database.close());
    return { unclosed };
  };
}
