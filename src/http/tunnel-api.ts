/**
 * The reverse-tunnel endpoints (docs/tunnel.md): the WebSocket
 * `/reverse-proxy/ws` where servers behind NAT dial in — authenticated *before* the upgrade is
 * accepted — and the operator endpoints `GET /reverse-proxy/sessions`,
 * `DELETE /reverse-proxy/sessions/{id}`, `POST /reverse-proxy/sessions/{id}/request` and the live
 * feed `GET /reverse-proxy/sse/{id}`. Owners see and act on their own tunnels; admins on all.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Duplex } from 'node:stream';
import type { WebSocketServer } from 'ws';
import type { Authenticate } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { hasPermission, isAdmin } from '../auth/rbac.js';
import { GatewayError, isGatewayError, restErrorBody } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../observability/logger.js';
import { validateMessage } from '../protocol/jsonrpc.js';
import type { TunnelHub, TunnelSession, TunnelSubscription } from '../tunnel/hub.js';
import { createTunnelTransport } from '../tunnel/transport.js';
import { readBody } from './guards.js';
import { reportOverflow, writeWithin, type StreamMeter, type StreamOverflowListener } from './stream-budget.js';
import type { RouteHandler } from './server.js';

/** Permissions any of which lets a principal open a tunnel. */
export const TUNNEL_PERMISSIONS = ['servers.create', 'servers.update', 'servers.manage'] as const;

/** The hub callbacks that turn a registered tunnel into a gateway server and back. */
export function tunnelRegistration(gateway: Gateway) {
  return {
    onRegister(session: TunnelSession, server: { name: string; description?: string | undefined }) {
      try {
        gateway.attachTunnel(server.name, server.description, () => createTunnelTransport(session));
        return { ok: true as const };
      } catch (err) {
        return { ok: false as const, reason: err instanceof Error ? err.message : String(err) };
      }
    },
    onUnregister(session: TunnelSession) {
      const name = session.server?.name;
      if (name) void gateway.detachTunnel(name);
    },
  };
}

/** Options for {@link createTunnelUpgrade} and {@link createTunnelApi}. */
export interface TunnelApiOptions {
  gateway: Gateway;
  hub: TunnelHub;
  authenticate: Authenticate;
  /** Host/Origin check of the edge (throws a 403 GatewayError). */
  guard: (req: IncomingMessage) => void;
  challenge: (path: string, err: GatewayError) => string;
  /** Timeout of the operator request endpoint (ms). */
  requestTimeoutMs: () => number;
  maxFrameBytes?: number;
  logger: Logger;
  /** Told when a live feed is closed because its reader did not keep up (metrics). */
  onStreamOverflow?: StreamOverflowListener | undefined;
}

/**
 * The `upgrade` listener for `/reverse-proxy/ws`. Credentials come only from the
 * `Authorization` header (a token in the query string is refused); a failed authentication or a
 * missing permission closes the accepted socket at once with 1008 and a reason — no session is
 * created. Other paths get their socket destroyed.
 */
export function createTunnelUpgrade(
  options: TunnelApiOptions,
): (req: IncomingMessage, socket: Duplex, head: Buffer) => void {
  // `ws` is loaded on the first upgrade, not at startup.
  let server: Promise<WebSocketServer> | undefined;
  const wssOf = () =>
    (server ??= import('ws').then(
      ({ WebSocketServer: Wss }) => new Wss({ noServer: true, maxPayload: options.maxFrameBytes ?? 16 * 1024 * 1024 }),
    ));
  return (req, socket, head) => {
    wssOf().then(
      (wss) => upgrade(wss, req, socket, head),
      (err: unknown) => {
        options.logger.error({ err }, 'cannot load the WebSocket server');
        socket.destroy();
      },
    );
  };
  function upgrade(wss: WebSocketServer, req: IncomingMessage, socket: Duplex, head: Buffer): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    if (path !== '/reverse-proxy/ws' || !options.gateway.config.tunnels.enabled) {
      socket.destroy();
      return;
    }
    const refuse = (reason: string) =>
      wss.handleUpgrade(req, socket, head, (ws) => ws.close(1008, reason.slice(0, 120)));
    try {
      options.guard(req);
    } catch (err) {
      refuse(err instanceof Error ? err.message : 'forbidden');
      return;
    }
    const query = new URLSearchParams(q < 0 ? '' : url.slice(q + 1));
    if (query.has('token') || query.has('access_token')) {
      options.logger.warn({ remote: req.socket.remoteAddress }, 'tunnel refused: credentials in the query string');
      refuse('credentials in the query string are refused; send Authorization: Bearer');
      return;
    }
    Promise.resolve()
      .then(() => options.authenticate(req))
      .then(
        (principal) => {
          if (!TUNNEL_PERMISSIONS.some((p) => hasPermission(principal, p))) {
            refuse(`permission ${TUNNEL_PERMISSIONS.join(' | ')} is required`);
            return;
          }
          wss.handleUpgrade(req, socket, head, (ws) => {
            const session = options.hub.accept(ws, principal);
            options.logger.info({ session: session.id, principal: principal.id }, 'tunnel connected');
          });
        },
        (err: unknown) => refuse(isGatewayError(err) ? `${err.code}: ${err.message}` : 'authentication failed'),
      );
  }
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: GatewayError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, { error: { code: err.code, message: restErrorBody(err).error.message } }, headers);
}

