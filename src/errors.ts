/**
 * One error class and one table of codes for the whole gateway.
 *
 * Every code belongs to one family, and the family — not the place that throws — decides how a
 * client learns of the error ({@link encodeError}):
 * - `'http'`: answered with the code's HTTP status (and a JSON-RPC error body with id null or the
 *   request's id, MCP transports §Streamable HTTP) when the HTTP response has not started, e.g.
 *   401/403/404/413/415/429; once a stream carries the answer, as a JSON-RPC error on it;
 * - `'jsonrpc'`: always a JSON-RPC error response (JSON-RPC 2.0 §5.1) in the body or on the
 *   stream, inside an HTTP 200; `status` only serves the REST APIs (`/api/v1/…`) and says whether
 *   the error is a refusal (4xx) or a failure (5xx) for logs, metrics and the usage log;
 * - `'config'`: startup and configuration errors, printed by the CLI and never sent to a client
 *   (one that reaches a request anyway is answered as `SWB_ERR_INTERNAL`).
 *
 * A message is shown to the client only when its code is `expose`d; otherwise the client gets the
 * code's `publicMessage` and the `data` fields listed in `publicData`, and the detail (a child's
 * command line, an upstream URL, a driver error) stays in the log. 5xx details are logged, not
 * returned.
 *
 * Size: over 500 lines: the table of every code is kept in one place (docs/errors.md lists it).
 *
 * @module
 */
import {
  MCP_HEADER_MISMATCH,
  MCP_MISSING_CLIENT_CAPABILITY,
  MCP_UNSUPPORTED_PROTOCOL_VERSION,
} from './protocol/era.js';
import type { JsonRpcErrorObject, JsonRpcErrorResponse, JsonRpcId, JsonRpcMessage } from './protocol/jsonrpc.js';
import {
  JSONRPC_INTERNAL_ERROR,
  JSONRPC_INVALID_PARAMS,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_METHOD_NOT_FOUND,
  JSONRPC_PARSE_ERROR,
  JSONRPC_REQUEST_CANCELLED,
  SWITCHBOARD_ERROR_BASE,
  MCP_RESOURCE_NOT_FOUND,
} from './protocol/jsonrpc.js';

/** How a client learns of an error: see the module comment. */
export type ErrorFamily = 'http' | 'jsonrpc' | 'config';

/** Static description of one error code. */
export interface ErrorSpec {
  /** How the error reaches a client (HTTP status, JSON-RPC error, or never). */
  readonly family: ErrorFamily;
  /**
   * HTTP status: what an `'http'` error is answered with on an MCP endpoint, and what any error is
   * answered with by the REST APIs. 4xx marks a refusal, 5xx a failure.
   */
  readonly status: number;
  /** JSON-RPC error code used when the error is sent as a JSON-RPC error (response or body). */
  readonly jsonRpcCode: number;
  /** Whether the message may be shown to the client (5xx details are logged, not returned). */
  readonly expose: boolean;
  /** What the client is told instead of the message when `expose` is false. Default `Internal error`. */
  readonly publicMessage?: string;
  /** `data` fields the client still gets when `expose` is false (the code itself always). */
  readonly publicData?: readonly string[];
}

