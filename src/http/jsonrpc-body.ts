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
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import { errorResponse, JSONRPC_INVALID_REQUEST, JSONRPC_PARSE_ERROR, validateMessage } from '../protocol/jsonrpc.js';
import { exceedsJsonDepth } from '../protocol/json-depth.js';
import { readBody } from './guards.js';

function reject(res: ServerResponse, id: JsonRpcId | null, code: number, message: string, swb: string): undefined {
  const body = JSON.stringify(errorResponse(id, code, message, { code: swb }));
  res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
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
    return reject(
      res,
      null,
      JSONRPC_INVALID_REQUEST,
      `Invalid Request: nesting deeper than ${maxDepth}`,
      'SWB_ERR_HTTP_TOO_DEEP',
    );
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    return reject(res, null, JSONRPC_PARSE_ERROR, 'Parse error', 'SWB_ERR_HTTP_PARSE');
  }
  if (Array.isArray(parsed)) {
    return reject(
      res,
      null,
      JSONRPC_INVALID_REQUEST,
      'Invalid Request: JSON-RPC batches are not supported',
      'SWB_ERR_HTTP_INVALID_REQUEST',
    );
  }
  const v = validateMessage(parsed);
  if (!v.ok)
    return reject(res, v.id, JSONRPC_INVALID_REQUEST, `Invalid Request: ${v.reason}`, 'SWB_ERR_HTTP_INVALID_REQUEST');
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
