/**
 * The front door of the modern protocol era (MCP 2026-07-28) on every Streamable HTTP endpoint,
 * beside the 2025-era sessions of `./streamable.ts`.
 *
 * A POST without `Mcp-Session-Id` whose request carries the modern per-request `_meta` (or a
 * modern `MCP-Protocol-Version` header) is served statelessly (basic §`_meta`, versioning
 * §Protocol Version Negotiation, transports §Streamable HTTP):
 * 1. checks, in order: the `_meta` version (missing → 400 -32602), the `MCP-Protocol-Version`
 *    header (missing or different → 400 -32020), the version itself (not served → 400 -32022
 *    with `data.supported`), the client's capabilities (missing → 400 -32602), `Mcp-Method`
 *    (400 -32020), the method (not served in this era → 404 -32601), and `Mcp-Name` for
 *    `tools/call`, `prompts/get`, `resources/read`, Base64 sentinel decoded (400 -32020). Every
 *    error echoes the request's id;
 * 2. answers `server/discover` from the endpoint's view;
 * 3. hands anything else to the principal's stateless session on that view — one
 *    {@link ClientSession} per (view, principal), never named to the client — under an id of
 *    the gateway's own (two clients of one principal may both send id 1), so routing,
 *    authorization, the pipeline (rate limits, guardrails), the upstream call, metrics and the
 *    usage log are those of any other request;
 * 4. answers on a {@link ModernChannel}: the client's id restored, `resultType` and the
 *    gateway's identity (`_meta["io.modelcontextprotocol/serverInfo"]`) on every result, caching
 *    hints on cacheable ones, -32602 for a resource not found (-32002 is the 2025 code). A
 *    response stream the client closes cancels the request (transports §Cancellation).
 *
 * 2025-era upstreams keep their sessions: the modern `_meta` fields, `inputResponses` and
 * `requestState` are removed from what is forwarded (a modern upstream gets its own `_meta`, and
 * the `inputResponses`/`requestState` answering its own `input_required` results unchanged). A server→client request of an upstream during
 * a `tools/call`, `prompts/get` or `resources/read` (sampling, elicitation, roots; one the request
 * declared the capability for) becomes an `input_required` result, and the retry answers it
 * (`./modern-input.ts`, basic/patterns/mrtr). `subscriptions/listen` opens a stream of change
 * notifications (`./modern-listen.ts`). `tasks/get`, `tasks/update` and `tasks/cancel` (the tasks
 * extension) are routed by the session to the member owning the task (`gateway/tasks.ts`).
 * docs/protocol-eras.md.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { GatewayError } from '../errors.js';
import { sendHttpError } from './error-response.js';
import type { ClientSession } from '../gateway/client-session.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../gateway/client-session.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import { TASK_METHODS } from '../gateway/tasks.js';
import type { RequestContext } from '../pipeline/stage.js';
import {
  decodeHeaderValue,
  isModernOrLater,
  isModernVersion,
  META_CLIENT_CAPABILITIES,
  META_CLIENT_INFO,
  META_LOG_LEVEL,
  META_PROTOCOL_VERSION,
  META_SERVER_INFO,
  MODERN_METHODS,
  MODERN_PROTOCOL_VERSIONS,
} from '../protocol/era.js';
import type { JsonObject, JsonRpcId, JsonRpcMessage, JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { ClientCapabilities } from '../upstream/connection.js';
import { InputParking } from './modern-input.js';
import { parseListenFilter, serveListen } from './modern-listen.js';
import { checkParamHeaders, headerParamsOf } from './modern-params.js';
import type { StreamOverflowListener } from './stream-budget.js';
import { cacheScopeFor, LIST_TTL_MS, ModernChannel } from './modern-channel.js';

export { cacheScopeFor, LIST_TTL_MS, ModernChannel } from './modern-channel.js';

/** The per-request protocol fields of `_meta` (basic §`_meta`), which a 2025-era upstream is not sent. */
const PER_REQUEST_FIELDS: ReadonlySet<string> = new Set([
  META_PROTOCOL_VERSION,
  META_CLIENT_CAPABILITIES,
  META_CLIENT_INFO,
  META_LOG_LEVEL,
]);

/** Every protocol version the gateway serves, modern first (`UnsupportedProtocolVersion`'s `data.supported`). */
export const ALL_SUPPORTED_VERSIONS: readonly string[] = [...MODERN_PROTOCOL_VERSIONS, ...SUPPORTED_PROTOCOL_VERSIONS];

