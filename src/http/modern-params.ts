/**
 * `Mcp-Param-{Name}` headers of modern `tools/call` requests (MCP 2026-07-28, transports
 * §Custom Headers from Tool Parameters): a tool's `inputSchema` may mark a parameter with
 * `x-mcp-header: Name`, and the client then mirrors the argument's value in `Mcp-Param-Name`.
 * A server that processes the body must check each mirrored value against the body: a value in
 * the arguments needs its header, the header (Base64 sentinel decoded) must equal it — integers
 * compared as numbers, booleans as `true`/`false` — and a header value must be valid; anything
 * else is 400 `HeaderMismatch` (-32020, §Server Behavior for Custom Headers).
 *
 * Annotations are read from the tool as the endpoint lists it, once per catalog (a `WeakMap` on
 * the list array). Only annotations the specification allows count: on a primitive (`string`,
 * `integer`, `boolean`) property reached through `properties` keys alone.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { decodeHeaderValue } from '../protocol/era.js';
import type { JsonObject } from '../protocol/jsonrpc.js';

/** One mirrored parameter: where its value is in the arguments, and its header. */
interface HeaderParam {
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
 * Checks the `Mcp-Param-*` headers of a `tools/call` against its arguments.
 *
 * @throws GatewayError `SWB_ERR_HTTP_HEADER_MISMATCH` when a mirrored value's header is missing,
 *   malformed, or does not match the body
 */
export function checkParamHeaders(req: IncomingMessage, params: readonly HeaderParam[], args: unknown): void {
  for (const p of params) {
    let value: unknown = args;
    for (const key of p.path) {
      value = typeof value === 'object' && value !== null ? (value as JsonObject)[key] : undefined;
    }
    const raw = req.headers[p.header];
    if (value === undefined || value === null) continue; // the client omits it; nothing to compare
    const mismatch = (why: string): never => {
      throw new GatewayError('SWB_ERR_HTTP_HEADER_MISMATCH', `Header mismatch: ${p.header} ${why}`);
    };
    if (typeof raw !== 'string') return mismatch('is required: the argument is in the body');
    const decoded = decodeHeaderValue(raw);
    if (decoded === undefined) return mismatch('has invalid characters');
    const matches =
      p.type === 'integer'
        ? decoded.trim() !== '' && Number(decoded) === value
        : p.type === 'boolean'
          ? (value === true && decoded === 'true') || (value === false && decoded === 'false')
          : decoded === value;
    if (!matches) return mismatch(`value does not match the body`);
  }
}
