/**
 * The gateway's stores: the database (opened from `SWITCHBOARD_DATABASE_URL` or the SQLite file
 * in the data directory, unless one is given, and migrated), the token revocation feed over
 * Redis when a Redis URL is set, and the token service on top of both.
 *
 * @module
 */
import { createTokenService, type RevocationFeed, type TokenService } from '../auth/tokens.js';
import type { SwitchboardConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { openDatabase, resolveDataDir } from '../store/database.js';
import type { Database } from '../store/types.js';

/** Options of {@link openStores}. */
export interface StoresOptions {
  readonly config: SwitchboardConfig;
  readonly logger: Logger;
  /** An open database to use; default: open one for `config` (in `dataDir`). */
  readonly database?: Database | undefined;
  /** Data directory; default from the config (`dataDir`, else `.switchboard` next to the config file). */
  readonly dataDir?: string | undefined;
  /** Redis URL for the token revocation feed; none without it. */
  readonly redisUrl: string | undefined;
  /** Injectable clock, epoch ms (token expiry). */
  readonly now?: (() => number) | undefined;
}

/** The open stores; see {@link openStores}. */
export interface Stores {
  readonly database: Database;
  /** The Redis revocation feed, started; undefined without a Redis URL. */
  readonly revocations: RevocationFeed | undefined;
  readonly tokens: TokenService;
}

/** Opens (or takes) the database and migrates it, starts the revocation feed and creates the token service. */
export async function openStores(options: StoresOptions): Promise<Stores> {
  const { config, logger, redisUrl } = options;
  const database =
    options.database ??
    (await openDatabase({
      dataDir: options.dataDir ?? resolveDataDir(config),
      logger: logger.child({ component: 'store' }),
    }));
  const applied = await database.migrate();
  if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
  // Where Redis is configured, a token revoked through one replica leaves every replica's
  // verification cache at once (otherwise within the cache's 5 s).
  let revocations: RevocationFeed | undefined;
  if (redisUrl) {
    const { createRedisClient } = await import('../store/redis.js');
    const { createRedisRevocationFeed } = await import('../store/redis-revocations.js');
    const log = logger.child({ component: 'token-revocations' });
    const feed = createRedisRevocationFeed({
      publisher: createRedisClient(redisUrl, log),
      subscriber: createRedisClient(redisUrl, log),
      channel: config.auth.revocationChannel,
      logger: log,
    });
    revocations = feed;
    await feed.start();
  }
  const tokens = await createTokenService({
    store: database.tokens,
    settings: database.settings,
    logger,
    ...(options.now === undefined ? {} : { clock: options.now }),
    ...(revocations === undefined ? {} : { revocations }),
  });
  return { database, revocations, tokens };
}
