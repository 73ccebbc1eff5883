/**
 * The HTTP edge: one `node:http` server, a small route table, the DNS-rebinding guard and
 * authentication in front of every MCP route.
 *
 * Routes: `/mcp`, `/mcp/{virtual}`, `/servers/{name}/mcp`, legacy `/sse` +
 * `/message` twins of each, `/healthz`, `/readyz`, plus whatever {@link HttpServerOptions.routes}
 * adds (admin API, well-known documents).
 *
 * @module
 */
import { createServer, type IncomingMessage, type Server, type ServerOptions, type ServerResponse } from 'node:http';
import type { Authenticate } from '../auth/authenticator.js';
import { stripIdentityHeaders } from '../auth/identity.js';
import { ANONYMOUS, type Principal } from '../auth/principal.js';
import { requirePermission, scopeOf } from '../auth/rbac.js';
import { encodeError, GatewayError, isGatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import type { RequestContext } from '../pipeline/stage.js';
import type { SwitchboardConfig } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import { requestIdFrom } from '../observability/request-id.js';
import { createOriginGuard } from './guards.js';
import { createLegacySseHandler } from './legacy-sse.js';
import type { StreamOverflowListener } from './stream-budget.js';
import { sendHttpError } from './error-response.js';
import { createStreamableHandler } from './streamable.js';
import { servesRequests } from '../upstream/types.js';

/**
 * An extra route handler: returns true when it handled the request. `reqId` is the request's id
 * for the lines it logs (observability/request-id).
 */
export type RouteHandler = (
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: string,
  reqId: string,
) => Promise<boolean> | boolean;

/** Options for {@link createHttpServer}. */
export interface HttpServerOptions {
  gateway: Gateway;
  /** The host the server binds to (for the Host check). */
  bindHost: string;
  /** Authenticates MCP requests. Default: everyone is {@link ANONYMOUS}. */
  authenticate?: Authenticate;
  /**
   * The `WWW-Authenticate` value for a 401/403 on an MCP path (RFC 6750 §3, RFC 9728 §5.1).
   * Default `Bearer realm="switchboard"` plus the error attributes.
   */
  challenge?: (path: string, err: GatewayError) => string;
  /** Extra routes tried before the MCP routes (after the Host/Origin guard). */
  routes?: RouteHandler[];
  /** Observes every MCP exchange (metrics, usage log, traces). */
  observer?: ExchangeObserver;
  /** Extra readiness checks for `/readyz` (database, Redis). */
  readiness?: () => Promise<Array<{ name: string; ok: boolean; error?: string }>>;
  /** Told of every SSE stream closed because its client did not read it fast enough (metrics). */
  onStreamOverflow?: StreamOverflowListener;
}

/** One MCP HTTP exchange, as the observer sees it when the response is done. */
export interface Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly path: string;
  /** The endpoint's label for metrics: `mcp`, the virtual server's or the server's name. */
  readonly endpoint: string;
  readonly meta: RequestContext | undefined;
  /** `Date.now()` and `performance.now()` when the request arrived. */
  readonly startedAt: number;
  readonly t0: number;
  /** Bytes written to the socket for this exchange (headers included). */
  readonly bytesOut: number;
  /** An authentication/authorization refusal, when that is how the exchange ended. */
  readonly refusal?: GatewayError | undefined;
}

/** Receives finished MCP exchanges. Must not throw. */
export interface ExchangeObserver {
  /** Called at request start; returns an opaque trace parent passed to upstream calls. */
  start?(req: IncomingMessage, path: string): unknown;
  finished(exchange: Exchange, trace: unknown): void;
}

/**
 * Decodes one path segment's percent-escapes (RFC 3986 §2.1).
 *
 * @throws GatewayError `SWB_ERR_HTTP_BAD_PATH` (400) for a malformed escape such as `%ZZ` or an
 *   escaped byte sequence that is not UTF-8
 */
export function decodeSegment(segment: string): string {
  if (!segment.includes('%')) return segment;
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new GatewayError('SWB_ERR_HTTP_BAD_PATH', 'Bad Request: malformed percent-encoding in the path');
  }
}

