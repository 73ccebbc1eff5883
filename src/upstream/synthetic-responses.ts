/**
 * The JSON-RPC error responses an upstream connection answers a request with when the upstream
 * cannot: the connection closed (or lost its 2025 session), the request timed out, or it waited
 * too long for exclusive admission on a shared stdio child. Each carries its GatewayError code in
 * `error.data.code`, so the client always gets an answer with a stable code.
 *
 * @module
 */
import { ERROR_CODES } from '../errors.js';
import { errorResponse, type JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { TransportCloseInfo } from './transport.js';

/**
 * The answer to a request on a closed connection of upstream `name`: `SWB_ERR_UPSTREAM_SESSION_EXPIRED`
 * when the upstream dropped its session (HTTP 404, transports §Session Management), else
 * `SWB_ERR_UPSTREAM_CLOSED` naming why (the error, the exit code or signal).
 */
export function closedResponse(
  name: string,
  upstreamId: number,
  info: TransportCloseInfo | undefined,
): JsonRpcResponse {
  if (info?.sessionExpired) {
    return errorResponse(
      upstreamId,
      ERROR_CODES.SWB_ERR_UPSTREAM_SESSION_EXPIRED.jsonRpcCode,
      `upstream "${name}" lost its session`,
      { code: 'SWB_ERR_UPSTREAM_SESSION_EXPIRED' },
    );
  }
  const why =
    info?.error?.message ??
    (info?.exitCode !== undefined || info?.signal
      ? `exited with ${info.signal ? `signal ${info.signal}` : `code ${info.exitCode}`}`
      : 'connection closed');
  return errorResponse(
    upstreamId,
    ERROR_CODES.SWB_ERR_UPSTREAM_CLOSED.jsonRpcCode,
    `upstream "${name}" is unavailable: ${why}`,
    { code: 'SWB_ERR_UPSTREAM_CLOSED' },
  );
}

/** `SWB_ERR_UPSTREAM_TIMEOUT`: upstream `name` did not answer `method` within `ms` milliseconds. */
export function timeoutResponse(name: string, upstreamId: number, method: string, ms: number): JsonRpcResponse {
  return errorResponse(
    upstreamId,
    ERROR_CODES.SWB_ERR_UPSTREAM_TIMEOUT.jsonRpcCode,
    `upstream "${name}" did not answer ${method} within ${ms} ms`,
    { code: 'SWB_ERR_UPSTREAM_TIMEOUT' },
  );
}

/** `SWB_ERR_ROUTE_ATTRIBUTION_TIMEOUT`: a call waited `waitMs` milliseconds for another client's on a shared child. */
export function attributionTimeoutResponse(name: string, upstreamId: number, waitMs: number): JsonRpcResponse {
  return errorResponse(
    upstreamId,
    ERROR_CODES.SWB_ERR_ROUTE_ATTRIBUTION_TIMEOUT.jsonRpcCode,
    `waited ${waitMs} ms for another client's call on the shared upstream "${name}" to finish`,
    { code: 'SWB_ERR_ROUTE_ATTRIBUTION_TIMEOUT' },
  );
}
