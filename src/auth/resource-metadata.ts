/**
 * OAuth 2.0 Protected Resource Metadata (RFC 9728) and the `WWW-Authenticate: Bearer` challenge
 * (RFC 6750 §3, RFC 9728 §5.1) — how an MCP client finds out which authorization server to ask
 * for a token, and for which resource (MCP authorization spec, "Authorization Server Location").
 *
 * Pure functions: the HTTP edge serves {@link protectedResourceMetadata} at the URLs from
 * {@link metadataUrlFor} and sets {@link wwwAuthenticate} on 401/403 answers. All absolute URLs
 * derive from the public base URL (`SWITCHBOARD_PUBLIC_URL`), never from the request's `Host`,
 * which a client controls.
 *
 * @module
 */
import type { ErrorCode } from '../errors.js';

/** The RFC 9728 §3 well-known path segment. */
export const PROTECTED_RESOURCE_WELL_KNOWN = '/.well-known/oauth-protected-resource';

/** Input of {@link protectedResourceMetadata}. */
export interface ProtectedResourceMetadataInput {
  /** The resource identifier (RFC 9728 §1.2): the canonical URI of the MCP endpoint. */
  resource: string;
  /** Issuer identifiers of the authorization servers that issue tokens for it (RFC 8414). */
  authorizationServers: readonly string[];
  /** Scopes clients may request for this resource (`scopes_supported`). */
  scopesSupported?: readonly string[];
  /** Human-readable name (`resource_name`). */
  resourceName?: string;
  /** URL of human-readable documentation (`resource_documentation`). */
  resourceDocumentation?: string;
}

/** The RFC 9728 §2 metadata document (the members Switchboard produces). */
export interface ProtectedResourceMetadata {
  resource: string;
  authorization_servers: string[];
  /** Always `["header"]`: tokens are accepted in the `Authorization` header only (RFC 6750 §2.1). */
  bearer_methods_supported: string[];
  scopes_supported?: string[];
  resource_name?: string;
  resource_documentation?: string;
}

/**
 * Builds the RFC 9728 §2 protected resource metadata document.
 *
 * `bearer_methods_supported` is `["header"]`: the MCP authorization spec forbids tokens in the
 * query string and Switchboard does not read form bodies for credentials.
 *
 * @throws TypeError when `resource` is not an absolute URL or has a fragment (RFC 9728 §1.2), or
 *   `authorizationServers` is empty
 */
export function protectedResourceMetadata(input: ProtectedResourceMetadataInput): ProtectedResourceMetadata {
  const url = parseAbsolute(input.resource, 'resource');
  if (url.hash) throw new TypeError('resource must not contain a fragment (RFC 9728 §1.2)');
  if (input.authorizationServers.length === 0) throw new TypeError('authorizationServers must not be empty');
  const doc: ProtectedResourceMetadata = {
    resource: input.resource,
    authorization_servers: [...input.authorizationServers],
    bearer_methods_supported: ['header'],
  };
  if (input.scopesSupported && input.scopesSupported.length > 0) doc.scopes_supported = [...input.scopesSupported];
  if (input.resourceName) doc.resource_name = input.resourceName;
  if (input.resourceDocumentation) doc.resource_documentation = input.resourceDocumentation;
  return doc;
}

/** Where the metadata of one MCP endpoint lives (see {@link metadataUrlFor}). */
export interface ResourceMetadataLocation {
  /** The endpoint's resource identifier: `<base><mcpPath>`, e.g. `https://gw.example.com/mcp`. */
  resource: string;
  /** Its metadata URL (RFC 9728 §3.1 path insertion), e.g. `https://gw.example.com/.well-known/oauth-protected-resource/mcp`. */
  url: string;
  /** Request path of `url` (what the gateway's router sees when nothing rewrites paths). */
  path: string;
  /** The base URL as a resource identifier, e.g. `https://gw.example.com`. */
  rootResource: string;
  /** Its metadata URL (the "root form"), e.g. `https://gw.example.com/.well-known/oauth-protected-resource`. */
  rootUrl: string;
}

/**
 * Computes the RFC 9728 §3.1 metadata URLs for an MCP endpoint: the well-known segment is
 * inserted between the host and the path of the resource identifier. The per-path form is what
 * MCP clients try first; the root form is the fallback.
 *
 * `publicBaseUrl` is normalised (lowercase scheme and host by URL parsing, no trailing slash);
 * a base path (TLS ingress under `/switchboard`) is kept in both forms.
 *
 * @param publicBaseUrl e.g. `https://gw.example.com` (`SWITCHBOARD_PUBLIC_URL`)
 * @param mcpPath e.g. `/mcp`, `/mcp/research`, `/servers/github/mcp`; must start with `/`
 * @throws TypeError when `publicBaseUrl` is not an absolute http(s) URL, has a query or fragment,
 *   or `mcpPath` does not start with `/`
 */
