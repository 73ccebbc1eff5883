/**
 * One error class and one table of codes for the whole gateway (STYLE.md "Errors").
 *
 * Three families are kept apart by how they are used, not by class:
 * - JSON-RPC errors on the wire (`jsonRpcCode` set, HTTP status usually 200 or 4xx),
 * - HTTP errors answered before any JSON-RPC processing (status 4xx/5xx),
 * - startup/config errors, printed by the CLI and never sent to a client.
 *
 * @module
 */
import {
  JSONRPC_INTERNAL_ERROR,
  JSONRPC_INVALID_PARAMS,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_METHOD_NOT_FOUND,
  JSONRPC_PARSE_ERROR,
  JSONRPC_SERVER_ERROR,
  MCP_RESOURCE_NOT_FOUND,
} from './protocol/jsonrpc.js';

/** Static description of one error code. */
export interface ErrorSpec {
  /** HTTP status used when the error ends an HTTP exchange. */
  status: number;
  /** JSON-RPC error code used when the error is sent as a JSON-RPC error response. */
  jsonRpcCode: number;
  /** Whether the message may be shown to the client (5xx details are logged, not returned). */
  expose: boolean;
}

/** Every error code the gateway raises. Keys are stable API: tests and clients rely on them. */
export const ERROR_CODES = {
  // HTTP edge
  SWB_ERR_HTTP_PARSE: { status: 400, jsonRpcCode: JSONRPC_PARSE_ERROR, expose: true },
  SWB_ERR_HTTP_INVALID_REQUEST: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_BODY_TOO_LARGE: { status: 413, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_NOT_ACCEPTABLE: { status: 406, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE: { status: 415, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_METHOD_NOT_ALLOWED: { status: 405, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_FORBIDDEN_ORIGIN: { status: 403, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_FORBIDDEN_HOST: { status: 403, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_NOT_FOUND: { status: 404, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_CONFLICT: { status: 409, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_BAD_PROTOCOL_VERSION: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** A path segment with a malformed percent-escape (RFC 3986 §2.1), e.g. `/servers/%ZZ/mcp`. */
  SWB_ERR_HTTP_BAD_PATH: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** A body nesting objects/arrays deeper than `http.maxJsonDepth`; refused before it is parsed. */
  SWB_ERR_HTTP_TOO_DEEP: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** The client aborted the request before its body was complete (nobody is left to answer). */
  SWB_ERR_HTTP_BODY_ABORTED: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  // Sessions
  SWB_ERR_SESSION_REQUIRED: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_SESSION_NOT_FOUND: { status: 404, jsonRpcCode: JSONRPC_SERVER_ERROR - 1, expose: true },
  SWB_ERR_SESSION_NOT_INITIALIZED: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_SESSION_STREAM_CONFLICT: { status: 409, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** `sessions.maxSessions` are open; `data.retryAfterMs` says when the first of them expires. */
  SWB_ERR_SESSION_LIMIT: { status: 503, jsonRpcCode: JSONRPC_SERVER_ERROR, expose: true },
  /**
   * The principal already holds `sessions.maxPerPrincipal` sessions. 429 (RFC 6585 §4), not 503:
   * the limit is the caller's own, the gateway is not overloaded. `data.retryAfterMs` says when
   * the first of its sessions expires; closing one (DELETE) frees a slot at once.
   */
  SWB_ERR_SESSION_PRINCIPAL_LIMIT: { status: 429, jsonRpcCode: JSONRPC_SERVER_ERROR - 2, expose: true },
  SWB_ERR_SESSION_EVENT_EXPIRED: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /**
   * A request whose id is the id of a request of the same session still in flight (MCP
   * basic §Requests: an id is never reused by the requestor within a session).
   */
  SWB_ERR_SESSION_DUPLICATE_ID: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  // Routing
  SWB_ERR_ROUTE_UNKNOWN_TOOL: { status: 200, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  SWB_ERR_ROUTE_UNKNOWN_PROMPT: { status: 200, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  SWB_ERR_ROUTE_UNKNOWN_RESOURCE: { status: 200, jsonRpcCode: MCP_RESOURCE_NOT_FOUND, expose: true },
  SWB_ERR_ROUTE_UNKNOWN_METHOD: { status: 200, jsonRpcCode: JSONRPC_METHOD_NOT_FOUND, expose: true },
  SWB_ERR_ROUTE_INVALID_CURSOR: { status: 200, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  SWB_ERR_ROUTE_NO_CALLER: { status: 200, jsonRpcCode: JSONRPC_SERVER_ERROR - 10, expose: true },
  SWB_ERR_ROUTE_CLIENT_CAPABILITY: { status: 200, jsonRpcCode: JSONRPC_SERVER_ERROR - 11, expose: true },
  SWB_ERR_ROUTE_ATTRIBUTION_TIMEOUT: { status: 200, jsonRpcCode: JSONRPC_SERVER_ERROR - 12, expose: true },
  // Upstreams
  SWB_ERR_UPSTREAM_UNAVAILABLE: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 20, expose: true },
  SWB_ERR_UPSTREAM_CLOSED: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 21, expose: true },
  SWB_ERR_UPSTREAM_TIMEOUT: { status: 504, jsonRpcCode: JSONRPC_SERVER_ERROR - 22, expose: true },
  SWB_ERR_UPSTREAM_PROTOCOL: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 23, expose: true },
  SWB_ERR_UPSTREAM_PROCESS_LIMIT: { status: 503, jsonRpcCode: JSONRPC_SERVER_ERROR - 24, expose: true },
  SWB_ERR_UPSTREAM_SESSION_EXPIRED: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 25, expose: true },
  SWB_ERR_UPSTREAM_HTTP: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 26, expose: true },
  /** Switchboard could not obtain its own credential for an upstream (e.g. an RFC 6749 §4.4 token request failed). */
  SWB_ERR_UPSTREAM_AUTH: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 27, expose: true },
  /** The upstream's `maxInFlight` slots are taken and its wait queue is full, or the wait exceeded `queueTimeout`. */
  SWB_ERR_UPSTREAM_BUSY: { status: 503, jsonRpcCode: JSONRPC_SERVER_ERROR - 28, expose: true },
  /**
   * One message could not be serialised for the upstream (`JSON.stringify` failed, e.g. on
   * nesting too deep for the stack). Fails that request only; the connection stays up.
   */
  SWB_ERR_UPSTREAM_UNSERIALISABLE: { status: 400, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  /**
   * A runtime server's URL (or token endpoint) is, or resolves to, an address the destination
   * policy refuses (loopback, link-local, the gateway itself …; `runtimeServers.allowDestinations`).
   */
  SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 29, expose: true },
  // Traffic control (rate limits)
  /** Over a `rateLimits` rule; `data.retryAfterMs` and `data.rule` say when to retry and which rule. */
  SWB_ERR_RATE_LIMITED: { status: 429, jsonRpcCode: JSONRPC_SERVER_ERROR - 50, expose: true },
  /** The shared rate-limit store (Redis) failed and `rateLimiting.failOpen` is false. */
  SWB_ERR_RATE_LIMIT_UNAVAILABLE: { status: 503, jsonRpcCode: JSONRPC_SERVER_ERROR - 51, expose: true },
  // Guardrails (src/guardrails): JSON-RPC errors on the wire (HTTP 200), outside the reserved
  // range -32768 … -32000; `data.guardrail` names the guardrail.
  /**
   * A guardrail refused the request or its result (a `deny`/`denyResult` expression, the
   * external guard's `allow: false`, a changed tool under `pinTools: block`). The message and
   * `data.guardrail` name the guardrail; `data.reason` carries the external guard's reason.
   */
  SWB_ERR_GUARDRAIL_DENIED: { status: 200, jsonRpcCode: -31001, expose: true },
  /**
   * A guardrail could not decide (the external guard timed out, refused the connection, answered
   * a non-2xx status or malformed JSON) and its `onError` is `deny`. `data.guardrail` names it.
   */
  SWB_ERR_GUARDRAIL_UNAVAILABLE: { status: 200, jsonRpcCode: -31002, expose: true },
  // Config / startup (printed, never sent)
  SWB_ERR_CONFIG_INVALID: { status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  SWB_ERR_CONFIG_READ: { status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  SWB_ERR_CONFIG_INTERPOLATION: { status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  SWB_ERR_STARTUP_INSECURE_BIND: { status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  // Identity
  SWB_ERR_AUTH_FORBIDDEN: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 30, expose: true },
  SWB_ERR_AUTH_MISSING_TOKEN: { status: 401, jsonRpcCode: JSONRPC_SERVER_ERROR - 31, expose: true },
  SWB_ERR_AUTH_INVALID_TOKEN: { status: 401, jsonRpcCode: JSONRPC_SERVER_ERROR - 32, expose: true },
  SWB_ERR_AUTH_REVOKED_TOKEN: { status: 401, jsonRpcCode: JSONRPC_SERVER_ERROR - 33, expose: true },
  SWB_ERR_AUTH_EXPIRED_TOKEN: { status: 401, jsonRpcCode: JSONRPC_SERVER_ERROR - 34, expose: true },
  SWB_ERR_AUTH_INSUFFICIENT_SCOPE: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 35, expose: true },
  SWB_ERR_AUTH_UNAVAILABLE: { status: 503, jsonRpcCode: JSONRPC_SERVER_ERROR - 36, expose: true },
  SWB_ERR_AUTH_OUT_OF_SCOPE: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 37, expose: true },
  // Token delegation (a minted token never reaches further than its creator); one JSON-RPC code
  // for the family, the SWB code names what was too wide (`data` lists it).
  /** A permission the creating credential does not hold (`data.permissions`). */
  SWB_ERR_AUTH_DELEGATION_PERMISSIONS: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 38, expose: true },
  /** A token for another subject, asked for by a principal that is not an admin (`data.subject`). */
  SWB_ERR_AUTH_DELEGATION_SUBJECT: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 38, expose: true },
  /** Servers outside the creating token's server scope (`data.servers`, `data.allowed`). */
  SWB_ERR_AUTH_DELEGATION_SERVERS: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 38, expose: true },
  /** Tool patterns outside the creating token's tool scope (`data.tools`, `data.allowed`). */
  SWB_ERR_AUTH_DELEGATION_TOOLS: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 38, expose: true },
  /** An expiry later than the creating token's own (`data.expiresAt`, `data.latest`). */
  SWB_ERR_AUTH_DELEGATION_EXPIRY: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 38, expose: true },
  /** The creating token is already at the end of the longest allowed chain of minted tokens. */
  SWB_ERR_AUTH_DELEGATION_DEPTH: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 38, expose: true },
  /** Only `admin.*` may create, change or delete a runtime stdio server (`command`, `args`, `cwd`, `env`): it runs as the gateway's user. */
  SWB_ERR_AUTH_ADMIN_REQUIRED: { status: 403, jsonRpcCode: JSONRPC_SERVER_ERROR - 39, expose: true },
  // Storage (the database behind tokens, runtime servers and settings)
  SWB_ERR_STORE_UNAVAILABLE: { status: 503, jsonRpcCode: JSONRPC_SERVER_ERROR - 40, expose: false },
  SWB_ERR_STORE_CONFLICT: { status: 409, jsonRpcCode: JSONRPC_SERVER_ERROR - 41, expose: true },
  SWB_ERR_STORE_MIGRATION: { status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  // Reverse tunnel (src/tunnel)
  /** A tunnel frame that is not JSON, too large, of an unknown type or of the wrong shape; answered with an `error` frame. */
  SWB_ERR_TUNNEL_INVALID_MESSAGE: { status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** `register` refused: invalid server name, a name clash, or a second `register` on one session. */
  SWB_ERR_TUNNEL_REGISTER_REFUSED: { status: 409, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** A JSON-RPC message or operator request on a tunnel session that has not registered yet. */
  SWB_ERR_TUNNEL_NOT_REGISTERED: { status: 409, jsonRpcCode: JSONRPC_SERVER_ERROR - 60, expose: true },
  /** No tunnel session with that id (operator endpoints). */
  SWB_ERR_TUNNEL_SESSION_NOT_FOUND: { status: 404, jsonRpcCode: JSONRPC_SERVER_ERROR - 61, expose: true },
  /** The tunnel session closed (dropped, unregistered, evicted, disconnected) before the answer came. */
  SWB_ERR_TUNNEL_CLOSED: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 62, expose: true },
  /** An operator request through a tunnel got no response in time. */
  SWB_ERR_TUNNEL_TIMEOUT: { status: 504, jsonRpcCode: JSONRPC_SERVER_ERROR - 63, expose: true },
  /** The tunnel client could not connect or was refused by the gateway (CLI; printed, never sent). */
  SWB_ERR_TUNNEL_CONNECT: { status: 502, jsonRpcCode: JSONRPC_SERVER_ERROR - 64, expose: true },
  // Catch-all
  SWB_ERR_INTERNAL: { status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
} as const satisfies Record<string, ErrorSpec>;

/** A stable gateway error code, e.g. `SWB_ERR_SESSION_NOT_FOUND`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The one error class of the gateway. Carries a stable {@link ErrorCode}; status, JSON-RPC code
 * and exposure come from {@link ERROR_CODES}.
 */
export class GatewayError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly jsonRpcCode: number;
  readonly expose: boolean;
  /** Extra, client-safe detail placed in JSON-RPC `error.data`. */
  readonly data: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; data?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    const spec: ErrorSpec = ERROR_CODES[code];
    this.name = 'GatewayError';
    this.code = code;
    this.status = spec.status;
    this.jsonRpcCode = spec.jsonRpcCode;
    this.expose = spec.expose;
    this.data = options?.data;
  }

  /** The JSON-RPC `error` object for this error; hides the message when not exposable. */
  toJsonRpcError(): { code: number; message: string; data: Record<string, unknown> } {
    return {
      code: this.jsonRpcCode,
      message: this.expose ? this.message : 'Internal error',
      data: { code: this.code, ...this.data },
    };
  }
}

/** Narrowing helper. */
export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}
