/**
 * `switchboard migrate [--config FILE]`: applies pending database migrations and says which
 * (docs/storage.md). `switchboard serve` migrates on start as well; this command lets an operator
 * migrate ahead of a rollout, or check that a database is up to date.
 *
 * @module
 */
import type { EnvSource } from '../config/interpolate.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { processOutput, type CliOutput } from './check.js';
import { withConfiguredDatabase } from './database.js';

/** Options of `switchboard migrate`. */
export interface MigrateOptions {
  /** Configuration file (for `dataDir`). Default `SWITCHBOARD_CONFIG`, else the bundled example. */
  config?: string;
  /** Database URL. Default `SWITCHBOARD_DATABASE_URL`, else the SQLite file in the data directory. */
  databaseUrl?: string;
  /** Environment for `${VAR}` interpolation, `SWITCHBOARD_CONFIG` and `SWITCHBOARD_DATABASE_URL`. Default `process.env`. */
  env?: EnvSource;
  /** Logger for database diagnostics. Default: warnings and errors on stderr. */
  logger?: Logger;
}

/**
 * Loads the configuration (to find the data directory), opens the database, applies pending
 * migrations and prints `applied NAME` per migration then a summary, or `database up to date`,
 * to `output.out`. Problems go to `output.err`.
 *
 * @returns the process exit code: 0 on success (including nothing to do), 1 when the config is
 *   invalid, the database cannot be opened or a migration fails.
 */
export async function runMigrate(options: MigrateOptions = {}, output: CliOutput = processOutput): Promise<number> {
  const env = options.env ?? process.env;
  const logger = options.logger ?? createLogger(env.SWITCHBOARD_LOG_LEVEL === undefined ? { level: 'warn' } : {});
  return withConfiguredDatabase(
    { config: options.config, databaseUrl: options.databaseUrl, env, logger },
    output,
    async (db) => {
      const where = `${db.dialect} ${db.location ?? ''}`.trim();
      const applied = await db.migrate();
      if (applied.length === 0) {
        output.out(`database up to date (${where})`);
      } else {
        for (const name of applied) output.out(`applied ${name}`);
        output.out(`${applied.length} migration${applied.length === 1 ? '' : 's'} applied (${where})`);
      }
      return 0;
    },
  );
}
