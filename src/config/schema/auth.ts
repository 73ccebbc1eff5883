/**
 * Inbound authentication and authorization: API tokens, the OAuth 2.1 resource server, identity
 * from a trusted proxy header, and roles with their `resource.action` permissions.
 *
 * @module
 */
import { z } from 'zod';
import { KNOWN_PERMISSIONS } from '../../auth/permissions.js';
import { HeaderName } from './common.js';

/** `resource.action` permission strings, `*` wildcards per segment (docs/security.md). */
export const PERMISSION_RE = /^(\*|[a-z][a-zA-Z0-9-]*)(\.(\*|[a-z][a-zA-Z0-9-]*))?$/;
export { KNOWN_PERMISSIONS };

/** True when `permission` is, or covers segment by segment (`*` wildcards), one of {@link KNOWN_PERMISSIONS}. */
export function isKnownPermission(permission: string): boolean {
  if (permission === '*') return true;
  const granted = permission.split('.');
  return KNOWN_PERMISSIONS.some((known) => {
    const k = known.split('.');
    return k.length === granted.length && k.every((seg, i) => granted[i] === '*' || granted[i] === seg);
  });
}

/** The message for a permission that is well formed but names nothing the gateway checks. */
export function unknownPermissionMessage(permission: string): string {
  return `unknown permission "${permission}"; valid: ${KNOWN_PERMISSIONS.join(', ')} (or a * wildcard covering one of them, such as tools.* or *)`;
}

const Permission = z
  .string()
  .regex(PERMISSION_RE, 'expected a permission such as servers.use, tools.execute or admin.*')
  .refine(isKnownPermission, { error: (issue) => unknownPermissionMessage(String(issue.input)) });

/** Inbound authentication and authorization: API tokens, OAuth 2.1 resource server, trusted proxy header, roles. */
export const AuthConfig = z
  .object({
    /** none: anonymous (loopback only unless --insecure); tokens: Switchboard API tokens; oauth: OAuth 2.1 resource server; tokens+oauth: either. */
    mode: z.enum(['none', 'tokens', 'oauth', 'tokens+oauth']).default('none'),
    oauth: z
      .object({
        /** Authorization server issuer (RFC 8414 / OIDC discovery base). */
        issuer: z.url(),
        /** Accepted `aud` value(s); the check fails closed. Default: the public MCP URL. */
        audience: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
        /** jwt: verify locally with JWKS; introspection: RFC 7662; both: JWT first, introspection fallback. */
        validation: z.enum(['jwt', 'introspection', 'both']).default('jwt'),
        clientId: z.string().optional(),
        clientSecret: z.string().optional(),
        requiredScopes: z.array(z.string()).default([]),
        jwksUri: z.url().optional(),
        introspectionEndpoint: z.url().optional(),
        /** Claim holding role names mapped through `roles`. Default `roles`. */
        rolesClaim: z.string().default('roles'),
        /** OAuth scope → role name (e.g. `mcp:admin: admin`). */
        scopeRoles: z.record(z.string(), z.string()).default({}),
        /** Role given to every valid OAuth principal. Default `user`. */
        defaultRole: z.string().default('user'),
      })
      .strict()
      .optional(),
    /** Identity taken from a header set by a trusted reverse proxy, only from these networks. */
    trustedProxy: z
      .object({
        header: HeaderName.default('X-Authenticated-User'),
        /** CIDRs (IPv4/IPv6) the proxy connects from; the header is stripped from anyone else. */
        cidrs: z.array(z.string()).min(1),
        /** Role given to principals authenticated this way. Default `user`. */
        role: z.string().default('user'),
      })
      .strict()
      .optional(),
    /** Role name → permissions. Built-ins (`admin`, `user`) may be overridden. */
    roles: z.record(z.string(), z.array(Permission)).default({}),
    /**
     * Redis pub/sub channel on which replicas announce revoked API tokens (used when
     * `SWITCHBOARD_REDIS_URL` is set; read at start). Default `swb:tokens:revoked`.
     */
    revocationChannel: z.string().min(1).default('swb:tokens:revoked'),
  })
  .strict()
  .superRefine((a, ctx) => {
    if ((a.mode === 'oauth' || a.mode === 'tokens+oauth') && !a.oauth) {
      ctx.addIssue({
        code: 'custom',
        path: ['oauth'],
        message: `auth.mode ${a.mode} needs an auth.oauth section (issuer, audience)`,
      });
    }
  });
export type AuthConfig = z.infer<typeof AuthConfig>;
