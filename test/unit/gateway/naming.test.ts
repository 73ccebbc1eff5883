import { describe, expect, it } from 'vitest';
import { MAX_EXPOSED_NAME_LENGTH, namespacedName, overlappingNamespaces } from '../../../src/gateway/naming.js';

/** What LLM APIs accept as a tool name. */
const LLM_TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

describe('namespacedName', () => {
  it('joins server, separator and name unchanged when the result is valid and short enough', () => {
    expect(namespacedName('github', 'create_issue', '__')).toBe('github__create_issue');
    expect(namespacedName('fs', 'read-file', '__')).toBe('fs__read-file');
  });

  it.each(['__', '-', '_', 'Z9', '--', 'a-_B'])('accepts %j as separator', (separator) => {
    const exposed = namespacedName('srv', 'tool', separator);
    expect(exposed).toBe(`srv${separator}tool`);
    expect(exposed).toMatch(LLM_TOOL_NAME);
  });

  it('keeps a name of exactly 64 characters as it is', () => {
    const name = 'n'.repeat(MAX_EXPOSED_NAME_LENGTH - 'srv__'.length);
    expect(namespacedName('srv', name, '__')).toBe(`srv__${name}`);
  });

  it('shortens a name longer than 64 characters to at most 64 valid characters', () => {
    const exposed = namespacedName('alpha', 'x'.repeat(70), '__');
    expect(exposed.length).toBeLessThanOrEqual(MAX_EXPOSED_NAME_LENGTH);
    expect(exposed).toMatch(LLM_TOOL_NAME);
    expect(exposed.startsWith('alpha__xxx')).toBe(true);
  });

  it('shortens deterministically: the same input always gives the same output', () => {
    const name = 'a_really_long_tool_name_that_an_upstream_might_choose_for_clarity_v2';
    expect(namespacedName('server', name, '__')).toBe(namespacedName('server', name, '__'));
  });

  it('gives different outputs to long names that share a 60-character prefix', () => {
    const shared = 'p'.repeat(60);
    const a = namespacedName('srv', `${shared}-first`, '__');
    const b = namespacedName('srv', `${shared}-second`, '__');
    expect(a).not.toBe(b);
    expect(a).toMatch(LLM_TOOL_NAME);
    expect(b).toMatch(LLM_TOOL_NAME);
  });

  it('gives different outputs to the same long name on different servers', () => {
    const name = 'q'.repeat(70);
    expect(namespacedName('alpha', name, '__')).not.toBe(namespacedName('alphb', name, '__'));
  });

  it.each(['v1.read', 'files/read', 'emoji✓', 'with space', 'a:b'])(
    'turns %j, which has characters outside [A-Za-z0-9_-], into a valid distinct name',
    (name) => {
      const exposed = namespacedName('srv', name, '__');
      expect(exposed).toMatch(LLM_TOOL_NAME);
      expect(exposed.startsWith('srv__')).toBe(true);
    },
  );

  it('keeps names that differ only in an invalid character apart', () => {
    expect(namespacedName('srv', 'a.b', '__')).not.toBe(namespacedName('srv', 'a/b', '__'));
    expect(namespacedName('srv', 'a.b', '__')).not.toBe(namespacedName('srv', 'a_b', '__'));
  });

  it('makes a server name with a dot (allowed in config) into a valid tool name', () => {
    expect(namespacedName('my.server', 'tool', '__')).toMatch(LLM_TOOL_NAME);
  });

  it('honours a smaller maxLength', () => {
    const exposed = namespacedName('srv', 'abcdefghijklmnopqrstuvwxyz', '__', 20);
    expect(exposed.length).toBeLessThanOrEqual(20);
    expect(exposed).toMatch(LLM_TOOL_NAME);
  });
});

describe('overlappingNamespaces', () => {
  it('pairs a server with every server whose name starts with its name and the separator', () => {
    expect(overlappingNamespaces(['a', 'b', 'a__b', 'ab', 'a__b__c'], '__')).toEqual([
      ['a', 'a__b'],
      ['a', 'a__b__c'],
      ['a__b', 'a__b__c'],
    ]);
    expect(overlappingNamespaces(['a', 'a__b'], '-')).toEqual([]);
    expect(overlappingNamespaces(['git', 'github', 'git-hub'], '-')).toEqual([['git', 'git-hub']]);
  });
});
