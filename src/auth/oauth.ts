/**
 * OAuth 2.1 resource server: validates the bearer access tokens MCP clients present (issue
 * "Identity" §C, seed 003, MCP authorization spec 2025-06-18 onward).
 *
 * - Authorization server metadata discovery: RFC 8414 §3 (with §3.1 path insertion), then
 *   OpenID Connect Discovery 1.0 §4; the document's `issuer` must equal the configured issuer
 *   (RFC 8414 §3.3). Lazy, cached, retried with exponential backoff after a failure.
 * - `jwt`: local verification of JWT access tokens (RFC 9068 / RFC 7519) against the issuer's
 *   JWKS (`jose` remote key set: cached, refetched on an unknown `kid`, so key rotation works).
 *   Asymmetric algorithms only; `iss`, `aud` and `exp` required.
 * - `introspection`: RFC 7662 token introspection with `client_secret_basic` authentication;
 *   positive answers cached briefly, keyed by a SHA-256 of the token.
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
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  decodeProtectedHeader,
  jwksCache,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type JSONWebKeySet,
  type JWKSCacheInput,
  type CryptoKey as JoseCryptoKey,
  type ProtectedHeaderParameters,
} from 'jose';
import { request, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { createBackoff, type Backoff } from '../upstream/backoff.js';

/** How access tokens are validated: locally as JWTs, by RFC 7662 introspection, or JWT first. */
export type TokenValidation = 'jwt' | 'introspection' | 'both';

/**
 * JWS algorithms accepted for JWT access tokens: asymmetric only (RFC 8725 §3.1, §3.2). `none`
 * and the HMAC family are never accepted: a resource server holding a shared secret could mint
 * tokens itself, and "the key is the JWKS's public key" is the classic HS256 confusion attack.
 */
export const ALLOWED_JWS_ALGORITHMS: readonly string[] = Object.freeze([
  'RS256',
  'RS384',
  'RS512',
  'PS256',
  'PS384',
  'PS512',
  'ES256',
  'ES384',
  'ES512',
  'EdDSA',
  'Ed25519',
]);

/** Longest bearer token considered (characters); longer ones are rejected unparsed. */
export const MAX_ACCESS_TOKEN_LENGTH = 16_384;

/** Authorization server metadata (RFC 8414 §2; OpenID Connect Discovery 1.0 §3). */
export interface AuthorizationServerMetadata {
  /** The issuer identifier; equal to the configured issuer (RFC 8414 §3.3). */
  issuer: string;
  jwks_uri?: string;
  introspection_endpoint?: string;
  token_endpoint?: string;
  authorization_endpoint?: string;
  registration_endpoint?: string;
  scopes_supported?: string[];
  introspection_endpoint_auth_methods_supported?: string[];
  /** Any other metadata field, unchanged. */
  [field: string]: unknown;
}

/** A validated access token. */
export interface VerifiedAccessToken {
  /** `sub`; for an introspected token without `sub`, its `client_id` (RFC 7662 §2.2). */
  subject: string;
  /** The issuer (equal to the configured issuer). */
  issuer: string;
  /** The token's audiences (`aud`, normalised to a list); at least one is ours. */
  audience: string[];
  /** Granted scopes (`scope`, space-separated, or `scp` as a list). */
  scopes: string[];
  /** `client_id` (RFC 9068 §2.2 / RFC 7662 §2.2), or `azp`. */
  clientId?: string;
  /** Expiry, milliseconds since the epoch, when the token says. */
  expiresAt?: number;
  /** Every claim of the JWT, or every member of the introspection response except `active`. */
  claims: Record<string, unknown>;
  /** Which validation accepted it. */
  via: 'jwt' | 'introspection';
}

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
 * The metadata URLs tried for an issuer, in order (RFC 8414 §3.1 and §5, OpenID Connect
 * Discovery 1.0 §4.1; the order the MCP authorization spec prescribes for clients):
 * - issuer without path: `/.well-known/oauth-authorization-server`, then
 *   `/.well-known/openid-configuration`;
 * - issuer with path `/p`: `/.well-known/oauth-authorization-server/p`,
 *   `/.well-known/openid-configuration/p`, then `/p/.well-known/openid-configuration`.
 *
 * @throws TypeError when `issuer` is not an absolute URL
 */