/** Options of {@link createModernHandler}. */
export interface ModernOptions {
  gateway: Gateway;
  /** Told of a listen stream closed because its client did not read it (metrics). */
  onStreamOverflow?: StreamOverflowListener | undefined;
}

/** The modern front door of one handler family (see the module comment). */
export interface ModernHandler {
  /**
   * True when a POSTed message without `Mcp-Session-Id` belongs to the modern era: a request or
   * notification carrying `params._meta["io.modelcontextprotocol/protocolVersion"]` or an
   * `MCP-Protocol-Version` header of 2026-07-28 or later.
   */
  claims(req: IncomingMessage, message: JsonRpcMessage): boolean;
  /**
   * Serves a message {@link claims} accepted. Answers every refusal itself; throws only what the
   * caller's error path must answer (nothing expected).
   */
  serve(req: IncomingMessage, res: ServerResponse, view: View, meta: RequestContext, message: JsonRpcMessage): void;
}

/** Creates the modern front door (see the module comment). */
export function createModernHandler(options: ModernOptions): ModernHandler {
  const { gateway } = options;
  /** The stateless session of each principal on each view (a reload builds new views). */
  const sessions = new WeakMap<View, Map<string, ClientSession>>();
  // A parked call waits for its retry as long as the upstream's request waits for the answer.
  // Its states name this replica, so that a retry landing on another one is passed here.
  const parking = new InputParking<ModernChannel>(
    gateway.clientRequestTimeoutMs,
    Date.now,
    gateway.streamHandover.replica,
  );
  let nextId = 0;
  gateway.retryRelay.resume = (retry, res, meta) => {
    try {
      const parked = parking.claim(retry.requestState, {
        principalId: meta.principal.id,
        method: retry.method,
        name: retry.name,
      });
      parked.attach(res, retry.id, meta, retry.inputResponses, retry.capabilities, retry.logLevel);
    } catch (err) {
      sendError(res, err, retry.id, meta);
    }
  };

  function sessionFor(view: View, principal: Principal): ClientSession {
    let byPrincipal = sessions.get(view);
    if (byPrincipal === undefined) sessions.set(view, (byPrincipal = new Map()));
    let session = byPrincipal.get(principal.id);
    if (session === undefined || session.closed) {
      session = gateway.createSession(view, principal, 'stateless');
      session.protocolVersion = MODERN_PROTOCOL_VERSIONS[0];
      session.clientCapabilities = {};
      session.initialized = true;
      byPrincipal.set(principal.id, session);
    }
    return session;
  }

  function claims(req: IncomingMessage, message: JsonRpcMessage): boolean {
    // A 2025-era `initialize` carries neither (its version is `params.protocolVersion`, and the
    // header comes only after negotiation): one that does is a modern request for a method this
    // era removed (404).
    if (!('method' in message)) return false;
    const m = message.params?._meta;
    if (typeof m === 'object' && m !== null && META_PROTOCOL_VERSION in m) return true;
    return isModernOrLater(req.headers['mcp-protocol-version']);
  }

  function serve(
    req: IncomingMessage,
    res: ServerResponse,
    view: View,
    meta: RequestContext,
    message: JsonRpcMessage,
  ): void {
    if (!('method' in message)) throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'Invalid Request');
    meta.method = message.method;
    meta.era = 'modern';
    if (!('id' in message) || message.id === undefined) {
      // No client notification is defined over Streamable HTTP in this era; accepted and ignored.
      res.writeHead(202, { 'content-length': 0 }).end();
      return;
    }
    const request = message;
    const id = request.id;
    try {
      const params = validate(req, request);
      if (request.method === 'server/discover') {
        sendJson(res, 200, { jsonrpc: '2.0', id, result: discoverResult(view, meta.principal) });
        return;
      }
      if (request.method === 'subscriptions/listen') {
        serveListen({
          gateway,
          view,
          meta,
          res,
          id,
          filter: parseListenFilter(params),
          onStreamOverflow: options.onStreamOverflow,
        });
        return;
      }
      const field = MODERN_METHODS.get(request.method);
      const name = field === undefined ? '' : String(params[field]);
      if (request.method === 'tools/call') {
        // The annotations are the tool's own: the unfiltered list has them (a tool the caller may
        // not use is refused further on).
        const mirrored = headerParamsOf(view.tools, name);
        if (mirrored.length > 0) checkParamHeaders(req, mirrored, params.arguments);
      }
      const requestMeta = request.params!._meta as JsonObject;
      const capabilities = requestMeta[META_CLIENT_CAPABILITIES] as ClientCapabilities;
      const logLevel = requestMeta[META_LOG_LEVEL];
      // MRTR fields are the gateway's to interpret: a 2025-era upstream is never sent them. A
      // modern upstream's own input_required results are answered to it: they pass unchanged.
      const state = params.requestState;
      const inputResponses = params.inputResponses;
      if ((state !== undefined || inputResponses !== undefined) && !toModernUpstream(view, request.method, name)) {
        delete params.requestState;
        delete params.inputResponses;
        if (state !== undefined) {
          if (typeof state !== 'string') {
            throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_STATE', 'Invalid params: requestState must be a string');
          }
          const owner = parking.ownerOf(state);
          if (owner !== undefined) {
            // Parked on another replica: the retry is passed there and its answer comes back here.
            const forward = gateway.retryRelay.forward;
            if (forward === undefined) {
              throw new GatewayError(
                'SWB_ERR_PROTOCOL_INVALID_STATE',
                'Invalid params: requestState was issued by another replica, and the replicas share no channel to reach it (SWITCHBOARD_REDIS_URL)',
              );
            }
            const retry = {
              requestState: state,
              method: request.method,
              name,
              id,
              inputResponses,
              capabilities,
              logLevel,
            };
            forward(owner, retry, res, meta);
            return;
          }
          const parked = parking.claim(state, { principalId: meta.principal.id, method: request.method, name });
          parked.attach(res, id, meta, inputResponses, capabilities, logLevel);
          return;
        }
      }
      const session = sessionFor(view, meta.principal);
      // An integer of the gateway's own: the session's id tables hash it for free (a string id
      // would be hashed character by character on every lookup).
      const internal: JsonRpcRequest = { jsonrpc: '2.0', id: ++nextId, method: request.method, params };
      const channel = new ModernChannel(
        res,
        session,
        id,
        internal.id,
        { method: request.method, name, capabilities, logLevel },
        view,
        meta,
        parking,
      );
      session.handleRequest(internal, channel, meta);
    } catch (err) {
      sendError(res, err, id, meta);
    }
  }

  return { claims, serve };
}

