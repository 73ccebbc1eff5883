/**
 * Identity propagation to upstreams (docs/upstream-identity.md; opt-in per server with
 * `identityHeaders: true`).
 *
 * Switchboard tells an upstream who is calling with plain headers — principal id, token id,
 * session id, trace id — and with a short-lived JWT assertion (RFC 7519) signed with ES256
 * (RFC 7518 §3.4) whose audience is the server's name, so the upstream can verify the plain
 * headers instead of trusting the network. The public key is published as a JWKS (RFC 7517 §5)
 * that the HTTP edge serves at `/.well-known/jwks.json`. The same key signs the gateway's own JWTs
 * ({@link IdentityPropagator.signJwt}), such as the RFC 8693 actor token of `token-exchange`
 * upstreams.
 *
 * The signing key is generated once and kept in the settings store ({@link IDENTITY_KEY_SETTING}),
 * so every restart and every replica sharing the database signs with the same key.
 *
 * Inbound copies of these headers are always dropped at the edge ({@link stripIdentityHeaders}):
 * a client can never pose as Switchboard towards an upstream.
 *
 * Every assertion is made for a request that was itself authenticated: a session id never stands
 * in for a credential, and the cache only saves the signature.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  SignJWT,
  type CryptoKey,
  type JSONWebKeySet,
  type JWK,
} from 'jose';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { SettingsStore } from '../store/types.js';
import type { Principal } from './principal.js';

/** Prefix of every identity header Switchboard sends (lower-case). */
export const IDENTITY_HEADER_PREFIX = 'x-switchboard-';

/** The identity headers, lower-case (HTTP names are case-insensitive, RFC 9110 §5.1). */
export const IDENTITY_HEADERS = Object.freeze({
  /** `Principal.id`, e.g. `token:alice`, `oauth:https://issuer#sub`. */
  principal: 'x-switchboard-principal',
  /** The API token's id, when the caller used a Switchboard token. */
  tokenId: 'x-switchboard-token-id',
  /** The client's session with Switchboard (`Mcp-Session-Id`), when there is one. */
  sessionId: 'x-switchboard-session-id',
  /** A trace id for correlating logs, when the caller has one. Not covered by the assertion. */
  traceId: 'x-switchboard-trace-id',
  /** The signed JWT assertion. */
  assertion: 'x-switchboard-assertion',
});

/** Settings key holding the private signing key (a JWK with `kid`). */
export const IDENTITY_KEY_SETTING = 'identity.signingKey';

/**
 * Settings key holding the public keys of retired signing keys, each `{jwk, until}` (`until`:
 * epoch ms): they stay in the JWKS until then, so assertions signed just before a rotation, and
 * verifiers holding a cached JWKS, keep working ({@link rotateIdentityKey}).
 */
export const IDENTITY_RETIRED_SETTING = 'identity.retiredKeys';

/** How long a retired signing key stays published after {@link rotateIdentityKey}, ms (1 day). */
export const DEFAULT_RETIRED_KEY_TTL_MS = 86_400_000;

/** JWS `typ` of the assertion (explicit typing, RFC 8725 §3.11): upstreams should check it. */
export const IDENTITY_ASSERTION_TYPE = 'switchboard-identity+jwt';

const ALG = 'ES256';

/** Claims of the assertion, beyond the registered ones (`iss`, `sub`, `aud`, `iat`, `exp`, `jti`). */
export interface IdentityAssertionClaims {
  /** The client's session id with Switchboard, when there is one. */
  sid?: string;
  /** How the principal was established: `anonymous`, `token`, `oauth`, `proxy-header`. */
  kind: Principal['kind'];
  /** The API token's id, when the caller used a Switchboard token. */
  token_id?: string;
}

/** What an assertion is made for. */
export interface IdentityContext {
  /** The upstream's name: the assertion's `aud`. */
  serverName: string;
  principal: Principal;
  /** The client's session id with Switchboard; absent for stateless requests. */
  sessionId?: string | undefined;
  /** Trace id for this request; sent as a plain header only. */
  traceId?: string | undefined;
}

