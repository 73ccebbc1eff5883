/**
 * The connections API: which upstream servers of `auth.type: oauth2-user` a principal has
 * connected to (its upstream tokens held in the token vault, `auth/token-vault.ts`). Called by
 * the admin API after authentication. No answer ever carries a token.
 *
 * - `GET /api/v1/me/connections` (any authenticated principal): the caller's own connections.
 * - `DELETE /api/v1/me/connections/{server}`: drops the caller's tokens for that server (204;
 *   404 `SWB_ERR_HTTP_NOT_FOUND` when there were none) and revokes them at the upstream's
 *   authorization server when it can (RFC 7009); the next call to it asks to connect again.
 * - `POST /api/v1/me/connections/{server}`: where the caller connects to that `oauth2-user`
 *   server (200 `{server, authorizationUrl}`; 404 for any other server): how the first user
 *   connects before the server's catalog could be loaded, or a user connects ahead of a call.
 * - `GET /api/v1/connections[?principal=&server=]` (`admin.*`): every principal's connections.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { UpstreamConnection, TokenVault } from '../auth/token-vault.js';
import { isAdmin } from '../auth/rbac.js';
import { GatewayError } from '../errors.js';
import type { UsageRoute } from './usage-api.js';

/** Longest server or principal name accepted in a path or filter, characters. */
const MAX_NAME_LENGTH = 256;

/** One connection as the API shows it: times as ISO 8601, absent values as `null`. */
export interface ConnectionView {
  /** Only in the admin listing. */
  principal?: string;
  server: string;
  scopes: string[];
  /** When the upstream access token expires; `null` when the upstream did not say. */
  expiresAt: string | null;
  /** The upstream's subject for this principal, when known. */
  upstreamSubject: string | null;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
}

/** Options of {@link createConnectionsApi}. */
export interface ConnectionsApiOptions {
  readonly vault: TokenVault;
  /**
   * The authorization URL of `principal` for `server`, or undefined when `server` is not an
   * `oauth2-user` server (`POST /api/v1/me/connections/{server}`). Absent: that POST is 404.
   */
  readonly authorizationUrl?: (principal: string, server: string) => Promise<string | undefined>;
  /**
   * Drops (principal, server) and revokes its token at the authorization server (RFC 7009), when
   * `server` is an `oauth2-user` server of the configuration; false when there was no
   * connection. Absent, or undefined for another server: the tokens are only deleted.
   */
  readonly disconnect?: (principal: string, server: string) => Promise<boolean> | undefined;
}

const iso = (ms: number | undefined): string | null => (ms === undefined ? null : new Date(ms).toISOString());

/** The API view of a connection; `withPrincipal` for the admin listing. */
export function connectionView(c: UpstreamConnection, withPrincipal: boolean): ConnectionView {
  return {
    ...(withPrincipal ? { principal: c.principal } : {}),
    server: c.server,
    scopes: [...c.scopes],
    expiresAt: iso(c.expiresAt),
    upstreamSubject: c.upstreamSubject ?? null,
    createdAt: new Date(c.createdAt).toISOString(),
    updatedAt: new Date(c.updatedAt).toISOString(),
    lastUsedAt: iso(c.lastUsedAt),
  };
}

function send(res: ServerResponse, status: number, body?: unknown): void {
  if (body === undefined) {
    res.writeHead(status, { 'cache-control': 'no-store' });
    res.end();
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function name(value: string | null, what: string): string | undefined {
  if (value === null || value === '') return undefined;
  if (value.length > MAX_NAME_LENGTH) {
    throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `${what} is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return value;
}

/** Creates the connections routes (a {@link UsageRoute}: called by the admin API after authentication). */
export function createConnectionsApi(options: ConnectionsApiOptions): UsageRoute {
  const { vault } = options;
  return async function connectionsApi(req, res, path, query, principal) {
    if (path === '/api/v1/me/connections') {
      if (req.method !== 'GET') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
      const own = await vault.connections({ principal: principal.id });
      send(res, 200, { connections: own.map((c) => connectionView(c, false)) });
      return true;
    }
    if (path.startsWith('/api/v1/me/connections/')) {
      if (req.method !== 'DELETE' && req.method !== 'POST')
        throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use POST or DELETE');
      let server: string;
      try {
        server = decodeURIComponent(path.slice('/api/v1/me/connections/'.length));
      } catch {
        throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'the server name is not valid percent-encoding');
      }
      const valid = name(server, 'the server name');
      if (valid === undefined || valid.includes('/')) {
        throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', 'Not found: use /api/v1/me/connections/{server}');
      }
      if (req.method === 'POST') {
        const url = await options.authorizationUrl?.(principal.id, valid);
        if (url === undefined) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `no oauth2-user server "${valid}"`);
        send(res, 200, { server: valid, authorizationUrl: url });
        return true;
      }
      if (!(await (options.disconnect?.(principal.id, valid) ?? vault.delete(principal.id, valid)))) {
        throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `no connection to server "${valid}"`);
      }
      send(res, 204);
      return true;
    }
    if (path === '/api/v1/connections') {
      if (req.method !== 'GET') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
      if (!isAdmin(principal)) {
        throw new GatewayError('SWB_ERR_AUTH_FORBIDDEN', 'permission admin.* is required', {
          data: { permission: 'admin.*' },
        });
      }
      const params = typeof query === 'string' ? new URLSearchParams(query) : query;
      const who = name(params.get('principal'), 'principal');
      const server = name(params.get('server'), 'server');
      const all = await vault.connections({
        ...(who === undefined ? {} : { principal: who }),
        ...(server === undefined ? {} : { server }),
      });
      send(res, 200, { connections: all.map((c) => connectionView(c, true)) });
      return true;
    }
    return false;
  };
}
