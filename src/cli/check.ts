/**
 * `switchboard check [--config FILE]`: validates a configuration file and prints every problem
 * with its file and path.
 *
 * @module
 */
import { constants } from 'node:fs';
import { access, stat } from 'node:fs/promises';
import { delimiter, relative, isAbsolute, resolve } from 'node:path';
import type { EnvSource } from '../config/interpolate.js';
import { ConfigError, loadConfigFile, resolveConfigPath } from '../config/load.js';
import type { ServerConfig } from '../config/schema/servers.js';

/** Where a command writes: one call per line, without the trailing newline. */
export interface CliOutput {
  /** Results (stdout). */
  out(line: string): void;
  /** Problems, warnings and diagnostics (stderr). */
  err(line: string): void;
}

/** A {@link CliOutput} writing to `process.stdout` / `process.stderr`. */
export const processOutput: CliOutput = {
  out: (line) => void process.stdout.write(`${line}\n`),
  err: (line) => void process.stderr.write(`${line}\n`),
};

/** Options of `switchboard check`. */
export interface CheckOptions {
  /** The file to check. Default `SWITCHBOARD_CONFIG`, else the bundled example. */
  config?: string;
  /** Environment for `${VAR}` interpolation and `SWITCHBOARD_CONFIG`. Default `process.env`. */
  env?: EnvSource;
}

/**
 * Validates a configuration file the way `switchboard serve` loads it (syntax, interpolation,
 * schema, cross-references such as virtual servers naming unknown servers, guardrails: CEL
 * syntax and types, redaction patterns, `match` globs).
 *
 * Every stdio server's `command` must resolve to an executable file: a name is looked up on the
 * `PATH` (the server's own `env.PATH` when it sets one), a path (containing `/`) is taken relative
 * to the server's `cwd`. A file that declares no servers gets a warning (not a problem).
 *
 * Prints warnings as `warning: …` and problems as `file: path: message` to `output.err`, then
 * either `ok: N servers, M virtual servers in FILE` to `output.out` or a count of problems to
 * `output.err`.
 *
 * @returns the process exit code: 0 when valid, 1 on any problem (including an unreadable file).
 */
export async function runCheck(options: CheckOptions = {}, output: CliOutput = processOutput): Promise<number> {
  const env = options.env ?? process.env;
  const file = displayPath(options.config, env);
  try {
    const config = await loadConfigFile(file, { env, onWarning: (w) => output.err(`warning: ${w}`) });
    const missing = await missingCommands(config.servers, env);
    if (missing.length > 0) {
      for (const m of missing) {
        output.err(`${file}: servers.${m.server}.command: command "${m.command}" not found (${m.where})`);
      }
      output.err(`${plural(missing.length, 'problem')} found in ${file}`);
      return 1;
    }
    const servers = Object.keys(config.servers).length;
    if (servers === 0) output.err(`warning: ${file} declares no servers; the gateway would serve nothing`);
    const virtualServers = Object.keys(config.virtualServers).length;
    // Guardrails (CEL expressions, redaction patterns, match globs) are validated by the schema.
    const guardrails = config.guardrails.length;
    output.out(
      `ok: ${plural(servers, 'server')}, ${plural(virtualServers, 'virtual server')}${guardrails > 0 ? `, ${plural(guardrails, 'guardrail')}` : ''} in ${file}`,
    );
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const line of e.format().split('\n')) output.err(line);
    output.err(`${plural(e.issues.length, 'problem')} found in ${file}`);
    return 1;
  }
}

/** A stdio server whose command does not resolve to an executable file. */
interface MissingCommand {
  readonly server: string;
  readonly command: string;
  /** Where it was looked for. */
  readonly where: string;
}

/**
 * The stdio servers whose `command` is not an executable file, looked up as spawning the server
 * would: on `PATH` for a bare name, relative to the server's `cwd` for a path.
 */
async function missingCommands(servers: Record<string, ServerConfig>, env: EnvSource): Promise<MissingCommand[]> {
  const missing: MissingCommand[] = [];
  for (const [server, def] of Object.entries(servers)) {
    if (!('command' in def)) continue;
    const command = def.command;
    if (command.includes('/')) {
      const path = resolve(def.cwd ?? process.cwd(), command);
      if (!(await isExecutable(path))) missing.push({ server, command, where: `no executable file at ${path}` });
      continue;
    }
    const ownPath = def.env.PATH;
    const searchPath = typeof ownPath === 'string' ? ownPath : (env.PATH ?? process.env.PATH ?? '');
    const dirs = searchPath.split(delimiter).filter((d) => d !== '');
    let found = false;
    for (const dir of dirs) {
      if (await isExecutable(resolve(def.cwd ?? process.cwd(), dir, command))) {
        found = true;
        break;
      }
    }
    if (!found) missing.push({ server, command, where: 'not on PATH' });
  }
  return missing;
}

async function isExecutable(path: string): Promise<boolean> {
  try {
    await access(path, constants.X_OK);
    return (await stat(path)).isFile();
  } catch {
    return false;
  }
}

/** The config path as the user will recognise it: as typed, or relative to the cwd when possible. */
function displayPath(explicit: string | undefined, env: EnvSource): string {
  if (explicit !== undefined && explicit !== '') return explicit;
  const fromEnv = env.SWITCHBOARD_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return fromEnv;
  const absolute = resolveConfigPath(undefined, env);
  const rel = relative(process.cwd(), absolute);
  return rel.startsWith('..') || isAbsolute(rel) ? absolute : rel;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}
