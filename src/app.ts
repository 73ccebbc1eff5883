/**
 * Composition root: builds a {@link Gateway} from a config and puts the HTTP edge in front of
 * it. Used by `switchboard serve` and by tests and programs that embed Switchboard.
 *
 * @module
 */
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createIdentityPropagator } from './auth/identity.js';
import { createOAuthVerifier } from './auth/oauth.js';
import {
  challengeForError,
  metadataUrlFor,
  PROTECTED_RESOURCE_WELL_KNOWN,
  protectedResourceMetadata,
} from './auth/resource-metadata.js';
import { loadGlobalAllowlist } from './policy/passthrough.js';
import { createRateLimiter, rateLimitStage, resolveRateLimitStore, type RateLimiter } from './policy/rate-limit.js';
import { composePipeline, type Pipeline, type Stage } from './pipeline/stage.js';
import { createGuardrails, type Guardrails } from './guardrails/guardrails.js';
import { PinRegistry } from './guardrails/pins.js';
import { createMetrics, requestStatus, type Metrics } from './observability/metrics.js';
import type { Tracing } from './observability/tracing.js';
import { otelConfigured, TRACING_OFF } from './observability/tracing-off.js';
import {
  blockedRowFor,
  createUsageLog,
  recordsUsage,
  requestFacts,
  usageRowFor,
  type UsageLog,
} from './observability/usage-log.js';
import { createUsageApi } from './http/usage-api.js';
import { createTunnelApi, createTunnelUpgrade, tunnelRegistration } from './http/tunnel-api.js';
import { createOriginGuard, isLoopbackHost } from './http/guards.js';
import { createTunnelHub, type TunnelHub } from './tunnel/hub.js';
import type { StreamOverflow } from './http/stream-budget.js';
import type { Span } from '@opentelemetry/api';
import type { Redis } from 'ioredis';
import { createAuthenticator, type Authenticate } from './auth/authenticator.js';
import { createTokenService, type RevocationFeed, type TokenService } from './auth/tokens.js';
import type { SwitchboardConfig } from './config/schema.js';
import { GatewayError } from './errors.js';
import { Gateway } from './gateway/gateway.js';
import { createAdminApi, loadRuntimeServers } from './http/admin-api.js';
import { createSessionsApi } from './http/sessions-api.js';
import { createDestinationPolicy, gatewayAddresses } from './policy/destinations.js';
import {
  applyHttpLimits,
  createRequestHandler,
  defaultChallenge,
  httpServerOptions,
  type ExchangeObserver,
  type RouteHandler,
} from './http/server.js';

import type { Logger } from './observability/logger.js';
import { openDatabase, resolveDataDir } from './store/database.js';
import type { Database } from './store/types.js';
import { packageVersion } from './package-root.js';

