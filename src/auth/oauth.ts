/**
 * OAuth 2.1 resource server: validates the bearer access tokens MCP clients present (MCP
 * authorization spec 2025-06-18 onward). This module composes the parts and caches results:
 *
 * - Authorization server metadata discovery: RFC 8414 §3 (with §3.1 path insertion), then
 *   OpenID Connect Discovery 1.0 §4; the document's `issuer` must equal the configured issuer
 *   (RFC 8414 §3.3). Lazy, cached, retried with exponential backoff after a failure
 *   (`oauth-discovery`).
 * - `jwt`: local verification of JWT access tokens (RFC 9068 / RFC 7519) against the issuer's
 *   JWKS (`jose` remote key set: cached, refetched on an unknown `kid`, so key rotation works).
 *   Asymmetric algorithms only; `iss`, `aud` and `exp` required (`oauth-jwt`).
 * - `introspection`: RFC 7662 token introspection with `client_secret_basic` authentication;
 *   positive answers cached briefly, keyed by a SHA-256 of the token (`oauth-introspection`).
 * - `both`: JWT first; introspection only for tokens that are not JWTs this resource server can
 *   verify (not a JWS, or signed with a key the JWKS does not hold). A JWT that verifies but is
 *   expired, for another audience or from another issuer is rejected outright.
 *
 * The audience check fails closed everywhere: a token without `aud`, or whose `aud` does not
 * name this resource (RFC 8707 / RFC 9068 §4 / MCP "Token Audience Binding"), is rejected.
 *
 * Errors are {@link GatewayError}s: `SWB_ERR_AUTH_INVALID_TOKEN` (401, `data.reason` a short
 * reason), `SWB_ERR_AUTH_INSUFFICIENT_SCOPE` (403, `data.scope` the required scopes),
 * `SWB_ERR_AUTH_UNAVAILABLE` (503, the authorization server could not be reached or answered
 * nonsense). Tokens never reach the logs; a short hash prefix identifies them.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  createAuthServerHttp,
  invalidToken,
  type AuthorizationServerMetadata,
  type VerifiedAccessToken,
} from './oauth-common.js';
import { AuthorizationServerDiscovery } from './oauth-discovery.js';
import { JwtAccessTokenVerifier, NotLocallyVerifiable } from './oauth-jwt.js';
import { TokenIntrospector } from './oauth-introspection.js';

export type { AuthorizationServerMetadata, VerifiedAccessToken } from './oauth-common.js';
export { discoveryUrls } from './oauth-discovery.js';
export { ALLOWED_JWS_ALGORITHMS, looksLikeJwt } from './oauth-jwt.js';

/** How access tokens are validated: locally as JWTs, by RFC 7662 introspection, or JWT first. */
export type TokenValidation = 'jwt' | 'introspection' | 'both';

/** Longest bearer token considered (characters); longer ones are rejected unparsed. */
export const MAX_ACCESS_TOKEN_LENGTH = 16_384;

/** Options for {@link createOAuthVerifier}. */
export interface OAuthVerifierOptions {
  /** Authorization server issuer identifier (RFC 8414 §2): an absolute URL, compared exactly. */
  issuer: string;
  /**
   * Accepted audience value(s): the canonical URI(s) of this resource (RFC 8707), e.g. the public
   * MCP URL. A token must name at least one of them in `aud`; a token without `aud` is rejected.
   */
  audience: string | readonly string[];
  /** Validation mode; see {@link TokenValidation}. */
  validation: TokenValidation;
  /** Client id for introspection (required for `introspection` and `both`). */
  clientId?: string;
  /** Client secret for introspection (required for `introspection` and `both`). */
  clientSecret?: string;
  /** Scopes every token must carry; missing ones → `SWB_ERR_AUTH_INSUFFICIENT_SCOPE`. Default none. */
  requiredScopes?: readonly string[];
  /** JWKS URL; when set, discovery is not needed for `jwt` validation. */
  jwksUri?: string;
  /** Introspection endpoint; when set, discovery is not needed for introspection. */
  introspectionEndpoint?: string;
  logger: Logger;
  /** Current time in milliseconds (tests). Default `Date.now`. */
  clock?: () => number;
  /** undici dispatcher for every request to the authorization server. Default the global one. */
  dispatcher?: Dispatcher;
  /** Time limit for one request to the authorization server, in ms. Default 5000. */
  timeoutMs?: number;
  /** Allowed clock skew for `exp` / `nbf`, in seconds. Default 30. */
  clockToleranceSec?: number;
  /**
   * How long a positive result (an introspection answer, or a verified JWT: signature checks
   * cost ~0.15 ms) is reused for the same token, in ms; never past the token's `exp`. A revoked
   * opaque token is noticed at most this late. Default 30000; 0 disables.
   */
  cacheTtlMs?: number;
  /** Most results kept (least recently used dropped first). Default 10000. */
  cacheMaxEntries?: number;
}

