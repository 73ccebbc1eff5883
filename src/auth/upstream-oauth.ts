/**
 * The first half of the upstream OAuth broker of `auth.type: oauth2-user` servers: finding the
 * upstream's authorization server, building the authorization URL a user opens, and finishing
 * the authorization code grant at the gateway's callback.
 *
 * - Discovery: the protected-resource metadata (RFC 9728 §3) named by the upstream's 401
 *   `WWW-Authenticate` `resource_metadata` parameter (§5.1), else at the upstream URL's
 *   well-known location (§3.1), gives the authorization server, unless `authorizationServer` is
 *   configured; that server's metadata comes from RFC 8414 with the OpenID Connect Discovery
 *   fallback (`oauth-discovery.ts`).
 * - The URL handed to the user is the gateway's connect page (`/oauth/connect?state=…`), not the
 *   authorization server's: the page names the principal and the server, and only its confirming
 *   POST sets a binding cookie (an HMAC of the state's nonce) and redirects to the authorization
 *   request. The callback accepts a state only from the browser holding that cookie (RFC 6749
 *   §10.12, RFC 9700 §4.7.1; the MCP 2025-11-25 URL-mode elicitation requirement that the user
 *   who completes a flow is the one it was started for, as far as a browser can show it).
 * - The authorization request (RFC 6749 §4.1.1) carries PKCE S256 (RFC 7636 §4.2), the RFC 8707
 *   `resource` of the upstream and a `state` that binds the principal, the server and an expiry,
 *   protected by HMAC-SHA256 under a key derived from the gateway's signing secret. The PKCE
 *   verifier, the confirmation token and the binding cookie are derived from the same key and the
 *   state, so the gateway keeps nothing per flow.
 * - The callback checks the state and the binding cookie, exchanges the code with the verifier
 *   (RFC 6749 §4.1.3) and stores the tokens in the token vault.
 * - The client id is the configured one, one registered dynamically (RFC 7591) or the gateway's
 *   client ID metadata document URL (`upstream-client.ts`).
 *
 * @module
 */
import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { OAuth2UserAuth } from '../config/schema.js';
import { AuthorizationServerDiscovery } from './oauth-discovery.js';
import type { AuthorizationServerMetadata, AuthServerHttp } from './oauth-common.js';
import { MAX_VAULT_SCOPES, MAX_VAULT_TOKEN_LENGTH, type TokenVault } from './token-vault.js';
import type { UserAccessToken } from '../upstream/user-credentials.js';
import type { SettingsStore } from '../store/types.js';
import { UpstreamClientRegistry, type UpstreamClient } from './upstream-client.js';

/** HKDF `info` of the key protecting `state` and deriving PKCE verifiers. */
export const BROKER_KEY_INFO = 'switchboard upstream-oauth-state v1';

/** How long an authorization URL stays usable, ms (10 minutes). */
export const DEFAULT_STATE_TTL_MS = 600_000;

/** Uses of a connection are recorded at most this often, ms. */
const TOUCH_INTERVAL_MS = 60_000;

/** Largest metadata or token response read, bytes. */
const BODY_LIMIT = 256 * 1024;

/** RFC 6749 §5.2 `error` values (NQSCHAR), at most 64 of them. */
const OAUTH_ERROR = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;

/** Longest `state` accepted at the callback, characters. */
export const MAX_STATE_LENGTH = 2048;

/** Where a user authorizes the gateway for one upstream. */
export interface UpstreamAuthorizationServer {
  /** The upstream's resource identifier (RFC 9728 `resource`, else the server URL). */
  resource: string;
  metadata: AuthorizationServerMetadata;
  /** Scopes the protected-resource metadata lists (`scopes_supported`), if any. */
  resourceScopes: string[];
}

/**
 * The binding cookie of one flow (RFC 6265bis): `__Host-` prefixed (and `Secure`, `Path=/`, as
 * the prefix requires, §4.1.3.2) when the connect URL is https; else a plain name with `Path` the
 * connect URL's directory (`/oauth` under the root). One name per flow (it carries the nonce), so
 * flows to several servers in one browser do not overwrite each other.
 */
export interface BindingCookie {
  name: string;
  /** base64url HMAC-SHA256 of the state's nonce. */
  value: string;
  path: string;
  secure: boolean;
  /** The state's remaining life, seconds (at least 1). */
  maxAgeSeconds: number;
}

