/**
 * Owners of `session`/`user`-isolated stdio children across replicas, over Redis
 * (`upstream/ownership.ts`). A child holds one session's or principal's state, so it runs on one
 * replica, which records itself as the owner: key `{ownersPrefix}slot:{server}:{key}`, set with
 * `SET NX` and a time to live of {@link OWNER_TTL_MS}, renewed every {@link OWNER_HEARTBEAT_MS}
 * while the child runs and deleted (compare-and-delete) when it stops. A replica that gets a call
 * for a child another one owns passes it on through the owner's channel
 * `{ownersPrefix}inbox:{replica}`; the owner acknowledges it within {@link FORWARD_ACK_MS},
 * runs it on its child, and sends back the related notifications, the server→client requests
 * (answered by the caller's client) and the answer.
 *
 * When an owner dies its keys expire: the next call claims the slot and starts a new child there
 * (the old child's state is gone with its replica). Calls in flight to a dead owner end with
 * `SWB_ERR_UPSTREAM_UNAVAILABLE` once its liveness key `{ownersPrefix}replica:{tag}` expires,
 * never by hanging; a call it never acknowledged ends after {@link FORWARD_ACK_MS}.
 *
 * The same connections share the replicas' tunnels (`./tunnel-sharing.ts`): a tunnelled server's
 * calls reach its holder the same way.
 *
 * @module
 */
import type { Principal } from '../auth/principal.js';
import type { SwitchboardConfig } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../observability/logger.js';
import type { ServerResponse } from 'node:http';
import { RelayedResponse, type RelayedRetry } from '../gateway/retry-relay.js';
import { sendHttpError } from '../http/error-response.js';
import type { RequestContext } from '../pipeline/stage.js';
import type {
  JsonObject,
  JsonRpcErrorObject,
  JsonRpcId,
  JsonRpcNotification,
  JsonRpcResponse,
} from '../protocol/jsonrpc.js';
import type { Caller } from '../upstream/attribution.js';
import { errorResponseOf } from '../upstream/dispatch.js';
import type { ForwardedCall, SlotOwnership } from '../upstream/ownership.js';
import type { SlotContext, UpstreamCall } from '../upstream/types.js';
import { RELEASE, shareTunnels } from './tunnel-sharing.js';

/** Time to live of an owner record and of a replica's liveness key, ms (6 s). */
export const OWNER_TTL_MS = 6000;
/** How often a replica renews its records and checks the owners it waits on, ms (2 s). */
export const OWNER_HEARTBEAT_MS = 2000;
/** How long a passed-on call waits for the owner to take it, ms (2 s). */
export const FORWARD_ACK_MS = 2000;
/** Largest message passed between replicas, in characters of JSON (16 MiB). */
export const MAX_FORWARD_MESSAGE = 16 * 1024 * 1024;
/** How long a replica trusts what it read about another replica's ownership, ms (1 s). */
const REMOTE_OWNER_CACHE_MS = 1000;
/** Most remembered remote owners; beyond, the memory is cleared. */
const MAX_REMOTE_OWNERS = 10_000;

