/**
 * `auth.type: token-exchange`: OAuth 2.0 Token Exchange (RFC 8693) of the caller's inbound access
 * token for a token meant for one upstream.
 *
 * The anonymous principal (the start-up connection that loads the catalog, health probes) sends
 * no credential, as with `forward`.
 *
 * Per call, the caller's OAuth access token (`Principal.bearer` of an `oauth` principal) is the
 * RFC 8693 §2.1 `subject_token`. It is sent to the token endpoint — the configured `tokenEndpoint`,
 * else the `token_endpoint` of the inbound authorization server's metadata (RFC 8414 §3 / OpenID
 * Connect Discovery) — with the gateway authenticating as its own client (`client_secret_basic`,
 * RFC 6749 §2.3.1). The issued token (§2.2.1) goes upstream as `Authorization: Bearer`; the
 * inbound token itself never does.
 *
 * With `actorToken: client-assertion` the request also carries an `actor_token` (§2.1): a JWT the
 * gateway signs with its identity signing key (`auth/identity.ts`, published at
 * `/.well-known/jwks.json`) — `iss` = the gateway's public URL, `sub` = the client id, `aud` = the
 * token endpoint, 60 s lifetime — so the issued token can name the gateway as the acting party
 * (`act`, §4.1). One signed actor token serves every exchange until 10 s before it expires.
 *
 * When the issued token is a JWT, its `sub` is reported as the upstream subject (usage log,
 * traces); it is read, not verified, and never used to decide anything.
 *
 * Issued tokens are cached per (SHA-256 of the subject token, audience, scope) until shortly
 * before `expires_in`, in a bounded least-recently-used map; concurrent calls for the same key
 * share one exchange. Nothing here logs or reports a token: errors carry the server, a reason
 * class and the RFC 6749 §5.2 `error` code only.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import { decodeJwt } from 'jose';
import { request, type Dispatcher } from 'undici';
import type { IdentityPropagator } from '../auth/identity.js';
import type { AuthorizationServerMetadata } from '../auth/oauth-common.js';
import type { Principal } from '../auth/principal.js';
import type { TokenExchangeAuth } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  MAX_TOKEN_RESPONSE_BYTES,
  OAUTH_ERROR_RE,
  TOKEN_CHARS_RE,
  clientSecretBasic,
  parseJsonObject,
  readCapped,
} from './token-response.js';
import type { UpstreamIdentitySink } from './user-credentials.js';

/** RFC 8693 §2.1 `grant_type`. */
export const TOKEN_EXCHANGE_GRANT_TYPE = 'urn:ietf:params:oauth:grant-type:token-exchange';
/** RFC 8693 §3 token type of an OAuth 2.0 access token: the default `subject_token_type`. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';
/** RFC 8693 §3 token type of a JWT (RFC 7519): the `actor_token_type` of a gateway-signed actor token. */
export const JWT_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:jwt';

/** Lifetime of a signed actor token, seconds. */
const ACTOR_TOKEN_LIFETIME_SECONDS = 60;
/** A signed actor token is replaced this long before it expires, ms. */
const ACTOR_TOKEN_MARGIN_MS = 10_000;
/** Longest upstream subject recorded; a longer `sub` is not recorded. */
const MAX_SUBJECT_LENGTH = 255;

const NO_HEADERS: Readonly<Record<string, string>> = Object.freeze({});

/** Why an exchange failed, as reported in `data.reason` of `SWB_ERR_UPSTREAM_TOKEN_EXCHANGE`. */
export type TokenExchangeFailure = 'refused' | 'unreachable' | 'discovery' | 'invalid_response';

/**
 * The form body of an RFC 8693 §2.1 token exchange request
 * (`application/x-www-form-urlencoded`). Optional parameters are sent only when configured;
 * `subject_token_type` defaults to {@link ACCESS_TOKEN_TYPE}. `actor_token` and `actor_token_type`
 * ({@link JWT_TOKEN_TYPE}) are sent when an actor token is given. Client authentication is not in
 * the body (it is `client_secret_basic`).
 */