/** Options for {@link createIdentityPropagator}. */
export interface IdentityPropagatorOptions {
  /** Switchboard's public base URL (`SWITCHBOARD_PUBLIC_URL`): the assertion's `iss`. */
  issuer: string;
  /** Where the signing key is kept ({@link IDENTITY_KEY_SETTING}). */
  keyStore: SettingsStore;
  /** Epoch milliseconds. Default `Date.now`. */
  clock?: () => number;
  /** Assertion lifetime in seconds. Default 60. */
  ttlSeconds?: number;
  /** Signed assertions kept for reuse (one per server × principal × token × session). Default 10 000. */
  cacheSize?: number;
  logger?: Logger;
}

/** Produces identity headers for upstream requests. */
export interface IdentityPropagator {
  /** The signing key's id (RFC 7638 SHA-256 thumbprint), the assertion's `kid`. */
  readonly kid: string;
  /**
   * The identity headers for one upstream request (lower-case names; do not mutate):
   * {@link IDENTITY_HEADERS}. Values outside visible ASCII, and `%`, are percent-encoded
   * (UTF-8, RFC 3986 §2.1); the assertion carries the exact values.
   *
   * The signed assertion is reused for the same server, principal, token and session until
   * shortly before it expires (a quarter of the lifetime, at most 10 s), so its `jti` names the
   * assertion, not the request.
   */
  headersFor(ctx: IdentityContext): Promise<Readonly<Record<string, string>>>;
  /**
   * Signs a JWT (RFC 7519) in the gateway's own name with the identity signing key: JWS compact,
   * header `{alg: ES256, kid, typ: JWT}`, claims `iss` = the gateway's public URL, `sub`, `aud`,
   * `iat`, `exp` = `iat + lifetimeSeconds`, `jti` (random UUID). Verifiable against the JWKS
   * served at `/.well-known/jwks.json`. Used for the RFC 8693 §2.1 `actor_token` of
   * `token-exchange` upstreams. Nothing is cached: callers reuse the result until `expiresAt`.
   *
   * @param claims.subject - `sub`
   * @param claims.audience - `aud`
   * @param claims.lifetimeSeconds - positive, default 60
   * @returns the JWT and its `exp` in epoch milliseconds
   */
  signJwt(claims: {
    subject: string;
    audience: string;
    lifetimeSeconds?: number;
  }): Promise<{ jwt: string; expiresAt: number }>;
  /**
   * The public JWKS document to serve at `/.well-known/jwks.json`: the signing key first, then
   * the retired keys still published (ES256, `use: sig`).
   */
  jwks(): JSONWebKeySet;
  /**
   * Re-reads the keys from the settings store: after a rotation (on this or another replica),
   * signs with the new key and publishes the retired ones. Never throws: a failed read keeps the
   * keys in use and is logged.
   *
   * @returns true when the signing key changed
   */
  reload(): Promise<boolean>;
}

/** A retired signing key's public half and until when it is published (epoch ms). */
interface RetiredKey {
  readonly jwk: JWK;
  readonly until: number;
}

function isRetiredKey(v: unknown): v is RetiredKey {
  if (typeof v !== 'object' || v === null) return false;
  const r = v as Record<string, unknown>;
  return typeof r.until === 'number' && typeof r.jwk === 'object' && r.jwk !== null;
}

async function loadRetired(store: SettingsStore): Promise<RetiredKey[]> {
  const v = await store.get<unknown>(IDENTITY_RETIRED_SETTING);
  return Array.isArray(v) ? v.filter(isRetiredKey) : [];
}

function publicJwkOf(stored: StoredKey): JWK {
  const { kty, crv, x, y, kid } = stored;
  return { kty, crv, x, y, kid, alg: ALG, use: 'sig' };
}

/**
 * Replaces the identity signing key with a new one (generated here) and keeps the old public key
 * published for `keepMs`, so that verifiers accept assertions signed with either until then.
 * Running gateways pick the new key up at their next re-read ({@link IdentityPropagator.reload}:
 * at once when told over Redis, else within a minute).
 *
 * @param keepMs - how long the old key stays in the JWKS, ms; default {@link DEFAULT_RETIRED_KEY_TTL_MS}
 * @returns the new key id and the retired one (undefined when there was no key yet)
 */
