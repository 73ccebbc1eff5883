/**
 * The token vault: per-user upstream OAuth tokens of `auth.type: oauth2-user` servers, sealed at
 * rest. Every token value is encrypted with AES-256-GCM (NIST SP 800-38D) under a fresh random
 * 96-bit IV, with additional authenticated data binding it to its principal, server and field, so
 * a sealed value copied to another principal's row (or from the refresh to the access column)
 * no longer opens. A sealed value is `base64url(iv ‖ ciphertext ‖ tag)`; the id of the key that
 * sealed it is stored beside it (`key_id`), so keys rotate: the first key of the list seals, every
 * key opens, and a value sealed under a key no longer listed is treated as absent (the user
 * connects again).
 *
 * Keys come from `tokenVault.keys` (`{id, secret}`, HKDF-SHA256 of the secret) or, without keys,
 * from the gateway's signing secret (`SWITCHBOARD_SECRET` or the stored one) through
 * `TokenService.deriveKey` with {@link VAULT_KEY_INFO}.
 *
 * @module
 */
import { createCipheriv, createDecipheriv, createHash, hkdfSync, randomBytes } from 'node:crypto';
import { GatewayError } from '../errors.js';
import type { StoredUpstreamToken, UpstreamTokenStore } from '../store/types.js';

/** HKDF `info` of vault keys: a key derived for another purpose never opens a vault value. */
export const VAULT_KEY_INFO = 'switchboard upstream-token-vault v1';

/** Longest token value the vault stores, characters (16 KiB: far above real access tokens). */
export const MAX_VAULT_TOKEN_LENGTH = 16 * 1024;

/** Most scopes stored per connection. */
export const MAX_VAULT_SCOPES = 64;

const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;

/** One vault key: 32 bytes of AES-256 key material and the id stored beside what it seals. */
export interface VaultKey {
  /** `[A-Za-z0-9_-]{1,16}`. */
  readonly id: string;
  readonly key: Buffer;
}

/**
 * Derives a vault key from a configured secret (HKDF-SHA256, RFC 5869, empty salt, info
 * {@link VAULT_KEY_INFO}).
 *
 * @throws TypeError for an empty secret or a malformed key id
 */
export function deriveVaultKey(secret: string, id: string): VaultKey {
  if (secret === '') throw new TypeError('a vault key needs a non-empty secret');
  return vaultKeyOf(
    Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), VAULT_KEY_INFO, 32)),
    id,
  );
}

/**
 * A vault key over 32 bytes of material, with key id `id`; default `d` + 8 characters of the
 * material's SHA-256 (replicas with the same material agree on it).
 *
 * @throws TypeError for material of another length or a malformed key id
 */
export function vaultKeyOf(bytes: Buffer, id?: string): VaultKey {
  if (bytes.length !== 32) throw new TypeError('a vault key is 32 bytes');
  const kid = id ?? `d${createHash('sha256').update(bytes).digest('base64url').slice(0, 8)}`;
  if (!KEY_ID.test(kid)) throw new TypeError(`vault key id must match ${String(KEY_ID)}: ${JSON.stringify(kid)}`);
  return { id: kid, key: Buffer.from(bytes) };
}

/** Upstream tokens of one (principal, server) in the clear, as the vault hands them out. */
export interface UpstreamTokens {
  principal: string;
  server: string;
  accessToken: string;
  refreshToken?: string;
  /** Epoch ms; absent when the upstream did not say. */
  expiresAt?: number;
  scopes: string[];
  upstreamSubject?: string;
  createdAt: number;
  updatedAt: number;
  lastUsedAt?: number;
}

/** What a connection looks like without its tokens (the connections API). */
export type UpstreamConnection = Omit<UpstreamTokens, 'accessToken' | 'refreshToken'>;

/** Options of {@link TokenVault}. */
export interface TokenVaultOptions {
  store: UpstreamTokenStore;
  /** The first seals, every one opens. At least one; ids unique. */
  keys: readonly VaultKey[];
  /** Epoch ms. Default `Date.now`. */
  clock?: () => number;
}

