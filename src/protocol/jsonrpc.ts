/**
 * JSON-RPC 2.0 message model used on every MCP transport.
 *
 * Implements JSON-RPC 2.0 §4–§5 as profiled by MCP (basic/index, "Messages"): ids are
 * strings or numbers (never null on requests), notifications carry no id, and a response has
 * exactly one of `result` / `error`. Messages are kept as plain objects so that unknown fields
 * pass through the gateway untouched: the gateway forwards what it does not need to understand.
 *
 * @module
 */

/** A JSON-RPC request id. MCP forbids `null` ids on requests. */
export type JsonRpcId = string | number;

/** Arbitrary JSON object params/result. */
export type JsonObject = Record<string, unknown>;

/** A JSON-RPC request: expects a response with the same `id`. */
export interface JsonRpcRequest {
  jsonrpc: '2.0';
  id: JsonRpcId;
  method: string;
  params?: JsonObject;
}

/** A JSON-RPC notification: no `id`, no response. */
export interface JsonRpcNotification {
  jsonrpc: '2.0';
  method: string;
  params?: JsonObject;
}

/** A successful JSON-RPC response. `result` is passed through verbatim. */
export interface JsonRpcSuccess {
  jsonrpc: '2.0';
  id: JsonRpcId;
  result: JsonObject;
}

/** The `error` member of a JSON-RPC error response (JSON-RPC 2.0 §5.1). */
export interface JsonRpcErrorObject {
  code: number;
  message: string;
  data?: unknown;
}

/** A JSON-RPC error response. `id` is null only when the request id could not be read. */
export interface JsonRpcErrorResponse {
  jsonrpc: '2.0';
  id: JsonRpcId | null;
  error: JsonRpcErrorObject;
}

/** Either kind of response. */
export type JsonRpcResponse = JsonRpcSuccess | JsonRpcErrorResponse;

/** Any single JSON-RPC message. */
export type JsonRpcMessage = JsonRpcRequest | JsonRpcNotification | JsonRpcResponse;

/** Standard JSON-RPC 2.0 error codes (§5.1) plus the MCP-defined ones the gateway emits. */
export const JSONRPC_PARSE_ERROR = -32700;
export const JSONRPC_INVALID_REQUEST = -32600;
export const JSONRPC_METHOD_NOT_FOUND = -32601;
export const JSONRPC_INVALID_PARAMS = -32602;
export const JSONRPC_INTERNAL_ERROR = -32603;
/** MCP: resource not found (server/resources, "Error Handling"). */
export const MCP_RESOURCE_NOT_FOUND = -32002;
/**
 * First of Switchboard's own JSON-RPC error codes, which count down from here (-33000 … -33099).
 * They lie outside the range JSON-RPC 2.0 §5.1 reserves (-32768 … -32000): MCP 2026-07-28
 * (basic, "Error codes") claims -32020 … -32099 of it for the specification (-32020 header
 * mismatch, -32021 missing client capability, -32022 unsupported protocol version) and asks
 * implementations to keep new codes out of the whole reserved range.
 */
export const SWITCHBOARD_ERROR_BASE = -33000;
/**
 * A request cancelled before it was answered: -32800, outside the range JSON-RPC 2.0 §5.1
 * reserves, the code the Language Server Protocol gives `RequestCancelled`. Only used inside the
 * gateway: MCP utilities/cancellation sends no response to a cancelled request.
 */
export const JSONRPC_REQUEST_CANCELLED = -32800;

/** True when `m` is a request (has `method` and an `id`). */
export function isRequest(m: JsonRpcMessage): m is JsonRpcRequest {
  return 'method' in m && 'id' in m && m.id !== undefined;
}

/** True when `m` is a notification (has `method`, no `id`). */
export function isNotification(m: JsonRpcMessage): m is JsonRpcNotification {
  return 'method' in m && !('id' in m && m.id !== undefined);
}

/** True when `m` is a response (success or error). */
export function isResponse(m: JsonRpcMessage): m is JsonRpcResponse {
  return !('method' in m);
}

/** True when `m` is an error response. */
export function isErrorResponse(m: JsonRpcMessage): m is JsonRpcErrorResponse {
  return 'error' in m && !('method' in m);
}

/** Result of {@link validateMessage}: the message, or why it is not valid JSON-RPC. */
export type ValidationResult =
  { ok: true; message: JsonRpcMessage } | { ok: false; id: JsonRpcId | null; reason: string };

function isId(v: unknown): v is JsonRpcId {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/**
 * Checks that a parsed JSON value is a single well-formed JSON-RPC 2.0 message.
 *
 * Cheap structural checks only (the hot path must not run heavy schemas): `jsonrpc === "2.0"`,
 * `method` a string, `params` an object or array when present, `params._meta` an object when
 * present (MCP basic §General fields), `id` a string/number, a response
 * has exactly one of `result`/`error` with a numeric `error.code`.
 *
 * @param value - the output of `JSON.parse` for one message
 * @returns the typed message, or the reason and the id to use in the -32600 error response
 */
export function validateMessage(value: unknown): ValidationResult {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, id: null, reason: 'message must be a JSON object' };
  }
  const v = value as Record<string, unknown>;
  const id = isId(v.id) ? v.id : null;
  if (v.jsonrpc !== '2.0') return { ok: false, id, reason: 'jsonrpc must be "2.0"' };
  if ('method' in v) {
    if (typeof v.method !== 'string' || v.method.length === 0) {
      return { ok: false, id, reason: 'method must be a non-empty string' };
    }
    const params = v.params;
    if (params !== undefined && (typeof params !== 'object' || params === null)) {
      return { ok: false, id, reason: 'params must be an object or array' };
    }
    // MCP basic §General fields: `params._meta` is reserved and is an object. Anything else would reach
    // code that reads `_meta.progressToken`, and upstreams drop such a request unanswered.
    const meta = (params as Record<string, unknown> | undefined)?._meta;
    if (meta !== undefined && (typeof meta !== 'object' || meta === null || Array.isArray(meta))) {
      return { ok: false, id, reason: 'params._meta must be an object' };
    }
    if ('id' in v && v.id !== undefined && !isId(v.id)) {
      return { ok: false, id: null, reason: 'id must be a string or a number' };
    }
    return { ok: true, message: v as unknown as JsonRpcMessage };
  }
  const hasResult = 'result' in v;
  const hasError = 'error' in v;
  if (hasResult === hasError) {
    return { ok: false, id, reason: 'a response must have exactly one of result or error' };
  }
  if (v.id !== null && !isId(v.id))
    return { ok: false, id: null, reason: 'response id must be a string, number or null' };
  if (hasError) {
    const e = v.error as Record<string, unknown> | null;
    if (typeof e !== 'object' || e === null || typeof e.code !== 'number') {
      return { ok: false, id, reason: 'error must be an object with a numeric code' };
    }
  }
  return { ok: true, message: v as unknown as JsonRpcMessage };
}

/** Builds an error response. */
export function errorResponse(
  id: JsonRpcId | null,
  code: number,
  message: string,
  data?: unknown,
): JsonRpcErrorResponse {
  const error: JsonRpcErrorObject = data === undefined ? { code, message } : { code, message, data };
  return { jsonrpc: '2.0', id, error };
}

/** Builds a success response. */
export function successResponse(id: JsonRpcId, result: JsonObject): JsonRpcSuccess {
  return { jsonrpc: '2.0', id, result };
}
