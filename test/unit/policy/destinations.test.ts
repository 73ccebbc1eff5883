import { describe, expect, it } from 'vitest';
import type { LookupAddress } from 'node:dns';
import { request } from 'undici';
import { createDestinationPolicy, gatewayAddresses } from '../../../src/policy/destinations.js';

/** A resolver answering from a fixed table (no DNS in unit tests). */
const table: Record<string, string[]> = {
  'mcp.example.com': ['93.184.216.34'],
  'rebind.example.com': ['93.184.216.34', '169.254.169.254'],
  'internal.example.com': ['10.0.0.7'],
  'loop.example.com': ['127.0.0.1'],
};
const resolve = async (host: string): Promise<string[]> => {
  const found = table[host];
  if (found === undefined) throw Object.assign(new Error(`getaddrinfo ENOTFOUND ${host}`), { code: 'ENOTFOUND' });
  return found;
};

async function codeOf(p: Promise<void>): Promise<string | undefined> {
  return p.then(
    () => undefined,
    (e: { code?: string }) => e.code,
  );
}

describe('destination policy of runtime servers', () => {
  const policy = createDestinationPolicy({ resolve, gatewayAddresses: ['192.0.2.10'] });

  it('refuses cloud metadata, link-local, loopback, unspecified, multicast and the gateway itself', async () => {
    for (const url of [
      'http://169.254.169.254/latest/meta-data/',
      'http://[::ffff:169.254.169.254]/',
      'http://[64:ff9b::a9fe:a9fe]/',
      'http://[fe80::1]/mcp',
      'http://127.0.0.1:8080/mcp',
      'http://127.1/mcp',
      'http://0x7f000001/mcp',
      'http://[::1]/mcp',
      'http://0.0.0.0:8080/mcp',
      'http://[::]/mcp',
      'http://224.0.0.1/',
      'http://192.0.2.10:9000/mcp',
      'http://loop.example.com/mcp',
      'http://rebind.example.com/mcp',
    ]) {
      expect(await codeOf(policy.check(url)), url).toBe('SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION');
    }
  });

  it('lets public and private-network destinations through', async () => {
    for (const url of ['https://mcp.example.com/mcp', 'http://internal.example.com/mcp', 'http://10.1.2.3/mcp']) {
      expect(await codeOf(policy.check(url)), url).toBeUndefined();
    }
  });

  it('refuses a host name that does not resolve (it cannot be checked)', async () => {
    expect(await codeOf(policy.check('http://nowhere.example.com/mcp'))).toBe('SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION');
  });

  it('allows refused destinations listed in allowDestinations: CIDR, IP or host name', async () => {
    const allowing = createDestinationPolicy({
      resolve,
      allow: ['127.0.0.0/8', '::1', 'rebind.example.com', 'fe80::/10'],
    });
    for (const url of [
      'http://127.0.0.1:1/mcp',
      'http://[::1]/',
      'http://loop.example.com/',
      'http://rebind.example.com/',
      'http://[fe80::2]/',
    ]) {
      expect(await codeOf(allowing.check(url)), url).toBeUndefined();
    }
    expect(await codeOf(allowing.check('http://169.254.169.254/'))).toBe('SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION');
  });

  it('reads a changing allow list at every check', async () => {
    let allow: string[] = [];
    const p = createDestinationPolicy({ resolve, allow: () => allow });
    expect(await codeOf(p.check('http://127.0.0.1/'))).toBe('SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION');
    allow = ['127.0.0.1'];
    expect(await codeOf(p.check('http://127.0.0.1/'))).toBeUndefined();
  });

  it('refuses at connect time in the socket lookup, so a name that later resolves to loopback is caught', async () => {
    const lookup = (host: string, all: boolean) =>
      new Promise<{ err: NodeJS.ErrnoException | null; result: unknown }>((done) => {
        policy.lookup(host, { all }, (err: NodeJS.ErrnoException | null, result: string | LookupAddress[]) =>
          done({ err, result }),
        );
      });
    for (const all of [true, false]) {
      const refused = await lookup('localhost', all);
      expect(refused.err?.code).toBe('SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION');
    }
    const allowing = createDestinationPolicy({ allow: ['localhost'] });
    const ok = await new Promise<{ err: unknown; address: unknown }>((done) =>
      allowing.lookup('localhost', { all: false }, (err, address) => done({ err, address })),
    );
    expect(ok.err).toBeNull();
    expect(['127.0.0.1', '::1']).toContain(ok.address);
  });

  it('refuses through its dispatcher (OAuth token requests) a host name that resolves to loopback', async () => {
    const p = createDestinationPolicy();
    try {
      const err: unknown = await request('http://localhost:9/token', {
        method: 'POST',
        dispatcher: p.dispatcher(),
      }).catch((e: unknown) => e);
      expect((err as { code?: string }).code).toBe('SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION');
    } finally {
      await p.close();
    }
  });

  it('counts every interface address as the gateway’s own when it listens on all of them', () => {
    expect(gatewayAddresses('192.0.2.10')).toEqual(['192.0.2.10']);
    expect(gatewayAddresses('0.0.0.0')).toContain('127.0.0.1');
  });
});
