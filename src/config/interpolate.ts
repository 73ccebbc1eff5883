/**
 * `${VAR}` environment-variable interpolation for configuration values.
 *
 * Rules, applied to every string value of a parsed configuration tree (keys are left alone):
 * - `${NAME}` is replaced by the value of `NAME`; an unset variable is an error, never left literal.
 *   A variable set to the empty string is set: it yields `""`.
 * - `${NAME:-default}` yields `default` when `NAME` is unset **or empty** (POSIX shell semantics).
 *   The default may itself contain references: `${A:-${B:-x}}`.
 * - `$${` is an escape for a literal `${` (so `$${HOME}` yields the text `${HOME}`).
 * - A `$` not followed by `{` is kept as is (`$HOME`, `$$`, `a$b` are literal).
 * - `NAME` matches `[A-Za-z_][A-Za-z0-9_]*`; anything else inside `${…}` (for example VS Code's
 *   `${input:token}`) is an error, so a typo never reaches an upstream as literal text.
 *
 * @module
 */

/** Where variables are looked up. Defaults to `process.env`. */
export type EnvSource = Readonly<Record<string, string | undefined>>;

/** One step of a path into a parsed tree: an object key or an array index. */
export type PathSegment = string | number;

/** A problem found while interpolating one string of a tree. */
export interface InterpolationIssue {
  /** Where the string is in the tree, e.g. `['servers', 'github', 'env', 'TOKEN']`. */
  path: PathSegment[];
  /** What is wrong, e.g. `environment variable GITHUB_TOKEN is not set (…)`. */
  message: string;
}

/** Result of {@link interpolateString}. */
export interface InterpolatedString {
  /** The string with every resolvable reference replaced (problems are replaced by `""`). */
  value: string;
  /** One message per problem; empty when the string interpolated cleanly. */
  problems: string[];
  /** Whether the string contained at least one `${…}` reference (escapes do not count). */
  substituted: boolean;
  /**
   * Names of the variables the string read, in order of first use, without duplicates: every
   * well-formed `${NAME}` and `${NAME:-…}`, plus the references of a default that was used.
   */
  names: string[];
}

/** Result of {@link interpolateTree}. */
export interface InterpolatedTree<T> {
  /** A copy of the tree with every string interpolated; the input is not modified. */
  value: T;
  /** Every problem, with the path of the string it was found in. */
  issues: InterpolationIssue[];
  /** Paths of the strings that contained a `${…}` reference (used to coerce `port: ${PORT}`). */
  substitutedPaths: PathSegment[][];
  /** For each string that read variables: its path and the names it read ({@link InterpolatedString.names}). */
  references: Array<{ path: PathSegment[]; names: string[] }>;
}

const NAME_RE = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Interpolates one string.
 *
 * @param text - the raw string value.
 * @param env - variable source; default `process.env`.
 * @returns the interpolated value plus every problem found (never throws).
 */
export function interpolateString(text: string, env: EnvSource = process.env): InterpolatedString {
  const problems: string[] = [];
  const names: string[] = [];
  let substituted = false;

  // Returns the interpolated text of `s` from `start` up to (not including) an unmatched `}` when
  // `nested` is true (inside a default), or to the end. `end` is the index after what was consumed.
  const scan = (s: string, start: number, nested: boolean): { out: string; end: number } => {
    let out = '';
    let i = start;
    while (i < s.length) {
      const ch = s[i];
      if (ch === '$' && s.startsWith('$${', i)) {
        out += '${';
        i += 3;
      } else if (ch === '$' && s[i + 1] === '{') {
        const ref = reference(s, i);
        out += ref.out;
        i = ref.end;
      } else if (nested && ch === '}') {
        return { out, end: i };
      } else {
        out += ch;
        i += 1;
      }
    }
    return { out, end: i };
  };

  // Parses the reference starting at s[at] === '$', s[at + 1] === '{'.
  const reference = (s: string, at: number): { out: string; end: number } => {
    substituted = true;
    const bodyStart = at + 2;
    const close = findClose(s, bodyStart);
    if (close < 0) {
      problems.push(`unterminated reference ${JSON.stringify(s.slice(at))}: expected a closing "}"`);
      return { out: '', end: s.length };
    }
    const body = s.slice(bodyStart, close);
    const sep = body.indexOf(':-');
    const name = sep < 0 ? body : body.slice(0, sep);
    if (!NAME_RE.test(name) && /^(input|env|config|command):/.test(body)) {
      problems.push(
        `${JSON.stringify(s.slice(at, close + 1))} is a client-side (VS Code) variable that Switchboard cannot resolve; ` +
          'use an environment variable instead, e.g. ${GITHUB_TOKEN}',
      );
      return { out: '', end: close + 1 };
    }
    if (!NAME_RE.test(name)) {
      problems.push(
        `malformed reference ${JSON.stringify(s.slice(at, close + 1))}: expected \${NAME} or \${NAME:-default} ` +
          'with NAME made of letters, digits and _ (write $${ for a literal ${)',
      );
      return { out: '', end: close + 1 };
    }
    if (!names.includes(name)) names.push(name);
    const value = env[name];
    if (sep < 0) {
      if (value === undefined) {
        problems.push(
          `environment variable ${name} is not set (use \${${name}:-default} to make it optional, or $\${ for a literal \${)`,
        );
        return { out: '', end: close + 1 };
      }
      return { out: value, end: close + 1 };
    }
    if (value !== undefined && value !== '') return { out: value, end: close + 1 };
    // The default is interpolated only when used, so `${SET:-${UNSET}}` is not an error.
    const def = scan(s, bodyStart + sep + 2, true);
    return { out: def.out, end: close + 1 };
  };

  const { out } = scan(text, 0, false);
  return { value: out, problems, substituted, names };
}

// Index of the `}` closing a reference whose body starts at `from`, honouring nested `${…}` in
// defaults and `$${` escapes; -1 when unterminated.
function findClose(s: string, from: number): number {
  let depth = 0;
  for (let i = from; i < s.length; i++) {
    if (s.startsWith('$${', i)) {
      i += 2;
    } else if (s[i] === '$' && s[i + 1] === '{') {
      depth += 1;
      i += 1;
    } else if (s[i] === '}') {
      if (depth === 0) return i;
      depth -= 1;
    }
  }
  return -1;
}

/**
 * Interpolates every string value of a parsed configuration tree (plain objects and arrays as
 * produced by YAML/JSON/TOML parsers). Object keys are never interpolated.
 *
 * @param tree - the parsed document.
 * @param env - variable source; default `process.env`.
 * @returns a new tree, every problem with its path, and the paths that had references.
 */
export function interpolateTree<T>(tree: T, env: EnvSource = process.env): InterpolatedTree<T> {
  const issues: InterpolationIssue[] = [];
  const substitutedPaths: PathSegment[][] = [];
  const references: Array<{ path: PathSegment[]; names: string[] }> = [];

  const walk = (node: unknown, path: PathSegment[]): unknown => {
    if (typeof node === 'string') {
      const r = interpolateString(node, env);
      for (const message of r.problems) issues.push({ path, message });
      if (r.substituted) substitutedPaths.push(path);
      if (r.names.length > 0) references.push({ path, names: r.names });
      return r.value;
    }
    if (Array.isArray(node)) return node.map((item, i) => walk(item, [...path, i]));
    if (isPlainObject(node)) {
      const out: Record<string, unknown> = {};
      for (const [key, value] of Object.entries(node)) out[key] = walk(value, [...path, key]);
      return out;
    }
    return node;
  };

  return { value: walk(tree, []) as T, issues, substitutedPaths, references };
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}
