/**
 * Principals: who is calling. Until inbound authentication is configured every request is made
 * by {@link ANONYMOUS}; the principal is part of every key — sessions, upstream connections,
 * rate limits, isolated children — so nothing one principal holds is reachable by another.
 *
 * @module
 */

/** How a principal was established. */
export type PrincipalKind = 'anonymous' | 'token' | 'oauth' | 'proxy-header';

/** An authenticated (or anonymous) caller. */
export interface Principal {
  /** Stable id used in keys: `token:<subject>`, `oauth:<iss>#<sub>`, `proxy:<user>`, `anonymous`. */
  readonly id: string;
  readonly kind: PrincipalKind;
  /** Display name / subject. */
  readonly subject: string;
  /** Effective `resource.action` permissions (after role mapping); may contain `*`. */
  readonly permissions: readonly string[];
  /** Server names this principal may reach; undefined = all. */
  readonly servers?: readonly string[];
  /** Tool-name globs (upstream names) this principal may call; undefined = all. */
  readonly tools?: readonly string[];
  /** For API tokens: the token's id and jti. */
  readonly tokenId?: string;
  readonly jti?: string;
  /** The bearer credential presented (for `auth.type: forward` upstreams only). */
  readonly bearer?: string;
  /** OAuth scopes granted, when known. */
  readonly scopes?: readonly string[];
  /** Validated token claims (OAuth) for role mapping and audit. */
  readonly claims?: Readonly<Record<string, unknown>>;
}

/** The principal of unauthenticated requests (auth mode `none`): may do everything. */
export const ANONYMOUS: Principal = Object.freeze({
  id: 'anonymous',
  kind: 'anonymous',
  subject: 'anonymous',
  permissions: Object.freeze<string[]>(['*']),
});
