import { describe, expect, it } from 'vitest';
import { interpolateString, interpolateTree } from '../../../src/config/interpolate.js';

describe('interpolateString', () => {
  const env = { HOME: '/home/ada', EMPTY: '', TOKEN: 's3cret' };

  it('replaces ${VAR} anywhere inside a string', () => {
    expect(interpolateString('${HOME}/data and ${HOME}', env)).toMatchObject({
      value: '/home/ada/data and /home/ada',
      problems: [],
      substituted: true,
    });
  });

  it('uses the default of ${VAR:-default} when the variable is unset or empty', () => {
    expect(interpolateString('${MISSING:-fallback}', env).value).toBe('fallback');
    expect(interpolateString('${EMPTY:-fallback}', env).value).toBe('fallback');
    expect(interpolateString('${HOME:-fallback}', env).value).toBe('/home/ada');
    expect(interpolateString('x${MISSING:-}y', env).value).toBe('xy');
  });

  it('interpolates references inside a default only when the default is used', () => {
    expect(interpolateString('${MISSING:-${HOME}/x}', env).value).toBe('/home/ada/x');
    expect(interpolateString('${HOME:-${ALSO_MISSING}}', env).problems).toEqual([]);
  });

  it('keeps a variable set to the empty string as empty', () => {
    expect(interpolateString('[${EMPTY}]', env)).toMatchObject({ value: '[]', problems: [] });
  });

  it('turns $${ into a literal ${ and leaves other dollars alone', () => {
    expect(interpolateString('$${HOME} costs $5, $$ and $HOME', env)).toMatchObject({
      value: '${HOME} costs $5, $$ and $HOME',
      problems: [],
      substituted: false,
    });
  });

  it('reports an unset variable without default instead of leaving it literal', () => {
    const r = interpolateString('Bearer ${GITHUB_TOKEN}', env);
    expect(r.problems).toHaveLength(1);
    expect(r.problems[0]).toContain('GITHUB_TOKEN is not set');
    expect(r.value).not.toContain('${');
  });

  it("explains that VS Code's ${input:…} and ${env:…} are not environment references", () => {
    expect(interpolateString('Bearer ${input:token}', env).problems[0]).toContain('client-side (VS Code) variable');
  });

  it('reports malformed and unterminated references', () => {
    expect(interpolateString('${1ABC}', env).problems[0]).toContain('malformed reference');
    expect(interpolateString('${A B}', env).problems[0]).toContain('malformed reference');
    expect(interpolateString('${}', env).problems[0]).toContain('malformed reference');
    expect(interpolateString('abc ${HOME', env).problems[0]).toContain('unterminated');
  });
});

describe('interpolateTree', () => {
  it('interpolates values at any depth but never keys, and does not modify its input', () => {
    const tree = { servers: { '${K}': { args: ['--token', '${TOKEN}'], n: 3, on: true } } };
    const r = interpolateTree(tree, { TOKEN: 't', K: 'k' });
    expect(r.value).toEqual({ servers: { '${K}': { args: ['--token', 't'], n: 3, on: true } } });
    expect(tree.servers['${K}'].args[1]).toBe('${TOKEN}');
    expect(r.substitutedPaths).toEqual([['servers', '${K}', 'args', 1]]);
  });

  it('names the path of every unset variable', () => {
    const r = interpolateTree({ a: { b: ['${X}', 'ok', '${Y}'] } }, {});
    expect(r.issues.map((i) => i.path)).toEqual([
      ['a', 'b', 0],
      ['a', 'b', 2],
    ]);
  });

  it('reads process.env by default', () => {
    process.env.SWB_TEST_INTERPOLATE = 'from-process';
    try {
      expect(interpolateTree({ v: '${SWB_TEST_INTERPOLATE}' }).value).toEqual({ v: 'from-process' });
    } finally {
      delete process.env.SWB_TEST_INTERPOLATE;
    }
  });
});

describe('variables read by interpolation', () => {
  it('lists each variable a string read once, including those of a default that was used', () => {
    const env = { A: 'a', EMPTY: '' };
    expect(interpolateString('${A}${A}${EMPTY:-${B:-x}}', env).names).toEqual(['A', 'EMPTY', 'B']);
    expect(interpolateString('${A:-${B}}', env).names).toEqual(['A']);
    expect(interpolateString('$${A} and $A', env).names).toEqual([]);
  });

  it('reports, per string of a tree, the path and the names it read', () => {
    const r = interpolateTree(
      { servers: { gh: { headers: { Authorization: 'Bearer ${T}' } } }, port: 'x' },
      { T: 't' },
    );
    expect(r.references).toEqual([{ path: ['servers', 'gh', 'headers', 'Authorization'], names: ['T'] }]);
  });
});
