import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../../src/config/load.js';
import { exposureOf, namespacingOf } from '../../../src/config/schema.js';

/** Runs `fn`, expecting a ConfigError, and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const CONTEXT_ECONOMY = `
namespacing: conditional
servers:
  echo: {command: node, args: [echo.mjs]}
  everything: {command: npx, args: ["-y", "@modelcontextprotocol/server-everything"]}
  many: {command: node, args: [many-tools.mjs]}
  big: {command: node, args: [big.mjs]}
virtualServers:
  lean:
    servers: [everything, many]
    exposure: search
    namespacing: never
`;

describe('namespacing and exposure', () => {
  it('loads a top-level namespacing with a per-virtual-server override and search exposure', () => {
    const c = parseConfigText(CONTEXT_ECONOMY);
    const lean = c.virtualServers.lean;
    expect(namespacingOf(c)).toBe('conditional');
    expect(namespacingOf(c, lean)).toBe('never');
    expect(exposureOf(c)).toBe('all');
    expect(exposureOf(c, lean)).toBe('search');
  });

  it('defaults to always and all, a virtual server inheriting the top level', () => {
    const c = parseConfigText(
      'namespacing: never\nservers:\n  a: {command: x}\nvirtualServers:\n  v: {servers: [a]}\n',
    );
    expect(namespacingOf(c, c.virtualServers.v)).toBe('never');
    const d = parseConfigText('servers:\n  a: {command: x}\n');
    expect(namespacingOf(d)).toBe('always');
    expect(exposureOf(d)).toBe('all');
  });

  it('accepts namePrefix as a deprecated alias, with a warning', () => {
    const warnings: string[] = [];
    const c = parseConfigText(
      'namePrefix: never\nservers:\n  a: {command: x}\nvirtualServers:\n  v: {servers: [a], namePrefix: conditional}\n',
      { onWarning: (w) => warnings.push(w) },
    );
    expect(namespacingOf(c)).toBe('never');
    expect(c.namespacing).toBe('never');
    expect(namespacingOf(c, c.virtualServers.v)).toBe('conditional');
    expect(warnings.filter((w) => w.includes('deprecated'))).toHaveLength(2);
  });

  it('accepts namePrefix equal to namespacing', () => {
    expect(namespacingOf(parseConfigText('namePrefix: never\nnamespacing: never\n'))).toBe('never');
  });

  it('refuses namePrefix and namespacing with different values, at the top level and per virtual server', () => {
    const e = configError(() =>
      parseConfigText(
        'namespacing: never\nnamePrefix: always\nservers:\n  a: {command: x}\nvirtualServers:\n  v: {servers: [a], namespacing: never, namePrefix: conditional}\n',
      ),
    );
    expect(e.code).toBe('SWB_ERR_CONFIG_INVALID');
    expect(e.issues.map((i) => i.path)).toEqual(['namePrefix', 'virtualServers.v.namePrefix']);
    expect(e.issues[0]?.message).toMatch(/conflicts with namespacing/);
  });

  it('refuses an unknown namespacing or exposure value', () => {
    const e = configError(() => parseConfigText('namespacing: sometimes\nexposure: lazy\n'));
    expect(e.issues.map((i) => i.path)).toEqual(['namespacing', 'exposure']);
  });
});
