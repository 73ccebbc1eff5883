/**
 * Where runtime URL servers may point: the destination policy for servers added through the
 * admin API (`/api/v1/servers`), never for those of the configuration file.
 *
 * Whoever holds `servers.manage` chooses a runtime server's URL, and the gateway then connects
 * there from inside its network. So, unless `runtimeServers.allowDestinations` allows them, these
 * destinations are refused:
 * - loopback (`127.0.0.0/8`, `::1`) and unspecified (`0.0.0.0/8`, `::`) addresses: services bound
 *   to the gateway's host only;
 * - link-local (`169.254.0.0/16` — cloud metadata at `169.254.169.254` — and `fe80::/10`);
 * - multicast and broadcast;
 * - the gateway's own listening address (every interface address when it listens on all).
 *
 * IPv4-mapped (`::ffff:a.b.c.d`) and NAT64 (`64:ff9b::/96`, RFC 6052) IPv6 addresses are judged by
 * the IPv4 address they carry. A host name is resolved and every address it resolves to must be
 * acceptable. The check runs when a server is created or changed (admin API), before each
 * connection attempt, and inside the DNS lookup of every socket opened for the server (its
 * transport's pool and, through {@link DestinationPolicy.dispatcher}, its OAuth token requests),
 * so a name that resolves differently later (DNS rebinding) is refused when the socket is opened.
 *
 * @module
 */
import { lookup as dnsLookup, promises as dns, type LookupAddress, type LookupOptions } from 'node:dns';
import type { LookupFunction } from 'node:net';
import { networkInterfaces } from 'node:os';
import ipaddr from 'ipaddr.js';
import { Agent, type Dispatcher } from 'undici';
import { GatewayError } from '../errors.js';

/** `ipaddr.js` ranges refused by default. */
const REFUSED_RANGES: ReadonlySet<string> = new Set(['unspecified', 'loopback', 'linkLocal', 'multicast', 'broadcast']);

type Address = ipaddr.IPv4 | ipaddr.IPv6;
type Cidr = [Address, number];

/** Options for {@link createDestinationPolicy}. */
export interface DestinationPolicyOptions {
  /**
   * `runtimeServers.allowDestinations`: CIDRs, IP addresses or host names allowed although
   * refused by default. A function is read at every check, so a reloaded configuration applies
   * at once. Default none.
   */
  allow?: readonly string[] | (() => readonly string[]);
  /** The gateway's own addresses (see {@link gatewayAddresses}). Default none. */
  gatewayAddresses?: readonly string[];
  /** Resolves a host name to all its addresses. Default `dns.promises.lookup(…, {all: true})`. */
  resolve?: (hostname: string) => Promise<readonly string[]>;
}

/** A destination policy; see the module documentation. */
export interface DestinationPolicy {
  /**
   * Checks an upstream URL (its host, resolved when a name).
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION` (403) when the host, or one of
   *   its addresses, is refused, or the name does not resolve.
   */
  check(url: string | URL): Promise<void>;
  /**
   * A `net.connect` `lookup` that resolves like `dns.lookup` and fails with
   * `SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION` when an address is refused: the connect-time check.
   */
  readonly lookup: LookupFunction;
  /** Why an IP address is refused (`"loopback"`, `"the gateway's own address"` …); undefined when allowed. */
  refusal(address: string): string | undefined;
  /**
   * An undici dispatcher (one `Agent`, created on first use) whose sockets use {@link lookup}:
   * for requests a runtime server causes outside its transport (an OAuth token endpoint).
   */
  dispatcher(): Dispatcher;
  /** Closes the dispatcher, if it was created. */
  close(): Promise<void>;
}

/**
 * The gateway's own addresses for a listening address: that address, or every interface address
 * of the machine when it listens on all of them (`0.0.0.0`, `::`).
 */
export function gatewayAddresses(listenAddress: string): string[] {
  if (!ipaddr.isValid(listenAddress)) return [];
  if (ipaddr.parse(listenAddress).range() !== 'unspecified') return [listenAddress];
  const out: string[] = [];
  for (const list of Object.values(networkInterfaces())) for (const i of list ?? []) out.push(i.address.split('%')[0]!);
  return out;
}

/** The IPv4 address an IPv4-mapped or NAT64 (RFC 6052 well-known prefix) IPv6 address carries. */
function unwrap(address: Address): Address {
  if (address.kind() !== 'ipv6') return address;
  const v6 = address as ipaddr.IPv6;
  if (v6.isIPv4MappedAddress()) return v6.toIPv4Address();
  if (v6.range() === 'rfc6052') {
    const p = v6.parts;
    return new ipaddr.IPv4([p[6]! >> 8, p[6]! & 0xff, p[7]! >> 8, p[7]! & 0xff]);
  }
  return address;
}

