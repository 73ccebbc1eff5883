import { describe, expect, it } from 'vitest';
import { hasPermission, isAdmin, permissionMatches, requirePermission, scopeOf } from '../../../src/auth/rbac.js';
import type { Principal } from '../../../src/auth/principal.js';

/** The definition, written the obvious way: equal segment counts, each `*` or equal. */
function reference(granted: string, required: string): boolean {
  if (granted === '*' || granted === 'admin.*' || granted === required) return true;
  const g = granted.split('.');
  const r = required.split('.');
  return g.length === r.length && g.every((s, i) => s === '*' || s === r[i]);
}

describe('permissionMatches', () => {
  it('matches exact permissions, segment wildcards and the admin grants', () => {
    expect(permissionMatches('servers.use', 'servers.use')).toBe(true);
    expect(permissionMatches('servers.*', 'servers.use')).toBe(true);
    expect(permissionMatches('*.use', 'servers.use')).toBe(true);
    expect(permissionMatches('*.*', 'tools.execute')).toBe(true);
    expect(permissionMatches('*', 'tools.execute')).toBe(true);
    expect(permissionMatches('admin.*', 'tools.execute')).toBe(true);
  });

  it('refuses other actions, other resources, prefixes and different segment counts', () => {
    expect(permissionMatches('servers.use', 'servers.manage')).toBe(false);
    expect(permissionMatches('tools.*', 'servers.use')).toBe(false);
    expect(permissionMatches('servers.us', 'servers.use')).toBe(false);
    expect(permissionMatches('servers.use', 'servers.us')).toBe(false);
    expect(permissionMatches('servers', 'servers.use')).toBe(false);
    expect(permissionMatches('servers.use.x', 'servers.use')).toBe(false);
    expect(permissionMatches('servers.*', 'servers.use.x')).toBe(false);
    expect(permissionMatches('servers.*x', 'servers.use')).toBe(false);
    expect(permissionMatches('', 'servers.use')).toBe(false);
    expect(permissionMatches('servers.', 'servers.use')).toBe(false);
  });

  it('agrees with the split-based definition on every pair drawn from a mixed set', () => {
    const parts = ['', '*', 'a', 'ab', 'servers', 'use', '**', 'x*'];
    const perms = new Set<string>();
    for (const a of parts) {
      perms.add(a);
      for (const b of parts) {
        perms.add(`${a}.${b}`);
        for (const c of parts.slice(0, 4)) perms.add(`${a}.${b}.${c}`);
      }
    }
    for (const g of perms)
      for (const r of perms) expect([g, r, permissionMatches(g, r)]).toEqual([g, r, reference(g, r)]);
  });
});

describe('hasPermission, requirePermission, isAdmin', () => {
  const principal = (permissions: string[]): Principal => ({ id: 'token:t', kind: 'token', subject: 't', permissions });

  it('grants when any permission covers the required one', () => {
    expect(hasPermission(principal(['servers.use', 'tools.*']), 'tools.execute')).toBe(true);
    expect(hasPermission(principal(['servers.use']), 'tools.execute')).toBe(false);
    expect(isAdmin(principal(['admin.*']))).toBe(true);
    expect(isAdmin(principal(['servers.*']))).toBe(false);
  });

  it('throws a 403 GatewayError naming the missing permission', () => {
    expect(() => requirePermission(principal(['servers.use']), 'tools.execute')).toThrow(
      expect.objectContaining({ status: 403, message: expect.stringContaining('tools.execute') }),
    );
    expect(() => requirePermission(principal(['tools.execute']), 'tools.execute')).not.toThrow();
  });
});

describe('scopeOf tool entries', () => {
  const scoped = (tools: string[], servers?: string[]): Principal => ({
    id: 't',
    kind: 'token',
    subject: 't',
    permissions: ['servers.use', 'tools.execute'],
    tools,
    ...(servers ? { servers } : {}),
  });

  it('accepts the client-visible name server{separator}tool with the given separator', () => {
    const scope = scopeOf(scoped(['everything__echo']));
    expect(scope.tool('everything', 'echo', '__')).toBe(true);
    expect(scope.tool('everything', 'add', '__')).toBe(false);
    expect(scope.tool('other', 'echo', '__')).toBe(false);
    expect(scope.tool('everything', 'echo', '.')).toBe(false);
    expect(scopeOf(scoped(['everything.echo'])).tool('everything', 'echo', '.')).toBe(true);
  });

  it('still accepts bare tool names and server/tool', () => {
    expect(scopeOf(scoped(['echo'])).tool('everything', 'echo', '__')).toBe(true);
    expect(scopeOf(scoped(['everything/echo'])).tool('everything', 'echo', '__')).toBe(true);
    expect(scopeOf(scoped(['everything/echo'])).tool('other', 'echo', '__')).toBe(false);
  });

  it('composes the name from the actual server, so a tool whose name contains the separator is unambiguous', () => {
    const scope = scopeOf(scoped(['x__a__b']));
    expect(scope.tool('x', 'a__b', '__')).toBe(true);
    expect(scope.tool('x', 'b', '__')).toBe(false);
    expect(scopeOf(scoped(['a__b'])).tool('x', 'a__b', '__')).toBe(true);
    expect(scopeOf(scoped(['everything__*'])).tool('everything', 'echo', '__')).toBe(true);
  });
});
