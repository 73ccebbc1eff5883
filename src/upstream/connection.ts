/**
 * The MCP client side of one upstream server instance: the opening (the `server/discover` probe
 * of the modern era, or the initialize handshake of the 2025 era), request id
 * remapping, progress-token remapping, cancellation, timeouts, and attribution of
 * server→client requests to the client call that caused them.
 *
 * Many client sessions share one connection (a shared stdio child, or an HTTP upstream session
 * per principal). Every outgoing request gets a fresh numeric id unique on this connection, so
 * ids from different clients never collide; the caller restores the client's own id.
 *
 * With a modern upstream (MCP 2026-07-28) there is no handshake: every request carries the
 * per-request `_meta` fields (one frozen object per connection, merged over the caller's `_meta`
 * in a copy: the caller's params are not touched), HTTP transports mirror the version, method and
 * name into headers, and cancellation is the transport's (closing the response stream over HTTP,
 * `notifications/cancelled` over stdio).
 *
 * Size: over 500 lines: id remapping, the opening, timeouts and attribution are one state
 * machine over shared private tables; the transports, the era probe and the attribution
 * admission are modules of their own.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type {
  JsonObject,
  JsonRpcId,
  JsonRpcMessage,
  JsonRpcNotification,
  JsonRpcRequest,
  JsonRpcResponse,
} from '../protocol/jsonrpc.js';
import { errorResponse, isNotification, isRequest } from '../protocol/jsonrpc.js';
import {
  META_CLIENT_CAPABILITIES,
  META_SUBSCRIPTION_ID,
  REMOVED_IN_MODERN,
  UPSTREAM_MODERN_VERSION,
} from '../protocol/era.js';
import type { Logger } from '../observability/logger.js';
import { SENT, type IncomingMessageInfo, type MessageTransport, type TransportCloseInfo } from './transport.js';
import { IdTable } from '../protocol/id-table.js';
import { attributionTimeoutResponse, closedResponse, timeoutResponse } from './synthetic-responses.js';
import {
  declaresServerRequests,
  ExclusiveAdmission,
  forwardServerRequest,
  type Caller,
  type ClientCapabilities,
  type ServerRequestAnswer,
} from './attribution.js';
import {
  initializeResultOfDiscover,
  judgeDiscoverAnswer,
  modernRequestMeta,
  type ProbeVerdict,
  type UpstreamEra,
  type UpstreamProtocol,
} from './era-probe.js';

/** The newest MCP protocol version the gateway offers to upstreams. */
export const UPSTREAM_PROTOCOL_VERSION = '2025-11-25';

export {
  declaresServerRequests,
  SERVER_REQUEST_CAPABILITY,
  type Caller,
  type ClientCapabilities,
} from './attribution.js';

/** Options for {@link UpstreamConnection}. */
export interface UpstreamConnectionOptions {
  /** Server name (logs). */
  name: string;
  logger: Logger;
  /** Per-request timeout in ms; reset by progress notifications. Default 60 000. */
  requestTimeoutMs?: number;
  /** Timeout of the initialize handshake in ms (and of the probe under `protocol: modern`). Default 30 000. */
  initializeTimeoutMs?: number;
  /**
   * How {@link UpstreamConnection.open} learns the upstream's era (the `protocol` server setting):
   * `auto` probes with `server/discover` and falls back to `initialize`, `legacy` only
   * initializes, `modern` probes and never falls back. Default `legacy`.
   */
  protocol?: UpstreamProtocol;
  /** How long an `auto` probe waits for an answer before falling back, in ms. Default 5 000. */
  probeTimeoutMs?: number;
  /**
   * True when nothing on the wire relates server→client requests to calls (stdio). Calls from
   * clients that declared sampling/elicitation/roots are then admitted one session at a time,
   * so every server→client request is attributable to that session; others are not held back.
   */
  exclusiveAttribution?: boolean;
  /** Bounded wait (ms) for admission under exclusive attribution. Default 30 000. */
  attributionWaitMs?: number;
  /** Version string sent in `clientInfo`. */
  gatewayVersion?: string;
  /** Notifications not related to any call (list_changed, resources/updated, unrelated logging). */
  onNotification?: (notification: JsonRpcNotification) => void;
  /** Fired once when the underlying transport closed. */
  onClose?: (info: TransportCloseInfo) => void;
}

