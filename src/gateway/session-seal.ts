/**
 * Sealed session ids: a 2025-era `Mcp-Session-Id` any replica holding the key can read, so a
 * session opened on one replica is served by every replica behind a load balancer without
 * affinity.
 *
 * The id is `{sid}.{kid}.{sealed}`: `sid` is the session's own random id (a UUID, the key the
 * replica that holds the session looks it up by), `kid` names the key that sealed it, and
 * `sealed` is base64url(IV ‖ ciphertext ‖ tag) of the session's claims — principal, endpoint,
 * negotiated protocol version, client capabilities and client info, creation time — under
 * AES-256-GCM (NIST SP 800-38D) with a random 96-bit IV, and `{sid}.{kid}` as additional
 * authenticated data, so no part can be swapped or altered without the tag failing. Every
 * character is a visible ASCII character, as MCP transports §Session Management requires of a
 * session id.
 *
 * Keys are derived once, at start: from the gateway's signing secret by HKDF-SHA256 (RFC 5869)
 * by default, or from configured secrets (`sessions.keys`), the first of which seals and all of
 * which open — a rotation adds the new key first and drops the old one after `sessions.maxLifetime`.
 *
 * @module
 */
import {
  createCipheriv,
  createDecipheriv,
  createHash,
  createSecretKey,
  hkdfSync,
  randomBytes,
  type KeyObject,
} from 'node:crypto';
import type { ClientCapabilities } from '../upstream/connection.js';
import type { JsonObject } from '../protocol/jsonrpc.js';

/** What a sealed session id carries. */
export interface SessionClaims {
  /** The session's own id (a UUID). */
  readonly sid: string;
  /** The principal the session is bound to (`Principal.id`). */
  readonly principal: string;
  /** The endpoint it was opened on: `/mcp`, `/mcp/{virtual}` or `/servers/{name}/mcp`. */
  readonly endpoint: string;
  /** The negotiated protocol version. */
  readonly protocolVersion: string;
  readonly clientCapabilities: ClientCapabilities;
  readonly clientInfo?: JsonObject | undefined;
  /** When `initialize` was answered, epoch ms. */
  readonly createdAt: number;
}

/** One sealing key. */
export interface SessionKey {
  /** Key id, `[A-Za-z0-9_-]{1,16}`, written into every id it seals. */
  readonly id: string;
  readonly key: KeyObject;
}

/** Sealed claims larger than this (bytes of JSON) are not sealed: the id would be too long for a header. */
export const MAX_SEALED_CLAIMS_BYTES = 4096;

const KEY_ID = /^[A-Za-z0-9_-]{1,16}$/;
const IV_BYTES = 12;
const TAG_BYTES = 16;
/** HKDF `info` of session keys: a key derived for another purpose never opens a session id. */
const HKDF_INFO = 'switchboard mcp-session-id v1';

/** HKDF `info` of the session key derived from the gateway's signing secret (`TokenService.deriveKey`). */
export const SESSION_KEY_INFO = HKDF_INFO;

/**
 * Derives a session key from a configured secret (HKDF-SHA256, RFC 5869, empty salt) with key
 * id `id`.
 *
 * @throws TypeError for an empty secret or a malformed key id
 */
export function deriveSessionKey(secret: string, id: string): SessionKey {
  if (secret === '') throw new TypeError('a session key needs a non-empty secret');
  return sessionKeyOf(Buffer.from(hkdfSync('sha256', Buffer.from(secret, 'utf8'), Buffer.alloc(0), HKDF_INFO, 32)), id);
}

/**
 * A session key over 32 bytes of key material, with key id `id`, default `d` + 8 characters
 * of the material's SHA-256 (replicas with the same material agree on it).
 *
 * @throws TypeError for material of another length or a malformed key id
 */
export function sessionKeyOf(bytes: Buffer, id?: string): SessionKey {
  if (bytes.length !== 32) throw new TypeError('a session key is 32 bytes');
  const kid = id ?? `d${createHash('sha256').update(bytes).digest('base64url').slice(0, 8)}`;
  if (!KEY_ID.test(kid)) throw new TypeError(`session key id must match ${String(KEY_ID)}: ${JSON.stringify(kid)}`);
  return { id: kid, key: createSecretKey(bytes) };
}

