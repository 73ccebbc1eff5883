/**
 * Role-based access control with `resource.action` permissions (docs/security.md).
 *
 * A granted permission matches a required one when each segment is equal or `*`; `*` alone and
 * `admin.*` grant everything. Default deny: a principal with no matching grant is refused.
 *
 * Permissions used by the gateway:
 * - `servers.use` — open MCP sessions, list and read (tools/list, resources/read, prompts/get, …)
 * - `tools.execute` — call tools (`tools/call`)
 * - `tokens.manage` — create, list and revoke API tokens (own tokens; all tokens with `admin.*`)
 * - `servers.manage` (also `servers.create` / `servers.update`) — runtime servers and tunnels
 * - `admin.*` — everything, including other principals' tokens and sessions
 *
 * @module
 */
import picomatch from 'picomatch';
import { GatewayError } from '../errors.js';
import type { Principal } from './principal.js';

/** Built-in roles; `auth.roles` in the config may override or add roles. */
export const BUILTIN_ROLES: Readonly<Record<string, readonly string[]>> = Object.freeze({
  admin: ['admin.*'],
  user: ['servers.use', 'tools.execute'],
  viewer: ['servers.use'],
});

/** True when `granted` covers `required` (segment-wise, `*` wildcard). */
export function permissionMatches(granted: string, required: string): boolean {
  if (granted === '*' || granted === 'admin.*' || granted === required) return true;
  // Segment by segment without splitting (this runs for every permission check of a request).
  let g = 0;
  let r = 0;
  for (;;) {
    let gEnd = granted.indexOf('.', g);
    let rEnd = required.indexOf('.', r);
    if (gEnd < 0) gEnd = granted.length;
    if (rEnd < 0) rEnd = required.length;
    const wildcard = gEnd - g === 1 && granted.charCodeAt(g) === 42; // '*'
    if (!wildcard) {
      const length = gEnd - g;
      if (length !== rEnd - r) return false;
      for (let k = 0; k < length; k++) if (granted.charCodeAt(g + k) !== required.charCodeAt(r + k)) return false;
    }
    const gDone = gEnd === granted.length;
    const rDone = rEnd === required.length;
    if (gDone || rDone) return gDone && rDone;
    g = gEnd + 1;
    r = rEnd + 1;
  }
}

/** True when the principal holds `required`. */
export function hasPermission(principal: Principal, required: string): boolean {
  for (const p of principal.permissions) if (permissionMatches(p, required)) return true;
  return false;
}

/** True when the principal is an administrator (`admin.*` or `*`). */
export function isAdmin(principal: Principal): boolean {
  return principal.permissions.some((p) => p === '*' || p === 'admin.*');
}

/**
 * Requires a permission.
 *
 * @throws GatewayError `SWB_ERR_AUTH_FORBIDDEN` (403) naming the missing permission
 */
export function requirePermission(principal: Principal, required: string): void {
  if (!hasPermission(principal, required)) {
    throw new GatewayError('SWB_ERR_AUTH_FORBIDDEN', `permission ${required} is required`, {
      data: { permission: required },
    });
  }
}

/** Resolves role names to permissions with the built-ins overlaid by `auth.roles`. Unknown roles grant nothing. */
export function createRoleResolver(
  roles: Readonly<Record<string, readonly string[]>>,
): (names: Iterable<string>) => string[] {
  const table = new Map<string, readonly string[]>(Object.entries({ ...BUILTIN_ROLES, ...roles }));
  return (names) => {
    const out = new Set<string>();
    for (const n of names) for (const p of table.get(n) ?? []) out.add(p);
    return [...out];
  };
}

/** Compiled scope of a principal: which servers and (upstream) tool names it may reach. */
export interface Scope {
  /** True when the principal is not restricted at all (fast path). */
  readonly unrestricted: boolean;
  server(name: string): boolean;
  /**
   * True when the tool `name` of `server` is in scope.
   *
   * @param separator - the gateway's `namespaceSeparator`; when given, an entry written as the
   *   client-visible name `{server}{separator}{tool}` matches too. Default: only `tool` and `server/tool`.
   */
  tool(server: string, name: string, separator?: string): boolean;
}

const UNRESTRICTED: Scope = Object.freeze({ unrestricted: true, server: () => true, tool: () => true });
const scopeCache = new WeakMap<Principal, Scope>();

/**
 * The principal's scope (token `servers` / `tools`): out-of-scope names are absent from lists and
 * refused on call. A tool entry (a glob) matches when it matches any of: the upstream's own tool
 * name (`echo`), `server/tool` (`everything/echo`), or the client-visible aggregate name
 * `{server}{separator}{tool}` (`everything__echo`). Each form is compared with the name composed
 * from the tool's actual server and upstream name, so a tool whose own name contains the separator
 * (`a__b` on `x`) is reached as `a__b`, `x/a__b` or `x__a__b`; the gateway refuses server names
 * that could compose the same exposed name, so the composed form names one tool.
 */
export function scopeOf(principal: Principal): Scope {
  const servers = principal.servers;
  const tools = principal.tools;
  if ((!servers || servers.length === 0) && (!tools || tools.length === 0)) return UNRESTRICTED;
  let scope = scopeCache.get(principal);
  if (scope) return scope;
  const serverSet = servers && servers.length > 0 ? new Set(servers) : undefined;
  const toolMatch = tools && tools.length > 0 ? picomatch([...tools], { dot: true }) : undefined;
  scope = {
    unrestricted: false,
    server: (name) => serverSet === undefined || serverSet.has(name),
    tool: (server, name, separator) =>
      (serverSet === undefined || serverSet.has(server)) &&
      (toolMatch === undefined ||
        toolMatch(name) ||
        toolMatch(`${server}/${name}`) ||
        (separator !== undefined && separator !== '' && toolMatch(`${server}${separator}${name}`))),
  };
  scopeCache.set(principal, scope);
  return scope;
}
