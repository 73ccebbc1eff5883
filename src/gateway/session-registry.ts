/**
 * The gateway's live client sessions: lookup by id and by principal, the session limits
 * (`sessions.maxSessions`, `sessions.maxPerPrincipal`) and expiry (`sessions.idleTimeout`,
 * `sessions.maxLifetime`), all by the gateway's clock.
 *
 * @module
 */
import type { Principal } from '../auth/principal.js';
import type { SwitchboardConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { ClientSession } from './client-session.js';

const NO_SESSIONS: ReadonlySet<ClientSession> = new Set();

/** Ended sealed sessions remembered at most (the oldest are forgotten first). */
export const MAX_ENDED_SESSIONS = 100_000;

/** Options of {@link SessionRegistry}. */
export interface SessionRegistryOptions {
  /** The session settings in force (read at each use: a reload may replace them). */
  settings: () => SwitchboardConfig['sessions'];
  /** The gateway clock (ms). */
  now: () => number;
}

/** Live sessions by id and by principal, with their limits and expiry. */
export class SessionRegistry {
  #sessions = new Map<string, ClientSession>();
  /** Open sessions per principal id (sessions.maxPerPrincipal, the admin API's filter). */
  #byPrincipal = new Map<string, Set<ClientSession>>();
  /** When the global limit last expired sessions itself (gateway clock, ms). */
  #limitSweepAt = -Infinity;
  /** The earliest expiry deadline seen by the last pass over all sessions (gateway clock, ms). */
  #nextExpiry = Infinity;
  #settings: () => SwitchboardConfig['sessions'];
  #now: () => number;
  /**
   * Sealed sessions that ended (id → when to forget, gateway clock ms): a sealed id stays
   * readable until `sessions.maxLifetime`, so an ended one must not be restored from it.
   */
  #ended = new Map<string, number>();

  constructor(options: SessionRegistryOptions) {
    this.#settings = options.settings;
    this.#now = options.now;
  }

  /** Live sessions by id (closed ones are removed by {@link remove}). */
  get sessions(): ReadonlyMap<string, ClientSession> {
    return this.#sessions;
  }

  /**
   * Checks that `principal` may open one more session, closing expired sessions that stand in
   * the way. The principal's own limit is checked first, so one principal at its limit never
   * costs a pass over every session.
   *
   * @throws GatewayError `SWB_ERR_SESSION_PRINCIPAL_LIMIT` (429) when the principal holds
   *   `sessions.maxPerPrincipal` live sessions; `SWB_ERR_SESSION_LIMIT` (503) when
   *   `sessions.maxSessions` are open. Both carry `data.retryAfterMs`: the time until the first
   *   of those sessions expires (at least 1 s), for the edge's `Retry-After` (RFC 9110 §10.2.3).
   */
  admit(principal: Principal): void {
    const cfg = this.#settings();
    const cap = cfg.maxPerPrincipal;
    const own = this.#byPrincipal.get(principal.id);
    if (cap && own && own.size >= cap) {
      const now = this.#now();
      let next = Infinity;
      for (const s of [...own]) {
        const reason = this.#expiry(s, now);
        if (reason !== undefined) s.close(reason);
        else next = Math.min(next, this.#deadline(s));
      }
      if (own.size >= cap) {
        throw new GatewayError(
          'SWB_ERR_SESSION_PRINCIPAL_LIMIT',
          `this principal already holds ${own.size} sessions (sessions.maxPerPrincipal=${cap}); close one (DELETE) or let one expire`,
          { data: { limit: cap, retryAfterMs: this.#retryAfterMs(next, now) } },
        );
      }
    }
    if (this.#sessions.size >= cfg.maxSessions) {
      const now = this.#now();
      // At most one pass over every session per second: refused initializes stay cheap.
      if (now - this.#limitSweepAt >= 1000) {
        this.#limitSweepAt = now;
        this.expire(now);
      }
      if (this.#sessions.size >= cfg.maxSessions) {
        throw new GatewayError('SWB_ERR_SESSION_LIMIT', `too many sessions (sessions.maxSessions=${cfg.maxSessions})`, {
          data: { retryAfterMs: this.#retryAfterMs(this.#nextExpiry, now) },
        });
      }
    }
  }

  /** Registers a new session (after {@link admit}). */
  add(session: ClientSession): void {
    this.#sessions.set(session.id, session);
    // Looked up again: closing the principal's expired sessions in admit() may have removed its set.
    const set = this.#byPrincipal.get(session.principal.id);
    if (set) set.add(session);
    else this.#byPrincipal.set(session.principal.id, new Set([session]));
  }

  /** A live session, or undefined when unknown, closed, idle past `sessions.idleTimeout` or past `sessions.maxLifetime`. */
  get(id: string): ClientSession | undefined {
    const s = this.#sessions.get(id);
    if (!s) return undefined;
    const reason = this.#expiry(s, this.#now());
    if (reason !== undefined) {
      s.close(reason);
      return undefined;
    }
    return s;
  }

  /** The live sessions of one principal (empty when it holds none). */
  sessionsOf(principalId: string): ReadonlySet<ClientSession> {
    return this.#byPrincipal.get(principalId) ?? NO_SESSIONS;
  }

  /**
   * Remembers that the sealed session `id` ended, so it is never restored from its id again,
   * until its id could no longer be restored anyway (`createdAt + sessions.maxLifetime`; a
   * day after now without a lifetime). At most {@link MAX_ENDED_SESSIONS} are remembered.
   */
  markEnded(id: string, createdAt: number): void {
    const { maxLifetime } = this.#settings();
    const until = maxLifetime > 0 ? createdAt + maxLifetime : this.#now() + 86_400_000;
    this.#ended.delete(id);
    this.#ended.set(id, until);
    if (this.#ended.size > MAX_ENDED_SESSIONS) this.#ended.delete(this.#ended.keys().next().value as string);
  }

  /** True when the sealed session `id` ended (see {@link markEnded}). */
  hasEnded(id: string): boolean {
    const until = this.#ended.get(id);
    return until !== undefined && until > this.#now();
  }

  /** Forgets a closed session; false when it was not registered (any more). */
  remove(session: ClientSession): boolean {
    if (!this.#sessions.delete(session.id)) return false;
    if (session.externalId !== session.id) this.markEnded(session.id, session.createdAt);
    const own = this.#byPrincipal.get(session.principal.id);
    own?.delete(session);
    if (own?.size === 0) this.#byPrincipal.delete(session.principal.id);
    return true;
  }

  /** Closes every expired session; returns how many, and records the next deadline. */
  expire(now: number): number {
    let closed = 0;
    let next = Infinity;
    for (const s of [...this.#sessions.values()]) {
      const reason = this.#expiry(s, now);
      if (reason !== undefined) {
        s.close(reason);
        closed++;
      } else next = Math.min(next, this.#deadline(s));
    }
    this.#nextExpiry = next;
    for (const [id, until] of this.#ended) if (until <= now) this.#ended.delete(id);
    return closed;
  }

  /**
   * When a session expires if its client stays silent (gateway clock, ms): the earlier of
   * `lastActivity + sessions.idleTimeout` and `createdAt + sessions.maxLifetime`. A request in
   * flight postpones the idle expiry, not the lifetime's.
   */
  expiresAt(s: ClientSession): number {
    return this.#deadline(s);
  }

  /**
   * Why a session has expired at `now`, or undefined. An open stream (GET or legacy SSE) does
   * not keep a session alive: only messages from the client do, and a request in flight.
   */
  #expiry(s: ClientSession, now: number): string | undefined {
    const { idleTimeout, maxLifetime } = this.#settings();
    if (maxLifetime > 0 && now - s.createdAt >= maxLifetime) return 'maximum lifetime reached';
    if (s.inFlight === 0 && now - s.lastActivity >= idleTimeout) return 'idle timeout';
    return undefined;
  }

  #deadline(s: ClientSession): number {
    const { idleTimeout, maxLifetime } = this.#settings();
    const idle = s.inFlight === 0 ? s.lastActivity + idleTimeout : Infinity;
    return maxLifetime > 0 ? Math.min(idle, s.createdAt + maxLifetime) : idle;
  }

  /** Milliseconds until `deadline`, at least 1 s; the idle timeout when nothing is due to expire. */
  #retryAfterMs(deadline: number, now: number): number {
    return Number.isFinite(deadline) ? Math.max(1000, deadline - now) : this.#settings().idleTimeout;
  }
}
