/**
 * Principals: who is calling. Until inbound authentication is configured every request is made
 * by {@link ANONYMOUS}; the principal is still part of every key (PRODUCT §4.3) so that adding
 * authentication changes no routing code.
 *
 * @module
 */

/** An authenticated (or anonymous) caller. */
export interface Principal {
  /** Stable id used in keys: sessions, upstream connections, rate limits. */
  readonly id: string;
  /** How it was established. */
  readonly kind: 'anonymous' | 'token' | 'oauth' | 'proxy-header';
}

/** The principal of unauthenticated requests (auth mode `none`). */
export const ANONYMOUS: Principal = Object.freeze({ id: 'anonymous', kind: 'anonymous' });