export function metadataUrlFor(publicBaseUrl: string, mcpPath: string): ResourceMetadataLocation {
  const base = parseAbsolute(publicBaseUrl, 'publicBaseUrl');
  if (base.protocol !== 'https:' && base.protocol !== 'http:') throw new TypeError('publicBaseUrl must be http(s)');
  if (base.search || base.hash) throw new TypeError('publicBaseUrl must not have a query or fragment');
  if (!mcpPath.startsWith('/')) throw new TypeError(`mcpPath must start with "/", got ${JSON.stringify(mcpPath)}`);
  const basePath = base.pathname.replace(/\/+$/, '');
  const path = mcpPath.length > 1 ? mcpPath.replace(/\/+$/, '') : '';
  const origin = base.origin;
  return {
    resource: `${origin}${basePath}${path}`,
    url: `${origin}${PROTECTED_RESOURCE_WELL_KNOWN}${basePath}${path}`,
    path: `${PROTECTED_RESOURCE_WELL_KNOWN}${basePath}${path}`,
    rootResource: `${origin}${basePath}`,
    rootUrl: `${origin}${PROTECTED_RESOURCE_WELL_KNOWN}${basePath}`,
  };
}

/** Parameters of one `Bearer` challenge (see {@link wwwAuthenticate}). */
export interface BearerChallenge {
  /** RFC 9728 §5.1 `resource_metadata`: the URL of the resource's metadata document. */
  resourceMetadataUrl: string;
  /** RFC 6750 §3.1 error code: `invalid_request`, `invalid_token`, `insufficient_scope`. */
  error?: 'invalid_request' | 'invalid_token' | 'insufficient_scope';
  /** RFC 6750 §3 `error_description`: human-readable, ASCII. */
  errorDescription?: string;
  /** RFC 6750 §3 `scope`: the scope(s) needed; a list is joined with spaces. */
  scope?: string | readonly string[];
  /** RFC 6750 §3 `realm`. */
  realm?: string;
}

/**
 * Builds a `WWW-Authenticate` value: `Bearer resource_metadata="…"` plus, when given, `realm`,
 * `error`, `error_description` and `scope` (RFC 6750 §3, RFC 9728 §5.1). Values are written as
 * quoted-strings (RFC 9110 §5.6.4) with `"` and `\` escaped; characters outside printable ASCII
 * (CR, LF, controls, non-ASCII) are removed, so a value can never split or forge a header.
 */
export function wwwAuthenticate(challenge: BearerChallenge): string {
  const params: string[] = [`resource_metadata=${quote(challenge.resourceMetadataUrl)}`];
  if (challenge.realm !== undefined) params.push(`realm=${quote(challenge.realm)}`);
  if (challenge.error !== undefined) params.push(`error=${quote(challenge.error)}`);
  if (challenge.errorDescription !== undefined) params.push(`error_description=${quote(challenge.errorDescription)}`);
  if (challenge.scope !== undefined) {
    const scope = typeof challenge.scope === 'string' ? challenge.scope : challenge.scope.join(' ');
    if (scope) params.push(`scope=${quote(scope)}`);
  }
  return `Bearer ${params.join(', ')}`;
}

/**
 * The challenge for an authentication error, or `undefined` when the error carries none:
 * - `SWB_ERR_AUTH_MISSING_TOKEN` → no `error` (RFC 6750 §3.1: a request without credentials gets
 *   no error code), with `scope` when given;
 * - `SWB_ERR_AUTH_INVALID_TOKEN` / `_EXPIRED_TOKEN` / `_REVOKED_TOKEN` → `error="invalid_token"`;
 * - `SWB_ERR_AUTH_INSUFFICIENT_SCOPE` → `error="insufficient_scope"` with the required `scope`
 *   (taken from `data.scope` when present), which drives MCP step-up authorization;
 * - anything else (e.g. `SWB_ERR_AUTH_UNAVAILABLE`) → `undefined`.
 */
export function challengeForError(
  error: { code: ErrorCode; data?: Record<string, unknown> | undefined },
  options: { resourceMetadataUrl: string; scope?: string | readonly string[]; realm?: string },
): string | undefined {
  const base: BearerChallenge = { resourceMetadataUrl: options.resourceMetadataUrl };
  if (options.realm !== undefined) base.realm = options.realm;
  const dataScope = error.data?.scope;
  const scope =
    typeof dataScope === 'string' || (Array.isArray(dataScope) && dataScope.every((s) => typeof s === 'string'))
      ? dataScope
      : options.scope;
  const reason = typeof error.data?.reason === 'string' ? error.data.reason : undefined;
  switch (error.code) {
    case 'SWB_ERR_AUTH_MISSING_TOKEN':
      return wwwAuthenticate(options.scope === undefined ? base : { ...base, scope: options.scope });
    case 'SWB_ERR_AUTH_INVALID_TOKEN':
    case 'SWB_ERR_AUTH_EXPIRED_TOKEN':
    case 'SWB_ERR_AUTH_REVOKED_TOKEN':
      return wwwAuthenticate({
        ...base,
        error: 'invalid_token',
        ...(reason === undefined ? {} : { errorDescription: reason }),
      });
    case 'SWB_ERR_AUTH_INSUFFICIENT_SCOPE':
      return wwwAuthenticate({
        ...base,
        error: 'insufficient_scope',
        ...(scope === undefined ? {} : { scope }),
      });
    default:
      return undefined;
  }
}

function quote(value: string): string {
  const printable = value.replace(/[^\x20-\x7e]/g, '');
  return `"${printable.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function parseAbsolute(value: string, what: string): URL {
  try {
    return new URL(value);
  } catch {
    throw new TypeError(`${what} must be an absolute URL, got ${JSON.stringify(value)}`);
  }
}