/** What a verified `state` says. */
export interface BrokerState {
  principal: string;
  server: string;
  /** Epoch ms. */
  expiresAt: number;
  nonce: string;
}

/** Options of {@link UpstreamOAuthBroker}. */
export interface UpstreamOAuthBrokerOptions {
  /** 32 bytes: HMAC key of `state` and the PKCE verifiers. */
  key: Buffer;
  vault: TokenVault;
  /** The gateway's `/oauth/callback` URL, registered as the client's redirect URI. */
  redirectUri: string;
  /**
   * The gateway's `/oauth/connect` URL: the page {@link UpstreamOAuthBroker.authorizationUrl}
   * leads to. Its scheme decides the binding cookie's prefix ({@link BindingCookie}).
   */
  connectUrl: string;
  http: AuthServerHttp;
  logger: Logger;
  clock?: () => number;
  /** Default {@link DEFAULT_STATE_TTL_MS}. */
  stateTtlMs?: number;
  /** Time limit of one request to the authorization server, ms. Default 10 s. */
  timeoutMs?: number;
  /**
   * Where dynamically registered clients are kept (shared by replicas, kept over restarts);
   * without it, in this process only.
   */
  settings?: SettingsStore;
  /**
   * The URL of the gateway's client ID metadata document (`registration: metadata-document`).
   * Default `client-metadata.json` beside the redirect URI (`<public URL>/oauth/client-metadata.json`).
   */
  clientMetadataUrl?: string;
}

/** One upstream as the broker needs it. */
export interface BrokerServer {
  name: string;
  url: string;
  auth: OAuth2UserAuth;
}

/**
 * Parses the `resource_metadata` parameter out of a `WWW-Authenticate` value (RFC 9728 §5.1);
 * undefined when absent or not an http(s) URL.
 */
export function resourceMetadataFromChallenge(header: string | undefined): string | undefined {
  if (header === undefined) return undefined;
  const m = /(?:^|[\s,])resource_metadata\s*=\s*(?:"([^"]*)"|([^\s,]+))/i.exec(header);
  const value = m?.[1] ?? m?.[2];
  if (value === undefined) return undefined;
  try {
    const url = new URL(value);
    return url.protocol === 'https:' || url.protocol === 'http:' ? url.toString() : undefined;
  } catch {
    return undefined;
  }
}

/** The RFC 9728 §3.1 well-known metadata URL of a resource: the well-known segment inserted before its path. */
export function protectedResourceMetadataUrl(resource: string): string {
  const url = new URL(resource);
  const path = url.pathname.replace(/\/+$/, '');
  return `${url.origin}/.well-known/oauth-protected-resource${path}`;
}

/** The brokered authorization code flow of `oauth2-user` upstreams (see the module comment). */
export class UpstreamOAuthBroker {
  readonly #key: Buffer;
  readonly #vault: TokenVault;
  readonly #redirectUri: string;
  readonly #connectUrl: URL;
  readonly #http: AuthServerHttp;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #ttl: number;
  readonly #timeoutMs: number;
  readonly #discoveries = new Map<string, AuthorizationServerDiscovery>();
  readonly #clients: UpstreamClientRegistry;
  /** Refreshes in flight, per (principal, server). */
  readonly #refreshing = new Map<string, Promise<UserAccessToken | undefined>>();
  /**
   * The last discovery per server name, so the callback uses the authorization server the
   * authorization URL named (found from a 401 that the callback does not see). Bounded by the
   * number of configured servers.
   */
  readonly #found = new Map<string, { url: string; issuer: string | undefined; found: UpstreamAuthorizationServer }>();

