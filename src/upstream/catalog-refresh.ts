/**
 * The catalog refresh of a modern upstream (MCP 2026-07-28). Its lists carry `ttlMs`
 * (server/utilities/caching); while no `subscriptions/listen` stream announces their changes
 * (`upstream-listen.ts`), the lists are loaded again when the smallest `ttlMs` of the last load
 * expires, bounded to 5 s … 1 h (5 min when the lists carried none). Once a stream announces
 * every list change the timer stops, and the catalog is loaded once for what changed while none
 * did. Timers do not keep the process alive.
 *
 * @module
 */
import type { Logger } from '../observability/logger.js';
import type { CatalogCache } from './catalog.js';
import type { UpstreamConnection } from './connection.js';

/** Bounds of the delay (ms), and the delay when lists carry no `ttlMs`. */
const MIN_REFRESH_MS = 5_000;
const MAX_REFRESH_MS = 3_600_000;
const DEFAULT_REFRESH_MS = 300_000;

/** Options for {@link CatalogRefresh}. */
export interface CatalogRefreshOptions {
  catalog: CatalogCache;
  logger: Logger;
  /**
   * The connection to load from: a live one, else one opened where the upstream keeps one
   * (shared, remote); undefined when there is none to use (session/user isolation without a
   * live child). May reject.
   */
  connection(): Promise<UpstreamConnection | undefined>;
  /** True while a listen stream announces every list change: no timer is needed. */
  covered(): boolean;
}

/** The `ttlMs` timer of one modern upstream's catalog. */
export class CatalogRefresh {
  readonly #o: CatalogRefreshOptions;
  #timer: NodeJS.Timeout | undefined;
  #stopped = false;

  constructor(options: CatalogRefreshOptions) {
    this.#o = options;
  }

  /** (Re)schedules the next refresh: after every load, and when no stream covers the lists any more. */
  schedule(): void {
    this.#clear();
    if (this.#stopped || this.#o.covered()) return;
    const ttl = this.#o.catalog.ttlMs;
    const delay = Math.min(MAX_REFRESH_MS, Math.max(MIN_REFRESH_MS, ttl ?? DEFAULT_REFRESH_MS));
    this.#timer = setTimeout(() => void this.#refresh(), delay);
    this.#timer.unref();
  }

  /**
   * A listen stream on `conn` now announces every list change: the timer stops and the catalog
   * is loaded once (for what changed while no stream did). `covered` false: the timer runs.
   */
  listsCovered(covered: boolean, conn: UpstreamConnection | undefined): void {
    if (!covered || conn === undefined) {
      this.schedule();
      return;
    }
    this.#clear();
    this.#o.catalog
      .load(conn, undefined)
      .catch((err: unknown) => this.#o.logger.warn({ err }, 'catalog refresh failed'));
  }

  /** Stops the timer for good. */
  stop(): void {
    this.#stopped = true;
    this.#clear();
  }

  #clear(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Reloads the catalog; the load schedules the next refresh, and so does a refresh that could not load. */
  async #refresh(): Promise<void> {
    this.#timer = undefined;
    let loaded = false;
    try {
      const conn = await this.#o.connection();
      if (conn !== undefined) {
        await this.#o.catalog.load(conn, undefined);
        loaded = true;
      }
    } catch (err) {
      this.#o.logger.warn({ err }, 'catalog refresh failed');
    } finally {
      if (!loaded) this.schedule();
    }
  }
}