/** What {@link TokenVault.put} stores. */
export interface UpstreamTokensInput {
  accessToken: string;
  refreshToken?: string;
  expiresAt?: number;
  scopes?: readonly string[];
  upstreamSubject?: string;
}

/** Seals upstream tokens into an {@link UpstreamTokenStore} and opens them again. */
export class TokenVault {
  readonly #store: UpstreamTokenStore;
  readonly #sealing: VaultKey;
  readonly #byId: ReadonlyMap<string, VaultKey>;
  readonly #clock: () => number;

  /** @throws TypeError when `keys` is empty or two keys share an id */
  constructor(options: TokenVaultOptions) {
    if (options.keys.length === 0) throw new TypeError('the token vault needs at least one key');
    const byId = new Map<string, VaultKey>();
    for (const k of options.keys) {
      if (byId.has(k.id)) throw new TypeError(`two vault keys share the id ${JSON.stringify(k.id)}`);
      byId.set(k.id, k);
    }
    this.#store = options.store;
    this.#sealing = options.keys[0]!;
    this.#byId = byId;
    this.#clock = options.clock ?? Date.now;
  }

  /** Id of the key new values are sealed under. */
  get sealingKeyId(): string {
    return this.#sealing.id;
  }

  /**
   * Stores (replaces) the tokens of (principal, server), sealed under the first key.
   *
   * @throws RangeError for an empty token or one longer than {@link MAX_VAULT_TOKEN_LENGTH}, or
   *   more than {@link MAX_VAULT_SCOPES} scopes
   * @throws {@link GatewayError} `SWB_ERR_STORE_*` from the store
   */
  async put(principal: string, server: string, tokens: UpstreamTokensInput): Promise<void> {
    for (const value of [tokens.accessToken, tokens.refreshToken]) {
      if (value !== undefined && (value === '' || value.length > MAX_VAULT_TOKEN_LENGTH)) {
        throw new RangeError(`a stored token is 1 to ${MAX_VAULT_TOKEN_LENGTH} characters`);
      }
    }
    if ((tokens.scopes?.length ?? 0) > MAX_VAULT_SCOPES) {
      throw new RangeError(`at most ${MAX_VAULT_SCOPES} scopes are stored per connection`);
    }
    const now = this.#clock();
    const existing = await this.#store.get(principal, server);
    const key = this.#sealing;
    const record: StoredUpstreamToken = {
      principal,
      server,
      keyId: key.id,
      accessToken: seal(key, tokens.accessToken, aad(principal, server, 'access')),
      scopes: [...(tokens.scopes ?? [])],
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
    };
    if (tokens.refreshToken !== undefined) {
      record.refreshToken = seal(key, tokens.refreshToken, aad(principal, server, 'refresh'));
    }
    if (tokens.expiresAt !== undefined) record.expiresAt = tokens.expiresAt;
    if (tokens.upstreamSubject !== undefined) record.upstreamSubject = tokens.upstreamSubject;
    await this.#store.put(record);
  }

  /**
   * The tokens of (principal, server) in the clear; undefined when there are none, or when they
   * no longer open (sealed under a key no longer configured, or altered): the user connects again.
   */
  async get(principal: string, server: string): Promise<UpstreamTokens | undefined> {
    const record = await this.#store.get(principal, server);
    if (record === undefined || record.principal !== principal || record.server !== server) return undefined;
    const key = this.#byId.get(record.keyId);
    if (key === undefined) return undefined;
    const accessToken = open(key, record.accessToken, aad(principal, server, 'access'));
    if (accessToken === undefined) return undefined;
    const refreshToken =
      record.refreshToken === undefined ? undefined : open(key, record.refreshToken, aad(principal, server, 'refresh'));
    if (record.refreshToken !== undefined && refreshToken === undefined) return undefined;
    const { keyId: _keyId, accessToken: _a, refreshToken: _r, ...rest } = record;
    return { ...rest, accessToken, ...(refreshToken === undefined ? {} : { refreshToken }) };
  }

