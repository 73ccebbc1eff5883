/**
 * `subscriptions/listen` towards modern upstreams (MCP 2026-07-28, basic/patterns/subscriptions):
 * the modern era's replacement of the 2025 `list_changed` notifications, `resources/subscribe`
 * and the GET stream.
 *
 * Each connection of a modern upstream keeps at most one listen request open: a long-lived
 * request whose answer is a stream of notifications (over Streamable HTTP the POST's SSE
 * response; over stdio notifications tagged with `_meta["io.modelcontextprotocol/subscriptionId"]`,
 * which the connection relates to the request). Its filter (§Notification Filter) asks for:
 * - the list changes the upstream declares (`tools`/`prompts`/`resources.listChanged`), on the
 *   connection the catalog follows (`watchesLists`);
 * - `resourceSubscriptions`: the URIs client sessions subscribed to through that connection,
 *   when the upstream declares `resources.subscribe`.
 *
 * A listen request's params fix its filter, so a changed set of URIs opens a new listen request
 * with the new filter; the old one is cancelled once the new one is acknowledged (§Multiple
 * Concurrent Subscriptions allows both at once), so nothing is missed in between. A URI counts
 * as subscribed when the acknowledgement lists it (§Acknowledgment: the subset the server agreed
 * to honour). Notifications of the open stream reach the upstream as a 2025 upstream's
 * unrelated notifications would, without the subscription id. A stream that ends — the
 * upstream's graceful closure (§Graceful Closure), a dropped transport, a failed opening — is
 * opened again after an exponential backoff (`util/backoff.ts`); timers never keep the process
 * alive. An upstream that acknowledges nothing or answers -32601 (Method not found) is not asked
 * again until the filter changes. `stop()` cancels everything.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { META_SUBSCRIPTION_ID } from '../protocol/era.js';
import type { JsonObject, JsonRpcNotification, JsonRpcResponse } from '../protocol/jsonrpc.js';
import { createBackoff, type Backoff } from '../util/backoff.js';
import type { Caller, UpstreamConnection } from './connection.js';
import type { Slot } from './pool.js';

/** A listen request's filter (basic/patterns/subscriptions §Notification Filter); absent fields are not asked for. */
export interface ListenFilter {
  toolsListChanged?: true;
  promptsListChanged?: true;
  resourcesListChanged?: true;
  /** Sorted, without duplicates. */
  resourceSubscriptions?: string[];
}

/** Options for {@link UpstreamListens}. */
export interface UpstreamListensOptions {
  /** Server name (messages). */
  name: string;
  logger: Logger;
  /** The slot's open connection, if it has one. */
  connectionOf(slot: Slot): UpstreamConnection | undefined;
  /** Whether the slot still belongs to the upstream (a closed slot's listen is forgotten). */
  holds(slot: Slot): boolean;
  /** Whether the catalog follows this slot's connection: its listen asks for list changes. */
  watchesLists(slot: Slot): boolean;
  /** A notification of an open listen stream, its subscription id removed. */
  onNotification(slot: Slot, conn: UpstreamConnection, n: JsonRpcNotification): void;
  /**
   * An acknowledged stream now covers every list the upstream declares (`covered`, with the
   * connection it is on), or no stream does any more.
   */
  onListsCovered(covered: boolean, conn: UpstreamConnection | undefined): void;
  /** Delays between openings after a stream ended or failed, ms. Default 500 … 30 000. */
  reconnect?: { initialDelayMs: number; maxDelayMs: number };
  /** How long an opening waits for its acknowledgement before it counts as failed, ms. Default 30 000. */
  ackTimeoutMs?: number;
}

/** A subscription taken (a new object each time: the caller puts its client's id in). */
const ok = (): JsonRpcResponse => ({ jsonrpc: '2.0', id: 0, result: {} });
const ACK_METHOD = 'notifications/subscriptions/acknowledged';
/** JSON-RPC "Method not found". */
const METHOD_NOT_FOUND = -32601;

interface Waiter {
  readonly uri: string;
  readonly resolve: (response: JsonRpcResponse) => void;
}