function json(res: ServerResponse, status: number, body: unknown): void {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const EXCHANGE = Symbol('switchboard.exchange');
type ObservedResponse = ServerResponse & { [EXCHANGE]?: ExchangeRecord };

/** The {@link Exchange} of one MCP request, filled in as it goes; one object per request. */
class ExchangeRecord implements Exchange {
  readonly req: IncomingMessage;
  readonly res: ServerResponse;
  readonly path: string;
  readonly endpoint: string;
  meta: RequestContext | undefined = undefined;
  readonly startedAt = Date.now();
  readonly t0 = performance.now();
  bytesOut = 0;
  refusal: GatewayError | undefined = undefined;
  /** The opaque trace parent from {@link ExchangeObserver.start}. */
  trace: unknown = undefined;
  observer: ExchangeObserver | undefined = undefined;
  readonly #written: number;

  constructor(req: IncomingMessage, res: ServerResponse, path: string, endpoint: string) {
    this.req = req;
    this.res = res;
    this.path = path;
    this.endpoint = endpoint;
    this.#written = req.socket.bytesWritten;
  }

  /** Called once, when the response is done. */
  finish(): void {
    this.bytesOut = this.req.socket.bytesWritten - this.#written;
    this.observer?.finished(this, this.trace);
  }
}

/** The shared `close` listener of observed responses (`this` is the response). */
function exchangeClosed(this: ObservedResponse): void {
  this[EXCHANGE]?.finish();
}

/** The default RFC 6750 challenge. */
export function defaultChallenge(_path: string, err: GatewayError): string {
  const error =
    err.code === 'SWB_ERR_AUTH_MISSING_TOKEN' ? undefined : err.status === 403 ? 'insufficient_scope' : 'invalid_token';
  return error === undefined ? 'Bearer realm="switchboard"' : `Bearer realm="switchboard", error="${error}"`;
}

type Target = { readonly kind: 'mcp' | 'sse' | 'message'; readonly view: View; readonly prefix: string };

/** The connection limits of `http.*` that apply to the `node:http` server itself. */
export type HttpServerLimits = Pick<
  SwitchboardConfig['http'],
  'maxConnections' | 'headersTimeout' | 'requestTimeout' | 'keepAliveTimeout'
>;

/**
 * The `node:http` server options for `http.*`: `headersTimeout` and `requestTimeout` bound how long
 * a client may take to send a request (408 after that; a slowloris client cannot hold a
 * connection), `keepAliveTimeout` closes idle persistent connections (RFC 9112 §9.8). Expiry is
 * checked every third of the headers timeout (at least every 250 ms, at most every 30 s).
 */
export function httpServerOptions(limits: HttpServerLimits): ServerOptions {
  return {
    headersTimeout: limits.headersTimeout,
    requestTimeout: limits.requestTimeout,
    keepAliveTimeout: limits.keepAliveTimeout,
    connectionsCheckingInterval: Math.min(30_000, Math.max(250, Math.floor(limits.headersTimeout / 3))),
  };
}

/**
 * Applies `http.*` limits to a server: at creation and again on a hot reload (the timeouts and
 * `maxConnections` are read by `node:http` per connection). Connections past `maxConnections` are
 * closed at accept; that is logged at `warn`, at most once a minute with the count since.
 */
export function applyHttpLimits(server: Server, limits: HttpServerLimits, logger: Logger): void {
  server.maxConnections = limits.maxConnections;
  server.headersTimeout = limits.headersTimeout;
  server.requestTimeout = limits.requestTimeout;
  server.keepAliveTimeout = limits.keepAliveTimeout;
  if (server.listenerCount('drop') > 0) return;
  let dropped = 0;
  let lastLog = 0;
  server.on('drop', () => {
    dropped++;
    const now = Date.now();
    if (now - lastLog < 60_000) return;
    lastLog = now;
    logger.warn({ dropped, maxConnections: server.maxConnections }, 'connections refused: http.maxConnections reached');
    dropped = 0;
  });
}

/** Creates (but does not start) the gateway's HTTP server, with the `http.*` connection limits. */
export function createHttpServer(options: HttpServerOptions): Server {
  const limits = options.gateway.config.http;
  const server = createServer(httpServerOptions(limits), createRequestHandler(options));
  applyHttpLimits(server, limits, options.gateway.logger);
  return server;
}

/** The gateway's `node:http` request listener (for a server the caller owns). */
export function createRequestHandler(options: HttpServerOptions): (req: IncomingMessage, res: ServerResponse) => void {
  const { gateway } = options;
  const cfg = gateway.config;
  const authenticate: Authenticate = options.authenticate ?? (() => ANONYMOUS);
  const challenge = options.challenge ?? defaultChallenge;
  const routes = options.routes ?? [];
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
    onStreamOverflow: options.onStreamOverflow,
  });
  const legacy = createLegacySseHandler({
    gateway,
    maxBodyBytes: cfg.http.maxBodyBytes,
    onStreamOverflow: options.onStreamOverflow,
  });

  function notFound(what: string): never {
    throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `Not found: ${what}`);
  }

  /** The `/mcp` target, rebuilt only when a reload replaced the aggregate view (hot path). */
  let aggregateTarget: Target = { kind: 'mcp', view: gateway.aggregate, prefix: '' };

  /** Maps a path to an MCP endpoint, or undefined. */
  function target(path: string): Target | undefined {
    if (path === '/mcp') {
      if (aggregateTarget.view !== gateway.aggregate)
        aggregateTarget = { kind: 'mcp', view: gateway.aggregate, prefix: '' };
      return aggregateTarget;
    }
    if (path === '/sse' || path === '/message')
      return { kind: path === '/sse' ? 'sse' : 'message', view: gateway.aggregate, prefix: '' };
    const parts = path.split('/'); // ['', 'mcp', v, tail?] | ['', 'servers', name, tail]
    if (parts[1] === 'mcp' && (parts.length === 3 || parts.length === 4)) {
      const tail = parts[3] ?? 'mcp';
      if (tail !== 'mcp' && tail !== 'sse' && tail !== 'message') return undefined;
      const view = gateway.virtualView(decodeSegment(parts[2] ?? '')) ?? notFound(`virtual server "${parts[2]}"`);
      return { kind: tail, view, prefix: `/mcp/${parts[2]}` };
    }
    if (parts[1] === 'servers' && parts.length === 4) {
      const tail = parts[3];
      if (tail !== 'mcp' && tail !== 'sse' && tail !== 'message') return undefined;
      const view = gateway.serverView(decodeSegment(parts[2] ?? '')) ?? notFound(`server "${parts[2]}"`);
      return { kind: tail, view, prefix: `/servers/${parts[2]}` };
    }
    return undefined;
  }

  /** Checks what the principal may reach: `servers.use`, and the single server's scope. */
  function authorize(principal: Principal, t: Target): Principal {
    requirePermission(principal, 'servers.use');
    if (t.view.kind === 'single') {
      const name = t.view.members[0]?.upstream.name ?? t.view.name;
      if (!scopeOf(principal).server(name)) {
        throw new GatewayError('SWB_ERR_AUTH_OUT_OF_SCOPE', `this credential does not reach server "${name}"`);
      }
    }
    return principal;
  }

  /** `/readyz`: every upstream ready and every store check passing. */
  async function readyz(res: ServerResponse): Promise<void> {
    const upstreams = [...gateway.upstreams.values()].map((u) => ({
      name: u.name,
      state: u.state,
      error: u.lastError,
    }));
    if (gateway.draining) {
      json(res, 503, { status: 'draining', upstreams, stores: [] });
      return;
    }
    const stores = options.readiness ? await options.readiness() : [];
    // A lazy server not running (`idle`) is ready: its lists are served and a call starts it.
    const ready = upstreams.every((u) => servesRequests(u.state)) && stores.every((c) => c.ok);
    json(res, ready ? 200 : 503, { status: ready ? 'ready' : 'not ready', upstreams, stores });
  }

  /** The extra routes, in order; 404 when none takes the path. */
  async function extraRoutes(
    req: IncomingMessage,
    res: ServerResponse,
    path: string,
    query: string,
    reqId: string,
  ): Promise<void> {
    for (const handler of routes) if (await handler(req, res, path, query, reqId)) return;
    notFound(path);
  }

  /**
   * Routes one request. Synchronous on the MCP hot path (no promise per request): everything
   * that fails is answered by {@link fail}, now or through the `.catch` of the few routes that
   * need I/O (readiness, extra routes, a token to verify remotely, the legacy message endpoint).
   */
  function route(req: IncomingMessage, res: ServerResponse): void {
    // The id on every log line about this request: an inbound X-Request-Id when it is a safe
    // token, else a fresh one.
    const reqId = requestIdFrom(req.headers['x-request-id'] as string | undefined);
    // Draining: every response closes its connection, so clients and balancers reconnect to a
    // replica that stays (RFC 9112 §9.6).
    if (gateway.draining) res.setHeader('connection', 'close');
    try {
      const url = req.url ?? '/';
      const q = url.indexOf('?');
      const path = q < 0 ? url : url.slice(0, q);
      if (path === '/healthz') return json(res, 200, { status: 'ok' });
      if (path === '/readyz') {
        readyz(res).catch((err: unknown) => fail(res, err, reqId));
        return;
      }
      if (gateway.config !== guardFor) {
        guardFor = gateway.config;
        guard = buildGuard();
      }
      guard(req);
      // Inbound copies of Switchboard's own identity headers are never trusted: a client must not
      // pose as the gateway towards an upstream.
      stripIdentityHeaders(req.headers);
      const t = target(path);
      if (!t) {
        extraRoutes(req, res, path, q < 0 ? '' : url.slice(q + 1), reqId).catch((err: unknown) =>
          fail(res, err, reqId),
        );
        return;
      }
      const observer = options.observer;
      const record = new ExchangeRecord(req, res, path, t.view.kind === 'aggregate' ? 'mcp' : t.view.name);
      if (observer) {
        record.observer = observer;
        record.trace = observer.start?.(req, path);
        // One shared listener; the record rides on the response.
        (res as ObservedResponse)[EXCHANGE] = record;
        res.on('close', exchangeClosed);
      }
      // No promise when the principal is known without I/O.
      let authenticated: Principal | Promise<Principal>;
      try {
        authenticated = authenticate(req);
      } catch (err) {
        refuse(res, record, err, reqId);
        return;
      }
      if (authenticated instanceof Promise) {
        authenticated.then(
          (principal) => admit(req, res, t, url, q, record, principal, reqId),
          (err: unknown) => refuse(res, record, err, reqId),
        );
        return;
      }
      admit(req, res, t, url, q, record, authenticated, reqId);
    } catch (err) {
      fail(res, err, reqId);
    }
  }

  /** Authorizes an authenticated request and hands it to its front door. */
  function admit(
    req: IncomingMessage,
    res: ServerResponse,
    t: Target,
    url: string,
    q: number,
    record: ExchangeRecord,
    authenticated: Principal,
    reqId: string,
  ): void {
    let principal: Principal;
    try {
      principal = authorize(authenticated, t);
    } catch (err) {
      refuse(res, record, err, reqId);
      return;
    }
    try {
      const trace = record.trace;
      const meta: RequestContext =
        trace === undefined
          ? { reqId, principal, httpHeaders: req.headers, ip: req.socket.remoteAddress }
          : { reqId, principal, httpHeaders: req.headers, ip: req.socket.remoteAddress, trace };
      record.meta = meta;
      if (t.kind === 'mcp') {
        streamable(req, res, t.view, meta); // answers its own errors
        return;
      }
      if (t.kind === 'sse') {
        legacy.stream(req, res, t.view, `${t.prefix}/message`, principal);
        return;
      }
      legacy
        .message(req, res, t.view, new URLSearchParams(q < 0 ? '' : url.slice(q + 1)), meta)
        .catch((err: unknown) => fail(res, err, reqId));
    } catch (err) {
      fail(res, err, reqId);
    }
  }

  /**
   * A failed authentication or authorization. A 401/403 carries the RFC 6750 §3 challenge
   * (`WWW-Authenticate`, RFC 9728 §5.1 `resource_metadata`) and is recorded as the exchange's
   * refusal; anything else is a failure like any other.
   */
  function refuse(res: ServerResponse, record: ExchangeRecord, err: unknown, reqId: string): void {
    const encoded = encodeError(err, { responseStarted: false });
    if (encoded.kind === 'http' && (encoded.status === 401 || encoded.status === 403)) {
      record.refusal = encoded.error;
      sendHttpError(res, encoded.error, null, { 'www-authenticate': challenge(record.path, encoded.error) });
      return;
    }
    fail(res, err, reqId);
  }

  /** Answers an exchange that failed at the edge (before any JSON-RPC processing); see {@link sendHttpError}. */
  function fail(res: ServerResponse, err: unknown, reqId: string): void {
    // A refused request is the client's doing: debug, never error (a client cannot flood the error log).
    if (!isGatewayError(err) || err.family === 'config') gateway.logger.error({ reqId, err }, 'unhandled error');
    else gateway.logger.debug({ reqId, code: err.code, status: err.status }, 'request refused');
    sendHttpError(res, err);
  }
  return route;
}
