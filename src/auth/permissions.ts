/**
 * The permissions the gateway checks (docs/security.md). Dependency-free, so the admin web UI
 * (`ui/`) builds its permission checkboxes from the same list.
 *
 * @module
 */

/**
 * Every permission the gateway checks: a granted permission must name one of them, or cover at
 * least one through `*` segments (`tools.*`, `*`), else it is a typo that would silently grant
 * nothing.
 */
export const KNOWN_PERMISSIONS = Object.freeze([
  'servers.use',
  'tools.execute',
  'tokens.manage',
  'servers.manage',
  'servers.create',
  'servers.update',
  'usage.read',
  'metrics.read',
  'admin.*',
] as const);
