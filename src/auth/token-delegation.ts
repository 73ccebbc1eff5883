/**
 * Delegation rules of Switchboard API tokens: a token minted by a principal never reaches further
 * than that principal — its permissions, servers and tools are a subset of the creator's, it
 * expires no later than the creator's token, and it records that token as its parent, so it stands
 * only while every token it was minted from does ({@link checkLineage}).
 *
 * The subset checks ({@link delegatedGrant}) refuse with `SWB_ERR_AUTH_DELEGATION_*` (403),
 * naming in `data` what was too wide.
 *
 * @module
 */
import picomatch from 'picomatch';
import { GatewayError } from '../errors.js';
import type { TokenRecord, TokenStore } from '../store/types.js';
import type { Principal } from './principal.js';
import { isAdmin, permissionMatches } from './rbac.js';
import { wholeSecond } from './token-input.js';

/** Permissions of a new token when none are asked for. */
export const DEFAULT_TOKEN_PERMISSIONS: readonly string[] = Object.freeze(['servers.use', 'tools.execute']);
/** Longest chain of tokens minted from tokens (a token and its ancestors). */
export const MAX_TOKEN_LINEAGE = 64;
/** Characters that make a tool scope entry a glob rather than one literal tool name. */
const GLOB_CHARS = /[*?[\]{}()!+@\\]/;

/**
 * What a principal asks for when it mints a token (`TokenService.mint`). An absent field
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

/** What a creator may hand out: its own permissions, scopes and (as an API token) expiry. */
export interface DelegationLimits {
  permissions: readonly string[];
  servers: readonly string[];
  tools: readonly string[];
  expiresAt: number | undefined;
}

/** What a minted token gets: the request, checked against and completed from the creator's limits. */
export interface DelegatedGrant {
  subject: string;
  permissions: string[];
  servers: string[];
  tools: string[];
  expiresAt: number | undefined;
}

/**
 * Checks a stored token and the tokens it was minted from, read fresh from the store.
 *
 * @returns the ids of the token and its ancestors, and their earliest expiry
 * @throws GatewayError `SWB_ERR_AUTH_REVOKED_TOKEN` / `SWB_ERR_AUTH_EXPIRED_TOKEN` with the
 *   owner of `record` as data; a chain with a missing link (or longer than
 *   {@link MAX_TOKEN_LINEAGE}) counts as revoked
 */
export async function checkLineage(
  store: TokenStore,
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

/**
 * The requested tool-scope entries a creator restricted to `granted` may not hand out. An entry
 * passes when it is one of the creator's own entries, or a literal tool name (no glob syntax) that
 * one of them matches; any other glob could match more than the creator may call.
 */
function toolsOutside(requested: readonly string[], granted: readonly string[]): string[] {
  const matches = picomatch([...granted], { dot: true });
  return requested.filter((t) => !granted.includes(t) && (GLOB_CHARS.test(t) || !matches(t)));
}

/**
 * Checks a mint request against its creator's limits (admins, `admin.*`, may grant any
 * permission, subject, server and tool, but not outlive their token) and fills in what it leaves
 * out: permissions {@link DEFAULT_TOKEN_PERMISSIONS}, subject, servers and tools the creator's,
 * expiry the creator's token's.
 *
 * @param now epoch ms of the request; a lifetime counts from here
 * @throws GatewayError (403) `SWB_ERR_AUTH_DELEGATION_PERMISSIONS`, `…_SUBJECT`, `…_SERVERS`,
 *   `…_TOOLS`, `…_EXPIRY`
 */
export function delegatedGrant(
  creator: Principal,
  input: MintTokenInput,
  limits: DelegationLimits,
  now: number,
): DelegatedGrant {
  const admin = isAdmin(creator);
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
    throw new GatewayError('SWB_ERR_AUTH_DELEGATION_SUBJECT', 'only an admin may create tokens for another subject', {
      data: { subject },
    });

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

  return { subject, permissions, servers, tools, expiresAt };
}