export function discoveryUrls(issuer: string): string[] {
  const url = new URL(issuer);
  const path = url.pathname.replace(/\/+$/, '');
  const origin = url.origin;
  if (!path) return [`${origin}/.well-known/oauth-authorization-server`, `${origin}/.well-known/openid-configuration`];
  return [
    `${origin}/.well-known/oauth-authorization-server${path}`,
    `${origin}/.well-known/openid-configuration${path}`,
    `${origin}${path}/.well-known/openid-configuration`,
  ];
}

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** True when `token` has the shape of a JWS compact serialisation (three base64url segments). */
export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
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

const METADATA_BODY_LIMIT = 512 * 1024;
const INTROSPECTION_BODY_LIMIT = 256 * 1024;
const JWKS_BODY_LIMIT = 512 * 1024;
/** The last good key set stays usable this long when the JWKS endpoint cannot be reached. */
const JWKS_STALE_IF_ERROR_MS = 24 * 3_600_000;
const ACCEPTED_TYP = new Set(['jwt', 'at+jwt', 'application/at+jwt']);

/** A JWT this resource server cannot verify locally: `both` mode asks the AS instead. */
class NotLocallyVerifiable extends Error {
  readonly reason: string;
  constructor(reason: string, cause?: unknown) {
    super(reason, { cause });
    this.reason = reason;
  }
}

interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

interface CacheEntry {
  value: VerifiedAccessToken;
  until: number;
}

function configError(message: string): GatewayError {
  return new GatewayError('SWB_ERR_CONFIG_INVALID', `auth.oauth: ${message}`);
}

function invalidToken(reason: string, cause?: unknown): GatewayError {
  return new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid access token', {
    data: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

function unavailable(cause?: unknown): GatewayError {
  return new GatewayError('SWB_ERR_AUTH_UNAVAILABLE', 'authorization server unavailable', {
    ...(cause === undefined ? {} : { cause }),
  });
}

function errorMessage(e: unknown): string {
  if (e instanceof GatewayError && e.cause !== undefined) return `${e.message}: ${errorMessage(e.cause)}`;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

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

function isLoopback(url: URL): boolean {
  return url.hostname === 'localhost' || url.hostname === '[::1]' || url.hostname.startsWith('127.');
}

function asStringList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  return undefined;
}

function scopesOf(claims: Record<string, unknown>): string[] {
  const out = new Set<string>();
  const { scope, scp } = claims;
  const add = (values: readonly unknown[]): void => {
    for (const v of values) if (typeof v === 'string' && v) out.add(v);
  };
  if (typeof scope === 'string') add(scope.split(' '));
  if (typeof scp === 'string') add(scp.split(' '));
  else if (Array.isArray(scp)) add(scp);
  return [...out];
}

function tokenHash(token: string): string {
  return createHash('sha256').update(token).digest('base64url');
}

async function readCapped(
  body: AsyncIterable<Buffer | Uint8Array> & { destroy(): unknown },
  limit: number,
): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > limit) {
      body.destroy();
      throw new Error(`response body larger than ${limit} bytes`);
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks).toString('utf8');
}

class OAuthResourceServer implements OAuthVerifier {
  readonly #issuer: string;
  readonly #audience: readonly string[];
  readonly #validation: TokenValidation;
  readonly #basicAuth: string | undefined;
  readonly #requiredScopes: readonly string[];
  readonly #jwksUriOverride: string | undefined;
  readonly #introspectionOverride: string | undefined;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #timeoutMs: number;
  readonly #toleranceSec: number;
  readonly #cacheTtlMs: number;
  readonly #cacheMax: number;

