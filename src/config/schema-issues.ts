/**
 * Schema issue reporting: each zod issue turned into one readable message per offending value
 * (`expected a string, got number`, `unknown key (did you mean "command"?)`), with unions
 * resolved to the member the value was meant to be.
 *
 * @module
 */
import { z } from 'zod';
import type { PathSegment } from './interpolate.js';
import type { RawIssue } from './issues.js';
import { isPlainObject, valueAt } from './paths.js';
import { Duration, ServerConfig, Size } from './schema.js';
import { knownKeys, peel, schemaAt, type AnySchema } from './schema-walk.js';

type ZodIssue = z.core.$ZodIssue;

function toSegments(path: readonly PropertyKey[]): PathSegment[] {
  return path.map((seg) => (typeof seg === 'number' ? seg : String(seg)));
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'an array',
  null: 'null',
};

/** The kind of a value as messages name it: `nothing`, `null`, `array`, `object`, `string`, … */
export function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return value instanceof Date ? 'date' : 'object';
  return typeof value;
}

/** The value itself for scalars (`"abc"`, `-1`, `true`), its kind otherwise. */
function show(value: unknown): string {
  const s =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : describe(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

/**
 * Appends to `out` one readable message per offending value for a zod `issue` found while
 * validating the value at `base` (in `doc`) against `baseSchema`.
 */
export function flattenZodIssue(
  issue: ZodIssue,
  base: PathSegment[],
  baseSchema: AnySchema,
  doc: unknown,
  out: RawIssue[],
): void {
  const rel = toSegments(issue.path);
  const path = [...base, ...rel];
  const value = valueAt(doc, path);
  const here = (): AnySchema | undefined => schemaAt(baseSchema, rel, valueAt(doc, base));

  switch (issue.code) {
    case 'invalid_union': {
      unionIssue(issue, path, here(), doc, out);
      return;
    }
    case 'unrecognized_keys': {
      const known = knownKeys(here());
      for (const key of issue.keys) {
        out.push({ path: [...path, key], message: unknownKeyMessage(key, known) });
      }
      return;
    }
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      out.push({
        path,
        message:
          value === undefined ? `missing (expected ${expected})` : `expected ${expected}, got ${describe(value)}`,
      });
      return;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`;
      out.push({ path, message: `expected ${expected}, got ${show(value)}` });
      return;
    }
    case 'invalid_key': {
      const name = path[path.length - 1];
      const inner = issue.issues.map((i) => i.message).join('; ');
      out.push({ path, message: `invalid name ${JSON.stringify(name)}: ${inner}` });
      return;
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = small
        ? (issue as { minimum: number | bigint }).minimum
        : (issue as { maximum: number | bigint }).maximum;
      const inclusive = issue.inclusive !== false;
      let expected: string;
      if (issue.origin === 'string')
        expected =
          small && Number(limit) === 1 ? 'a non-empty string' : `${small ? 'at least' : 'at most'} ${limit} characters`;
      else if (issue.origin === 'array') expected = `${small ? 'at least' : 'at most'} ${limit} items`;
      else expected = `a number ${small ? '>' : '<'}${inclusive ? '=' : ''} ${limit}`;
      out.push({ path, message: `expected ${expected}, got ${show(value)}` });
      return;
    }
    case 'invalid_format': {
      const what = issue.format === 'url' ? 'expected an http:// or https:// URL' : issue.message;
      out.push({ path, message: `${what}, got ${show(value)}` });
      return;
    }
    default:
      out.push({ path, message: issue.message });
  }
}

function unionIssue(
  issue: Extract<ZodIssue, { code: 'invalid_union' }>,
  path: PathSegment[],
  schema: AnySchema | undefined,
  doc: unknown,
  out: RawIssue[],
): void {
  const value = valueAt(doc, path);
  const peeled = schema === undefined ? undefined : peel(schema);

  if (peeled === Duration || peeled === Size) {
    const what =
      peeled === Duration
        ? 'a duration such as 30s, 5m or a number of milliseconds'
        : 'a size such as 512kb, 4mb or a number of bytes';
    out.push({ path, message: `expected ${what}, got ${show(value)}` });
    return;
  }

  const branches = issue.errors;
  const options = peeled instanceof z.ZodUnion ? (peeled.options as readonly AnySchema[]) : [];

  if (peeled === ServerConfig) {
    serverUnionIssue(branches, options, path, value, doc, out);
    return;
  }

  // number | string | … all failing on the type itself: one message naming the accepted types.
  const rootTypes = branches.map((b) =>
    b.length === 1 && b[0]?.code === 'invalid_type' && b[0].path.length === 0 ? b[0] : undefined,
  );
  if (rootTypes.every((t) => t !== undefined)) {
    const expected = rootTypes.map((t) => t.expected);
    const text = expected.includes('string') ? 'a string' : expected.map((e) => EXPECTED[e] ?? e).join(' or ');
    out.push({
      path,
      message: value === undefined ? `missing (expected ${text})` : `expected ${text}, got ${describe(value)}`,
    });
    return;
  }

  // Otherwise report the branch that got furthest: no type error on the value itself, fewest issues.
  let bestIndex = 0;
  let bestScore = Number.POSITIVE_INFINITY;
  branches.forEach((b, i) => {
    const rootType = b.some((x) => x.code === 'invalid_type' && x.path.length === 0);
    const score = (rootType ? 1000 : 0) + b.length;
    if (score < bestScore) {
      bestScore = score;
      bestIndex = i;
    }
  });
  const option = options[bestIndex];
  for (const inner of branches[bestIndex] ?? []) {
    if (option === undefined) out.push({ path, message: inner.message });
    else flattenZodIssue(inner, path, option, doc, out);
  }
}

function serverUnionIssue(
  branches: ZodIssue[][],
  options: readonly AnySchema[],
  path: PathSegment[],
  value: unknown,
  doc: unknown,
  out: RawIssue[],
): void {
  if (!isPlainObject(value)) {
    out.push({
      path,
      message: `expected an object with "command" (a stdio server) or "url" (a remote server), got ${describe(value)}`,
    });
    return;
  }
  const hasCommand = 'command' in value;
  const hasUrl = 'url' in value;
  if (hasCommand && hasUrl) {
    out.push({
      path,
      message: 'has both "command" and "url": a server is either stdio ("command") or remote ("url")',
    });
    return;
  }
  if (!hasCommand && !hasUrl) {
    out.push({ path, message: 'missing "command" (a stdio server) or "url" (a remote server)' });
    const known = [...new Set(options.flatMap((o) => knownKeys(o)))];
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) out.push({ path: [...path, key], message: unknownKeyMessage(key, known) });
    }
    // Still check the other fields, against the member the entry looks most like (remote-only
    // keys make it remote), without repeating the missing key or the unknown keys.
    const remoteOnly = knownKeys(options[1]).filter((k) => !knownKeys(options[0]).includes(k));
    const index = Object.keys(value).some((k) => remoteOnly.includes(k)) ? 1 : 0;
    const option = options[index];
    for (const inner of branches[index] ?? []) {
      if (inner.code === 'unrecognized_keys') continue;
      if (
        inner.code === 'invalid_type' &&
        inner.path.length === 1 &&
        valueAt(value, toSegments(inner.path)) === undefined
      ) {
        continue;
      }
      if (option === undefined) out.push({ path, message: inner.message });
      else flattenZodIssue(inner, path, option, doc, out);
    }
    return;
  }
  // Stdio is the first member of ServerConfig, remote the second.
  const index = hasCommand ? 0 : 1;
  const option = options[index];
  for (const inner of branches[index] ?? []) {
    if (option === undefined) out.push({ path, message: inner.message });
    else flattenZodIssue(inner, path, option, doc, out);
  }
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = closest(key, known);
  return guess === undefined ? 'unknown key' : `unknown key (did you mean "${guess}"?)`;
}

/** The candidate nearest to `word` by edit distance ("did you mean"), if it is near enough. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDistance <= limit && bestDistance < word.length ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}