export async function rotateIdentityKey(
  store: SettingsStore,
  options: { keepMs?: number; now?: number } = {},
): Promise<{ kid: string; retiredKid: string | undefined }> {
  const now = options.now ?? Date.now();
  const keepMs = options.keepMs ?? DEFAULT_RETIRED_KEY_TTL_MS;
  const current = await store.get<unknown>(IDENTITY_KEY_SETTING);
  const next = await generateStoredKey();
  const retired = (await loadRetired(store)).filter((r) => r.until > now);
  let retiredKid: string | undefined;
  if (isStoredKey(current)) {
    retiredKid = current.kid;
    retired.unshift({ jwk: publicJwkOf(current), until: now + keepMs });
  }
  // Published first, so that nobody sees the new key without the old one.
  await store.set(IDENTITY_RETIRED_SETTING, retired);
  await store.set(IDENTITY_KEY_SETTING, next);
  return { kid: next.kid, retiredKid };
}

const IDENTITY_HEADER_RE = /^x-switchboard-/i;
const SAFE_HEADER_VALUE_RE = /^[\x21\x22\x23\x24\x26-\x7e]*$/;

/** Percent-encodes (UTF-8) every character outside visible ASCII, and `%`. */
function headerSafe(v: string): string {
  if (SAFE_HEADER_VALUE_RE.test(v)) return v;
  let out = '';
  for (const ch of v) {
    const code = ch.codePointAt(0) ?? 0;
    if (code >= 0x21 && code <= 0x7e && code !== 0x25) {
      out += ch;
    } else {
      for (const byte of Buffer.from(ch, 'utf8')) out += `%${byte.toString(16).toUpperCase().padStart(2, '0')}`;
    }
  }
  return out;
}

/**
 * Deletes every inbound `X-Switchboard-*` header (any case) from `headers`, in place, so a client
 * can never forge the identity Switchboard vouches for. Call at the edge, before
 * anything reads the headers. Cheap when there is nothing to delete.
 *
 * @returns the same object.
 */
export function stripIdentityHeaders<T extends Record<string, unknown>>(headers: T): T {
  // Hot path: no allocation; only names starting with x/X are tested further.
  for (const name in headers) {
    const c = name.charCodeAt(0);
    if ((c === 0x78 || c === 0x58) && IDENTITY_HEADER_RE.test(name)) delete headers[name];
  }
  return headers;
}

interface StoredKey extends JWK {
  kty: 'EC';
  crv: 'P-256';
  x: string;
  y: string;
  d: string;
  kid: string;
}

function isStoredKey(v: unknown): v is StoredKey {
  if (typeof v !== 'object' || v === null) return false;
  const k = v as Record<string, unknown>;
  return (
    k.kty === 'EC' &&
    k.crv === 'P-256' &&
    typeof k.x === 'string' &&
    typeof k.y === 'string' &&
    typeof k.d === 'string' &&
    typeof k.kid === 'string'
  );
}

async function generateStoredKey(): Promise<StoredKey> {
  const { privateKey } = await generateKeyPair(ALG, { extractable: true });
  const jwk = await exportJWK(privateKey);
  const { x, y, d } = jwk;
  if (x === undefined || y === undefined || d === undefined) throw new Error('generated EC key has no x/y/d');
  const kid = await calculateJwkThumbprint({ kty: 'EC', crv: 'P-256', x, y }, 'sha256');
  return { kty: 'EC', crv: 'P-256', x, y, d, kid, alg: ALG };
}

/** Loads the signing key, generating and storing it on first use. */
async function loadSigningKey(store: SettingsStore, logger: Logger | undefined): Promise<StoredKey> {
  const stored = await store.get<unknown>(IDENTITY_KEY_SETTING);
  if (stored !== undefined) {
    if (!isStoredKey(stored)) {
      // Regenerating would silently break every upstream (and replica) that trusts the old key.
      throw new GatewayError(
        'SWB_ERR_INTERNAL',
        `the stored identity signing key (settings "${IDENTITY_KEY_SETTING}") is not a P-256 private JWK; delete it to generate a new one`,
      );
    }
    return stored;
  }
  const created = await generateStoredKey();
  // Another replica may store its key at the same moment: the first one stored wins, for all.
  const settled = await store.setIfAbsent<unknown>(IDENTITY_KEY_SETTING, created);
  const key = isStoredKey(settled) ? settled : created;
  if (key === created) logger?.info({ kid: key.kid }, 'identity signing key generated');
  return key;
}

interface CacheEntry {
  headers: Promise<Readonly<Record<string, string>>>;
  refreshAt: number;
}

