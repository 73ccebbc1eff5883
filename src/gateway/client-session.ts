/**
 * The MCP server side of one client session (2025 protocol era): answers `initialize`, `ping`
 * and the list methods from the view's cache, routes calls to the owning upstream, restores the
 * client's ids, and carries server→client requests and notifications back to this client only.
 *
 * Transport-agnostic: the HTTP edge hands in messages with an {@link OutboundChannel} for the
 * messages related to a request (a POST's JSON/SSE response), and attaches a standalone channel
 * (the GET stream, or the legacy SSE stream) for unrelated messages.
 *
 * Parts: routing and authorization `session-route.ts`, list answers and pagination
 * `session-lists.ts`, server→client requests `client-requests.ts`, log levels `log-levels.ts`,
 * version negotiation `protocol-versions.ts`, and the channel and host interfaces
 * `session-host.ts`.
 *
 * Size: over 500 lines: the per-method dispatch shares the session's in-flight and
 * subscription tables; the parts above are split out.
 *
 * @module
 */
import { offerUrlElicitation } from './url-elicitation.js';
import type { Principal } from '../auth/principal.js';
import { scopeOf, type Scope } from '../auth/rbac.js';
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
import type { Caller, ClientCapabilities } from '../upstream/connection.js';
import type { SlotContext, Upstream, UpstreamCall } from '../upstream/upstream.js';
import type { View } from './view.js';
import { IdTable } from '../protocol/id-table.js';
import type { RequestContext, Route } from '../pipeline/stage.js';
import { ClientRequests, type ClientAnswer } from './client-requests.js';
import { logLevelAllows, logLevelIndex } from './log-levels.js';
import type { OutboundChannel, SessionHost } from './session-host.js';
import { listBytes, sendList } from './session-lists.js';
import { routeCompletion, routeRequest, type Hit } from './session-route.js';
import { exposeTaskId, routeTask, TASK_METHODS } from './tasks.js';
import {
  CALL_TOOL,
  indexOf,
  SEARCH_EXPOSURE_TOOLS,
  SEARCH_TOOLS,
  searchArguments,
  searchResult,
  unwrapCallTool,
} from './tool-search.js';
import { negotiateVersion } from './protocol-versions.js';

export { DEFAULT_NEGOTIATED_VERSION, SUPPORTED_PROTOCOL_VERSIONS } from './protocol-versions.js';

export type { OutboundChannel, SessionHost } from './session-host.js';

/**
 * How a session's client reaches it: a Streamable HTTP session (2025 era, `Mcp-Session-Id`), the
 * legacy HTTP+SSE transport, or `stateless`: the gateway's own session that serves one principal's
 * modern (MCP 2026-07-28) requests on one view, never named to the client (`http/modern.ts`).
 */
export type SessionTransport = 'streamable-http' | 'sse' | 'stateless';

/** One client session on one view. */
export class ClientSession {
  readonly id: string;
  /**
   * The `Mcp-Session-Id` the client presents: {@link id}, or the sealed id any replica can read
   * (`./session-seal.ts`), set when `initialize` is answered.
   */
  externalId: string;
  readonly principal: Principal;
  readonly transportKind: SessionTransport;
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
  #clientRequests = new ClientRequests();
  #standalone: OutboundChannel | undefined;
  #minLogLevel = -1;
  #closed = false;
  /** `server\nupstream URI` → the URI this client subscribed with (a `switchboard://` form for collisions). */
  #subscribed = new Map<string, string>();

  /**
   * @param createdAt - when the session began (gateway clock, ms); default now. A session
   *   restored from a sealed id keeps its original time, so `sessions.maxLifetime` still holds.
   */
  constructor(
    id: string,
    view: View,
    principal: Principal,
    transportKind: SessionTransport,
    host: SessionHost,
    createdAt?: number,
  ) {
    this.id = id;
    this.externalId = id;
    this.view = view;
    this.principal = principal;
    this.transportKind = transportKind;
    this.#host = host;
    this.#slot = { sessionId: id, principalId: principal.id };
    this.lastActivity = host.now();
    this.createdAt = createdAt ?? this.lastActivity;
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
    // The subscription lives on this replica's upstream connection: the update is for this
    // session only, wherever its stream is.
    if (exposed === undefined || exposed === uri) {
      this.#sendOrForward(n);
      return;
    }
    this.#sendOrForward({ jsonrpc: '2.0', method: n.method, params: { ...n.params, uri: exposed } });
  }

