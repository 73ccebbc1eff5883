/**
 * Reads one JSON-RPC message from an HTTP request body, answering bad input itself: malformed
 * JSON → 400 with -32700, a batch or a structurally invalid message → 400 with -32600 (JSON-RPC
 * 2.0 §5.1; batches are not part of MCP since 2025-06-18); a body past the limit → 413 through
 * the caller. Shared by both front doors.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import { errorResponse, JSONRPC_INVALID_REQUEST, JSONRPC_PARSE_ERROR, validateMessage } from '../protocol/jsonrpc.js';
import { GatewayError } from '../errors.js';

function reject(res: ServerResponse, id: JsonRpcId | null, code: number, message: string, swb: string): undefined {
  const body = JSON.stringify(errorResponse(id, code, message, { code: swb }));
  res.writeHead(400, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
  return undefined;
}

/**
 * Where {@link readJsonRpcBody} delivers its outcome: exactly one of the three is called, once.
 * Methods of one object (not closures): the hot path allocates no function per request.
 */
export interface JsonRpcBodyReceiver {
  /** The body parsed into one valid JSON-RPC message. */
  message(message: JsonRpcMessage): void;
  /** The body was not one valid message; the 400 has been sent. */
  refused(): void;
  /**
   * The body could not be read: `GatewayError` `SWB_ERR_HTTP_BODY_TOO_LARGE` (413) past
   * `maxBytes` (declared or actual), or the request stream's own error. Nothing was sent.
   */
  failed(err: unknown): void;
}

/** Reading state of one request body, kept on the request so the listeners can be shared. */
interface BodyState {
  readonly res: ServerResponse;
  readonly limit: number;
  readonly receiver: JsonRpcBodyReceiver;
  first: Buffer | undefined;
  more: Buffer[] | undefined;
  size: number;
  done: boolean;
}

const BODY = Symbol('switchboard.body');
type WithBody = IncomingMessage & { [BODY]?: BodyState };

function onData(this: WithBody, chunk: Buffer): void {
  const s = this[BODY]!;
  if (s.done) return;
  s.size += chunk.length;
  if (s.size > s.limit) {
    s.done = true;
    s.first = s.more = undefined;
    this.resume(); // drain the rest without keeping it
    s.receiver.failed(tooLarge(s.limit));
    return;
  }
  if (s.first === undefined) s.first = chunk;
  else (s.more ??= [s.first]).push(chunk);
}

function onEnd(this: WithBody): void {
  const s = this[BODY]!;
  if (s.done) return;
  s.done = true;
  const text =
    s.more !== undefined
      ? Buffer.concat(s.more).toString('utf8')
      : s.first === undefined
        ? ''
        : s.first.toString('utf8');
  s.first = s.more = undefined;
  const message = parseJsonRpcMessage(s.res, text);
  if (message === undefined) s.receiver.refused();
  else s.receiver.message(message);
}

function onError(this: WithBody, err: Error): void {
  const s = this[BODY]!;
  if (s.done) return;
  s.done = true;
  s.receiver.failed(err);
}

function tooLarge(limit: number): GatewayError {
  return new GatewayError('SWB_ERR_HTTP_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`);
}

/**
 * Reads one JSON-RPC message from `req`'s body and hands the outcome to `receiver` (see
 * {@link JsonRpcBodyReceiver}); bad input is answered here (400, -32700 / -32600). No promise,
 * and no closure per request: the listeners are shared and the state lives on `req`. A receiver
 * method that throws is not caught here: receivers answer their own errors.
 */
export function readJsonRpcBody(
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes: number,
  receiver: JsonRpcBodyReceiver,
): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > maxBytes) {
    receiver.failed(tooLarge(maxBytes));
    return;
  }
  (req as WithBody)[BODY] = { res, limit: maxBytes, receiver, first: undefined, more: undefined, size: 0, done: false };
  req.on('data', onData);
  req.on('end', onEnd);
  req.on('error', onError);
}

/** Parses and validates a body; answers 400 and returns undefined when it is not one valid message. */
function parseJsonRpcMessage(res: ServerResponse, text: string): JsonRpcMessage | undefined {
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
 * {@link readJsonRpcBody} as a promise (for paths where a promise costs nothing that matters).
 *
 * @returns the message, or `undefined` after a 400 was sent
 * @throws GatewayError `SWB_ERR_HTTP_BODY_TOO_LARGE` (413) from the body limit
 */
export function readJsonRpcMessage(
  req: IncomingMessage,
  res: ServerResponse,
  maxBytes: number,
): Promise<JsonRpcMessage | undefined> {
  return new Promise((resolve, reject) =>
    readJsonRpcBody(req, res, maxBytes, { message: resolve, refused: () => resolve(undefined), failed: reject }),
  );
}