/** Seals and opens session ids (see the module comment). */
export class SessionSealer {
  readonly #sealing: SessionKey;
  readonly #byId: ReadonlyMap<string, SessionKey>;

  /**
   * @param keys - the first seals; every one opens
   * @throws TypeError when `keys` is empty or two keys share an id
   */
  constructor(keys: readonly SessionKey[]) {
    if (keys.length === 0) throw new TypeError('SessionSealer needs at least one key');
    const byId = new Map<string, SessionKey>();
    for (const k of keys) {
      if (byId.has(k.id)) throw new TypeError(`two session keys share the id ${JSON.stringify(k.id)}`);
      byId.set(k.id, k);
    }
    this.#sealing = keys[0]!;
    this.#byId = byId;
  }

  /** The id of the key that seals. */
  get keyId(): string {
    return this.#sealing.id;
  }

  /**
   * The sealed session id for `claims`, or `undefined` when the claims are too large to carry
   * in a header ({@link MAX_SEALED_CLAIMS_BYTES}): the session then keeps its plain id.
   */
  seal(claims: SessionClaims): string | undefined {
    const body: Record<string, unknown> = {
      p: claims.principal,
      e: claims.endpoint,
      v: claims.protocolVersion,
      c: claims.clientCapabilities,
      t: claims.createdAt,
    };
    if (claims.clientInfo !== undefined) body.i = claims.clientInfo;
    const plain = Buffer.from(JSON.stringify(body), 'utf8');
    if (plain.length > MAX_SEALED_CLAIMS_BYTES) return undefined;
    const head = `${claims.sid}.${this.#sealing.id}`;
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv('aes-256-gcm', this.#sealing.key, iv);
    cipher.setAAD(Buffer.from(head, 'latin1'));
    const sealed = Buffer.concat([iv, cipher.update(plain), cipher.final(), cipher.getAuthTag()]);
    return `${head}.${sealed.toString('base64url')}`;
  }

  /**
   * The claims of a sealed id, or `undefined` for anything else: not of the form, an unknown
   * key id, a failed tag (altered, or sealed under another key), claims of the wrong shape.
   * Never throws.
   */
  open(id: string): SessionClaims | undefined {
    const first = id.indexOf('.');
    const second = first < 0 ? -1 : id.indexOf('.', first + 1);
    if (second < 0) return undefined;
    const sid = id.slice(0, first);
    const key = this.#byId.get(id.slice(first + 1, second));
    if (key === undefined || sid === '') return undefined;
    const body = id.slice(second + 1);
    const sealed = Buffer.from(body, 'base64url');
    if (sealed.length < IV_BYTES + TAG_BYTES + 2) return undefined;
    // Only the canonical spelling: the decoder ignores characters outside the alphabet and the
    // unused bits of the last one, so another string could otherwise open to the same session.
    if (sealed.toString('base64url') !== body) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', key.key, sealed.subarray(0, IV_BYTES));
      decipher.setAAD(Buffer.from(id.slice(0, second), 'latin1'));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_BYTES));
      const plain = Buffer.concat([
        decipher.update(sealed.subarray(IV_BYTES, sealed.length - TAG_BYTES)),
        decipher.final(),
      ]);
      return claimsOf(sid, JSON.parse(plain.toString('utf8')));
    } catch {
      return undefined;
    }
  }
}

function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function claimsOf(sid: string, body: unknown): SessionClaims | undefined {
  if (!isObject(body)) return undefined;
  const { p, e, v, c, t, i } = body;
  if (typeof p !== 'string' || typeof e !== 'string' || typeof v !== 'string' || typeof t !== 'number')
    return undefined;
  if (!isObject(c) || (i !== undefined && !isObject(i))) return undefined;
  return {
    sid,
    principal: p,
    endpoint: e,
    protocolVersion: v,
    clientCapabilities: c,
    clientInfo: i,
    createdAt: t,
  };
}
