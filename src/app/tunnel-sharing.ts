/**
 * Tunnels on every replica, over Redis: the replica holding a tunnel (its WebSocket reached it)
 * publishes the server's record — `initialize` result and lists, `tunnel/remote.ts` — at
 * `{ownersPrefix}tunnel:{name}` (a time to live renewed by the heartbeat, the names in the set
 * `{ownersPrefix}tunnels`) and announces each change on the channel `{ownersPrefix}tunnels`;
 * every other replica serves the server from the record, an `Upstream` whose calls all go to the
 * holder (`upstream/ownership.ts`, `./forwarding.ts`).
 *
 * @module
 */
import type { Redis } from 'ioredis';
import type { Gateway } from '../gateway/gateway.js';
import type { Logger } from '../observability/logger.js';
import { CatalogTransport, isRemoteTunnelRecord, type RemoteTunnelRecord } from '../tunnel/remote.js';
import type { Upstream } from '../upstream/upstream.js';

/** Deletes a record only while it still holds what this replica wrote (`ARGV[1]`). */
export const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) else return 0 end`;

/** Largest tunnel record shared, in characters of JSON (16 MiB). */
const MAX_RECORD = 16 * 1024 * 1024;

/** Options of {@link shareTunnels}. */
export interface TunnelSharingOptions {
  readonly gateway: Gateway;
  /** A client for commands (not subscribed). */
  readonly commands: Redis;
  readonly publisher: Redis;
  /** This replica's tag. */
  readonly me: string;
  /** `sessions.ownersPrefix`. */
  readonly prefix: string;
  /** Time to live of a record, ms; renewed by {@link TunnelSharing.heartbeat}. */
  readonly ttlMs: number;
  readonly log: Logger;
}

/** The tunnel sharing of one replica; see {@link shareTunnels}. */
export interface TunnelSharing {
  /** The channel the caller subscribes to; its messages go to {@link announced}. */
  readonly channel: string;
  /** A message on {@link channel}: the name of a tunnel that changed. */
  announced(name: string): void;
  /** Renews this replica's records and brings the served remote tunnels up to date. */
  heartbeat(): Promise<void>;
  /** Withdraws this replica's records (announced) and stops following the gateway's tunnels. */
  close(): Promise<void>;
}

/**
 * Starts sharing: publishes the gateway's own tunnels now and whenever they change
 * (`Gateway.onLocalTunnel`). The caller subscribes to {@link TunnelSharing.channel}.
 */
export function shareTunnels(options: TunnelSharingOptions): TunnelSharing {
  const { gateway, commands, publisher, me, prefix, ttlMs, log } = options;
  let closed = false;
  const tunnelKey = (name: string) => `${prefix}tunnel:${name}`;
  const tunnelSet = `${prefix}tunnels`;
  const tunnelChannel = `${prefix}tunnels`;
  const localTunnels = new Map<string, string>(); // name → the record as published
  interface RemoteTunnel {
    owner: string;
    record: RemoteTunnelRecord;
    transport: CatalogTransport | undefined;
  }
  const remoteTunnels = new Map<string, RemoteTunnel>();

  const publishTunnel = async (name: string, upstream: Upstream | undefined): Promise<void> => {
    if (upstream === undefined || upstream.initializeResult === undefined) {
      const published = localTunnels.get(name);
      if (published !== undefined) {
        localTunnels.delete(name);
        await commands.eval(RELEASE, 1, tunnelKey(name), published);
        await publisher.publish(tunnelChannel, name);
      }
      return;
    }
    const { tools, prompts, resources, resourceTemplates } = upstream.catalog;
    const record: RemoteTunnelRecord = {
      replica: me,
      description: upstream.config.description,
      initializeResult: upstream.initializeResult,
      tools,
      prompts,
      resources,
      resourceTemplates,
    };
    const text = JSON.stringify(record);
    if (text.length > MAX_RECORD) {
      log.warn({ tunnel: name, bytes: text.length }, 'a tunnel’s lists are too large to share with the other replicas');
      return;
    }
    localTunnels.set(name, text);
    await commands.set(tunnelKey(name), text, 'PX', ttlMs);
    await commands.sadd(tunnelSet, name);
    await publisher.publish(tunnelChannel, name);
  };

  let syncing: Promise<void> = Promise.resolve();
  /** Serves here every tunnel another replica holds, and stops serving those that went away. */
  const syncTunnels = (): Promise<void> =>
    (syncing = syncing.then(async () => {
      if (closed) return;
      const names = await commands.smembers(tunnelSet);
      const live = new Set<string>();
      for (const name of names) {
        const text = await commands.get(tunnelKey(name));
        let record: unknown;
        try {
          record = text === null ? undefined : JSON.parse(text);
        } catch {
          record = undefined;
        }
        if (!isRemoteTunnelRecord(record)) {
          if (text === null && !localTunnels.has(name)) await commands.srem(tunnelSet, name);
          continue;
        }
        if (record.replica === me) continue;
        live.add(name);
        const known = remoteTunnels.get(name);
        if (known !== undefined && known.owner === record.replica) {
          known.record = record;
          known.transport?.update(record);
          continue;
        }
        if (known !== undefined) {
          remoteTunnels.delete(name);
          await gateway.detachTunnel(name);
        }
        if (gateway.upstreams.has(name)) continue; // a server of this replica's own has the name
        const entry: RemoteTunnel = { owner: record.replica, record, transport: undefined };
        try {
          gateway.attachTunnel(
            name,
            record.description,
            () => (entry.transport = new CatalogTransport(name, entry.record)),
            record.replica,
          );
          remoteTunnels.set(name, entry);
          log.info({ tunnel: name, replica: record.replica }, 'serving a tunnel another replica holds');
        } catch (err) {
          log.warn({ err, tunnel: name }, 'cannot serve a tunnel another replica holds');
        }
      }
      for (const name of [...remoteTunnels.keys()]) {
        if (live.has(name)) continue;
        remoteTunnels.delete(name);
        log.info({ tunnel: name }, 'a tunnel another replica held went away');
        await gateway.detachTunnel(name);
      }
    }));

  gateway.onLocalTunnel = (name, upstream) => {
    publishTunnel(name, upstream).catch((err: unknown) => log.warn({ err, tunnel: name }, 'could not share a tunnel'));
  };
  for (const name of gateway.upstreams.keys()) {
    if (gateway.isLocalTunnel(name)) gateway.onLocalTunnel(name, gateway.upstreams.get(name));
  }
  return {
    channel: tunnelChannel,
    announced(name) {
      if (localTunnels.has(name)) return;
      syncTunnels().catch((err: unknown) => log.debug({ err }, 'tunnel sync failed'));
    },
    async heartbeat() {
      for (const [name, text] of localTunnels) await commands.set(tunnelKey(name), text, 'PX', ttlMs);
      await syncTunnels();
    },
    async close() {
      closed = true;
      gateway.onLocalTunnel = undefined;
      await syncing.catch(() => undefined);
      await Promise.allSettled(
        [...localTunnels].map(async ([name, published]) => {
          await commands.eval(RELEASE, 1, tunnelKey(name), published);
          await publisher.publish(tunnelChannel, name);
        }),
      );
      localTunnels.clear();
    },
  };
}
