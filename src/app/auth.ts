/**
 * Everything built from the `auth` section: the inbound authenticator (tokens, OAuth, trusted
 * proxy), the `WWW-Authenticate` challenge, the well-known documents (RFC 9728 protected
 * resource metadata, the identity-assertion JWKS) and the outbound settings (passthrough
 * allowlist, reserved headers, identity propagation). A reload rebuilds the authenticator when
 * `auth` changed and always re-reads the outbound settings.
 *
 * @module
 */
import { createAuthenticator, type Authenticate } from '../auth/authenticator.js';
import { createIdentityPropagator } from '../auth/identity.js';
import { createOAuthVerifier } from '../auth/oauth.js';
import {
  challengeForError,
  metadataUrlFor,
  PROTECTED_RESOURCE_WELL_KNOWN,
  protectedResourceMetadata,
} from '../auth/resource-metadata.js';
import type { TokenService } from '../auth/tokens.js';
import type { SwitchboardConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import { defaultChallenge, type RouteHandler } from '../http/server.js';
import type { Logger } from '../observability/logger.js';
import { loadGlobalAllowlist } from '../policy/passthrough.js';
import type { Database } from '../store/types.js';
import type { UserTokenSource } from '../upstream/user-credentials.js';

/** Options of {@link createAuth}. */
export interface AuthOptions {
  readonly config: SwitchboardConfig;
  readonly gateway: Gateway;
  readonly tokens: TokenService;
  /** Its settings hold the identity signing keys and the stored passthrough allowlist. */
  readonly database: Database;
  /** The external base URL: OAuth audience, metadata URLs, identity issuer. */
  readonly publicUrl: string;
  readonly logger: Logger;
  /** The OAuth broker of `oauth2-user` upstreams (their calls need it); undefined without a token vault. */
  readonly userTokens?: UserTokenSource | undefined;
}

/** The authentication side of the edge; see {@link createAuth}. */
export interface Auth {
  /** Authenticates a request with the current `auth` settings. */
  readonly authenticate: Authenticate;
  /** The `WWW-Authenticate` value for a 401/403 on `path` (points OAuth clients at the metadata). */
  readonly challenge: (path: string, err: GatewayError) => string;
  /** Serves `/.well-known/jwks.json` and, with OAuth, the protected resource metadata. */
  readonly wellKnown: RouteHandler;
  /**
   * Applies `next`: rebuilds the authenticator when its `auth` differs, then sets the gateway's
   * outbound settings from it.
   */
  reload(next: SwitchboardConfig): Promise<void>;
  /**
   * Re-reads the identity signing keys now (a rotation announced by another replica or the CLI).
   * They are also re-read every {@link IDENTITY_KEY_REREAD_MS}.
   */
  reloadIdentityKeys(): Promise<void>;
  /** Stops the periodic re-read of the identity signing keys. */
  close(): void;
}

/** How often the identity signing keys are re-read from the database, ms (1 min). */
export const IDENTITY_KEY_REREAD_MS = 60_000;

/** Builds the authenticator and the identity propagator, and sets the gateway's outbound settings. */
export async function createAuth(options: AuthOptions): Promise<Auth> {
  const { config, gateway, tokens, database, publicUrl, logger } = options;
  const mcpPaths = () => [
    '/mcp',
    ...Object.keys(gateway.config.virtualServers).map((v) => `/mcp/${v}`),
    ...Object.keys(gateway.config.servers).map((n) => `/servers/${n}/mcp`),
  ];
  // Everything built from `auth` is rebuilt when a reload changes that section.
  const buildAuth = (auth: SwitchboardConfig['auth']) => {
    const oauthCfg = auth.oauth;
    const oauthOn = (auth.mode === 'oauth' || auth.mode === 'tokens+oauth') && oauthCfg !== undefined;
    const oauth = oauthOn
      ? createOAuthVerifier({
          issuer: oauthCfg.issuer,
          audience: oauthCfg.audience ?? [publicUrl, ...mcpPaths().map((p) => publicUrl + p)],
          validation: oauthCfg.validation,
          requiredScopes: oauthCfg.requiredScopes,
          ...(oauthCfg.clientId === undefined ? {} : { clientId: oauthCfg.clientId }),
          ...(oauthCfg.clientSecret === undefined ? {} : { clientSecret: oauthCfg.clientSecret }),
          ...(oauthCfg.jwksUri === undefined ? {} : { jwksUri: oauthCfg.jwksUri }),
          ...(oauthCfg.introspectionEndpoint === undefined
            ? {}
            : { introspectionEndpoint: oauthCfg.introspectionEndpoint }),
          logger: logger.child({ component: 'oauth' }),
        })
      : undefined;
    return {
      source: JSON.stringify(auth),
      oauth,
      oauthCfg: oauthOn ? oauthCfg : undefined,
      authenticate: createAuthenticator({ config: auth, tokens, ...(oauth ? { oauth } : {}), logger }),
    };
  };
  let auth = buildAuth(config.auth);
  const authenticate: Authenticate = (req) => auth.authenticate(req);
  const challenge = (path: string, err: GatewayError): string => {
    const oauthCfg = auth.oauthCfg;
    if (!oauthCfg) return defaultChallenge(path, err);
    const location = metadataUrlFor(publicUrl, path.startsWith('/api/') ? '/' : path);
    return (
      challengeForError(err, { resourceMetadataUrl: location.url, scope: oauthCfg.requiredScopes }) ??
      defaultChallenge(path, err)
    );
  };
  const identity = await createIdentityPropagator({
    issuer: publicUrl,
    keyStore: database.settings,
    logger: logger.child({ component: 'identity' }),
  });
  const outboundFor = async (c: SwitchboardConfig) => ({
    globalAllowlist: await loadGlobalAllowlist({ source: c.headers.source, settings: database.settings }),
    overwriteBase: c.headers.overwriteBase,
    reservedHeaders: c.auth.trustedProxy ? [c.auth.trustedProxy.header] : [],
    identity,
    ...(options.userTokens === undefined ? {} : { userTokens: options.userTokens }),
    // The verifier in force at call time: a reload that changes `auth` replaces it.
    authorizationServer: () =>
      auth.oauth?.discover() ??
      Promise.reject(new GatewayError('SWB_ERR_AUTH_UNAVAILABLE', 'inbound OAuth is not configured')),
  });
  gateway.setOutbound(await outboundFor(config));
  // A rotation (`switchboard identity rotate`) reaches a gateway without Redis within a minute.
  const rereadKeys = setInterval(() => void identity.reload(), IDENTITY_KEY_REREAD_MS);
  rereadKeys.unref();
  const wellKnown: RouteHandler = (req, res, path) => {
    if (path === '/.well-known/jwks.json') {
      res.writeHead(200, { 'content-type': 'application/jwk-set+json', 'cache-control': 'max-age=300' });
      res.end(JSON.stringify(identity.jwks()));
      return true;
    }
    const oauthCfg = auth.oauthCfg;
    if (!path.startsWith(PROTECTED_RESOURCE_WELL_KNOWN) || !oauthCfg) return false;
    const rest = path.slice(PROTECTED_RESOURCE_WELL_KNOWN.length);
    if (rest !== '' && !mcpPaths().includes(rest)) return false;
    const body = protectedResourceMetadata({
      resource: publicUrl + rest,
      authorizationServers: [oauthCfg.issuer],
      scopesSupported: oauthCfg.requiredScopes,
      resourceName: 'Switchboard MCP gateway',
    });
    res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'max-age=300' });
    res.end(JSON.stringify(body));
    void req;
    return true;
  };
  return {
    authenticate,
    challenge,
    wellKnown,
    async reloadIdentityKeys() {
      await identity.reload();
    },
    close() {
      clearInterval(rereadKeys);
    },
    async reload(next) {
      if (JSON.stringify(next.auth) !== auth.source) {
        auth = buildAuth(next.auth);
        logger.info({ mode: next.auth.mode }, 'authentication settings reloaded');
      }
      gateway.setOutbound(await outboundFor(next));
    },
  };
}
