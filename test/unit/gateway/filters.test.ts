import { describe, expect, it } from 'vitest';
import { NameFilter } from '../../../src/config/schema.js';
import { compileFilter, composeFilters, filterResourceUri, type CompiledFilter } from '../../../src/gateway/filters.js';

const NAMES = ['read_file', 'write_file', 'delete_file', 'search', 'admin.reset'];

function exposed(filter: CompiledFilter, names: readonly string[] = NAMES): Array<string | undefined> {
  return names.map((n) => filter(n));
}

describe('compileFilter', () => {
  it('passes every name through unchanged when there is no filter', () => {
    expect(exposed(compileFilter(undefined))).toEqual(NAMES);
    expect(exposed(compileFilter({}))).toEqual(NAMES);
  });

  it('exposes only names matching an allow glob', () => {
    expect(exposed(compileFilter({ allow: ['*_file'] }))).toEqual([
      'read_file',
      'write_file',
      'delete_file',
      undefined,
      undefined,
    ]);
  });

  it('exposes nothing with an empty allow list', () => {
    expect(exposed(compileFilter({ allow: [] }))).toEqual(NAMES.map(() => undefined));
  });

  it('hides names matching a deny glob and keeps the rest', () => {
    expect(exposed(compileFilter({ deny: ['delete_*', 'admin.*'] }))).toEqual([
      'read_file',
      'write_file',
      undefined,
      'search',
      undefined,
    ]);
  });

  it('applies deny after allow, so deny wins over an overlapping allow', () => {
    expect(exposed(compileFilter({ allow: ['*_file'], deny: ['delete_file'] }))).toEqual([
      'read_file',
      'write_file',
      undefined,
      undefined,
      undefined,
    ]);
  });

  it('matches globs against the whole name and case-sensitively', () => {
    const f = compileFilter({ allow: ['read'] });
    expect(f('read')).toBe('read');
    expect(f('read_file')).toBeUndefined();
    expect(compileFilter({ allow: ['READ_*'] })('read_file')).toBeUndefined();
  });

  it('matches names containing dots and slashes like any other character', () => {
    const f = compileFilter({ allow: ['admin.*', 'files/*'] });
    expect(f('admin.reset')).toBe('admin.reset');
    expect(f('files/read')).toBe('files/read');
  });

  it('renames an exposed name and leaves the others alone', () => {
    const f = compileFilter({ rename: { read_file: 'read' } });
    expect(exposed(f)).toEqual(['read', 'write_file', 'delete_file', 'search', 'admin.reset']);
  });

  it('matches allow and deny on the upstream name, not on the renamed one', () => {
    const f = compileFilter({ allow: ['read_file'], deny: ['read'], rename: { read_file: 'read' } });
    expect(f('read_file')).toBe('read');
    expect(f('read')).toBeUndefined();
  });

  it('does not rename a denied name', () => {
    expect(compileFilter({ deny: ['read_file'], rename: { read_file: 'read' } })('read_file')).toBeUndefined();
  });

  it.each(['toString', 'constructor', 'hasOwnProperty', 'valueOf'])(
    'keeps the name %j, shared with an Object.prototype member, when a rename map is configured',
    (name) => {
      const f = compileFilter(NameFilter.parse({ rename: { read_file: 'read' } }));
      expect(f(name)).toBe(name);
    },
  );
});

describe('composeFilters (virtual-server member filter on top of the server filter)', () => {
  const server = compileFilter({ deny: ['delete_file'], rename: { write_file: 'write' } });

  it('returns the server filter unchanged when the member adds none', () => {
    expect(composeFilters(server, compileFilter(undefined))).toBe(server);
  });

  it('returns the member filter when the server has none', () => {
    const member = compileFilter({ allow: ['search'] });
    expect(composeFilters(compileFilter(undefined), member)).toBe(member);
  });

  it('hides a name the server denies even when the member allows it', () => {
    const f = composeFilters(server, compileFilter({ allow: ['delete_file', 'read_file'] }));
    expect(f('delete_file')).toBeUndefined();
    expect(f('read_file')).toBe('read_file');
  });

  it('hides a name the member does not allow even when the server exposes it', () => {
    const f = composeFilters(server, compileFilter({ allow: ['read_file'] }));
    expect(exposed(f)).toEqual(['read_file', undefined, undefined, undefined, undefined]);
  });

  it('matches the member filter against the upstream name, not the server rename', () => {
    const f = composeFilters(server, compileFilter({ allow: ['write_file'] }));
    expect(f('write_file')).toBe('write');
    expect(composeFilters(server, compileFilter({ allow: ['write'] }))('write_file')).toBeUndefined();
  });

  it('keeps the server rename when the member does not rename', () => {
    const f = composeFilters(server, compileFilter({ deny: ['search'] }));
    expect(f('write_file')).toBe('write');
    expect(f('search')).toBeUndefined();
  });

  it('lets a member rename win over the server rename', () => {
    const f = composeFilters(server, compileFilter({ rename: { write_file: 'save' } }));
    expect(f('write_file')).toBe('save');
    expect(f('read_file')).toBe('read_file');
  });
});

describe('filterResourceUri', () => {
  const deny = compileFilter({ deny: ['file:///secret/**', 'fixture://a/secret*'] });

  it('hides a denied URI in every spelling a server may read as the same resource', () => {
    for (const uri of [
      'fixture://a/secret',
      'fixture://a/%73ecret',
      'fixture://a/%2573ecret',
      'fixture://a/public/../secret',
      'fixture://a/public/./../secret',
      'FIXTURE://a/secret',
      'file:///public/%2e%2e/secret/key',
      'file:////secret/key',
      'file:///public\\..\\secret\\key',
      'fixture://a/%E0%A4%A/../secret',
    ]) {
      expect(filterResourceUri(deny, uri), uri).toBeUndefined();
    }
  });

  it('passes allowed URIs, percent-encoded ones included, unchanged', () => {
    for (const uri of ['fixture://a/public', 'file:///docs/a%20b.txt', 'fixture://a/secretary/../x', 'urn:x:y']) {
      expect(filterResourceUri(deny, uri), uri).toBe(uri);
    }
  });

  it('requires every spelling to pass an allow list', () => {
    const allow = compileFilter({ allow: ['file:///public/**'] });
    expect(filterResourceUri(allow, 'file:///public/a.txt')).toBe('file:///public/a.txt');
    expect(filterResourceUri(allow, 'file:///public/../etc/passwd')).toBeUndefined();
    expect(filterResourceUri(allow, 'file:///public/%2E%2E/etc/passwd')).toBeUndefined();
  });
});
