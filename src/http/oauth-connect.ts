/**
 * `/oauth/connect`: the page an `oauth2-user` authorization URL leads to, between the user's
 * browser and the upstream's authorization server.
 *
 * - `GET /oauth/connect?state=…` checks the state (a forged, altered or expired one is 400) and
 *   answers a page naming the Switchboard principal and the server the connection is for, with a
 *   button that POSTs the state and its confirmation token back. It sets no cookie and redirects
 *   nowhere, so a link preview, a prefetch or an image tag cannot start a flow.
 * - `POST /oauth/connect` (the button) refuses a cross-site request (Fetch metadata
 *   `Sec-Fetch-Site`, else `Origin`), checks the state and the token, sets the flow's binding
 *   cookie (HttpOnly, SameSite=Lax, for the state's remaining life) and answers 303 to the
 *   authorization request. The callback accepts the state only with that cookie.
 * - When the browser presents the gateway's own credentials (an `Authorization` header), the
 *   principal they name must be the state's.
 *
 * What this protects against: a link sent to another user shows whose connection it is and does
 * nothing without a confirmation, and a code brought to the callback by a browser that did not
 * confirm the flow is refused (RFC 6749 §10.12, RFC 9700 §4.7.1). What it cannot prevent: a user
 * who confirms a connection that the page says is someone else's.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { BrokerServer, BrokerState, UpstreamOAuthBroker } from '../auth/upstream-oauth.js';
import type { Authenticate } from '../auth/authenticator.js';
import type { ServerConfig } from '../config/schema.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { readBody } from './guards.js';
import { brokerServerOf, escapeHtml, page } from './oauth-callback.js';
import type { RouteHandler } from './server.js';

/** The path of the connect page. */
export const OAUTH_CONNECT_PATH = '/oauth/connect';

/** Largest confirmation form read, bytes. */
const FORM_LIMIT = 8 * 1024;

/** Options of {@link createOAuthConnectRoute}. */
export interface OAuthConnectOptions {
  broker: UpstreamOAuthBroker;
  /** The servers in effect now (so a reload that removed a server is seen). */
  servers: () => Readonly<Record<string, ServerConfig>>;
  /** Where an authorization server that cannot be used is reported. */
  logger: Logger;
  /**
   * The gateway's authenticator, used only when a request carries an `Authorization` header:
   * its principal must be the state's. Omitted: such headers are not looked at.
   */
  authenticate?: Authenticate;
}

/** The connect route (see the module comment). */
export function createOAuthConnectRoute(options: OAuthConnectOptions): RouteHandler {
  const { broker, servers, logger, authenticate } = options;

  /** The verified state and its server, after the optional credential comparison. */
  async function flowOf(req: IncomingMessage, state: string): Promise<{ verified: BrokerState; server: BrokerServer }> {
    if (state === '') throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'the connect page needs a state');
    const verified = broker.verifyState(state);
    const server = brokerServerOf(servers(), verified.server);
    if (server === undefined) {
      throw new GatewayError(
        'SWB_ERR_HTTP_INVALID_REQUEST',
        `server "${verified.server}" is not an oauth2-user server any more`,
      );
    }
    if (authenticate !== undefined && req.headers.authorization !== undefined) {
      const principal = await authenticate(req);
      if (principal.id !== verified.principal) {
        throw new GatewayError(
          'SWB_ERR_HTTP_INVALID_REQUEST',
          'this connection was started for another Switchboard principal than the credentials this browser presents',
        );
      }
    }
    return { verified, server };
  }

  /** The authorization request URL, or undefined after answering a 502 page. */
  async function authorizationRequest(res: ServerResponse, state: string, server: BrokerServer) {
    try {
      return await broker.authorizationRequestUrl(state, server);
    } catch (err) {
      if (!isGatewayError(err) || err.code !== 'SWB_ERR_UPSTREAM_AUTH') throw err;
      logger.warn({ err: err.message }, 'upstream authorization server not usable');
      page(res, 502, 'Not connected', `Switchboard could not reach the upstream's authorization server (${err.code}).`);
      return undefined;
    }
  }

  return async function oauthConnect(req, res, path, query) {
    if (path !== OAUTH_CONNECT_PATH) return false;
    if (req.method === 'GET') {
      const state = new URLSearchParams(query).get('state') ?? '';
      const { verified, server } = await flowOf(req, state);
      const target = await authorizationRequest(res, state, server);
      if (target === undefined) return true;
      confirmationPage(res, verified, server, state, broker.confirmToken(state), new URL(target).origin);
      return true;
    }
    if (req.method === 'POST') {
      refuseCrossSite(req);
      const form = new URLSearchParams(await readBody(req, FORM_LIMIT));
      const state = form.get('state') ?? '';
      const { verified, server } = await flowOf(req, state);
      if (!broker.checkConfirmToken(state, form.get('token') ?? '')) {
        throw new GatewayError(
          'SWB_ERR_HTTP_INVALID_REQUEST',
          'the confirmation does not match this connection; open the connection link again',
        );
      }
      const target = await authorizationRequest(res, state, server);
      if (target === undefined) return true;
      const c = broker.bindingCookie(verified);
      res.writeHead(303, {
        location: target,
        'set-cookie': `${c.name}=${c.value}; Path=${c.path}; Max-Age=${c.maxAgeSeconds}; HttpOnly; SameSite=Lax${c.secure ? '; Secure' : ''}`,
        'cache-control': 'no-store',
        'referrer-policy': 'no-referrer',
      });
      res.end();
      return true;
    }
    throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET or POST');
  };
}

