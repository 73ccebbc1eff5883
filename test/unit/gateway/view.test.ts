import { describe, expect, it } from 'vitest';
import { templateToRegExp, View, type NameCollision, type ViewMember } from '../../../src/gateway/view.js';
import type { Upstream } from '../../../src/upstream/upstream.js';

describe('templateToRegExp', () => {
  it('matches a template without expressions literally', () => {
    const re = templateToRegExp('config://app.settings');
    expect(re.test('config://app.settings')).toBe(true);
    expect(re.test('config://appXsettings')).toBe(false);
    expect(re.test('config://app.settings/more')).toBe(false);
  });

  it('matches one path segment for {var}', () => {
    const re = templateToRegExp('demo://resource/dynamic/text/{resourceId}');
    expect(re.test('demo://resource/dynamic/text/3')).toBe(true);
    expect(re.test('demo://resource/dynamic/text/abc-def')).toBe(true);
    expect(re.test('demo://resource/dynamic/text/3/4')).toBe(false);
    expect(re.test('demo://resource/dynamic/blob/3')).toBe(false);
  });

  it('matches several {var} segments with literal text between them', () => {
    const re = templateToRegExp('repo://{owner}/{name}/issues');
    expect(re.test('repo://octo/hello/issues')).toBe(true);
    expect(re.test('repo://octo/hello/pulls')).toBe(false);
    expect(re.test('repo://octo/issues')).toBe(false);
  });

  it('matches anything, slashes included, for {+var} and {#var}', () => {
    const plus = templateToRegExp('file:///{+path}');
    expect(plus.test('file:///etc/hosts')).toBe(true);
    expect(plus.test('file:///a/b/c.txt')).toBe(true);
    expect(plus.test('http:///a')).toBe(false);
    expect(templateToRegExp('doc://page{#section}').test('doc://page#intro/part')).toBe(true);
  });

  it('makes a {?q} query part optional and requires it to start with ? or &', () => {
    const re = templateToRegExp('search://items{?q,limit}');
    expect(re.test('search://items')).toBe(true);
    expect(re.test('search://items?q=x&limit=3')).toBe(true);
    expect(re.test('search://itemsX')).toBe(false);
  });

  it('escapes RegExp metacharacters in the literal parts', () => {
    const re = templateToRegExp('a+b://x.y/{id}');
    expect(re.test('a+b://x.y/1')).toBe(true);
    expect(re.test('aab://xzy/1')).toBe(false);
  });
});

/** The part of an Upstream a View reads, with a catalog the test can change. */
function upstream(name: string, tools: string[]) {
  const u = {
    name,
    catalogVersion: 0,
    capabilities: { tools: {} },
    initializeResult: undefined,
    catalog: { tools: tools.map((t) => ({ name: t })), prompts: [], resources: [], resourceTemplates: [] },
    setTools(next: string[]) {
      u.catalog = { ...u.catalog, tools: next.map((t) => ({ name: t })) };
      u.catalogVersion++;
    },
  };
  return u;
}

function member(u: ReturnType<typeof upstream>): ViewMember {
  const pass = (n: string) => n;
  return { upstream: u as unknown as Upstream, tools: pass, prompts: pass, resources: pass };
}

describe('View name collisions', () => {
  it('keeps the incumbent, withholds the newcomer, and reports each collision once while it lasts', () => {
    const a = upstream('a', []);
    const ab = upstream('a__b', ['c']);
    const reported: NameCollision[] = [];
    const view = new View({
      name: 'default',
      kind: 'aggregate',
      members: [member(a), member(ab)],
      separator: '__',
      gatewayVersion: '1',
      onCollision: (c) => reported.push(c),
    });
    expect(view.resolveTool('a__b__c')?.member.upstream.name).toBe('a__b');
    a.setTools(['b__c']); // earlier member, later arrival
    expect(view.tools.map((t) => t.name)).toEqual(['a__b__c']);
    expect(view.resolveTool('a__b__c')?.member.upstream.name).toBe('a__b');
    expect(reported).toEqual([
      {
        view: 'default',
        kind: 'tool',
        exposed: 'a__b__c',
        kept: { server: 'a__b', name: 'c' },
        withheld: { server: 'a', name: 'b__c' },
      },
    ]);
    ab.setTools(['c', 'd']); // still colliding: not reported again
    view.prepare();
    expect(reported).toHaveLength(1);
    ab.setTools(['d']); // the incumbent leaves: the other takes the name
    expect(view.resolveTool('a__b__c')).toEqual({ member: view.members[0], name: 'b__c' });
    ab.setTools(['c', 'd']); // and keeps it when the first comes back
    expect(view.resolveTool('a__b__c')?.member.upstream.name).toBe('a');
    expect(reported.map((c) => c.withheld.server)).toEqual(['a', 'a__b']);
  });

  it('keeps owners across a reload of the members', () => {
    const a = upstream('a', ['x']);
    const rename = (from: string, to: string) => (n: string) => (n === from ? to : n);
    const view = new View({
      name: 's',
      kind: 'single',
      members: [{ ...member(a), tools: rename('y', 'x') }],
      separator: '__',
      gatewayVersion: '1',
    });
    expect(view.resolveTool('x')?.name).toBe('x');
    // A reload keeps the server; its upstream now has y (renamed to x) listed first.
    a.setTools(['y', 'x']);
    view.setMembers([{ ...member(a), tools: rename('y', 'x') }]);
    expect(view.resolveTool('x')?.name).toBe('x');
    expect(view.tools).toEqual([{ name: 'x' }]);
  });
});