export function tokenExchangeForm(auth: TokenExchangeAuth, subjectToken: string, actorToken?: string): URLSearchParams {
  const form = new URLSearchParams({
    grant_type: TOKEN_EXCHANGE_GRANT_TYPE,
    subject_token: subjectToken,
    subject_token_type: auth.subjectTokenType ?? ACCESS_TOKEN_TYPE,
    audience: auth.audience,
  });
  if (auth.resource !== undefined) form.set('resource', auth.resource);
  if (auth.scope !== undefined) form.set('scope', auth.scope);
  if (auth.requestedTokenType !== undefined) form.set('requested_token_type', auth.requestedTokenType);
  if (actorToken !== undefined) {
    form.set('actor_token', actorToken);
    form.set('actor_token_type', JWT_TOKEN_TYPE);
  }
  return form;
}

/** An issued token and when it stops being used (epoch ms). */
export interface CachedToken {
  readonly headers: Readonly<Record<string, string>>;
  readonly refreshAt: number;
  /** The issued token's `sub`, when it is a JWT that has one (recorded only, see {@link issuedSubject}). */
  readonly upstreamSubject?: string | undefined;
}

/**
 * The `sub` claim of an issued token when it is a JWT (RFC 7519 §4.1.2), else undefined. The
 * payload is decoded without verifying the signature: the upstream verifies the token, and the
 * subject is only recorded (usage log, traces), never used to decide anything. A `sub` longer
 * than 255 characters or holding control characters is not recorded.
 */
export function issuedSubject(token: string): string | undefined {
  let sub: unknown;
  try {
    sub = decodeJwt(token).sub;
  } catch {
    return undefined;
  }
  if (typeof sub !== 'string' || sub === '' || sub.length > MAX_SUBJECT_LENGTH) return undefined;
  return /[\x00-\x1f\x7f]/.test(sub) ? undefined : sub;
}

/** Options for {@link ExchangedTokenCache}. */
export interface ExchangedTokenCacheOptions {
  /** Most tokens kept; the least recently used is dropped first. Default 10 000. */
  maxEntries?: number;
  /** Epoch milliseconds. Default `Date.now`. */
  clock?: () => number;
}

/**
 * Exchanged tokens by key, bounded (LRU), with one exchange in flight per key. Keys are built by
 * {@link exchangeCacheKey}: they never hold a raw subject token.
 */
export class ExchangedTokenCache {
  readonly #max: number;
  readonly #clock: () => number;
  readonly #entries = new Map<string, CachedToken>();
  readonly #inflight = new Map<string, Promise<CachedToken>>();

