/**
 * `subscriptions/listen` for modern (MCP 2026-07-28) clients (basic/patterns/subscriptions): a
 * long-lived SSE response that carries the change notifications the client asked for — list
 * changes of tools, prompts and resources, and `notifications/resources/updated` for the URIs it
 * names — each with `_meta["io.modelcontextprotocol/subscriptionId"]` (the listen request's id).
 *
 * Each listen request gets a session of its own on the endpoint's view (transport `stateless`,
 * counted like any session), which receives the gateway's change notifications as a 2025
 * session's GET stream would; `resourceSubscriptions` become `resources/subscribe` calls through
 * that session (routing, scopes and filters apply; towards a modern upstream the URI joins the
 * upstream's own listen request, `upstream/upstream-listen.ts`; a URI that cannot be subscribed
 * is left out of the acknowledgement). The acknowledgement is the first message; notifications that arrive
 * before it wait. The stream has the budget of every SSE stream (`http.maxStreamBytes`,
 * `http.maxStreamEvents`) and keep-alive comments. Closing it ends the session; a session the
 * gateway ends (idle timeout, shutdown) answers the listen request with a `complete` result
 * first (Graceful Closure).
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import { GatewayError } from '../errors.js';
import type { ClientSession, OutboundChannel } from '../gateway/client-session.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import type { RequestContext } from '../pipeline/stage.js';
import { META_SUBSCRIPTION_ID, MODERN_PROTOCOL_VERSIONS } from '../protocol/era.js';
import type { JsonObject, JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import { reportOverflow, writeWithin, type StreamMeter, type StreamOverflowListener } from './stream-budget.js';

/** Most URIs one listen request may name in `resourceSubscriptions`. */
export const MAX_RESOURCE_SUBSCRIPTIONS = 256;

/** Interval of keep-alive comments on a listen stream, ms. */
const KEEP_ALIVE_MS = 25_000;

/** The notification filter of a listen request (subscriptions §Notification Filter). */
export interface ListenFilter {
  toolsListChanged: boolean;
  promptsListChanged: boolean;
  resourcesListChanged: boolean;
  resourceSubscriptions: string[];
}

/**
 * Reads `params.notifications`.
 *
 * @throws GatewayError `SWB_ERR_PROTOCOL_INVALID_PARAMS` for a filter that is not an object, flags
 *   that are not booleans, or `resourceSubscriptions` that is not an array of at most
 *   {@link MAX_RESOURCE_SUBSCRIPTIONS} non-empty strings
 */
export function parseListenFilter(params: JsonObject): ListenFilter {
  const raw = params.notifications ?? {};
  const bad = (why: string): never => {
    throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_PARAMS', `Invalid params: notifications${why}`);
  };
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return bad(' must be an object');
  const f = raw as JsonObject;
  const flag = (key: string): boolean => {
    const v = f[key];
    if (v === undefined) return false;
    if (typeof v !== 'boolean') return bad(`.${key} must be a boolean`);
    return v;
  };
  const uris = f.resourceSubscriptions ?? [];
  if (!Array.isArray(uris) || uris.some((u) => typeof u !== 'string' || u === '')) {
    return bad('.resourceSubscriptions must be an array of URIs');
  }
  if (uris.length > MAX_RESOURCE_SUBSCRIPTIONS) {
    return bad(`.resourceSubscriptions names more than ${MAX_RESOURCE_SUBSCRIPTIONS} URIs`);
  }
  return {
    toolsListChanged: flag('toolsListChanged'),
    promptsListChanged: flag('promptsListChanged'),
    resourcesListChanged: flag('resourcesListChanged'),
    resourceSubscriptions: [...new Set(uris as string[])],
  };
}

/** What {@link serveListen} needs. */
export interface ListenContext {
  readonly gateway: Gateway;
  readonly view: View;
  readonly meta: RequestContext;
  readonly res: ServerResponse;
  /** The listen request's id: the subscription id. */
  readonly id: JsonRpcId;
  readonly filter: ListenFilter;
  readonly onStreamOverflow?: StreamOverflowListener | undefined;
}

/**
 * Opens a listen stream (see the module comment). Refusals before the stream starts (the
 * principal's session limit) are thrown for the caller to answer.
 *
 * @throws GatewayError `SWB_ERR_SESSION_PRINCIPAL_LIMIT`, `SWB_ERR_SESSION_LIMIT`
 */
