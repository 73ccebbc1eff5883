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
 * parent revokes it (transitively).
 *
 * @module
 */
import { createHash, randomBytes, randomUUID, timingSafeEqual } from 'node:crypto';
import { SignJWT, jwtVerify, errors as joseErrors } from 'jose';
import picomatch from 'picomatch';
import { GatewayError } from '../errors.js';
import { NAME_RE, PERMISSION_RE } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { SettingsStore, TokenRecord, TokenStore } from '../store/types.js';
import type { Principal } from './principal.js';
import { isAdmin, permissionMatches } from './rbac.js';

/** The `iss` of every Switchboard token. */
export const TOKEN_ISSUER = 'switchboard';
const SECRET_SETTING = 'tokens.secret';
const MIN_SECRET_BYTES = 32;
/** Permissions of a new token when none are asked for. */
export const DEFAULT_TOKEN_PERMISSIONS: readonly string[] = Object.freeze(['servers.use', 'tools.execute']);
/** Longest chain of tokens minted from tokens (a token and its ancestors). */
export const MAX_TOKEN_LINEAGE = 64;
/** Characters that make a tool scope entry a glob rather than one literal tool name. */
const GLOB_CHARS = /[*?[\]{}()!+@\\]/;
const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Revocations shared between processes (e.g. Redis pub/sub, `store/redis-revocations.ts`), so a
 * token revoked through one replica leaves every replica's verification cache at once.
 */
export interface RevocationFeed {
  /** Announces that this token (and so every token minted from it) was revoked. Never throws. */
  publish(tokenId: string): Promise<void>;
  /**
   * Registers a listener for tokens revoked elsewhere; `undefined` means announcements may have
   * been lost (e.g. after a reconnect) and the whole cache should be dropped.
   */
  subscribe(listener: (tokenId: string | undefined) => void): void;
  /** Closes the feed's connections. */
  close(): Promise<void>;
}

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

/**
 * What a principal asks for when it mints a token ({@link TokenService.mint}). An absent field
 * never means "more than the creator has": `servers`, `tools` and the expiry are inherited from
 * the creator, `permissions` default to {@link DEFAULT_TOKEN_PERMISSIONS}, `subject` to the
 * creator's.
 */
export interface MintTokenInput {
  name: string;
  subject?: string;
  permissions?: string[];
  /** Absent or empty: the creator's server scope (all servers only for an unrestricted creator). */
  servers?: string[];
  /** Absent or empty: the creator's tool scope. */
  tools?: string[];
  /** Lifetime in ms; absent: the creator's token's expiry (none for a creator without one). */
  expiresInMs?: number;
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

/**
 * Checks the shape of a token request (the admin API and the CLI share it): a non-empty name and
 * subject without control characters, `resource.action` permissions, server names as in the
 * configuration, non-empty tool globs, a positive whole number of milliseconds as lifetime.
 *
 * @returns one line per problem; empty when the input is valid
 */
export function tokenInputProblems(input: {
  name?: string;
  subject?: string;
  permissions?: readonly string[];
  servers?: readonly string[];
  tools?: readonly string[];
  expiresInMs?: number;
}): string[] {
  const problems: string[] = [];
  const text = (v: string | undefined, field: string) => {
    if (v === undefined) return;
    if (v.trim() === '' || v.length > 256 || CONTROL_CHARS.test(v))
      problems.push(`${field} must be 1-256 characters without control characters`);
  };
  text(input.name, 'name');
  text(input.subject, 'subject');
  for (const p of input.permissions ?? [])
    if (!PERMISSION_RE.test(p)) problems.push(`invalid permission "${p}" (expected resource.action)`);
  for (const s of input.servers ?? []) if (!NAME_RE.test(s)) problems.push(`invalid server name "${s}"`);
  for (const t of input.tools ?? [])
    if (t.trim() === '' || t.length > 256 || CONTROL_CHARS.test(t)) problems.push(`invalid tool pattern "${t}"`);
  const ms = input.expiresInMs;
  if (ms !== undefined && !(Number.isSafeInteger(ms) && ms > 0))
    problems.push('the lifetime must be a positive duration such as 12h or 30d');
  return problems;
}

function assertValidInput(input: Parameters<typeof tokenInputProblems>[0]): void {
  const problems = tokenInputProblems(input);
  if (problems.length > 0)
    throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', problems.join('; '), { data: { problems } });
}

/** `ms` cut down to a whole second: a JWT `exp` (RFC 7519 §2 NumericDate) holds whole seconds. */
function wholeSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}

