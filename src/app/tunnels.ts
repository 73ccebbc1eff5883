/**
 * The reverse tunnel's wiring: servers behind NAT dial in on `/reverse-proxy/ws` and become
 * ordinary servers. Creates the tunnel hub and its heartbeat sweeper, installs the `upgrade`
 * listener on the HTTP server and provides the operator API route.
 *
 * @module
 */
import type { IncomingMessage, Server } from 'node:http';
import type { Authenticate } from '../auth/authenticator.js';
import type { SwitchboardConfig } from '../config/schema.js';
import type { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import { createOriginGuard } from '../http/guards.js';
import type { RouteHandler } from '../http/server.js';
import type { StreamOverflow } from '../http/stream-budget.js';
import { createTunnelApi, createTunnelUpgrade, tunnelRegistration } from '../http/tunnel-api.js';
import type { Logger } from '../observability/logger.js';
import type { Metrics } from '../observability/metrics.js';
import { createTunnelHub, type TunnelHub } from '../tunnel/hub.js';

/** Options of {@link startTunnels}. */
export interface TunnelsOptions {
  readonly config: SwitchboardConfig;
  readonly gateway: Gateway;
  /** The server whose `upgrade` events carry tunnel connections. */
  readonly server: Server;
  /** The host the server binds to (for the Host/Origin guard). */
  readonly host: string;
  readonly authenticate: Authenticate;
  readonly challenge: (path: string, err: GatewayError) => string;
  readonly metrics: Metrics;
  readonly logger: Logger;
}

/** The running tunnel side; see {@link startTunnels}. */
export interface Tunnels {
  readonly hub: TunnelHub;
  /** The `/reverse-proxy/...` operator API (sessions, requests, live feed). */
  readonly api: RouteHandler;
  /** Stops the sweeper and closes every tunnel (their upgraded sockets with them). */
  close(): void;
}

/** Creates the tunnel hub, starts its sweeper and accepts tunnel upgrades on `options.server`. */
export function startTunnels(options: TunnelsOptions): Tunnels {
  const { config, gateway, server, host, authenticate, challenge, metrics, logger } = options;
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
  const sweeper = setInterval(() => tunnels.sweep(), Math.max(1000, Math.floor(config.tunnels.heartbeatTimeout / 3)));
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
  return {
    hub: tunnels,
    api: createTunnelApi(tunnelOptions),
    close() {
      clearInterval(sweeper);
      tunnels.close();
    },
  };
}
