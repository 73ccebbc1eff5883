/**
 * Finding the authorization server's endpoints and keys: metadata discovery (RFC 8414 §3 with
 * §3.1 path insertion, then OpenID Connect Discovery 1.0 §4), cached and retried with
 * exponential backoff after a failure, and the issuer's JWKS as a key resolver that follows key
 * rotation and keeps the last good key set while the JWKS endpoint is down.
 *
 * @module
 */
import {
  createLocalJWKSet,
  createRemoteJWKSet,
  customFetch,
  jwksCache,
  type JSONWebKeySet,
  type JWKSCacheInput,
  type JWTVerifyGetKey,
} from 'jose';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { createBackoff, type Backoff } from '../util/backoff.js';
import {
  errorMessage,
  unavailable,
  type AuthorizationServerMetadata,
  type AuthServerHttp,
  type HttpResult,
} from './oauth-common.js';

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

const METADATA_BODY_LIMIT = 512 * 1024;

const JWKS_BODY_LIMIT = 512 * 1024;

/** The last good key set stays usable this long when the JWKS endpoint cannot be reached. */
const JWKS_STALE_IF_ERROR_MS = 24 * 3_600_000;

/** Options for {@link AuthorizationServerDiscovery}. */
export interface DiscoveryOptions {
  /** Authorization server issuer identifier, compared exactly with the metadata's `issuer`. */
  issuer: string;
  /** JWKS URL; when set, discovery is not needed for the key set. */
  jwksUri: string | undefined;
  /** Introspection endpoint; when set, discovery is not needed for it. */
  introspectionEndpoint: string | undefined;
  logger: Logger;
  /** Current time in milliseconds. */
  clock: () => number;
  /** Every request to the authorization server. */
  http: AuthServerHttp;
  /** Time limit for one JWKS request, in ms. */
  timeoutMs: number;
}

/**
 * The authorization server as this resource server sees it: its metadata (fetched once, on
 * first use), its endpoints, and its signing keys.
 */
export class AuthorizationServerDiscovery {
  readonly #issuer: string;
  readonly #jwksUriOverride: string | undefined;
  readonly #introspectionOverride: string | undefined;
  readonly #logger: Logger;
  readonly #clock: () => number;
  readonly #http: AuthServerHttp;
  readonly #timeoutMs: number;

  #metadata: AuthorizationServerMetadata | undefined;
  #discovering: Promise<AuthorizationServerMetadata> | undefined;
  #discoveryError: GatewayError | undefined;
  #discoveryRetryAt = 0;
  readonly #discoveryBackoff: Backoff = createBackoff({ initialDelayMs: 1000, maxDelayMs: 60_000 });

  /** Metadata fields already reported missing (logged once, not per request). */
  readonly #reportedMissing = new Set<string>();
  /** Key resolver over the issuer's JWKS, created on first use. */
  #jwks: JWTVerifyGetKey | undefined;

  constructor(o: DiscoveryOptions) {
    this.#issuer = o.issuer;
    this.#jwksUriOverride = o.jwksUri;
    this.#introspectionOverride = o.introspectionEndpoint;
    this.#logger = o.logger;
    this.#clock = o.clock;
    this.#http = o.http;
    this.#timeoutMs = o.timeoutMs;
  }

  /**
   * The authorization server's metadata (RFC 8414 §3, falling back to OpenID Connect
   * Discovery), fetched once and cached; after a failure, retried no sooner than a backoff delay
   * (1 s doubling to 60 s).
   *
   * @throws GatewayError `SWB_ERR_AUTH_UNAVAILABLE` when no candidate document could be used.
   */
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

  /**
   * The JWKS URL or the introspection endpoint: the configured override, else the metadata's
   * field. A missing field is logged once.
   *
   * @throws GatewayError `SWB_ERR_AUTH_UNAVAILABLE` when there is no usable URL.
   */
  async endpoint(field: 'jwks_uri' | 'introspection_endpoint'): Promise<string> {
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

  // -- JWKS -----------------------------------------------------------------------------------

  /** The key resolver over the issuer's JWKS, created on first use. */
  async keys(): Promise<JWTVerifyGetKey> {
    if (this.#jwks) return this.#jwks;
    const uri = await this.endpoint('jwks_uri');
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
}
