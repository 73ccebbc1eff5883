/**
 * Composition root: builds a {@link Gateway} from a config and puts the HTTP edge in front of
 * it. Used by `switchboard serve` and by tests and programs that embed Switchboard.
 *
 * {@link startGateway} is the wiring, in order: stores (`app/stores.ts`) and observability
 * (`app/observer.ts`) → the gateway → the listener (`app/listen.ts`) → authentication
 * (`app/auth.ts`) and the pipeline's stages (`app/pipeline.ts`) → tunnels (`app/tunnels.ts`)
 * and routes (admin API with the console routes, the `/ui` app) → the request handler → start;
 * the graceful stop is `app/shutdown.ts`.
 *
 * @module
 */
import type { Server } from 'node:http';
import type { TokenService } from './auth/tokens.js';
import type { SwitchboardConfig } from './config/schema.js';
import { Gateway, settledWithin } from './gateway/gateway.js';
import type { PinRegistry } from './guardrails/pins.js';
import { applyRuntimeServers, createAdminApi } from './http/admin-api.js';
import { adminAuthenticate } from './http/admin-access.js';
import { createConsoleApi } from './http/console-api.js';
import { createConnectionsApi } from './http/connections-api.js';
import { createTokenVault, type TokenVault } from './auth/token-vault.js';
import { BROKER_KEY_INFO, UpstreamOAuthBroker } from './auth/upstream-oauth.js';
import { CLIENT_METADATA_PATH, createClientMetadataRoute } from './http/oauth-client-metadata.js';
import { createAuthServerHttp } from './auth/oauth-common.js';
import { brokerServerOf, createOAuthCallbackRoute, OAUTH_CALLBACK_PATH } from './http/oauth-callback.js';
import { createOAuthConnectRoute, OAUTH_CONNECT_PATH } from './http/oauth-connect.js';
import { servesRequests } from './upstream/types.js';
import { createUiRoute } from './http/ui-static.js';
import type { RecentLogs } from './observability/recent-logs.js';
import { startChangeFeed, type ChangeFeed } from './app/changes.js';
import { applyHttpLimits, createRequestHandler, type RouteHandler } from './http/server.js';
import { createSessionsApi } from './http/sessions-api.js';
import { createUsageApi } from './http/usage-api.js';
import type { Logger } from './observability/logger.js';
import type { Metrics } from './observability/metrics.js';
import { packageVersion } from './package-root.js';
import { createDestinationPolicy, gatewayAddresses } from './policy/destinations.js';
import type { Database } from './store/types.js';
import { createAuth, type Auth } from './app/auth.js';
import { checkBind, listen } from './app/listen.js';
import { createExchangeObserver, metricsRoute, openObservability, refusalRecorder } from './app/observer.js';
import { createStages, type Stages } from './app/pipeline.js';
import { readinessChecks } from './app/readiness.js';
import { createShutdown, type CloseOptions, type CloseReport } from './app/shutdown.js';
import { openStores } from './app/stores.js';
import { sessionSealerFor, startSessionEndFeed, type SessionEndFeed } from './app/sessions.js';
import { startTunnels, type Tunnels } from './app/tunnels.js';

export type { CloseOptions, CloseReport } from './app/shutdown.js';

/** A running gateway (used by `serve` and by tests that embed Switchboard). */
export interface RunningGateway {
  readonly gateway: Gateway;
  readonly server: Server;
  readonly database: Database;
  readonly tokens: TokenService;
  /**
   * Per-user upstream tokens of `oauth2-user` servers, sealed under `tokenVault.keys` (fixed at
   * start); undefined when the database has no upstream token store.
   */
  readonly tokenVault: TokenVault | undefined;
  /** Tool definition pins (`pinTools` guardrails); undefined until a guardrail uses them. */
  readonly toolPins: () => PinRegistry | undefined;
  /** Base URL, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The external base URL (`SWITCHBOARD_PUBLIC_URL`, else `url`) used in absolute URLs. */
  readonly publicUrl: string;
  /**
   * Applies a new configuration: `auth` and `headers` are rebuilt, the `http.*` connection limits
   * apply to new connections and requests, then the gateway reloads
   * (servers added/removed/changed; remote servers restart when outbound settings changed).
   */
  reload(next: SwitchboardConfig): Promise<{ added: string[]; removed: string[]; changed: string[] }>;
  /**
   * Graceful stop, bounded in time: closes the listener, sessions and upstreams, flushes the usage
   * log, ends tracing and closes the rate limiter, Redis and the database, in that order. Each step
   * waits at most until the deadline; a step still open then is abandoned (a step is always
   * started, so Redis is still disconnected and its reconnect loop cancelled) and named in the
   * result. Never rejects: a step that fails is logged and counts as closed.
   */
  shutdown(options?: CloseOptions): Promise<CloseReport>;
  /** {@link shutdown} with the default deadline (`shutdown.gracePeriod`), without the report. */
  close(): Promise<void>;
}

