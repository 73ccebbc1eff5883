/**
 * Switchboard API tokens (issue "Identity" §B): JWTs (RFC 7519, HS256) signed by Switchboard,
 * each with a `jti` that must exist in the token store. Only a SHA-256 hash of the token is
 * stored; permissions and scopes come from the stored record, so revocation and expiry take
 * effect immediately (the verification cache of this process is invalidated on revoke, and
 * entries live at most `cacheTtlMs`).
 *
 * @module
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { SettingsStore, TokenRecord, TokenStore } from '../store/types.js';
import type { Principal } from './principal.js';

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
  /** Verified tokens are cached this long (ms). Default 5 000. */
  cacheTtlMs?: number;
  /** Cache bound (entries). Default 10 000. */
  cacheSize?: number;
  clock?: () => number;
}

/** What `create` accepts. */
export interface CreateTokenInput {
  name: string;
  /** Owner (principal subject) the token acts as. */
  subject: string;
  permissions: string[];
  servers?: string[];
  tools?: string[];
  /** Lifetime in ms; absent = no expiry. */
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
  create(input: CreateTokenInput): Promise<CreatedToken>;
  /**
   * Verifies a bearer token.
   *
   * @returns the principal, or `undefined` when the string is not a Switchboard token at all
   *   (so another authenticator may try it)
   * @throws GatewayError `SWB_ERR_AUTH_INVALID_TOKEN` (bad signature, unknown jti, hash
   *   mismatch), `SWB_ERR_AUTH_REVOKED_TOKEN`, `SWB_ERR_AUTH_EXPIRED_TOKEN` — the last two carry
   *   `data.tokenId` and `data.subject` of the stored record (for the usage log)
   */
  verify(token: string): Promise<Principal | undefined>;
  revoke(id: string): Promise<boolean>;
  list(filter?: { subject?: string }): Promise<TokenRecord[]>;
  get(id: string): Promise<TokenRecord | undefined>;
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
      secretText = randomBytes(MIN_SECRET_BYTES).toString('base64url');
      await settings.set(SECRET_SETTING, secretText);
      logger.info(
        'generated a token signing secret and stored it in the database (set SWITCHBOARD_SECRET to manage it yourself)',
      );
    }
  } else if (Buffer.byteLength(secretText) < MIN_SECRET_BYTES) {
    logger.warn(`SWITCHBOARD_SECRET is shorter than ${MIN_SECRET_BYTES} bytes; use a longer random value`);
  }
  const key = new TextEncoder().encode(secretText);
  const cache = new Map<string, { principal: Principal; until: number; expiresAt: number | undefined }>();

  function invalid(reason: string, data: Record<string, unknown> = {}): GatewayError {
    return new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid token', { data: { reason, ...data } });
  }

  return {
    async create(input) {
      const id = randomUUID();
      const jti = randomUUID();
      const now = clock();
      const expiresAt = input.expiresInMs === undefined ? undefined : now + input.expiresInMs;
      let jwt = new SignJWT({ name: input.name })
        .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
        .setIssuer(TOKEN_ISSUER)
        .setSubject(input.subject)
        .setJti(jti)
        .setIssuedAt(Math.floor(now / 1000));
      if (expiresAt !== undefined) jwt = jwt.setExpirationTime(Math.floor(expiresAt / 1000));
      const token = await jwt.sign(key);
      const record: TokenRecord = {
        id,
        jti,
        name: input.name,
        tokenHash: hashToken(token),
        subject: input.subject,
        permissions: input.permissions,
        servers: input.servers ?? [],
        tools: input.tools ?? [],
        createdAt: now,
        ...(expiresAt === undefined ? {} : { expiresAt }),
        ...(input.createdBy === undefined ? {} : { createdBy: input.createdBy }),
      };
      await store.create(record);
      return { id, token, jti, expiresAt: expiresAt === undefined ? null : new Date(expiresAt).toISOString() };
    },

    async verify(token) {
      // Hot path: a recently verified token is found by its own string (this process's memory
      // only), before any parsing or hashing.
      const now = clock();
      const hit = cache.get(token);
      if (hit && hit.until > now && (hit.expiresAt === undefined || hit.expiresAt > now)) return hit.principal;
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
          // Still attribute the attempt to the stored owner when the jti exists (seed 004).
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
      const owner = { tokenId: record.id, subject: record.subject, jti: record.jti };
      if (record.revokedAt !== undefined)
        throw new GatewayError('SWB_ERR_AUTH_REVOKED_TOKEN', 'token revoked', { data: owner });
      if (record.expiresAt !== undefined && record.expiresAt <= now) {
        throw new GatewayError('SWB_ERR_AUTH_EXPIRED_TOKEN', 'token expired', { data: owner });
      }
      const principal = principalFromRecord(record, token);
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(token, { principal, until: now + ttl, expiresAt: record.expiresAt });
      store.touch(record.id, now).catch((err: unknown) => logger.debug({ err }, 'token last-used update failed'));
      return principal;
    },

    async revoke(id) {
      const record = await store.get(id);
      const ok = await store.revoke(id, clock());
      if (record) for (const [h, entry] of cache) if (entry.principal.tokenId === record.id) cache.delete(h);
      return ok;
    },

    list: (filter) => store.list(filter),
    get: (id) => store.get(id),
  };
}