/**
 * Whether a `tools/call`, `prompts/get` or `resources/read` goes to a modern upstream (MCP
 * 2026-07-28): the `inputResponses` and `requestState` of its retry answer that upstream's own
 * `input_required` result and are forwarded unchanged, as are a `tasks/update`'s. Looked up only
 * for a retry or a task's update.
 */
function toModernUpstream(view: View, method: string, name: string): boolean {
  // A task exists only on a modern upstream: `tasks/update` answers the task's own input requests.
  if (TASK_METHODS.has(method)) return true;
  const hit =
    method === 'tools/call'
      ? view.resolveTool(name)
      : method === 'prompts/get'
        ? view.resolvePrompt(name)
        : method === 'resources/read'
          ? view.resolveResource(name)
          : undefined;
  return hit?.member.upstream.era === 'modern';
}

/**
 * Checks a modern request's `_meta` and mirrored headers (see the module comment for the order)
 * and returns its params with the per-request protocol fields removed (what an upstream of the
 * 2025 era may be sent).
 *
 * @throws GatewayError `SWB_ERR_PROTOCOL_MISSING_META`, `SWB_ERR_HTTP_HEADER_MISMATCH`,
 *   `SWB_ERR_PROTOCOL_UNSUPPORTED_VERSION`, `SWB_ERR_PROTOCOL_METHOD_NOT_FOUND`
 */