function inCidr(address: Address, [net, bits]: Cidr): boolean {
  const plain = unwrap(address);
  if (plain.kind() === net.kind() && plain.match(net, bits)) return true;
  return plain !== address && address.kind() === net.kind() && address.match(net, bits);
}

/** Host name as compared: lower case, no trailing dot, no IPv6 brackets. */
function normaliseHost(host: string): string {
  const h = host.toLowerCase().replace(/\.$/, '');
  return h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
}

interface Compiled {
  cidrs: Cidr[];
  hosts: Set<string>;
}

function compile(entries: readonly string[]): Compiled {
  const cidrs: Cidr[] = [];
  const hosts = new Set<string>();
  for (const entry of entries) {
    if (entry.includes('/')) cidrs.push(ipaddr.parseCIDR(entry));
    else if (ipaddr.isValid(normaliseHost(entry))) {
      const a = ipaddr.parse(normaliseHost(entry));
      cidrs.push([a, a.kind() === 'ipv4' ? 32 : 128]);
    } else hosts.add(normaliseHost(entry));
  }
  return { cidrs, hosts };
}

function forbidden(message: string, host: string): GatewayError {
  return new GatewayError('SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION', message, { data: { host } });
}

/** Creates the destination policy of runtime URL servers. */
export function createDestinationPolicy(options: DestinationPolicyOptions = {}): DestinationPolicy {
  const allowOption = options.allow ?? [];
  const readAllow = typeof allowOption === 'function' ? allowOption : () => allowOption;
  let lastList: readonly string[] | undefined;
  let compiled: Compiled = { cidrs: [], hosts: new Set() };
  const allowed = (): Compiled => {
    const list = readAllow();
    if (list !== lastList) {
      compiled = compile(list);
      lastList = list;
    }
    return compiled;
  };
  const own = new Set<string>();
  for (const a of options.gatewayAddresses ?? []) if (ipaddr.isValid(a)) own.add(unwrap(ipaddr.parse(a)).toString());
  const resolve =
    options.resolve ??
    (async (hostname: string) => (await dns.lookup(hostname, { all: true, verbatim: true })).map((r) => r.address));

  function refusal(text: string): string | undefined {
    const host = normaliseHost(text);
    if (!ipaddr.isValid(host)) return 'not an IP address';
    const address = ipaddr.parse(host);
    if (allowed().cidrs.some((c) => inCidr(address, c))) return undefined;
    const plain = unwrap(address);
    const range = plain.range();
    if (REFUSED_RANGES.has(range)) return range;
    if (own.has(plain.toString())) return "the gateway's own address";
    return undefined;
  }

  function refusedAddress(hostname: string, addresses: readonly string[]): GatewayError | undefined {
    for (const address of addresses) {
      const why = refusal(address);
      if (why !== undefined) {
        const via = normaliseHost(hostname) === normaliseHost(address) ? '' : ` (${hostname} resolves to ${address})`;
        return forbidden(
          `destination ${address}${via} is refused for runtime servers (${why}); allow it with runtimeServers.allowDestinations`,
          hostname,
        );
      }
    }
    return undefined;
  }

  const lookup = ((hostname: string, opts: LookupOptions, callback: (...args: unknown[]) => void) => {
    dnsLookup(hostname, { ...opts, all: true }, (err, results: LookupAddress[]) => {
      if (err) return callback(err);
      if (!allowed().hosts.has(normaliseHost(hostname))) {
        const refused = refusedAddress(
          hostname,
          results.map((r) => r.address),
        );
        if (refused) return callback(refused);
      }
      if (opts.all) return callback(null, results);
      const first = results[0];
      if (first === undefined)
        return callback(Object.assign(new Error(`no address for ${hostname}`), { code: 'ENOTFOUND' }));
      return callback(null, first.address, first.family);
    });
  }) as LookupFunction;

  let agent: Agent | undefined;

  return {
    dispatcher() {
      agent ??= new Agent({ connect: { lookup } });
      return agent;
    },
    async close() {
      await agent?.close();
      agent = undefined;
    },
    async check(url) {
      const u = typeof url === 'string' ? new URL(url) : url;
      const host = normaliseHost(u.hostname);
      if (allowed().hosts.has(host)) return;
      let addresses: readonly string[];
      if (ipaddr.isValid(host)) addresses = [host];
      else {
        try {
          addresses = await resolve(host);
        } catch (cause) {
          throw new GatewayError(
            'SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION',
            `destination ${host} does not resolve, so it cannot be checked`,
            { cause, data: { host } },
          );
        }
      }
      const refused = refusedAddress(host, addresses);
      if (refused) throw refused;
    },
    lookup,
    refusal,
  };
}