  /** The connections (no tokens) of one principal and/or server, or all, ordered by principal then server. */
  async connections(filter: { principal?: string; server?: string } = {}): Promise<UpstreamConnection[]> {
    const records = await this.#store.list(filter);
    return records.map(({ keyId: _k, accessToken: _a, refreshToken: _r, ...rest }) => rest);
  }

  /**
   * Seals a value that lives outside the token rows (a registered client's secret in the settings
   * store), bound by its AAD to `context`: `<key id>.<sealed>`, opened by {@link openValue} with
   * the same context under any configured key.
   */
  sealValue(context: string, plaintext: string): string {
    return `${this.#sealing.id}.${seal(this.#sealing, plaintext, valueAad(context))}`;
  }

  /**
   * Opens what {@link sealValue} sealed with the same `context`; undefined when it does not
   * open (malformed, altered, another context, or a key no longer configured).
   */
  openValue(context: string, sealed: string): string | undefined {
    const dot = sealed.indexOf('.');
    const key = dot > 0 ? this.#byId.get(sealed.slice(0, dot)) : undefined;
    return key === undefined ? undefined : open(key, sealed.slice(dot + 1), valueAad(context));
  }

  /** Drops the tokens of (principal, server); false when there were none. */
  delete(principal: string, server: string): Promise<boolean> {
    return this.#store.delete(principal, server);
  }

  /** Records a use of the tokens of (principal, server) now. */
  touch(principal: string, server: string): Promise<void> {
    return this.#store.touch(principal, server, this.#clock());
  }
}

/** The AAD of one sealed value: NUL-separated, so no (principal, server) pair can spell another. */
function aad(principal: string, server: string, field: 'access' | 'refresh'): Buffer {
  return Buffer.from(`${VAULT_KEY_INFO}\0${field}\0${principal}\0${server}`, 'utf8');
}

/** The AAD of a value sealed by {@link TokenVault.sealValue}: never that of a token field. */
function valueAad(context: string): Buffer {
  return Buffer.from(`${VAULT_KEY_INFO}\0value\0${context}`, 'utf8');
}

function seal(key: VaultKey, plaintext: string, additional: Buffer): string {
  const iv = randomBytes(IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', key.key, iv);
  cipher.setAAD(additional);
  const body = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
  return Buffer.concat([iv, body, cipher.getAuthTag()]).toString('base64url');
}

function open(key: VaultKey, sealed: string, additional: Buffer): string | undefined {
  const bytes = Buffer.from(sealed, 'base64url');
  if (bytes.length < IV_BYTES + TAG_BYTES) return undefined;
  try {
    const decipher = createDecipheriv('aes-256-gcm', key.key, bytes.subarray(0, IV_BYTES));
    decipher.setAAD(additional);
    decipher.setAuthTag(bytes.subarray(bytes.length - TAG_BYTES));
    return Buffer.concat([
      decipher.update(bytes.subarray(IV_BYTES, bytes.length - TAG_BYTES)),
      decipher.final(),
    ]).toString('utf8');
  } catch {
    return undefined;
  }
}

/**
 * The vault over `store` with the configured keys, or one key derived from the signing secret.
 *
 * @throws {@link GatewayError} `SWB_ERR_CONFIG_INVALID` when a configured key is unusable
 */
export function createTokenVault(
  store: UpstreamTokenStore,
  keys: readonly { id: string; secret: string }[],
  deriveKey: (info: string) => Buffer,
  clock?: () => number,
): TokenVault {
  try {
    const vaultKeys =
      keys.length > 0 ? keys.map((k) => deriveVaultKey(k.secret, k.id)) : [vaultKeyOf(deriveKey(VAULT_KEY_INFO))];
    return new TokenVault({ store, keys: vaultKeys, ...(clock === undefined ? {} : { clock }) });
  } catch (cause) {
    throw new GatewayError('SWB_ERR_CONFIG_INVALID', `tokenVault.keys: ${(cause as Error).message}`, { cause });
  }
}
