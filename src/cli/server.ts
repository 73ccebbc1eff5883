/**
 * `switchboard server add|list|remove|enable|disable`: runtime servers in the configured
 * database — the same records `PUT /api/v1/servers/{name}` writes — for operators at the
 * gateway's machine. Gateways load them at start; a running gateway sharing Redis
 * (`SWITCHBOARD_REDIS_URL`) is told at once on `runtimeServers.changesChannel`. Without Redis a
 * running gateway sees the change at its next start: change it through the admin API instead.
 *
 * A server declared in the configuration file cannot be replaced here (the file wins), and a
 * name whose namespaced names could collide with another server's is refused, as the admin API
 * refuses it.
 *
 * @module
 */
import { ServerConfig, type SwitchboardConfig } from '../config/schema.js';
import { NAME_RE } from '../config/schema.js';
import { overlappingNamespaces } from '../gateway/naming.js';
import { silentLogger } from '../observability/logger.js';
import type { Database } from '../store/types.js';
import { processOutput, type CliOutput } from './check.js';
import { withConfiguredDatabase } from './database.js';

/** Options shared by the `server` commands. */
export interface ServerCommandOptions {
  /** Configuration file (finds the database). Default `SWITCHBOARD_CONFIG`, else the bundled example. */
  config?: string | undefined;
  /** Redis on which the change is announced. Default `SWITCHBOARD_REDIS_URL`; none: not announced. */
  redisUrl?: string | undefined;
}

/** Options of `switchboard server add`. */
export interface ServerAddOptions extends ServerCommandOptions {
  name: string;
  /** A stdio server: the command, with {@link args}. */
  command?: string | undefined;
  args?: string[] | undefined;
  /** A remote server: its Streamable HTTP (or `--transport sse`) URL. */
  url?: string | undefined;
  transport?: 'streamable-http' | 'sse' | undefined;
  description?: string | undefined;
  /** A whole server entry as JSON (the shape of a `servers:` entry); the flags above are merged over it. */
  json?: string | undefined;
  /** Replace an existing runtime server of that name. */
  force?: boolean | undefined;
  /** Recorded as the creator. Default `cli`. */
  by?: string | undefined;
}

/**
 * Adds (or with `force`, replaces) a runtime server after validating its entry like the admin API.
 *
 * @returns the exit code: 0 when stored, 1 on a refused or invalid entry
 */
export function runServerAdd(options: ServerAddOptions, output: CliOutput = processOutput): Promise<number> {
  return withDatabase(options, output, async (db, config) => {
    const { name } = options;
    if (!NAME_RE.test(name)) {
      output.err(`invalid server name "${name}": use letters, digits, "_" and "-"`);
      return 1;
    }
    if (config.servers[name] !== undefined) {
      output.err(`server "${name}" is declared in the configuration file; change it there`);
      return 1;
    }
    let entry: Record<string, unknown> = {};
    if (options.json !== undefined) {
      try {
        const parsed = JSON.parse(options.json) as unknown;
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        entry = parsed as Record<string, unknown>;
      } catch (err) {
        output.err(`--json is not a JSON object: ${err instanceof Error ? err.message : String(err)}`);
        return 1;
      }
    }
    if (options.command !== undefined) entry = { ...entry, command: options.command, args: options.args ?? [] };
    if (options.url !== undefined) entry = { ...entry, url: options.url };
    if (options.transport !== undefined) entry = { ...entry, transport: options.transport };
    if (options.description !== undefined) entry = { ...entry, description: options.description };
    if (!('command' in entry) && !('url' in entry)) {
      output.err('give --command (a stdio server), --url (a remote one) or --json with either');
      return 1;
    }
    const parsed = ServerConfig.safeParse(entry);
    if (!parsed.success) {
      for (const i of parsed.error.issues)
        output.err(`invalid server entry: ${i.path.join('.') || '(root)'}: ${i.message}`);
      return 1;
    }
    const stored = await db.servers.list();
    const existing = stored.find((s) => s.name === name);
    if (existing && !options.force) {
      output.err(`runtime server "${name}" exists; --force replaces it`);
      return 1;
    }
    const others = [...Object.keys(config.servers), ...stored.map((s) => s.name).filter((n) => n !== name)];
    const overlap = overlappingNamespaces([name, ...others], config.namespaceSeparator).find(
      ([a, b]) => a === name || b === name,
    );
    if (overlap !== undefined) {
      const other = overlap[0] === name ? overlap[1] : overlap[0];
      output.err(`servers "${name}" and "${other}" could expose the same names; choose another name`);
      return 1;
    }
    const now = Date.now();
    await db.servers.put({
      name,
      config: entry,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      createdBy: existing?.createdBy ?? options.by ?? 'cli',
    });
    output.out(`${existing ? 'replaced' : 'added'} ${name}`);
    await announce(options, config, output);
    return 0;
  });
}