  #metadata: AuthorizationServerMetadata | undefined;
  #discovering: Promise<AuthorizationServerMetadata> | undefined;
  #discoveryError: GatewayError | undefined;
  #discoveryRetryAt = 0;
  readonly #discoveryBackoff: Backoff = createBackoff({ initialDelayMs: 1000, maxDelayMs: 60_000 });

  /** Metadata fields already reported missing (logged once, not per request). */
  readonly #reportedMissing = new Set<string>();
  /** Key resolver over the issuer's JWKS, created on first use. */
  #jwks: JWTVerifyGetKey | undefined;

  /** Positive results by SHA-256 of the token (never the token itself); Map order = recency. */
  readonly #cache = new Map<string, CacheEntry>();
  /** Introspections under way, so that a burst with one token asks the AS once. */
  readonly #inflight = new Map<string, Promise<VerifiedAccessToken>>();

  constructor(o: OAuthVerifierOptions) {
    const issuerUrl = checkUrl(o.issuer, 'issuer');
    if (issuerUrl.search || issuerUrl.hash) throw configError('issuer must not have a query or fragment (RFC 8414 §2)');
    this.#issuer = o.issuer;
    this.#audience = (typeof o.audience === 'string' ? [o.audience] : [...o.audience]).filter((a) => a !== '');
    if (this.#audience.length === 0) throw configError('audience must name at least one value');
    this.#validation = o.validation;
    if (o.validation !== 'jwt') {
      if (!o.clientId || !o.clientSecret) {
        throw configError(
          `validation "${o.validation}" needs clientId and clientSecret for introspection (RFC 7662 §2.1)`,
        );
      }
      // RFC 6749 §2.3.1: both parts are form-urlencoded before Basic encoding.
      const enc = (s: string): string => encodeURIComponent(s).replace(/%20/g, '+');
      this.#basicAuth = `Basic ${Buffer.from(`${enc(o.clientId)}:${enc(o.clientSecret)}`).toString('base64')}`;
    }
    if (o.jwksUri !== undefined) checkUrl(o.jwksUri, 'jwksUri');
    if (o.introspectionEndpoint !== undefined) checkUrl(o.introspectionEndpoint, 'introspectionEndpoint');
    this.#requiredScopes = [...(o.requiredScopes ?? [])];
    this.#jwksUriOverride = o.jwksUri;
    this.#introspectionOverride = o.introspectionEndpoint;
    this.#logger = o.logger;
    this.#clock = o.clock ?? (() => Date.now());
    this.#dispatcher = o.dispatcher;
    this.#timeoutMs = o.timeoutMs ?? 5000;
    this.#toleranceSec = o.clockToleranceSec ?? 30;
    this.#cacheTtlMs = Math.max(0, o.cacheTtlMs ?? 30_000);
    this.#cacheMax = Math.max(1, o.cacheMaxEntries ?? 10_000);
    if (issuerUrl.protocol === 'http:' && !isLoopback(issuerUrl)) {
      this.#logger.warn({ issuer: o.issuer }, 'OAuth issuer is not https: tokens and keys travel unprotected');
    }
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
          return this.#remember(key, await this.#verifyJwt(token));
        } catch (e) {
          if (e instanceof NotLocallyVerifiable) throw invalidToken(e.reason, e.cause);
          throw e;
        }
      case 'introspection':
        return this.#introspect(token, key);
      case 'both':
        try {
          return this.#remember(key, await this.#verifyJwt(token));
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

  // -- discovery (RFC 8414 §3, OpenID Connect Discovery 1.0 §4) -------------------------------

  discover(): Promise<AuthorizationServerMetadata> {
    if (this.#metadata) return Promise.resolve(this.#metadata);
    if (this.#discovering) return this.#discovering;
    if (this.#discoveryError && this.#clock() < this.#discoveryRetryAt) return Promise.reject(this.#discoveryError);
    const attempt = this.#fetchMetadata().then(
      (m) => {
        this.#metadata = m;
        this.#discoveryError = undefined;
        this.#discoveryBackoff.reset();
        this.#logger.info(
          { issuer: m.issuer, jwksUri: m.jwks_uri, introspectionEndpoint: m.introspection_endpoint },
          'discovered OAuth authorization server metadata',
        );
        return m;
      },
      (e: unknown) => {
        const delay = this.#discoveryBackoff.next();
        this.#discoveryRetryAt = this.#clock() + delay;
        this.#discoveryError = e instanceof GatewayError ? e : unavailable(e);
        this.#logger.warn(
          { issuer: this.#issuer, error: errorMessage(e), retryInMs: delay },
          'OAuth authorization server discovery failed',
        );
        throw this.#discoveryError;
      },
    );
    const shared = attempt.finally(() => {
      this.#discovering = undefined;
    });
    this.#discovering = shared;
    return shared;
  }

  async #fetchMetadata(): Promise<AuthorizationServerMetadata> {
    const problems: string[] = [];
    for (const url of discoveryUrls(this.#issuer)) {
      let res: HttpResult;
      try {
        res = await this.#http('GET', url, { accept: 'application/json' }, undefined, METADATA_BODY_LIMIT);
      } catch (e) {
        problems.push(`${url}: ${errorMessage(e)}`);
        continue;
      }
      if (res.status !== 200) {
        problems.push(`${url}: HTTP ${res.status}`);
        continue;
      }
      let doc: unknown;
      try {
        doc = JSON.parse(res.body);
      } catch {
        problems.push(`${url}: not JSON`);
        continue;
      }
      if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
        problems.push(`${url}: not a JSON object`);
        continue;
      }
      const m = doc as AuthorizationServerMetadata;
      // RFC 8414 §3.3: a document naming another issuer MUST NOT be used (mix-up defence).
      if (m.issuer !== this.#issuer) {
        problems.push(`${url}: issuer ${JSON.stringify(m.issuer)} is not ${JSON.stringify(this.#issuer)}`);
        continue;
      }
      for (const field of ['jwks_uri', 'introspection_endpoint'] as const) {
        if (m[field] !== undefined && typeof m[field] !== 'string') {
          problems.push(`${url}: ${field} is not a string`);
          delete m[field];
        }
      }
      return m;
    }
    throw unavailable(new Error(`no usable authorization server metadata: ${problems.join('; ')}`));
  }

  async #endpoint(field: 'jwks_uri' | 'introspection_endpoint'): Promise<string> {
    const override = field === 'jwks_uri' ? this.#jwksUriOverride : this.#introspectionOverride;
    if (override) return override;
    const m = await this.discover();
    const value = m[field];
    if (typeof value !== 'string' || !URL.canParse(value)) {
      const option = field === 'jwks_uri' ? 'jwksUri' : 'introspectionEndpoint';
      if (!this.#reportedMissing.has(field)) {
        this.#reportedMissing.add(field);
        this.#logger.error(
          { issuer: this.#issuer, field },
          `authorization server metadata has no ${field}; set auth.oauth.${option}`,
        );
      }
      throw unavailable(new Error(`metadata has no ${field}`));
    }
    return value;
  }

  // -- JWT access tokens (RFC 9068, RFC 7519, RFC 8725) --------------------------------------

  async #verifyJwt(token: string): Promise<VerifiedAccessToken> {
    if (!looksLikeJwt(token)) throw new NotLocallyVerifiable('not a JWT');
    let header: ProtectedHeaderParameters;
    try {
      header = decodeProtectedHeader(token);
    } catch (e) {
      throw new NotLocallyVerifiable('not a JWT', e);
    }
    if (typeof header.alg !== 'string') throw new NotLocallyVerifiable('not a JWT');
    // Checked before any key lookup: `none` and HS* are forgeries here whatever the JWKS holds.
    if (!ALLOWED_JWS_ALGORITHMS.includes(header.alg)) throw invalidToken(`algorithm ${header.alg} not allowed`);
    if (header.typ !== undefined && !ACCEPTED_TYP.has(String(header.typ).toLowerCase())) {
      throw invalidToken(`token type ${String(header.typ)} not accepted`);
    }

    const keys = await this.#keys();
    const opts: JWTVerifyOptions = {
      issuer: this.#issuer,
      audience: [...this.#audience],
      algorithms: [...ALLOWED_JWS_ALGORITHMS],
      clockTolerance: this.#toleranceSec,
      currentDate: new Date(this.#clock()),
      requiredClaims: ['exp'],
    };
    let payload: JWTPayload;
    try {
      payload = await this.#jwtVerify(token, keys, opts);
    } catch (e) {
      throw this.#joseError(e);
    }

    const claims = payload as Record<string, unknown>;
    // Sender-constrained tokens (DPoP RFC 9449, mTLS RFC 8705) need a proof we do not check;
    // accepting them as plain bearer tokens would defeat the binding.
    if (claims.cnf !== undefined) throw invalidToken('sender-constrained token (cnf) not supported');
    const subject = typeof payload.sub === 'string' && payload.sub ? payload.sub : undefined;
    if (!subject) throw invalidToken('token has no sub');
    const clientId =
      typeof claims.client_id === 'string' ? claims.client_id : typeof claims.azp === 'string' ? claims.azp : undefined;
    return {
      subject,
      issuer: this.#issuer,
      audience: asStringList(payload.aud) ?? [],
      scopes: scopesOf(claims),
      ...(clientId === undefined ? {} : { clientId }),
      ...(typeof payload.exp === 'number' ? { expiresAt: payload.exp * 1000 } : {}),
      claims,
      via: 'jwt',
    };
  }

  /** jwtVerify, also trying each candidate when a `kid`-less token matches several keys. */
  async #jwtVerify(token: string, keys: JWTVerifyGetKey, opts: JWTVerifyOptions): Promise<JWTPayload> {
    try {
      return (await jwtVerify(token, keys, opts)).payload;
    } catch (e) {
      if ((e as { code?: unknown }).code !== 'ERR_JWKS_MULTIPLE_MATCHING_KEYS') throw e;
      let last: unknown = e;
      for await (const key of e as AsyncIterable<JoseCryptoKey>) {
        try {
          return (await jwtVerify(token, key, opts)).payload;
        } catch (inner) {
          last = inner;
          if ((inner as { code?: unknown }).code !== 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED') break;
        }
      }
      throw last;
    }
  }

  #joseError(e: unknown): Error {
    if (e instanceof GatewayError) return e;
    const code = (e as { code?: unknown }).code;
    switch (code) {
      case 'ERR_JWT_EXPIRED':
        return invalidToken('token expired', e);
      case 'ERR_JWT_CLAIM_VALIDATION_FAILED': {
        const claim = (e as { claim?: unknown }).claim;
        if (claim === 'aud') return invalidToken('audience mismatch', e);
        if (claim === 'iss') return invalidToken('issuer mismatch', e);
        if (claim === 'nbf') return invalidToken('token not yet valid', e);
        if (claim === 'exp') return invalidToken('token has no exp', e);
        return invalidToken(`claim ${String(claim)} invalid`, e);
      }
      case 'ERR_JWS_SIGNATURE_VERIFICATION_FAILED':
        return invalidToken('bad signature', e);
      case 'ERR_JOSE_ALG_NOT_ALLOWED':
        return invalidToken('algorithm not allowed', e);
      case 'ERR_JWKS_NO_MATCHING_KEY':
        return new NotLocallyVerifiable('no matching key in the JWKS', e);
      case 'ERR_JWS_INVALID':
        return new NotLocallyVerifiable('malformed JWS', e);
      case 'ERR_JWT_INVALID':
        return invalidToken('malformed JWT claims', e);
      case 'ERR_JOSE_NOT_SUPPORTED':
        return invalidToken('unsupported token', e);
      case 'ERR_JWKS_TIMEOUT':
      case 'ERR_JWKS_INVALID':
      case 'ERR_JOSE_GENERIC':
        this.#logger.warn({ issuer: this.#issuer, error: errorMessage(e) }, 'JWKS could not be loaded');
        return unavailable(e);
      default:
        // Anything unexpected fails closed as an invalid token; the cause is kept for the logs.
        return invalidToken('token could not be verified', e);
    }
  }

  async #keys(): Promise<JWTVerifyGetKey> {
    if (this.#jwks) return this.#jwks;
    const uri = await this.#endpoint('jwks_uri');
    if (this.#jwks) return this.#jwks;
    // jose refetches the set when a `kid` is unknown (at most every 30 s) and when it is older
    // than 10 minutes; `cache` mirrors what it last fetched successfully.
    const cache: { uat?: number; jwks?: JSONWebKeySet } = {};
    const remote = createRemoteJWKSet(new URL(uri), {
      timeoutDuration: this.#timeoutMs,
      [jwksCache]: cache as JWKSCacheInput,
      [customFetch]: (url: string, init: { headers: Headers; signal: AbortSignal }) => this.#jwksFetch(url, init),
    });
    let stale: { uat: number; keys: JWTVerifyGetKey } | undefined;
    // Serve-stale-on-error: when the JWKS endpoint is down just as the set ages out, keep using
    // the last set that was fetched (up to 24 h old) rather than failing every request with 503.
    this.#jwks = async (header, token) => {
      try {
        return await remote(header, token);
      } catch (e) {
        const down = e instanceof GatewayError || (e as { code?: unknown }).code === 'ERR_JWKS_TIMEOUT';
        if (!down || !cache.jwks || cache.uat === undefined || Date.now() - cache.uat > JWKS_STALE_IF_ERROR_MS) throw e;
        if (stale?.uat !== cache.uat) stale = { uat: cache.uat, keys: createLocalJWKSet(cache.jwks) };
        this.#logger.warn(
          { issuer: this.#issuer, error: errorMessage(e) },
          'JWKS refresh failed; using the last key set',
        );
        return stale.keys(header, token);
      }
    };
    return this.#jwks;
  }

  async #jwksFetch(url: string, init: { headers: Headers; signal: AbortSignal }): Promise<Response> {
    const headers: Record<string, string> = {};
    init.headers.forEach((v, k) => {
      headers[k] = v;
    });
    let res: HttpResult;
    try {
      res = await this.#http('GET', url, headers, undefined, JWKS_BODY_LIMIT, init.signal);
    } catch (e) {
      throw unavailable(e);
    }
    if (res.status !== 200) throw unavailable(new Error(`JWKS endpoint answered HTTP ${res.status}`));
    try {
      JSON.parse(res.body);
    } catch {
      throw unavailable(new Error('JWKS is not JSON'));
    }
    return new Response(res.body, { status: 200, headers: { 'content-type': 'application/json' } });
  }

