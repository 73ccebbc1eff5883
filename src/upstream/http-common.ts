/**
 * Pieces shared by the HTTP upstream transports (`streamable-http-transport.ts` and the legacy
 * `sse-transport.ts`): synthetic error responses, network-failure mapping, bounded body reads,
 * header handling, and the protocol-error / close reporting both do the same way.
 *
 * @module
 */
import type { Readable } from 'node:stream';
import { GatewayError, type ErrorCode } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { JsonRpcErrorResponse, JsonRpcId } from '../protocol/jsonrpc.js';
import type { TransportCloseInfo } from './transport.js';

/** Longest body excerpt read from an error answer (for logs and session-loss detection), bytes. */
const EXCERPT_BYTES = 512;
/** Longest excerpt of an upstream's data quoted in a log line, characters. */
const PROTOCOL_EXCERPT_CHARS = 200;

/** Headers the transport sets itself; a static header of the same name is dropped. */
const OWNED_HEADERS = new Set([
  'accept',
  'content-type',
  'content-length',
  'mcp-session-id',
  'mcp-protocol-version',
  'mcp-method',
  'mcp-name',
  'last-event-id',
  'host',
  'connection',
  'keep-alive',
  'transfer-encoding',
  'upgrade',
]);

/** A response body as a Node stream (undici's body, or a dispatch handler's {@link Readable}). */
export type ResponseBody = Readable;

/**
 * Builds the synthetic JSON-RPC error response a transport delivers for a request whose HTTP
 * exchange failed: `error.code` is the JSON-RPC code of `code` in the error table,
 * `error.data.code` the {@link ErrorCode} itself, plus `data` (e.g. `status`).
 */
export function upstreamErrorResponse(
  id: JsonRpcId,
  code: ErrorCode,
  message: string,
  data?: Record<string, unknown>,
): JsonRpcErrorResponse {
  const error = new GatewayError(code, message, data === undefined ? undefined : { data });
  return { jsonrpc: '2.0', id, error: error.toJsonRpcError() };
}

/**
 * Maps a network-level failure (undici or Node socket error) to a GatewayError:
 * `SWB_ERR_UPSTREAM_TIMEOUT` for header/body timeouts, `SWB_ERR_UPSTREAM_UNAVAILABLE` otherwise
 * (refused, reset, DNS …). The message names the target and the error code.
 */
export function networkFailure(target: string, err: unknown): GatewayError {
  if (err instanceof GatewayError) return err;
  let e = err as (Error & { code?: string }) | undefined;
  // Happy-eyeballs connects report an AggregateError whose own message is empty.
  if (e instanceof AggregateError && e.errors.length > 0) e = e.errors[0] as Error & { code?: string };
  // A refusal of the connection's own lookup (the destination policy) keeps its code.
  if (e instanceof GatewayError) return e;
  const code = e?.code;
  const detail = [code, e?.message].filter((s) => s !== undefined && s !== '').join(' ') || String(err);
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT' || code === 'UND_ERR_CONNECT_TIMEOUT') {
    return new GatewayError('SWB_ERR_UPSTREAM_TIMEOUT', `${target}: timed out (${detail})`, { cause: err });
  }
  return new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `${target}: ${detail}`, { cause: err });
}

/**
 * Reads at most `limit` bytes of a body as text and discards the rest (the connection is then
 * closed rather than drained). Never throws: a failing body yields what was read so far.
 */
export async function readBodyExcerpt(body: ResponseBody, limit = EXCERPT_BYTES): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of body as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      if (size >= limit) break;
    }
  } catch {
    // keep what we have
  }
  if (!body.destroyed) body.destroy();
  const text = Buffer.concat(chunks, size).toString('utf8', 0, Math.min(size, limit));
  return size > limit ? `${text}…` : text;
}

/** The media type of a `Content-Type` header, lower-cased, without parameters (`''` if absent). */
export function mediaTypeOf(header: string | string[] | undefined): string {
  const value = Array.isArray(header) ? header[0] : header;
  if (value === undefined) return '';
  const semi = value.indexOf(';');
  return (semi === -1 ? value : value.slice(0, semi)).trim().toLowerCase();
}

/** Normalises configured static headers: lower-case names, transport-owned names removed. */
export function staticHeaders(headers: Readonly<Record<string, string>> | undefined): Record<string, string> {
  const out: Record<string, string> = {};
  if (headers === undefined) return out;
  for (const [name, value] of Object.entries(headers)) {
    const lower = name.toLowerCase();
    if (!OWNED_HEADERS.has(lower)) out[lower] = value;
  }
  return out;
}

/** `origin + pathname` of a URL: what logs and descriptions show (no credentials, no query). */
export function safeUrl(url: URL): string {
  return `${url.origin}${url.pathname}`;
}

/** `SWB_ERR_UPSTREAM_CLOSED` for a send on a transport that is closed. */
export function closedTransportError(description: string): GatewayError {
  return new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `${description}: transport closed`);
}

/**
 * Logs (warn, with its first 200 characters) and returns the `SWB_ERR_UPSTREAM_PROTOCOL` error for
 * data an upstream sent that is not a valid message. The error's message names the reason only:
 * what an upstream sends is never quoted to the gateway's clients (an upstream reached on a
 * client's behalf could be any HTTP service).
 */
export function protocolError(logger: Logger, description: string, reason: string, data: string): GatewayError {
  logger.warn({ excerpt: excerptOf(data) }, reason);
  return new GatewayError('SWB_ERR_UPSTREAM_PROTOCOL', `${description}: ${reason}`);
}

/** The first 200 characters of `text` (`…` appended when cut): what logs quote of an upstream's data. */
export function excerptOf(text: string): string {
  return text.length > PROTOCOL_EXCERPT_CHARS ? `${text.slice(0, PROTOCOL_EXCERPT_CHARS)}…` : text;
}

/**
 * The `SWB_ERR_UPSTREAM_HTTP` error for a non-2xx answer: the message and `data` carry the HTTP
 * status only. The body excerpt is logged (warn) and never reaches a client.
 */
export function httpStatusError(
  logger: Logger,
  description: string,
  what: string,
  status: number,
  excerpt: string,
): GatewayError {
  logger.warn({ status, excerpt: excerptOf(excerpt) }, `upstream ${what} answered HTTP ${status}`);
  return new GatewayError('SWB_ERR_UPSTREAM_HTTP', `${description}: ${what} answered HTTP ${status}`, {
    data: { status },
  });
}

/** Calls a transport's `onclose` handler; a handler that throws is logged, never propagated. */
export function notifyClose(
  logger: Logger,
  onclose: ((info: TransportCloseInfo) => void) | undefined,
  info: TransportCloseInfo,
): void {
  try {
    onclose?.(info);
  } catch (err) {
    logger.error({ err }, 'onclose handler threw');
  }
}
