/**
 * The MCP server side of one client session (2025 protocol era): answers `initialize`, `ping`
 * and the list methods from the view's cache, routes calls to the owning upstream, restores the
 * client's ids, and carries server→client requests and notifications back to this client only.
 *
 * Transport-agnostic: the HTTP edge hands in messages with an {@link OutboundChannel} for the
 * messages related to a request (a POST's JSON/SSE response), and attaches a standalone channel
 * (the GET stream, or the legacy SSE stream) for unrelated messages.
 *
 * @module
 */
import type { Principal } from '../auth/principal.js';
import { requirePermission, scopeOf, type Scope } from '../auth/rbac.js';
import { clientJsonRpcError, encodeError, GatewayError, isGatewayError, toClientMessage } from '../errors.js';
import type {
  JsonObject,
  JsonRpcErrorObject,
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../protocol/jsonrpc.js';
import type { Logger } from '../observability/logger.js';
import type { Caller, ClientCapabilities } from '../upstream/connection.js';
import type { SlotContext, Upstream, UpstreamCall } from '../upstream/upstream.js';
import { decodeCursor, encodeCursor } from './cursor.js';
import type { View, ViewMember } from './view.js';
import { IdTable } from '../protocol/id-table.js';
import type { Pipeline, RequestContext, Route } from '../pipeline/stage.js';

/** What a request resolved to: the view member and the upstream's own name (or URI). */
interface Hit {
  readonly member: ViewMember;
  readonly name: string;
}

/** Protocol versions of the 2025 era the front door accepts, newest first. */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;
/** Version assumed when a client sends no `MCP-Protocol-Version` header (transports §Protocol Version Header). */
export const DEFAULT_NEGOTIATED_VERSION = '2025-03-26';

/** Where messages for a client go. */
export interface OutboundChannel {
  /** Sends one message. Must not throw; a closed channel drops it (the edge may store it for resumption). */
  send(message: JsonRpcMessage): void;
  /** Ends a request's channel without a response (after cancellation). */
  end?(): void;
  /**
   * Answers a request with an error as `encodeError` (`src/errors.ts`) decides from its family and
   * whether this channel's HTTP response has started: e.g. 429 with `Retry-After`, or a JSON-RPC
   * error. Without it, errors are sent as JSON-RPC errors.
   */
  fail?(error: unknown, id: JsonRpcId): void;
  /**
   * Sends a success response whose `result` is already JSON text (exactly what
   * `JSON.stringify(result)` gives), so a large list shared by many requests is serialised once.
   * Optional: without it the session sends the object.
   */
  sendResult?(id: JsonRpcId, resultJson: string): void;
  /** True once the client can no longer be reached through it. */
  readonly closed: boolean;
  /** When true, messages sent while closed are kept for redelivery (resumable streams). */
  readonly retains?: boolean;
}

/** Services the gateway gives its sessions. */
export interface SessionHost {
  /**
   * The stages every request of this session goes through (rate limits, guardrails), composed
   * once; {@link EMPTY_PIPELINE} when none is configured. Read per request, so a reload that
   * replaces it applies to the next request.
   */
  readonly pipeline: Pipeline;
  readonly logger: Logger;
  /** Items per page of list methods results (0 = no pagination). */
  readonly pageSize: number;
  /** How long a server→client request may wait for the client's answer (ms). */
  readonly clientRequestTimeoutMs: number;
  now(): number;
  /** Called once when the session closes. */
  onSessionClosed(session: ClientSession, reason: string): void;
}

/** `{"<field>":[…]}` of whole lists by list array (see `ClientSession.#list`). */
const SERIALIZED_LISTS = new WeakMap<JsonObject[], string>();

const LOG_LEVELS = ['debug', 'info', 'notice', 'warning', 'error', 'critical', 'alert', 'emergency'];

interface ClientRequest {
  readonly resolve: (answer: { result?: JsonObject; error?: JsonRpcErrorObject }) => void;
  readonly reject: (err: GatewayError) => void;
  readonly timer: NodeJS.Timeout;
}

/** One client session on one view. */
export class ClientSession {
  readonly id: string;
  readonly principal: Principal;
  readonly transportKind: 'streamable-http' | 'sse';
  view: View;
  protocolVersion: string | undefined;
  clientCapabilities: ClientCapabilities | undefined;
  clientInfo: JsonObject | undefined;
  initialized = false;
  lastActivity: number;
  readonly createdAt: number;
  #host: SessionHost;
  #slot: SlotContext;
  #inflight = new IdTable<UpstreamCall>();
  #clientRequests = new Map<number, ClientRequest>();
  #nextClientRequestId = 1;
  #standalone: OutboundChannel | undefined;
  #minLogLevel = -1;
  #closed = false;
  /** `server\nupstream URI` → the URI this client subscribed with (a `switchboard://` form for collisions). */
  #subscribed = new Map<string, string>();

  constructor(
    id: string,
    view: View,
    principal: Principal,
    transportKind: 'streamable-http' | 'sse',
    host: SessionHost,
  ) {
    this.id = id;
    this.view = view;
    this.principal = principal;
    this.transportKind = transportKind;
    this.#host = host;
    this.#slot = { sessionId: id, principalId: principal.id };
    this.createdAt = this.lastActivity = host.now();
  }

  /** True after close(). */
  get closed(): boolean {
    return this.#closed;
  }

  /** Requests from this client still awaiting an upstream answer. */
  get inFlight(): number {
    return this.#inflight.size;
  }

  /** True while a standalone stream (GET / legacy SSE) is attached. */
  get hasStandaloneStream(): boolean {
    return this.#standalone !== undefined && !this.#standalone.closed;
  }

  /**
   * Records activity from the client that carries no JSON-RPC message (opening or resuming its
   * GET stream), so `sessions.idleTimeout` counts from now.
   */
  touch(): void {
    this.lastActivity = this.#host.now();
  }

  /** Attaches (or with `undefined`, detaches) the channel for unrelated messages. */
  attachStandalone(channel: OutboundChannel | undefined): void {
    this.#standalone = channel;
  }

  /** Sends an unrelated message (list_changed, resources/updated, logging) on the standalone channel; false if none. */
  sendUnrelated(message: JsonRpcMessage): boolean {
    const ch = this.#standalone;
    if (!ch || (ch.closed && ch.retains !== true)) return false;
    this.#send(ch, message);
    return !ch.closed;
  }

  /**
   * Delivers an upstream's `notifications/resources/updated` for a URI this session subscribed
   * to, naming the resource by the URI the client used (the `switchboard://{server}/…` form of a
   * URI two servers of the view share), as the client knows no other.
   */
  deliverResourceUpdated(upstream: Upstream, n: JsonRpcNotification): void {
    const uri = n.params?.uri;
    const exposed = typeof uri === 'string' ? this.#subscribed.get(`${upstream.name}\n${uri}`) : undefined;
    if (exposed === undefined || exposed === uri) {
      this.sendUnrelated(n);
      return;
    }
    this.sendUnrelated({ jsonrpc: '2.0', method: n.method, params: { ...n.params, uri: exposed } });
  }

  /** Delivers an upstream's unrelated notification, applying this session's log level. */
  deliverNotification(n: JsonRpcNotification): void {
    if (n.method === 'notifications/message' && !this.#logLevelAllows(n)) return;
    this.sendUnrelated(n);
  }

  /**
   * Handles one client request; the response (and any related messages) go to `out`.
   * Never throws: every failure becomes a JSON-RPC error response (or, for an error of the HTTP
   * family such as a rate limit, an HTTP status through `out.fail` while the response has not
   * started). A request reusing the id of one of this session's requests still in flight gets
   * `SWB_ERR_SESSION_DUPLICATE_ID` (-32600).
   *
   * Order: route (resolved once, into `ctx.route`) and authorize → the pipeline's request phase
   * (rate limits, guardrails) → dispatch → (forwarded calls) the result phase → `out`.
   *
   * `ctx` describes the HTTP request (principal, headers, client IP); the session fills in the
   * target `server`, upstream `tool` and `route` for stages, logs, metrics and the usage log.
   */
  handleRequest(
    req: JsonRpcRequest,
    out: OutboundChannel,
    ctx: RequestContext = { principal: this.principal, method: req.method },
  ): void {
    this.lastActivity = this.#host.now();
    let hit: Hit | undefined;
    try {
      hit = this.#route(req, ctx);
    } catch (err) {
      this.#refuse(req, out, err, ctx);
      return;
    }
    const phase = this.#host.pipeline.request;
    if (phase !== undefined) {
      let pending: Promise<void> | undefined;
      try {
        pending = phase(ctx, req);
      } catch (err) {
        this.#refuse(req, out, err, ctx);
        return;
      }
      if (pending !== undefined) {
        pending.then(
          () => this.#run(req, out, ctx, hit),
          (err: unknown) => this.#refuse(req, out, err, ctx),
        );
        return;
      }
    }
    this.#run(req, out, ctx, hit);
  }

  #run(req: JsonRpcRequest, out: OutboundChannel, ctx: RequestContext, hit: Hit | undefined): void {
    try {
      this.#dispatch(req, out, ctx, hit);
    } catch (err) {
      this.#refuse(req, out, err, ctx);
    }
  }

  /** Answers `req` with an error; the channel and the encoder choose between HTTP status and JSON-RPC error. */
  #refuse(req: JsonRpcRequest, out: OutboundChannel, err: unknown, ctx: RequestContext): void {
    const response = this.#errorFor(req.id, err, ctx.reqId);
    if (out.fail) out.fail(err, req.id);
    else out.send(response);
  }

  /**
   * Resolves and authorizes the request's target, once: the server and the upstream's own name
   * of a tool, prompt or resource. Sets `ctx.server`, `ctx.tool` and `ctx.route`.
   *
   * @returns the view member and upstream name for `tools/call`, `prompts/get` and `resources/*`;
   *   undefined for other methods
   * @throws GatewayError `SWB_ERR_ROUTE_UNKNOWN_TOOL` / `_PROMPT` / `_RESOURCE` for a name that is
   *   not exposed to this principal (out-of-scope items are unknown, as they are absent from
   *   lists); `SWB_ERR_AUTH_INSUFFICIENT_SCOPE` for `tools/call` without `tools.execute`
   */
  #route(req: JsonRpcRequest, ctx: RequestContext): Hit | undefined {
    const params = req.params;
    const view = this.view;
    if (view.kind === 'single') ctx.server = view.members[0]?.upstream.name;
    let hit: Hit | undefined;
    switch (req.method) {
      case 'tools/call': {
        const name = params?.name;
        hit = typeof name === 'string' ? (view.resolveTool(name) ?? this.#passThrough(name, 'tools')) : undefined;
        if (!hit || !scopeOf(ctx.principal).tool(hit.member.upstream.name, hit.name)) {
          if (typeof name === 'string' && view.kind === 'single') ctx.tool = name;
          throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_TOOL', `Unknown tool: ${String(name)}`);
        }
        ctx.tool = hit.name;
        requirePermission(ctx.principal, 'tools.execute');
        break;
      }
      case 'prompts/get': {
        const name = params?.name;
        hit = typeof name === 'string' ? (view.resolvePrompt(name) ?? this.#passThrough(name, 'prompts')) : undefined;
        if (!hit || !scopeOf(ctx.principal).server(hit.member.upstream.name)) {
          throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_PROMPT', `Unknown prompt: ${String(name)}`);
        }
        break;
      }
      case 'resources/read':
      case 'resources/subscribe':
      case 'resources/unsubscribe':
        hit = this.#resource(params, scopeOf(ctx.principal));
        break;
      default:
        return undefined;
    }
    const server = hit.member.upstream.name;
    ctx.server = server;
    ctx.route = { server, name: hit.name } satisfies Route;
    return hit;
  }

  /**
   * Handles a client notification (initialized, cancelled, roots/list_changed, …). `reqId` is the
   * id of the HTTP request that carried it, for log lines.
   */
  handleNotification(n: JsonRpcNotification, reqId?: string): void {
    this.lastActivity = this.#host.now();
    switch (n.method) {
      case 'notifications/initialized':
        this.initialized = true;
        return;
      case 'notifications/cancelled': {
        const id = n.params?.requestId as JsonRpcId | undefined;
        const call = id === undefined ? undefined : this.#inflight.get(id);
        if (call && id !== undefined) {
          this.#inflight.delete(id);
          call.cancel(typeof n.params?.reason === 'string' ? n.params.reason : undefined);
        }
        return;
      }
      case 'notifications/roots/list_changed': {
        // Only to servers this principal may reach, like every request.
        const scope = scopeOf(this.principal);
        for (const m of this.view.members)
          if (scope.server(m.upstream.name)) this.#notifyUpstream(m.upstream, n, reqId);
        return;
      }
      default: {
        const only = this.view.kind === 'single' ? this.view.members[0] : undefined;
        if (only && scopeOf(this.principal).server(only.upstream.name)) this.#notifyUpstream(only.upstream, n, reqId);
      }
    }
  }

  /** Handles the client's response to a server→client request we forwarded. */
  handleResponse(r: JsonRpcResponse): void {
    this.lastActivity = this.#host.now();
    if (typeof r.id !== 'number') return;
    const pending = this.#clientRequests.get(r.id);
    if (!pending) return;
    this.#clientRequests.delete(r.id);
    clearTimeout(pending.timer);
    pending.resolve('error' in r ? { error: r.error } : { result: r.result });
  }

  /** Ends the session: cancels its upstream calls, fails its pending client requests, releases isolated children. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of this.#inflight.values()) call.cancel('session closed');
    this.#inflight.clear();
    for (const p of this.#clientRequests.values()) {
      clearTimeout(p.timer);
      p.reject(new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'client session closed'));
    }
    this.#clientRequests.clear();
    for (const m of this.view.members) m.upstream.releaseSession(this.id, this.principal.id);
    this.#standalone?.end?.();
    this.#standalone = undefined;
    this.#host.onSessionClosed(this, reason);
  }

  #dispatch(req: JsonRpcRequest, out: OutboundChannel, meta: RequestContext, hit: Hit | undefined): void {
    // MCP basic §Requests: an id is never reused within a session. Reused while the first is in
    // flight, the two answers could not be told apart (and the first one's would be lost).
    if (this.#inflight.get(req.id) !== undefined) {
      throw new GatewayError(
        'SWB_ERR_SESSION_DUPLICATE_ID',
        `Invalid Request: request id ${JSON.stringify(req.id)} is already in flight in this session`,
      );
    }
    const params = req.params;
    const principal = meta.principal;
    const scope = scopeOf(principal);
    // Who this request is for: picks the upstream connection and carries what outbound headers need.
    const ctx: SlotContext =
      meta.httpHeaders === undefined &&
      principal === this.principal &&
      meta.trace === undefined &&
      meta.reqId === undefined
        ? this.#slot
        : // One literal, no spreads (every HTTP request carries its headers).
          {
            sessionId: this.id,
            principalId: principal.id,
            principal,
            httpHeaders: meta.httpHeaders,
            trace: meta.trace,
            reqId: meta.reqId,
          };
    switch (req.method) {
      case 'initialize':
        out.send({ jsonrpc: '2.0', id: req.id, result: this.#initialize(params ?? {}) });
        return;
      case 'ping':
        out.send({ jsonrpc: '2.0', id: req.id, result: {} });
        return;
      case 'tools/list': {
        const tools = this.view.listsFor(scope).tools;
        const filter = this.#host.pipeline.listTools;
        this.#list(req.id, out, filter === undefined ? tools : filter(meta, tools, this.#routeOfTool), 'tools', params);
        return;
      }
      case 'prompts/list':
        this.#list(req.id, out, this.view.listsFor(scope).prompts, 'prompts', params);
        return;
      case 'resources/list':
        this.#list(req.id, out, this.view.listsFor(scope).resources, 'resources', params);
        return;
      case 'resources/templates/list':
        this.#list(req.id, out, this.view.listsFor(scope).resourceTemplates, 'resourceTemplates', params);
        return;
      case 'tools/call':
      case 'prompts/get':
        // Resolved and authorized by #route; the upstream gets its own name.
        (params as JsonObject).name = hit!.name;
        this.#forward(req, out, hit!.member.upstream, params, ctx, meta);
        return;
      case 'resources/read':
        (params as JsonObject).uri = hit!.name;
        this.#forward(req, out, hit!.member.upstream, params, ctx, meta);
        return;
      case 'resources/subscribe':
      case 'resources/unsubscribe': {
        const up = hit!.member.upstream;
        const caller = this.#caller(out);
        // resources/updated names the upstream's URI: remember the URI this client used for it.
        const key = `${up.name}\n${hit!.name}`;
        let p: Promise<JsonRpcResponse>;
        if (req.method === 'resources/subscribe') {
          this.#subscribed.set(key, params!.uri as string);
          p = up.subscribe(ctx, hit!.name, caller);
        } else {
          this.#subscribed.delete(key);
          p = up.unsubscribe(ctx, hit!.name, caller);
        }
        void p.then((r) => this.#respond(req.id, r, out));
        return;
      }
      case 'completion/complete':
        this.#complete(req, out, params ?? {}, scope, ctx, meta);
        return;
      case 'logging/setLevel':
        this.#setLevel(req, out, params ?? {}, scope, ctx);
        return;
      default: {
        const only = this.view.kind === 'single' ? this.view.members[0] : undefined;
        if (only && scope.server(only.upstream.name)) {
          this.#forward(req, out, only.upstream, params, ctx, meta);
          return;
        }
        throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_METHOD', `Method not found: ${req.method}`);
      }
    }
  }

  /** The route of a tool as listed (exposed name), for the pipeline's `tools/list` filter. */
  readonly #routeOfTool = (tool: JsonObject): Route | undefined => {
    const name = tool.name;
    const hit = typeof name === 'string' ? this.view.resolveTool(name) : undefined;
    return hit === undefined ? undefined : { server: hit.member.upstream.name, name: hit.name };
  };

  /**
   * On a single-server view, a name missing from the cached catalog is forwarded unchanged so the
   * upstream answers it (faithful pass-through) — unless the server's filters hide that name
   * (denied, or renamed away).
   */
  #passThrough(name: string, kind: 'tools' | 'prompts'): { member: ViewMember; name: string } | undefined {
    if (this.view.kind !== 'single') return undefined;
    const member = this.view.members[0];
    return member && member[kind](name) === name ? { member, name } : undefined;
  }

  #initialize(params: JsonObject): JsonObject {
    const requested = params.protocolVersion;
    const version =
      typeof requested === 'string' && (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(requested)
        ? requested
        : SUPPORTED_PROTOCOL_VERSIONS[0];
    this.protocolVersion = version;
    this.clientCapabilities = (params.capabilities as ClientCapabilities | undefined) ?? {};
    this.clientInfo = params.clientInfo as JsonObject | undefined;
    return { protocolVersion: version, ...this.view.initializeResult() };
  }

  /**
   * Answers a list request. A whole list (no cursor, and it fits one page) is serialised once per
   * list: the view's arrays are rebuilt, never changed, when a catalog changes, so the array is
   * the cache key.
   */
  #list(id: JsonRpcId, out: OutboundChannel, items: JsonObject[], field: string, params: JsonObject | undefined): void {
    const size = this.#host.pageSize;
    if (out.sendResult !== undefined && params?.cursor === undefined && (size <= 0 || items.length <= size)) {
      let json = SERIALIZED_LISTS.get(items);
      if (json === undefined) {
        json = JSON.stringify({ [field]: items });
        SERIALIZED_LISTS.set(items, json);
      }
      out.sendResult(id, json);
      return;
    }
    out.send({ jsonrpc: '2.0', id, result: this.#page(items, field, params) });
  }

  #page(items: JsonObject[], field: string, params: JsonObject | undefined): JsonObject {
    const size = this.#host.pageSize;
    const start = params?.cursor === undefined ? 0 : decodeCursor(params.cursor);
    if (size <= 0 || (start === 0 && items.length <= size)) return { [field]: items };
    const end = start + size;
    const result: JsonObject = { [field]: items.slice(start, end) };
    if (end < items.length) result.nextCursor = encodeCursor(end);
    return result;
  }

  #resource(params: JsonObject | undefined, scope: Scope): { member: ViewMember; name: string } {
    const uri = params?.uri;
    const hit = typeof uri === 'string' ? this.view.resolveResource(uri) : undefined;
    if (!hit || !scope.server(hit.member.upstream.name))
      throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_RESOURCE', `Resource not found: ${String(uri)}`, { data: { uri } });
    return hit;
  }

  #complete(
    req: JsonRpcRequest,
    out: OutboundChannel,
    params: JsonObject,
    scope: Scope,
    ctx: SlotContext,
    meta: RequestContext,
  ): void {
    const ref = params.ref as JsonObject | undefined;
    if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
      const hit = this.view.resolvePrompt(ref.name);
      if (!hit || !scope.server(hit.member.upstream.name))
        throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_PROMPT', `Unknown prompt: ${ref.name}`);
      ref.name = hit.name;
      this.#forward(req, out, hit.member.upstream, params, ctx, meta);
      return;
    }
    if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
      const member = this.view.resolveTemplate(ref.uri);
      if (!member || !scope.server(member.upstream.name))
        throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_RESOURCE', `Unknown resource template: ${ref.uri}`);
      this.#forward(req, out, member.upstream, params, ctx, meta);
      return;
    }
    throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_PARAMS', 'completion/complete needs ref/prompt or ref/resource');
  }

  #setLevel(req: JsonRpcRequest, out: OutboundChannel, params: JsonObject, scope: Scope, ctx: SlotContext): void {
    const level = params.level;
    const index = typeof level === 'string' ? LOG_LEVELS.indexOf(level) : -1;
    if (index < 0) throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_PARAMS', `Invalid log level: ${String(level)}`);
    this.#minLogLevel = index;
    const targets = this.view.members.filter(
      (m) => m.upstream.capabilities.logging !== undefined && scope.server(m.upstream.name),
    );
    const caller = this.#caller(out);
    void Promise.all(targets.map((m) => m.upstream.call(ctx, 'logging/setLevel', { level }, caller).response)).then(
      (responses) => {
        const only = this.view.kind === 'single' ? responses[0] : undefined;
        if (only && 'error' in only) this.#respond(req.id, only, out);
        else out.send({ jsonrpc: '2.0', id: req.id, result: {} });
      },
    );
  }

  #logLevelAllows(n: JsonRpcNotification): boolean {
    if (this.#minLogLevel < 0) return true;
    const level = n.params?.level;
    return typeof level !== 'string' || LOG_LEVELS.indexOf(level) >= this.#minLogLevel;
  }

  #forward(
    req: JsonRpcRequest,
    out: OutboundChannel,
    upstream: Upstream,
    params: JsonObject | undefined,
    ctx: SlotContext,
    meta: RequestContext,
  ): void {
    const call = upstream.call(ctx, req.method, params, this.#caller(out));
    const id = req.id;
    this.#inflight.set(id, call);
    void call.response.then((response) => {
      if (this.#inflight.get(id) !== call) {
        out.end?.(); // cancelled: no response (MCP cancellation)
        return;
      }
      response.id = id;
      const phase = this.#host.pipeline.result;
      if (phase !== undefined && 'result' in response) {
        let pending: Promise<void> | undefined;
        try {
          pending = phase(meta, req, response);
        } catch (err) {
          this.#inflight.delete(id);
          this.#refuse(req, out, err, meta);
          return;
        }
        if (pending !== undefined) {
          pending.then(
            () => this.#deliver(id, call, response, out),
            (err: unknown) => {
              if (this.#inflight.get(id) !== call) return void out.end?.();
              this.#inflight.delete(id);
              this.#refuse(req, out, err, meta);
            },
          );
          return;
        }
      }
      this.#inflight.delete(id);
      this.#send(out, response);
    });
  }

  /** Sends a forwarded call's response after an asynchronous result phase, unless cancelled meanwhile. */
  #deliver(id: JsonRpcId, call: UpstreamCall, response: JsonRpcResponse, out: OutboundChannel): void {
    if (this.#inflight.get(id) !== call) {
      out.end?.();
      return;
    }
    this.#inflight.delete(id);
    this.#send(out, response);
  }

  #respond(id: JsonRpcId, response: JsonRpcResponse, out: OutboundChannel): void {
    response.id = id;
    this.#send(out, response);
  }

  /**
   * Sends a message that came from an upstream. Serialising it can fail (`JSON.stringify` on
   * nesting too deep for the stack): then a response is replaced by a -32023
   * `SWB_ERR_UPSTREAM_PROTOCOL` error for the same id and anything else is dropped, both logged at
   * `warn` — never an exception thrown out of a promise callback.
   */
  #send(out: OutboundChannel, message: JsonRpcMessage): void {
    try {
      out.send(toClientMessage(message, this.#withheld));
    } catch (err) {
      this.#host.logger.warn({ err, sessionId: this.id }, 'an upstream message could not be serialised; not forwarded');
      if ('method' in message) return;
      const ge = new GatewayError('SWB_ERR_UPSTREAM_PROTOCOL', 'the upstream answer could not be serialised');
      out.send({ jsonrpc: '2.0', id: message.id, error: clientJsonRpcError(ge) });
    }
  }

  #caller(out: OutboundChannel): Caller {
    return {
      sessionId: this.id,
      clientCapabilities: this.clientCapabilities,
      notify: (n) => {
        if (n.method === 'notifications/message' && !this.#logLevelAllows(n)) return;
        if (!out.closed) this.#send(out, n);
        else this.sendUnrelated(n);
      },
      request: (method, params) => this.#requestClient(method, params, out),
    };
  }

  #requestClient(
    method: string,
    params: JsonObject | undefined,
    out: OutboundChannel,
  ): Promise<{ result?: JsonObject; error?: JsonRpcErrorObject }> {
    if (this.#closed) return Promise.reject(new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'client session closed'));
    const ch = !out.closed ? out : this.#standalone && !this.#standalone.closed ? this.#standalone : undefined;
    if (!ch) {
      return Promise.reject(
        new GatewayError('SWB_ERR_ROUTE_NO_CALLER', `the client has no open stream to receive ${method}`),
      );
    }
    const id = this.#nextClientRequestId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#clientRequests.delete(id);
        reject(new GatewayError('SWB_ERR_UPSTREAM_TIMEOUT', `the client did not answer ${method} in time`));
      }, this.#host.clientRequestTimeoutMs);
      timer.unref();
      this.#clientRequests.set(id, { resolve, reject, timer });
      const message: JsonRpcRequest =
        params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };
      ch.send(message);
    });
  }

  #notifyUpstream(upstream: Upstream, n: JsonRpcNotification, reqId: string | undefined): void {
    upstream
      .acquire(this.#slot)
      .then((conn) => conn.notify(n.method, n.params))
      .catch((err: unknown) =>
        this.#host.logger.debug({ reqId, err, server: upstream.name }, 'notification not forwarded'),
      );
  }

  #errorFor(id: JsonRpcId, err: unknown, reqId: string | undefined): JsonRpcResponse {
    if (!isGatewayError(err) || err.family === 'config')
      this.#host.logger.error({ reqId, err }, 'unexpected error handling a request');
    return encodeError(err, { responseStarted: true, id }).response;
  }

  /** Logs what `toClientMessage` withheld from the client: an upstream failure's detail (command line, URL …). */
  readonly #withheld = (error: JsonRpcErrorObject): void => {
    const code = (error.data as { code?: unknown } | undefined)?.code;
    this.#host.logger.warn({ sessionId: this.id, code, detail: error.message }, 'upstream error detail withheld');
  };
}
