/**
 * Test helper: a REAL OAuth 2.1 / OpenID Connect authorization server (`oidc-provider` v9)
 * started on `127.0.0.1:0`, for the OAuth resource-server tests (docs/oauth.md).
 *
 * Tokens are obtained the way an MCP client would obtain them: an HTTP `client_credentials`
 * request to the token endpoint, with an RFC 8707 `resource` indicator. A resource listed in
 * `opaqueResources` gets an opaque access token (validated by RFC 7662 introspection); any other
 * resource gets an RFC 9068 JWT access token (`typ: at+jwt`, RS256, `aud` = the resource). A
 * token request without `resource` yields an opaque token with no audience at all.
 *
 * The provider is served through a small `node:http` wrapper that records every request path
 * (so tests can count introspection calls), can hide the RFC 8414 endpoint (to exercise the
 * OpenID Connect discovery fallback), and can mount the provider under a path (an issuer such as
 * `http://127.0.0.1:port/tenant-a`, for RFC 8414 §3.1 path insertion).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** Options for {@link startAuthorizationServer}. */
export interface AuthorizationServerOptions {
  /** Mount the provider under this path; the issuer becomes `http://127.0.0.1:port<mountPath>`. */
  mountPath?: string;
  /**
   * Serve RFC 8414 metadata (`/.well-known/oauth-authorization-server`, path-inserted when
   * mounted). When false only OpenID Connect discovery answers. Default true.
   */
  rfc8414?: boolean;
  /** Resource indicators for which the AS issues opaque (introspectable) tokens. */
  opaqueResources?: string[];
  /** Scopes the resource servers (and the client) may receive. Default `mcp:read mcp:write mcp:admin`. */
  scopes?: string[];
  /** Access token lifetime in seconds. Default 600. */
  accessTokenTtlSec?: number;
  /** More client metadata records (e.g. a client allowed a grant registered by `configure`). */
  extraClients?: Record<string, unknown>[];
  /**
   * Called with the provider before it serves, e.g. to `registerGrantType` an RFC 8693 token
   * exchange handler. A token whose `testClaims` property is set before `save()` carries those
   * claims (a JWT access token: in its payload, `sub` included).
   */
  configure?: (provider: ProviderInstance) => void;
}

/** Parameters of a token request. */
export interface IssueTokenParams {
  /** RFC 8707 resource indicator, which becomes the token's audience. */
  resource?: string;
  /** Space-separated scopes to request. */
  scope?: string;
  /**
   * Overrides the token's subject (otherwise the client id, as for any `client_credentials`
   * token); a test-only extension used to model distinct users.
   */
  sub?: string;
}

/** A running authorization server. */
export interface RunningAuthorizationServer {
  /** The issuer identifier, e.g. `http://127.0.0.1:41234` or `http://127.0.0.1:41234/tenant-a`. */
  issuer: string;
  /** Base URL of the HTTP listener (no path). */
  origin: string;
  /** The token client (`client_credentials`, `client_secret_basic`). */
  client: { clientId: string; clientSecret: string };
  /** The resource server's own client, for RFC 7662 introspection. */
  introspectionClient: { clientId: string; clientSecret: string };
  /** Obtains a JWT access token for `resource` (which must not be one of `opaqueResources`). */
  issueJwtAccessToken(params: IssueTokenParams & { resource: string }): Promise<string>;
  /** Obtains an opaque access token (pass one of `opaqueResources`, or no resource for no `aud`). */
  issueOpaqueAccessToken(params?: IssueTokenParams): Promise<string>;
  /** Revokes a token through the RFC 7009 revocation endpoint. */
  revokeToken(token: string): Promise<void>;
  /** Paths of every request received, in order (query strings removed). */
  readonly requests: string[];
  /**
   * Simulates an outage: while false, every connection is reset before an answer (the listener
   * stays bound, so the issuer URL stays the same).
   */
  setAvailable(up: boolean): void;
  /** Stops the listener and drops open connections. Idempotent. */
  stop(): Promise<void>;
}

// oidc-provider ships no type declarations; this is the little of it the helper uses. The
// specifier is not a literal so that the compiler does not look for declarations.
/** The part of an `oidc-provider` instance the helper and its `configure` callers use. */
export interface ProviderInstance {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  registerGrantType(name: string, handler: (ctx: never) => Promise<void>, parameters?: string[]): void;
  readonly issuer: string;
}
type ProviderConstructor = new (issuer: string, configuration: Record<string, unknown>) => ProviderInstance;
const OIDC_PROVIDER: string = 'oidc-provider';