interface Pending {
  readonly upstreamId: number;
  readonly resolve: (response: JsonRpcResponse) => void;
  readonly caller: Caller | undefined;
  /** The client's original progress token, when the request carried one. */
  readonly progressToken: string | number | undefined;
  timer: NodeJS.Timeout | undefined;
  readonly method: string;
  /** This request's timeout (ms; 0 = none). */
  readonly timeoutMs: number;
}

/** Options of one {@link UpstreamConnection.request} call. */
export interface RequestOptions {
  /** The client call this is made for; absent for the gateway's own requests (catalog refresh). */
  caller?: Caller;
  /** Overrides the connection's request timeout (ms). */
  timeoutMs?: number;
  /** Extra HTTP headers for this request (remote upstreams). */
  headers?: Readonly<Record<string, string>>;
  /** The client request's id, for the transport's log lines (observability/request-id). */
  reqId?: string | undefined;
}

/** Handle of an in-flight request, used to cancel it. */
export interface InFlightRequest {
  /** The id used on the upstream wire. */
  readonly upstreamId: number;
  readonly response: Promise<JsonRpcResponse>;
}

/**
 * One initialized MCP client connection to an upstream server.
 *
 * Create with a started-or-not transport, then `await initialize()`. `request()` never rejects:
 * transport failures, timeouts and closure resolve as JSON-RPC error responses carrying a
 * GatewayError code in `error.data.code`, so the client always gets an answer.
 */
export class UpstreamConnection {
  readonly name: string;
  readonly transport: MessageTransport;
  #logger: Logger;
  #nextId = 1;
  #pending = new IdTable<Pending>();
  #requestTimeoutMs: number;
  #initializeTimeoutMs: number;
  #exclusive: boolean;
  #attributionWaitMs: number;
  #gatewayVersion: string;
  #onNotification: ((n: JsonRpcNotification) => void) | undefined;
  #onClose: ((info: TransportCloseInfo) => void) | undefined;
  #closed = false;
  #closeInfo: TransportCloseInfo | undefined;
  #initializeResult: JsonObject | undefined;
  readonly #protocol: UpstreamProtocol;
  readonly #probeTimeoutMs: number;
  /** The era, once the opening decided it. */
  #era: UpstreamEra | undefined;
  /** The upstream's `DiscoverResult` (modern era). */
  #discoverResult: JsonObject | undefined;
  /** The per-request `_meta` of the modern era (frozen, one per connection). */
  readonly #modernMeta: Readonly<JsonObject>;
  /** The modern `_meta` with a caller's capabilities, one per capabilities object (a 2025 session's is the same for all its calls). */
  readonly #metaByCaps = new WeakMap<object, Readonly<JsonObject>>();
  /** The params of a modern request that has none of its own. */
  readonly #bareModernParams: Readonly<JsonObject>;
  /** Under exclusive attribution: admits the bidi calls of one client session at a time. */
  readonly #admission: ExclusiveAdmission;
  /** Upstream-originated requests currently forwarded to a client: upstream id → abort. */
  #serverRequests = new Map<JsonRpcId, AbortController>();

