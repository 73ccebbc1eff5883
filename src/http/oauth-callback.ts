/**
 * `GET /oauth/callback`: where the user's browser comes back from an upstream's authorization
 * server (the redirect URI of the `oauth2-user` broker, RFC 6749 §4.1.2). The `state` names the
 * principal and server and is checked before anything else, then the flow's binding cookie, set
 * only in the browser that confirmed the flow on the connect page (`oauth-connect.ts`; a code
 * brought to the callback by another browser is refused before any token request) and cleared
 * here once used; the code is exchanged with the PKCE
 * verifier and the tokens go to the token vault (`auth/upstream-oauth.ts`). The answer is a small
 * HTML page for the user; errors are the gateway's usual JSON errors (`SWB_ERR_HTTP_INVALID_REQUEST`
 * for a bad or expired state or an error from the authorization server), except a refused or
 * failed code exchange (`SWB_ERR_UPSTREAM_AUTH`): a 502 page. Nothing of the code or the tokens is ever in an answer or a log line.
 *
 * @module
 */
import type { BindingCookie, BrokerServer, UpstreamOAuthBroker } from '../auth/upstream-oauth.js';
import { isStdioServer, type ServerConfig } from '../config/schema.js';
import type { ServerResponse } from 'node:http';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { RouteHandler } from './server.js';

/** The path of the callback. */
export const OAUTH_CALLBACK_PATH = '/oauth/callback';

/** Longest authorization code accepted, characters. */
export const MAX_CODE_LENGTH = 2048;

/** The `oauth2-user` server `name` of `servers`, as the broker needs it; undefined for any other. */
export function brokerServerOf(
  servers: Readonly<Record<string, ServerConfig>>,
  name: string,
): BrokerServer | undefined {
  const cfg = Object.hasOwn(servers, name) ? servers[name] : undefined;
  if (cfg === undefined || isStdioServer(cfg) || cfg.auth?.type !== 'oauth2-user') return undefined;
  return { name, url: cfg.url, auth: cfg.auth };
}

/** Escapes text for HTML element content and quoted attribute values. */
export const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/** A minimal HTML answer for the user's browser (no script, no referrer, not cached). */
export function page(res: ServerResponse, status: number, title: string, text: string): void {
  res.writeHead(status, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    'content-security-policy': "default-src 'none'",
    'referrer-policy': 'no-referrer',
  });
  res.end(`<!doctype html><meta charset="utf-8"><title>${escapeHtml(title)}</title><p>${escapeHtml(text)}</p>`);
}

/**
 * The callback route.
 *
 * @param servers - the servers in effect now (so a reload that removed a server is seen)
 * @param logger - where a refused code exchange is reported
 * @param hooks - `onConnected`: called after a connection was stored
 */
export function createOAuthCallbackRoute(
  broker: UpstreamOAuthBroker,
  servers: () => Readonly<Record<string, ServerConfig>>,
  logger: Logger,
  hooks: { onConnected?: (server: string, principal: string) => void } = {},
): RouteHandler {
  return async function oauthCallback(req, res, path, query) {
    if (path !== OAUTH_CALLBACK_PATH) return false;
    if (req.method !== 'GET') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
    const params = new URLSearchParams(query);
    const state = params.get('state') ?? '';
    const error = params.get('error');
    if (error !== null) {
      // RFC 6749 §4.1.2.1; only the error code's own characters are repeated back.
      const code = error.replace(/[^\x20-\x7e]/g, '').slice(0, 64);
      throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `the authorization server answered ${code}`);
    }
    const code = params.get('code') ?? '';
    if (code === '' || state === '') {
      throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'the callback needs code and state');
    }
    if (code.length > MAX_CODE_LENGTH) {
      throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `the code is longer than ${MAX_CODE_LENGTH} characters`);
    }
    const binding = broker.bindingCookie(broker.checkBinding(state, req.headers.cookie));
    res.appendHeader('set-cookie', clearCookie(binding));
    let done: { principal: string; server: string };
    try {
      done = await broker.complete(code, state, (name) => brokerServerOf(servers(), name));
    } catch (err) {
      if (!isGatewayError(err) || err.code !== 'SWB_ERR_UPSTREAM_AUTH') throw err;
      // A JSON-RPC-family error would be a 200 on this browser-facing route: a 502 page instead,
      // the details (server, OAuth error code; never the code or a token) in the log.
      logger.warn({ err: err.message }, 'upstream authorization code not exchanged');
      page(
        res,
        502,
        'Not connected',
        `Switchboard could not obtain the upstream's tokens (${err.code}). Start the connection again.`,
      );
      return true;
    }
    hooks.onConnected?.(done.server, done.principal);
    page(res, 200, 'Connected', `Connected to ${done.server}. You can close this window and retry the call.`);
    return true;
  };
}

/** A `Set-Cookie` value that removes `cookie` (same name, path and `Secure`, `Max-Age=0`). */
export function clearCookie(cookie: BindingCookie): string {
  return `${cookie.name}=; Path=${cookie.path}; Max-Age=0; HttpOnly; SameSite=Lax${cookie.secure ? '; Secure' : ''}`;
}
