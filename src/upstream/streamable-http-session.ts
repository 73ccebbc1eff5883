/**
 * The session of a Streamable HTTP upstream (MCP basic/transports §Session Management): the
 * `Mcp-Session-Id` the server issues with its initialize response, recognising that the server
 * lost it (404 to a request that carried it), and ending it with `DELETE` when the transport
 * closes.
 *
 * @module
 */
import type { Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { MODERN_ERROR_CODES } from '../protocol/era.js';
import { excerptOf, httpStatusError, readBodyExcerpt, type ResponseBody } from './http-common.js';
import type { HttpFailure } from './streamable-http-exchange.js';

/** How long close() waits for the DELETE that ends the session. */
const DELETE_TIMEOUT_MS = 5000;
/** Visible ASCII only (MCP: the session id MUST consist of 0x21–0x7E). */
const SESSION_ID_RE = /^[\x21-\x7e]+$/;

function firstHeader(value: string | string[] | undefined): string | undefined {
  return Array.isArray(value) ? value[0] : value;
}

/**
 * The session id of an initialize response's `Mcp-Session-Id` header; undefined (logged) when it
 * is absent or has characters outside 0x21–0x7E.
 */
export function acceptSessionId(header: string | string[] | undefined, logger: Logger): string | undefined {
  const value = firstHeader(header);
  if (value === undefined) return undefined;
  if (!SESSION_ID_RE.test(value)) {
    logger.warn('upstream sent an Mcp-Session-Id with characters outside 0x21-0x7E; ignored');
    return undefined;
  }
  logger.debug({ sessionId: value }, 'upstream session established');
  return value;
}

/**
 * Turns a non-2xx response into a GatewayError. A 404 to a request that carried a session id
 * means the upstream lost the session (`SWB_ERR_UPSTREAM_SESSION_EXPIRED`); with
 * `sessionExpiredOn400`, so does a 400 whose body mentions the session (SDK v1 servers).
 */
export async function classifyHttpFailure(
  res: { readonly statusCode: number; readonly body: ResponseBody },
  sentSession: string | undefined,
  logger: Logger,
  description: string,
  sessionExpiredOn400: boolean,
): Promise<HttpFailure> {
  const status = res.statusCode;
  // The body is read for the log and to recognise a lost session; the error carries the status
  // only (message and data), so nothing an upstream answers is shown to a client.
  const excerpt = await readBodyExcerpt(res.body);
  const data = { status };
  const sessionExpired =
    sentSession !== undefined &&
    (status === 404 || (status === 400 && sessionExpiredOn400 && /session/i.test(excerpt)));
  if (sessionExpired) {
    logger.debug({ status, excerpt: excerptOf(excerpt) }, 'upstream no longer knows the session');
    return {
      sessionExpired,
      error: new GatewayError(
        'SWB_ERR_UPSTREAM_SESSION_EXPIRED',
        `${description}: upstream no longer knows session (HTTP ${status})`,
        { data },
      ),
    };
  }
  const error = httpStatusError(logger, description, 'request', status, excerpt);
  const modern = status >= 400 && status < 500 ? modernErrorOf(excerpt) : undefined;
  if (modern === undefined) return { sessionExpired, error };
  // A modern server's refusal (basic/versioning §Backward Compatibility): its code and the
  // versions it supports are kept, nothing else of the body.
  return {
    sessionExpired,
    error: new GatewayError('SWB_ERR_UPSTREAM_HTTP', error.message, { data: { status, ...modern } }),
  };
}

/**
 * The modern-era JSON-RPC error (-32020, -32021, -32022) an HTTP 4xx body carries, as
 * `{ modernError: code, supported? }`; undefined for any other body.
 */
export function modernErrorOf(body: string): { modernError: number; supported?: string[] } | undefined {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return undefined;
  }
  const error = (parsed as { error?: { code?: unknown; data?: { supported?: unknown } } } | null)?.error;
  if (typeof error?.code !== 'number' || !MODERN_ERROR_CODES.has(error.code)) return undefined;
  const supported = error.data?.supported;
  return Array.isArray(supported) && supported.every((v) => typeof v === 'string')
    ? { modernError: error.code, supported: supported }
    : { modernError: error.code };
}

/**
 * Ends the session with `DELETE` (MCP: clients that no longer need a session SHOULD end it;
 * 405 means the server does not allow it, 404 that it is gone already). Never throws; waits at
 * most 5 s.
 */
export async function deleteSession(
  dispatcher: Dispatcher,
  origin: string,
  path: string,
  headers: Record<string, string>,
  logger: Logger,
): Promise<void> {
  try {
    const res = await dispatcher.request({
      origin,
      path,
      method: 'DELETE',
      headers,
      signal: AbortSignal.timeout(DELETE_TIMEOUT_MS),
      headersTimeout: DELETE_TIMEOUT_MS,
      bodyTimeout: DELETE_TIMEOUT_MS,
    });
    await res.body.dump().catch(() => undefined);
    if (res.statusCode >= 300 && res.statusCode !== 404 && res.statusCode !== 405) {
      logger.debug({ status: res.statusCode }, 'upstream refused session DELETE');
    }
  } catch (err) {
    logger.debug({ err }, 'session DELETE failed');
  }
}
