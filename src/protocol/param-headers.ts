/**
 * Tool parameters mirrored into `Mcp-Param-{Name}` headers (MCP 2026-07-28, transports §Custom
 * Headers from Tool Parameters): a tool's `inputSchema` may mark a parameter with
 * `x-mcp-header: Name`, and a client then sends the argument's value in `Mcp-Param-Name` as
 * well as in the body. The gateway reads the annotations on both sides: the front door checks a
 * modern client's headers against its body (`http/modern-params.ts`), and a `tools/call` to a
 * modern upstream over HTTP carries the headers the upstream's own schema asks for
 * ({@link mirroredParamHeaders}).
 *
 * Annotations are read once per tool list (a `WeakMap` on the list array). Only annotations the
 * specification allows count: on a primitive (`string`, `integer`, `boolean`) property reached
 * through `properties` keys alone.
 *
 * @module
 */
import { encodeHeaderValue } from './era.js';
import type { JsonObject } from './jsonrpc.js';

/** One mirrored parameter: where its value is in the arguments, and its header. */
export interface HeaderParam {
  /** Lower-case header name, `mcp-param-{name}`. */
  readonly header: string;
  /** The chain of `properties` keys from the schema root to the parameter. */
  readonly path: readonly string[];
  readonly type: 'string' | 'integer' | 'boolean';
}

/** RFC 9110 §5.6.2 `token`. */
const TOKEN = /^[!#$%&'*+.^_`|~0-9A-Za-z-]+$/;
/** Annotations deeper than this are not followed (a schema is the upstream's to write). */
const MAX_DEPTH = 8;

const byTools = new WeakMap<readonly JsonObject[], Map<string, readonly HeaderParam[]>>();
const NONE: readonly HeaderParam[] = [];

/** The mirrored parameters of `name` in `tools` (an endpoint's tool list), cached per list. */
export function headerParamsOf(tools: readonly JsonObject[], name: string): readonly HeaderParam[] {
  let byName = byTools.get(tools);
  if (byName === undefined) {
    byName = new Map();
    for (const tool of tools) {
      const params = collect(tool.inputSchema, [], 0, []);
      if (params.length > 0 && typeof tool.name === 'string') byName.set(tool.name, params);
    }
    byTools.set(tools, byName);
  }
  return byName.get(name) ?? NONE;
}

function collect(schema: unknown, path: string[], depth: number, out: HeaderParam[]): HeaderParam[] {
  if (depth > MAX_DEPTH || typeof schema !== 'object' || schema === null) return out;
  const properties = (schema as JsonObject).properties;
  if (typeof properties !== 'object' || properties === null || Array.isArray(properties)) return out;
  for (const [key, sub] of Object.entries(properties as JsonObject)) {
    if (typeof sub !== 'object' || sub === null) continue;
    const s = sub as JsonObject;
    const name = s['x-mcp-header'];
    const type = s.type;
    if (
      typeof name === 'string' &&
      TOKEN.test(name) &&
      (type === 'string' || type === 'integer' || type === 'boolean') &&
      !out.some((p) => p.header === `mcp-param-${name.toLowerCase()}`)
    ) {
      out.push({ header: `mcp-param-${name.toLowerCase()}`, path: [...path, key], type });
    }
    collect(s, [...path, key], depth + 1, out);
  }
  return out;
}

/**
 * The `Mcp-Param-*` headers a client sends with a `tools/call` of `params.name` (transports
 * §Custom Headers from Tool Parameters): for each annotated parameter whose argument is present,
 * its value — a string as is or in the `=?base64?…?=` form when it is not plain visible ASCII
 * (§Value Encoding), an integer in decimal, a boolean as `true`/`false`.
 *
 * @param tools - the tool list the name is looked up in (the upstream's own catalog)
 * @param params - the `tools/call` params (`name`, `arguments`)
 * @returns lower-case header name → value, or undefined when the tool mirrors nothing present
 */
export function mirroredParamHeaders(
  tools: readonly JsonObject[],
  params: JsonObject | undefined,
): Record<string, string> | undefined {
  const name = params?.name;
  if (typeof name !== 'string') return undefined;
  const mirrored = headerParamsOf(tools, name);
  if (mirrored.length === 0) return undefined;
  let out: Record<string, string> | undefined;
  for (const p of mirrored) {
    let value: unknown = params!.arguments;
    for (const key of p.path) {
      value = typeof value === 'object' && value !== null ? (value as JsonObject)[key] : undefined;
    }
    let text: string;
    if (p.type === 'string' && typeof value === 'string') text = encodeHeaderValue(value);
    else if (p.type === 'integer' && typeof value === 'number' && Number.isInteger(value)) text = String(value);
    else if (p.type === 'boolean' && typeof value === 'boolean') text = String(value);
    else continue; // absent, or not of the declared type: nothing a header could mirror
    (out ??= {})[p.header] = text;
  }
  return out;
}