/** Options of `switchboard server list`. */
export interface ServerListOptions extends ServerCommandOptions {
  json?: boolean | undefined;
}

/**
 * Lists the runtime servers: name, kind (stdio or the URL), enabled, description.
 *
 * @returns 0
 */
export function runServerList(options: ServerListOptions, output: CliOutput = processOutput): Promise<number> {
  return withDatabase(options, output, async (db) => {
    const servers = await db.servers.list();
    if (options.json) {
      output.out(JSON.stringify({ servers }, null, 2));
      return 0;
    }
    if (servers.length === 0) output.err('no runtime servers');
    for (const s of servers) {
      const c = s.config as { command?: string; url?: string; description?: string };
      const target = c.command !== undefined ? `stdio ${c.command}` : `url ${c.url ?? '?'}`;
      output.out(
        [s.name, isEnabled(s.config) ? 'enabled' : 'disabled', target, c.description ?? ''].join('\t').trimEnd(),
      );
    }
    return 0;
  });
}

/**
 * Removes a runtime server.
 *
 * @returns 0 when removed, 1 when there is no runtime server of that name
 */
export function runServerRemove(
  options: ServerCommandOptions & { name: string },
  output: CliOutput = processOutput,
): Promise<number> {
  return withDatabase(options, output, async (db, config) => {
    if (!(await db.servers.delete(options.name))) {
      output.err(
        `no runtime server "${options.name}"${config.servers[options.name] ? ' (it is declared in the configuration file)' : ''}`,
      );
      return 1;
    }
    output.out(`removed ${options.name}`);
    await announce(options, config, output);
    return 0;
  });
}

/**
 * Enables or disables a runtime server (`enabled: false` keeps it stored but not started).
 *
 * @returns 0 when changed or already so, 1 when there is no runtime server of that name
 */
export function runServerSetEnabled(
  options: ServerCommandOptions & { name: string; enabled: boolean },
  output: CliOutput = processOutput,
): Promise<number> {
  return withDatabase(options, output, async (db, config) => {
    const existing = await db.servers.get(options.name);
    if (existing === undefined) {
      output.err(`no runtime server "${options.name}"`);
      return 1;
    }
    const { disabled: _disabled, enabled: _enabled, ...rest } = existing.config;
    const entry = options.enabled ? rest : { ...rest, enabled: false };
    await db.servers.put({ ...existing, config: entry, updatedAt: Date.now() });
    output.out(`${options.enabled ? 'enabled' : 'disabled'} ${options.name}`);
    await announce(options, config, output);
    return 0;
  });
}

/** True unless the entry says `enabled: false` or `disabled: true`. */
export function isEnabled(entry: Record<string, unknown>): boolean {
  return entry.enabled !== false && entry.disabled !== true;
}

function withDatabase(
  options: ServerCommandOptions,
  output: CliOutput,
  fn: (db: Database, config: SwitchboardConfig) => Promise<number>,
): Promise<number> {
  return withConfiguredDatabase({ config: options.config, logger: silentLogger() }, output, async (db, config) => {
    await db.migrate();
    return fn(db, config);
  });
}

/** Tells running gateways over Redis (message format of `app/changes.ts`: `{origin} servers`). */
async function announce(options: ServerCommandOptions, config: SwitchboardConfig, output: CliOutput): Promise<void> {
  const redisUrl = options.redisUrl ?? process.env.SWITCHBOARD_REDIS_URL;
  if (!redisUrl) {
    output.err(
      'note: running gateways load runtime servers at start; without SWITCHBOARD_REDIS_URL they are not told now',
    );
    return;
  }
  const { publishOnce } = await import('../store/redis-revocations.js');
  if (!(await publishOnce(redisUrl, config.runtimeServers.changesChannel, 'cli servers')))
    output.err('warning: could not announce the change over Redis; running gateways see it at their next start');
}
