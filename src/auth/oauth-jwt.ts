/**
 * Local verification of JWT access tokens (RFC 9068, RFC 7519, RFC 8725) against the issuer's
 * keys: asymmetric algorithms only; `iss`, `aud` and `exp` required; sender-constrained tokens
 * refused. A token this resource server cannot judge locally (not a JWS, or signed with a key
 * the JWKS does not hold) is reported as {@link NotLocallyVerifiable}, so that the verifier may
 * ask the authorization server instead.
 *
 * @module
 */
import {
  decodeProtectedHeader,
  jwtVerify,
  type JWTPayload,
  type JWTVerifyGetKey,
  type JWTVerifyOptions,
  type CryptoKey as JoseCryptoKey,
  type ProtectedHeaderParameters,
} from 'jose';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  asStringList,
  errorMessage,
  invalidToken,
  scopesOf,
  unavailable,
  type VerifiedAccessToken,
} from './oauth-common.js';

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

const JWT_SHAPE = /^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/;

/** True when `token` has the shape of a JWS compact serialisation (three base64url segments). */
export function looksLikeJwt(token: string): boolean {
  return JWT_SHAPE.test(token);
}

const ACCEPTED_TYP = new Set(['jwt', 'at+jwt', 'application/at+jwt']);

/** A JWT this resource server cannot verify locally: `both` mode asks the AS instead. */
export class NotLocallyVerifiable extends Error {
  readonly reason: string;
  constructor(reason: string, cause?: unknown) {
    super(reason, { cause });
    this.reason = reason;
  }
}

/** Options for {@link JwtAccessTokenVerifier}. */
export interface JwtVerifierOptions {
  /** The issuer every token must name in `iss`. */
  issuer: string;
  /** Accepted audience values; a token must name at least one of them in `aud`. */
  audience: readonly string[];
  /** Allowed clock skew for `exp` / `nbf`, in seconds. */
  toleranceSec: number;
  /** Current time in milliseconds. */
  clock: () => number;
  logger: Logger;
  /** The key resolver over the issuer's JWKS. */
  keys: () => Promise<JWTVerifyGetKey>;
}

/** Verifies JWT access tokens locally (see the module documentation). */
export class JwtAccessTokenVerifier {
  readonly #issuer: string;
  readonly #audience: readonly string[];
  readonly #toleranceSec: number;
  readonly #clock: () => number;
  readonly #logger: Logger;
  readonly #keys: () => Promise<JWTVerifyGetKey>;

  constructor(o: JwtVerifierOptions) {
    this.#issuer = o.issuer;
    this.#audience = o.audience;
    this.#toleranceSec = o.toleranceSec;
    this.#clock = o.clock;
    this.#logger = o.logger;
    this.#keys = o.keys;
  }

  /**
   * Verifies a JWT access token.
   *
   * @throws NotLocallyVerifiable when the token is not a JWT this resource server can verify.
   * @throws GatewayError `SWB_ERR_AUTH_INVALID_TOKEN` when it is not valid for this resource,
   *   `SWB_ERR_AUTH_UNAVAILABLE` when the key set cannot be loaded.
   */
  async verify(token: string): Promise<VerifiedAccessToken> {
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
}