/** One listen request. */
interface Attempt {
  readonly conn: UpstreamConnection;
  readonly key: string;
  upstreamId: number;
  /** What the upstream agreed to, once acknowledged. */
  agreed: ListenFilter | undefined;
  /** Subscriptions waiting for this request's acknowledgement. */
  waiters: Waiter[];
  ackTimer: NodeJS.Timeout | undefined;
  /** Cancelled by the gateway or ended: its answer and notifications are ignored. */
  done: boolean;
}

/** The listen state of one slot. */
interface SlotListen {
  readonly slot: Slot;
  /** The acknowledged stream. */
  current: Attempt | undefined;
  /** An opening not acknowledged yet. */
  opening: Attempt | undefined;
  /** Subscriptions not yet handed to an opening. */
  waiting: Waiter[];
  /** A pending reconcile (a microtask) or a backoff delay. */
  scheduled: 'soon' | NodeJS.Timeout | undefined;
  readonly backoff: Backoff;
  /** The filter key the upstream acknowledged as empty: not asked again until the filter changes. */
  refusedKey: string | undefined;
}

/** The listen requests of one modern upstream, one per connection (see the module comment). */
export class UpstreamListens {
  readonly #o: UpstreamListensOptions;
  readonly #slots = new Map<Slot, SlotListen>();
  readonly #ackTimeoutMs: number;
  #covered = false;
  #stopped = false;

  constructor(options: UpstreamListensOptions) {
    this.#o = options;
    this.#ackTimeoutMs = options.ackTimeoutMs ?? 30_000;
  }

  /** True while an acknowledged stream covers every list the upstream declares (the catalog needs no `ttlMs` refresh). */
  get listsCovered(): boolean {
    return this.#covered;
  }