  constructor(options: ExchangedTokenCacheOptions = {}) {
    this.#max = options.maxEntries ?? 10_000;
    if (!Number.isInteger(this.#max) || this.#max < 1) throw new RangeError('maxEntries must be a positive integer');
    this.#clock = options.clock ?? Date.now;
  }

  /** Number of tokens held (fresh or not yet evicted). */
  get size(): number {
    return this.#entries.size;
  }

  /**
   * The fresh token under `key`, else the result of `exchange` — started once however many
   * callers ask for the same key meanwhile, and cached when it succeeds. A failure is not cached.
   */
  get(key: string, exchange: () => Promise<CachedToken>): CachedToken | Promise<CachedToken> {
    const hit = this.#entries.get(key);
    if (hit !== undefined) {
      if (this.#clock() < hit.refreshAt) {
        // Most recently used goes last.
        this.#entries.delete(key);
        this.#entries.set(key, hit);
        return hit;
      }
      this.#entries.delete(key);
    }
    const pending = this.#inflight.get(key);
    if (pending !== undefined) return pending;
    const flight = exchange()
      .then((token) => {
        if (this.#inflight.get(key) === flight) this.#set(key, token);
        return token;
      })
      .finally(() => {
        if (this.#inflight.get(key) === flight) this.#inflight.delete(key);
      });
    this.#inflight.set(key, flight);
    return flight;
  }

  /** Drops the token under `key` and forgets its exchange in flight (its result is not cached). */
  delete(key: string): void {
    this.#entries.delete(key);
    this.#inflight.delete(key);
  }

  /** Drops every token and forgets exchanges in flight (their results are not cached). */
  clear(): void {
    this.#entries.clear();
    this.#inflight.clear();
  }

  #set(key: string, token: CachedToken): void {
    this.#entries.delete(key);
    this.#entries.set(key, token);
    while (this.#entries.size > this.#max) {
      const oldest = this.#entries.keys().next().value;
      if (oldest === undefined) break;
      this.#entries.delete(oldest);
    }
  }
}

/** The cache key of a subject token for an audience and scope: `sha256(token)` hex, never the token. */
export function exchangeCacheKey(subjectToken: string, audience: string, scope: string | undefined): string {
  const hash = createHash('sha256').update(subjectToken, 'utf8').digest('hex');
  return `${hash}\n${audience}\n${scope ?? ''}`;
}

/** Options for {@link createTokenExchangeCredentials}. */
export interface TokenExchangeOptions {
  /** The server's name, for logs and error messages. */
  serverName: string;
  logger: Logger;
  /**
   * The inbound authorization server's metadata (RFC 8414), for its `token_endpoint` when
   * `tokenEndpoint` is not configured. Undefined when inbound OAuth is off.
   */
  authorizationServer?: (() => Promise<AuthorizationServerMetadata>) | undefined;
  /**
   * undici dispatcher for requests to a configured `tokenEndpoint` (a runtime server's is held to
   * the destination policy). The inbound issuer's discovered endpoint is the operator's own
   * configuration and always uses undici's global dispatcher. Default: the global dispatcher.
   */
  dispatcher?: Dispatcher | undefined;
  /** Epoch milliseconds. Default `Date.now`. */
  clock?: (() => number) | undefined;
  /** A token is exchanged again this long before it expires (capped at half its lifetime). Default 30 000 ms. */
  expirySkewMs?: number | undefined;
  /** Lifetime assumed when the response has no `expires_in` (optional in RFC 8693 §2.2.1). Default 300 s. */
  defaultLifetimeSeconds?: number | undefined;
  /** Time allowed for the token endpoint's response headers, and for its body. Default 10 000 ms. */
  tokenTimeoutMs?: number | undefined;
  /** Most exchanged tokens cached. Default 10 000. */
  maxCachedTokens?: number | undefined;
  /**
   * Signs the actor token of `actorToken: client-assertion` (the gateway's identity propagator).
   * Required for that setting.
   */
  identity?: Pick<IdentityPropagator, 'signJwt'> | undefined;
}

/** The credential of a `token-exchange` upstream (the shape of `UpstreamCredentials`). */
export interface TokenExchangeCredentials {
  readonly type: 'token-exchange';
  /**
   * `Authorization: Bearer <exchanged token>` for `principal`; no header for the anonymous
   * principal (the start-up connection and health probes, which have no caller).
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_NO_SUBJECT_TOKEN` (403) when the caller has no OAuth
   *   access token; `SWB_ERR_UPSTREAM_TOKEN_EXCHANGE` (502) when the exchange fails.
   */
  headersFor(
    principal: Principal,
    sink?: UpstreamIdentitySink,
  ): Promise<Readonly<Record<string, string>>> | Readonly<Record<string, string>>;
  /** Drops `principal`'s exchanged token, or every cached token when no principal is given. */
  invalidate(principal?: Principal): void;
}

/**
 * Builds the RFC 8693 credential of one upstream. Nothing is fetched or signed until the first call.
 * `headersFor` reports the issued token's subject to `sink` ({@link issuedSubject}).
 *
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` when the client id or secret holds control
 *   characters, or `actorToken` is `client-assertion` without `options.identity`.
 */
export function createTokenExchangeCredentials(
  auth: TokenExchangeAuth,
  options: TokenExchangeOptions,
): TokenExchangeCredentials {
  const server = options.serverName;
  const logger = options.logger;
  const clock = options.clock ?? Date.now;
  const skewMs = options.expirySkewMs ?? 30_000;
  const defaultLifetimeMs = (options.defaultLifetimeSeconds ?? 300) * 1000;
  const timeoutMs = options.tokenTimeoutMs ?? 10_000;
  if (/[\x00-\x1f\x7f]/.test(auth.clientId + auth.clientSecret)) {
    throw new GatewayError(
      'SWB_ERR_CONFIG_INVALID',
      `servers.${server}.auth: the client id or secret contains control characters`,
    );
  }
  const clientAuthorization = clientSecretBasic(auth.clientId, auth.clientSecret);
  const signer = auth.actorToken === 'client-assertion' ? options.identity : undefined;
  if (auth.actorToken === 'client-assertion' && signer === undefined) {
    throw new GatewayError(
      'SWB_ERR_CONFIG_INVALID',
      `servers.${server}.auth: actorToken client-assertion needs the gateway's identity signing key, which is not available here`,
    );
  }
  const cache = new ExchangedTokenCache({
    clock,
    ...(options.maxCachedTokens === undefined ? {} : { maxEntries: options.maxCachedTokens }),
  });

  const fail = (reason: TokenExchangeFailure, detail: string, extra?: { error?: string }, cause?: unknown) => {
    logger.warn({ server, reason, detail, ...extra }, 'upstream token exchange failed');
    return new GatewayError(
      'SWB_ERR_UPSTREAM_TOKEN_EXCHANGE',
      `upstream "${server}": token exchange failed (${reason}): ${detail}`,
      { cause, data: { server, reason, ...extra } },
    );
  };

  const endpoint = async (): Promise<string> => {
    if (auth.tokenEndpoint !== undefined) return auth.tokenEndpoint;
    if (options.authorizationServer === undefined) {
      throw fail('discovery', 'no tokenEndpoint is configured and inbound OAuth (auth.oauth.issuer) is off');
    }
    let metadata: AuthorizationServerMetadata;
    try {
      metadata = await options.authorizationServer();
    } catch (err) {
      throw fail('discovery', 'the authorization server metadata could not be fetched', undefined, err);
    }
    const url = metadata.token_endpoint;
    if (typeof url !== 'string' || !/^https?:\/\//i.test(url) || !URL.canParse(url)) {
      throw fail('discovery', 'the authorization server metadata has no http(s) token_endpoint');
    }
    return url;
  };

  // The signed actor token, shared by every exchange until shortly before it expires.
  let actor: { audience: string; token: Promise<string>; refreshAt: number } | undefined;
  const actorToken = (audience: string): Promise<string> | undefined => {
    if (signer === undefined) return undefined;
    if (actor !== undefined && actor.audience === audience && clock() < actor.refreshAt) return actor.token;
    const signed = signer.signJwt({ subject: auth.clientId, audience, lifetimeSeconds: ACTOR_TOKEN_LIFETIME_SECONDS });
    const entry = {
      audience,
      token: signed.then((s) => s.jwt),
      // Until it is signed, concurrent exchanges share it; then until 10 s before `exp`.
      refreshAt: Number.POSITIVE_INFINITY,
    };
    signed.then(
      (s) => {
        entry.refreshAt = s.expiresAt - ACTOR_TOKEN_MARGIN_MS;
      },
      () => {
        if (actor === entry) actor = undefined;
      },
    );
    actor = entry;
    return entry.token;
  };

  const exchange = async (subjectToken: string): Promise<CachedToken> => {
    const url = await endpoint();
    const actorJwt = await actorToken(url);
    const startedAt = clock();
    let res: Dispatcher.ResponseData;
    try {
      res = await request(url, {
        method: 'POST',
        headers: {
          authorization: clientAuthorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: tokenExchangeForm(auth, subjectToken, actorJwt).toString(),
        headersTimeout: timeoutMs,
        bodyTimeout: timeoutMs,
        ...(options.dispatcher === undefined || auth.tokenEndpoint === undefined
          ? {}
          : { dispatcher: options.dispatcher }),
      });
    } catch (err) {
      if (err instanceof GatewayError) throw err; // the destination policy's refusal
      const code = (err as { code?: unknown }).code;
      throw fail('unreachable', `token endpoint unreachable${typeof code === 'string' ? ` (${code})` : ''}`, {}, err);
    }
    let text: string | undefined;
    try {
      text = await readCapped(res.body, MAX_TOKEN_RESPONSE_BYTES);
    } catch (err) {
      throw fail('unreachable', 'the token response could not be read', {}, err);
    }
    const json = parseJsonObject(text);
    if (res.statusCode !== 200) {
      // RFC 6749 §5.2 (RFC 8693 §2.2.2): only the registered `error` code is repeated, never
      // `error_description`, which a server may fill with anything.
      const error = json?.error;
      const known = typeof error === 'string' && OAUTH_ERROR_RE.test(error) ? { error } : {};
      const reason = res.statusCode >= 400 && res.statusCode < 500 ? 'refused' : 'invalid_response';
      throw fail(reason, `the token endpoint answered HTTP ${res.statusCode}`, known);
    }
    if (json === undefined) throw fail('invalid_response', 'the token response is not a JSON object');
    const token = json.access_token;
    if (typeof token !== 'string' || !TOKEN_CHARS_RE.test(token)) {
      throw fail('invalid_response', 'the token response has no usable access_token');
    }
    const tokenType = json.token_type;
    // RFC 8693 §2.2.1: `token_type` is required; N_A means the token is not an access token.
    if (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer') {
      throw fail('invalid_response', 'the issued token_type is not Bearer');
    }
    const expiresIn = Number(json.expires_in);
    const lifetimeMs =
      json.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0
        ? expiresIn * 1000
        : defaultLifetimeMs;
    const skew = Math.min(skewMs, lifetimeMs / 2);
    logger.debug({ server, expiresInSeconds: lifetimeMs / 1000 }, 'upstream token exchanged');
    // Measured from when the request was sent, so a slow endpoint cannot make us overshoot.
    return {
      headers: Object.freeze({ authorization: `Bearer ${token}` }),
      refreshAt: startedAt + lifetimeMs - skew,
      upstreamSubject: issuedSubject(token),
    };
  };

  return {
    type: 'token-exchange',
    headersFor(principal, sink) {
      // The start-up connection and health probes have no caller: they go without a credential,
      // like `forward`, so an upstream that lists its tools to anyone still gets its catalog loaded.
      if (principal.kind === 'anonymous') return NO_HEADERS;
      const subjectToken = principal.kind === 'oauth' ? principal.bearer : undefined;
      if (subjectToken === undefined || subjectToken === '') {
        throw new GatewayError(
          'SWB_ERR_UPSTREAM_NO_SUBJECT_TOKEN',
          `upstream "${server}" is reached with the caller's exchanged OAuth access token; authenticate with an OAuth access token`,
          { data: { server } },
        );
      }
      const got = cache.get(exchangeCacheKey(subjectToken, auth.audience, auth.scope), () => exchange(subjectToken));
      if (got instanceof Promise) {
        return got.then((t) => {
          if (sink !== undefined && t.upstreamSubject !== undefined) sink.upstreamSubject = t.upstreamSubject;
          return t.headers;
        });
      }
      if (sink !== undefined && got.upstreamSubject !== undefined) sink.upstreamSubject = got.upstreamSubject;
      return got.headers;
    },
    invalidate(principal) {
      if (principal === undefined) return cache.clear();
      const subjectToken = principal.kind === 'oauth' ? principal.bearer : undefined;
      if (subjectToken) cache.delete(exchangeCacheKey(subjectToken, auth.audience, auth.scope));
    },
  };
}