/** Renews an owner record only while it is still this replica's. */
const RENEW = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) else return 0 end`;

/** The slot forwarding of one replica; see {@link startSlotForwarding}. */
export interface SlotForwarding {
  /**
   * Lets go of this replica's owner records at the start of a drain, so that the other replicas
   * take the next calls of those sessions (on new children) while this one finishes what it
   * serves. Its children keep serving the calls that still reach them.
   */
  drain(): Promise<void>;
  /** Fails the calls waiting on other replicas, releases this replica's records, disconnects. */
  close(): Promise<void>;
}

/** A call this replica passed on, waiting for its owner. */
interface Waiting {
  readonly owner: string;
  readonly server: string;
  readonly slot: string;
  readonly caller: Caller | undefined;
  readonly settle: (response: JsonRpcResponse) => void;
  ackTimer: NodeJS.Timeout | undefined;
}

/** A call another replica passed on, running here. */
interface Serving {
  readonly from: string;
  readonly call: UpstreamCall;
  readonly asked: Map<number, (answer: { result?: JsonObject; error?: JsonRpcErrorObject }) => void>;
}

type Message = Record<string, unknown> & { t: string; k: string };

/**
 * Connects `gateway` to the other replicas' owner records and channels (Redis at `redisUrl`)
 * and sets `gateway.slotOwnership`.
 *
 * Never throws: when Redis is not reachable yet, its clients keep reconnecting and calls are served
 * here meanwhile.
 */
export async function startSlotForwarding(
  gateway: Gateway,
  config: SwitchboardConfig,
  redisUrl: string,
  logger: Logger,
): Promise<SlotForwarding> {
  const { createRedisClient, closeRedis, connectRedis } = await import('../store/redis.js');
  const log = logger.child({ component: 'slot-owners' });
  const prefix = config.sessions.ownersPrefix;
  const me = gateway.streamHandover.replica;
  const commands = createRedisClient(redisUrl, log);
  const publisher = createRedisClient(redisUrl, log);
  const subscriber = createRedisClient(redisUrl, log);
  // Redis may not be reachable yet: the clients keep reconnecting, and until then calls are
  // served here (`Upstream` falls back when the owner records cannot be read).
  await Promise.all([connectRedis(commands, log), connectRedis(publisher, log)]);

  const slotKey = (server: string, key: string) => `${prefix}slot:${server}:${key}`;
  const aliveKey = (tag: string) => `${prefix}replica:${tag}`;
  const inbox = (tag: string) => `${prefix}inbox:${tag}`;
  const claimed = new Set<string>();
  const remote = new Map<string, { owner: string; until: number }>();
  const waiting = new Map<string, Waiting>();
  const serving = new Map<string, Serving>();
  /** Retries of parked 2026-07-28 calls this replica passed on, by key: the client's response. */
  const relaying = new Map<
    string,
    { owner: string; res: ServerResponse; id: JsonRpcId; ackTimer: NodeJS.Timeout | undefined }
  >();
  /** Retries other replicas passed on, resumed here, by key. */
  const resumed = new Map<string, { from: string; response: RelayedResponse }>();
  let next = 0;
  let closed = false;

  const send = (tag: string, message: Record<string, unknown>): void => {
    const text = JSON.stringify(message);
    if (text.length > MAX_FORWARD_MESSAGE) {
      log.warn({ to: tag, bytes: text.length }, 'a message too large to pass to another replica was dropped');
      return;
    }
    publisher.publish(inbox(tag), text).catch((err: unknown) => log.debug({ err }, 'publish failed'));
  };

  /** Ends a waiting call with a clear error, and forgets what was known of its owner. */
  const fail = (k: string, why: string): void => {
    const w = waiting.get(k);
    if (w === undefined) return;
    waiting.delete(k);
    if (w.ackTimer !== undefined) clearTimeout(w.ackTimer);
    remote.delete(w.slot);
    w.settle(
      errorResponseOf(
        new GatewayError(
          'SWB_ERR_UPSTREAM_UNAVAILABLE',
          `the replica running this session's "${w.server}" child ${why}; retry in a few seconds`,
        ),
      ),
    );
  };

  const ownership: SlotOwnership = {
    async ownerOf(server, key) {
      const id = slotKey(server, key);
      if (claimed.has(id)) return undefined;
      const known = remote.get(id);
      if (known !== undefined && known.until > Date.now()) return known.owner;
      for (let attempt = 0; attempt < 2; attempt++) {
        if ((await commands.set(id, me, 'PX', OWNER_TTL_MS, 'NX')) === 'OK') {
          claimed.add(id);
          remote.delete(id);
          return undefined;
        }
        const owner = await commands.get(id);
        if (owner === null) continue; // released meanwhile: claim again
        if (owner === me) {
          claimed.add(id);
          return undefined;
        }
        if (remote.size >= MAX_REMOTE_OWNERS) remote.clear();
        remote.set(id, { owner, until: Date.now() + REMOTE_OWNER_CACHE_MS });
        return owner;
      }
      return undefined;
    },

    forward(owner, server, ctx, method, params, caller): ForwardedCall {
      const k = `${me}.${next++}`;
      let settle!: (response: JsonRpcResponse) => void;
      const response = new Promise<JsonRpcResponse>((resolve) => (settle = resolve));
      waiting.set(k, {
        owner,
        server,
        slot: slotKey(server, keyOf(ctx, gateway, server)),
        caller,
        settle,
        ackTimer: undefined,
      });
      const w = waiting.get(k)!;
      w.ackTimer = setTimeout(() => fail(k, `did not take the call within ${FORWARD_ACK_MS} ms`), FORWARD_ACK_MS);
      w.ackTimer.unref();
      const message = {
        t: 'call',
        k,
        from: me,
        server,
        ctx: {
          sessionId: ctx.sessionId,
          principalId: ctx.principalId,
          principal: wirePrincipal(ctx.principal),
          reqId: ctx.reqId,
        },
        method,
        params,
        caps: caller?.clientCapabilities ?? null,
        modern: caller?.modern === true,
      };
      const text = JSON.stringify(message);
      if (text.length > MAX_FORWARD_MESSAGE) fail(k, 'cannot be sent a call this large');
      else publisher.publish(inbox(owner), text).catch(() => fail(k, 'cannot be reached (Redis)'));
      return {
        response,
        cancel: (reason) => {
          if (waiting.has(k)) send(owner, { t: 'cancel', k, reason: reason ?? 'cancelled' });
        },
      };
    },

    release(server, key) {
      const id = slotKey(server, key);
      if (!claimed.delete(id)) return;
      commands.eval(RELEASE, 1, id, me).catch((err: unknown) => log.debug({ err }, 'release failed'));
    },
  };

  /** A call passed on to this replica: run on the child here, answers sent back. */
  function serve(m: Message): void {
    const from = m.from;
    const c = m.ctx as { sessionId?: unknown; principalId?: unknown; principal?: unknown; reqId?: unknown } | undefined;
    if (typeof from !== 'string' || typeof m.server !== 'string' || typeof m.method !== 'string' || c === undefined)
      return;
    if (typeof c.sessionId !== 'string' || typeof c.principalId !== 'string') return;
    send(from, { t: 'ack', k: m.k });
    const upstream = gateway.upstreams.get(m.server);
    if (upstream === undefined) {
      const err = new GatewayError(
        'SWB_ERR_UPSTREAM_UNAVAILABLE',
        `server "${m.server}" is not running on the owning replica`,
      );
      send(from, { t: 'r', k: m.k, r: errorResponseOf(err) });
      return;
    }
    const ctx: SlotContext = {
      sessionId: c.sessionId,
      principalId: c.principalId,
      ...(typeof c.principal === 'object' && c.principal !== null ? { principal: c.principal as Principal } : {}),
      ...(typeof c.reqId === 'string' ? { reqId: c.reqId } : {}),
    };
    const asked: Serving['asked'] = new Map();
    let question = 0;
    const caller: Caller = {
      sessionId: c.sessionId,
      clientCapabilities: (m.caps ?? undefined) as Caller['clientCapabilities'],
      modern: m.modern === true,
      notify: (n: JsonRpcNotification) => send(from, { t: 'n', k: m.k, n }),
      request: (method, params) =>
        new Promise((resolve) => {
          const i = question++;
          asked.set(i, resolve);
          send(from, { t: 'q', k: m.k, i, method, params });
        }),
    };
    const params = (m.params ?? undefined) as JsonObject | undefined;
    // A copy of the session held here stays alive while its calls come through another replica
    // (its idle expiry would otherwise close the child they use).
    gateway.sessions.get(c.sessionId)?.touch();
    const call = upstream.serveForwarded(ctx, m.method, params, caller);
    serving.set(m.k, { from, call, asked });
    void call.response.then((r) => {
      serving.delete(m.k);
      send(from, { t: 'r', k: m.k, r });
      if (!gateway.sessions.has(c.sessionId as string)) upstream.detachSession(c.sessionId as string);
    });
  }

  /** Ends a relayed retry whose owner is gone or never took it. */
  const failRelay = (k: string, why: string): void => {
    const r = relaying.get(k);
    if (r === undefined) return;
    relaying.delete(k);
    if (r.ackTimer !== undefined) clearTimeout(r.ackTimer);
    if (r.res.headersSent) r.res.destroy();
    else
      sendHttpError(
        r.res,
        new GatewayError('SWB_ERR_UPSTREAM_UNAVAILABLE', `the replica holding this call ${why}; call again`),
        r.id,
      );
  };

  gateway.retryRelay.forward = (owner, retry, res, meta) => {
    const k = `${me}.${next++}`;
    const ackTimer = setTimeout(
      () => failRelay(k, `did not take the retry within ${FORWARD_ACK_MS} ms`),
      FORWARD_ACK_MS,
    );
    ackTimer.unref();
    relaying.set(k, { owner, res, id: retry.id, ackTimer });
    res.on('close', () => {
      // The client went away before the answer: the owner cancels the call.
      if (relaying.delete(k)) send(owner, { t: 'rc', k });
    });
    send(owner, { t: 'retry', k, from: me, retry, principal: wirePrincipal(meta.principal), reqId: meta.reqId });
  };

  /** A frame of a relayed answer: written on the client's response. */
  function relayFrame(m: Message): void {
    const r = relaying.get(m.k);
    if (r === undefined || r.res.destroyed) return;
    if (m.t === 'rh' && typeof m.status === 'number') {
      r.res.writeHead(m.status, (m.headers ?? {}) as Record<string, string | number>);
      r.res.flushHeaders();
    } else if (m.t === 'rw' && typeof m.chunk === 'string') {
      r.res.write(m.chunk);
    } else if (m.t === 're') {
      relaying.delete(m.k);
      r.res.end(typeof m.chunk === 'string' ? m.chunk : undefined);
    }
  }

  /** A retry another replica passed on, for a call parked here. */
  function resumeRetry(m: Message): void {
    const from = m.from;
    const retry = m.retry as RelayedRetry | undefined;
    const principal = m.principal as Principal | undefined;
    if (typeof from !== 'string' || retry === undefined || typeof principal !== 'object' || principal === null) return;
    send(from, { t: 'ack', k: m.k });
    const response = new RelayedResponse((frame) => {
      if (frame.kind === 'head') send(from, { t: 'rh', k: m.k, status: frame.status, headers: frame.headers });
      else if (frame.kind === 'write') send(from, { t: 'rw', k: m.k, chunk: frame.chunk });
      else {
        resumed.delete(m.k);
        send(from, { t: 're', k: m.k, ...(frame.chunk === undefined ? {} : { chunk: frame.chunk }) });
      }
    });
    resumed.set(m.k, { from, response });
    const meta: RequestContext = {
      principal,
      ...(typeof m.reqId === 'string' ? { reqId: m.reqId } : {}),
      method: retry.method,
      era: 'modern',
    };
    const resume = gateway.retryRelay.resume;
    if (resume === undefined) {
      const err = new GatewayError('SWB_ERR_PROTOCOL_INVALID_STATE', 'Invalid params: requestState is unknown here');
      sendHttpError(response.asResponse(), err, retry.id);
      return;
    }
    resume(retry, response.asResponse(), meta);
  }

  subscriber.on('message', (_channel: string, text: string) => {
    let m: Message;
    try {
      m = JSON.parse(text) as Message;
    } catch {
      return;
    }
    if (typeof m !== 'object' || m === null || typeof m.t !== 'string' || typeof m.k !== 'string') return;
    switch (m.t) {
      case 'call':
        serve(m);
        return;
      case 'retry':
        resumeRetry(m);
        return;
      case 'rc':
        resumed.get(m.k)?.response.clientClosed();
        return;
      case 'rh':
      case 'rw':
      case 're':
        relayFrame(m);
        return;
      case 'cancel':
        serving.get(m.k)?.call.cancel(typeof m.reason === 'string' ? m.reason : undefined);
        return;
      case 'qa': {
        const s = serving.get(m.k);
        const answer = s?.asked.get(m.i as number);
        if (answer === undefined) return;
        s!.asked.delete(m.i as number);
        const a = m.a as { result?: JsonObject; error?: JsonRpcErrorObject } | undefined;
        answer(a ?? { error: { code: -32603, message: 'no answer' } });
        return;
      }
      case 'ack': {
        const r = relaying.get(m.k);
        if (r?.ackTimer !== undefined) {
          clearTimeout(r.ackTimer);
          r.ackTimer = undefined;
        }
        const w = waiting.get(m.k);
        if (w?.ackTimer !== undefined) clearTimeout(w.ackTimer);
        if (w !== undefined) w.ackTimer = undefined;
        return;
      }
      case 'n':
        waiting.get(m.k)?.caller?.notify(m.n as JsonRpcNotification);
        return;
      case 'q': {
        const w = waiting.get(m.k);
        if (w === undefined) return;
        const i = m.i;
        const reply = (a: unknown) => send(w.owner, { t: 'qa', k: m.k, i, a });
        if (w.caller === undefined || typeof m.method !== 'string') {
          reply({ error: { code: -32601, message: 'the caller takes no server→client requests' } });
          return;
        }
        w.caller.request(m.method, (m.params ?? undefined) as JsonObject | undefined).then(reply, (err: unknown) => {
          const r = errorResponseOf(err);
          reply({ error: 'error' in r ? r.error : { code: -32603, message: 'Internal error' } });
        });
        return;
      }
      case 'r': {
        const w = waiting.get(m.k);
        if (w === undefined) return;
        waiting.delete(m.k);
        if (w.ackTimer !== undefined) clearTimeout(w.ackTimer);
        w.settle(m.r as JsonRpcResponse);
        return;
      }
    }
  });
  // Tunnels: the replica holding a tunnel publishes its server's record; the others serve it.
  const tunnels = shareTunnels({ gateway, commands, publisher, me, prefix, ttlMs: OWNER_TTL_MS, log });
  subscriber.on('message', (channel: string, name: string) => {
    if (channel === tunnels.channel) tunnels.announced(name);
  });

  let subscribed = false;
  const subscribe = (): Promise<void> =>
    subscriber.subscribe(inbox(me), tunnels.channel).then(
      () => undefined,
      (err: unknown) => log.warn({ err }, 'could not subscribe to the calls other replicas pass on'),
    );
  // A reconnect, or a first connection that could not be made at start: (re)subscribe.
  subscriber.on('ready', () => {
    if (subscribed) void subscribe();
  });
  if (await connectRedis(subscriber, log)) await subscribe();
  subscribed = true;

  /** Renews this replica's records; fails the calls waiting on replicas that are gone. */
  async function heartbeat(): Promise<void> {
    await commands.set(aliveKey(me), '1', 'PX', OWNER_TTL_MS);
    await tunnels.heartbeat();
    for (const id of [...claimed]) {
      if ((await commands.eval(RENEW, 1, id, me, OWNER_TTL_MS)) === 0) {
        claimed.delete(id);
        log.warn({ slot: id }, 'another replica took over an isolated child this replica ran');
      }
    }
    const peers = new Set<string>();
    for (const w of waiting.values()) if (w.ackTimer === undefined) peers.add(w.owner);
    for (const s of serving.values()) peers.add(s.from);
    for (const r of relaying.values()) if (r.ackTimer === undefined) peers.add(r.owner);
    for (const r of resumed.values()) peers.add(r.from);
    for (const peer of peers) {
      if ((await commands.exists(aliveKey(peer))) === 1) continue;
      log.warn({ replica: peer }, 'a replica stopped answering; its calls end here');
      for (const [k, w] of waiting) if (w.owner === peer) fail(k, 'stopped answering');
      for (const [k, r] of relaying) if (r.owner === peer) failRelay(k, 'stopped answering');
      for (const [k, r] of resumed) {
        if (r.from !== peer) continue;
        resumed.delete(k);
        r.response.clientClosed();
      }
      for (const [k, s] of serving) {
        if (s.from !== peer) continue;
        serving.delete(k);
        s.call.cancel('the replica that passed the call on is gone');
      }
    }
  }
  await heartbeat().catch((err: unknown) => log.debug({ err }, 'owner heartbeat failed'));
  const timer = setInterval(() => {
    heartbeat().catch((err: unknown) => log.debug({ err }, 'owner heartbeat failed'));
  }, OWNER_HEARTBEAT_MS);
  timer.unref();
  gateway.slotOwnership = ownership;
  log.debug({ replica: me }, 'isolated children are shared with the other replicas');

  const releaseAll = async (): Promise<void> => {
    const ids = [...claimed];
    claimed.clear();
    await Promise.allSettled(ids.map((id) => commands.eval(RELEASE, 1, id, me)));
  };

  return {
    async drain() {
      if (claimed.size > 0)
        log.info({ children: claimed.size }, 'draining: the other replicas take over isolated children');
      await releaseAll();
    },
    async close() {
      if (closed) return;
      closed = true;
      clearInterval(timer);
      if (gateway.slotOwnership === ownership) gateway.slotOwnership = undefined;
      await tunnels.close();
      for (const k of [...waiting.keys()]) fail(k, 'is unreachable: this replica is stopping');
      for (const k of [...relaying.keys()]) failRelay(k, 'is unreachable: this replica is stopping');
      if (gateway.retryRelay.forward !== undefined) gateway.retryRelay.forward = undefined;
      await Promise.allSettled([releaseAll(), commands.del(aliveKey(me))]);
      await Promise.all([closeRedis(commands), closeRedis(publisher), closeRedis(subscriber)]);
    },
  };
}

/** The principal as it travels to the owner: without the bearer credential. */
function wirePrincipal(principal: Principal | undefined): Principal | undefined {
  if (principal === undefined) return undefined;
  const { bearer: _bearer, ...rest } = principal;
  return rest;
}

/** The slot key of `ctx` on `server`: its session for `session` isolation, else its principal. */
function keyOf(ctx: SlotContext, gateway: Gateway, server: string): string {
  return gateway.upstreams.get(server)?.isolation === 'session' ? ctx.sessionId : ctx.principalId;
}
