/**
 * The client-session endpoints of the admin API: `GET /api/v1/sessions` lists the live MCP
 * sessions, `DELETE /api/v1/sessions/{handle}` closes one and
 * `DELETE /api/v1/sessions?principal={id}` closes every session of one principal. All of them
 * require `admin.*`.
 *
 * A session is named by its **handle**, the first 16 hex digits of the SHA-256 of its id, never
 * by the id itself. A session id is not a credential, but together with a credential of the
 * session's principal it reaches that session's stream (its `Last-Event-ID` replay included),
 * and an admin can mint tokens for any subject; the handle closes a session and is useless on an
 * MCP endpoint. A closed session's client gets 404 on its next request and re-initialises
 * (MCP transports §Session Management).
 *
 * Errors are JSON `{ "error": { "code": "SWB_ERR_…", "message": "…" } }` with the code's status,
 * as in the rest of `/api/v1`.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticate } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { requirePermission } from '../auth/rbac.js';
import { GatewayError, isGatewayError, restErrorBody } from '../errors.js';
import type { ClientSession, SessionTransport } from '../gateway/client-session.js';
import type { Gateway } from '../gateway/gateway.js';
import type { RouteHandler } from './server.js';

/** Options for {@link createSessionsApi}. */
export interface SessionsApiOptions {
  gateway: Gateway;
  authenticate: Authenticate;
  /** `WWW-Authenticate` for 401/403 (RFC 6750 §3). */
  challenge: (path: string, err: GatewayError) => string;
  /** Records refused credentials (the usage log), as the rest of the admin API does. */
  onRefused?: (req: IncomingMessage, path: string, err: GatewayError) => void;
}

/** One session as `GET /api/v1/sessions` shows it. Times are ISO 8601 on the gateway's clock. */
export interface SessionView {
  /** First 16 hex digits of SHA-256(session id): names the session in `DELETE`. */
  handle: string;
  /** The principal the session is bound to, e.g. `token:alice`. */
  principal: string;
  /** The MCP endpoint path the session was opened on, e.g. `/mcp`, `/servers/git/mcp`, `/sse`. */
  endpoint: string;
  transport: SessionTransport;
  protocolVersion: string | null;
  /** `clientInfo` from `initialize` (name, version), when the client sent one. */
  client: { name: unknown; version: unknown } | null;
  initialized: boolean;
  createdAt: string;
  lastActivityAt: string;
  /** When the session expires if its client stays silent (idle timeout or maximum lifetime). */
  expiresAt: string | null;
  /** True while its standalone stream (GET, or the legacy SSE stream) is connected. */
  standaloneStream: boolean;
  /** Requests of this session awaiting an upstream answer (each may hold a POST's SSE stream). */
  inFlight: number;
}

const ROOT = '/api/v1/sessions';
const DEFAULT_LIMIT = 1000;
const MAX_LIMIT = 10_000;
const HANDLES = new WeakMap<ClientSession, string>();

/** The handle of a session: the first 16 hex digits of SHA-256 of its id. */
export function sessionHandle(session: ClientSession): string {
  let h = HANDLES.get(session);
  if (h === undefined) {
    h = createHash('sha256').update(session.id).digest('hex').slice(0, 16);
    HANDLES.set(session, h);
  }
  return h;
}

function endpointOf(session: ClientSession): string {
  const view = session.view;
  const tail = session.transportKind === 'sse' ? 'sse' : 'mcp';
  if (view.kind === 'aggregate') return `/${tail}`;
  const name = encodeURIComponent(view.name);
  return view.kind === 'virtual' ? `/mcp/${name}${tail === 'mcp' ? '' : '/sse'}` : `/servers/${name}/${tail}`;
}