describe('View name prefixes', () => {
  const names = (view: View) => view.tools.map((t) => t.name);
  const owner = (view: View, name: string) => view.resolveTool(name)?.member.upstream.name;
  const aggregate = (namePrefix: 'always' | 'conditional' | 'never', ...members: ViewMember[]) => {
    const reported: NameCollision[] = [];
    const view = new View({
      name: 'default',
      kind: 'aggregate',
      members,
      separator: '__',
      namePrefix,
      gatewayVersion: '1',
      onCollision: (c) => reported.push(c),
    });
    return { view, reported };
  };

  it('always prefixes every name', () => {
    const { view } = aggregate('always', member(upstream('a', ['echo', 'add'])), member(upstream('b', ['echo'])));
    expect(names(view)).toEqual(['a__echo', 'a__add', 'b__echo']);
    expect(view.resolveTool('echo')).toBeUndefined();
  });

  it('conditional prefixes only a shared name, and only for the members after the first in configuration order', () => {
    const a = upstream('a', ['echo', 'add']);
    const b = upstream('b', ['echo', 'sub']);
    const { view, reported } = aggregate('conditional', member(a), member(b));
    expect(names(view)).toEqual(['echo', 'add', 'b__echo', 'sub']);
    expect(owner(view, 'echo')).toBe('a');
    expect(view.resolveTool('b__echo')).toEqual({ member: view.members[1], name: 'echo' });
    expect(owner(view, 'sub')).toBe('b');
    expect(reported).toEqual([]);
    // The first member stops exposing the name: the other gets it bare.
    a.setTools(['add']);
    expect(names(view)).toEqual(['add', 'echo', 'sub']);
    expect(owner(view, 'echo')).toBe('b');
    // It comes back: configuration order decides again, whatever the order of arrival.
    a.setTools(['echo', 'add']);
    expect(names(view)).toEqual(['echo', 'add', 'b__echo', 'sub']);
  });

  it('conditional withholds a prefixed name that equals another member’s own name', () => {
    const { view, reported } = aggregate(
      'conditional',
      member(upstream('a', ['x'])),
      member(upstream('b', ['a__x', 'y'])),
      member(upstream('a2', ['x'])),
    );
    // a2's x becomes a2__x; b's a__x is its own name and stays; nothing collides here.
    expect(names(view)).toEqual(['x', 'a__x', 'y', 'a2__x']);
    expect(reported).toEqual([]);
    const second = aggregate('conditional', member(upstream('b', ['x', 'a__x'])), member(upstream('a', ['x'])));
    // a's x is prefixed to a__x, which b already exposes as its own: a's is withheld and reported.
    expect(names(second.view)).toEqual(['x', 'a__x']);
    expect(owner(second.view, 'a__x')).toBe('b');
    expect(second.reported.map((c) => [c.exposed, c.withheld.server])).toEqual([['a__x', 'a']]);
  });

  it('never keeps the upstream names and withholds a colliding newcomer, reported once', () => {
    const a = upstream('a', ['echo']);
    const b = upstream('b', []);
    const { view, reported } = aggregate('never', member(a), member(b));
    expect(names(view)).toEqual(['echo']);
    b.setTools(['echo', 'sub']);
    expect(names(view)).toEqual(['echo', 'sub']);
    expect(owner(view, 'echo')).toBe('a');
    expect(reported).toEqual([
      {
        view: 'default',
        kind: 'tool',
        exposed: 'echo',
        kept: { server: 'a', name: 'echo' },
        withheld: { server: 'b', name: 'echo' },
      },
    ]);
  });

  it('changes mode on a reload of the members', () => {
    const a = upstream('a', ['echo']);
    const { view } = aggregate('always', member(a));
    expect(names(view)).toEqual(['a__echo']);
    view.setMembers([member(a)], '__', 'never');
    expect(view.namePrefix).toBe('never');
    expect(names(view)).toEqual(['echo']);
  });
});
