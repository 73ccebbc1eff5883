/**
 * RFC 7662 token introspection: asks the authorization server about a token, authenticating
 * with `client_secret_basic`, and accepts only an active token meant for this resource (the
 * audience check fails closed) and usable as a plain bearer token.
 *
 * @module
 */
import type { Logger } from '../observability/logger.js';
import {
  asStringList,
  errorMessage,
  invalidToken,
  scopesOf,
  unavailable,
  type AuthServerHttp,
  type HttpResult,
  type VerifiedAccessToken,
} from './oauth-common.js';

const INTROSPECTION_BODY_LIMIT = 256 * 1024;

/** Options for {@link TokenIntrospector}. */
export interface IntrospectorOptions {
  /** The issuer; an answer naming another `iss` is refused. */
  issuer: string;
  /** Accepted audience values; the answer's `aud` must name at least one of them. */
  audience: readonly string[];
  /** The `Authorization` header value (`Basic …`) authenticating this resource server. */
  basicAuth: string | undefined;
  /** Allowed clock skew for `exp` / `nbf`, in seconds. */
  toleranceSec: number;
  /** Current time in milliseconds. */
  clock: () => number;
  logger: Logger;
  /** Every request to the authorization server. */
  http: AuthServerHttp;
  /** The introspection endpoint (configured or discovered). */
  endpoint: () => Promise<string>;
}

/** Validates tokens by RFC 7662 introspection (see the module documentation). */
export class TokenIntrospector {
  readonly #issuer: string;
  readonly #audience: readonly string[];
  readonly #basicAuth: string | undefined;
  readonly #toleranceSec: number;
  readonly #clock: () => number;
  readonly #logger: Logger;
  readonly #http: AuthServerHttp;
  readonly #endpoint: () => Promise<string>;

  constructor(o: IntrospectorOptions) {
    this.#issuer = o.issuer;
    this.#audience = o.audience;
    this.#basicAuth = o.basicAuth;
    this.#toleranceSec = o.toleranceSec;
    this.#clock = o.clock;
    this.#logger = o.logger;
    this.#http = o.http;
    this.#endpoint = o.endpoint;
  }

  /**
   * Asks the authorization server about `token`.
   *
   * @throws GatewayError `SWB_ERR_AUTH_INVALID_TOKEN` when the token is not valid for this
   *   resource, `SWB_ERR_AUTH_UNAVAILABLE` when the authorization server cannot be used.
   */
  async introspect(token: string): Promise<VerifiedAccessToken> {
    const endpoint = await this.#endpoint();
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
    // Fail closed (audience binding: RFC 8707, MCP authorization "Token Audience Binding"): an
    // answer without `aud` cannot show the token was meant for us.
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
}
