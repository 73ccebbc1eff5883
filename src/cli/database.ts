/**
 * The "load the configuration, then open its database" step shared by the commands that work on
 * the database directly (`migrate`, `token`, `usage`): the same data directory and database URL
 * rules as `switchboard serve`.
 *
 * @module
 */
import { resolve } from 'node:path';
import type { EnvSource } from '../config/interpolate.js';
import { defaultConfigPath, isConfigError, loadConfigFile, resolveConfigPath } from '../config/load.js';
import type { SwitchboardConfig } from '../config/schema.js';
import { isGatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { openDatabase, resolveDataDir } from '../store/database.js';
import type { Database } from '../store/types.js';
import type { CliOutput } from './check.js';

/**
 * The data directory for a loaded configuration. The bundled example lives inside the installed
 * package, which may be read-only, so its data goes to `.switchboard` in the working directory.
 */
export function dataDirFor(config: SwitchboardConfig): string {
  if (
    config.dataDir === undefined &&
    config.source !== undefined &&
    resolve(config.source) === resolve(defaultConfigPath())
  ) {
    return resolve('.switchboard');
  }
  return resolveDataDir(config);
}

/** Options of {@link openConfiguredDatabase}. */
export interface ConfiguredDatabaseOptions {
  /** Configuration file. Default `SWITCHBOARD_CONFIG`, else the bundled example. */
  config?: string | undefined;
  /** Database URL. Default `SWITCHBOARD_DATABASE_URL`, else the SQLite file in the data directory. */
  databaseUrl?: string | undefined;
  /** Environment for `${VAR}` interpolation and the variables above. Default `process.env`. */
  env?: EnvSource | undefined;
  logger: Logger;
}

/**
 * Loads the configuration and opens its database (not migrated). A configuration error is
 * printed to `output.err` (file, path, expectation; warnings too) and becomes exit code 1.
 *
 * @returns the open database (the caller closes it) and the loaded configuration, or `1` after a
 *   configuration error.
 * @throws {@link GatewayError} from `openDatabase` when the database cannot be opened.
 */
async function openConfiguredDatabase(
  options: ConfiguredDatabaseOptions,
  output: CliOutput,
): Promise<{ db: Database; config: SwitchboardConfig } | 1> {
  const env = options.env ?? process.env;
  let config: SwitchboardConfig;
  try {
    config = await loadConfigFile(resolveConfigPath(options.config, env), {
      env,
      onWarning: (w) => output.err(`warning: ${w}`),
    });
  } catch (err) {
    if (!isConfigError(err)) throw err;
    for (const line of err.format().split('\n')) output.err(line);
    return 1;
  }
  const db = await openDatabase({
    dataDir: dataDirFor(config),
    logger: options.logger,
    env,
    ...(options.databaseUrl === undefined ? {} : { url: options.databaseUrl }),
  });
  // Without a configuration the bundled example's database is used: say where it is, since a
  // gateway started with its own configuration does not see it.
  if (
    (options.config === undefined || options.config === '') &&
    !env.SWITCHBOARD_CONFIG &&
    !env.SWITCHBOARD_DATABASE_URL
  )
    output.err(
      `note: no --config given; using the database at ${db.location ?? db.dialect} (pass the gateway's --config to use its database)`,
    );
  return { db, config };
}

/**
 * Opens the configured database (see {@link openConfiguredDatabase}), runs `fn` with it and the
 * loaded configuration, and closes it. A configuration error, and any `GatewayError` from opening or from `fn`, is printed
 * to `output.err` (`CODE: message`) and becomes exit code 1; other errors propagate.
 *
 * @returns `fn`'s exit code, or 1.
 */
export async function withConfiguredDatabase(
  options: ConfiguredDatabaseOptions,
  output: CliOutput,
  fn: (db: Database, config: SwitchboardConfig) => Promise<number>,
): Promise<number> {
  let db: Database | undefined;
  try {
    const opened = await openConfiguredDatabase(options, output);
    if (opened === 1) return 1;
    db = opened.db;
    return await fn(db, opened.config);
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    output.err(`${err.code}: ${err.message}`);
    return 1;
  } finally {
    await db?.close();
  }
}
