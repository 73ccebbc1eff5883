/**
 * Builds the call path of one upstream from its configuration: the interceptors, outermost
 * first, in the order
 *
 *   concurrency → retry → tracing → outbound headers (credentials, passthrough, identity)
 *
 * over the connection step (`dispatch.ts`). A concern that is not configured contributes
 * nothing: a stdio server without `maxInFlight` and without tracing gets the retry step alone.
 *
 * @module
 */
import { isStdioServer, type ServerConfig } from '../../config/schema.js';
import type { Logger } from '../../observability/logger.js';
import type { Tracing } from '../../observability/tracing.js';
import { createConcurrencyLimiter } from '../../policy/concurrency.js';
import type { DestinationPolicy } from '../../policy/destinations.js';
import { createPassthroughPolicy } from '../../policy/passthrough.js';
import { createUpstreamCredentials } from '../credentials.js';
import type { UpstreamInterceptor } from '../dispatch.js';
import type { UpstreamOptions } from '../types.js';
import { createConcurrencyInterceptor } from './concurrency.js';
import { connectHeadersOf, createOutboundHeadersInterceptor, type OutboundOptions } from './outbound-headers.js';
import { createRetryInterceptor } from './retry.js';
import { createTracingInterceptor } from './tracing.js';

export type { OutboundOptions } from './outbound-headers.js';

/** Options for {@link createUpstreamInterceptors}. */
export interface UpstreamInterceptorsOptions {
  /** The server's configured name. */
  name: string;
  config: ServerConfig;
  /** The upstream's logger. */
  logger: Logger;
  /** Outbound identity settings (remote upstreams only). Default: no allowlist, no identity. */
  outbound?: OutboundOptions | undefined;
  /** Tracing, only when enabled: a client span per upstream call. */
  tracing?: Tracing | undefined;
  /** The destination policy of a runtime URL server: its token endpoint is held to it too. */
  destinations?: DestinationPolicy | undefined;
}

/** What {@link createUpstreamInterceptors} returns: the parts of {@link UpstreamOptions} it builds. */
export type UpstreamCallPath = Pick<UpstreamOptions, 'interceptors' | 'connectHeaders'>;

/**
 * Builds the interceptors (and, for a remote upstream with credentials, the headers its
 * connections are made with) of one upstream. Call it once per upstream, at start and reload.
 *
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` for a credential that cannot be sent in a header
 *   (`createUpstreamCredentials`)
 */
export function createUpstreamInterceptors(options: UpstreamInterceptorsOptions): UpstreamCallPath {
  const { name, config: cfg, logger } = options;
  const interceptors: UpstreamInterceptor[] = [];
  if (cfg.maxInFlight !== undefined) {
    const limiter = createConcurrencyLimiter({
      maxInFlight: cfg.maxInFlight,
      maxQueue: cfg.maxQueue,
      queueTimeoutMs: cfg.queueTimeout,
      name,
    });
    interceptors.push(createConcurrencyInterceptor(limiter));
  }
  interceptors.push(createRetryInterceptor(logger));
  const remote = !isStdioServer(cfg);
  if (options.tracing !== undefined) {
    interceptors.push(createTracingInterceptor({ tracing: options.tracing, serverName: name, propagate: remote }));
  }
  if (isStdioServer(cfg)) return { interceptors };

  const credentials = createUpstreamCredentials(cfg.auth, {
    serverName: name,
    logger,
    authorizationServer: options.outbound?.authorizationServer,
    userTokens: options.outbound?.userTokens,
    serverUrl: cfg.url,
    identity: options.outbound?.identity,
    // A runtime server's token endpoint is held to the destination policy at connect time too.
    ...(options.destinations ? { dispatcher: options.destinations.dispatcher() } : {}),
  });
  const out = options.outbound;
  const passthrough = createPassthroughPolicy({
    globalAllowlist: out?.globalAllowlist ?? [],
    serverAllowlist: cfg.passthroughHeaders,
    upstreamAuthType: cfg.auth?.type ?? 'none',
    baseHeaders: cfg.headers,
    overwriteBase: out?.overwriteBase ?? false,
    reservedHeaders: out?.reservedHeaders ?? [],
    serverName: name,
    logger,
  });
  const identity = cfg.identityHeaders ? out?.identity : undefined;
  // Nothing to send: no credential, no header a client could pass, no identity assertion.
  if (
    credentials.type === 'none' &&
    identity === undefined &&
    passthrough.allowed.length === 0 &&
    !passthrough.upstreamAuthorization
  ) {
    return { interceptors };
  }
  interceptors.push(createOutboundHeadersInterceptor({ serverName: name, credentials, passthrough, identity }));
  return { interceptors, connectHeaders: connectHeadersOf(credentials) };
}
