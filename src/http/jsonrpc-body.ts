/**
 * Reads one JSON-RPC message from an HTTP request body, answering bad input itself: malformed
 * JSON → 400 with -32700, a batch, a structurally invalid message or one nested deeper than
 * `http.maxJsonDepth` → 400 with -32600 (JSON-RPC 2.0 §5.1; batches are not part of MCP since
 * 2025-06-18); a body past the limit → 413 through the caller (`receiveBody` in `./guards.ts`).
 * Shared by both front doors.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import { validateMessage } from '../protocol/jsonrpc.js';
import { exceedsJsonDepth } from '../protocol/json-depth.js';
import { readBody } from './guards.js';
import { sendHttpError } from './error-response.js';

/** Answers a body that is not one valid JSON-RPC message (an `'http'` error: 400 and its code). */
function reject(res: ServerResponse, id: JsonRpcId | null, code: ErrorCode, message: string): undefined {
  sendHttpError(res, new GatewayError(code, message), id);
  return undefined;
}

/**
 * Parses and validates a request body as one JSON-RPC message. The nesting depth is checked on
 * the text first (one pass, no allocation), so a message too deep to serialise again never
 * reaches a session or an upstream.
 *
 * @param maxDepth - deepest nesting of objects/arrays allowed (`http.maxJsonDepth`); the message
 *   object itself is depth 1
 * @returns the message, or `undefined` after a 400 (-32700 / -32600) was sent on `res`
 */
export function parseJsonRpcMessage(res: ServerResponse, text: string, maxDepth: number): JsonRpcMessage | undefined {
  if (exceedsJsonDepth(text, maxDepth)) {
    return reject(res, null, 'SWB_ERR_HTTP_TOO_DEEP', `Invalid Request: nesting deeper than ${maxDepth}`);
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return reject(res, null, 'SWB_ERR_HTTP_PARSE', 'Parse error');
  }
  if (Array.isArray(parsed)) {
    return reject(res, null, 'SWB_ERR_HTTP_INVALID_REQUEST', 'Invalid Request: JSON-RPC batches are not supported');
  }
  const v = validateMessage(parsed);
  if (!v.ok) return reject(res, v.id, 'SWB_ERR_HTTP_INVALID_REQUEST', `Invalid Request: ${v.reason}`);
  return v.message;
}

/**
 * Reads and parses one JSON-RPC message (the promise form; the MCP POST path uses
 * {@link receiveBody} with {@link parseJsonRpcMessage} directly).
 *
 * @returns the message, or `undefined` after a 400 was sent
 * @throws GatewayError `SWB_ERR_HTTP_BODY_TOO_LARGE` (413) from the body limit,
 *   `SWB_ERR_HTTP_BODY_ABORTED` when the client aborted the body
 */
export async function readJsonRpcMessage(
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes: number,
  maxDepth: number,
): Promise<JsonRpcMessage | undefined> {
  return parseJsonRpcMessage(res, await readBody(req, maxBytes), maxDepth);
}