  // -- introspection (RFC 7662) --------------------------------------------------------------

  #introspect(token: string, key: string): Promise<VerifiedAccessToken> {
    const pending = this.#inflight.get(key);
    if (pending) return pending;
    const p = this.#introspectRemote(token)
      .then((v) => this.#remember(key, v))
      .finally(() => {
        this.#inflight.delete(key);
      });
    this.#inflight.set(key, p);
    return p;
  }

  async #introspectRemote(token: string): Promise<VerifiedAccessToken> {
    const endpoint = await this.#endpoint('introspection_endpoint');
    const form = new URLSearchParams({ token, token_type_hint: 'access_token' }).toString();
    let res: HttpResult;
    try {
      res = await this.#http(
        'POST',
        endpoint,
        {
          authorization: this.#basicAuth ?? '',
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        form,
        INTROSPECTION_BODY_LIMIT,
      );
    } catch (e) {
      this.#logger.warn({ endpoint, error: errorMessage(e) }, 'token introspection request failed');
      throw unavailable(e);
    }
    let body: unknown;
    try {
      body = JSON.parse(res.body);
    } catch {
      body = undefined;
    }
    if (res.status !== 200) {
      const error = typeof body === 'object' && body !== null ? (body as { error?: unknown }).error : undefined;
      // The AS refuses to introspect this kind of token (e.g. a JWT it issued for local
      // validation only): the token is not one we can accept.
      if (res.status === 400 && (error === 'unsupported_token_type' || error === 'invalid_token')) {
        throw invalidToken('authorization server cannot introspect this token');
      }
      if (res.status === 401 || res.status === 403) {
        this.#logger.error(
          { endpoint, status: res.status },
          'introspection endpoint rejected the resource server credentials (auth.oauth.clientId / clientSecret)',
        );
      } else {
        this.#logger.warn({ endpoint, status: res.status }, 'introspection endpoint failed');
      }
      throw unavailable(new Error(`introspection endpoint answered HTTP ${res.status}`));
    }
    if (typeof body !== 'object' || body === null || Array.isArray(body)) {
      this.#logger.warn({ endpoint }, 'introspection endpoint answered something other than a JSON object');
      throw unavailable(new Error('introspection response is not a JSON object'));
    }
    return this.#checkIntrospection(body as Record<string, unknown>);
  }

  #checkIntrospection(r: Record<string, unknown>): VerifiedAccessToken {
    // RFC 7662 §2.2: only `active: true` (the boolean) means the token may be used.
    if (r.active !== true) throw invalidToken('token is not active');
    if (r.iss !== undefined && r.iss !== this.#issuer) throw invalidToken('issuer mismatch');
    // Fail closed (seed 003): an answer without `aud` cannot show the token was meant for us.
    const aud = asStringList(r.aud);
    if (!aud || aud.length === 0) throw invalidToken('token has no audience');
    if (!aud.some((a) => this.#audience.includes(a))) throw invalidToken('audience mismatch');
    const now = this.#clock();
    const tolMs = this.#toleranceSec * 1000;
    if (r.exp !== undefined) {
      if (typeof r.exp !== 'number') throw invalidToken('exp is not a number');
      if (r.exp * 1000 + tolMs <= now) throw invalidToken('token expired');
    }
    if (typeof r.nbf === 'number' && r.nbf * 1000 - tolMs > now) throw invalidToken('token not yet valid');
    if (typeof r.token_type === 'string' && !['bearer', 'access_token'].includes(r.token_type.toLowerCase())) {
      throw invalidToken(`token type ${r.token_type} not accepted`);
    }
    if (r.cnf !== undefined) throw invalidToken('sender-constrained token (cnf) not supported');
    const clientId = typeof r.client_id === 'string' && r.client_id ? r.client_id : undefined;
    const subject = typeof r.sub === 'string' && r.sub ? r.sub : clientId;
    if (!subject) throw invalidToken('token has no sub or client_id');
    const { active: _active, ...claims } = r;
    return {
      subject,
      issuer: this.#issuer,
      audience: aud,
      scopes: scopesOf(r),
      ...(clientId === undefined ? {} : { clientId }),
      ...(typeof r.exp === 'number' ? { expiresAt: r.exp * 1000 } : {}),
      claims,
      via: 'introspection',
    };
  }

  // -- HTTP ------------------------------------------------------------------------------------

  /** One bounded request to the AS: time limit, body size limit, no redirects followed. */
  async #http(
    method: 'GET' | 'POST',
    url: string,
    headers: Record<string, string>,
    body: string | undefined,
    limit: number,
    signal?: AbortSignal,
  ): Promise<HttpResult> {
    const timeout = AbortSignal.timeout(this.#timeoutMs);
    const res = await request(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      headersTimeout: this.#timeoutMs,
      bodyTimeout: this.#timeoutMs,
      ...(this.#dispatcher ? { dispatcher: this.#dispatcher } : {}),
    });
    const text = await readCapped(res.body, limit);
    return { status: res.statusCode, headers: res.headers, body: text };
  }
}