  /** Number of listen requests in flight (acknowledged or opening). */
  get openCount(): number {
    let n = 0;
    for (const s of this.#slots.values()) n += (s.current ? 1 : 0) + (s.opening ? 1 : 0);
    return n;
  }

  /**
   * Reconsiders a slot's listen request soon (in a microtask, so changes of one turn make one
   * opening): after its connection opened or its subscriptions changed. While a backoff delay
   * runs, the delay is kept.
   */
  sync(slot: Slot): void {
    if (this.#stopped) return;
    const s = this.#entry(slot);
    if (s.scheduled !== undefined) return;
    s.scheduled = 'soon';
    queueMicrotask(() => {
      if (s.scheduled !== 'soon') return;
      s.scheduled = undefined;
      this.#reconcile(s);
    });
  }

  /**
   * Waits until the slot's listen stream covers `uri` (already in `slot.subscriptions`): the
   * acknowledgement lists it. Resolves with `{result: {}}`, or an error response: the upstream
   * declares no `resources.subscribe` or left the URI out (`SWB_ERR_UPSTREAM_SUBSCRIPTION_REFUSED`),
   * or the opening failed (its error).
   */
  subscribe(slot: Slot, uri: string): Promise<JsonRpcResponse> {
    const conn = this.#o.connectionOf(slot);
    if (conn !== undefined && !declaresSubscribe(conn)) {
      return Promise.resolve(this.#refused(`upstream "${this.#o.name}" declares no resources.subscribe capability`));
    }
    const s = this.#entry(slot);
    if (s.current?.agreed?.resourceSubscriptions?.includes(uri) === true && s.opening === undefined) {
      return Promise.resolve(ok());
    }
    return new Promise((resolve) => {
      s.waiting.push({ uri, resolve });
      this.sync(slot);
    });
  }

  /** Cancels every listen request and timer; nothing is opened afterwards. */
  stop(): void {
    this.#stopped = true;
    for (const s of this.#slots.values()) this.#forget(s, 'the upstream stopped');
    this.#slots.clear();
    this.#setCovered(false, undefined);
  }

  #entry(slot: Slot): SlotListen {
    let s = this.#slots.get(slot);
    if (s === undefined) {
      const delays = this.#o.reconnect ?? { initialDelayMs: 500, maxDelayMs: 30_000 };
      s = {
        slot,
        current: undefined,
        opening: undefined,
        waiting: [],
        scheduled: undefined,
        backoff: createBackoff(delays),
        refusedKey: undefined,
      };
      this.#slots.set(slot, s);
    }
    return s;
  }

  /** Brings the slot's listen request in line with what it should ask for now. */
  #reconcile(s: SlotListen): void {
    if (this.#stopped) return;
    if (!this.#o.holds(s.slot)) {
      this.#forget(s, `upstream "${this.#o.name}": the connection closed`);
      this.#slots.delete(s.slot);
      this.#updateCoverage();
      return;
    }
    const conn = this.#o.connectionOf(s.slot);
    if (conn === undefined || conn.closed || conn.era !== 'modern') {
      // Opened again when the slot's next connection is (`sync` from the upstream).
      this.#settle(s.waiting.splice(0), this.#unavailable());
      return;
    }
    const filter = this.#filterFor(s.slot, conn);
    const key = JSON.stringify(filter);
    if (key === '{}' || key === s.refusedKey) {
      this.#close(s.current);
      this.#close(s.opening);
      s.current = s.opening = undefined;
      this.#answer(s.waiting.splice(0), undefined);
      // Nothing to listen for: the state is made again by the next `sync`.
      if (key === '{}') this.#slots.delete(s.slot);
      this.#updateCoverage();
      return;
    }
    const current = s.current;
    if (s.opening === undefined && current?.key === key && current.conn === conn) {
      this.#answer(s.waiting.splice(0), current.agreed);
      return;
    }
    if (s.opening?.key === key && s.opening.conn === conn) {
      s.opening.waiters.push(...s.waiting.splice(0));
      return;
    }
    // A new filter: the previous opening is replaced, its waiters move to the new one.
    const waiters = s.waiting.splice(0);
    if (s.opening !== undefined) {
      waiters.push(...s.opening.waiters.splice(0));
      this.#close(s.opening);
    }
    const uris = new Set(filter.resourceSubscriptions);
    this.#answer(
      waiters.filter((w) => !uris.has(w.uri)),
      undefined,
    );
    s.opening = this.#open(
      s,
      conn,
      filter,
      key,
      waiters.filter((w) => uris.has(w.uri)),
    );
  }

  /** Sends a listen request (subscriptions §Opening a Stream); no timeout but the acknowledgement's. */
  #open(s: SlotListen, conn: UpstreamConnection, filter: ListenFilter, key: string, waiters: Waiter[]): Attempt {
    const attempt: Attempt = { conn, key, upstreamId: 0, agreed: undefined, waiters, ackTimer: undefined, done: false };
    const caller: Caller = {
      sessionId: `listen:${s.slot.key}`,
      clientCapabilities: undefined,
      notify: (n) => this.#onMessage(s, attempt, n),
      // A modern upstream asks nothing of its client: it answers input_required instead.
      request: () => Promise.resolve({ error: { code: -32601, message: 'Method not found' } }),
    };
    const inflight = conn.request('subscriptions/listen', { notifications: filter }, { caller, timeoutMs: 0 });
    attempt.upstreamId = inflight.upstreamId;
    attempt.ackTimer = setTimeout(() => {
      if (attempt.done || attempt.agreed !== undefined) return;
      conn.cancel(attempt.upstreamId, 'no acknowledgement');
    }, this.#ackTimeoutMs);
    attempt.ackTimer.unref();
    void inflight.response.then((response) => this.#ended(s, attempt, response));
    this.#o.logger.debug({ slot: s.slot.key, filter }, 'opening subscriptions/listen');
    return attempt;
  }

  #onMessage(s: SlotListen, attempt: Attempt, n: JsonRpcNotification): void {
    if (attempt.done) return;
    if (n.method === ACK_METHOD) {
      this.#acknowledged(s, attempt, n.params?.notifications);
      return;
    }
    // Nothing may precede the acknowledgement (§Acknowledgment); a replaced stream's last
    // notifications are its successor's too.
    if (attempt !== s.current) return;
    this.#o.onNotification(s.slot, attempt.conn, withoutSubscriptionId(n));
  }

  /** The acknowledgement (subscriptions §Acknowledgment): the stream is open with the filter it lists. */
  #acknowledged(s: SlotListen, attempt: Attempt, notifications: unknown): void {
    if (attempt !== s.opening || attempt.agreed !== undefined) return;
    clearTimeout(attempt.ackTimer);
    const agreed = agreedFilter(notifications);
    attempt.agreed = agreed;
    s.opening = undefined;
    this.#close(s.current);
    s.current = attempt;
    s.backoff.reset();
    this.#answer(attempt.waiters.splice(0), agreed);
    // An empty acknowledgement ends the stream (the server has nothing to send): not asked again
    // until the filter changes.
    if (JSON.stringify(agreed) === '{}') s.refusedKey = attempt.key;
    else s.refusedKey = undefined;
    this.#o.logger.debug({ slot: s.slot.key, agreed }, 'subscriptions/listen acknowledged');
    this.#updateCoverage();
    // The wanted filter may have changed while this one opened.
    if (s.waiting.length > 0 || this.#wantedKey(s) !== attempt.key) this.sync(s.slot);
  }

  /** The listen request was answered: graceful closure, a failure, or the gateway's cancellation. */
  #ended(s: SlotListen, attempt: Attempt, response: JsonRpcResponse): void {
    clearTimeout(attempt.ackTimer);
    if (attempt.done) return;
    attempt.done = true;
    if (attempt === s.opening) {
      s.opening = undefined;
      this.#settle(
        attempt.waiters.splice(0),
        'error' in response ? response : this.#refused(`upstream "${this.#o.name}" closed the subscription`),
      );
      this.#o.logger.warn(
        { slot: s.slot.key, error: 'error' in response ? response.error : undefined },
        'subscriptions/listen failed',
      );
    } else if (attempt === s.current) {
      s.current = undefined;
      this.#updateCoverage();
      if (attempt.key === s.refusedKey) return;
      this.#o.logger.info(
        { slot: s.slot.key, error: 'error' in response ? response.error : undefined },
        'subscriptions/listen stream ended; listening again',
      );
    } else {
      return;
    }
    if (!this.#o.holds(s.slot)) {
      this.#slots.delete(s.slot);
      return;
    }
    // An upstream that does not know the method is not asked again until the filter changes.
    if ('error' in response && response.error.code === METHOD_NOT_FOUND) s.refusedKey = attempt.key;
    else this.#retryLater(s);
  }

  #retryLater(s: SlotListen): void {
    if (this.#stopped || (s.scheduled !== undefined && s.scheduled !== 'soon')) return;
    const timer = setTimeout(() => {
      if (s.scheduled === timer) s.scheduled = undefined;
      this.#reconcile(s);
    }, s.backoff.next());
    timer.unref();
    s.scheduled = timer;
  }

  /** Ends a listen request of the gateway's own accord (subscriptions §Cancellation). */
  #close(attempt: Attempt | undefined): void {
    if (attempt === undefined || attempt.done) return;
    attempt.done = true;
    clearTimeout(attempt.ackTimer);
    attempt.conn.cancel(attempt.upstreamId, 'subscription replaced');
  }

  #forget(s: SlotListen, why: string): void {
    if (s.scheduled !== undefined && s.scheduled !== 'soon') clearTimeout(s.scheduled);
    s.scheduled = undefined;
    const waiters = [...s.waiting.splice(0), ...(s.opening?.waiters.splice(0) ?? [])];
    this.#close(s.current);
    this.#close(s.opening);
    s.current = s.opening = undefined;
    this.#settle(waiters, errorOf(new GatewayError('SWB_ERR_UPSTREAM_CLOSED', why)));
  }

  /** Resolves subscriptions against what an acknowledgement agreed to. */
  #answer(waiters: Waiter[], agreed: ListenFilter | undefined): void {
    for (const w of waiters) {
      w.resolve(
        agreed?.resourceSubscriptions?.includes(w.uri) === true
          ? ok()
          : this.#refused(`upstream "${this.#o.name}" did not agree to a subscription to ${w.uri}`),
      );
    }
  }

  #settle(waiters: Waiter[], response: JsonRpcResponse): void {
    for (const w of waiters) w.resolve(response);
  }

  #wantedKey(s: SlotListen): string | undefined {
    const conn = this.#o.connectionOf(s.slot);
    return conn === undefined ? undefined : JSON.stringify(this.#filterFor(s.slot, conn));
  }

  /** What the slot's listen should ask for: only what the upstream declares it can send. */
  #filterFor(slot: Slot, conn: UpstreamConnection): ListenFilter {
    const caps = discoverCapabilities(conn);
    const filter: ListenFilter = {};
    if (this.#o.watchesLists(slot)) {
      if (flag(caps.tools, 'listChanged')) filter.toolsListChanged = true;
      if (flag(caps.prompts, 'listChanged')) filter.promptsListChanged = true;
      if (flag(caps.resources, 'listChanged')) filter.resourcesListChanged = true;
    }
    if (slot.subscriptions.size > 0 && flag(caps.resources, 'subscribe')) {
      filter.resourceSubscriptions = [...slot.subscriptions.keys()].sort();
    }
    return filter;
  }

  /** Whether some acknowledged stream carries every list change the upstream can announce. */
  #updateCoverage(): void {
    for (const s of this.#slots.values()) {
      const agreed = s.current?.agreed;
      if (agreed === undefined) continue;
      const caps = discoverCapabilities(s.current!.conn);
      const covers =
        (caps.tools === undefined || agreed.toolsListChanged === true) &&
        (caps.prompts === undefined || agreed.promptsListChanged === true) &&
        (caps.resources === undefined || agreed.resourcesListChanged === true) &&
        (agreed.toolsListChanged === true ||
          agreed.promptsListChanged === true ||
          agreed.resourcesListChanged === true);
      if (covers) {
        this.#setCovered(true, s.current!.conn);
        return;
      }
    }
    this.#setCovered(false, undefined);
  }

  #setCovered(covered: boolean, conn: UpstreamConnection | undefined): void {
    if (covered === this.#covered) return;
    this.#covered = covered;
    if (!this.#stopped) this.#o.onListsCovered(covered, conn);
  }

  #refused(message: string): JsonRpcResponse {
    return errorOf(new GatewayError('SWB_ERR_UPSTREAM_SUBSCRIPTION_REFUSED', message));
  }

  #unavailable(): JsonRpcResponse {
    return errorOf(new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `upstream "${this.#o.name}" is not connected`));
  }
}

