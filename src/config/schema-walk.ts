/**
 * Walking the zod configuration schema alongside a parsed tree: which schema validates the value
 * at a path, which keys an object accepts (for "did you mean"), and converting interpolated
 * strings to the number or boolean the schema wants.
 *
 * @module
 */
import { z } from 'zod';
import type { PathSegment } from './interpolate.js';
import { isPlainObject, valueAt } from './paths.js';
import { SwitchboardConfigInput } from './schema.js';

/** Any zod schema. */
export type AnySchema = z.ZodType;

/** Removes optional/default wrappers (keeps pipes, so `Duration`/`Size` stay recognisable). */
export function peel(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) {
      s = s.def.innerType as AnySchema;
    } else {
      return s;
    }
  }
}

/** Removes optional/default wrappers and pipes (to the input side). */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    s = peel(s);
    if (s instanceof z.ZodPipe) s = s.def.in as AnySchema;
    else return s;
  }
}

/** Picks the union member that fits `node` best: same kind, then most keys in common. */
function pickOption(union: z.ZodUnion, node: unknown): AnySchema | undefined {
  const options = union.options as readonly AnySchema[];
  let best: AnySchema | undefined;
  let bestScore = -1;
  for (const option of options) {
    const u = unwrap(option);
    let score = -1;
    if (Array.isArray(node)) score = u instanceof z.ZodArray ? 1 : -1;
    else if (isPlainObject(node)) {
      if (u instanceof z.ZodRecord) score = 0;
      else if (u instanceof z.ZodObject) {
        const keys = Object.keys(u.shape);
        score = Object.keys(node).filter((k) => keys.includes(k)).length;
      }
    }
    if (score > bestScore) {
      best = option;
      bestScore = score;
    }
  }
  return best;
}

/** The schema that validates the value at `path` below `schema` (whose value is `node`). */
export function schemaAt(schema: AnySchema, path: readonly PathSegment[], node: unknown): AnySchema | undefined {
  let s: AnySchema | undefined = schema;
  let n = node;
  for (const seg of path) {
    if (s === undefined) return undefined;
    let u = unwrap(s);
    if (u instanceof z.ZodUnion) {
      const picked = pickOption(u, n);
      if (picked === undefined) return undefined;
      u = unwrap(picked);
    }
    if (u instanceof z.ZodObject) s = (u.shape as Record<string, AnySchema>)[String(seg)];
    else if (u instanceof z.ZodRecord) s = u.def.valueType as AnySchema;
    else if (u instanceof z.ZodArray) s = u.def.element as AnySchema;
    else return undefined;
    n = valueAt(n, [seg]);
  }
  return s;
}

/**
 * `port: ${PORT:-8080}` interpolates to the string `"8080"`; where the schema wants a number or a
 * boolean, a string made by interpolation is converted, as a shell user would expect.
 */
export function coerceScalar(doc: Record<string, unknown>, path: readonly PathSegment[]): void {
  const value = valueAt(doc, path);
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1];
  const parent = valueAt(doc, parentPath);
  if (typeof value !== 'string' || key === undefined) return;
  const schema = schemaAt(SwitchboardConfigInput, path, doc);
  if (schema === undefined) return;
  const target = unwrap(schema);
  let coerced: unknown;
  if (target instanceof z.ZodNumber && /^-?\d+(\.\d+)?$/.test(value.trim())) coerced = Number(value.trim());
  else if (target instanceof z.ZodBoolean && /^(true|false)$/i.test(value.trim()))
    coerced = value.trim().toLowerCase() === 'true';
  else return;
  if (Array.isArray(parent) && typeof key === 'number') parent[key] = coerced;
  else if (isPlainObject(parent)) parent[String(key)] = coerced;
}

/** The keys an object schema accepts; none for any other schema. */
export function knownKeys(schema: AnySchema | undefined): string[] {
  if (schema === undefined) return [];
  const u = unwrap(schema);
  return u instanceof z.ZodObject ? Object.keys(u.shape) : [];
}
