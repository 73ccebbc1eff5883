/**
 * `switchboard identity show|rotate`: the signing key of identity assertions
 * (docs/upstream-identity.md) in the configured database, the same one `switchboard serve` uses.
 *
 * A rotation stores a new signing key and keeps the old public key in the JWKS for `--keep`
 * (default 1 day). Running gateways re-read the keys within a minute; with
 * `SWITCHBOARD_REDIS_URL` set, the rotation is also announced on `runtimeServers.changesChannel`
 * and they re-read them at once.
 *
 * @module
 */
import {
  DEFAULT_RETIRED_KEY_TTL_MS,
  IDENTITY_KEY_SETTING,
  IDENTITY_RETIRED_SETTING,
  rotateIdentityKey,
} from '../auth/identity.js';
import { parseDuration } from '../config/schema.js';
import { silentLogger } from '../observability/logger.js';
import { processOutput, type CliOutput } from './check.js';
import { withConfiguredDatabase } from './database.js';

/** Options of `switchboard identity rotate`. */
export interface IdentityRotateOptions {
  /** Configuration file (finds the database). Default `SWITCHBOARD_CONFIG`, else the bundled example. */
  config?: string | undefined;
  /** How long the old key stays published, a duration such as `1d` or `2h`. Default 1 day. */
  keep?: string | undefined;
  /** Redis on which the rotation is announced. Default `SWITCHBOARD_REDIS_URL`; none: not announced. */
  redisUrl?: string | undefined;
}

/**
 * Replaces the identity signing key. Prints `new key KID (retired KID, published until ISO)`.
 *
 * @returns the exit code: 0, 2 for a bad `--keep`, 1 on an error
 */
export async function runIdentityRotate(
  options: IdentityRotateOptions,
  output: CliOutput = processOutput,
): Promise<number> {
  const keepMs = options.keep === undefined ? DEFAULT_RETIRED_KEY_TTL_MS : parseDuration(options.keep);
  if (keepMs === undefined || keepMs < 0) {
    output.err(`--keep must be a duration such as 1d, 12h or 0 (got ${JSON.stringify(options.keep)})`);
    return 2;
  }
  return withConfiguredDatabase({ config: options.config, logger: silentLogger() }, output, async (db, config) => {
    await db.migrate();
    const now = Date.now();
    const { kid, retiredKid } = await rotateIdentityKey(db.settings, { keepMs, now });
    output.out(
      retiredKid === undefined
        ? `new key ${kid} (there was no key before)`
        : `new key ${kid} (retired ${retiredKid}, published until ${new Date(now + keepMs).toISOString()})`,
    );
    const redisUrl = options.redisUrl ?? process.env.SWITCHBOARD_REDIS_URL;
    if (redisUrl) {
      const { publishOnce } = await import('../store/redis-revocations.js');
      // The message format of app/changes.ts: `{origin} identity`.
      if (!(await publishOnce(redisUrl, config.runtimeServers.changesChannel, 'cli identity')))
        output.err('warning: could not announce the rotation over Redis; running gateways see it within a minute');
    } else {
      output.err('running gateways sign with the new key within a minute');
    }
    return 0;
  });
}

/** Options of `switchboard identity show`. */
export interface IdentityShowOptions {
  config?: string | undefined;
  json?: boolean | undefined;
}

/**
 * Prints the signing key's id and the retired keys still published, or JSON
 * `{kid, retired: [{kid, until}]}` (`kid` null when no key was generated yet).
 *
 * @returns the exit code (0, or 1 on an error)
 */
export function runIdentityShow(options: IdentityShowOptions, output: CliOutput = processOutput): Promise<number> {
  return withConfiguredDatabase({ config: options.config, logger: silentLogger() }, output, async (db) => {
    await db.migrate();
    const current = await db.settings.get<{ kid?: unknown }>(IDENTITY_KEY_SETTING);
    const kid = typeof current?.kid === 'string' ? current.kid : null;
    const stored = await db.settings.get<unknown>(IDENTITY_RETIRED_SETTING);
    const now = Date.now();
    const retired = (Array.isArray(stored) ? stored : [])
      .map((r) => r as { jwk?: { kid?: unknown }; until?: unknown })
      .filter((r) => typeof r.until === 'number' && r.until > now && typeof r.jwk?.kid === 'string')
      .map((r) => ({ kid: r.jwk!.kid as string, until: new Date(r.until as number).toISOString() }));
    if (options.json) {
      output.out(JSON.stringify({ kid, retired }));
      return 0;
    }
    output.out(kid === null ? 'no signing key yet (generated at the first start)' : `signing key ${kid}`);
    for (const r of retired) output.out(`retired ${r.kid}, published until ${r.until}`);
    return 0;
  });
}