  constructor(transport: MessageTransport, options: UpstreamConnectionOptions) {
    this.transport = transport;
    this.name = options.name;
    this.#logger = options.logger;
    this.#requestTimeoutMs = options.requestTimeoutMs ?? 60_000;
    this.#initializeTimeoutMs = options.initializeTimeoutMs ?? 30_000;
    this.#exclusive = options.exclusiveAttribution ?? false;
    this.#attributionWaitMs = options.attributionWaitMs ?? 30_000;
    this.#admission = new ExclusiveAdmission(this.#attributionWaitMs, () => this.#closed);
    this.#gatewayVersion = options.gatewayVersion ?? '0.0.0';
    this.#protocol = options.protocol ?? 'legacy';
    // The probe is part of opening the connection: it never outlasts the initialize budget.
    this.#probeTimeoutMs = Math.min(options.probeTimeoutMs ?? 5000, this.#initializeTimeoutMs);
    this.#modernMeta = modernRequestMeta(this.#gatewayVersion);
    this.#bareModernParams = Object.freeze({ _meta: this.#modernMeta });
    this.#onNotification = options.onNotification;
    this.#onClose = options.onClose;
    transport.onmessage = (message, info) => this.#onMessage(message, info);
    transport.onclose = (info) => this.#handleClose(info);
    transport.onerror = (error) => this.#logger.warn({ err: error }, 'upstream transport error');
  }

  /** The upstream's InitializeResult (protocolVersion, capabilities, serverInfo, instructions). */
  get initializeResult(): JsonObject | undefined {
    return this.#initializeResult;
  }

  /** The era the upstream speaks, once the connection is open. */
  get era(): UpstreamEra | undefined {
    return this.#era;
  }

  /** A modern upstream's `DiscoverResult` (server/discover). */
  get discoverResult(): JsonObject | undefined {
    return this.#discoverResult;
  }

