/**
 * The HTTP edge: one `node:http` server, a small route table, and the DNS-rebinding guard in
 * front of every MCP route.
 *
 * Routes (PRODUCT §3): `/mcp`, `/mcp/{virtual}`, `/servers/{name}/mcp`, legacy `/sse` +
 * `/message` twins of each, `/healthz`, `/readyz`.
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import { createOriginGuard } from './guards.js';
import { createLegacySseHandler } from './legacy-sse.js';
import { createStreamableHandler, sendHttpError } from './streamable.js';

/** Options for {@link createHttpServer}. */
export interface HttpServerOptions {
  gateway: Gateway;
  /** The host the server binds to (for the Host check). */
  bindHost: string;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body));
}

/** Creates (but does not start) the gateway's HTTP server. */
export function createHttpServer(options: HttpServerOptions): Server {
  const { gateway } = options;
  const cfg = gateway.config;
  // The guard is rebuilt when a hot reload replaced the configuration object.
  let guardFor = cfg;
  let guard = buildGuard();
  function buildGuard() {
    return createOriginGuard({
      bindHost: options.bindHost,
      allowedHosts: gateway.config.http.allowedHosts,
      allowedOrigins: gateway.config.http.allowedOrigins,
    });
  }
  const streamable = createStreamableHandler({
    gateway,
    maxBodyBytes: cfg.http.maxBodyBytes,
    eventStoreSize: cfg.sessions.eventStoreSize,
  });
  const legacy = createLegacySseHandler({ gateway, maxBodyBytes: cfg.http.maxBodyBytes });

  function notFound(what: string): never {
    throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `Not found: ${what}`);
  }

  async function route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path === '/healthz') return json(res, 200, { status: 'ok' });
    if (path === '/readyz') {
      const upstreams = [...gateway.upstreams.values()].map((u) => ({
        name: u.name,
        state: u.state,
        error: u.lastError,
      }));
      const ready = upstreams.every((u) => u.state === 'ready');
      return json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', upstreams });
    }
    if (gateway.config !== guardFor) {
      guardFor = gateway.config;
      guard = buildGuard();
    }
    guard(req);
    if (path === '/mcp') return streamable(req, res, gateway.aggregate);
    const parts = path.split('/'); // ['', 'mcp', name] | ['', 'servers', name, 'mcp']
    let view: View | undefined;
    let tail: string | undefined;
    let prefix = '';
    if (parts[1] === 'mcp' && parts.length >= 3) {
      view = gateway.virtualView(decodeURIComponent(parts[2] ?? '')) ?? notFound(`virtual server "${parts[2]}"`);
      tail = parts[3];
      prefix = `/mcp/${parts[2]}`;
      if (parts.length === 3) return streamable(req, res, view);
    } else if (parts[1] === 'servers' && parts.length === 4) {
      view = gateway.serverView(decodeURIComponent(parts[2] ?? '')) ?? notFound(`server "${parts[2]}"`);
      tail = parts[3];
      prefix = `/servers/${parts[2]}`;
      if (tail === 'mcp') return streamable(req, res, view);
    } else if (parts.length === 2 && (parts[1] === 'sse' || parts[1] === 'message')) {
      view = gateway.aggregate;
      tail = parts[1];
    }
    if (view && parts.length <= 4) {
      if (tail === 'sse') return legacy.stream(req, res, view, `${prefix}/message`);
      if (tail === 'message') return legacy.message(req, res, view, new URLSearchParams(q < 0 ? '' : url.slice(q + 1)));
    }
    notFound(path);
  }

  return createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
    route(req, res).catch((err: unknown) => {
      const ge = isGatewayError(err) ? err : new GatewayError('SWB_ERR_INTERNAL', 'Internal error', { cause: err });
      if (!isGatewayError(err)) gateway.logger.error({ err }, 'unhandled error');
      sendHttpError(res, ge);
    });
  });
}