  /** @throws TypeError for a key that is not 32 bytes */
  constructor(options: UpstreamOAuthBrokerOptions) {
    if (options.key.length !== 32) throw new TypeError('the broker key is 32 bytes');
    this.#key = options.key;
    this.#vault = options.vault;
    this.#redirectUri = options.redirectUri;
    this.#connectUrl = new URL(options.connectUrl);
    this.#http = options.http;
    this.#logger = options.logger;
    this.#clock = options.clock ?? Date.now;
    this.#ttl = options.stateTtlMs ?? DEFAULT_STATE_TTL_MS;
    this.#timeoutMs = options.timeoutMs ?? 10_000;
    this.#clients = new UpstreamClientRegistry({
      redirectUri: options.redirectUri,
      clientMetadataUrl: options.clientMetadataUrl ?? new URL('client-metadata.json', options.redirectUri).toString(),
      http: options.http,
      logger: options.logger,
      vault: options.vault,
      clock: this.#clock,
      timeoutMs: this.#timeoutMs,
      ...(options.settings === undefined ? {} : { settings: options.settings }),
    });
  }

  /**
   * The gateway's client ID metadata document (draft-ietf-oauth-client-id-metadata-document §3),
   * served at its `client_id` URL.
   */
  get clientMetadataDocument(): Record<string, unknown> {
    return this.#clients.metadataDocument;
  }

  /**
   * Finds the upstream's authorization server: from `wwwAuthenticate` (the upstream's 401
   * challenge) or the well-known protected-resource metadata, unless `authorizationServer` is
   * configured.
   *
   * @throws {@link GatewayError} `SWB_ERR_UPSTREAM_AUTH` when no metadata could be used
   */
  async discover(server: BrokerServer, wwwAuthenticate?: string): Promise<UpstreamAuthorizationServer> {
    let resource = server.url;
    let issuer = server.auth.authorizationServer;
    let resourceScopes: string[] = [];
    if (issuer === undefined || wwwAuthenticate !== undefined) {
      const url = resourceMetadataFromChallenge(wwwAuthenticate) ?? protectedResourceMetadataUrl(server.url);
      const prm = await this.#json(url, server.name, 'protected-resource metadata');
      if (typeof prm.resource === 'string') {
        // RFC 9728 §3.3/§7.3: metadata for another resource must not be used (an upstream
        // could otherwise send its users' tokens to another server's authorization).
        if (!sameOrigin(prm.resource, server.url)) {
          throw upstreamAuth(server.name, `${url} describes another resource (${prm.resource})`);
        }
        resource = prm.resource;
      }
      const listed = Array.isArray(prm.authorization_servers)
        ? prm.authorization_servers.filter((a): a is string => typeof a === 'string')
        : [];
      issuer ??= listed[0];
      if (Array.isArray(prm.scopes_supported)) {
        resourceScopes = prm.scopes_supported.filter((s): s is string => typeof s === 'string');
      }
      if (issuer === undefined) throw upstreamAuth(server.name, `${url} names no authorization server`);
    }
    let discovery = this.#discoveries.get(issuer);
    if (discovery === undefined) {
      discovery = new AuthorizationServerDiscovery({
        issuer,
        jwksUri: undefined,
        introspectionEndpoint: undefined,
        logger: this.#logger,
        clock: this.#clock,
        http: this.#http,
        timeoutMs: this.#timeoutMs,
      });
      this.#discoveries.set(issuer, discovery);
    }
    let metadata: AuthorizationServerMetadata;
    try {
      metadata = await discovery.discover();
    } catch (cause) {
      throw upstreamAuth(server.name, `no usable metadata for the authorization server ${issuer}`, cause);
    }
    if (metadata.authorization_endpoint === undefined || metadata.token_endpoint === undefined) {
      throw upstreamAuth(server.name, `the authorization server ${issuer} lists no authorization or token endpoint`);
    }
    const found = { resource, metadata, resourceScopes };
    this.#found.set(server.name, { url: server.url, issuer: server.auth.authorizationServer, found });
    return found;
  }

  /**
   * The URL `principal` opens to connect to `server`: the gateway's connect page
   * (`<connectUrl>?state=…`) with a `state` valid for the state TTL. The authorization server is
   * discovered now (from `wwwAuthenticate` when given), so a server that cannot be connected
   * fails here rather than in the user's browser, and the connect page uses what was found.
   *
   * @throws {@link GatewayError} `SWB_ERR_UPSTREAM_AUTH` as {@link discover}, and when no client
   *   id can be had (registration refused or not offered, metadata documents not supported)
   */
  async authorizationUrl(principal: string, server: BrokerServer, wwwAuthenticate?: string): Promise<string> {
    const as = await this.discover(server, wwwAuthenticate);
    await this.#clientId(server, as);
    const url = new URL(this.#connectUrl);
    url.search = '';
    url.searchParams.set('state', this.issueState(principal, server.name));
    return url.toString();
  }

  /**
   * The authorization request (RFC 6749 §4.1.1) of a verified `state` for `server`: PKCE S256
   * (the challenge of the state's verifier), `resource` (RFC 8707), the configured scopes (else
   * the metadata's), at the authorization server found last for the server (else discovered now).
   * The connect page redirects here once the user confirmed.
   *
   * @throws {@link GatewayError} `SWB_ERR_UPSTREAM_AUTH` as {@link discover}, and when no client
   *   id can be had
   */
  async authorizationRequestUrl(state: string, server: BrokerServer): Promise<string> {
    const as = await this.#serverOf(server);
    const { clientId } = await this.#clientId(server, as);
    const url = new URL(as.metadata.authorization_endpoint!);
    const scopes = server.auth.scopes ?? as.resourceScopes;
    url.searchParams.set('response_type', 'code');
    url.searchParams.set('client_id', clientId);
    url.searchParams.set('redirect_uri', this.#redirectUri);
    if (scopes.length > 0) url.searchParams.set('scope', scopes.join(' '));
    url.searchParams.set('state', state);
    url.searchParams.set('code_challenge', createHash('sha256').update(this.#verifier(state)).digest('base64url'));
    url.searchParams.set('code_challenge_method', 'S256');
    url.searchParams.set('resource', as.resource);
    return url.toString();
  }

  /**
   * The confirmation token the connect page's form carries: base64url HMAC-SHA256 of the state.
   * It ties the POST to a state this gateway issued and showed; refusing cross-site POSTs is the
   * connect route's Fetch-metadata/`Origin` check (the token of a state is on that state's page).
   */
  confirmToken(state: string): string {
    return this.#mac('confirm', state).toString('base64url');
  }

  /** Whether `token` is {@link confirmToken} of `state` (constant-time). */
  checkConfirmToken(state: string, token: string): boolean {
    const given = Buffer.from(token, 'base64url');
    const expected = this.#mac('confirm', state);
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The binding cookie the confirming POST sets for a verified state (see {@link BindingCookie}). */
  bindingCookie(state: BrokerState): BindingCookie {
    const secure = this.#connectUrl.protocol === 'https:';
    const dir = this.#connectUrl.pathname.replace(/\/[^/]*$/, '');
    return {
      name: `${secure ? '__Host-' : ''}swb-oauth-${state.nonce}`,
      value: this.#mac('bind', state.nonce).toString('base64url'),
      path: secure ? '/' : dir === '' ? '/' : dir,
      secure,
      maxAgeSeconds: Math.max(1, Math.ceil((state.expiresAt - this.#clock()) / 1000)),
    };
  }

  /**
   * Checks a `state` at the callback together with the browser's `Cookie` header: the state as
   * {@link verifyState}, then the flow's binding cookie, which only the browser that confirmed
   * the flow at the connect page holds.
   *
   * @returns the verified state
   * @throws {@link GatewayError} `SWB_ERR_HTTP_INVALID_REQUEST` for a bad state, or when the
   *   binding cookie is missing or holds another value
   */
  checkBinding(state: string, cookieHeader: string | undefined): BrokerState {
    const verified = this.verifyState(state);
    const { name, value } = this.bindingCookie(verified);
    const expected = Buffer.from(value);
    const presented = cookieValues(cookieHeader, name);
    if (!presented.some((v) => v.length === value.length && timingSafeEqual(Buffer.from(v), expected))) {
      throw new GatewayError(
        'SWB_ERR_HTTP_INVALID_REQUEST',
        'this browser did not confirm this connection on the Switchboard connect page (its binding cookie is ' +
          `${presented.length === 0 ? 'missing' : 'not this connection’s'}); open the connection link again ` +
          'in the browser you use with Switchboard and confirm it there',
      );
    }
    return verified;
  }

  /** A fresh `state` for (principal, server), valid for the state TTL, with a random nonce. */
  issueState(principal: string, server: string): string {
    return this.#seal({
      principal,
      server,
      expiresAt: this.#clock() + this.#ttl,
      nonce: randomBytes(12).toString('base64url'),
    });
  }

  /**
   * Checks a `state` from the callback: its HMAC, then its expiry.
   *
   * @throws {@link GatewayError} `SWB_ERR_HTTP_INVALID_REQUEST` for a malformed, forged or expired state
   */
  verifyState(state: string): BrokerState {
    const bad = (why: string) => new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `invalid state: ${why}`);
    if (state.length > MAX_STATE_LENGTH) throw bad('too long');
    const dot = state.indexOf('.');
    if (dot <= 0) throw bad('malformed');
    const body = state.slice(0, dot);
    const mac = Buffer.from(state.slice(dot + 1), 'base64url');
    const expected = this.#mac('state', body);
    if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) throw bad('not issued by this gateway');
    let parsed: unknown;
    try {
      parsed = JSON.parse(Buffer.from(body, 'base64url').toString('utf8'));
    } catch {
      throw bad('malformed');
    }
    const o = parsed as Partial<Record<'p' | 's' | 'e' | 'n', unknown>>;
    if (
      typeof o.p !== 'string' ||
      typeof o.s !== 'string' ||
      typeof o.e !== 'number' ||
      typeof o.n !== 'string' ||
      !/^[A-Za-z0-9_-]{1,64}$/.test(o.n)
    ) {
      throw bad('malformed');
    }
    if (this.#clock() >= o.e) throw bad('expired; start the connection again');
    return { principal: o.p, server: o.s, expiresAt: o.e, nonce: o.n };
  }

  /**
   * Finishes the flow: exchanges `code` for tokens (RFC 6749 §4.1.3, with the PKCE verifier of
   * `state` and the `resource`) and stores them for the state's principal and server. The
   * callback calls {@link checkBinding} first: this method does not look at the browser.
   *
   * @param lookup - the server a verified state names, if it is (still) an `oauth2-user` server
   * @returns the principal and server connected
   * @throws {@link GatewayError} `SWB_ERR_HTTP_INVALID_REQUEST` for a bad state or an unknown
   *   server; `SWB_ERR_UPSTREAM_AUTH` when the token endpoint refuses or cannot be reached
   */
  async complete(
    code: string,
    state: string,
    lookup: (server: string) => BrokerServer | undefined,
  ): Promise<{ principal: string; server: string }> {
    const verified = this.verifyState(state);
    const server = lookup(verified.server);
    if (server === undefined) {
      throw new GatewayError(
        'SWB_ERR_HTTP_INVALID_REQUEST',
        `server "${verified.server}" is not an oauth2-user server any more`,
      );
    }
    const as = await this.#serverOf(server);
    const body = await this.#tokenRequest(
      server,
      as,
      {
        grant_type: 'authorization_code',
        code,
        redirect_uri: this.#redirectUri,
        code_verifier: this.#verifier(state),
      },
      'the authorization code',
    );
    const subject = await this.#store(verified.principal, server, body, undefined);
    this.#logger.info(
      { principal: verified.principal, server: server.name, upstreamSubject: subject },
      'upstream connection stored',
    );
    return { principal: verified.principal, server: server.name };
  }

  /**
   * A usable access token of `principal` for `server`: the stored one, or, when it expires
   * within `skewMs`, a new one from the refresh grant (RFC 6749 §6), stored before it is returned
   * (a refresh token not rotated by the server is kept). Concurrent calls for one (principal,
   * server) share one refresh. Records the use (at most once a minute per connection).
   *
   * @param skewMs - refresh this long before expiry. Default 60 000 ms; `Infinity` forces a
   *   refresh (after the upstream refused the token), and without a refresh token the principal
   *   then counts as not connected.
   * @returns undefined when the principal is not connected, or its token expired without a
   *   refresh token, or the authorization server refused the refresh token (`invalid_grant`:
   *   revoked or expired; `invalid_client` for a dynamically registered client, which is then
   *   registered again; the stored tokens are dropped): the user connects again.
   * @throws {@link GatewayError} `SWB_ERR_UPSTREAM_AUTH` when the token endpoint cannot be
   *   reached or fails otherwise (the tokens are kept; the next call tries again)
   */
  async accessToken(principal: string, server: BrokerServer, skewMs = 60_000): Promise<string | undefined> {
    return (await this.access(principal, server, skewMs))?.accessToken;
  }

  /** {@link accessToken} with the upstream subject the tokens were issued for. */
  async access(principal: string, server: BrokerServer, skewMs = 60_000): Promise<UserAccessToken | undefined> {
    const tokens = await this.#vault.get(principal, server.name);
    if (tokens === undefined) return undefined;
    if (tokens.expiresAt === undefined ? skewMs !== Infinity : tokens.expiresAt - skewMs > this.#clock()) {
      await this.#touch(principal, server.name, tokens.lastUsedAt);
      return { accessToken: tokens.accessToken, upstreamSubject: tokens.upstreamSubject };
    }
    const refreshToken = tokens.refreshToken;
    if (refreshToken === undefined) return undefined;
    const key = `${principal}\0${server.name}`;
    let pending = this.#refreshing.get(key);
    if (pending === undefined) {
      pending = this.#refresh(principal, server, refreshToken).finally(() => this.#refreshing.delete(key));
      this.#refreshing.set(key, pending);
    }
    return pending;
  }

  /**
   * A usable access token of the connected principal who used `server` most recently (the
   * start-up connection loads the catalog with it). Connections whose token cannot be had are
   * skipped; at most three are tried.
   *
   * @returns undefined when no principal is connected to `server`
   */
  async catalogAccess(server: BrokerServer): Promise<(UserAccessToken & { principal: string }) | undefined> {
    const connections = await this.#vault.connections({ server: server.name });
    connections.sort((a, b) => (b.lastUsedAt ?? b.updatedAt) - (a.lastUsedAt ?? a.updatedAt));
    for (const c of connections.slice(0, 3)) {
      const token = await this.access(c.principal, server).catch(() => undefined);
      if (token !== undefined) return { ...token, principal: c.principal };
    }
    return undefined;
  }

  /** Records a use, unless one was recorded within the last minute (a write per call would cost more than it tells). */
  async #touch(principal: string, server: string, lastUsedAt: number | undefined): Promise<void> {
    if (lastUsedAt !== undefined && this.#clock() - lastUsedAt < TOUCH_INTERVAL_MS) return;
    await this.#vault.touch(principal, server);
  }

  async #refresh(principal: string, server: BrokerServer, refreshToken: string): Promise<UserAccessToken | undefined> {
    const as = await this.#serverOf(server);
    let body: Record<string, unknown> & { access_token: string };
    try {
      body = await this.#tokenRequest(
        server,
        as,
        { grant_type: 'refresh_token', refresh_token: refreshToken },
        'the refresh token',
      );
    } catch (err) {
      const refused = err instanceof GatewayError ? err.data?.oauthError : undefined;
      // A refused registered client (`invalid_client`) is replaced; the refresh token was bound to it.
      if (refused === 'invalid_grant' || (refused === 'invalid_client' && server.auth.registration === 'dynamic')) {
        await this.#vault.delete(principal, server.name);
        this.#logger.info({ principal, server: server.name }, 'upstream refresh token refused; connection dropped');
        return undefined;
      }
      throw err;
    }
    const upstreamSubject = await this.#store(principal, server, body, refreshToken);
    await this.#vault.touch(principal, server.name);
    this.#logger.debug({ principal, server: server.name }, 'upstream access token refreshed');
    return { accessToken: body.access_token, upstreamSubject };
  }

  /**
   * Drops the connection of (principal, server): its tokens leave the vault at once, then the
   * refresh token (else the access token) is revoked at the authorization server's
   * `revocation_endpoint` (RFC 7009 §2.1, with the client's authentication), when its metadata
   * lists one. The revocation is best effort: a failure is logged (server and status only) and
   * does not undo the disconnection.
   *
   * @returns false when the principal had no connection to the server
   */
  async disconnect(principal: string, server: BrokerServer): Promise<boolean> {
    const tokens = await this.#vault.get(principal, server.name);
    if (!(await this.#vault.delete(principal, server.name))) return false;
    if (tokens !== undefined) {
      try {
        await this.#revoke(server, tokens.refreshToken ?? tokens.accessToken, tokens.refreshToken !== undefined);
      } catch (err) {
        this.#logger.warn(
          { server: server.name, err: err instanceof Error ? err.message : String(err) },
          'upstream token not revoked at the authorization server (the connection is dropped here)',
        );
      }
    }
    this.#logger.info({ principal, server: server.name }, 'upstream connection dropped');
    return true;
  }

  async #revoke(server: BrokerServer, token: string, refresh: boolean): Promise<void> {
    const as = await this.#serverOf(server);
    const endpoint = as.metadata.revocation_endpoint;
    if (typeof endpoint !== 'string') return;
    const client = await this.#clientId(server, as);
    const { form, headers } = clientRequest(client, {
      token,
      token_type_hint: refresh ? 'refresh_token' : 'access_token',
    });
    const { status } = await this.#http('POST', endpoint, headers, form.toString(), BODY_LIMIT);
    // RFC 7009 §2.2: 200 whether or not the token was valid.
    if (status !== 200) throw new Error(`the revocation endpoint answered ${status}`);
  }

  /** The authorization server of `server`: the one found last for it, else discovered now. */
  async #serverOf(server: BrokerServer): Promise<UpstreamAuthorizationServer> {
    const known = this.#found.get(server.name);
    return known !== undefined && known.url === server.url && known.issuer === server.auth.authorizationServer
      ? known.found
      : this.discover(server);
  }

  /**
   * One token request (RFC 6749 §4.1.3 or §6) with the client's authentication and `resource`.
   *
   * @throws {@link GatewayError} `SWB_ERR_UPSTREAM_AUTH`, with `data.oauthError` the RFC 6749 §5.2
   *   `error` when the server gave one
   */
  async #tokenRequest(
    server: BrokerServer,
    as: UpstreamAuthorizationServer,
    params: Record<string, string>,
    what: string,
  ): Promise<Record<string, unknown> & { access_token: string }> {
    const client = await this.#clientId(server, as);
    const { form, headers } = clientRequest(client, { ...params, resource: as.resource });
    let status: number;
    let text: string;
    try {
      ({ status, body: text } = await this.#http(
        'POST',
        as.metadata.token_endpoint!,
        headers,
        form.toString(),
        BODY_LIMIT,
      ));
    } catch (cause) {
      throw upstreamAuth(server.name, 'the token endpoint could not be reached', cause);
    }
    let body: Record<string, unknown>;
    try {
      body = JSON.parse(text) as Record<string, unknown>;
    } catch {
      throw upstreamAuth(server.name, `the token endpoint answered ${status} without JSON`);
    }
    if (status !== 200 || typeof body.access_token !== 'string' || body.access_token === '') {
      // RFC 6749 §5.2 `error` only: `error_description` is the server's text and may echo input.
      const error = typeof body.error === 'string' && OAUTH_ERROR.test(body.error) ? body.error : undefined;
      // A registered client the server no longer knows is registered again at the next use.
      if (error === 'invalid_client') {
        await this.#clients.refused(client, as.metadata).catch((err: unknown) => {
          this.#logger.warn({ err, server: server.name }, 'could not mark the refused upstream client');
        });
      }
      throw new GatewayError(
        'SWB_ERR_UPSTREAM_AUTH',
        `server "${server.name}": the token endpoint refused ${what} (${error ?? `HTTP ${status}`})`,
        { ...(error === undefined ? {} : { data: { oauthError: error } }) },
      );
    }
    return body as Record<string, unknown> & { access_token: string };
  }

  /**
   * Stores a token response for (principal, server); `previousRefresh` is kept when the response
   * carries no new refresh token (RFC 6749 §6: the server may keep the old one valid).
   *
   * @returns the upstream subject, when the response had an ID token
   */
  async #store(
    principal: string,
    server: BrokerServer,
    body: Record<string, unknown> & { access_token: string },
    previousRefresh: string | undefined,
  ): Promise<string | undefined> {
    const scopes = (typeof body.scope === 'string' ? body.scope : (server.auth.scopes ?? []).join(' '))
      .split(' ')
      .filter((s) => s !== '');
    const refresh =
      typeof body.refresh_token === 'string' && body.refresh_token !== '' ? body.refresh_token : previousRefresh;
    if (
      body.access_token.length > MAX_VAULT_TOKEN_LENGTH ||
      (refresh !== undefined && refresh.length > MAX_VAULT_TOKEN_LENGTH) ||
      scopes.length > MAX_VAULT_SCOPES
    ) {
      throw upstreamAuth(
        server.name,
        `the token response is beyond the stored bounds (${MAX_VAULT_TOKEN_LENGTH} characters per token, ${MAX_VAULT_SCOPES} scopes)`,
      );
    }
    const now = this.#clock();
    const expiresIn = typeof body.expires_in === 'number' ? body.expires_in : Number(body.expires_in);
    const previous = previousRefresh === undefined ? undefined : await this.#vault.get(principal, server.name);
    const subject = subjectOf(body.id_token) ?? previous?.upstreamSubject;
    await this.#vault.put(principal, server.name, {
      accessToken: body.access_token,
      ...(refresh === undefined ? {} : { refreshToken: refresh }),
      ...(Number.isFinite(expiresIn) && expiresIn > 0 ? { expiresAt: now + expiresIn * 1000 } : {}),
      scopes,
      ...(subject === undefined ? {} : { upstreamSubject: subject }),
    });
    return subject;
  }

  /** The client of `server` at its authorization server: configured, registered or the metadata document URL. */
  #clientId(server: BrokerServer, as: UpstreamAuthorizationServer): Promise<UpstreamClient> {
    return this.#clients.resolve(server.name, server.auth, as.metadata);
  }

  #seal(state: BrokerState): string {
    const body = Buffer.from(
      JSON.stringify({ p: state.principal, s: state.server, e: state.expiresAt, n: state.nonce }),
    ).toString('base64url');
    return `${body}.${this.#mac('state', body).toString('base64url')}`;
  }

  /** RFC 7636 §4.1 verifier: 43 characters of base64url, secret because only the gateway holds the key. */
  #verifier(state: string): string {
    return this.#mac('pkce', state).toString('base64url');
  }

  #mac(purpose: 'state' | 'pkce' | 'confirm' | 'bind', text: string): Buffer {
    return createHmac('sha256', this.#key).update(`${purpose}\0${text}`).digest();
  }

  async #json(url: string, server: string, what: string): Promise<Record<string, unknown>> {
    let status: number;
    let body: string;
    try {
      ({ status, body } = await this.#http('GET', url, { accept: 'application/json' }, undefined, BODY_LIMIT));
    } catch (cause) {
      throw upstreamAuth(server, `the ${what} at ${url} could not be fetched`, cause);
    }
    if (status !== 200) throw upstreamAuth(server, `the ${what} at ${url} answered ${status}`);
    try {
      const parsed = JSON.parse(body) as unknown;
      if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed))
        return parsed as Record<string, unknown>;
    } catch {
      // reported below
    }
    throw upstreamAuth(server, `the ${what} at ${url} is not a JSON object`);
  }
}