/** Every error code the gateway raises. Keys are stable API: tests and clients rely on them. */
export const ERROR_CODES = {
  // HTTP edge
  SWB_ERR_HTTP_PARSE: { family: 'http', status: 400, jsonRpcCode: JSONRPC_PARSE_ERROR, expose: true },
  SWB_ERR_HTTP_INVALID_REQUEST: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_BODY_TOO_LARGE: { family: 'http', status: 413, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_NOT_ACCEPTABLE: { family: 'http', status: 406, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE: {
    family: 'http',
    status: 415,
    jsonRpcCode: JSONRPC_INVALID_REQUEST,
    expose: true,
  },
  SWB_ERR_HTTP_METHOD_NOT_ALLOWED: { family: 'http', status: 405, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_FORBIDDEN_ORIGIN: { family: 'http', status: 403, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_FORBIDDEN_HOST: { family: 'http', status: 403, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_NOT_FOUND: { family: 'http', status: 404, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_CONFLICT: { family: 'http', status: 409, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_HTTP_BAD_PROTOCOL_VERSION: {
    family: 'http',
    status: 400,
    jsonRpcCode: JSONRPC_INVALID_REQUEST,
    expose: true,
  },
  /** A path segment with a malformed percent-escape (RFC 3986 §2.1), e.g. `/servers/%ZZ/mcp`. */
  SWB_ERR_HTTP_BAD_PATH: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** A body nesting objects/arrays deeper than `http.maxJsonDepth`; refused before it is parsed. */
  SWB_ERR_HTTP_TOO_DEEP: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** The client aborted the request before its body was complete (nobody is left to answer). */
  SWB_ERR_HTTP_BODY_ABORTED: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  // Sessions
  // The modern era's front door (MCP 2026-07-28, stateless requests): the specification's own
  // codes and HTTP statuses.
  /**
   * A mirrored header (`MCP-Protocol-Version`, `Mcp-Method`, `Mcp-Name`) is missing, malformed or
   * does not match the body: 400 `HeaderMismatch` (transports §Server Validation).
   */
  SWB_ERR_HTTP_HEADER_MISMATCH: { family: 'http', status: 400, jsonRpcCode: MCP_HEADER_MISMATCH, expose: true },
  /**
   * A modern request without a required `_meta` field (`io.modelcontextprotocol/protocolVersion`,
   * `io.modelcontextprotocol/clientCapabilities`): 400, Invalid params (basic §`_meta`).
   */
  SWB_ERR_PROTOCOL_MISSING_META: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  /**
   * A protocol version the gateway does not serve; `data.supported` lists those it does, newest
   * first, and `data.requested` repeats the request's (versioning §Protocol Version Negotiation).
   */
  SWB_ERR_PROTOCOL_UNSUPPORTED_VERSION: {
    family: 'http',
    status: 400,
    jsonRpcCode: MCP_UNSUPPORTED_PROTOCOL_VERSION,
    expose: true,
  },
  /**
   * A modern request for a method that era does not have (`ping`, `logging/setLevel`, …) or that
   * the gateway does not serve: 404 with Method not found (transports §Protocol Version Header).
   */
  SWB_ERR_PROTOCOL_METHOD_NOT_FOUND: {
    family: 'http',
    status: 404,
    jsonRpcCode: JSONRPC_METHOD_NOT_FOUND,
    expose: true,
  },
  /**
   * A retry's `requestState` is malformed, unknown, spent, expired, or was issued to another
   * principal or for another request: 400, Invalid params (basic/patterns/mrtr §Server
   * Requirements).
   */
  SWB_ERR_PROTOCOL_INVALID_STATE: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  /**
   * A modern request needs a client capability it did not declare (its upstream asked for
   * sampling, elicitation or roots, or a `tasks/*` request without the tasks extension): 400
   * `MissingRequiredClientCapability`, with `data.requiredCapabilities` (basic §`_meta`).
   */
  SWB_ERR_PROTOCOL_MISSING_CAPABILITY: {
    family: 'http',
    status: 400,
    jsonRpcCode: MCP_MISSING_CLIENT_CAPABILITY,
    expose: true,
  },
  SWB_ERR_SESSION_REQUIRED: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_SESSION_NOT_FOUND: { family: 'http', status: 404, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 1, expose: true },
  SWB_ERR_SESSION_NOT_INITIALIZED: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  SWB_ERR_SESSION_STREAM_CONFLICT: { family: 'http', status: 409, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** `sessions.maxSessions` are open; `data.retryAfterMs` says when the first of them expires. */
  SWB_ERR_SESSION_LIMIT: { family: 'http', status: 503, jsonRpcCode: SWITCHBOARD_ERROR_BASE, expose: true },
  /**
   * This replica is draining (SIGTERM): it opens no new session. 503 with `Retry-After`; another
   * replica opens it, and the sessions it already serves go on elsewhere (sealed session ids).
   */
  SWB_ERR_SESSION_DRAINING: { family: 'http', status: 503, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 2, expose: true },
  /**
   * The principal already holds `sessions.maxPerPrincipal` sessions. 429 (RFC 6585 §4), not 503:
   * the limit is the caller's own, the gateway is not overloaded. `data.retryAfterMs` says when
   * the first of its sessions expires; closing one (DELETE) frees a slot at once.
   */
  SWB_ERR_SESSION_PRINCIPAL_LIMIT: {
    family: 'http',
    status: 429,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 3,
    expose: true,
  },
  SWB_ERR_SESSION_EVENT_EXPIRED: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /**
   * A request whose id is the id of a request of the same session still in flight (MCP
   * basic §Requests: an id is never reused by the requestor within a session).
   */
  SWB_ERR_SESSION_DUPLICATE_ID: { family: 'jsonrpc', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  // Requests (JSON-RPC processing)
  /**
   * Params a method cannot use (JSON-RPC 2.0 §5.1 "Invalid params"), e.g. a `logging/setLevel`
   * level that is not one of RFC 5424's or a `completion/complete` without a usable `ref`.
   */
  SWB_ERR_PROTOCOL_INVALID_PARAMS: {
    family: 'jsonrpc',
    status: 200,
    jsonRpcCode: JSONRPC_INVALID_PARAMS,
    expose: true,
  },
  /**
   * The request was cancelled (MCP utilities/cancellation) or its session closed. Only ever the
   * answer of an upstream call inside the gateway: the client that cancelled gets no response.
   * Neither a refusal nor a failure, hence status 200.
   */
  SWB_ERR_CANCELLED: { family: 'jsonrpc', status: 200, jsonRpcCode: JSONRPC_REQUEST_CANCELLED, expose: true },
  // Routing
  SWB_ERR_ROUTE_UNKNOWN_TOOL: { family: 'jsonrpc', status: 200, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  SWB_ERR_ROUTE_UNKNOWN_PROMPT: { family: 'jsonrpc', status: 200, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  SWB_ERR_ROUTE_UNKNOWN_RESOURCE: { family: 'jsonrpc', status: 200, jsonRpcCode: MCP_RESOURCE_NOT_FOUND, expose: true },
  /**
   * A `tasks/*` request names a task id the gateway did not give this principal, or whose server
   * is no longer a member of the view it reaches (tasks extension: unknown `taskId` is -32602).
   */
  SWB_ERR_ROUTE_UNKNOWN_TASK: { family: 'jsonrpc', status: 200, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  SWB_ERR_ROUTE_UNKNOWN_METHOD: { family: 'jsonrpc', status: 200, jsonRpcCode: JSONRPC_METHOD_NOT_FOUND, expose: true },
  SWB_ERR_ROUTE_INVALID_CURSOR: { family: 'jsonrpc', status: 200, jsonRpcCode: JSONRPC_INVALID_PARAMS, expose: true },
  SWB_ERR_ROUTE_NO_CALLER: { family: 'jsonrpc', status: 200, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 10, expose: true },
  SWB_ERR_ROUTE_CLIENT_CAPABILITY: {
    family: 'jsonrpc',
    status: 200,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 11,
    expose: true,
  },
  SWB_ERR_ROUTE_ATTRIBUTION_TIMEOUT: {
    family: 'jsonrpc',
    status: 200,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 12,
    expose: true,
  },
  // Upstreams
  // The messages of the 5xx upstream codes name what the operator configured (a child's command
  // line, an upstream URL) and what a socket or spawn reported: logged, never sent.
  /** The upstream could not be started or reached (spawn failure, refused connection, failed initialize). */
  SWB_ERR_UPSTREAM_UNAVAILABLE: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 20,
    expose: false,
    publicMessage: 'Upstream unavailable',
  },
  /** The upstream's connection closed (child exited, stream ended) before it answered. */
  SWB_ERR_UPSTREAM_CLOSED: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 21,
    expose: false,
    publicMessage: 'Upstream unavailable: the connection closed',
  },
  /** No answer within the upstream's `timeout` (or a network timeout). */
  SWB_ERR_UPSTREAM_TIMEOUT: {
    family: 'jsonrpc',
    status: 504,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 22,
    expose: false,
    publicMessage: 'Upstream did not answer in time',
  },
  /** The upstream's answer broke the protocol (not JSON, wrong content type, bad SSE endpoint …). */
  SWB_ERR_UPSTREAM_PROTOCOL: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 23,
    expose: false,
    publicMessage: 'Upstream sent an invalid answer',
  },
  SWB_ERR_UPSTREAM_PROCESS_LIMIT: {
    family: 'jsonrpc',
    status: 503,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 24,
    expose: true,
  },
  /** A remote upstream lost its MCP session (404) and re-initialising did not help. */
  SWB_ERR_UPSTREAM_SESSION_EXPIRED: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 25,
    expose: false,
    publicMessage: 'Upstream session expired',
  },
  /** A remote upstream answered an HTTP error; `data.status` is its status (never its body). */
  SWB_ERR_UPSTREAM_HTTP: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 26,
    expose: false,
    publicMessage: 'Upstream answered with an HTTP error',
    publicData: ['status'],
  },
  /** Switchboard could not obtain its own credential for an upstream (e.g. an RFC 6749 §4.4 token request failed). */
  SWB_ERR_UPSTREAM_AUTH: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 27,
    expose: false,
    publicMessage: 'Switchboard could not obtain its credential for the upstream',
  },
  /**
   * An RFC 8693 token exchange for an upstream failed: the token endpoint refused it (`data.reason`
   * `refused`, with the RFC 6749 §5.2 `error` code in `data.error`), could not be reached or found
   * (`unreachable`, `discovery`), or answered something unusable (`invalid_response`).
   */
  SWB_ERR_UPSTREAM_TOKEN_EXCHANGE: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 65,
    expose: false,
    publicMessage: "Switchboard could not exchange the caller's token for the upstream",
    publicData: ['server', 'reason', 'error'],
  },
  /** An upstream with `auth.type: token-exchange` was called by a principal without an OAuth access token to exchange. */
  SWB_ERR_UPSTREAM_NO_SUBJECT_TOKEN: {
    family: 'jsonrpc',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 66,
    expose: true,
  },
  /**
   * An `auth.type: oauth2-user` upstream was called by a principal who has not connected to it
   * (or whose connection was revoked): `data.server`, and `data.authorizationUrl`, the gateway's
   * page where the user connects. Clients that declared URL-mode elicitation get the MCP
   * URL-elicitation-required error (-32042) instead (`gateway/url-elicitation.ts`).
   */
  SWB_ERR_UPSTREAM_NOT_CONNECTED: {
    family: 'jsonrpc',
    status: 401,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 67,
    expose: true,
  },
  /** The upstream's `maxInFlight` slots are taken and its wait queue is full, or the wait exceeded `queueTimeout`. */
  SWB_ERR_UPSTREAM_BUSY: { family: 'jsonrpc', status: 503, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 28, expose: true },
  /**
   * One message could not be serialised for the upstream (`JSON.stringify` failed, e.g. on
   * nesting too deep for the stack). Fails that request only; the connection stays up.
   */
  SWB_ERR_UPSTREAM_UNSERIALISABLE: {
    family: 'jsonrpc',
    status: 400,
    jsonRpcCode: JSONRPC_INVALID_PARAMS,
    expose: true,
  },
  /**
   * A runtime server's URL (or token endpoint) is, or resolves to, an address the destination
   * policy refuses (loopback, link-local, the gateway itself …; `runtimeServers.allowDestinations`).
   */
  SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION: {
    family: 'jsonrpc',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 29,
    expose: true,
  },
  /**
   * The upstream does not speak the protocol era its `protocol` setting requires: `modern` and
   * `server/discover` failed, or the upstream is modern but supports none of the modern versions
   * Switchboard speaks (it answered a modern error such as `UnsupportedProtocolVersion`).
   */
  SWB_ERR_UPSTREAM_ERA: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 42,
    expose: false,
    publicMessage: 'Upstream does not speak a protocol version Switchboard can use',
  },
  /**
   * A method the modern era removed was sent to a modern upstream as a call and has no local
   * answer (`resources/subscribe` and `resources/unsubscribe` outside the gateway's subscription
   * handling, which turns them into `subscriptions/listen` filters).
   */
  SWB_ERR_UPSTREAM_METHOD_REMOVED: {
    family: 'jsonrpc',
    status: 400,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 43,
    expose: true,
  },
  /**
   * A modern upstream's `resultType: "input_required"` (basic/patterns/mrtr) could not be answered
   * for a 2025-era client: the client lacks the capability, answered an input request with an
   * error, or the call took more than 8 rounds; or the upstream refused with
   * MissingRequiredClientCapability.
   */
  SWB_ERR_UPSTREAM_INPUT_REQUIRED: {
    family: 'jsonrpc',
    status: 502,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 44,
    expose: true,
  },
  /**
   * A modern upstream did not take a resource subscription: its capabilities declare no
   * `resources.subscribe`, or the acknowledgement of its `subscriptions/listen` stream left the
   * URI out (basic/patterns/subscriptions §Acknowledgment).
   */
  SWB_ERR_UPSTREAM_SUBSCRIPTION_REFUSED: {
    family: 'jsonrpc',
    status: 400,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 45,
    expose: true,
  },
  // Traffic control (rate limits)
  /**
   * Over a `rateLimits` rule (`data.retryAfterMs` and `data.rule` say when to retry and which rule),
   * or over the admin API's limit of open live streams (`GET /api/v1/live`; `data.retryAfterMs`).
   */
  SWB_ERR_RATE_LIMITED: { family: 'http', status: 429, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 50, expose: true },
  /** The shared rate-limit store (Redis) failed and `rateLimiting.failOpen` is false. */
  SWB_ERR_RATE_LIMIT_UNAVAILABLE: {
    family: 'http',
    status: 503,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 51,
    expose: true,
  },
  // Guardrails (src/guardrails): JSON-RPC errors on the wire (HTTP 200), outside the reserved
  // range -32768 … -32000; `data.guardrail` names the guardrail.
  /**
   * A guardrail refused the request or its result (a `deny`/`denyResult` expression, the
   * external guard's `allow: false`, a changed tool under `pinTools: block`). The message and
   * `data.guardrail` name the guardrail; `data.reason` carries the external guard's reason.
   */
  SWB_ERR_GUARDRAIL_DENIED: { family: 'jsonrpc', status: 200, jsonRpcCode: -31001, expose: true },
  /**
   * A guardrail could not decide (the external guard timed out, refused the connection, answered
   * a non-2xx status or malformed JSON) and its `onError` is `deny`. `data.guardrail` names it.
   */
  SWB_ERR_GUARDRAIL_UNAVAILABLE: { family: 'jsonrpc', status: 200, jsonRpcCode: -31002, expose: true },
  // Config / startup (printed by the CLI, never sent)
  SWB_ERR_CONFIG_INVALID: { family: 'config', status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  SWB_ERR_CONFIG_READ: { family: 'config', status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  SWB_ERR_CONFIG_INTERPOLATION: { family: 'config', status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  SWB_ERR_STARTUP_INSECURE_BIND: { family: 'config', status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  // Identity
  SWB_ERR_AUTH_FORBIDDEN: { family: 'http', status: 403, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 30, expose: true },
  SWB_ERR_AUTH_MISSING_TOKEN: { family: 'http', status: 401, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 31, expose: true },
  SWB_ERR_AUTH_INVALID_TOKEN: { family: 'http', status: 401, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 32, expose: true },
  SWB_ERR_AUTH_REVOKED_TOKEN: { family: 'http', status: 401, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 33, expose: true },
  SWB_ERR_AUTH_EXPIRED_TOKEN: { family: 'http', status: 401, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 34, expose: true },
  SWB_ERR_AUTH_INSUFFICIENT_SCOPE: {
    family: 'http',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 35,
    expose: true,
  },
  SWB_ERR_AUTH_UNAVAILABLE: { family: 'http', status: 503, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 36, expose: true },
  SWB_ERR_AUTH_OUT_OF_SCOPE: { family: 'http', status: 403, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 37, expose: true },
  // Token delegation (a minted token never reaches further than its creator); one JSON-RPC code
  // for the family, the SWB code names what was too wide (`data` lists it).
  /** A permission the creating credential does not hold (`data.permissions`). */
  SWB_ERR_AUTH_DELEGATION_PERMISSIONS: {
    family: 'http',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 38,
    expose: true,
  },
  /** A token for another subject, asked for by a principal that is not an admin (`data.subject`). */
  SWB_ERR_AUTH_DELEGATION_SUBJECT: {
    family: 'http',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 38,
    expose: true,
  },
  /** Servers outside the creating token's server scope (`data.servers`, `data.allowed`). */
  SWB_ERR_AUTH_DELEGATION_SERVERS: {
    family: 'http',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 38,
    expose: true,
  },
  /** Tool patterns outside the creating token's tool scope (`data.tools`, `data.allowed`). */
  SWB_ERR_AUTH_DELEGATION_TOOLS: {
    family: 'http',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 38,
    expose: true,
  },
  /** An expiry later than the creating token's own (`data.expiresAt`, `data.latest`). */
  SWB_ERR_AUTH_DELEGATION_EXPIRY: {
    family: 'http',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 38,
    expose: true,
  },
  /** The creating token is already at the end of the longest allowed chain of minted tokens. */
  SWB_ERR_AUTH_DELEGATION_DEPTH: {
    family: 'http',
    status: 403,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 38,
    expose: true,
  },
  /** Only `admin.*` may create, change or delete a runtime stdio server (`command`, `args`, `cwd`, `env`): it runs as the gateway's user. */
  SWB_ERR_AUTH_ADMIN_REQUIRED: { family: 'http', status: 403, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 39, expose: true },
  // Storage (the database behind tokens, runtime servers and settings)
  SWB_ERR_STORE_UNAVAILABLE: { family: 'http', status: 503, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 40, expose: false },
  SWB_ERR_STORE_CONFLICT: { family: 'http', status: 409, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 41, expose: true },
  SWB_ERR_STORE_MIGRATION: { family: 'config', status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
  // Reverse tunnel (src/tunnel). Refusals of a tunnel's own frames come before any JSON-RPC
  // processing, like the HTTP family: an `error` frame on the tunnel's WebSocket names the code.
  /** A tunnel frame that is not JSON, too large, of an unknown type or of the wrong shape; answered with an `error` frame. */
  SWB_ERR_TUNNEL_INVALID_MESSAGE: { family: 'http', status: 400, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** `register` refused: invalid server name, a name clash, or a second `register` on one session. */
  SWB_ERR_TUNNEL_REGISTER_REFUSED: { family: 'http', status: 409, jsonRpcCode: JSONRPC_INVALID_REQUEST, expose: true },
  /** A JSON-RPC message or operator request on a tunnel session that has not registered yet. */
  SWB_ERR_TUNNEL_NOT_REGISTERED: {
    family: 'http',
    status: 409,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 60,
    expose: true,
  },
  /** No tunnel session with that id (operator endpoints). */
  SWB_ERR_TUNNEL_SESSION_NOT_FOUND: {
    family: 'http',
    status: 404,
    jsonRpcCode: SWITCHBOARD_ERROR_BASE - 61,
    expose: true,
  },
  /** The tunnel session closed (dropped, unregistered, evicted, disconnected) before the answer came. */
  SWB_ERR_TUNNEL_CLOSED: { family: 'jsonrpc', status: 502, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 62, expose: true },
  /** An operator request through a tunnel got no response in time. */
  SWB_ERR_TUNNEL_TIMEOUT: { family: 'jsonrpc', status: 504, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 63, expose: true },
  /** The tunnel client could not connect or was refused by the gateway (CLI; printed, never sent). */
  SWB_ERR_TUNNEL_CONNECT: { family: 'config', status: 502, jsonRpcCode: SWITCHBOARD_ERROR_BASE - 64, expose: true },
  // Catch-all
  SWB_ERR_INTERNAL: { family: 'http', status: 500, jsonRpcCode: JSONRPC_INTERNAL_ERROR, expose: false },
} as const satisfies Record<string, ErrorSpec>;

/** A stable gateway error code, e.g. `SWB_ERR_SESSION_NOT_FOUND`. */
export type ErrorCode = keyof typeof ERROR_CODES;

/** True when `code` is one of {@link ERROR_CODES} (e.g. read from `error.data.code`). */
export function isErrorCode(code: unknown): code is ErrorCode {
  return typeof code === 'string' && Object.hasOwn(ERROR_CODES, code);
}

/**
 * The one error class of the gateway. Carries a stable {@link ErrorCode}; family, status, JSON-RPC
 * code and exposure come from {@link ERROR_CODES}. Throw it anywhere; {@link encodeError} decides
 * what the client sees.
 */
export class GatewayError extends Error {
  /** The stable code, sent to clients as `error.data.code`. */
  readonly code: ErrorCode;
  /** How a client learns of it: see {@link ErrorFamily}. */
  readonly family: ErrorFamily;
  /** The code's HTTP status ({@link ErrorSpec.status}). */
  readonly status: number;
  /** The code's JSON-RPC error code. */
  readonly jsonRpcCode: number;
  /** Whether {@link Error.message} may be shown to a client. */
  readonly expose: boolean;
  /** Extra detail placed in JSON-RPC `error.data` (for a code not exposed, only its `publicData` fields reach a client). */
  readonly data: Record<string, unknown> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; data?: Record<string, unknown> }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    const spec: ErrorSpec = ERROR_CODES[code];
    this.name = 'GatewayError';
    this.code = code;
    this.family = spec.family;
    this.status = spec.status;
    this.jsonRpcCode = spec.jsonRpcCode;
    this.expose = spec.expose;
    this.data = options?.data;
  }

  /**
   * The JSON-RPC `error` object with the whole message and `data`, for responses passed between
   * the gateway's own parts (an upstream's synthetic answer on its way to the session, which logs
   * it). What a client gets is {@link clientJsonRpcError}'s.
   */
  toJsonRpcError(): { code: number; message: string; data: Record<string, unknown> } {
    return { code: this.jsonRpcCode, message: this.message, data: { code: this.code, ...this.data } };
  }
}

/** Narrowing helper. */
export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}

/**
 * The error a client may learn of: `err` itself when it is a {@link GatewayError} meant for
 * clients; `SWB_ERR_INTERNAL` (with `err` as its cause) for anything else, including a
 * `'config'` error, which is printed, never sent.
 */
export function toClientError(err: unknown): GatewayError {
  if (isGatewayError(err) && err.family !== 'config') return err;
  return new GatewayError('SWB_ERR_INTERNAL', 'Internal error', { cause: err });
}

function publicErrorObject(
  code: ErrorCode,
  jsonRpcCode: number,
  message: string,
  data: Record<string, unknown> | undefined,
): JsonRpcErrorObject & { data: Record<string, unknown> } {
  const spec: ErrorSpec = ERROR_CODES[code];
  if (spec.expose && spec.family !== 'config') return { code: jsonRpcCode, message, data: { code, ...data } };
  const shown: Record<string, unknown> = { code };
  for (const field of spec.publicData ?? []) if (data?.[field] !== undefined) shown[field] = data[field];
  return { code: jsonRpcCode, message: spec.publicMessage ?? 'Internal error', data: shown };
}

/**
 * The JSON-RPC `error` object a client gets for `err` (JSON-RPC 2.0 §5.1): the code's JSON-RPC
 * code, the message when the code is exposed (else its `publicMessage`), and `data` with
 * `data.code` the {@link ErrorCode} (plus the other `data` fields, or only the `publicData`
 * ones when the code is not exposed).
 */
export function clientJsonRpcError(err: GatewayError): JsonRpcErrorObject & { data: Record<string, unknown> } {
  return publicErrorObject(err.code, err.jsonRpcCode, err.message, err.data);
}

/**
 * The JSON body of an error answered by a REST API (`/api/v1/…`, `/reverse-proxy/…`) with the
 * code's status: `{ error: { code, message, …data } }`, message and `data` as
 * {@link clientJsonRpcError} gives them (a code that is not exposed shows its public message).
 */
export function restErrorBody(err: GatewayError): {
  error: { code: ErrorCode; message: string } & Record<string, unknown>;
} {
  const e = clientJsonRpcError(err);
  return { error: { code: err.code, message: e.message, ...e.data } };
}

/** How {@link encodeError} is to answer. */
export interface EncodeErrorOptions {
  /**
   * True once the HTTP response that carries the answer has started (a POST's SSE stream is open,
   * or the transport answers on another stream, as legacy HTTP+SSE does): only a JSON-RPC error
   * can follow.
   */
  readonly responseStarted: boolean;
  /** The id of the request being answered; `null` (the default) when it is not known. */
  readonly id?: JsonRpcId | null;
}

/** An error encoded for a client by {@link encodeError}. */
export type EncodedError =
  | {
      /** Answer with `status`, `headers` and `response` as the JSON body. */
      readonly kind: 'http';
      readonly status: number;
      /** `Retry-After` (RFC 9110 §10.2.3) for an error with `data.retryAfterMs`. */
      readonly headers: Readonly<Record<string, string>>;
      readonly response: JsonRpcErrorResponse;
      /** The error as sent (see {@link toClientError}). */
      readonly error: GatewayError;
    }
  | {
      /** Send `response` as a JSON-RPC message (a 200 body, or an event on the open stream). */
      readonly kind: 'jsonrpc';
      readonly response: JsonRpcErrorResponse;
      readonly error: GatewayError;
    };

/**
 * The encoder of MCP endpoints: decides from the code's family, not from where it was thrown,
 * whether `err` is answered with an HTTP status or as a JSON-RPC error.
 *
 * - `'http'` family, response not started → `kind: 'http'` with the code's status (a JSON-RPC
 *   error body, MCP transports §Streamable HTTP) and `Retry-After` in whole seconds, at least 1,
 *   when `data.retryAfterMs` is set;
 * - `'http'` family once the response started, and every `'jsonrpc'` error → `kind: 'jsonrpc'`;
 * - anything that is not a {@link GatewayError}, and `'config'` errors → `SWB_ERR_INTERNAL`
 *   (500 / -32603, message `Internal error`): the caller logs the original.
 *
 * Messages and `data` are those of {@link clientJsonRpcError}.
 */
export function encodeError(err: unknown, options: EncodeErrorOptions): EncodedError {
  const error = toClientError(err);
  const response: JsonRpcErrorResponse = { jsonrpc: '2.0', id: options.id ?? null, error: clientJsonRpcError(error) };
  if (error.family !== 'http' || options.responseStarted) return { kind: 'jsonrpc', response, error };
  const retryAfterMs = error.data?.retryAfterMs;
  const headers: Record<string, string> =
    typeof retryAfterMs === 'number' ? { 'retry-after': String(Math.max(1, Math.ceil(retryAfterMs / 1000))) } : {};
  return { kind: 'http', status: error.status, headers, response, error };
}

/**
 * A message from an upstream, made fit for the client: a JSON-RPC error whose `data.code` names a
 * gateway code that is not exposed (the synthetic answers of upstream connections, e.g. a child
 * that could not be spawned) gets that code's `publicMessage` and `publicData` only. Anything else
 * — results, notifications, the upstream server's own errors — is returned as it is.
 *
 * @param onWithheld - told of the original error object when something was withheld (to log it)
 */
export function toClientMessage<M extends JsonRpcMessage>(
  message: M,
  onWithheld?: (error: JsonRpcErrorObject) => void,
): M {
  if (!('error' in message)) return message;
  const error = message.error;
  const data = error.data as Record<string, unknown> | undefined;
  const code = data?.code;
  if (!isErrorCode(code)) return message;
  const spec: ErrorSpec = ERROR_CODES[code];
  if (spec.expose && spec.family !== 'config') return message;
  onWithheld?.(error);
  return { ...message, error: publicErrorObject(code, error.code, error.message, data) };
}