/**
 * The requested tool-scope entries a creator restricted to `granted` may not hand out. An entry
 * passes when it is one of the creator's own entries, or a literal tool name (no glob syntax) that
 * one of them matches; any other glob could match more than the creator may call.
 */
function toolsOutside(requested: readonly string[], granted: readonly string[]): string[] {
  const matches = picomatch([...granted], { dot: true });
  return requested.filter((t) => !granted.includes(t) && (GLOB_CHARS.test(t) || !matches(t)));
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
  /**
   * Verified tokens by their string. `expiresAt` is the earliest expiry of the token and its
   * ancestors (a whole second, as the JWT's `exp`), so an entry never outlives its token;
   * `lineage` holds the token's id and its ancestors' ids, so revoking any of them drops it.
   */
  const cache = new Map<
    string,
    { principal: Principal; until: number; expiresAt: number | undefined; lineage: readonly string[] }
  >();

  /** Drops the cached tokens that are `tokenId` or were minted from it. */
  function forget(tokenId: string): void {
    for (const [t, entry] of cache) if (entry.lineage.includes(tokenId)) cache.delete(t);
  }
  options.revocations?.subscribe((tokenId) => {
    if (tokenId === undefined) cache.clear();
    else forget(tokenId);
  });

  function invalid(reason: string, data: Record<string, unknown> = {}): GatewayError {
    return new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid token', { data: { reason, ...data } });
  }

  /**
   * Checks a stored token and the tokens it was minted from, read fresh from the store.
   *
   * @returns the ids of the token and its ancestors, and their earliest expiry
   * @throws GatewayError `SWB_ERR_AUTH_REVOKED_TOKEN` / `SWB_ERR_AUTH_EXPIRED_TOKEN` with the
   *   owner of `record` as data; a chain with a missing link (or longer than
   *   {@link MAX_TOKEN_LINEAGE}) counts as revoked
   */
  async function checkLineage(
    record: TokenRecord,
    now: number,
  ): Promise<{ lineage: string[]; expiresAt: number | undefined }> {
    const owner = { tokenId: record.id, subject: record.subject, jti: record.jti };
    const revoked = (via?: string) =>
      new GatewayError('SWB_ERR_AUTH_REVOKED_TOKEN', 'token revoked', {
        data: via === undefined ? owner : { ...owner, revokedVia: via },
      });
    const expired = () => new GatewayError('SWB_ERR_AUTH_EXPIRED_TOKEN', 'token expired', { data: owner });
    if (record.revokedAt !== undefined) throw revoked();
    if (record.expiresAt !== undefined && record.expiresAt <= now) throw expired();
    const lineage = [record.id];
    let expiresAt = record.expiresAt;
    let expected = record.parentId;
    if (expected !== undefined) {
      for (const ancestor of await store.ancestors(record.id)) {
        if (ancestor.id !== expected || lineage.length >= MAX_TOKEN_LINEAGE) break;
        if (ancestor.revokedAt !== undefined) throw revoked(ancestor.id);
        if (ancestor.expiresAt !== undefined) {
          if (ancestor.expiresAt <= now) throw expired();
          if (expiresAt === undefined || ancestor.expiresAt < expiresAt) expiresAt = ancestor.expiresAt;
        }
        lineage.push(ancestor.id);
        expected = ancestor.parentId;
      }
      // Fail closed: a parent that cannot be found can no longer vouch for this token.
      if (expected !== undefined) throw revoked(expected);
    }
    return { lineage, expiresAt };
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
      const admin = isAdmin(creator);
      // The creator's limits: its stored record when it is an API token (fresh, not cached).
      let limits: {
        permissions: readonly string[];
        servers: readonly string[];
        tools: readonly string[];
        expiresAt: number | undefined;
      } = {
        permissions: creator.permissions,
        servers: creator.servers ?? [],
        tools: creator.tools ?? [],
        expiresAt: undefined,
      };
      let parentId: string | undefined;
      if (creator.kind === 'token' && creator.tokenId !== undefined) {
        const parent = await store.get(creator.tokenId);
        if (!parent) throw invalid('unknown token');
        const { lineage, expiresAt } = await checkLineage(parent, now);
        if (lineage.length >= MAX_TOKEN_LINEAGE)
          throw new GatewayError(
            'SWB_ERR_AUTH_DELEGATION_DEPTH',
            `a token minted from ${lineage.length} tokens cannot mint another`,
            { data: { maxLineage: MAX_TOKEN_LINEAGE } },
          );
        limits = { permissions: parent.permissions, servers: parent.servers, tools: parent.tools, expiresAt };
        parentId = parent.id;
      }

      const permissions = input.permissions ?? [...DEFAULT_TOKEN_PERMISSIONS];
      const widerPermissions = admin
        ? []
        : permissions.filter((p) => !limits.permissions.some((g) => permissionMatches(g, p)));
      if (widerPermissions.length > 0)
        throw new GatewayError(
          'SWB_ERR_AUTH_DELEGATION_PERMISSIONS',
          `cannot grant ${widerPermissions.join(', ')}: the creating credential does not hold it`,
          { data: { permissions: widerPermissions } },
        );

      const subject = input.subject ?? creator.subject;
      if (subject !== creator.subject && !admin)
        throw new GatewayError(
          'SWB_ERR_AUTH_DELEGATION_SUBJECT',
          'only an admin may create tokens for another subject',
          {
            data: { subject },
          },
        );

      let servers = input.servers ?? [];
      if (servers.length === 0) servers = [...limits.servers];
      else if (limits.servers.length > 0 && !admin) {
        const outside = servers.filter((s) => !limits.servers.includes(s));
        if (outside.length > 0)
          throw new GatewayError(
            'SWB_ERR_AUTH_DELEGATION_SERVERS',
            `cannot grant servers outside the creating credential's scope: ${outside.join(', ')}`,
            { data: { servers: outside, allowed: limits.servers } },
          );
      }

      let tools = input.tools ?? [];
      if (tools.length === 0) tools = [...limits.tools];
      else if (limits.tools.length > 0 && !admin) {
        const outside = toolsOutside(tools, limits.tools);
        if (outside.length > 0)
          throw new GatewayError(
            'SWB_ERR_AUTH_DELEGATION_TOOLS',
            `cannot grant tools outside the creating credential's scope: ${outside.join(', ')}`,
            { data: { tools: outside, allowed: limits.tools } },
          );
      }

      let expiresAt = input.expiresInMs === undefined ? undefined : wholeSecond(now + input.expiresInMs);
      if (limits.expiresAt !== undefined) {
        const ceiling = wholeSecond(limits.expiresAt);
        if (expiresAt === undefined) expiresAt = ceiling;
        else if (expiresAt > ceiling)
          throw new GatewayError(
            'SWB_ERR_AUTH_DELEGATION_EXPIRY',
            'cannot outlive the creating credential: ask for an expiry no later than its own',
            { data: { expiresAt: new Date(expiresAt).toISOString(), latest: new Date(ceiling).toISOString() } },
          );
      }

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
      const hit = cache.get(token);
      if (hit && hit.until > now && (hit.expiresAt === undefined || hit.expiresAt > now)) return hit.principal;
      if (hit) cache.delete(token);
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
      const { lineage, expiresAt } = await checkLineage(record, now);
      const principal = principalFromRecord(record, token);
      if (cache.size >= maxEntries) cache.delete(cache.keys().next().value as string);
      cache.set(token, {
        principal,
        until: now + ttl,
        expiresAt: expiresAt === undefined ? undefined : wholeSecond(expiresAt),
        lineage,
      });
      store.touch(record.id, now).catch((err: unknown) => logger.debug({ err }, 'token last-used update failed'));
      return principal;
    },

    async revoke(id) {
      const ok = await store.revoke(id, clock());
      if (ok) {
        forget(id);
        await options.revocations?.publish(id);
      }
      return ok;
    },

    list: (filter) => store.list(filter),
    get: (id) => store.get(id),
  };
}