  /**
   * Delivers an upstream's unrelated notification, applying this session's log level. `own`:
   * the notification comes from a connection held for this session alone (`isolation:
   * session`), which exists on this replica only, so it is passed to the replica holding the
   * session's stream when this one does not; a shared connection's notification is heard by
   * every replica's own connection and is not passed on.
   */
  deliverNotification(n: JsonRpcNotification, own = false): void {
    if (n.method === 'notifications/message' && !logLevelAllows(this.#minLogLevel, n)) return;
    if (own) this.#sendOrForward(n);
    else this.sendUnrelated(n);
  }

  /**
   * A notification for this session that another replica passed on ({@link
   * SessionHost.forwardNotification}): sent on the standalone stream if this replica holds it,
   * else dropped (never passed on again).
   */
  deliverForwarded(n: JsonRpcNotification): void {
    const ch = this.#standalone;
    if (ch && (!ch.closed || ch.retains === true)) this.#send(ch, n);
  }

  /**
   * Sends `n` on the standalone stream (or its retained buffer); without one here, a portable
   * session's notification goes to the replica that holds the stream.
   */
  #sendOrForward(n: JsonRpcNotification): void {
    const ch = this.#standalone;
    if (ch && (!ch.closed || ch.retains === true)) this.#send(ch, n);
    else if (this.externalId !== this.id) this.#host.forwardNotification?.(this, n);
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
      let search = false;
      if (req.method === 'tools/call' && this.view.exposure === 'search') {
        const name = req.params?.name;
        if (name === SEARCH_TOOLS) {
          // The gateway's own tool: no upstream, but rate limits and the usage log see it by name.
          searchArguments(req.params);
          search = true;
          ctx.tool = SEARCH_TOOLS;
        }
        // From here on the request is the real tool's call: every stage and record sees that tool.
        else if (name === CALL_TOOL) req = unwrapCallTool(req);
      }
      if (!search)
        hit = TASK_METHODS.has(req.method)
          ? routeTask(this.view, req, ctx, this.#host.taskIds, out.clientCapabilities ?? this.clientCapabilities)
          : routeRequest(this.view, req, ctx);
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
          // The session may have closed while the stage ran: forwarding then would start work
          // (an isolated child, even) for a session nothing will release any more.
          () =>
            this.#closed
              ? this.#refuse(req, out, new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'client session closed'), ctx)
              : this.#run(req, out, ctx, hit),
          (err: unknown) => this.#refuse(req, out, err, ctx),
        );
        return;
      }
    }
    this.#run(req, out, ctx, hit);
  }

  /**
   * Answers a `search_tools` call of a search-exposure view from the index of the tools this
   * principal may use: its scoped list, narrowed by the pipeline's `tools/list` filter (tool
   * approvals) as `tools/list` would be.
   */
  #searchTools(req: JsonRpcRequest, out: OutboundChannel, ctx: RequestContext): void {
    const { query, limit } = searchArguments(req.params);
    const tools = this.view.listsFor(scopeOf(ctx.principal)).tools;
    const filter = this.#host.pipeline.listTools;
    let allowed: ((tool: JsonObject) => boolean) | undefined;
    if (filter !== undefined) {
      const kept = filter(ctx, tools, this.#routeOfTool);
      if (kept.length !== tools.length) {
        const set = new Set(kept);
        allowed = (tool) => set.has(tool);
      }
    }
    const matches = indexOf(tools).search(query, limit, allowed);
    out.send({ jsonrpc: '2.0', id: req.id, result: searchResult(matches) });
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

  /**
   * Handles the client's response to a server→client request we forwarded. A portable
   * session's response that no request of this process waits for may answer another replica's:
   * it goes to the host's {@link SessionHost.forwardClientResponse}.
   */
  handleResponse(r: JsonRpcResponse): void {
    this.lastActivity = this.#host.now();
    if (!this.#clientRequests.answer(r) && this.externalId !== this.id) this.#host.forwardClientResponse?.(this, r);
  }

  /**
   * Answers a server→client request of this process with a response the client sent to another
   * replica of this portable session.
   *
   * @returns false when no request of this process waits for it
   */
  answerForwarded(r: JsonRpcResponse): boolean {
    return this.#clientRequests.answer(r);
  }

  /**
   * Gives the session the sealed id the client presents (see {@link externalId}): other replicas
   * may serve it too, so its server→client requests take ids from this process's own block.
   */
  adoptSealedId(externalId: string): void {
    this.externalId = externalId;
    if (externalId !== this.id) this.#clientRequests = new ClientRequests(ClientRequests.portableBase);
  }

  /** Ends the session: cancels its upstream calls, fails its pending client requests, releases isolated children. */
  close(reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    for (const call of this.#inflight.values()) call.cancel('session closed');
    this.#inflight.clear();
    this.#clientRequests.rejectAll(() => new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'client session closed'));
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
    const size = this.#host.pageSize;
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
            identity: meta,
          };
    switch (req.method) {
      case 'initialize':
        out.send({ jsonrpc: '2.0', id: req.id, result: this.#initialize(params ?? {}) });
        return;
      case 'ping':
        out.send({ jsonrpc: '2.0', id: req.id, result: {} });
        return;
      case 'tools/list': {
        const search = this.view.exposure === 'search';
        const record = this.#host.recordToolList;
        // Only the search list is needed to answer; the full one is for the size metric.
        if (search && record === undefined) {
          sendList(req.id, out, SEARCH_EXPOSURE_TOOLS, 'tools', params, size);
          return;
        }
        const tools = this.view.listsFor(scope).tools;
        const filter = this.#host.pipeline.listTools;
        const items = filter === undefined ? tools : filter(meta, tools, this.#routeOfTool);
        const sent = search ? SEARCH_EXPOSURE_TOOLS : items;
        if (record !== undefined && params?.cursor === undefined) {
          const full = listBytes(items, 'tools');
          record(this.view, search ? listBytes(sent, 'tools') : full, full);
        }
        sendList(req.id, out, sent, 'tools', params, size);
        return;
      }
      case 'prompts/list':
        sendList(req.id, out, this.view.listsFor(scope).prompts, 'prompts', params, size);
        return;
      case 'resources/list':
        sendList(req.id, out, this.view.listsFor(scope).resources, 'resources', params, size);
        return;
      case 'resources/templates/list':
        sendList(req.id, out, this.view.listsFor(scope).resourceTemplates, 'resourceTemplates', params, size);
        return;
      case 'tools/call':
        // Without a route only `search_tools` of a search-exposure view gets here (handleRequest).
        if (hit === undefined) this.#searchTools(req, out, meta);
        else this.#forwardNamed(req, out, hit, ctx, meta);
        return;
      case 'prompts/get':
        this.#forwardNamed(req, out, hit!, ctx, meta);
        return;
      case 'resources/read':
        (params as JsonObject).uri = hit!.name;
        this.#forward(req, out, hit!.member.upstream, params, ctx, meta);
        return;
      case 'tasks/get':
      case 'tasks/update':
      case 'tasks/cancel':
        // Routed by routeTask: the owning upstream gets its own task id.
        (params as JsonObject).taskId = hit!.name;
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
      case 'completion/complete': {
        const p = params ?? {};
        const up = routeCompletion(this.view, p, scope, meta);
        if (
          this.view.kind !== 'single' &&
          up.initializeResult !== undefined &&
          up.capabilities.completions === undefined
        ) {
          // The view advertises completions for all its members (gateway/capabilities.ts): a
          // member without them has no suggestions.
          out.send({ jsonrpc: '2.0', id: req.id, result: { completion: { values: [], hasMore: false } } });
          return;
        }
        this.#forward(req, out, up, p, ctx, meta);
        return;
      }
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

  /** Forwards a `tools/call` or `prompts/get` resolved and authorized by routeRequest: the upstream gets its own name. */
  #forwardNamed(req: JsonRpcRequest, out: OutboundChannel, hit: Hit, ctx: SlotContext, meta: RequestContext): void {
    (req.params as JsonObject).name = hit.name;
    this.#forward(req, out, hit.member.upstream, req.params, ctx, meta);
  }

  /** The route of a tool as listed (exposed name), for the pipeline's `tools/list` filter. */
  readonly #routeOfTool = (tool: JsonObject): Route | undefined => {
    const name = tool.name;
    const hit = typeof name === 'string' ? this.view.resolveTool(name) : undefined;
    return hit === undefined ? undefined : { server: hit.member.upstream.name, name: hit.name };
  };

  #initialize(params: JsonObject): JsonObject {
    const version = negotiateVersion(params.protocolVersion);
    this.protocolVersion = version;
    this.clientCapabilities = (params.capabilities as ClientCapabilities | undefined) ?? {};
    this.clientInfo = params.clientInfo as JsonObject | undefined;
    this.adoptSealedId(this.#host.sealSession?.(this) ?? this.id);
    return { protocolVersion: version, ...this.view.initializeResult() };
  }

  #setLevel(req: JsonRpcRequest, out: OutboundChannel, params: JsonObject, scope: Scope, ctx: SlotContext): void {
    const level = params.level;
    const index = logLevelIndex(level);
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
      if ('error' in response) offerUrlElicitation(response, out.clientCapabilities ?? this.clientCapabilities);
      if (req.method === 'tools/call' || req.method === 'tasks/get')
        exposeTaskId(this.#host.taskIds, req.method, meta.principal.id, upstream.name, response);
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
   * nesting too deep for the stack): then a response is replaced by an
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
      sessionId: out.callerId ?? this.id,
      clientCapabilities: out.clientCapabilities ?? this.clientCapabilities,
      modern: this.transportKind === 'stateless',
      notify: (n) => {
        if (n.method === 'notifications/message' && !logLevelAllows(this.#minLogLevel, n)) return;
        if (!out.closed) this.#send(out, n);
        // The POST stream ended (progress after the response): the client's stream, wherever it is.
        else this.#sendOrForward(n);
      },
      request: (method, params) => this.#requestClient(method, params, out),
      missingCapability: out.missingCapability?.bind(out),
    };
  }

  #requestClient(method: string, params: JsonObject | undefined, out: OutboundChannel): Promise<ClientAnswer> {
    if (this.#closed) return Promise.reject(new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'client session closed'));
    const ch = !out.closed ? out : this.#standalone && !this.#standalone.closed ? this.#standalone : undefined;
    if (!ch) {
      return Promise.reject(
        new GatewayError('SWB_ERR_ROUTE_NO_CALLER', `the client has no open stream to receive ${method}`),
      );
    }
    return this.#clientRequests.send(method, params, ch, this.#host.clientRequestTimeoutMs);
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