/**
 * A form request authenticated as `client` (RFC 6749 §2.3.1): `client_secret_basic` (both parts
 * form-urlencoded before Basic encoding), `client_secret_post`, or `client_id` alone for a
 * public client.
 */
function clientRequest(
  client: UpstreamClient,
  params: Record<string, string>,
): { form: URLSearchParams; headers: Record<string, string> } {
  const form = new URLSearchParams(params);
  const headers: Record<string, string> = {
    'content-type': 'application/x-www-form-urlencoded',
    accept: 'application/json',
  };
  if (client.authMethod === 'client_secret_basic') {
    const user = `${encodeURIComponent(client.clientId)}:${encodeURIComponent(client.clientSecret!)}`;
    headers.authorization = `Basic ${Buffer.from(user).toString('base64')}`;
  } else {
    form.set('client_id', client.clientId);
    if (client.authMethod === 'client_secret_post') form.set('client_secret', client.clientSecret!);
  }
  return { form, headers };
}

/**
 * The `sub` of an ID token received straight from the token endpoint. OpenID Connect Core 1.0
 * §3.1.3.7 lets the TLS server authentication of that exchange stand in for the signature check,
 * and the value is only shown (connections API, logs), never used for access decisions.
 */
function subjectOf(idToken: unknown): string | undefined {
  if (typeof idToken !== 'string') return undefined;
  const payload = idToken.split('.')[1];
  if (payload === undefined) return undefined;
  try {
    const claims = JSON.parse(Buffer.from(payload, 'base64url').toString('utf8')) as { sub?: unknown };
    return typeof claims.sub === 'string' && claims.sub.length <= 255 ? claims.sub : undefined;
  } catch {
    return undefined;
  }
}

/** The values of every cookie named `name` in a `Cookie` header (RFC 6265 §5.4), in order. */
function cookieValues(header: string | undefined, name: string): string[] {
  if (header === undefined) return [];
  const values: string[] = [];
  for (const pair of header.split(';')) {
    const eq = pair.indexOf('=');
    if (eq > 0 && pair.slice(0, eq).trim() === name) values.push(pair.slice(eq + 1).trim());
  }
  return values;
}

function sameOrigin(a: string, b: string): boolean {
  try {
    return new URL(a).origin === new URL(b).origin;
  } catch {
    return false;
  }
}

function upstreamAuth(server: string, detail: string, cause?: unknown): GatewayError {
  return new GatewayError('SWB_ERR_UPSTREAM_AUTH', `server "${server}": ${detail}`, {
    ...(cause === undefined ? {} : { cause }),
  });
}