/** The operator endpoints under `/reverse-proxy/`. */
export function createTunnelApi(options: TunnelApiOptions): RouteHandler {
  const { hub } = options;
  const visible = (p: Principal, s: TunnelSession) => isAdmin(p) || s.owner.id === p.id;

  function owned(p: Principal, id: string): TunnelSession {
    const s = hub.get(id);
    // Someone else's tunnel does not exist for this principal.
    if (!s || !visible(p, s)) throw new GatewayError('SWB_ERR_TUNNEL_SESSION_NOT_FOUND', `no tunnel session ${id}`);
    return s;
  }

  return async (req, res, path, _query, reqId) => {
    if (!path.startsWith('/reverse-proxy/') || path === '/reverse-proxy/ws') return false;
    const parts = path.split('/').slice(2).map(decodeURIComponent); // ['sessions', id?, 'request'?] | ['sse', id]
    let principal: Principal;
    try {
      principal = await options.authenticate(req);
    } catch (err) {
      if (isGatewayError(err) && (err.status === 401 || err.status === 403)) {
        sendError(res, err, { 'www-authenticate': options.challenge(path, err) });
        return true;
      }
      throw err;
    }
    try {
      const [kind, id, action] = parts;
      if (kind === 'sessions' && id === undefined && req.method === 'GET') {
        sendJson(res, 200, {
          sessions: hub
            .list()
            .filter((s) => visible(principal, s))
            .map((s) => s.info()),
        });
      } else if (kind === 'sessions' && id !== undefined && action === undefined && req.method === 'GET') {
        sendJson(res, 200, owned(principal, id).info());
      } else if (kind === 'sessions' && id !== undefined && action === undefined && req.method === 'DELETE') {
        owned(principal, id);
        hub.disconnect(id);
        sendJson(res, 200, { id, disconnected: true });
      } else if (kind === 'sessions' && id !== undefined && action === 'request' && req.method === 'POST') {
        owned(principal, id);
        let parsed: unknown;
        try {
          parsed = JSON.parse(await readBody(req, options.gateway.config.http.maxBodyBytes));
        } catch (err) {
          if (isGatewayError(err)) throw err;
          throw new GatewayError('SWB_ERR_HTTP_PARSE', 'request body is not valid JSON');
        }
        const v = validateMessage(parsed);
        if (!v.ok || !('method' in v.message)) {
          throw new GatewayError(
            'SWB_ERR_HTTP_INVALID_REQUEST',
            v.ok ? 'expected a JSON-RPC request or notification' : v.reason,
          );
        }
        const response = await hub.request(id, v.message, options.requestTimeoutMs());
        sendJson(res, 200, response ?? { sent: true });
      } else if (kind === 'sse' && id !== undefined && req.method === 'GET') {
        owned(principal, id);
        res.writeHead(200, {
          'content-type': 'text/event-stream',
          'cache-control': 'no-cache, no-transform',
          connection: 'keep-alive',
        });
        res.flushHeaders();
        // subscribe() may signal before it returns; the flush() below catches up.
        const holder: { sub?: TunnelSubscription } = {};
        // The feed is bounded per subscriber, the response stream by `http.maxStreamBytes` /
        // `http.maxStreamEvents`: an operator that stops reading loses the feed.
        const meter: StreamMeter = { stalled: 0, overflowBytes: 0 };
        const write = (chunk: string): boolean => {
          if (writeWithin(res, chunk, meter, options.gateway.config.http)) return true;
          holder.sub?.close();
          reportOverflow(options.logger, options.onStreamOverflow, {
            stream: 'tunnel-feed',
            sessionId: id,
            queuedBytes: meter.overflowBytes,
            queuedEvents: meter.stalled,
          });
          return false;
        };
        const flush = () => {
          const sub = holder.sub;
          if (!sub) return;
          const { events, dropped } = sub.drain();
          if (dropped > 0 && !write(`event: dropped\ndata: ${JSON.stringify({ dropped })}\n\n`)) return;
          for (const e of events) if (!write(`event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`)) return;
          if (sub.closed) res.end();
        };
        holder.sub = hub.subscribe(id, flush);
        const keepAlive = setInterval(() => write(': keepalive\n\n'), 15_000);
        keepAlive.unref();
        res.on('close', () => {
          clearInterval(keepAlive);
          holder.sub?.close();
        });
        flush();
      } else {
        throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `Not found: ${req.method ?? ''} ${path}`);
      }
    } catch (err) {
      const ge = isGatewayError(err) ? err : new GatewayError('SWB_ERR_INTERNAL', 'Internal error', { cause: err });
      if (!isGatewayError(err)) options.logger.error({ reqId, err }, 'tunnel endpoint error');
      sendError(res, ge);
    }
    return true;
  };
}