/** Options of {@link startGateway}. */
export interface StartGatewayOptions {
  config: SwitchboardConfig;
  logger: Logger;
  host?: string;
  port?: number;
  insecure?: boolean;
  /** Injectable clock, epoch ms (tests of idle timeouts and token expiry). Default `Date.now`. */
  now?: () => number;
  /** Idle sweeper interval (ms); 0 disables. */
  sweepIntervalMs?: number;
  /** Items per page for aggregated lists (0 = one page). */
  pageSize?: number;
  /** An open database to use (tests); default: open `SWITCHBOARD_DATABASE_URL` or the SQLite file in the data directory. */
  database?: Database;
  /** Data directory; default from the config (`dataDir`, else `.switchboard` next to the config file). */
  dataDir?: string;
  /** External base URL; default `SWITCHBOARD_PUBLIC_URL`, else the bound address. */
  publicUrl?: string;
  /** Redis URL for shared state; default `SWITCHBOARD_REDIS_URL`. */
  redisUrl?: string;
  /** A metrics registry to use (tests); default a new one per gateway. */
  metrics?: Metrics;
  /** Rate-limit events (metrics). */
  onRateLimitEvent?: (event: { type: 'limited' | 'store_error'; rule: string }) => void;
  /**
   * How long the start waits for the upstreams to settle (ready or failed) before it logs the
   * `listening` summary and resolves, ms. Requests are served from the moment the socket is
   * bound either way; an upstream still starting then comes up on its own. Default 10000.
   */
  startupWaitMs?: number;
  /**
   * The process's recent log lines (the ring the logger writes to, `createLogger({ recent })`),
   * shown to `admin.*` principals by the live feed `GET /api/v1/live`. Default none.
   */
  recentLogs?: RecentLogs;
  /** Directory of the built admin console served at `/ui/`; default `dist/ui` under the package root. */
  uiRoot?: string;
}

/** Upstreams by state, for the startup summary: `{ready, failed, starting}` counts and the names not ready. */
function upstreamSummary(gateway: Gateway): { ready: number; failed: number; starting: number; notReady?: string[] } {
  let ready = 0;
  let failed = 0;
  const notReady: string[] = [];
  for (const [name, u] of gateway.upstreams) {
    if (servesRequests(u.state)) ready++;
    else {
      if (u.state === 'failed') failed++;
      notReady.push(name);
    }
  }
  const starting = notReady.length - failed;
  return notReady.length === 0 ? { ready, failed, starting } : { ready, failed, starting, notReady };
}

/** Default of {@link StartGatewayOptions.startupWaitMs}, ms. */
export const DEFAULT_STARTUP_WAIT_MS = 10_000;

/**
 * Starts a gateway on a listening HTTP server.
 *
 * @throws GatewayError `SWB_ERR_STARTUP_INSECURE_BIND` when binding beyond loopback without `insecure`
 */
