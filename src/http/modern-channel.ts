/**
 * The channel a modern (MCP 2026-07-28) request is answered on, across its multi round-trip
 * retries: see {@link ModernChannel}. Used by the modern front door (`./modern.ts`).
 *
 * @module
 */
import type { ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { encodeError, GatewayError } from '../errors.js';
import type { ClientSession, OutboundChannel } from '../gateway/client-session.js';
import type { View } from '../gateway/view.js';
import { TASK_METHODS } from '../gateway/tasks.js';
import type { RequestContext } from '../pipeline/stage.js';
import { CACHEABLE_METHODS, MCP_MISSING_CLIENT_CAPABILITY, META_SERVER_INFO } from '../protocol/era.js';
import type { JsonObject, JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import { JSONRPC_INVALID_PARAMS, MCP_RESOURCE_NOT_FOUND } from '../protocol/jsonrpc.js';
import type { ClientCapabilities } from '../upstream/connection.js';
import type { InputParking, Parkable } from './modern-input.js';
import { logLevelAllows, logLevelIndex } from '../gateway/log-levels.js';

/**
 * Freshness the gateway gives the lists and `server/discover` it builds, ms (`ttlMs`, server/
 * utilities/caching). A minute: the catalogs change when an upstream's do, and a modern client
 * cannot be told so before `subscriptions/listen` is served.
 */
export const LIST_TTL_MS = 60_000;

/**
 * `cacheScope` of what the gateway answers a principal (server/utilities/caching §Cache Scope
 * Field): `public` only when nobody is authenticated (every caller sees the same lists);
 * otherwise `private`, as lists are filtered per principal (scopes, RBAC).
 */
export function cacheScopeFor(principal: Principal): 'public' | 'private' {
  return principal.kind === 'anonymous' ? 'public' : 'private';
}

/** A server→client request of the upstream, as the client is asked for it in `inputRequests`. */
interface InputRequest {
  /** The session's id of the request (its answer goes back under it). */
  readonly id: number;
  readonly method: string;
  readonly params: unknown;
}

const NO_CAPABILITIES: ClientCapabilities = Object.freeze({});

/** Methods whose result may be `input_required` (basic/patterns/mrtr §Supported Requests). */
const INPUT_METHODS: ReadonlySet<string> = new Set(['tools/call', 'prompts/get', 'resources/read']);

/**
 * The channel one modern request is answered on, and across its retries (MRTR) the call it
 * started: JSON when the answer is the first thing to send, else an SSE stream scoped to the
 * request (progress, log messages, then the answer), no event ids, no resumption (transports
 * §Receiving Messages).
 *
 * A server→client request of the upstream (one of the client's declared capabilities, else the
 * session refuses it) ends the current HTTP response with `resultType: "input_required"`: the
 * requests gathered in that event-loop turn as `inputRequests`, and a `requestState` that parks
 * this channel in {@link InputParking}. The retry {@link attach}es its own response and answers;
 * what the upstream does next goes to that response. The client closing a response before its
 * answer cancels the call (transports §Cancellation); so does a parked call's expiry.
 */
export class ModernChannel implements OutboundChannel, Parkable {
  readonly #session: ClientSession;
  readonly #internalId: JsonRpcId;
  #callerId: string | undefined;
  readonly #method: string;
  readonly #name: string;
  readonly #view: View;
  readonly #parking: InputParking<ModernChannel>;
  /** The HTTP response of the current round; undefined while parked. */
  #res: ServerResponse | undefined;
  #clientId: JsonRpcId;
  #meta: RequestContext;
  /** The capabilities the client declared for the current round. */
  #capabilities: ClientCapabilities;
  /** Whether this request may ask the client anything (mrtr §Supported Requests). */
  readonly #asks: boolean;
  /**
   * Whether the capabilities it declared go on with it: those of requests that may ask, and of
   * `tasks/*` (the tasks extension is negotiated per request; a modern upstream checks it too).
   */
  readonly #declares: boolean;
  /** The request's `_meta["io.modelcontextprotocol/logLevel"]` as a severity index; -1: no log messages. */
  #logLevel: number;
  #sse = false;
  /** The call is over (answered, cancelled or expired). */
  #done = false;
  /** Asked of the client in the last `input_required`, not answered yet, by key. */
  #asked = new Map<string, InputRequest>();
  /** Arrived since, not asked yet. */
  #queued = new Map<string, InputRequest>();
  #nextKey = 0;
  #flushScheduled = false;
  /** The final answer's `"result":…` or `"error":…` member, when it came while parked (for the retry). */
  #finalWhileParked: string | undefined;

  constructor(
    res: ServerResponse,
    session: ClientSession,
    clientId: JsonRpcId,
    internalId: JsonRpcId,
    request: { method: string; name: string; capabilities: ClientCapabilities; logLevel: unknown },
    view: View,
    meta: RequestContext,
    parking: InputParking<ModernChannel>,
  ) {
    this.#res = res;
    this.#session = session;
    this.#clientId = clientId;
    this.#internalId = internalId;
    this.#method = request.method;
    this.#name = request.name;
    this.#capabilities = request.capabilities;
    this.#asks = INPUT_METHODS.has(request.method);
    this.#declares = this.#asks || TASK_METHODS.has(request.method);
    this.#logLevel = logLevelIndex(request.logLevel);
    this.#view = view;
    this.#meta = meta;
    this.#parking = parking;
    res.on('close', this.#onClose);
  }

  /** Each modern request (with its retries) is its own caller: clients share the stateless session. */
  get callerId(): string {
    return (this.#callerId ??= `${this.#session.id}/${String(this.#internalId)}`);
  }

  get closed(): boolean {
    return this.#done;
  }

  /**
   * What the session's attribution checks and a modern upstream is told: the capabilities the
   * client declared for a request whose result may be `input_required` or that names a task,
   * none for the others.
   */
  get clientCapabilities(): ClientCapabilities {
    return this.#declares ? this.#capabilities : NO_CAPABILITIES;
  }

  send(message: JsonRpcMessage): void {
    if (this.#done) return;
    if ('method' in message) {
      if ('id' in message && message.id !== undefined) {
        this.#queued.set(`input-${++this.#nextKey}`, {
          id: message.id as number,
          method: message.method,
          params: message.params,
        });
        if (this.#res !== undefined && !this.#flushScheduled) {
          // Requests the upstream sends together are asked together.
          this.#flushScheduled = true;
          setImmediate(this.#flushInputs);
        }
        return;
      }
      // Log messages only at or above the level the request asked for, and none without one
      // (server/utilities/logging: the level is per request in this era).
      if (
        message.method === 'notifications/message' &&
        (this.#logLevel < 0 || !logLevelAllows(this.#logLevel, message))
      )
        return;
      if (this.#res !== undefined) this.#event(JSON.stringify(message));
      return;
    }
    if (message.id !== this.#internalId) return;
    let member: string;
    let status = 200;
    if ('error' in message) {
      let error = message.error;
      // MissingRequiredClientCapability is a 400 in this era (basic §`_meta`), a modern upstream's own too.
      if (error.code === MCP_MISSING_CLIENT_CAPABILITY) status = 400;
      // Resource not found is -32602 in this era (server/resources §Error Handling).
      if (error.code === MCP_RESOURCE_NOT_FOUND) error = { ...error, code: JSONRPC_INVALID_PARAMS };
      this.#meta.rpcError = error.code;
      member = `"error":${JSON.stringify(error)}`;
    } else {
      member = `"result":${this.#decorated(message.result ?? {})}`;
    }
    if (this.#res === undefined) {
      // Parked: the retry gets it, under its own id.
      this.#finalWhileParked = member;
      return;
    }
    this.#final(`{"jsonrpc":"2.0","id":${JSON.stringify(this.#clientId)},${member}}`, status);
  }

  sendResult(id: JsonRpcId, resultJson: string): void {
    if (this.#done || id !== this.#internalId || this.#res === undefined) return;
    // The list is shared by many requests and serialised once: the fields go in front of it.
    const body = spliceFields(this.#fieldsHead(false), resultJson);
    this.#final(`{"jsonrpc":"2.0","id":${JSON.stringify(this.#clientId)},"result":${body}}`);
  }

  fail(error: unknown, _id: JsonRpcId): void {
    if (this.#done) return;
    const res = this.#res;
    if (res === undefined) {
      this.send({ ...encodeError(error, { responseStarted: true, id: this.#internalId }).response });
      return;
    }
    const encoded = encodeError(error, { responseStarted: this.#sse || res.destroyed, id: this.#clientId });
    if (encoded.kind === 'http') {
      this.#done = true;
      this.#meta.rpcError = encoded.response.error.code;
      const body = JSON.stringify(encoded.response);
      res.writeHead(encoded.status, {
        'content-type': 'application/json',
        'content-length': Buffer.byteLength(body),
        ...encoded.headers,
      });
      res.end(body);
      return;
    }
    this.send({ ...encoded.response, id: this.#internalId });
  }

  end(): void {
    if (this.#done) return;
    this.#done = true;
    // Cancelled: the client closed the stream, or the parked call expired.
    const res = this.#res;
    if (res !== undefined && !res.destroyed) res.end();
  }

  /**
   * The retry of a parked call: `res` answers from now on, under the retry's id; the answers in
   * `inputResponses` go to the upstream's waiting requests. Requests left unanswered, and any
   * that arrived meanwhile, are asked again at once (mrtr §Error Handling); an answer that came
   * while parked is sent at once.
   */
  attach(
    res: ServerResponse,
    clientId: JsonRpcId,
    meta: RequestContext,
    inputResponses: unknown,
    capabilities: ClientCapabilities,
    logLevel: unknown,
  ): void {
    this.#logLevel = logLevelIndex(logLevel);
    this.#res = res;
    this.#clientId = clientId;
    this.#meta = meta;
    this.#sse = false;
    this.#capabilities = capabilities;
    res.on('close', this.#onClose);
    if (this.#finalWhileParked !== undefined) {
      this.#final(`{"jsonrpc":"2.0","id":${JSON.stringify(clientId)},${this.#finalWhileParked}}`);
      return;
    }
    const answers =
      typeof inputResponses === 'object' && inputResponses !== null && !Array.isArray(inputResponses)
        ? (inputResponses as JsonObject)
        : {};
    for (const [key, request] of [...this.#asked]) {
      const answer = answers[key];
      if (typeof answer !== 'object' || answer === null || Array.isArray(answer)) continue;
      this.#asked.delete(key);
      this.#session.handleResponse({ jsonrpc: '2.0', id: request.id, result: answer as JsonObject });
    }
    // Unanswered requests are asked again, with whatever arrived while parked.
    for (const [key, request] of this.#asked) if (!this.#queued.has(key)) this.#queued.set(key, request);
    this.#asked.clear();
    if (this.#queued.size > 0) this.#flushInputs();
  }

  /** Parkable: no retry came in time; the call is cancelled upstream. */
  expire(): void {
    if (this.#done) return;
    this.#done = true;
    this.#cancel('the client did not retry with inputResponses in time');
  }

  /** Ends the current response with `input_required` for the queued requests and parks. */
  readonly #flushInputs = (): void => {
    this.#flushScheduled = false;
    const res = this.#res;
    if (this.#done || res === undefined || this.#queued.size === 0) return;
    const inputRequests: JsonObject = {};
    for (const [key, request] of this.#queued) {
      inputRequests[key] =
        request.params === undefined ? { method: request.method } : { method: request.method, params: request.params };
      this.#asked.set(key, request);
    }
    this.#queued.clear();
    res.off('close', this.#onClose);
    this.#res = undefined;
    const requestState = this.#parking.park(this, {
      principalId: this.#meta.principal.id,
      method: this.#method,
      name: this.#name,
    });
    const result: JsonObject = {
      resultType: 'input_required',
      inputRequests,
      requestState,
      _meta: { [META_SERVER_INFO]: this.#view.serverInfo() },
    };
    writeFinal(res, this.#sse, JSON.stringify({ jsonrpc: '2.0', id: this.#clientId, result }), 200);
  };

  /** The result fields the gateway adds, for {@link sendResult} (`upstream` false) or a forwarded result. */
  #fields(upstream: boolean): JsonObject {
    const serverInfo = this.#view.serverInfo();
    const fields: JsonObject = { resultType: 'complete', _meta: { [META_SERVER_INFO]: serverInfo } };
    if (CACHEABLE_METHODS.has(this.#method)) {
      // A read's freshness is the upstream's to tell; lists are the gateway's own.
      fields.ttlMs = upstream ? 0 : LIST_TTL_MS;
      fields.cacheScope = cacheScopeFor(this.#meta.principal);
    }
    return fields;
  }

  /**
   * The JSON of {@link fields} without its closing brace, built once per (identity, caching
   * hints) and shared by every response that carries them.
   */
  #fieldsHead(upstream: boolean): string {
    const serverInfo = this.#view.serverInfo();
    const cacheable = CACHEABLE_METHODS.has(this.#method);
    const key = cacheable ? `${upstream ? 'read' : 'list'}/${cacheScopeFor(this.#meta.principal)}` : '';
    let heads = FIELD_HEADS.get(serverInfo);
    if (heads === undefined) FIELD_HEADS.set(serverInfo, (heads = new Map()));
    let head = heads.get(key);
    if (head === undefined) heads.set(key, (head = JSON.stringify(this.#fields(upstream)).slice(0, -1)));
    return head;
  }

  /**
   * A forwarded result's JSON with `resultType`, the gateway's identity and caching hints added.
   * A result that sets none of those fields (what a 2025-era upstream answers) gets them spliced
   * in front of its own serialisation; any other is merged as {@link decorate} says.
   */
  #decorated(result: JsonObject): string {
    if (
      result.resultType === undefined &&
      result._meta === undefined &&
      (!CACHEABLE_METHODS.has(this.#method) || (result.ttlMs === undefined && result.cacheScope === undefined))
    ) {
      return spliceFields(this.#fieldsHead(true), JSON.stringify(result));
    }
    return JSON.stringify(this.#decorate(result));
  }

  /** Adds `resultType`, the gateway's identity and caching hints to a forwarded result (fields the upstream set win, except the identity). */
  #decorate(result: JsonObject): JsonObject {
    const fields = this.#fields(true);
    const meta = result._meta;
    const out: JsonObject = { ...fields, ...result };
    out._meta =
      typeof meta === 'object' && meta !== null && !Array.isArray(meta)
        ? { ...(meta as JsonObject), ...(fields._meta as JsonObject) }
        : fields._meta;
    return out;
  }

  /** Ends the response with `data`; `status` is the HTTP status of a JSON answer (default 200). */
  #final(data: string, status = 200): void {
    this.#done = true;
    const res = this.#res;
    if (res === undefined) return;
    res.off('close', this.#onClose);
    writeFinal(res, this.#sse, data, status);
  }

  /** Writes a notification as an SSE event, opening the stream first. */
  #event(data: string): void {
    const res = this.#res;
    if (res === undefined || res.destroyed) return;
    if (!this.#sse) {
      this.#sse = true;
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache',
        'x-accel-buffering': 'no',
      });
    }
    res.write(`event: message\ndata: ${data}\n\n`);
  }

  /**
   * The upstream needs a capability the client did not declare for this request (the session
   * refused the upstream's request): the call is cancelled and the client told
   * MissingRequiredClientCapability (400, -32021, `data.requiredCapabilities`; basic §`_meta`),
   * as a modern server would.
   */
  missingCapability(method: string, capability: 'sampling' | 'elicitation' | 'roots'): void {
    if (this.#done || !this.#asks) return;
    const err = new GatewayError(
      'SWB_ERR_PROTOCOL_MISSING_CAPABILITY',
      `Missing required client capability: ${capability} (the server sent ${method})`,
      { data: { requiredCapabilities: { [capability]: {} } } },
    );
    if (this.#res !== undefined) this.fail(err, this.#internalId);
    else {
      const error = encodeError(err, { responseStarted: true, id: null }).response.error;
      this.#finalWhileParked = `"error":${JSON.stringify(error)}`;
    }
    this.#cancel('the client lacks a capability the request needs');
  }

  #cancel(reason: string): void {
    this.#session.handleNotification({
      jsonrpc: '2.0',
      method: 'notifications/cancelled',
      params: { requestId: this.#internalId, reason },
    });
  }

  /** The response closed before its answer: the client cancelled (transports §Cancellation). */
  readonly #onClose = (): void => {
    if (this.#done) return;
    this.#done = true;
    this.#cancel('the client closed the response stream');
  };
}

/** {@link ModernChannel}'s serialised result fields, per identity object, per caching hints. */
const FIELD_HEADS = new WeakMap<JsonObject, Map<string, string>>();

/** `head` (an object's JSON without its closing brace) joined with the members of the object `json`. */
function spliceFields(head: string, json: string): string {
  return json.length > 2 ? `${head},${json.slice(1)}` : `${head}}`;
}

/** Ends `res` with one message: as JSON (with `status`), or as the last event of its SSE stream. */
function writeFinal(res: ServerResponse, sse: boolean, data: string, status: number): void {
  if (res.destroyed) return;
  if (sse) {
    res.end(`event: message\ndata: ${data}\n\n`);
    return;
  }
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(data) });
  res.end(data);
}
