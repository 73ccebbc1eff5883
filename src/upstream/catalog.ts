/**
 * The catalog of one upstream: its tools, prompts, resources and resource templates, fetched at
 * start (following `nextCursor`, MCP server features §Pagination) and again for the kinds a
 * `notifications/{tools,prompts,resources}/list_changed` names. A kind whose list did not change
 * is not reported.
 *
 * A modern upstream (MCP 2026-07-28) sends `list_changed` only on a `subscriptions/listen` stream
 * (`upstream-listen.ts`); its lists carry `ttlMs` (server/utilities/caching), and the smallest
 * `ttlMs` of a load is kept ({@link CatalogCache.ttlMs}) for the refresh while no stream is open
 * (`catalog-refresh.ts`).
 *
 * @module
 */
import type { Logger } from '../observability/logger.js';
import type { JsonObject } from '../protocol/jsonrpc.js';
import type { UpstreamConnection } from './connection.js';
import type { Catalog } from './types.js';

const LIST_METHODS: Record<keyof Catalog, { method: string; field: string; capability: string }> = {
  tools: { method: 'tools/list', field: 'tools', capability: 'tools' },
  prompts: { method: 'prompts/list', field: 'prompts', capability: 'prompts' },
  resources: { method: 'resources/list', field: 'resources', capability: 'resources' },
  resourceTemplates: { method: 'resources/templates/list', field: 'resourceTemplates', capability: 'resources' },
};
const LIST_CHANGED: Record<string, Array<keyof Catalog>> = {
  'notifications/tools/list_changed': ['tools'],
  'notifications/prompts/list_changed': ['prompts'],
  'notifications/resources/list_changed': ['resources', 'resourceTemplates'],
};

/** The kinds of list a `list_changed` notification method names, or undefined for any other method. */
export function listChangedKinds(method: string): ReadonlyArray<keyof Catalog> | undefined {
  return LIST_CHANGED[method];
}

/** Options for {@link CatalogCache}. */
export interface CatalogCacheOptions {
  logger: Logger;
  /** Called after a load that changed some kinds. */
  onChange: (changed: ReadonlyArray<keyof Catalog>) => void;
  /** Called after every load, changed or not ({@link CatalogCache.ttlMs} is up to date). */
  onLoaded?: () => void;
}

/** The cached catalog of one upstream. */
export class CatalogCache {
  #catalog: Catalog = { tools: [], prompts: [], resources: [], resourceTemplates: [] };
  #version = 0;
  readonly #logger: Logger;
  readonly #onChange: CatalogCacheOptions['onChange'];
  readonly #onLoaded: CatalogCacheOptions['onLoaded'];
  /**
   * The smallest `ttlMs` (ms, ≥ 0) the pages of the last load carried, or undefined when none did.
   */
  ttlMs: number | undefined = undefined;
  /** The catalog was loaded once (at start, or when an upstream unreachable at start answered). */
  loaded = false;

  constructor(options: CatalogCacheOptions) {
    this.#logger = options.logger;
    this.#onChange = options.onChange;
    this.#onLoaded = options.onLoaded;
  }

  /** The cached lists. */
  get catalog(): Readonly<Catalog> {
    return this.#catalog;
  }

  /** Increments whenever the catalog changes. */
  get version(): number {
    return this.#version;
  }

  /**
   * Replaces the lists with ones kept from an earlier run (a `start: lazy` upstream whose child
   * is not running) and reports every kind as changed; marks the catalog loaded.
   */
  restore(catalog: Catalog): void {
    this.#catalog = { ...catalog };
    this.#version++;
    this.loaded = true;
    this.#onChange(Object.keys(LIST_METHODS) as Array<keyof Catalog>);
  }

  /**
   * Fetches the lists of `only` (default: every kind the upstream's capabilities declare) from
   * `conn`, page by page (at most 1000 pages). A failed listing keeps the cached list; a
   * `-32601` (method not found) is not logged.
   */
  async load(conn: UpstreamConnection, only: ReadonlyArray<keyof Catalog> | undefined): Promise<void> {
    const caps = conn.capabilities;
    const kinds = only ?? (Object.keys(LIST_METHODS) as Array<keyof Catalog>);
    const changed: Array<keyof Catalog> = [];
    let ttlMs: number | undefined;
    await Promise.all(
      kinds.map(async (kind) => {
        const spec = LIST_METHODS[kind];
        if (caps[spec.capability] === undefined) return;
        const items: JsonObject[] = [];
        const before = JSON.stringify(this.#catalog[kind]);
        let cursor: unknown;
        for (let page = 0; page < 1000; page++) {
          const params: JsonObject | undefined = cursor === undefined ? undefined : { cursor };
          const response = await conn.request(spec.method, params).response;
          if ('error' in response) {
            if (response.error.code !== -32601) {
              this.#logger.warn({ method: spec.method, error: response.error }, 'listing failed');
            }
            return;
          }
          const ttl = response.result.ttlMs;
          if (typeof ttl === 'number' && ttl >= 0 && (ttlMs === undefined || ttl < ttlMs)) ttlMs = ttl;
          const list = response.result[spec.field];
          if (Array.isArray(list)) items.push(...(list as JsonObject[]));
          cursor = response.result.nextCursor;
          if (typeof cursor !== 'string' || cursor === '') break;
        }
        if (JSON.stringify(items) === before) return;
        this.#catalog = { ...this.#catalog, [kind]: items };
        changed.push(kind);
      }),
    );
    this.ttlMs = ttlMs;
    if (changed.length > 0) {
      this.#version++;
      this.#onChange(changed);
    }
    this.#onLoaded?.();
  }
}