export async function startGateway(options: StartGatewayOptions): Promise<RunningGateway> {
  const { config, logger } = options;
  const host = options.host ?? config.listen.host;
  const port = options.port ?? config.listen.port;
  checkBind(config, host, options.insecure);
  const started = Date.now();
  const redisUrl = options.redisUrl ?? process.env.SWITCHBOARD_REDIS_URL;
  const { database, revocations, tokens } = await openStores({
    config,
    logger,
    database: options.database,
    dataDir: options.dataDir,
    redisUrl,
    now: options.now,
  });
  // Keys derived once at start; a reload keeps them (stored values must keep opening).
  const tokenVault =
    database.upstreamTokens === undefined
      ? undefined
      : createTokenVault(database.upstreamTokens, config.tokenVault.keys, (info) => tokens.deriveKey(info));
  const observability = await openObservability({
    config,
    database,
    logger,
    metrics: options.metrics,
    recentLogs: options.recentLogs,
  });
  const { metrics, tracing, usageLog } = observability;
  const gateway = new Gateway({
    config,
    logger,
    ...(database.catalogs === undefined ? {} : { catalogs: database.catalogs }),
    version: packageVersion(),
    ...(options.now ? { now: options.now } : {}),
    ...(options.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: options.sweepIntervalMs }),
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
    tracing,
    observeUpstream: {
      call: (server, ms) => metrics.recordUpstreamCall(server, ms / 1000),
      state: (server, state) => metrics.setUpstreamUp(server, servesRequests(state)),
      restart: (server) => metrics.recordUpstreamRestart(server),
    },
    onNameCollision: (c) => metrics.recordNameCollision(c.withheld.server, c.kind),
    onToolList: (endpoint, sent, full) => metrics.recordToolList(endpoint, sent, full),
  });
  metrics.setActiveSessionsSource(() => gateway.sessions.size);
  gateway.sessionSealer = sessionSealerFor(config, tokens);
  // Replicas sharing Redis end each other's copies of a session the client deleted.
  const sessionEnds: SessionEndFeed | undefined =
    redisUrl && gateway.sessionSealer ? await startSessionEndFeed(gateway, config, redisUrl, logger) : undefined;

  // Listen first: absolute URLs (RFC 9728 metadata, identity assertions) need the public URL,
  // which defaults to the bound address. Upstreams start right after; /readyz tells when ready.
  const listener = await listen({ config, host, port, logger, publicUrl: options.publicUrl });
  const { server, url, publicUrl } = listener;
  gateway.setDestinationPolicy(
    createDestinationPolicy({
      allow: () => gateway.config.runtimeServers.allowDestinations,
      gatewayAddresses: gatewayAddresses(listener.address.address),
    }),
  );

  let auth: Auth;
  let stages: Stages;
  let tunnels: Tunnels;
  let changes: ChangeFeed | undefined;
  let userBroker: UpstreamOAuthBroker | undefined;
  let stopAuth: (() => void) | undefined;
  try {
    // The broker of `oauth2-user` upstreams: their calls read the users' tokens through it.
    const broker =
      tokenVault === undefined
        ? undefined
        : new UpstreamOAuthBroker({
            key: tokens.deriveKey(BROKER_KEY_INFO),
            vault: tokenVault,
            redirectUri: `${publicUrl}${OAUTH_CALLBACK_PATH}`,
            connectUrl: `${publicUrl}${OAUTH_CONNECT_PATH}`,
            clientMetadataUrl: `${publicUrl}${CLIENT_METADATA_PATH}`,
            settings: database.settings,
            http: createAuthServerHttp(10_000, undefined),
            logger: logger.child({ component: 'upstream-oauth' }),
          });
    userBroker = broker;
    auth = await createAuth({ config, gateway, tokens, database, publicUrl, logger, userTokens: broker });
    const built = auth;
    stopAuth = () => built.close();
    const { authenticate, challenge } = auth;
    stages = await createStages({
      config,
      gateway,
      database,
      metrics,
      logger,
      redisUrl,
      onRateLimitEvent: options.onRateLimitEvent,
    });
    tunnels = startTunnels({ config, gateway, server, host, authenticate, challenge, metrics, logger });
    // Replicas sharing Redis re-read runtime servers and approvals another one wrote at once.
    if (redisUrl) {
      changes = await startChangeFeed({
        gateway,
        servers: database.servers,
        pins: () => stages.pins,
        redisUrl,
        channel: config.runtimeServers.changesChannel,
        identityKeys: () => auth.reloadIdentityKeys(),
        logger,
      });
    }
    const feed = changes;
    // Anonymous callers (auth.mode none) reach the admin API only when admitted, from loopback.
    const adminAuth = adminAuthenticate(authenticate, () => gateway.config.admin.allowAnonymous);
    // Refused credentials on the admin API go to the usage log.
    const onRefused = refusalRecorder(usageLog);
    const routes: RouteHandler[] = [
      metricsRoute(gateway, metrics),
      tunnels.api,
      auth.wellKnown,
      createSessionsApi({ gateway, authenticate: adminAuth, challenge, onRefused }),
      createAdminApi({
        gateway,
        authenticate: adminAuth,
        tokens,
        servers: database.servers,
        challenge,
        ...(database.usage ? { usageRoute: createUsageApi({ usage: database.usage, tokens, logger }) } : {}),
        consoleRoute: createConsoleApi({
          gateway,
          live: observability.live,
          onStreamOverflow: (o) => metrics.recordStreamOverflow(o.stream),
        }),
        ...(tokenVault
          ? {
              connectionsRoute: createConnectionsApi({
                vault: tokenVault,
                authorizationUrl: async (principal, name) => {
                  const server = brokerServerOf(gateway.config.servers, name);
                  return server === undefined ? undefined : userBroker?.authorizationUrl(principal, server);
                },
                disconnect: (principal, name) => {
                  const server = brokerServerOf(gateway.config.servers, name);
                  return server === undefined ? undefined : userBroker?.disconnect(principal, server);
                },
              }),
            }
          : {}),
        traffic: observability.traffic,
        ...(database.toolPins ? { toolPins: { store: database.toolPins, registry: () => stages.pins } } : {}),
        onRefused,
        ...(feed ? { onChange: (kind: 'servers' | 'pins') => feed.announce(kind) } : {}),
      }),
      createUiRoute(options.uiRoot === undefined ? {} : { root: options.uiRoot }),
    ];
    if (userBroker) {
      const brokerLogger = logger.child({ component: 'upstream-oauth' });
      routes.push(
        createOAuthConnectRoute({
          broker: userBroker,
          servers: () => gateway.config.servers,
          logger: brokerLogger,
          authenticate,
        }),
        createOAuthCallbackRoute(
          userBroker,
          () => gateway.config.servers,
          brokerLogger,
          // The first user's token lets a server whose catalog could not load without one start.
          { onConnected: (server) => gateway.upstreams.get(server)?.credentialAvailable() },
        ),
        createClientMetadataRoute(userBroker.clientMetadataDocument),
      );
    }
    const serve = createRequestHandler({
      gateway,
      bindHost: host,
      authenticate,
      challenge,
      routes,
      observer: createExchangeObserver(observability),
      readiness: readinessChecks(database, () => stages.redis),
      onStreamOverflow: (o) => metrics.recordStreamOverflow(o.stream),
    });
    // Upstreams start in parallel while requests are served: a slow or hanging one holds up
    // neither the healthy ones nor the edge. The views exist once start() has been called.
    const upstreamsStarted = gateway.start();
    const runtimeStarted = applyRuntimeServers(gateway, database.servers).catch((err: unknown) =>
      logger.error({ err }, 'could not load the runtime servers from the database'),
    );
    listener.serve(serve);
    await settledWithin(
      Promise.all([upstreamsStarted, runtimeStarted]),
      options.startupWaitMs ?? DEFAULT_STARTUP_WAIT_MS,
    );
  } catch (err) {
    server.close();
    stopAuth?.();
    await revocations?.close();
    await sessionEnds?.close();
    await changes?.close();
    if (!options.database) await database.close();
    throw err;
  }
  logger.info(
    {
      url,
      mcp: `${url}/mcp`,
      startupMs: Date.now() - started,
      servers: gateway.upstreams.size,
      ...upstreamSummary(gateway),
    },
    'listening',
  );
  const shutdown = createShutdown({
    server,
    gateway,
    tunnels,
    live: observability.live,
    usageLog,
    tracing,
    stages,
    revocations,
    sessionEnds,
    changes,
    auth,
    database,
    ownsDatabase: !options.database,
    logger,
  });
  return {
    gateway,
    server,
    database,
    tokens,
    tokenVault,
    toolPins: () => stages.pins,
    url,
    publicUrl,
    async reload(next) {
      gateway.sessionSealer = sessionSealerFor(next, tokens);
      await auth.reload(next);
      await stages.reload(next);
      applyHttpLimits(server, next.http, logger);
      return gateway.reload(next);
    },
    close: async () => {
      await shutdown();
    },
    shutdown,
  };
}
