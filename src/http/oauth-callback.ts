/**
 * `GET /oauth/callback`: where the user's browser comes back from an upstream's authorization
 * server (the redirect URI of the `oauth2-user` broker, RFC 6749 §4.1.2). The `state` names the
 * principal and server and is checked before anything else; the code is exchanged with the PKCE
 * verifier and the tokens go to the token vault (`auth/upstream-oauth.ts`). The answer is a small
 * HTML page for the user; errors are the gateway's usual JSON errors (`SWB_ERR_HTTP_INVALID_REQUEST`
 * for a bad or expired state or an error from the authorization server, `SWB_ERR_UPSTREAM_AUTH`
 * for a refused code). Nothing of the code or the tokens is ever in an answer or a log line.
 *
 * @module
 */
import type { BrokerServer, UpstreamOAuthBroker } from '../auth/upstream-oauth.js';
import { isStdioServer, type ServerConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
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

const escapeHtml = (s: string): string =>
  s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);

/**
 * The callback route.
 *
 * @param servers - the servers in effect now (so a reload that removed a server is seen)
 */
export function createOAuthCallbackRoute(
  broker: UpstreamOAuthBroker,
  servers: () => Readonly<Record<string, ServerConfig>>,
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
    const done = await broker.complete(code, state, (name) => brokerServerOf(servers(), name));
    const body = `<!doctype html><meta charset="utf-8"><title>Connected</title><p>Connected to ${escapeHtml(done.server)}. You can close this window and retry the call.</p>`;
    res.writeHead(200, {
      'content-type': 'text/html; charset=utf-8',
      'cache-control': 'no-store',
      'content-security-policy': "default-src 'none'",
      'referrer-policy': 'no-referrer',
    });
    res.end(body);
    return true;
  };
}
