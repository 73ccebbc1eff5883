/**
 * Inbound authentication: turns an HTTP request into a {@link Principal}. Built once at startup
 * from `auth` in the config; every request is authenticated — a session id never stands in for a
 * credential.
 *
 * Order: a trusted proxy header (only from configured networks; stripped otherwise), then the
 * `Authorization: Bearer` credential — a Switchboard API token when it is one, else an OAuth
 * access token (mode `oauth` / `tokens+oauth`). Mode `none` yields {@link ANONYMOUS}.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import ipaddr from 'ipaddr.js';
import type { AuthConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { ANONYMOUS, type Principal } from './principal.js';
import { createRoleResolver } from './rbac.js';
import type { TokenService } from './tokens.js';

/** What the OAuth verifier returns (see `oauth.ts`). */
export interface VerifiedAccessTokenLike {
  subject: string;
  issuer: string;
  scopes: string[];
  claims: Record<string, unknown>;
}

/** The part of the OAuth verifier the authenticator needs. */
export interface AccessTokenVerifier {
  verify(token: string): Promise<VerifiedAccessTokenLike>;
}

/** Options for {@link createAuthenticator}. */
export interface AuthenticatorOptions {
  config: AuthConfig;
  tokens?: TokenService;
  oauth?: AccessTokenVerifier;
  logger: Logger;
}

/**
 * Authenticates one request. Returns the principal directly when no I/O is needed (trusted proxy
 * header, `auth.mode: none`), else a promise. Throws or rejects with a GatewayError (401/403/503)
 * when it cannot: `await` the result inside a `try`.
 */
export type Authenticate = (req: IncomingMessage) => Principal | Promise<Principal>;

type Cidr = [ipaddr.IPv4 | ipaddr.IPv6, number];

/** Parses CIDRs once. @throws Error naming the bad entry */
export function parseCidrs(cidrs: readonly string[]): Cidr[] {
  return cidrs.map((c) => {
    try {
      return c.includes('/')
        ? ipaddr.parseCIDR(c)
        : ([ipaddr.parse(c), ipaddr.parse(c).kind() === 'ipv4' ? 32 : 128] as Cidr);
    } catch {
      throw new Error(`invalid CIDR "${c}" in auth.trustedProxy.cidrs`);
    }
  });
}

/** True when the remote address lies in one of the CIDRs (IPv4-mapped IPv6 handled). */
export function addressInCidrs(address: string | undefined, cidrs: readonly Cidr[]): boolean {
  if (!address) return false;
  let addr: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    addr = ipaddr.process(address);
  } catch {
    return false;
  }
  for (const [range, bits] of cidrs) {
    if (addr.kind() === range.kind() && addr.match(range, bits)) return true;
  }
  return false;
}

/** Extracts the RFC 6750 §2.1 bearer credential; `undefined` when absent. */
export function bearerToken(req: IncomingMessage): string | undefined {
  const h = req.headers.authorization;
  if (h === undefined) return undefined;
  const m = /^Bearer[ ]+([A-Za-z0-9\-._~+/]+=*)\s*$/i.exec(h);
  if (!m)
    throw new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'malformed Authorization header', {
      data: { reason: 'expected "Bearer <token>"' },
    });
  return m[1];
}

function asList(v: unknown): string[] {
  if (Array.isArray(v)) return v.filter((x): x is string => typeof x === 'string');
  if (typeof v === 'string') return v.split(/\s+/).filter(Boolean);
  return [];
}

/** Builds the authenticator. */
export function createAuthenticator(options: AuthenticatorOptions): Authenticate {
  const { config, logger } = options;
  const resolveRoles = createRoleResolver(config.roles);
  const proxy = config.trustedProxy;
  const proxyHeader = proxy?.header.toLowerCase();
  const proxyCidrs = proxy ? parseCidrs(proxy.cidrs) : [];
  const proxyPermissions = proxy ? resolveRoles([proxy.role]) : [];
  const tokensOn = config.mode === 'tokens' || config.mode === 'tokens+oauth';
  const oauthOn = config.mode === 'oauth' || config.mode === 'tokens+oauth';
  const oauthCfg = config.oauth;
  const proxyPrincipals = new Map<string, Principal>();

  function fromProxy(req: IncomingMessage): Principal | undefined {
    if (!proxyHeader) return undefined;
    const raw = req.headers[proxyHeader];
    if (raw === undefined) return undefined;
    if (!addressInCidrs(req.socket.remoteAddress, proxyCidrs)) {
      // A spoofed identity header from an untrusted peer is dropped, never honoured.
      delete req.headers[proxyHeader];
      logger.warn(
        { remote: req.socket.remoteAddress, header: proxy?.header },
        'identity header from an untrusted address ignored',
      );
      return undefined;
    }
    const user = (Array.isArray(raw) ? raw[0] : raw)?.trim();
    if (!user || /[\u0000-\u001f\u007f]/.test(user) || user.length > 256) {
      throw new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid identity header', {
        data: { reason: 'empty, too long or control characters' },
      });
    }
    let p = proxyPrincipals.get(user);
    if (!p) {
      p = Object.freeze({
        id: `proxy:${user}`,
        kind: 'proxy-header' as const,
        subject: user,
        permissions: proxyPermissions,
      });
      if (proxyPrincipals.size > 10_000) proxyPrincipals.clear();
      proxyPrincipals.set(user, p);
    }
    return p;
  }

  function fromOAuth(token: string, verified: VerifiedAccessTokenLike): Principal {
    const roles = new Set<string>([oauthCfg?.defaultRole ?? 'user']);
    for (const r of asList(verified.claims[oauthCfg?.rolesClaim ?? 'roles'])) roles.add(r);
    for (const s of verified.scopes) {
      const mapped = oauthCfg?.scopeRoles[s];
      if (mapped) roles.add(mapped);
    }
    return Object.freeze({
      id: `oauth:${verified.issuer}#${verified.subject}`,
      kind: 'oauth' as const,
      subject: verified.subject,
      permissions: resolveRoles(roles),
      scopes: verified.scopes,
      claims: verified.claims,
      bearer: token,
    });
  }

  // Not async: a principal known without I/O (trusted proxy header, `mode: none`) is returned as
  // is, sparing the hot path a promise; errors then throw rather than reject (callers await).
  return function authenticate(req) {
    const viaProxy = fromProxy(req);
    if (viaProxy) return viaProxy;
    if (config.mode === 'none') return ANONYMOUS;
    return authenticateBearer(req);
  };

  async function authenticateBearer(req: IncomingMessage): Promise<Principal> {
    const token = bearerToken(req);
    if (token === undefined) {
      throw new GatewayError(
        'SWB_ERR_AUTH_MISSING_TOKEN',
        'authentication required: send Authorization: Bearer <token>',
      );
    }
    if (tokensOn && options.tokens) {
      const p = await options.tokens.verify(token);
      if (p) return p;
      if (!oauthOn)
        throw new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid token', {
          data: { reason: 'not a Switchboard token' },
        });
    }
    if (oauthOn && options.oauth) return fromOAuth(token, await options.oauth.verify(token));
    throw new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid token', {
      data: { reason: 'no authenticator accepts it' },
    });
  }
}
