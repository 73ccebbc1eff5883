/**
 * `switchboard tools pins|approve`: tool definition pins (`pinTools` guardrails,
 * docs/guardrails.md) in the configured database (`SWITCHBOARD_DATABASE_URL`, else the SQLite
 * file in the data directory of the configuration), the same one `switchboard serve` uses.
 *
 * A running gateway re-reads the pins while a tool is changed, so an approval made here applies
 * to it within a few seconds (`PIN_REFRESH_MS`), and to every gateway started afterwards. With
 * `SWITCHBOARD_REDIS_URL` set, the approval is also announced on `runtimeServers.changesChannel`
 * and applies to the running gateways at once.
 *
 * @module
 */
import { silentLogger } from '../observability/logger.js';
import { processOutput, type CliOutput } from './check.js';
import { withConfiguredDatabase } from './database.js';

/** Options of `switchboard tools approve`. */
export interface ToolsApproveOptions {
  /** Configuration file (finds the database). Default `SWITCHBOARD_CONFIG`, else the bundled example. */
  config?: string | undefined;
  /** The server whose changed tools are approved. */
  server: string;
  /** Only this tool (the upstream's own name). Default: every changed tool of the server. */
  tool?: string | undefined;
  /** Recorded as the approver. Default `cli`. */
  by?: string | undefined;
  /** Redis on which the approval is announced. Default `SWITCHBOARD_REDIS_URL`; none: not announced. */
  redisUrl?: string | undefined;
}

/**
 * Accepts the current definitions of a server's changed tools (or one tool): each changed pin
 * takes the definition last seen by a gateway.
 *
 * Prints `approved SERVER/TOOL` per tool, or `nothing to approve for SERVER` when no tool of it
 * is changed.
 *
 * @returns the exit code: 0 when something was approved, 1 when nothing was (or on an error)
 */
export function runToolsApprove(options: ToolsApproveOptions, output: CliOutput = processOutput): Promise<number> {
  return withConfiguredDatabase({ config: options.config, logger: silentLogger() }, output, async (db, config) => {
    await db.migrate();
    const store = db.toolPins;
    if (store === undefined) {
      output.err('this database has no tool pins');
      return 1;
    }
    const approved = await store.approve(options.server, options.tool, options.by ?? 'cli', Date.now());
    if (approved.length === 0) {
      output.err(
        `nothing to approve for ${options.server}${options.tool === undefined ? '' : ` --tool ${options.tool}`}: no changed tool definition is recorded`,
      );
      return 1;
    }
    for (const tool of approved) output.out(`approved ${options.server}/${tool}`);
    const redisUrl = options.redisUrl ?? process.env.SWITCHBOARD_REDIS_URL;
    if (redisUrl) {
      const { publishOnce } = await import('../store/redis-revocations.js');
      // The message format of app/changes.ts: `{origin} pins`.
      if (!(await publishOnce(redisUrl, config.runtimeServers.changesChannel, 'cli pins')))
        output.err('warning: could not announce the approval over Redis; running gateways see it within 5 s');
    }
    return 0;
  });
}

/** Options of `switchboard tools pins`. */
export interface ToolsPinsOptions {
  config?: string | undefined;
  /** Only this server's pins. */
  server?: string | undefined;
  json?: boolean | undefined;
}

/**
 * Lists the pins: `SERVER/TOOL  pinned|changed  HASH-PREFIX`, or JSON.
 *
 * @returns the exit code (0, or 1 on an error)
 */
export function runToolsPins(options: ToolsPinsOptions, output: CliOutput = processOutput): Promise<number> {
  return withConfiguredDatabase({ config: options.config, logger: silentLogger() }, output, async (db) => {
    await db.migrate();
    const pins = (await db.toolPins?.list(options.server)) ?? [];
    const rows = pins.map((p) => ({ ...p, status: p.changedHash === undefined ? 'pinned' : 'changed' }));
    if (options.json) {
      output.out(JSON.stringify({ pins: rows }));
      return 0;
    }
    for (const r of rows) output.out(`${r.server}/${r.tool}\t${r.status}\t${r.hash.slice(0, 12)}`);
    if (rows.length === 0) output.err('no tool pins');
    return 0;
  });
}