/** Validates access tokens for one resource (see the module documentation). */
export interface OAuthVerifier {
  /**
   * Validates a bearer token (the credential of RFC 6750 §2.1, without `Bearer `).
   *
   * @throws GatewayError `SWB_ERR_AUTH_INVALID_TOKEN` (401) when the token is not valid for this
   *   resource, `SWB_ERR_AUTH_INSUFFICIENT_SCOPE` (403) when a required scope is missing,
   *   `SWB_ERR_AUTH_UNAVAILABLE` (503) when the authorization server cannot be used.
   */
  verify(token: string): Promise<VerifiedAccessToken>;
  /**
   * The authorization server's metadata (RFC 8414 §3, falling back to OpenID Connect
   * Discovery), fetched once and cached; after a failure, retried no sooner than a backoff delay
   * (1 s doubling to 60 s).
   *
   * @throws GatewayError `SWB_ERR_AUTH_UNAVAILABLE` when no candidate document could be used.
   */
  discover(): Promise<AuthorizationServerMetadata>;
}

/**
 * Creates the resource server's token verifier. Nothing is fetched until the first `verify` or
 * `discover` call.
 *
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` when the options are unusable (issuer not an
 *   absolute URL or with query/fragment, empty audience, introspection without client credentials,
 *   malformed endpoint override).
 */
export function createOAuthVerifier(options: OAuthVerifierOptions): OAuthVerifier {
  return new OAuthResourceServer(options);
}

// ---------------------------------------------------------------------------------------------
/** A cached positive result and the time (ms since the epoch) it stops being used. */
interface CacheEntry {
  value: VerifiedAccessToken;
  until: number;
}

/** `SWB_ERR_CONFIG_INVALID`: the `auth.oauth` options are unusable. */
function configError(message: string): GatewayError {
  return new GatewayError('SWB_ERR_CONFIG_INVALID', `auth.oauth: ${message}`);
}

/** `value` as an http(s) URL, or a configuration error naming the option `what`. */
function checkUrl(value: string, what: string): URL {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw configError(`${what} must be an absolute URL, got ${JSON.stringify(value)}`);
  }
  if (url.protocol !== 'https:' && url.protocol !== 'http:') {
    throw configError(`${what} must be an http(s) URL, got ${JSON.stringify(value)}`);
  }
  return url;
}

/** Whether the URL names this machine (plain http is then fine). */
function isLoopback(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '[::1]' || url.hostname.startsWith('127.');
}

/** The cache key of a token: its SHA-256, so the token itself is never kept. */
function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

class OAuthResourceServer implements OAuthVerifier {
  readonly #validation: TokenValidation;
  readonly #requiredScopes: readonly string[];
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #cacheTtlMs: number;
  readonly #cacheMax: number;

  readonly #discovery: AuthorizationServerDiscovery;
  readonly #jwt: JwtAccessTokenVerifier;
  readonly #introspection: TokenIntrospector;

  /** Positive results by SHA-256 of the token (never the token itself); Map order = recency. */
  readonly #cache = new Map<string, CacheEntry>();
  /** Introspections under way, so that a burst with one token asks the AS once. */
  readonly #inflight = new Map<string, Promise<VerifiedAccessToken>>();