class Propagator implements IdentityPropagator {
  #kid: string;
  readonly #issuer: string;
  #key: CryptoKey;
  #publicJwk: JWK;
  #retired: readonly RetiredKey[] = [];
  #jwks: JSONWebKeySet;
  /** When the JWKS must be rebuilt because a retired key's time is up (epoch ms). */
  #jwksUntil = Number.POSITIVE_INFINITY;
  readonly #store: SettingsStore;
  readonly #logger: Logger | undefined;
  readonly #clock: () => number;
  readonly #ttlSeconds: number;
  readonly #marginMs: number;
  readonly #cacheSize: number;
  readonly #cache = new Map<string, CacheEntry>();

  constructor(options: {
    issuer: string;
    kid: string;
    key: CryptoKey;
    publicJwk: JWK;
    retired: readonly RetiredKey[];
    store: SettingsStore;
    logger: Logger | undefined;
    clock: () => number;
    ttlSeconds: number;
    cacheSize: number;
  }) {
    this.#kid = options.kid;
    this.#issuer = options.issuer;
    this.#key = options.key;
    this.#publicJwk = options.publicJwk;
    this.#retired = options.retired;
    this.#store = options.store;
    this.#logger = options.logger;
    this.#clock = options.clock;
    this.#ttlSeconds = options.ttlSeconds;
    this.#marginMs = Math.min(10_000, (options.ttlSeconds * 1000) / 4);
    this.#cacheSize = options.cacheSize;
    this.#jwks = this.#buildJwks();
  }

  get kid(): string {
    return this.#kid;
  }

