import type { IncomingHttpHeaders } from 'node:http';
import { createLocalJWKSet, decodeProtectedHeader, errors as joseErrors, jwtVerify } from 'jose';
import { describe, expect, it } from 'vitest';
import {
  IDENTITY_ASSERTION_TYPE,
  IDENTITY_HEADER_PREFIX,
  IDENTITY_HEADERS,
  IDENTITY_KEY_SETTING,
  createIdentityPropagator,
  rotateIdentityKey,
  stripIdentityHeaders,
  type IdentityPropagatorOptions,
} from '../../../src/auth/identity.js';
import { ANONYMOUS, type Principal } from '../../../src/auth/principal.js';
import { GatewayError } from '../../../src/errors.js';
import type { SettingsStore } from '../../../src/store/types.js';

/** A tiny in-memory SettingsStore that round-trips values through JSON, as a database would. */
class MemorySettings implements SettingsStore {
  readonly #data = new Map<string, string>();
  sets = 0;

  get<T = unknown>(key: string): Promise<T | undefined> {
    const v = this.#data.get(key);
    return Promise.resolve(v === undefined ? undefined : (JSON.parse(v) as T));
  }

  set(key: string, value: unknown): Promise<void> {
    this.sets++;
    this.#data.set(key, JSON.stringify(value));
    return Promise.resolve();
  }

