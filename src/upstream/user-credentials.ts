/**
 * `auth.type: oauth2-user`: each caller reaches the upstream with its own upstream access token,
 * obtained by the gateway's OAuth broker (`auth/upstream-oauth.ts`) and kept in the token vault.
 *
 * - A caller with a stored connection: `Authorization: Bearer <its upstream access token>`
 *   (RFC 6750 §2.1), refreshed by the broker before it expires (RFC 6749 §6).
 * - A caller without one (never connected, disconnected, or its refresh token was refused): the
 *   call fails with `SWB_ERR_UPSTREAM_NOT_CONNECTED`, whose `data.authorizationUrl` is where the
 *   user connects; the session turns it into the MCP URL-elicitation-required error for clients
 *   that declared URL-mode elicitation (`gateway/url-elicitation.ts`). Nothing is sent upstream.
 * - The anonymous principal — the start-up connection that loads the catalog, catalog refreshes
 *   and health probes, never a caller (an `oauth2-user` server needs `auth.mode` other than
 *   `none`) — uses the token of the connected user who used the server most recently; with no
 *   connected user it goes without a credential.
 * - After the upstream answers HTTP 401, the caller's next call refreshes its token first; a
 *   connection without a refresh token then counts as not connected, so the user connects again.
 *
 * Tokens are read from the vault on every call (a revoked connection is seen at once by every
 * replica). Nothing here logs a token; the upstream subject (the `sub` the authorization server
 * gave, not a token) is reported for the usage log and traces.
 *
 * @module
 */
import { ANONYMOUS, type Principal } from '../auth/principal.js';
import type { OAuth2UserAuth } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { OutboundHeaders } from './dispatch.js';

/** An upstream access token as the broker hands it out. */
export interface UserAccessToken {
  accessToken: string;
  /** The upstream subject (`sub`), when the authorization server named it. */
  upstreamSubject?: string | undefined;
}

/** The broker as the credential needs it (implemented by `UpstreamOAuthBroker`). */
export interface UserTokenSource {
  /**
   * A usable access token of `principal` for `server`, refreshed when it expires within
   * `skewMs` (`Infinity` forces a refresh); undefined when the principal is not connected.
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_AUTH` when the authorization server cannot be reached
   */
  access(principal: string, server: UserTokenServer, skewMs?: number): Promise<UserAccessToken | undefined>;
  /**
   * A usable access token of the connected principal who used `server` most recently, for the
   * start-up connection; undefined when nobody is connected.
   */
  catalogAccess(server: UserTokenServer): Promise<(UserAccessToken & { principal: string }) | undefined>;
  /**
   * Where `principal` connects to `server` (the gateway's page that leads to the authorization
   * server).
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_AUTH` when the authorization server cannot be found
   */
  authorizationUrl(principal: string, server: UserTokenServer): Promise<string>;
}

/** One `oauth2-user` upstream. */
export interface UserTokenServer {
  name: string;
  url: string;
  auth: OAuth2UserAuth;
}

/** A holder the call's request context offers for the upstream identity used (usage log, traces). */
export interface UpstreamIdentitySink {
  upstreamSubject?: string | undefined;
}

const EMPTY: OutboundHeaders = Object.freeze({});

/** Principals whose next call refreshes first, at most this many remembered. */
const MAX_STALE = 10_000;

/** The credential of one `oauth2-user` upstream (see the module comment). */
export class UserTokenCredentials {
  readonly type = 'oauth2-user' as const;
  readonly #source: UserTokenSource;
  readonly #server: UserTokenServer;
  readonly #logger: Logger;
  /** Principals whose token the upstream refused (HTTP 401). */
  readonly #stale = new Set<string>();
  /** The principal whose token the start-up connection used last (logged when it changes). */
  #catalogPrincipal: string | undefined;

  constructor(source: UserTokenSource, server: UserTokenServer, logger: Logger) {
    this.#source = source;
    this.#server = server;
    this.#logger = logger;
  }

  /**
   * The `Authorization` header for `principal`.
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_NOT_CONNECTED` (with `data.server` and
   *   `data.authorizationUrl`) when the principal has no usable connection;
   *   `SWB_ERR_UPSTREAM_AUTH` when the authorization server cannot be reached
   */
  async headersFor(principal: Principal, sink?: UpstreamIdentitySink): Promise<OutboundHeaders> {
    if (principal.id === ANONYMOUS.id) return this.#catalogHeaders();
    const stale = this.#stale.delete(principal.id);
    const token = await this.#source.access(principal.id, this.#server, stale ? Infinity : undefined);
    if (token === undefined) throw await this.#notConnected(principal.id);
    if (sink !== undefined) sink.upstreamSubject = token.upstreamSubject;
    return { authorization: `Bearer ${token.accessToken}` };
  }

  /** After an HTTP 401: `principal`'s next call refreshes its token first. */
  invalidate(principal?: Principal): void {
    if (principal === undefined || principal.id === ANONYMOUS.id) return;
    if (this.#stale.size >= MAX_STALE) this.#stale.clear();
    this.#stale.add(principal.id);
  }

  async #catalogHeaders(): Promise<OutboundHeaders> {
    let token: (UserAccessToken & { principal: string }) | undefined;
    try {
      token = await this.#source.catalogAccess(this.#server);
    } catch (err) {
      this.#logger.warn({ err, server: this.#server.name }, 'no token for the start-up connection; going without');
    }
    if (token?.principal !== this.#catalogPrincipal) {
      this.#catalogPrincipal = token?.principal;
      if (token === undefined)
        this.#logger.info(
          { server: this.#server.name },
          'no user has connected to this oauth2-user server yet; its catalog loads without a credential',
        );
      else
        this.#logger.info(
          { server: this.#server.name, principal: token.principal },
          "the start-up connection uses this user's upstream token to load the catalog",
        );
    }
    return token === undefined ? EMPTY : { authorization: `Bearer ${token.accessToken}` };
  }

  async #notConnected(principal: string): Promise<GatewayError> {
    const authorizationUrl = await this.#source.authorizationUrl(principal, this.#server);
    return new GatewayError(
      'SWB_ERR_UPSTREAM_NOT_CONNECTED',
      `server "${this.#server.name}" acts as you with your own account: open the authorization URL in a browser to connect, then retry`,
      { data: { server: this.#server.name, authorizationUrl } },
    );
  }
}