export function serveListen(ctx: ListenContext): void {
  const { gateway, view, meta, res, id, filter } = ctx;
  const session = gateway.createSession(view, meta.principal, 'stateless');
  session.protocolVersion = MODERN_PROTOCOL_VERSIONS[0];
  session.clientCapabilities = {};
  session.initialized = true;
  const channel = new ListenChannel(res, session, id, filter, gateway, ctx.onStreamOverflow);
  session.attachStandalone(channel);
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.flushHeaders();
  res.once('close', () => channel.closedByClient());
  const subscribed = filter.resourceSubscriptions.map(
    (uri, i) =>
      new Promise<string | undefined>((resolve) => {
        const sink: OutboundChannel = {
          closed: false,
          send: (m: JsonRpcMessage) => resolve('result' in m ? uri : undefined),
          fail: () => resolve(undefined),
        };
        session.handleRequest(
          { jsonrpc: '2.0', id: `listen-${i}`, method: 'resources/subscribe', params: { uri } },
          sink,
          meta,
        );
      }),
  );
  void Promise.all(subscribed).then((uris) => {
    const agreed: JsonObject = {};
    if (filter.toolsListChanged) agreed.toolsListChanged = true;
    if (filter.promptsListChanged) agreed.promptsListChanged = true;
    if (filter.resourcesListChanged) agreed.resourcesListChanged = true;
    const ok = uris.filter((u): u is string => u !== undefined);
    if (ok.length > 0) agreed.resourceSubscriptions = ok;
    channel.acknowledge(agreed);
  });
}

/** The standalone channel of a listen session: its SSE response. */
class ListenChannel implements OutboundChannel {
  readonly #res: ServerResponse;
  readonly #session: ClientSession;
  readonly #id: JsonRpcId;
  readonly #filter: ListenFilter;
  readonly #gateway: Gateway;
  readonly #onOverflow: StreamOverflowListener | undefined;
  readonly #meter: StreamMeter = { stalled: 0, overflowBytes: 0 };
  readonly #keepAlive: NodeJS.Timeout;
  /** Notifications that came before the acknowledgement. */
  #early: string[] | undefined = [];
  #done = false;

  constructor(
    res: ServerResponse,
    session: ClientSession,
    id: JsonRpcId,
    filter: ListenFilter,
    gateway: Gateway,
    onOverflow: StreamOverflowListener | undefined,
  ) {
    this.#res = res;
    this.#session = session;
    this.#id = id;
    this.#filter = filter;
    this.#gateway = gateway;
    this.#onOverflow = onOverflow;
    this.#keepAlive = setInterval(() => this.#write(': keepalive\n\n'), KEEP_ALIVE_MS);
    this.#keepAlive.unref();
  }

  get closed(): boolean {
    return this.#done;
  }

  /** Sends the acknowledgement, then what waited for it. */
  acknowledge(notifications: JsonObject): void {
    if (this.#done) return;
    this.#event({
      jsonrpc: '2.0',
      method: 'notifications/subscriptions/acknowledged',
      params: { _meta: { [META_SUBSCRIPTION_ID]: this.#id }, notifications },
    });
    const early = this.#early ?? [];
    this.#early = undefined;
    for (const data of early) this.#write(data);
  }

  send(message: JsonRpcMessage): void {
    if (this.#done || !('method' in message) || ('id' in message && message.id !== undefined)) return;
    if (!this.#wanted(message.method)) return;
    const params = message.params ?? {};
    const meta = (typeof params._meta === 'object' && params._meta !== null ? params._meta : {}) as JsonObject;
    const data = this.#data({
      jsonrpc: '2.0',
      method: message.method,
      params: { ...params, _meta: { ...meta, [META_SUBSCRIPTION_ID]: this.#id } },
    });
    if (this.#early !== undefined) this.#early.push(data);
    else this.#write(data);
  }

  /** The session ended (idle timeout, shutdown): a graceful end, then the stream closes. */
  end(): void {
    if (this.#done) return;
    this.#done = true;
    clearInterval(this.#keepAlive);
    const res = this.#res;
    if (res.destroyed || res.writableEnded) return;
    const result = { resultType: 'complete', _meta: { [META_SUBSCRIPTION_ID]: this.#id } };
    res.end(this.#data({ jsonrpc: '2.0', id: this.#id, result }));
  }

  /** The client closed the stream: the subscription ends with its session. */
  closedByClient(): void {
    if (this.#done) return;
    this.#done = true;
    clearInterval(this.#keepAlive);
    this.#session.close('listen stream closed by the client');
  }

  #wanted(method: string): boolean {
    switch (method) {
      case 'notifications/tools/list_changed':
        return this.#filter.toolsListChanged;
      case 'notifications/prompts/list_changed':
        return this.#filter.promptsListChanged;
      case 'notifications/resources/list_changed':
        return this.#filter.resourcesListChanged;
      case 'notifications/resources/updated':
        // Only URIs this listen subscribed to reach the session (`deliverResourceUpdated`).
        return this.#filter.resourceSubscriptions.length > 0;
      default:
        return false;
    }
  }

  #data(message: unknown): string {
    return `event: message\ndata: ${JSON.stringify(message)}\n\n`;
  }

  #event(message: unknown): void {
    this.#write(this.#data(message));
  }

  #write(chunk: string): void {
    if (this.#res.destroyed || this.#res.writableEnded) return;
    const http = this.#gateway.config.http;
    if (!writeWithin(this.#res, chunk, this.#meter, http)) {
      reportOverflow(this.#gateway.logger, this.#onOverflow, {
        stream: 'modern-listen',
        sessionId: this.#session.id,
        queuedBytes: this.#meter.overflowBytes,
        queuedEvents: this.#meter.stalled,
      });
    }
  }
}