/** The listing of one session. */
export function sessionView(gateway: Gateway, session: ClientSession): SessionView {
  const iso = (t: number) => (Number.isFinite(t) ? new Date(t).toISOString() : null);
  const info = session.clientInfo;
  return {
    handle: sessionHandle(session),
    principal: session.principal.id,
    endpoint: endpointOf(session),
    transport: session.transportKind,
    protocolVersion: session.protocolVersion ?? null,
    client: info ? { name: info.name ?? null, version: info.version ?? null } : null,
    initialized: session.initialized,
    createdAt: new Date(session.createdAt).toISOString(),
    lastActivityAt: new Date(session.lastActivity).toISOString(),
    expiresAt: iso(gateway.expiresAt(session)),
    standaloneStream: session.hasStandaloneStream,
    inFlight: session.inFlight,
  };
}

function sendJson(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: GatewayError, headers: Record<string, string> = {}): void {
  sendJson(res, err.status, restErrorBody(err), headers);
}

function parseLimit(v: string | null): number {
  if (v === null) return DEFAULT_LIMIT;
  const n = Number(v);
  if (!Number.isInteger(n) || n < 1 || n > MAX_LIMIT)
    throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `limit must be an integer from 1 to ${MAX_LIMIT}`);
  return n;
}

/**
 * Creates the `/api/v1/sessions` route handler. Place it before the rest of the admin API, which
 * answers 404 for collections it does not know.
 */
export function createSessionsApi(options: SessionsApiOptions): RouteHandler {
  const { gateway } = options;

  function list(res: ServerResponse, query: URLSearchParams): void {
    const principal = query.get('principal');
    const limit = parseLimit(query.get('limit'));
    const pool = principal === null ? gateway.sessions.values() : gateway.sessionsOf(principal).values();
    const sessions: SessionView[] = [];
    let total = 0;
    for (const s of pool) {
      if (s.closed) continue;
      total++;
      if (sessions.length < limit) sessions.push(sessionView(gateway, s));
    }
    sendJson(res, 200, { total, sessions });
  }

  function closeOne(res: ServerResponse, handle: string): void {
    for (const s of gateway.sessions.values()) {
      if (sessionHandle(s) !== handle) continue;
      gateway.closeSession(s, 'closed by an administrator');
      sendJson(res, 200, { handle, closed: true });
      return;
    }
    throw new GatewayError('SWB_ERR_SESSION_NOT_FOUND', `no session with handle ${handle}`);
  }

  function closeAllOf(res: ServerResponse, query: URLSearchParams): void {
    const principal = query.get('principal');
    if (principal === null || principal === '')
      throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'DELETE /api/v1/sessions needs ?principal=<id>');
    const own = [...gateway.sessionsOf(principal)];
    for (const s of own) gateway.closeSession(s, 'closed by an administrator');
    sendJson(res, 200, { principal, closed: own.length });
  }

  return async (req, res, path, query, reqId) => {
    if (path !== ROOT && !path.startsWith(`${ROOT}/`)) return false;
    const rest = path.slice(ROOT.length + 1); // '' for the collection
    let principal: Principal;
    try {
      principal = await options.authenticate(req);
    } catch (err) {
      if (isGatewayError(err) && (err.status === 401 || err.status === 403)) {
        options.onRefused?.(req, path, err);
        sendError(res, err, { 'www-authenticate': options.challenge(path, err) });
        return true;
      }
      throw err;
    }
    try {
      requirePermission(principal, 'admin.*');
      const q = new URLSearchParams(query);
      if (rest === '') {
        if (req.method === 'GET') list(res, q);
        else if (req.method === 'DELETE') closeAllOf(res, q);
        else throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET or DELETE');
      } else if (!rest.includes('/') && req.method === 'DELETE') {
        closeOne(res, rest); // handles are hex: nothing to decode
      } else if (!rest.includes('/')) {
        throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use DELETE');
      } else {
        throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `Not found: ${path}`);
      }
    } catch (err) {
      const ge = isGatewayError(err) ? err : new GatewayError('SWB_ERR_INTERNAL', 'Internal error', { cause: err });
      if (!isGatewayError(err)) gateway.logger.error({ reqId, err }, 'sessions API error');
      sendError(res, ge);
    }
    return true;
  };
}