export function validate(req: IncomingMessage, request: JsonRpcRequest): JsonObject {
  const params = request.params;
  const m = params?._meta;
  const fields = typeof m === 'object' && m !== null && !Array.isArray(m) ? (m as JsonObject) : undefined;
  const version = fields?.[META_PROTOCOL_VERSION];
  if (typeof version !== 'string' || version === '') {
    throw new GatewayError(
      'SWB_ERR_PROTOCOL_MISSING_META',
      `Invalid params: _meta["${META_PROTOCOL_VERSION}"] is required`,
    );
  }
  const header = req.headers['mcp-protocol-version'];
  if (header === undefined) {
    throw new GatewayError('SWB_ERR_HTTP_HEADER_MISMATCH', 'Header mismatch: MCP-Protocol-Version header is required');
  }
  if (header !== version) {
    throw new GatewayError(
      'SWB_ERR_HTTP_HEADER_MISMATCH',
      `Header mismatch: MCP-Protocol-Version header value '${String(header)}' does not match body value '${version}'`,
    );
  }
  if (!isModernVersion(version)) {
    throw new GatewayError('SWB_ERR_PROTOCOL_UNSUPPORTED_VERSION', 'Unsupported protocol version', {
      data: { supported: ALL_SUPPORTED_VERSIONS, requested: version },
    });
  }
  const capabilities = fields![META_CLIENT_CAPABILITIES];
  if (typeof capabilities !== 'object' || capabilities === null || Array.isArray(capabilities)) {
    throw new GatewayError(
      'SWB_ERR_PROTOCOL_MISSING_META',
      `Invalid params: _meta["${META_CLIENT_CAPABILITIES}"] is required`,
    );
  }
  const method = req.headers['mcp-method'];
  if (method === undefined) {
    throw new GatewayError('SWB_ERR_HTTP_HEADER_MISMATCH', 'Header mismatch: Mcp-Method header is required');
  }
  if (method !== request.method) {
    throw new GatewayError(
      'SWB_ERR_HTTP_HEADER_MISMATCH',
      `Header mismatch: Mcp-Method header value '${String(method)}' does not match body value '${request.method}'`,
    );
  }
  if (!MODERN_METHODS.has(request.method)) {
    throw new GatewayError('SWB_ERR_PROTOCOL_METHOD_NOT_FOUND', `Method not found: ${request.method}`);
  }
  const field = MODERN_METHODS.get(request.method);
  if (field !== undefined) {
    const raw = req.headers['mcp-name'];
    if (typeof raw !== 'string') {
      throw new GatewayError('SWB_ERR_HTTP_HEADER_MISMATCH', 'Header mismatch: Mcp-Name header is required');
    }
    const name = decodeHeaderValue(raw);
    if (name === undefined) {
      throw new GatewayError('SWB_ERR_HTTP_HEADER_MISMATCH', 'Header mismatch: Mcp-Name header value is malformed');
    }
    if (name !== params?.[field]) {
      throw new GatewayError(
        'SWB_ERR_HTTP_HEADER_MISMATCH',
        `Header mismatch: Mcp-Name header value '${name}' does not match body value '${String(params?.[field])}'`,
      );
    }
  }
  // The 2025-era upstream session has its own version and capabilities: forward only the rest
  // (copied key by key: `delete` would turn both objects into slow dictionaries).
  let rest: JsonObject | undefined;
  for (const key in fields) {
    if (PER_REQUEST_FIELDS.has(key)) continue;
    (rest ??= {})[key] = fields[key];
  }
  const out: JsonObject = {};
  for (const key in params) if (key !== '_meta') out[key] = params[key];
  if (rest !== undefined) out._meta = rest;
  return out;
}

/**
 * The view's `server/discover` result (server/discover §Response): `supportedVersions` is every
 * version the gateway serves on any endpoint, 2026-07-28 first (it serves the modern era whatever
 * era its upstreams speak, translating for 2025-era ones), then the 2025-era versions; the
 * capabilities are those `initialize` gives (a single server's own; for several members the
 * merge of `gateway/capabilities.ts`: only what the gateway can honour for every member).
 */
export function discoverResult(view: View, principal: Principal): JsonObject {
  const init = view.initializeResult();
  const capabilities = (init.capabilities as JsonObject | undefined) ?? {};
  const result: JsonObject = {
    resultType: 'complete',
    supportedVersions: [...ALL_SUPPORTED_VERSIONS],
    capabilities,
    _meta: { [META_SERVER_INFO]: init.serverInfo },
    ttlMs: LIST_TTL_MS,
    cacheScope: cacheScopeFor(principal),
  };
  if (typeof init.instructions === 'string') result.instructions = init.instructions;
  return result;
}

function sendJson(res: ServerResponse, status: number, message: unknown): void {
  if (res.headersSent || res.destroyed) return;
  const body = JSON.stringify(message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

function sendError(res: ServerResponse, err: unknown, id: JsonRpcId, meta: RequestContext): void {
  const code = sendHttpError(res, err, id);
  if (code !== undefined) meta.rpcError = code;
}
