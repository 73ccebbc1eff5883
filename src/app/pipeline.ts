/**
 * The request pipeline's stages: the rate limiter (memory, or Redis shared by every replica)
 * and the guardrails with their tool pins, composed into `Gateway.pipeline` — rate limits first
 * (cheapest refusal), then guardrails in config order — and rebuilt when a reload changes their
 * sections.
 *
 * @module
 */
import type { SwitchboardConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import { notifyCatalogChanged } from '../gateway/fan-out.js';
import { createGuardrails, type Guardrails } from '../guardrails/guardrails.js';
import { PinRegistry } from '../guardrails/pins.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { composePipeline, type Pipeline, type Stage } from '../pipeline/stage.js';
import { createRateLimiter, rateLimitStage, resolveRateLimitStore, type RateLimiter } from '../policy/rate-limit.js';
import type { Redis } from 'ioredis';
import type { Database } from '../store/types.js';

/** Options of {@link createStages}. */
export interface StagesOptions {
  readonly config: SwitchboardConfig;
  readonly gateway: Gateway;
  readonly database: Database;
  readonly metrics: Metrics;
  readonly logger: Logger;
  /** Redis URL for a shared rate-limit store (`rateLimiting.store`), if any. */
  readonly redisUrl: string | undefined;
  /** Rate-limit events (metrics). */
  readonly onRateLimitEvent?: ((event: { type: 'limited' | 'store_error'; rule: string }) => void) | undefined;
}

/**
 * The stages in `Gateway.pipeline` and what they hold. The getters return the current objects
 * (a reload replaces them).
 */
export interface Stages {
  readonly limiter: RateLimiter | undefined;
  readonly guardrails: Guardrails | undefined;
  /** Tool definition pins; they live as long as the gateway, from the first guardrail that uses them. */
  readonly pins: PinRegistry | undefined;
  /** The Redis client of the rate limiter, connected on the first rule that needs it. */
  readonly redis: Redis | undefined;
  /**
   * Rebuilds the rate limiter and the guardrails when `next` changes their sections (compared
   * with the gateway's current config, so call it before `Gateway.reload`), recomposes the
   * pipeline and closes the replaced ones.
   */
  reload(next: SwitchboardConfig): Promise<void>;
}

/** Builds the rate limiter and guardrails of `options.config` and sets `Gateway.pipeline`. */
export async function createStages(options: StagesOptions): Promise<Stages> {
  const { config, gateway, database, metrics, logger, redisUrl } = options;
  let redis: Redis | undefined;
  let limiter: RateLimiter | undefined;
  let guardrails: Guardrails | undefined;
  let pins: PinRegistry | undefined;

  // Rate limits: memory, or Redis shared by every replica when SWITCHBOARD_REDIS_URL is set.
  const buildLimiter = async (c: SwitchboardConfig): Promise<RateLimiter | undefined> => {
    if (c.rateLimits.length === 0) return undefined;
    const store = resolveRateLimitStore(c.rateLimiting.store, redisUrl);
    if (store === 'redis' && redis === undefined && redisUrl) {
      const { connectRedis, createRedisClient } = await import('../store/redis.js');
      redis = createRedisClient(redisUrl, logger.child({ component: 'redis' }));
      await connectRedis(redis, logger);
    }
    return createRateLimiter({
      rules: c.rateLimits,
      store,
      ...(store === 'redis' && redis ? { redis } : {}),
      failOpen: c.rateLimiting.failOpen,
      keyPrefix: c.rateLimiting.keyPrefix,
      logger: logger.child({ component: 'rate-limit' }),
      onEvent: (e) => {
        if (e.type === 'limited') metrics.recordRateLimited(e.rule);
        else metrics.recordRateLimitStoreError(e.rule);
        options.onRateLimitEvent?.(e);
      },
    });
  };
  // ---- guardrails (src/guardrails) ----
  // Pins live as long as the gateway (kept across reloads); catalogs feed them as they change.
  const ensurePins = async (c: SwitchboardConfig): Promise<PinRegistry | undefined> => {
    if (!c.guardrails.some((g) => g.pinTools !== undefined)) {
      gateway.onToolCatalog = undefined;
      return pins;
    }
    if (pins === undefined) {
      if (database.toolPins === undefined) {
        throw new GatewayError('SWB_ERR_CONFIG_INVALID', 'guardrails with pinTools need a database with tool pins');
      }
      const registry = new PinRegistry({
        store: database.toolPins,
        logger: logger.child({ component: 'tool-pins' }),
        // A tool hidden or shown again by a change or an approval: its clients re-list.
        onChangedSet: (servers) => {
          for (const name of servers) {
            const upstream = gateway.upstreams.get(name);
            if (upstream !== undefined) notifyCatalogChanged(gateway.sessions.values(), upstream, ['tools']);
          }
        },
      });
      await registry.load();
      pins = registry;
      metrics.setChangedToolsSource(() => registry.changedCount);
    }
    const registry = pins;
    if (gateway.onToolCatalog === undefined) {
      gateway.onToolCatalog = (server, tools) => registry.observe(server, tools);
      // Catalogs loaded before (a reload that adds pinTools).
      for (const [name, up] of gateway.upstreams)
        if (up.catalog.tools.length > 0) registry.observe(name, up.catalog.tools);
    }
    return registry;
  };
  const buildGuardrails = async (c: SwitchboardConfig): Promise<Guardrails | undefined> => {
    if (c.guardrails.length === 0) {
      gateway.onToolCatalog = undefined;
      return undefined;
    }
    const registry = await ensurePins(c);
    return createGuardrails({
      guardrails: c.guardrails,
      logger: logger.child({ component: 'guardrails' }),
      onAction: (g, action) => metrics.recordGuardrailAction(g, action),
      pins: registry,
    });
  };
  // ---- end guardrails ----
  // The request pipeline: rate limits first (cheapest refusal), then guardrails in config order.
  const composeStages = (): Pipeline => {
    const stages: Stage[] = limiter ? [rateLimitStage(limiter)] : [];
    if (guardrails) stages.push(...guardrails.stages);
    return composePipeline(stages);
  };
  limiter = await buildLimiter(config);
  guardrails = await buildGuardrails(config);
  gateway.pipeline = composeStages();
  return {
    get limiter() {
      return limiter;
    },
    get guardrails() {
      return guardrails;
    },
    get pins() {
      return pins;
    },
    get redis() {
      return redis;
    },
    async reload(next) {
      if (
        JSON.stringify([next.rateLimits, next.rateLimiting]) !==
        JSON.stringify([gateway.config.rateLimits, gateway.config.rateLimiting])
      ) {
        const old = limiter;
        limiter = await buildLimiter(next);
        gateway.pipeline = composeStages();
        await old?.close();
      }
      if (JSON.stringify(next.guardrails) !== JSON.stringify(gateway.config.guardrails)) {
        const old = guardrails;
        guardrails = await buildGuardrails(next);
        gateway.pipeline = composeStages();
        await old?.close();
        logger.info({ guardrails: next.guardrails.map((g) => g.name) }, 'guardrails reloaded');
      }
    },
  };
}