  setIfAbsent<T = unknown>(key: string, value: T): Promise<T> {
    if (!this.#data.has(key)) {
      this.sets++;
      this.#data.set(key, JSON.stringify(value));
    }
    return Promise.resolve(JSON.parse(this.#data.get(key)!) as T);
  }
}

const ISSUER = 'https://switchboard.example';

const alice: Principal = {
  id: 'token:alice',
  kind: 'token',
  subject: 'alice',
  permissions: ['*'],
  tokenId: '7d1c6a2e-0000-4000-8000-000000000001',
  jti: 'jti-1',
  bearer: 'sb_secret_token',
};

function propagator(store: SettingsStore, options: Partial<IdentityPropagatorOptions> = {}) {
  return createIdentityPropagator({ issuer: ISSUER, keyStore: store, ...options });
}

async function verify(jwt: string, jwks: ReturnType<typeof createLocalJWKSet>, audience: string, currentDate?: Date) {
  return jwtVerify(jwt, jwks, {
    issuer: ISSUER,
    audience,
    algorithms: ['ES256'],
    typ: IDENTITY_ASSERTION_TYPE,
    ...(currentDate === undefined ? {} : { currentDate }),
  });
}

describe('identity propagation headers', () => {
  it('sends principal, token id, session id, trace id and an assertion the upstream verifies with the JWKS', async () => {
    const p = await propagator(new MemorySettings());
    const headers = await p.headersFor({
      serverName: 'hdr',
      principal: alice,
      sessionId: 'sess-1',
      traceId: 'trace-9',
    });

    expect(headers[IDENTITY_HEADERS.principal]).toBe('token:alice');
    expect(headers[IDENTITY_HEADERS.tokenId]).toBe(alice.tokenId);
    expect(headers[IDENTITY_HEADERS.sessionId]).toBe('sess-1');
    expect(headers[IDENTITY_HEADERS.traceId]).toBe('trace-9');
    expect(Object.keys(headers).every((k) => k.startsWith(IDENTITY_HEADER_PREFIX))).toBe(true);

    const jwt = headers[IDENTITY_HEADERS.assertion]!;
    const { payload, protectedHeader } = await verify(jwt, createLocalJWKSet(p.jwks()), 'hdr');
    expect(protectedHeader).toMatchObject({ alg: 'ES256', kid: p.kid, typ: IDENTITY_ASSERTION_TYPE });
    expect(payload).toMatchObject({
      iss: ISSUER,
      sub: 'token:alice',
      aud: 'hdr',
      sid: 'sess-1',
      kind: 'token',
      token_id: alice.tokenId,
    });
    expect(typeof payload.jti).toBe('string');
    expect(payload.exp! - payload.iat!).toBe(60);
    expect(jwt).not.toContain(alice.bearer);
  });

  it('omits token id, session id and trace id when there are none', async () => {
    const p = await propagator(new MemorySettings());
    const headers = await p.headersFor({ serverName: 'hdr', principal: ANONYMOUS });
    expect(Object.keys(headers).sort()).toEqual([IDENTITY_HEADERS.assertion, IDENTITY_HEADERS.principal]);
    const { payload } = await verify(headers[IDENTITY_HEADERS.assertion]!, createLocalJWKSet(p.jwks()), 'hdr');
    expect(payload.sid).toBeUndefined();
    expect(payload.token_id).toBeUndefined();
    expect(payload.kind).toBe('anonymous');
  });

  it('rejects the assertion at an upstream with another name (audience = server name)', async () => {
    const p = await propagator(new MemorySettings());
    const headers = await p.headersFor({ serverName: 'hdr', principal: alice, sessionId: 's' });
    await expect(
      verify(headers[IDENTITY_HEADERS.assertion]!, createLocalJWKSet(p.jwks()), 'other'),
    ).rejects.toBeInstanceOf(joseErrors.JWTClaimValidationFailed);
  });

  it('makes assertions that expire after ttlSeconds (injected clock)', async () => {
    const store = new MemorySettings();
    const now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const p = await propagator(store, { clock: () => now, ttlSeconds: 30 });
    const jwt = (await p.headersFor({ serverName: 'hdr', principal: alice }))[IDENTITY_HEADERS.assertion]!;
    const jwks = createLocalJWKSet(p.jwks());

    await expect(verify(jwt, jwks, 'hdr', new Date(now + 29_000))).resolves.toMatchObject({
      payload: { iss: ISSUER, sub: 'token:alice', aud: 'hdr' },
    });
    await expect(verify(jwt, jwks, 'hdr', new Date(now + 30_000))).rejects.toBeInstanceOf(joseErrors.JWTExpired);
    // And checked against the real clock, an assertion made "yesterday" is long expired.
    const yesterday = await propagator(store, { clock: () => Date.now() - 86_400_000 });
    const old = (await yesterday.headersFor({ serverName: 'hdr', principal: alice }))[IDENTITY_HEADERS.assertion]!;
    await expect(verify(old, jwks, 'hdr')).rejects.toBeInstanceOf(joseErrors.JWTExpired);
  });

  it('rejects an assertion signed by another Switchboard (different key)', async () => {
    const mine = await propagator(new MemorySettings());
    const theirs = await propagator(new MemorySettings());
    const jwt = (await theirs.headersFor({ serverName: 'hdr', principal: alice }))[IDENTITY_HEADERS.assertion]!;
    await expect(verify(jwt, createLocalJWKSet(mine.jwks()), 'hdr')).rejects.toBeInstanceOf(
      joseErrors.JWKSNoMatchingKey,
    );
  });

  it('percent-encodes principal ids that are not visible ASCII; the assertion carries the exact id', async () => {
    const p = await propagator(new MemorySettings());
    const odd: Principal = { ...ANONYMOUS, id: 'oauth:https://idp#Zoë 50%\r\nX-Evil: 1', kind: 'oauth' };
    const headers = await p.headersFor({ serverName: 'hdr', principal: odd, traceId: 't r' });
    const value = headers[IDENTITY_HEADERS.principal]!;
    expect(value).toMatch(/^[\x21-\x7e]+$/);
    expect(decodeURIComponent(value)).toBe(odd.id);
    expect(headers[IDENTITY_HEADERS.traceId]).toBe('t%20r');
    const { payload } = await verify(headers[IDENTITY_HEADERS.assertion]!, createLocalJWKSet(p.jwks()), 'hdr');
    expect(payload.sub).toBe(odd.id);
  });
});

describe('assertion cache', () => {
  it('reuses the signed assertion for the same server, principal and session until shortly before expiry', async () => {
    let now = Date.UTC(2026, 0, 1, 12, 0, 0);
    const p = await propagator(new MemorySettings(), { clock: () => now });
    const ctx = { serverName: 'hdr', principal: alice, sessionId: 's1' };
    const first = (await p.headersFor(ctx))[IDENTITY_HEADERS.assertion];

    now += 49_000; // ttl 60 s, refreshed 10 s before expiry
    expect((await p.headersFor({ ...ctx, traceId: 'per-request' }))[IDENTITY_HEADERS.assertion]).toBe(first);
    expect(await p.headersFor(ctx)).toBe(await p.headersFor(ctx));

    now += 1_000;
    const refreshed = (await p.headersFor(ctx))[IDENTITY_HEADERS.assertion];
    expect(refreshed).not.toBe(first);
    const { payload } = await verify(refreshed!, createLocalJWKSet(p.jwks()), 'hdr', new Date(now));
    expect(payload.iat).toBe(Math.floor(now / 1000));
  });

  it('never shares an assertion across servers, principals, tokens or sessions', async () => {
    const p = await propagator(new MemorySettings());
    const base = { serverName: 'hdr', principal: alice, sessionId: 's1' };
    const jwtOf = async (ctx: typeof base) => (await p.headersFor(ctx))[IDENTITY_HEADERS.assertion];
    const reference = await jwtOf(base);
    const variants = [
      { ...base, serverName: 'other' },
      { ...base, principal: { ...alice, id: 'token:bob' } },
      { ...base, principal: { ...alice, tokenId: 'another-token-of-alice' } },
      { ...base, sessionId: 's2' },
    ];
    for (const v of variants) expect(await jwtOf(v)).not.toBe(reference);
  });

  it('stays within cacheSize', async () => {
    const p = await propagator(new MemorySettings(), { cacheSize: 2 });
    const ctx = (sessionId: string) => ({ serverName: 'hdr', principal: alice, sessionId });
    const a1 = await p.headersFor(ctx('a'));
    await p.headersFor(ctx('b'));
    await p.headersFor(ctx('c')); // evicts "a"
    expect(await p.headersFor(ctx('a'))).not.toBe(a1);
  });
});

describe('signing key', () => {
  it('is generated once, stored under identity.signingKey and reused by a second propagator (restart)', async () => {
    const store = new MemorySettings();
    const first = await propagator(store);
    const stored = await store.get<Record<string, unknown>>(IDENTITY_KEY_SETTING);
    expect(stored).toMatchObject({ kty: 'EC', crv: 'P-256', kid: first.kid });
    expect(typeof stored?.d).toBe('string');

    const second = await propagator(store);
    expect(store.sets).toBe(1);
    expect(second.kid).toBe(first.kid);
    expect(second.jwks()).toEqual(first.jwks());

    const jwt = (await first.headersFor({ serverName: 'hdr', principal: alice }))[IDENTITY_HEADERS.assertion]!;
    await expect(verify(jwt, createLocalJWKSet(second.jwks()), 'hdr')).resolves.toMatchObject({
      payload: { sub: 'token:alice', aud: 'hdr' },
    });
    expect(decodeProtectedHeader(jwt).kid).toBe(second.kid);
  });

  it('publishes only the public key in the JWKS', async () => {
    const p = await propagator(new MemorySettings());
    const { keys } = p.jwks();
    expect(keys).toHaveLength(1);
    expect(keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', alg: 'ES256', use: 'sig', kid: p.kid });
    expect(keys[0]).not.toHaveProperty('d');
  });

  it('refuses to start with a corrupt stored key rather than silently replacing it', async () => {
    const store = new MemorySettings();
    await store.set(IDENTITY_KEY_SETTING, { kty: 'oct', k: 'abc' });
    const err = await propagator(store).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(GatewayError);
    expect((err as GatewayError).code).toBe('SWB_ERR_INTERNAL');
  });

  it('rotates: the new key signs after a reload, the old one stays in the JWKS until its time is up', async () => {
    let now = Date.UTC(2026, 0, 1);
    const clock = () => now;
    const store = new MemorySettings();
    const gw = await propagator(store, { clock });
    const before = gw.kid;
    const oldJwt = (await gw.headersFor({ serverName: 'hdr', principal: alice }))[IDENTITY_HEADERS.assertion]!;
    expect(await gw.reload()).toBe(false);

    const rotated = await rotateIdentityKey(store, { keepMs: 3_600_000, now });
    expect(rotated.retiredKid).toBe(before);
    expect(rotated.kid).not.toBe(before);
    // Until the gateway re-reads the keys it signs with the old one.
    expect(gw.kid).toBe(before);
    expect(await gw.reload()).toBe(true);
    expect(gw.kid).toBe(rotated.kid);
    expect(gw.jwks().keys.map((k) => k.kid)).toEqual([rotated.kid, before]);
    expect(gw.jwks().keys.every((k) => !('d' in k))).toBe(true);

    // The cached assertion of the old key is not handed out again; both verify with the JWKS.
    const newJwt = (await gw.headersFor({ serverName: 'hdr', principal: alice }))[IDENTITY_HEADERS.assertion]!;
    expect(decodeProtectedHeader(newJwt).kid).toBe(rotated.kid);
    const jwks = createLocalJWKSet(gw.jwks());
    await expect(verify(newJwt, jwks, 'hdr', new Date(now))).resolves.toBeDefined();
    await expect(verify(oldJwt, jwks, 'hdr', new Date(now))).resolves.toBeDefined();

    // Another replica (a second propagator on the same store) starts with both published.
    const replica = await propagator(store, { clock });
    expect(replica.kid).toBe(rotated.kid);
    expect(replica.jwks().keys.map((k) => k.kid)).toEqual([rotated.kid, before]);

    // After --keep the old key leaves the JWKS.
    now += 3_600_001;
    expect(gw.jwks().keys.map((k) => k.kid)).toEqual([rotated.kid]);
    // A second rotation keeps only retired keys whose time is not up.
    const again = await rotateIdentityKey(store, { keepMs: 1000, now });
    await gw.reload();
    expect(gw.jwks().keys.map((k) => k.kid)).toEqual([again.kid, rotated.kid]);
  });

  it('keeps its keys when the store cannot be read on a reload', async () => {
    const store = new MemorySettings();
    const gw = await propagator(store);
    const kid = gw.kid;
    store.get = () => Promise.reject(new Error('database is down'));
    expect(await gw.reload()).toBe(false);
    expect(gw.kid).toBe(kid);
    expect(gw.jwks().keys).toHaveLength(1);
  });

  it('rejects a non-positive ttl', async () => {
    const err = await propagator(new MemorySettings(), { ttlSeconds: 0 }).catch((e: unknown) => e);
    expect((err as GatewayError).code).toBe('SWB_ERR_CONFIG_INVALID');
  });
});

describe('stripIdentityHeaders', () => {
  it('drops every inbound x-switchboard-* header, in any case, and keeps the rest', () => {
    const headers: IncomingHttpHeaders = {
      'x-switchboard-principal': 'token:admin',
      'x-switchboard-assertion': 'forged.jwt.value',
      'X-Switchboard-Token-Id': 'x',
      'x-switchboard-whatever': 'y',
      'x-tenant-id': 'acme',
      authorization: 'Bearer t',
      'x-switchboardish': 'kept',
    };
    expect(stripIdentityHeaders(headers)).toBe(headers);
    expect(headers).toEqual({ 'x-tenant-id': 'acme', authorization: 'Bearer t', 'x-switchboardish': 'kept' });
  });

  it('leaves headers without identity copies untouched', () => {
    const headers: IncomingHttpHeaders = { host: 'a', accept: 'b' };
    stripIdentityHeaders(headers);
    expect(headers).toEqual({ host: 'a', accept: 'b' });
  });
});
