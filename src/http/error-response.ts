/**
 * The HTTP answer of an MCP exchange that failed before its response started, shared by both
 * front doors and the edge. What is sent is decided by `encodeError` (`src/errors.ts`) from the
 * error's family.
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import { encodeError } from '../errors.js';
import type { JsonRpcId } from '../protocol/jsonrpc.js';

/**
 * Answers an exchange that failed before its response started, as {@link encodeError} decides:
 * an `'http'` error with its status and a JSON-RPC error body (transports §Sending Messages to
 * the Server), `Retry-After` for a limit with `data.retryAfterMs`; a `'jsonrpc'` error as a 200
 * JSON-RPC error response; anything else as a 500 `SWB_ERR_INTERNAL` (the caller logs it).
 * `headers` are added (and win). A response already started is only ended.
 *
 * @param id - the id of the request answered, `null` when unknown
 * @returns the JSON-RPC error code sent, or `undefined` when the response had started
 */
export function sendHttpError(
  res: ServerResponse,
  err: unknown,
  id: JsonRpcId | null = null,
  headers: Record<string, string> = {},
): number | undefined {
  if (res.headersSent) {
    res.end();
    return undefined;
  }
  const encoded = encodeError(err, { responseStarted: false, id });
  const body = JSON.stringify(encoded.response);
  res.writeHead(encoded.kind === 'http' ? encoded.status : 200, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(body),
    ...(encoded.kind === 'http' ? encoded.headers : {}),
    ...headers,
  });
  res.end(body);
  return encoded.response.error.code;
}