  /** Server capabilities from the InitializeResult. */
  get capabilities(): JsonObject {
    return (this.#initializeResult?.capabilities as JsonObject | undefined) ?? {};
  }

  /** True once the transport has closed. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Why the transport closed, once it has. */
  get closeInfo(): TransportCloseInfo | undefined {
    return this.#closeInfo;
  }

  /** Number of requests awaiting a response. */
  get inFlight(): number {
    return this.#pending.size;
  }

  /**
   * Starts the transport and performs the MCP initialize handshake (lifecycle §Initialization):
   * `initialize` with every client capability the gateway can route back (sampling, elicitation,
   * roots), then `notifications/initialized`.
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_UNAVAILABLE` / `SWB_ERR_UPSTREAM_PROTOCOL` / `SWB_ERR_UPSTREAM_TIMEOUT`
   */
  async initialize(): Promise<JsonObject> {
    await this.transport.start();
    return this.#handshake();
  }

  /**
   * Starts the transport and opens the connection in the era the `protocol` option asks for
   * (basic/versioning §Backward Compatibility):
   * - `legacy`: the initialize handshake ({@link initialize});
   * - `auto`: a `server/discover` probe stamped with the modern `_meta` (and, over HTTP, the
   *   modern headers). A `DiscoverResult` listing 2026-07-28 makes the connection modern; any
   *   other answer, an HTTP 4xx without a modern error body, or no answer within
   *   `probeTimeoutMs` falls back to the handshake. A modern error (e.g.
   *   `UnsupportedProtocolVersion`) does not fall back;
   * - `modern`: the probe (waiting up to `initializeTimeoutMs`), without fallback.
   *
   * Resolves with the InitializeResult, or for a modern upstream its InitializeResult-shaped view
   * of the `DiscoverResult` ({@link initializeResultOfDiscover}).
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_ERA` when the upstream does not speak an era the
   *   setting allows; those of {@link initialize} otherwise
   */
  async open(): Promise<JsonObject> {
    await this.transport.start();
    if (this.#protocol === 'legacy') return this.#handshake();
    const verdict = await this.#probe();
    switch (verdict.kind) {
      case 'modern':
        return this.#becomeModern(verdict.result);
      case 'unreachable':
        // `data.closedByProbe`: the upstream went away on the probe (a stdio child that exits on
        // a method it does not know); the pool opens the next connection with initialize.
        throw verdict.code === 'SWB_ERR_UPSTREAM_CLOSED'
          ? new GatewayError('SWB_ERR_UPSTREAM_CLOSED', `server/discover failed: ${verdict.reason}`, {
              data: { closedByProbe: true },
            })
          : new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `server/discover failed: ${verdict.reason}`);
      case 'incompatible':
        throw new GatewayError('SWB_ERR_UPSTREAM_ERA', `upstream "${this.name}" is modern but ${verdict.reason}`);
      case 'legacy':
        if (this.#protocol === 'modern') {
          throw new GatewayError(
            'SWB_ERR_UPSTREAM_ERA',
            `upstream "${this.name}" does not speak MCP ${UPSTREAM_MODERN_VERSION} (protocol: modern): ${verdict.reason}`,
          );
        }
        this.#logger.info({ reason: verdict.reason }, 'upstream is not modern; opening with initialize');
        return this.#handshake();
    }
  }

  /** Sends the `server/discover` probe and judges its answer. */
  async #probe(): Promise<ProbeVerdict> {
    const response = await this.request('server/discover', this.#bareModernParams, {
      timeoutMs: this.#protocol === 'modern' ? this.#initializeTimeoutMs : this.#probeTimeoutMs,
      headers: PROBE_HEADERS,
    }).response;
    return judgeDiscoverAnswer(response);
  }

  #becomeModern(discover: JsonObject): JsonObject {
    this.#era = 'modern';
    this.#discoverResult = discover;
    const result = initializeResultOfDiscover(discover);
    this.#initializeResult = result;
    this.transport.useModernEra?.(UPSTREAM_MODERN_VERSION);
    return result;
  }

  /** The initialize handshake on a started transport. */
  async #handshake(): Promise<JsonObject> {
    const response = await this.request(
      'initialize',
      {
        protocolVersion: UPSTREAM_PROTOCOL_VERSION,
        capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
        clientInfo: { name: 'switchboard', version: this.#gatewayVersion },
      },
      { timeoutMs: this.#initializeTimeoutMs },
    ).response;
    if ('error' in response) {
      const code = (response.error.data as { code?: string } | undefined)?.code;
      throw new GatewayError(
        code === 'SWB_ERR_UPSTREAM_TIMEOUT' ? 'SWB_ERR_UPSTREAM_TIMEOUT' : 'SWB_ERR_UPSTREAM_UNAVAILABLE',
        `initialize failed: ${response.error.message}`,
        { data: { upstreamError: response.error } },
      );
    }
    const result = response.result;
    if (typeof result.protocolVersion !== 'string') {
      throw new GatewayError('SWB_ERR_UPSTREAM_PROTOCOL', 'initialize result has no protocolVersion');
    }
    this.#initializeResult = result;
    this.#era = 'legacy';
    this.transport.setProtocolVersion?.(result.protocolVersion);
    await this.transport.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return result;
  }

  /**
   * Sends a request upstream with a fresh id. The returned promise always resolves, with the
   * upstream's response (its `id` is the upstream id: the caller restores its own) or a
   * synthetic error response.
   *
   * `params` is mutated only to replace `_meta.progressToken` with the upstream id; the client's
   * token is restored on the way back.
   */
  request(method: string, params: JsonObject | undefined, options: RequestOptions = {}): InFlightRequest {
    const upstreamId = this.#nextId++;
    const caller = options.caller;
    let resolve!: (r: JsonRpcResponse) => void;
    const response = new Promise<JsonRpcResponse>((r) => (resolve = r));
    if (this.#closed) {
      resolve(this.#closedError(upstreamId));
      return { upstreamId, response };
    }
    let progressToken: string | number | undefined;
    const meta = params?._meta as JsonObject | undefined;
    if (this.#era === 'modern') {
      // A copy with the per-request fields over the caller's _meta (the caller's params stay as
      // they are). The client's own capabilities are declared for its requests: the upstream's
      // input_required results reach a modern client, which answers them, and are asked of a
      // 2025-era client as server→client requests (`input-fulfil.ts`).
      const caps = caller?.clientCapabilities;
      const fields = caps === undefined ? this.#modernMeta : this.#metaWith(caps);
      if (meta === undefined) {
        if (params !== undefined) params = { ...params, _meta: fields };
        else params = caps === undefined ? this.#bareModernParams : { _meta: fields };
      } else {
        const merged: JsonObject = { ...meta, ...fields };
        if (merged.progressToken !== undefined) {
          progressToken = merged.progressToken as string | number;
          merged.progressToken = upstreamId;
        }
        params = { ...params, _meta: merged };
      }
    } else if (meta !== undefined && meta.progressToken !== undefined) {
      progressToken = meta.progressToken as string | number;
      meta.progressToken = upstreamId;
    }
    // A modern upstream sends no server→client requests (it answers input_required): nothing to attribute.
    const bidi =
      this.#exclusive &&
      this.#era !== 'modern' &&
      caller !== undefined &&
      declaresServerRequests(caller.clientCapabilities);
    const pending: Pending = {
      upstreamId,
      resolve: bidi ? (r) => (this.#admission.release(), resolve(r)) : resolve,
      caller,
      progressToken,
      timer: undefined,
      method,
      timeoutMs: options.timeoutMs ?? this.#requestTimeoutMs,
    };
    const message: JsonRpcRequest =
      params === undefined
        ? { jsonrpc: '2.0', id: upstreamId, method }
        : { jsonrpc: '2.0', id: upstreamId, method, params };
    if (bidi) {
      this.#admitBidi(caller.sessionId, () => this.#dispatch(pending, message, options), upstreamId, resolve);
    } else {
      this.#dispatch(pending, message, options);
    }
    return { upstreamId, response };
  }

  /** Registers a request as in flight, arms its timeout and hands it to the transport. */
  #dispatch(pending: Pending, message: JsonRpcRequest, options: RequestOptions): void {
    this.#pending.set(pending.upstreamId, pending);
    // One shared callback per connection; the pending request rides as the timer's argument.
    if (pending.timeoutMs > 0) pending.timer = setTimeout(this.#onTimeout, pending.timeoutMs, pending);
    // The options carry `headers` and `reqId`, all a transport reads: passed as they are.
    const sent = this.transport.send(message, options);
    // A message the transport accepted at once cannot fail later: nothing to wait for.
    if (sent !== SENT) sent.catch((err: unknown) => this.#fail(pending.upstreamId, err));
  }

  readonly #onTimeout = (pending: Pending): void => this.#timeout(pending.upstreamId, pending.timeoutMs);

  /**
   * Cancels an in-flight request (MCP utilities/cancellation): sends `notifications/cancelled`
   * upstream and resolves the pending request with an error the caller discards.
   */
  cancel(upstreamId: number, reason?: string): void {
    const pending = this.#pending.get(upstreamId);
    if (!pending) return;
    this.#settle(pending, errorResponse(upstreamId, -32800, 'Request cancelled', { code: 'SWB_ERR_CANCELLED' }));
    this.#cancelUpstream(upstreamId, reason);
  }

  /**
   * Tells the upstream a request is cancelled: a transport that cancels by closing the response
   * stream (HTTP, in the modern era and during the probe) does so; otherwise
   * `notifications/cancelled` (utilities/cancellation; stdio in both eras).
   */
  #cancelUpstream(upstreamId: number, reason: string | undefined): void {
    if (this.#era !== 'legacy' && this.transport.cancelRequest !== undefined) {
      this.transport.cancelRequest(upstreamId);
      return;
    }
    const params: JsonObject = reason === undefined ? { requestId: upstreamId } : { requestId: upstreamId, reason };
    this.notify('notifications/cancelled', params);
  }

  /**
   * Sends a notification upstream (fire and forget; failures are logged). To a modern upstream,
   * methods the modern era removed are not sent, nor anything over HTTP (that era defines no
   * client notification there).
   */
  notify(method: string, params?: JsonObject): void {
    if (this.#closed) return;
    if (this.#era === 'modern' && (REMOVED_IN_MODERN.has(method) || this.transport.cancelRequest !== undefined)) return;
    const message: JsonRpcNotification =
      params === undefined ? { jsonrpc: '2.0', method } : { jsonrpc: '2.0', method, params };
    this.transport.send(message).catch((err: unknown) => this.#logger.debug({ err }, 'notification not delivered'));
  }

  /** Closes the transport; in-flight requests get `SWB_ERR_UPSTREAM_CLOSED`. */
  async close(): Promise<void> {
    if (this.#closed) return;
    await this.transport.close();
    // Some transports may not emit onclose on a deliberate close; make sure pending calls end.
    this.#handleClose({});
  }

  #admitBidi(sessionId: string, dispatch: () => void, upstreamId: number, resolve: (r: JsonRpcResponse) => void): void {
    this.#admission.admit(sessionId, dispatch, (timedOut) =>
      resolve(
        timedOut
          ? attributionTimeoutResponse(this.name, upstreamId, this.#attributionWaitMs)
          : this.#closedError(upstreamId),
      ),
    );
  }

  #settle(pending: Pending, response: JsonRpcResponse): void {
    if (!this.#pending.delete(pending.upstreamId)) return;
    if (pending.timer) clearTimeout(pending.timer);
    pending.resolve(response);
  }

  #timeout(upstreamId: number, ms: number): void {
    const pending = this.#pending.get(upstreamId);
    if (!pending) return;
    this.#settle(pending, timeoutResponse(this.name, upstreamId, pending.method, ms));
    this.#cancelUpstream(upstreamId, 'timeout');
  }

  /**
   * The transport refused to send a request: it never reached the upstream, so a retry on a fresh
   * connection is safe (`notSent`) — unless the message itself could not be serialised: then only
   * this request fails, and the connection, shared with other callers, stays in use.
   */
  #fail(upstreamId: number, err: unknown): void {
    const pending = this.#pending.get(upstreamId);
    if (!pending) return;
    const ge =
      err instanceof GatewayError ? err : new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', String(err), { cause: err });
    const message = `upstream "${this.name}": ${ge.message}`;
    this.#settle(
      pending,
      ge.code === 'SWB_ERR_UPSTREAM_UNSERIALISABLE'
        ? errorResponse(upstreamId, ge.jsonRpcCode, message, { code: ge.code })
        : errorResponse(upstreamId, ge.jsonRpcCode, message, { code: ge.code, notSent: true }),
    );
    // A transport that refuses sends is closing; do not hand this connection out again.
    if (ge.code === 'SWB_ERR_UPSTREAM_CLOSED') this.#handleClose({ error: ge });
  }

  #metaWith(caps: ClientCapabilities): Readonly<JsonObject> {
    let fields = this.#metaByCaps.get(caps);
    if (fields === undefined) {
      fields = Object.freeze({ ...this.#modernMeta, [META_CLIENT_CAPABILITIES]: caps });
      this.#metaByCaps.set(caps, fields);
    }
    return fields;
  }

  #closedError(upstreamId: number): JsonRpcResponse {
    return closedResponse(this.name, upstreamId, this.#closeInfo);
  }

  #handleClose(info: TransportCloseInfo): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#closeInfo = info;
    for (const pending of [...this.#pending.values()]) this.#settle(pending, this.#closedError(pending.upstreamId));
    this.#admission.admitAll(); // resolves each waiting call with the closed error
    for (const ac of this.#serverRequests.values()) ac.abort();
    this.#serverRequests.clear();
    this.#onClose?.(info);
  }

  #onMessage(message: JsonRpcMessage, info: IncomingMessageInfo): void {
    if ('method' in message) {
      if (isRequest(message)) this.#onServerRequest(message, info);
      else if (isNotification(message)) this.#onServerNotification(message, info);
      return;
    }
    const id = message.id;
    if (typeof id !== 'number') {
      this.#logger.warn({ id }, 'response with an id this gateway never sent; dropped');
      return;
    }
    const pending = this.#pending.get(id);
    if (!pending) return; // late answer to a cancelled/timed-out request
    this.#settle(pending, message);
  }

  /** Finds the call a related message belongs to: by the wire (HTTP) or by exclusive admission (stdio). */
  #callerFor(info: IncomingMessageInfo, needsBidi: boolean): Caller | undefined {
    if (info.relatedRequestId !== undefined) {
      return typeof info.relatedRequestId === 'number' ? this.#pending.get(info.relatedRequestId)?.caller : undefined;
    }
    if (!needsBidi) return undefined;
    if (this.#exclusive) {
      const admitted = this.#admission.session;
      if (admitted === undefined) return undefined;
      // Under exclusive admission every in-flight bidi call belongs to the admitted session: attribution is exact.
      let found: Caller | undefined;
      for (const p of this.#pending.values()) if (p.caller?.sessionId === admitted) found = p.caller;
      return found;
    }
    // An HTTP upstream sent the request on its standalone stream: attribute it only when every
    // in-flight call of a client able to answer belongs to one session; otherwise nobody.
    let found: Caller | undefined;
    for (const p of this.#pending.values()) {
      const c = p.caller;
      if (!c || !declaresServerRequests(c.clientCapabilities)) continue;
      if (found && found.sessionId !== c.sessionId) return undefined;
      found = c;
    }
    return found;
  }

  #onServerNotification(n: JsonRpcNotification, info: IncomingMessageInfo): void {
    if (n.method === 'notifications/progress') {
      const token = n.params?.progressToken;
      const pending = typeof token === 'number' ? this.#pending.get(token) : undefined;
      if (!pending || pending.progressToken === undefined || !pending.caller) return;
      if (pending.timer) pending.timer.refresh();
      (n.params as JsonObject).progressToken = pending.progressToken;
      pending.caller.notify(n);
      return;
    }
    if (n.method === 'notifications/cancelled') {
      const id = n.params?.requestId as JsonRpcId | undefined;
      if (id !== undefined) this.#serverRequests.get(id)?.abort();
      return;
    }
    const caller = info.relatedRequestId !== undefined ? this.#callerFor(info, false) : this.#subscriberOf(n);
    if (caller) caller.notify(n);
    else this.#onNotification?.(n);
  }

  /**
   * The `subscriptions/listen` request a modern upstream's notification names in
   * `_meta["io.modelcontextprotocol/subscriptionId"]`: on stdio nothing else relates them
   * (basic/patterns/subscriptions §Receiving Notifications).
   */
  #subscriberOf(n: JsonRpcNotification): Caller | undefined {
    if (this.#era !== 'modern') return undefined;
    const id = (n.params?._meta as JsonObject | undefined)?.[META_SUBSCRIPTION_ID];
    return typeof id === 'number' ? this.#pending.get(id)?.caller : undefined;
  }

  #onServerRequest(req: JsonRpcRequest, info: IncomingMessageInfo): void {
    if (req.method === 'ping') {
      this.#reply(req.id, { result: {} });
      return;
    }
    forwardServerRequest(req, this.#callerFor(info, true), this.#serverRequests, this.#replyTo, this.#logger);
  }

  readonly #replyTo = (id: JsonRpcId, answer: ServerRequestAnswer): void => this.#reply(id, answer);

  #reply(id: JsonRpcId, answer: ServerRequestAnswer): void {
    if (this.#closed) return;
    const message: JsonRpcResponse =
      answer.error !== undefined
        ? { jsonrpc: '2.0', id, error: answer.error }
        : { jsonrpc: '2.0', id, result: answer.result ?? {} };
    this.transport
      .send(message)
      .catch((err: unknown) => this.#logger.debug({ err }, 'response to upstream not delivered'));
  }
}

/** The headers of the `server/discover` probe over HTTP (transports/streamable-http §Standard Request Headers). */
const PROBE_HEADERS: Readonly<Record<string, string>> = Object.freeze({
  'mcp-protocol-version': UPSTREAM_MODERN_VERSION,
  'mcp-method': 'server/discover',
});