/** A running gateway (used by `serve` and by tests that embed Switchboard). */
export interface RunningGateway {
  readonly gateway: Gateway;
  readonly server: Server;
  readonly database: Database;
  readonly tokens: TokenService;
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
  const started = Date.now();
  const database =
    options.database ??
    (await openDatabase({
      dataDir: options.dataDir ?? resolveDataDir(config),
      logger: logger.child({ component: 'store' }),
    }));
  const applied = await database.migrate();
  if (applied.length > 0) logger.info({ migrations: applied }, 'database migrated');
  const redisUrl = options.redisUrl ?? process.env.SWITCHBOARD_REDIS_URL;
  // Where Redis is configured, a token revoked through one replica leaves every replica's
  // verification cache at once (otherwise within the cache's 5 s).
  let revocations: RevocationFeed | undefined;
  if (redisUrl) {
    const { createRedisClient } = await import('./store/redis.js');
    const { createRedisRevocationFeed } = await import('./store/redis-revocations.js');
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
  const metrics: Metrics = options.metrics ?? createMetrics();
  const tracing: Tracing = otelConfigured()
    ? (await import('./observability/tracing.js')).createTracing({
        logger: logger.child({ component: 'tracing' }),
        serviceVersion: packageVersion(),
      })
    : TRACING_OFF;
  const usageLog: UsageLog | undefined =
    config.usage.enabled && database.usage
      ? createUsageLog({
          store: database.usage,
          batchSize: config.usage.batchSize,
          flushIntervalMs: config.usage.flushInterval,
          maxQueue: config.usage.maxQueue,
          retentionMs: config.usage.retention,
          logger: logger.child({ component: 'usage' }),
        })
      : undefined;
  if (usageLog) metrics.setUsageLogSource(usageLog);
  const gateway = new Gateway({
    config,
    logger,
    version: packageVersion(),
    ...(options.now ? { now: options.now } : {}),
    ...(options.sweepIntervalMs === undefined ? {} : { sweepIntervalMs: options.sweepIntervalMs }),
    ...(options.pageSize === undefined ? {} : { pageSize: options.pageSize }),
    tracing,
    observeUpstream: {
      call: (server, ms) => metrics.recordUpstreamCall(server, ms / 1000),
      state: (server, state) => metrics.setUpstreamUp(server, state === 'ready'),
      restart: (server) => metrics.recordUpstreamRestart(server),
    },
    onNameCollision: (c) => metrics.recordNameCollision(c.withheld.server, c.kind),
  });
  metrics.setActiveSessionsSource(() => gateway.sessions.size);

  // Listen first: absolute URLs (RFC 9728 metadata, identity assertions) need the public URL,
  // which defaults to the bound address. Upstreams start right after; /readyz tells when ready.
  let handler: (req: IncomingMessage, res: ServerResponse) => void = (req, res) => {
    const live = req.url === '/healthz';
    res.writeHead(live ? 200 : 503, { 'content-type': 'application/json', 'retry-after': '1' });
    res.end(live ? '{"status":"ok"}' : '{"status":"starting"}');
  };
  const server = createServer(httpServerOptions(config.http), (req, res) => handler(req, res));
  applyHttpLimits(server, config.http, logger);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const addr = server.address() as AddressInfo;
  gateway.setDestinationPolicy(
    createDestinationPolicy({
      allow: () => gateway.config.runtimeServers.allowDestinations,
      gatewayAddresses: gatewayAddresses(addr.address),
    }),
  );
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}`;
  const publicUrl = (options.publicUrl ?? process.env.SWITCHBOARD_PUBLIC_URL ?? url).replace(/\/+$/, '');

  let reloadAuth: (next: SwitchboardConfig) => Promise<void> = async () => undefined;
  let redis: Redis | undefined;
  let hub: TunnelHub | undefined;
  let sweeper: NodeJS.Timeout | undefined;
  let limiter: RateLimiter | undefined;
  let guardrails: Guardrails | undefined;
  let pins: PinRegistry | undefined;
  try {
    const mcpPaths = () => [
      '/mcp',
      ...Object.keys(gateway.config.virtualServers).map((v) => `/mcp/${v}`),
      ...Object.keys(gateway.config.servers).map((n) => `/servers/${n}/mcp`),
    ];
    // Everything built from `auth` is rebuilt when a reload changes that section.
    const buildAuth = (auth: SwitchboardConfig['auth']) => {
      const oauthCfg = auth.oauth;
      const oauthOn = (auth.mode === 'oauth' || auth.mode === 'tokens+oauth') && oauthCfg !== undefined;
      const oauth = oauthOn
        ? createOAuthVerifier({
            issuer: oauthCfg.issuer,
            audience: oauthCfg.audience ?? [publicUrl, ...mcpPaths().map((p) => publicUrl + p)],
            validation: oauthCfg.validation,
            requiredScopes: oauthCfg.requiredScopes,
            ...(oauthCfg.clientId === undefined ? {} : { clientId: oauthCfg.clientId }),
            ...(oauthCfg.clientSecret === undefined ? {} : { clientSecret: oauthCfg.clientSecret }),
            ...(oauthCfg.jwksUri === undefined ? {} : { jwksUri: oauthCfg.jwksUri }),
            ...(oauthCfg.introspectionEndpoint === undefined
              ? {}
              : { introspectionEndpoint: oauthCfg.introspectionEndpoint }),
            logger: logger.child({ component: 'oauth' }),
          })
        : undefined;
      return {
        source: JSON.stringify(auth),
        oauthCfg: oauthOn ? oauthCfg : undefined,
        authenticate: createAuthenticator({ config: auth, tokens, ...(oauth ? { oauth } : {}), logger }),
      };
    };
    let auth = buildAuth(config.auth);
    const authenticate: Authenticate = (req) => auth.authenticate(req);
    const challenge = (path: string, err: GatewayError): string => {
      const oauthCfg = auth.oauthCfg;
      if (!oauthCfg) return defaultChallenge(path, err);
      const location = metadataUrlFor(publicUrl, path.startsWith('/api/') ? '/' : path);
      return (
        challengeForError(err, { resourceMetadataUrl: location.url, scope: oauthCfg.requiredScopes }) ??
        defaultChallenge(path, err)
      );
    };
    const identity = await createIdentityPropagator({
      issuer: publicUrl,
      keyStore: database.settings,
      logger: logger.child({ component: 'identity' }),
    });
    const outboundFor = async (c: SwitchboardConfig) => ({
      globalAllowlist: await loadGlobalAllowlist({ source: c.headers.source, settings: database.settings }),
      overwriteBase: c.headers.overwriteBase,
      reservedHeaders: c.auth.trustedProxy ? [c.auth.trustedProxy.header] : [],
      identity,
    });
    gateway.setOutbound(await outboundFor(config));

    // Rate limits: memory, or Redis shared by every replica when SWITCHBOARD_REDIS_URL is set.
    const buildLimiter = async (c: SwitchboardConfig): Promise<RateLimiter | undefined> => {
      if (c.rateLimits.length === 0) return undefined;
      const store = resolveRateLimitStore(c.rateLimiting.store, redisUrl);
      if (store === 'redis' && redis === undefined && redisUrl) {
        const { connectRedis, createRedisClient } = await import('./store/redis.js');
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
    reloadAuth = async (next) => {
      if (JSON.stringify(next.auth) !== auth.source) {
        auth = buildAuth(next.auth);
        logger.info({ mode: next.auth.mode }, 'authentication settings reloaded');
      }
      gateway.setOutbound(await outboundFor(next));
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
    };
    const wellKnown: RouteHandler = (req, res, path) => {
      if (path === '/.well-known/jwks.json') {
        res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'max-age=300' });
        res.end(JSON.stringify(identity.jwks()));
        return true;
      }
      const oauthCfg = auth.oauthCfg;
      if (!path.startsWith(PROTECTED_RESOURCE_WELL_KNOWN) || !oauthCfg) return false;
      const rest = path.slice(PROTECTED_RESOURCE_WELL_KNOWN.length);
      if (rest !== '' && !mcpPaths().includes(rest)) return false;
      const body = protectedResourceMetadata({
        resource: publicUrl + rest,
        authorizationServers: [oauthCfg.issuer],
        scopesSupported: oauthCfg.requiredScopes,
        resourceName: 'Switchboard MCP gateway',
      });
      res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify(body));
      void req;
      return true;
    };
    const metricsRoute: RouteHandler = async (_req, res, path) => {
      if (path !== '/metrics' || !gateway.config.metrics.enabled) return false;
      res.writeHead(200, { 'content-type': metrics.contentType });
      res.end(await metrics.metricsText());
      return true;
    };
    // Reverse tunnel: servers behind NAT dial in and become ordinary servers.
    const tunnels = createTunnelHub({
      heartbeatTimeoutMs: config.tunnels.heartbeatTimeout,
      maxBufferPerSubscriber: config.tunnels.feedBuffer,
      maxBufferedBytes: config.tunnels.maxBufferedBytes,
      maxBufferedFrames: config.tunnels.maxBufferedFrames,
      onOverflow: () => metrics.recordStreamOverflow('tunnel'),
      logger: logger.child({ component: 'tunnel' }),
      ...tunnelRegistration(gateway),
    });
    hub = tunnels;
    sweeper = setInterval(() => tunnels.sweep(), Math.max(1000, Math.floor(config.tunnels.heartbeatTimeout / 3)));
    sweeper.unref();
    const tunnelOptions = {
      gateway,
      hub: tunnels,
      authenticate,
      challenge,
      guard: (req: IncomingMessage) =>
        createOriginGuard({
          bindHost: host,
          allowedHosts: gateway.config.http.allowedHosts,
          allowedOrigins: gateway.config.http.allowedOrigins,
        })(req),
      requestTimeoutMs: () => gateway.config.tunnels.requestTimeout,
      logger: logger.child({ component: 'tunnel' }),
      onStreamOverflow: (o: StreamOverflow) => metrics.recordStreamOverflow(o.stream),
    };
    server.on('upgrade', createTunnelUpgrade(tunnelOptions));
    // Refused credentials on the admin API go to the usage log.
    const onRefused = (req: IncomingMessage, path: string, err: GatewayError) => {
      const row = usageLog
        ? blockedRowFor(err, { ...requestFacts(req, path, Date.now()), httpStatus: err.status })
        : undefined;
      if (row) usageLog?.record(row);
    };
    const routes: RouteHandler[] = [
      metricsRoute,
      createTunnelApi(tunnelOptions),
      wellKnown,
      createSessionsApi({ gateway, authenticate, challenge, onRefused }),
      createAdminApi({
        gateway,
        authenticate,
        tokens,
        servers: database.servers,
        challenge,
        ...(database.usage ? { usageRoute: createUsageApi({ usage: database.usage, tokens, logger }) } : {}),
        ...(database.toolPins ? { toolPins: { store: database.toolPins, registry: () => pins } } : {}),
        onRefused,
      }),
    ];
    // Metrics, usage log and the server span of every MCP exchange.
    const observer: ExchangeObserver = {
      start: tracing.enabled
        ? (req, path) =>
            tracing.startServerSpan(
              `${req.method ?? 'POST'} ${path}`,
              { 'http.request.method': req.method ?? 'POST' },
              req.headers.traceparent as string | undefined,
            )
        : undefined,
      finished(e, trace) {
        const meta = e.meta;
        const latencyMs = performance.now() - e.t0;
        const status = e.res.statusCode;
        metrics.recordRequest(
          meta?.server ?? e.endpoint,
          meta?.method ?? e.req.method ?? 'POST',
          requestStatus(status, meta?.rpcError),
          latencyMs / 1000,
        );
        if (usageLog) {
          const row = e.refusal
            ? blockedRowFor(e.refusal, {
                ...requestFacts(e.req, e.path, e.startedAt, latencyMs),
                bytesOut: e.bytesOut,
                httpStatus: status,
              })
            : meta && recordsUsage(meta.principal)
              ? usageRowFor(meta.principal, {
                  ...requestFacts(e.req, e.path, e.startedAt, latencyMs),
                  bytesOut: e.bytesOut,
                  mcpMethod: meta.method,
                  server: meta.server,
                  tool: meta.tool,
                  httpStatus: status,
                  jsonrpcError: meta.rpcError,
                  stage: meta.stage,
                })
              : undefined; // other principals are not logged: build nothing for them
          if (row) usageLog.record(row);
        }
        if (trace !== undefined)
          tracing.end(trace as Span, {
            statusCode: status,
            ...(meta?.rpcError === undefined ? {} : { jsonRpcErrorCode: meta.rpcError }),
          });
      },
    };
    const readiness = async () => {
      const checks = [{ name: 'database', ok: await database.ping().catch(() => false) }];
      if (redis) checks.push({ name: 'redis', ok: redis.status === 'ready' });
      return checks;
    };
    const serve = createRequestHandler({
      gateway,
      bindHost: host,
      authenticate,
      challenge,
      routes,
      observer,
      readiness,
      onStreamOverflow: (o) => metrics.recordStreamOverflow(o.stream),
    });
    await gateway.start();
    await loadRuntimeServers(gateway, database.servers);
    handler = serve;
  } catch (err) {
    server.close();
    await revocations?.close();
    if (!options.database) await database.close();
    throw err;
  }
  logger.info(
    { url, mcp: `${url}/mcp`, startupMs: Date.now() - started, servers: gateway.upstreams.size },
    'listening',
  );
  const shutdown = async (closeOptions: CloseOptions = {}): Promise<CloseReport> => {
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
    // Tunnels first: their upgraded sockets would otherwise keep server.close() waiting.
    if (sweeper) clearInterval(sweeper);
    hub?.close();
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
    await step('rate limiter', () => limiter?.close());
    await step('guardrails', async () => {
      await guardrails?.close();
      await pins?.close();
    });
    if (redis) {
      const client = redis;
      const { closeRedis } = await import('./store/redis.js');
      await step('redis', () => closeRedis(client, Math.min(1000, timeoutMs / 4)));
    }
    if (revocations) {
      const feed = revocations;
      await step('token revocations', () => feed.close());
    }
    if (!options.database) await step('database', () => database.close());
    return { unclosed };
  };
  return {
    gateway,
    server,
    database,
    tokens,
    toolPins: () => pins,
    url,
    publicUrl,
    async reload(next) {
      await reloadAuth(next);
      applyHttpLimits(server, next.http, logger);
      return gateway.reload(next);
    },
    close: async () => {
      await shutdown();
    },
    shutdown,
  };
}