/**
 * Refuses a confirmation POST another site made the browser send: `Sec-Fetch-Site` (Fetch
 * Metadata), when present, must be `same-origin`; else an `Origin` other than the request's own
 * host is refused. A request with neither (not a current browser) passes.
 *
 * @throws {@link GatewayError} `SWB_ERR_HTTP_INVALID_REQUEST`
 */
function refuseCrossSite(req: IncomingMessage): void {
  const site = req.headers['sec-fetch-site'];
  const origin = req.headers.origin;
  let crossSite: boolean;
  if (site !== undefined) crossSite = site !== 'same-origin';
  else if (origin === undefined) crossSite = false;
  else {
    try {
      crossSite = new URL(origin).host !== req.headers.host;
    } catch {
      crossSite = true;
    }
  }
  if (crossSite) {
    throw new GatewayError(
      'SWB_ERR_HTTP_INVALID_REQUEST',
      'a connection is confirmed only with the button of the Switchboard connect page',
    );
  }
}

/** The confirmation page: no script, nothing loaded, not framed, not cached, no referrer to other origins. */
function confirmationPage(
  res: ServerResponse,
  state: BrokerState,
  server: BrokerServer,
  stateText: string,
  token: string,
  authorizationOrigin: string,
): void {
  const e = escapeHtml;
  res.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'cache-control': 'no-store',
    // form-action covers the 303 that follows the submission (CSP Level 3 §6.4.1).
    'content-security-policy': `default-src 'none'; form-action 'self' ${authorizationOrigin}; frame-ancestors 'none'; base-uri 'none'`,
    'x-frame-options': 'DENY',
    // Not no-referrer: under it a browser sends `Origin: null` with the form's POST (Fetch §3.1),
    // which the gateway's Origin guard refuses. `same-origin` sends the page's URL to no other
    // origin (and the page loads nothing); the 303 that follows says no-referrer.
    'referrer-policy': 'same-origin',
  });
  const expires = new Date(state.expiresAt).toISOString();
  res.end(
    `<!doctype html><meta charset="utf-8"><title>Connect ${e(server.name)}</title>` +
      `<h1>Connect ${e(server.name)}</h1>` +
      `<p>This connection is for the Switchboard principal <strong>${e(state.principal)}</strong> ` +
      `and the server <strong>${e(server.name)}</strong> (${e(server.url)}).</p>` +
      `<p>If you continue, you sign in at that server's authorization server, and what you allow there ` +
      `is used by Switchboard for <strong>${e(state.principal)}</strong>. If that is not you, or you did ` +
      `not start this connection, close this page.</p>` +
      `<form method="post" action="connect">` +
      `<input type="hidden" name="state" value="${e(stateText)}">` +
      `<input type="hidden" name="token" value="${e(token)}">` +
      `<button type="submit">Connect as ${e(state.principal)}</button></form>` +
      `<p>This link expires at ${e(expires)}.</p>`,
  );
}
