/**
 * Composition root: builds a {@link Gateway} from a config and puts the HTTP edge in front of
 * it. Used by `switchboard serve` and by tests and programs that embed Switchboard.
 *
 * @module
 */
import type { AddressInfo } from 'node:net';
import { readFileSync } from 'node:fs';
import type { Server } from 'node:http';
import { createAuthenticator } from './auth/authenticator.js';
import { createTokenService, type TokenService } from './auth/tokens.js';
import type { SwitchboardConfig } from './config/schema.js';
import { GatewayError } from './errors.js';
import { Gateway } from './gateway/gateway.js';
import { createAdminApi, loadRuntimeServers } from './http/admin-api.js';
import { createHttpServer, defaultChallenge, type RouteHandler } from './http/server.js';
import { isLoopbackHost } from './http/guards.js';
import type { Logger } from './observability/logger.js';
import { openDatabase, resolveDataDir } from './store/database.js';
import type { Database } from './store/types.js';

/** A running gateway (used by `serve` and by tests that embed Switchboard). */
export interface RunningGateway {
  readonly gateway: Gateway;
  readonly server: Server;
  readonly database: Database;
  readonly tokens: TokenService;
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** Graceful stop: closes the listener, sessions and upstreams. */
  close(): Promise<void>;
}

/** The package version (from package.json). */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}

/** Options of {@link startGateway}. */
export interface StartGatewayOptions {
  config: SwitchboardConfig;
  logger: Logger;
  host?: string;
  port?: number;
  insecure?: boolean;
  /** Injectable clock (tests of idle timeouts). */
  now?: () => number;
  /** Idle sweeper interval (ms); 0 disables. */
  sweepIntervalMs?: number;
  /** Items per page for aggregated lists (0 = one page). */
  pageSize?: number;
  /** An open database to use (tests); default: open `SWITCHBOARD_DATABASE_URL` or the SQLite file in the data directory. */
  database?: Database;
  /** Data directory; default from the config (`dataDir`, else `.switchboard` next to the config file). */
  dataDir?: string;
}

/**
 * Starts a gateway on a listening HTTP server.
 *
 * @throws GatewayError `SWB_ERR_STARTUP_INSECURE_BIND` when binding beyond loopback without `insecure`
 */
export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const { config, logger } = options;
  const host = options.host ?? config.listen.host;
  const port = options.port ?? config.listen.port;
  const authenticated = config.auth.mode !== 'none' || config.auth.trustedProxy !== undefined;
  if (!isLoopbackHost(host) && !authenticated && !options.insecure) {
    throw new GatewayError(
      'SWB_ERR_STARTUP_INSECURE_BIND',
      `refusing to bind ${host} without inbound authentication; set auth.mode, bind 127.0.0.1, or pass --insecure`,
    );
  }
  const database =
    options.database ?? (await openDatabase({ dataDir: options.dataDir ?? resolveDataDir(config), logger: logger.child({ component: 'store' }) }));
  const applied = await database.migrate();
  if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
  const tokens = await createTokenService({ store: database.tokens, settings: database.settings, logger });
  const authenticate = createAuthenticator({ config: config.auth, tokens, logger });
  const challenge = defaultChallenge;
  const gateway = new Gateway({
    config,
    logger,
    version: packageVersion(),
    ...(options.now ? { now: options.now } : {}),
    ...(options.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: options.sweepIntervalMs }),
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
  });
  const started = Date.now();
  await gateway.start();
  await loadRuntimeServers(gateway, database.servers);
  const routes: RouteHandler[] = [createAdminApi({ gateway, authenticate, tokens, servers: database.servers, challenge })];
  const server = createHttpServer({ gateway, bindHost: host, authenticate, challenge, routes });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}`;
  logger.info(
    { url, mcp: `${url}/mcp`, startupMs: Date.now() - started, servers: gateway.upstreams.size },
    'listening',
  );
  return {
    gateway,
    server,
    database,
    tokens,
    url,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
        setTimeout(() => server.closeAllConnections(), 2000).unref();
      });
      await gateway.stop();
      if (!options.database) await database.close();
    },
  };
}