  constructor(o: OAuthVerifierOptions) {
    const issuerUrl = checkUrl(o.issuer, 'issuer');
    if (issuerUrl.search || issuerUrl.hash) throw configError('issuer must not have a query or fragment (RFC 8414 §2)');
    const audience = (typeof o.audience === 'string' ? [o.audience] : [...o.audience]).filter((a) => a !== '');
    if (audience.length === 0) throw configError('audience must name at least one value');
    this.#validation = o.validation;
    let basicAuth: string | undefined;
    if (o.validation !== 'jwt') {
      if (!o.clientId || !o.clientSecret) {
        throw configError(
          `validation "${o.validation}" needs clientId and clientSecret for introspection (RFC 7662 §2.1)`,
        );
      }
      // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
      const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
      basicAuth = `Basic ${Buffer.from(`${enc(o.clientId)}:${enc(o.clientSecret)}`).toString('base64')}`;
    }
    if (o.jwksUri !== undefined) checkUrl(o.jwksUri, 'jwksUri');
    if (o.introspectionEndpoint !== undefined) checkUrl(o.introspectionEndpoint, 'introspectionEndpoint');
    this.#requiredScopes = [...(o.requiredScopes ?? [])];
    this.#logger = o.logger;
    this.#clock = o.clock ?? (() => Date.now());
    const timeoutMs = o.timeoutMs ?? 5000;
    const toleranceSec = o.clockToleranceSec ?? 30;
    this.#cacheTtlMs = Math.max(0, o.cacheTtlMs ?? 30_000);
    this.#cacheMax = Math.max(1, o.cacheMaxEntries ?? 10_000);
    if (issuerUrl.protocol === 'http:' && !isLoopback(issuerUrl)) {
      this.#logger.warn({ issuer: o.issuer }, 'OAuth issuer is not https: tokens and keys travel unprotected');
    }

    const http = createAuthServerHttp(timeoutMs, o.dispatcher);
    const clock = this.#clock;
    const discovery = new AuthorizationServerDiscovery({
      issuer: o.issuer,
      jwksUri: o.jwksUri,
      introspectionEndpoint: o.introspectionEndpoint,
      logger: o.logger,
      clock,
      http,
      timeoutMs,
    });
    this.#discovery = discovery;
    this.#jwt = new JwtAccessTokenVerifier({
      issuer: o.issuer,
      audience,
      toleranceSec,
      clock,
      logger: o.logger,
      keys: () => discovery.keys(),
    });
    this.#introspection = new TokenIntrospector({
      issuer: o.issuer,
      audience,
      basicAuth,
      toleranceSec,
      clock,
      logger: o.logger,
      http,
      endpoint: () => discovery.endpoint('introspection_endpoint'),
    });
  }

  async verify(token: string): Promise<VerifiedAccessToken> {
    let verified: VerifiedAccessToken;
    let key: string | undefined;
    try {
      if (typeof token !== 'string' || token.length === 0) throw invalidToken('empty token');
      if (token.length > MAX_ACCESS_TOKEN_LENGTH) throw invalidToken('token too long');
      key = tokenHash(token);
      verified = this.#cached(key) ?? (await this.#validate(token, key));
    } catch (e) {
      if (e instanceof GatewayError && e.code === 'SWB_ERR_AUTH_INVALID_TOKEN') {
        // A hash prefix lets operators correlate rejections without the credential in the logs.
        this.#logger.debug({ tokenHash: key?.slice(0, 12), reason: e.data?.reason }, 'access token rejected');
      }
      throw e;
    }
    const missing = this.#requiredScopes.filter((s) => !verified.scopes.includes(s));
    if (missing.length > 0) {
      throw new GatewayError(
        'SWB_ERR_AUTH_INSUFFICIENT_SCOPE',
        `insufficient scope: requires ${this.#requiredScopes.join(' ')}`,
        {
          data: { scope: [...this.#requiredScopes], reason: `missing scope ${missing.join(' ')}` },
        },
      );
    }
    return verified;
  }

  async #validate(token: string, key: string): Promise<VerifiedAccessToken> {
    switch (this.#validation) {
      case 'jwt':
        try {
          return this.#remember(key, await this.#jwt.verify(token));
        } catch (e) {
          if (e instanceof NotLocallyVerifiable) throw invalidToken(e.reason, e.cause);
          throw e;
        }
      case 'introspection':
        return this.#introspect(token, key);
      case 'both':
        try {
          return this.#remember(key, await this.#jwt.verify(token));
        } catch (e) {
          // Only tokens we cannot judge locally go to the AS. A verdict reached with the AS's
          // own key (expired, wrong audience/issuer, bad signature) is final: introspection
          // could not make it valid, and asking would let anyone turn junk into AS load.
          if (e instanceof NotLocallyVerifiable) return this.#introspect(token, key);
          throw e;
        }
    }
  }

  // -- result cache ------------------------------------------------------------------------------

  /** A cached positive result for this token hash, refreshed as most recently used. */
  #cached(key: string): VerifiedAccessToken | undefined {
    const hit = this.#cache.get(key);
    if (!hit) return undefined;
    this.#cache.delete(key);
    if (hit.until <= this.#clock()) return undefined;
    this.#cache.set(key, hit);
    return hit.value;
  }

  #remember(key: string, v: VerifiedAccessToken): VerifiedAccessToken {
    if (this.#cacheTtlMs === 0) return v;
    const now = this.#clock();
    const until = Math.min(now + this.#cacheTtlMs, v.expiresAt ?? Number.POSITIVE_INFINITY);
    if (until <= now) return v;
    // One object is handed to every request bearing this token: make it read-only.
    Object.freeze(v.audience);
    Object.freeze(v.scopes);
    Object.freeze(v.claims);
    Object.freeze(v);
    this.#cache.set(key, { value: v, until });
    while (this.#cache.size > this.#cacheMax) {
      const oldest = this.#cache.keys().next();
      if (oldest.done) break;
      this.#cache.delete(oldest.value);
    }
    return v;
  }

  discover(): Promise<AuthorizationServerMetadata> {
    return this.#discovery.discover();
  }

  // -- introspection (RFC 7662), one request per token at a time ------------------------------

  #introspect(token: string, key: string): Promise<VerifiedAccessToken> {
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const p = this.#introspection
      .introspect(token)
      .then((v) => this.#remember(key, v))
      .finally(() => {
        this.#inflight.delete(key);
      });
    this.#inflight.set(key, p);
    return p;
  }
}
