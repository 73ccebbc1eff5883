/**
 * The HTTP listener: the bind check, then a server bound before the gateway starts (absolute
 * URLs need the bound address), answering with {@link startingHandler} until
 * {@link Listener.serve} hands it the real request handler.
 *
 * @module
 */
import type { AddressInfo } from 'node:net';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { SwitchboardConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import { isLoopbackHost } from '../http/guards.js';
import { applyHttpLimits, httpServerOptions } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import { startingHandler } from './readiness.js';

/**
 * Refuses to bind beyond loopback without inbound authentication (an `auth.mode` or a trusted
 * proxy) unless `insecure`.
 *
 * @throws GatewayError `SWB_ERR_STARTUP_INSECURE_BIND`
 */
export function checkBind(config: SwitchboardConfig, host: string, insecure: boolean | undefined): void {
  const authenticated = config.auth.mode !== 'none' || config.auth.trustedProxy !== undefined;
  if (!isLoopbackHost(host) && !authenticated && !insecure) {
    throw new GatewayError(
      'SWB_ERR_STARTUP_INSECURE_BIND',
      `refusing to bind ${host} without inbound authentication; set auth.mode, bind 127.0.0.1, or pass --insecure`,
    );
  }
}

/** Options of {@link listen}. */
export interface ListenOptions {
  readonly config: SwitchboardConfig;
  readonly host: string;
  readonly port: number;
  readonly logger: Logger;
  /** External base URL; default `SWITCHBOARD_PUBLIC_URL`, else the bound address. */
  readonly publicUrl?: string | undefined;
}

/** A bound HTTP server; see {@link listen}. */
export interface Listener {
  readonly server: Server;
  /** The bound address. */
  readonly address: AddressInfo;
  /** Base URL of the bound address, e.g. `http://127.0.0.1:8080`. */
  readonly url: string;
  /** The external base URL (without a trailing `/`) used in absolute URLs. */
  readonly publicUrl: string;
  /** Replaces the start-up handler: from now on every request goes to `handler`. */
  serve(handler: (req: IncomingMessage, res: ServerResponse) => void): void;
}

/**
 * Creates the HTTP server with the `http.*` limits and binds it.
 *
 * @throws Error the `listen` error (e.g. `EADDRINUSE`)
 */
export async function listen(options: ListenOptions): Promise<Listener> {
  const { config, host, port, logger } = options;
  let handler: (req: IncomingMessage, res: ServerResponse) => void = startingHandler;
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
  const urlHost = addr.family === 'IPv6' ? `[${addr.address}]` : addr.address;
  const url = `http://${urlHost}:${addr.port}`;
  const publicUrl = (options.publicUrl ?? process.env.SWITCHBOARD_PUBLIC_URL ?? url).replace(/\/+$/, '');
  return {
    server,
    address: addr,
    url,
    publicUrl,
    serve(next) {
      handler = next;
    },
  };
}
