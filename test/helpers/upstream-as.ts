/**
 * Test helper: a REAL `oidc-provider` as an upstream's authorization server, for the per-user
 * upstream token tests (`auth.type: oauth2-user`). Logins and consents are driven headlessly
 * through the provider's interaction API: whoever follows the authorization URL is logged in as
 * {@link UpstreamAuthorizationServer.user} and grants `openid offline_access` plus `mcp:read` on
 * the requested resource. Access tokens are RFC 9068 JWTs (RS256) whose audience is the
 * resource; refresh tokens are always issued.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, type JWK } from 'jose';

/** The parts of an `oidc-provider` instance the tests use. */
export interface InteractiveProvider {
  callback(): (req: IncomingMessage, res: ServerResponse) => void;
  interactionDetails(req: IncomingMessage, res: ServerResponse): Promise<{ params: Record<string, string> }>;
  interactionFinished(req: IncomingMessage, res: ServerResponse, result: unknown, o?: unknown): Promise<void>;
  on(event: string, listener: (...args: never[]) => void): void;
  Grant: new (o: { accountId: string; clientId: string }) => {
    addOIDCScope(s: string): void;
    addResourceScope(r: string, s: string): void;
    save(): Promise<string>;
  };
}

/** Options of {@link startUpstreamAuthorizationServer}. */
export interface UpstreamAuthorizationServerOptions {
  /** Static client metadata records. Default none. */
  clients?: Record<string, unknown>[];
  /** Access token lifetime, seconds. Default 300. */
  accessTokenTtl?: number;
  /** More `features` of the provider (e.g. `registration`, `revocation`). */
  features?: Record<string, unknown>;
  /** Sees every request first (its path without the query); the provider answers it afterwards. */
  onRequest?: (path: string, req: IncomingMessage, res: ServerResponse) => void;
}

/** A running provider. */
export interface UpstreamAuthorizationServer {
  readonly issuer: string;
  readonly provider: InteractiveProvider;
  /** The public signing key (verify the access tokens with it). */
  readonly publicJwk: JWK;
  /** The account the next login is for. Default `alice`. */
  user: string;
  close(): Promise<void>;
}

const OIDC_PROVIDER: string = 'oidc-provider';

/** Starts the provider on `127.0.0.1:0`. */
export async function startUpstreamAuthorizationServer(
  options: UpstreamAuthorizationServerOptions = {},
): Promise<UpstreamAuthorizationServer> {
  const { default: ProviderClass } = (await import(OIDC_PROVIDER)) as {
    default: new (issuer: string, config: Record<string, unknown>) => InteractiveProvider;
  };
  const { privateKey, publicKey } = await generateKeyPair('RS256', { extractable: true });
  const kid = `k-${randomUUID().slice(0, 8)}`;
  const holder: { provider?: InteractiveProvider; user: string } = { user: 'alice' };
  const server: Server = createServer((req, res) => {
    const provider = holder.provider!;
    const path = (req.url ?? '/').split('?')[0]!;
    options.onRequest?.(path, req, res);
    if (path.startsWith('/interaction/')) {
      // Headless login and consent: the interaction API, as a login page would call it.
      void (async () => {
        const details = await provider.interactionDetails(req, res);
        const grant = new provider.Grant({ accountId: holder.user, clientId: details.params.client_id! });
        grant.addOIDCScope('openid offline_access');
        if (details.params.resource) grant.addResourceScope(details.params.resource, 'mcp:read');
        const grantId = await grant.save();
        await provider.interactionFinished(
          req,
          res,
          { login: { accountId: holder.user }, consent: { grantId } },
          { mergeWithLastSubmission: false },
        );
      })().catch((err: unknown) => {
        res.statusCode = 500;
        res.end(String(err));
      });
      return;
    }
    provider.callback()(req, res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const issuer = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  holder.provider = new ProviderClass(issuer, {
    clients: options.clients ?? [],
    jwks: { keys: [{ ...(await exportJWK(privateKey)), kid, alg: 'RS256', use: 'sig' }] },
    scopes: ['openid', 'offline_access'],
    findAccount: (_ctx: unknown, id: string) => ({ accountId: id, claims: () => ({ sub: id }) }),
    interactions: { url: (_ctx: unknown, interaction: { uid: string }) => `/interaction/${interaction.uid}` },
    issueRefreshToken: () => true,
    features: {
      devInteractions: { enabled: false },
      resourceIndicators: {
        enabled: true,
        defaultResource: (_ctx: unknown, _client: unknown, oneOf?: string[]) => oneOf,
        useGrantedResource: () => true,
        getResourceServerInfo: (_ctx: unknown, resource: string) => ({
          scope: 'mcp:read',
          audience: resource,
          accessTokenTTL: options.accessTokenTtl ?? 300,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        }),
      },
      ...options.features,
    },
  });
  const provider = holder.provider;
  const publicJwk: JWK = { ...(await exportJWK(publicKey)), kid, alg: 'RS256', use: 'sig' };
  return {
    issuer,
    provider,
    publicJwk,
    get user() {
      return holder.user;
    },
    set user(value: string) {
      holder.user = value;
    },
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

/**
 * Plays a browser: follows redirects from `url` with its cookies (a jar kept across the hops)
 * until one leads to a URL starting with `redirectUri`, which is returned.
 *
 * @throws Error when a hop answers without a redirect, or after 10 hops
 */
export async function followToRedirect(url: string, redirectUri: string): Promise<URL> {
  const jar = new CookieJar();
  let next = url;
  for (let hop = 0; hop < 10; hop++) {
    const res = await fetch(next, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.take(res);
    const location = res.headers.get('location');
    if (location === null) throw new Error(`stopped at ${next}: ${res.status} ${await res.text()}`);
    const target = new URL(location, next);
    if (target.toString().startsWith(redirectUri)) return target;
    next = target.toString();
  }
  throw new Error('too many redirects');
}

/** A browser's cookies across hosts, by name only (enough for one provider and one gateway). */
export class CookieJar {
  readonly #cookies = new Map<string, string>();

  /** The `Cookie` header value. */
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }

  /** Keeps the cookies a response sets. */
  take(res: Response): void {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(';');
      const eq = pair!.indexOf('=');
      this.#cookies.set(pair!.slice(0, eq), pair!.slice(eq + 1));
    }
  }
}