  jwks(): JSONWebKeySet {
    if (this.#clock() >= this.#jwksUntil) this.#jwks = this.#buildJwks();
    return this.#jwks;
  }

  #buildJwks(): JSONWebKeySet {
    const now = this.#clock();
    const live = this.#retired.filter((r) => r.until > now && r.jwk.kid !== this.#kid);
    this.#jwksUntil = live.reduce((min, r) => Math.min(min, r.until), Number.POSITIVE_INFINITY);
    const keys = [this.#publicJwk, ...live.map((r) => r.jwk)].map((k) => Object.freeze({ ...k }));
    return Object.freeze({ keys: Object.freeze(keys) }) as JSONWebKeySet;
  }

  async reload(): Promise<boolean> {
    try {
      const [stored, retired] = await Promise.all([
        this.#store.get<unknown>(IDENTITY_KEY_SETTING),
        loadRetired(this.#store),
      ]);
      this.#retired = retired;
      const changed = isStoredKey(stored) && stored.kid !== this.#kid;
      if (changed) {
        const key = await importJWK(stored, ALG);
        if (key instanceof Uint8Array) throw new Error('identity signing key imported as a secret key');
        this.#key = key;
        this.#kid = stored.kid;
        this.#publicJwk = publicJwkOf(stored);
        // Assertions signed with the old key are not handed out again.
        this.#cache.clear();
        this.#logger?.info({ kid: stored.kid }, 'identity signing key changed');
      }
      this.#jwks = this.#buildJwks();
      return changed;
    } catch (err) {
      this.#logger?.warn({ err }, 'could not re-read the identity signing keys; the current ones stay in use');
      return false;
    }
  }

  async headersFor(ctx: IdentityContext): Promise<Readonly<Record<string, string>>> {
    const { serverName, principal, sessionId } = ctx;
    const key = JSON.stringify([serverName, principal.id, principal.tokenId ?? null, sessionId ?? null]);
    const now = this.#clock();
    let entry = this.#cache.get(key);
    if (entry === undefined || now >= entry.refreshAt) {
      if (entry !== undefined) this.#cache.delete(key);
      const iat = Math.floor(now / 1000);
      const created: CacheEntry = {
        headers: this.#sign(ctx, iat),
        refreshAt: (iat + this.#ttlSeconds) * 1000 - this.#marginMs,
      };
      created.headers.catch(() => {
        if (this.#cache.get(key) === created) this.#cache.delete(key);
      });
      if (this.#cache.size >= this.#cacheSize) this.#evictOldest();
      this.#cache.set(key, created);
      entry = created;
    }
    const headers = await entry.headers;
    if (ctx.traceId === undefined || ctx.traceId === '') return headers;
    return { ...headers, [IDENTITY_HEADERS.traceId]: headerSafe(ctx.traceId) };
  }

  async signJwt(claims: {
    subject: string;
    audience: string;
    lifetimeSeconds?: number;
  }): Promise<{ jwt: string; expiresAt: number }> {
    const lifetime = claims.lifetimeSeconds ?? 60;
    if (!Number.isInteger(lifetime) || lifetime <= 0)
      throw new RangeError('lifetimeSeconds must be a positive integer');
    const iat = Math.floor(this.#clock() / 1000);
    const exp = iat + lifetime;
    const jwt = await new SignJWT({})
      .setProtectedHeader({ alg: ALG, kid: this.#kid, typ: 'JWT' })
      .setIssuer(this.#issuer)
      .setSubject(claims.subject)
      .setAudience(claims.audience)
      .setIssuedAt(iat)
      .setExpirationTime(exp)
      .setJti(randomUUID())
      .sign(this.#key);
    return { jwt, expiresAt: exp * 1000 };
  }

  /**
   * Drops the oldest entry. Every entry lives the same time and a refreshed entry is re-inserted
   * at the end, so Map order (insertion order) is expiry order: the first entry expires first.
   */
  #evictOldest(): void {
    const oldest = this.#cache.keys().next();
    if (oldest.done !== true) this.#cache.delete(oldest.value);
  }

  async #sign(ctx: IdentityContext, iat: number): Promise<Readonly<Record<string, string>>> {
    const { principal, sessionId, serverName } = ctx;
    const claims: IdentityAssertionClaims = { kind: principal.kind };
    if (sessionId !== undefined && sessionId !== '') claims.sid = sessionId;
    if (principal.tokenId !== undefined) claims.token_id = principal.tokenId;
    const jwt = await new SignJWT({ ...claims })
      .setProtectedHeader({ alg: ALG, kid: this.#kid, typ: IDENTITY_ASSERTION_TYPE })
      .setIssuer(this.#issuer)
      .setSubject(principal.id)
      .setAudience(serverName)
      .setIssuedAt(iat)
      .setExpirationTime(iat + this.#ttlSeconds)
      .setJti(randomUUID())
      .sign(this.#key);
    const headers: Record<string, string> = { [IDENTITY_HEADERS.principal]: headerSafe(principal.id) };
    if (principal.tokenId !== undefined) headers[IDENTITY_HEADERS.tokenId] = headerSafe(principal.tokenId);
    if (claims.sid !== undefined) headers[IDENTITY_HEADERS.sessionId] = headerSafe(claims.sid);
    headers[IDENTITY_HEADERS.assertion] = jwt;
    return Object.freeze(headers);
  }
}

/**
 * Creates the identity propagator: loads (or generates and stores) the ES256 signing key and
 * returns an object that makes identity headers and the public JWKS.
 *
 * Assertion (JWS compact, header `{alg: ES256, kid, typ: switchboard-identity+jwt}`): `iss` =
 * `issuer`, `sub` = principal id, `aud` = server name, `iat`, `exp` = `iat + ttlSeconds`, `jti`,
 * `kind`, and `sid` / `token_id` when known ({@link IdentityAssertionClaims}).
 *
 * @throws GatewayError `SWB_ERR_INTERNAL` when the stored key is not a P-256 private JWK (it is
 *   never silently replaced: upstreams trust it); `SWB_ERR_CONFIG_INVALID` when `issuer` is
 *   empty or `ttlSeconds` is not a positive integer.
 */
export async function createIdentityPropagator(options: IdentityPropagatorOptions): Promise<IdentityPropagator> {
  const ttlSeconds = options.ttlSeconds ?? 60;
  if (!Number.isInteger(ttlSeconds) || ttlSeconds <= 0) {
    throw new GatewayError(
      'SWB_ERR_CONFIG_INVALID',
      `identity assertion ttlSeconds must be a positive integer, got ${ttlSeconds}`,
    );
  }
  if (options.issuer === '')
    throw new GatewayError('SWB_ERR_CONFIG_INVALID', 'identity assertion issuer must not be empty');
  const stored = await loadSigningKey(options.keyStore, options.logger);
  const key = await importJWK(stored, ALG);
  if (key instanceof Uint8Array)
    throw new GatewayError('SWB_ERR_INTERNAL', 'identity signing key imported as a secret key');
  return new Propagator({
    issuer: options.issuer,
    kid: stored.kid,
    key,
    publicJwk: publicJwkOf(stored),
    retired: await loadRetired(options.keyStore),
    store: options.keyStore,
    logger: options.logger,
    clock: options.clock ?? Date.now,
    ttlSeconds,
    cacheSize: Math.max(1, options.cacheSize ?? 10_000),
  });
}