/** Whether a modern connection's upstream declares `resources.subscribe`. */
export function declaresSubscribe(conn: UpstreamConnection): boolean {
  return flag(discoverCapabilities(conn).resources, 'subscribe');
}

/** The capabilities of a modern upstream's `DiscoverResult` as it sent them. */
function discoverCapabilities(conn: UpstreamConnection): JsonObject {
  const caps = conn.discoverResult?.capabilities;
  return typeof caps === 'object' && caps !== null && !Array.isArray(caps) ? (caps as JsonObject) : {};
}

function flag(section: unknown, key: string): boolean {
  return typeof section === 'object' && section !== null && (section as JsonObject)[key] === true;
}

/** The filter an acknowledgement lists (only well-formed fields count). */
function agreedFilter(raw: unknown): ListenFilter {
  const out: ListenFilter = {};
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return out;
  const f = raw as JsonObject;
  if (f.toolsListChanged === true) out.toolsListChanged = true;
  if (f.promptsListChanged === true) out.promptsListChanged = true;
  if (f.resourcesListChanged === true) out.resourcesListChanged = true;
  if (Array.isArray(f.resourceSubscriptions)) {
    const uris = f.resourceSubscriptions.filter((u): u is string => typeof u === 'string');
    if (uris.length > 0) out.resourceSubscriptions = [...new Set(uris)].sort();
  }
  return out;
}

/** A stream's notification as a 2025 upstream would send it: without the subscription id. */
function withoutSubscriptionId(n: JsonRpcNotification): JsonRpcNotification {
  const meta = n.params?._meta;
  if (typeof meta !== 'object' || meta === null || !(META_SUBSCRIPTION_ID in meta)) return n;
  const { [META_SUBSCRIPTION_ID]: _id, ...rest } = meta as JsonObject;
  void _id;
  const { _meta: _old, ...params } = n.params!;
  void _old;
  return {
    jsonrpc: '2.0',
    method: n.method,
    params: Object.keys(rest).length === 0 ? params : { ...params, _meta: rest },
  };
}

function errorOf(error: GatewayError): JsonRpcResponse {
  return { jsonrpc: '2.0', id: 0, error: error.toJsonRpcError() };
}
