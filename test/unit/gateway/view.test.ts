import { describe, expect, it } from 'vitest';
import { templateToRegExp } from '../../../src/gateway/view.js';

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