/** Starts an `oidc-provider` authorization server on 127.0.0.1:0. Remember to `stop()` it. */
export async function startAuthorizationServer(
  options: AuthorizationServerOptions = {},
): Promise<RunningAuthorizationServer> {
  const { default: Provider } = (await import(OIDC_PROVIDER)) as { default: ProviderConstructor };
  const mountPath = (options.mountPath ?? '').replace(/\/+$/, '');
  const rfc8414 = options.rfc8414 ?? true;
  const opaque = new Set(options.opaqueResources ?? []);
  const scopes = options.scopes ?? ['mcp:read', 'mcp:write', 'mcp:admin'];
  const requests: string[] = [];

  // The provider needs its issuer (hence the port) before it exists: attached after listen().
  const app: { handler?: (req: IncomingMessage, res: ServerResponse) => void } = {};
  let available = true;
  const server: Server = createServer((req, res) => {
    if (!available) {
      req.socket.destroy();
      return;
    }
    const url = req.url ?? '/';
    const path = url.split('?')[0] ?? '/';
    requests.push(path);
    if (
      path.startsWith('/.well-known/oauth-authorization-server') ||
      path.endsWith('/.well-known/oauth-authorization-server')
    ) {
      if (!rfc8414) return notFound(res);
      // RFC 8414 §3.1: for an issuer with a path, the well-known segment is inserted before it.
      // oidc-provider serves it appended to its mount path, so translate.
      if (mountPath && path === `/.well-known/oauth-authorization-server${mountPath}`) {
        req.url = `${mountPath}/.well-known/oauth-authorization-server`;
      }
    }
    const target = req.url ?? '/';
    if (mountPath) {
      if (target !== mountPath && !target.startsWith(`${mountPath}/`) && !target.startsWith(`${mountPath}?`)) {
        return notFound(res);
      }
      // The same contract as express's `app.use(mountPath, provider.callback())`.
      (req as IncomingMessage & { originalUrl?: string }).originalUrl = target;
      req.url = target.slice(mountPath.length) || '/';
    }
    if (!app.handler) return notFound(res);
    app.handler(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  const origin = `http://127.0.0.1:${port}`;
  const issuer = `${origin}${mountPath}`;

  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  const signingKey: JWK = {
    ...(await exportJWK(privateKey)),
    kid: `key-${randomUUID().slice(0, 8)}`,
    alg: 'RS256',
    use: 'sig',
  };

  const client = { clientId: 'mcp-client', clientSecret: 'mcp-client-secret-0123456789abcdef' };
  const introspectionClient = { clientId: 'switchboard', clientSecret: 'switchboard-secret-0123456789abcdef' };
  const ttl = options.accessTokenTtlSec ?? 600;

  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: client.clientId,
        client_secret: client.clientSecret,
        grant_types: ['client_credentials'],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
        scope: scopes.join(' '),
      },
      {
        client_id: introspectionClient.clientId,
        client_secret: introspectionClient.clientSecret,
        grant_types: [],
        response_types: [],
        redirect_uris: [],
        token_endpoint_auth_method: 'client_secret_basic',
      },
      ...(options.extraClients ?? []),
    ],
    jwks: { keys: [signingKey] },
    scopes: ['openid', 'offline_access', ...scopes],
    // Test-only: a token request may choose the subject with an `x-test-sub` header (see
    // IssueTokenParams.sub); opaque tokens report it through introspection's `sub`.
    extraTokenClaims(ctx: { get(name: string): string }, token: { testClaims?: Record<string, unknown> }) {
      const sub = ctx.get('x-test-sub');
      return sub ? { sub } : token.testClaims;
    },
    formats: {
      customizers: {
        jwt(_ctx: unknown, token: { extra?: Record<string, unknown> }, jwt: { payload: Record<string, unknown> }) {
          if (typeof token.extra?.sub === 'string') jwt.payload.sub = token.extra.sub;
        },
      },
    },
    ttl: { ClientCredentials: ttl, AccessToken: ttl },
    features: {
      devInteractions: { enabled: false },
      clientCredentials: { enabled: true },
      // Any authenticated confidential client may introspect; only the owner may revoke.
      introspection: { enabled: true, allowedPolicy: () => true },
      revocation: {
        enabled: true,
        allowedPolicy: (_ctx: unknown, c: { clientId: string }, t: { clientId: string }) => c.clientId === t.clientId,
      },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resourceIndicator: string) => ({
          scope: scopes.join(' '),
          audience: resourceIndicator,
          accessTokenTTL: ttl,
          accessTokenFormat: opaque.has(resourceIndicator) ? 'opaque' : 'jwt',
          ...(opaque.has(resourceIndicator) ? {} : { jwt: { sign: { alg: 'RS256' } } }),
        }),
      },
    },
  });
  options.configure?.(provider);
  app.handler = provider.callback();

  const basic = (c: { clientId: string; clientSecret: string }): string =>
    `Basic ${Buffer.from(`${encodeURIComponent(c.clientId)}:${encodeURIComponent(c.clientSecret)}`).toString('base64')}`;

  async function tokenRequest(params: IssueTokenParams): Promise<string> {
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    if (params.resource) body.set('resource', params.resource);
    if (params.scope) body.set('scope', params.scope);
    const headers: Record<string, string> = {
      authorization: basic(client),
      'content-type': 'application/x-www-form-urlencoded',
    };
    if (params.sub) headers['x-test-sub'] = params.sub;
    const res = await fetch(`${issuer}/token`, {
      method: 'POST',
      headers,
      body,
    });
    const json = (await res.json()) as { access_token?: string; error?: string; error_description?: string };
    if (!res.ok || !json.access_token) {
      throw new Error(`token request failed: ${res.status} ${json.error ?? ''} ${json.error_description ?? ''}`);
    }
    return json.access_token;
  }

  let stopped = false;
  return {
    issuer,
    origin,
    client,
    introspectionClient,
    requests,
    setAvailable(up) {
      available = up;
    },
    async issueJwtAccessToken(params) {
      if (opaque.has(params.resource)) throw new Error(`${params.resource} is configured for opaque tokens`);
      return tokenRequest(params);
    },
    async issueOpaqueAccessToken(params = {}) {
      if (params.resource && !opaque.has(params.resource)) {
        throw new Error(`${params.resource} is not in opaqueResources`);
      }
      return tokenRequest(params);
    },
    async revokeToken(token) {
      const res = await fetch(`${issuer}/token/revocation`, {
        method: 'POST',
        headers: { authorization: basic(client), 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ token, token_type_hint: 'access_token' }),
      });
      if (!res.ok) throw new Error(`revocation failed: ${res.status} ${await res.text()}`);
    },
    async stop() {
      if (stopped) return;
      stopped = true;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function notFound(res: ServerResponse): void {
  res.writeHead(404, { 'content-type': 'application/json' }).end('{"error":"not_found"}');
}
