/**
 * What the parts of the OAuth resource server share: the shapes of authorization server metadata
 * and of a validated access token, the errors they throw, claim helpers, and one bounded HTTP
 * request to the authorization server.
 *
 * @module
 */
import { request, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';

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

/** An answer from the authorization server, its body read in full (within a size limit). */
export interface HttpResult {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** `SWB_ERR_AUTH_INVALID_TOKEN` (401): the token is not valid here; `reason` says why, briefly. */
export function invalidToken(reason: string, cause?: unknown): GatewayError {
  return new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid access token', {
    data: { reason },
    ...(cause === undefined ? {} : { cause }),
  });
}

/** `SWB_ERR_AUTH_UNAVAILABLE` (503): the authorization server could not be used. */
export function unavailable(cause?: unknown): GatewayError {
  return new GatewayError('SWB_ERR_AUTH_UNAVAILABLE', 'authorization server unavailable', {
    ...(cause === undefined ? {} : { cause }),
  });
}

/** A one-line description of `e` for the logs, with its causes and error codes. */
export function errorMessage(e: unknown): string {
  if (e instanceof GatewayError && e.cause !== undefined) return `${e.message}: ${errorMessage(e.cause)}`;
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${code}: ${e.message}` : e.message;
  }
  return String(e);
}

/** A string or list of strings as a list (`aud` may be either); undefined for anything else. */
export function asStringList(v: unknown): string[] | undefined {
  if (typeof v === 'string') return [v];
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  return undefined;
}

/** Granted scopes: `scope` (space-separated) and `scp` (space-separated or a list), without repeats. */
export function scopesOf(claims: Record<string, unknown>): string[] {
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

/** Reads a response body to the end as UTF-8, failing (and destroying it) past `limit` bytes. */
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

/**
 * One bounded request to the AS: time limit, body size limit, no redirects followed.
 *
 * @param limit - largest body accepted, in bytes; a larger one fails the request.
 * @param signal - aborts the request besides the time limit.
 */
export type AuthServerHttp = (
  method: 'GET' | 'POST',
  url: string,
  headers: Record<string, string>,
  body: string | undefined,
  limit: number,
  signal?: AbortSignal,
) => Promise<HttpResult>;

/**
 * The {@link AuthServerHttp} of one verifier: each request limited to `timeoutMs`, sent through
 * `dispatcher` (default the global one).
 */
export function createAuthServerHttp(timeoutMs: number, dispatcher: Dispatcher | undefined): AuthServerHttp {
  return async (method, url, headers, body, limit, signal) => {
    const timeout = AbortSignal.timeout(timeoutMs);
    const res = await request(url, {
      method,
      headers,
      ...(body === undefined ? {} : { body }),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      headersTimeout: timeoutMs,
      bodyTimeout: timeoutMs,
      ...(dispatcher ? { dispatcher } : {}),
    });
    const text = await readCapped(res.body, limit);
    return { status: res.statusCode, headers: res.headers, body: text };
  };
}
