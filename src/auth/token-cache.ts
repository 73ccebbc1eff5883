/**
 * The verification cache of the token service: tokens verified recently, by their own string, so
 * that the hot path finds them before any parsing or hashing — this process's memory only, never
 * past a token's (or an ancestor's) expiry, at most the cache TTL, and dropped when the token or a
 * token it was minted from is revoked, here or, through a {@link RevocationFeed}, in another
 * process.
 *
 * @module
 */
import type { Principal } from './principal.js';

/**
 * Revocations shared between processes (e.g. Redis pub/sub, `store/redis-revocations.ts`), so a
 * token revoked through one replica leaves every replica's verification cache at once.
 */
export interface RevocationFeed {
  /** Announces that this token (and so every token minted from it) was revoked. Never throws. */
  publish(tokenId: string): Promise<void>;
  /**
   * Registers a listener for tokens revoked elsewhere; `undefined` means announcements may have
   * been lost (e.g. after a reconnect) and the whole cache should be dropped.
   */
  subscribe(listener: (tokenId: string | undefined) => void): void;
  /** Closes the feed's connections. */
  close(): Promise<void>;
}

/** One verified token. */
interface CacheEntry {
  principal: Principal;
  /** Epoch ms the entry is trusted until (its verification time plus the TTL). */
  until: number;
  /**
   * The earliest expiry of the token and its ancestors (a whole second, as the JWT's `exp`), so an
   * entry never outlives its token.
   */
  expiresAt: number | undefined;
  /** The token's id and its ancestors' ids, so revoking any of them drops it. */
  lineage: readonly string[];
}

/** Verified tokens by their string, bounded by entry count (the oldest entry leaves first). */
export class VerifiedTokenCache {
  readonly #cache = new Map<string, CacheEntry>();
  readonly #ttl: number;
  readonly #maxEntries: number;

  /**
   * @param ttl how long an entry is trusted, ms
   * @param maxEntries the bound
   * @param revocations when given, tokens revoked elsewhere are dropped as announced, and
   *   everything when announcements may have been lost
   */
  constructor(ttl: number, maxEntries: number, revocations?: RevocationFeed) {
    this.#ttl = ttl;
    this.#maxEntries = maxEntries;
    revocations?.subscribe((tokenId) => {
      if (tokenId === undefined) this.#cache.clear();
      else this.forget(tokenId);
    });
  }

  /** The principal of `token` when it was verified recently and is still unexpired at `now`. */
  get(token: string, now: number): Principal | undefined {
    const cache = this.#cache;
    const hit = cache.get(token);
    if (hit && hit.until > now && (hit.expiresAt === undefined || hit.expiresAt > now)) return hit.principal;
    if (hit) cache.delete(token);
    return undefined;
  }

  /**
   * Caches a token verified at `now`.
   *
   * @param expiresAt the earliest expiry of the token and its ancestors, a whole second
   * @param lineage the token's id and its ancestors' ids
   */
  set(
    token: string,
    principal: Principal,
    now: number,
    expiresAt: number | undefined,
    lineage: readonly string[],
  ): void {
    const cache = this.#cache;
    if (cache.size >= this.#maxEntries) cache.delete(cache.keys().next().value as string);
    cache.set(token, {
      principal,
      until: now + this.#ttl,
      expiresAt,
      lineage,
    });
  }

  /** Drops the cached tokens that are `tokenId` or were minted from it. */
  forget(tokenId: string): void {
    const cache = this.#cache;
    for (const [t, entry] of cache) if (entry.lineage.includes(tokenId)) cache.delete(t);
  }
}
