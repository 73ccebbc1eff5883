/**
 * Switchboard API tokens: JWTs (RFC 7519, HS256) signed by Switchboard, each with a `jti` that
 * must exist in the token store. Only a SHA-256 hash of the token is stored; permissions and
 * scopes come from the stored record, so revocation and expiry take effect immediately (the
 * verification cache of this process is invalidated on revoke, never serves a token past its
 * expiry, and holds an entry at most `cacheTtlMs`).
 *
 * Delegation ({@link TokenService.mint}): a token minted by a principal never reaches further than
 * that principal — its permissions, servers and tools are a subset of the creator's, it expires no
 * later than the creator's token, and it records that token as its parent so that revoking the
 * parent revokes it (transitively). The rules are in `./token-delegation.ts`, the verification
 * cache and the revocation feed in `./token-cache.ts`, the input checks in `./token-input.ts`;
 * this module issues, verifies and revokes, and re-exports the public parts of those modules.
 *
 * @module
 */
import { createHash, hkdfSync, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { SettingsStore, TokenRecord, TokenStore } from '../store/types.js';
import type { Principal } from './principal.js';
import { VerifiedTokenCache, type RevocationFeed } from './token-cache.js';
import {
  checkLineage,
  delegatedGrant,
  MAX_TOKEN_LINEAGE,
  type DelegationLimits,
  type MintTokenInput,
} from './token-delegation.js';
import { assertValidInput, wholeSecond } from './token-input.js';

export type { RevocationFeed } from './token-cache.js';
export { DEFAULT_TOKEN_PERMISSIONS, MAX_TOKEN_LINEAGE, type MintTokenInput } from './token-delegation.js';
export { tokenInputProblems } from './token-input.js';

/** The `iss` of every Switchboard token. */
export const TOKEN_ISSUER = 'switchboard';
const SECRET_SETTING = 'tokens.secret';
const MIN_SECRET_BYTES = 32;

/** Options for {@link createTokenService}. */
export interface TokenServiceOptions {
  store: TokenStore;
  settings: SettingsStore;
  logger: Logger;
  /** HMAC secret; default `SWITCHBOARD_SECRET`, else one generated and stored in the settings. */
  secret?: string;
  /**
   * Verified tokens are cached this long (ms), and never past their expiry. Default 5 000: a
   * revocation made through another process is seen within this time.
   */
  cacheTtlMs?: number;
  /** Cache bound (entries). Default 10 000. */
  cacheSize?: number;
  /** Epoch milliseconds. Default `Date.now`. */
  clock?: () => number;
  /** Announces revocations to other processes and hears theirs. Default: none (the cache TTL bounds the delay). */
  revocations?: RevocationFeed;
}

/** What `create` accepts (the operator's path: no creator, so no delegation limits). */
export interface CreateTokenInput {
  name: string;
  /** Owner (principal subject) the token acts as. */
  subject: string;
  permissions: string[];
  /** Server names the token may reach; absent or empty = all. */
  servers?: string[];
  /** Tool-name globs the token may call; absent or empty = all. */
  tools?: string[];
  /** Lifetime in ms; absent = no expiry. The expiry is cut to a whole second (RFC 7519 NumericDate). */
  expiresInMs?: number;
  createdBy?: string;
}

/** What `create` returns: the only time the token string is available. */
export interface CreatedToken {
  id: string;
  token: string;
  jti: string;
  expiresAt: string | null;
}

/** The token service. */
export interface TokenService {
  /**
   * Creates a token as the operator (CLI, tests): no creator, no parent, no limits beyond valid
   * input.
   *
   * @throws GatewayError `SWB_ERR_HTTP_INVALID_REQUEST` when {@link tokenInputProblems} finds any
   */
  create(input: CreateTokenInput): Promise<CreatedToken>;
  /**
   * Mints a token on behalf of `creator` (the admin API). The new token never reaches further
   * than its creator:
   * - permissions: each must be held by the creator;
   * - subject: another subject only for an admin (`admin.*`);
   * - servers / tools: within the creator's scope when it has one (admins excepted); none asked
   *   for = the creator's scope;
   * - expiry: no later than the creator's token's, and its expiry when none is asked for (admins
   *   included);
   * - parent: a creator that is an API token is recorded as the parent; the creator's token (and
   *   its ancestors) must still be valid, read from the store, not the cache.
   *
   * @throws GatewayError (403) `SWB_ERR_AUTH_DELEGATION_PERMISSIONS`, `…_SUBJECT`, `…_SERVERS`,
   *   `…_TOOLS`, `…_EXPIRY` naming what was too wide in `data`; `SWB_ERR_AUTH_DELEGATION_DEPTH`
   *   past {@link MAX_TOKEN_LINEAGE}; `SWB_ERR_AUTH_REVOKED_TOKEN` / `SWB_ERR_AUTH_EXPIRED_TOKEN`
   *   (401) when the creator's token or one of its ancestors no longer is valid;
   *   `SWB_ERR_HTTP_INVALID_REQUEST` (400) for malformed input
   */
  mint(creator: Principal, input: MintTokenInput): Promise<CreatedToken>;
  /**
   * Verifies a bearer token.
   *
   * @returns the principal, or `undefined` when the string is not a Switchboard token at all
   *   (so another authenticator may try it)
   * @throws GatewayError `SWB_ERR_AUTH_INVALID_TOKEN` (bad signature, unknown jti, hash
   *   mismatch), `SWB_ERR_AUTH_REVOKED_TOKEN` (the token or a token it was minted from is
   *   revoked), `SWB_ERR_AUTH_EXPIRED_TOKEN` — the last two carry `data.tokenId` and
   *   `data.subject` of the stored record of the presented token (for the usage log), and only
   *   when the presented string is exactly the stored token
   */
  verify(token: string): Promise<Principal | undefined>;
  /**
   * Revokes the token and every token minted from it, transitively, and drops them from this
   * process's cache.
   *
   * @returns false when the id is unknown
   */
  revoke(id: string): Promise<boolean>;
  list(filter?: { subject?: string }): Promise<TokenRecord[]>;
  get(id: string): Promise<TokenRecord | undefined>;
  /**
   * Key material derived from the signing secret for another purpose (HKDF-SHA256, RFC 5869,
   * empty salt, `info` naming the purpose): replicas sharing the secret derive the same bytes,
   * and no derived key reveals the secret or another purpose's key.
   *
   * @param bytes - length, default 32
   */
  deriveKey(info: string, bytes?: number): Buffer;
}

/** True when the string has the shape of a JWT whose payload names Switchboard as issuer. */
export function looksLikeSwitchboardToken(token: string): boolean {
  const first = token.indexOf('.');
  const second = token.indexOf('.', first + 1);
  if (first <= 0 || second <= first) return false;
  try {
    const payload = JSON.parse(Buffer.from(token.slice(first + 1, second), 'base64url').toString('utf8')) as {
      iss?: unknown;
    };
    return payload.iss === TOKEN_ISSUER;
  } catch {
    return false;
  }
}

/** Hex SHA-256 of a token (what the store keeps). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/** The principal a token record stands for. */
export function principalFromRecord(record: TokenRecord, bearer: string): Principal {
  return Object.freeze({
    id: `token:${record.subject}`,
    kind: 'token' as const,
    subject: record.subject,
    permissions: Object.freeze([...record.permissions]),
    ...(record.servers.length > 0 ? { servers: Object.freeze([...record.servers]) } : {}),
    ...(record.tools.length > 0 ? { tools: Object.freeze([...record.tools]) } : {}),
    tokenId: record.id,
    jti: record.jti,
    bearer,
  });
}

/** Creates the token service; loads or generates the signing secret. */
export async function createTokenService(options: TokenServiceOptions): Promise<TokenService> {
  const { store, settings, logger } = options;
  const clock = options.clock ?? Date.now;
  const ttl = options.cacheTtlMs ?? 5_000;
  const maxEntries = options.cacheSize ?? 10_000;
  let secretText = options.secret ?? process.env.SWITCHBOARD_SECRET;
  if (secretText === undefined || secretText === '') {
    secretText = await settings.get<string>(SECRET_SETTING);
    if (secretText === undefined) {
      const generated = randomBytes(MIN_SECRET_BYTES).toString('base64url');
      // Replicas starting together on an empty database: the first secret stored wins, for all.
      secretText = await settings.setIfAbsent(SECRET_SETTING, generated);
      if (secretText === generated) {
        logger.info(
          'generated a token signing secret and stored it in the database (set SWITCHBOARD_SECRET to manage it yourself)',
        );
      }
    }
  } else if (Buffer.byteLength(secretText) < MIN_SECRET_BYTES) {
    logger.warn(`SWITCHBOARD_SECRET is shorter than ${MIN_SECRET_BYTES} bytes; use a longer random value`);
  }
  const key = new TextEncoder().encode(secretText);
  const cache = new VerifiedTokenCache(ttl, maxEntries, options.revocations);

  function invalid(reason: string, data: Record<string, unknown> = {}): GatewayError {
    return new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid token', { data: { reason, ...data } });
  }

  async function issue(fields: {
    name: string;
    subject: string;
    permissions: string[];
    servers: string[];
    tools: string[];
    now: number;
    expiresAt: number | undefined;
    createdBy: string | undefined;
    parentId: string | undefined;
  }): Promise<CreatedToken> {
    const id = randomUUID();
    const jti = randomUUID();
    const { now, expiresAt } = fields;
    let jwt = new SignJWT({ name: fields.name })
      .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
      .setIssuer(TOKEN_ISSUER)
      .setSubject(fields.subject)
      .setJti(jti)
      .setIssuedAt(Math.floor(now / 1000));
    // The stored expiry is the JWT's `exp` exactly, so a cached and an uncached verification
    // refuse the token from the same millisecond.
    if (expiresAt !== undefined) jwt = jwt.setExpirationTime(expiresAt / 1000);
    const token = await jwt.sign(key);
    const record: TokenRecord = {
      id,
      jti,
      name: fields.name,
      tokenHash: hashToken(token),
      subject: fields.subject,
      permissions: fields.permissions,
      servers: fields.servers,
      tools: fields.tools,
      createdAt: now,
      ...(expiresAt === undefined ? {} : { expiresAt }),
      ...(fields.createdBy === undefined ? {} : { createdBy: fields.createdBy }),
      ...(fields.parentId === undefined ? {} : { parentId: fields.parentId }),
    };
    await store.create(record);
    return { id, token, jti, expiresAt: expiresAt === undefined ? null : new Date(expiresAt).toISOString() };
  }

  return {
    deriveKey(info, bytes = 32) {
      return Buffer.from(hkdfSync('sha256', key, Buffer.alloc(0), info, bytes));
    },
    async create(input) {
      assertValidInput(input);
      const now = clock();
      return issue({
        name: input.name.trim(),
        subject: input.subject,
        permissions: input.permissions,
        servers: input.servers ?? [],
        tools: input.tools ?? [],
        now,
        expiresAt: input.expiresInMs === undefined ? undefined : wholeSecond(now + input.expiresInMs),
        createdBy: input.createdBy,
        parentId: undefined,
      });
    },

    async mint(creator, input) {
      assertValidInput(input);
      const now = clock();
      // The creator's limits: its stored record when it is an API token (fresh, not cached).
      let limits: DelegationLimits = {
        permissions: creator.permissions,
        servers: creator.servers ?? [],
        tools: creator.tools ?? [],
        expiresAt: undefined,
      };
      let parentId: string | undefined;
      if (creator.kind === 'token' && creator.tokenId !== undefined) {
        const parent = await store.get(creator.tokenId);
        if (!parent) throw invalid('unknown token');
        const { lineage, expiresAt } = await checkLineage(store, parent, now);
        if (lineage.length >= MAX_TOKEN_LINEAGE)
          throw new GatewayError(
            'SWB_ERR_AUTH_DELEGATION_DEPTH',
            `a token minted from ${lineage.length} tokens cannot mint another`,
            { data: { maxLineage: MAX_TOKEN_LINEAGE } },
          );
        limits = { permissions: parent.permissions, servers: parent.servers, tools: parent.tools, expiresAt };
        parentId = parent.id;
      }

      const { subject, permissions, servers, tools, expiresAt } = delegatedGrant(creator, input, limits, now);

      return issue({
        name: input.name.trim(),
        subject,
        permissions,
        servers,
        tools,
        now,
        expiresAt,
        createdBy: creator.id,
        parentId,
      });
    },

    async verify(token) {
      // Hot path: a recently verified token is found by its own string (this process's memory
      // only), before any parsing or hashing; never past its (or an ancestor's) expiry.
      const now = clock();
      const hit = cache.get(token, now);
      if (hit !== undefined) return hit;
      if (!looksLikeSwitchboardToken(token)) return undefined;
      const hash = hashToken(token);
      let jti: string | undefined;
      try {
        const { payload } = await jwtVerify(token, key, {
          issuer: TOKEN_ISSUER,
          algorithms: ['HS256'],
          currentDate: new Date(now),
        });
        jti = payload.jti;
      } catch (err) {
        if (err instanceof joseErrors.JWTExpired) {
          // The signature was valid. Attribute the attempt to the stored owner (usage log) only
          // when the presented string is exactly that owner's token: a token carrying another
          // token's jti is not that token, and its attempts must not be charged to its owner.
          const claimed = (err.payload as { jti?: unknown }).jti;
          const record = typeof claimed === 'string' ? await store.getByJti(claimed) : undefined;
          if (record && record.tokenHash === hash) {
            throw new GatewayError('SWB_ERR_AUTH_EXPIRED_TOKEN', 'token expired', {
              data: { tokenId: record.id, subject: record.subject, jti: record.jti },
            });
          }
        }
        throw invalid(err instanceof Error ? err.message : 'verification failed');
      }
      if (typeof jti !== 'string') throw invalid('token has no jti');
      const record = await store.getByJti(jti);
      if (!record) throw invalid('unknown token');
      const a = Buffer.from(record.tokenHash, 'hex');
      const b = Buffer.from(hash, 'hex');
      if (a.length !== b.length || !timingSafeEqual(a, b)) throw invalid('token does not match its record');
      const { lineage, expiresAt } = await checkLineage(store, record, now);
      const principal = principalFromRecord(record, token);
      cache.set(token, principal, now, expiresAt === undefined ? undefined : wholeSecond(expiresAt), lineage);
      store.touch(record.id, now).catch((err: unknown) => logger.debug({ err }, 'token last-used update failed'));
      return principal;
    },

    async revoke(id) {
      const ok = await store.revoke(id, clock());
      if (ok) {
        cache.forget(id);
        await options.revocations?.publish(id);
      }
      return ok;
    },

    list: (filter) => store.list(filter),
    get: (id) => store.get(id),
  };
}
