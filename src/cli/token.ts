/**
 * `switchboard token create|list|revoke`: manages API tokens directly in the configured database
 * (`SWITCHBOARD_DATABASE_URL`, else the SQLite file in the data directory of the configuration),
 * the same one `switchboard serve` uses. The CLI acts as the operator: a token it creates has no
 * parent and no delegation limits; revoking a token revokes every token minted from it.
 *
 * @module
 */
import {
  createTokenService,
  DEFAULT_TOKEN_PERMISSIONS,
  tokenInputProblems,
  type TokenService,
} from '../auth/tokens.js';
import { PERMISSION_RE, parseDuration, type SwitchboardConfig } from '../config/schema.js';
import { isKnownPermission, unknownPermissionMessage } from '../config/schema/auth.js';
import { silentLogger } from '../observability/logger.js';
import type { Database, TokenRecord } from '../store/types.js';
import { processOutput, type CliOutput } from './check.js';
import { withConfiguredDatabase } from './database.js';

/**
 * Loads the config, opens and migrates its database, and runs `fn` with the token service.
 * Database failures are printed as `CODE: message` and give exit code 1.
 */
function withTokens(
  configPath: string | undefined,
  output: CliOutput,
  fn: (tokens: TokenService, db: Database, config: SwitchboardConfig) => Promise<number>,
): Promise<number> {
  const logger = silentLogger();
  return withConfiguredDatabase({ config: configPath, logger }, output, async (db, config) => {
    await db.migrate();
    return fn(await createTokenService({ store: db.tokens, settings: db.settings, logger }), db, config);
  });
}

function list(v: string | undefined): string[] {
  return v === undefined
    ? []
    : v
        .split(',')
        .map((x) => x.trim())
        .filter(Boolean);
}

/** Options of `switchboard token create`. */
export interface TokenCreateOptions {
  config?: string;
  name: string;
  /** Owner the token acts as. Default: the name. */
  subject?: string;
  servers?: string;
  tools?: string;
  /** Comma-separated `resource.action` permissions. Default `servers.use,tools.execute`. */
  permissions?: string;
  /** Lifetime such as `30d`; default: no expiry. */
  expires?: string;
  json?: boolean;
}

/**
 * Creates a token and prints it once (with `--json`: `{"id","token","jti","expiresAt"}`).
 *
 * @returns exit code 0, or 1 on invalid input
 */
export async function runTokenCreate(opts: TokenCreateOptions, output: CliOutput = processOutput): Promise<number> {
  const permissions = opts.permissions === undefined ? [...DEFAULT_TOKEN_PERMISSIONS] : list(opts.permissions);
  const bad = permissions.filter((p) => !PERMISSION_RE.test(p));
  if (bad.length > 0) {
    output.err(
      `invalid permission(s): ${bad.join(', ')} (expected resource.action, e.g. servers.use, tools.execute, tokens.manage, servers.manage, admin.*)`,
    );
    return 1;
  }
  const unknown = permissions.filter((p) => !isKnownPermission(p));
  if (unknown.length > 0) {
    for (const p of unknown) output.err(unknownPermissionMessage(p));
    return 1;
  }
  let expiresInMs: number | undefined;
  if (opts.expires !== undefined) {
    expiresInMs = parseDuration(opts.expires);
    if (expiresInMs === undefined || expiresInMs <= 0) {
      output.err(`invalid --expires "${opts.expires}" (expected a duration such as 12h, 30d)`);
      return 1;
    }
  }
  // The CLI acts as the operator (no creating token, so no delegation limits), but its input is
  // checked like the admin API's.
  const input = {
    name: opts.name,
    subject: opts.subject ?? opts.name,
    permissions,
    servers: list(opts.servers),
    tools: list(opts.tools),
    ...(expiresInMs === undefined ? {} : { expiresInMs }),
  };
  const problems = tokenInputProblems(input);
  if (problems.length > 0) {
    for (const problem of problems) output.err(problem);
    return 1;
  }
  return withTokens(opts.config, output, async (tokens) => {
    const created = await tokens.create({ ...input, createdBy: 'cli' });
    if (opts.json) output.out(JSON.stringify(created));
    else {
      output.out(
        `created token ${created.id} (${opts.name}), permissions: ${permissions.join(', ')}${created.expiresAt ? `, expires ${created.expiresAt}` : ''}`,
      );
      output.out('store it now; it is not shown again:');
      output.out(created.token);
    }
    return 0;
  });
}

function row(r: TokenRecord): string {
  const state =
    r.revokedAt !== undefined
      ? 'revoked'
      : r.expiresAt !== undefined && r.expiresAt <= Date.now()
        ? 'expired'
        : 'active';
  const iso = (t: number | undefined) => (t === undefined ? '-' : new Date(t).toISOString());
  return [
    r.id,
    r.name,
    r.subject,
    state,
    r.permissions.join(','),
    r.servers.join(',') || '*',
    iso(r.expiresAt),
    iso(r.lastUsedAt),
  ].join('\t');
}

/** Lists tokens (tab-separated, or JSON with `--json`). */
export async function runTokenList(
  opts: { config?: string; json?: boolean },
  output: CliOutput = processOutput,
): Promise<number> {
  return withTokens(opts.config, output, async (tokens) => {
    const all = await tokens.list();
    if (opts.json) {
      output.out(JSON.stringify(all.map(({ tokenHash: _h, ...r }) => r)));
      return 0;
    }
    output.out(['ID', 'NAME', 'SUBJECT', 'STATE', 'PERMISSIONS', 'SERVERS', 'EXPIRES', 'LAST USED'].join('\t'));
    for (const r of all) output.out(row(r));
    return 0;
  });
}

/** Options of `switchboard token revoke`. */
export interface TokenRevokeOptions {
  config?: string;
  id: string;
  /** Redis of the running gateways, to announce the revocation. Default `SWITCHBOARD_REDIS_URL`. */
  redisUrl?: string;
}

/**
 * Revokes a token by id, and every token minted from it. With Redis configured, the revocation is
 * announced on `auth.revocationChannel`, so running gateways drop the tokens from their caches at
 * once (a warning, not a failure, when Redis cannot be reached: they see it within 5 s).
 *
 * @returns exit code 0, or 1 when the id is unknown
 */
export async function runTokenRevoke(opts: TokenRevokeOptions, output: CliOutput = processOutput): Promise<number> {
  return withTokens(opts.config, output, async (tokens, _db, config) => {
    if (!(await tokens.revoke(opts.id))) {
      output.err(`no token with id ${opts.id}`);
      return 1;
    }
    output.out(`revoked ${opts.id}`);
    const redisUrl = opts.redisUrl ?? process.env.SWITCHBOARD_REDIS_URL;
    if (redisUrl) {
      const { publishOnce } = await import('../store/redis-revocations.js');
      if (!(await publishOnce(redisUrl, config.auth.revocationChannel, opts.id)))
        output.err('warning: could not announce the revocation over Redis; running gateways see it within 5 s');
    }
    return 0;
  });
}
