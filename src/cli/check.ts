/**
 * `switchboard check [--config FILE]`: validates a configuration file and prints every problem
 * with its file and path.
 *
 * @module
 */
import { relative, isAbsolute } from 'node:path';
import type { EnvSource } from '../config/interpolate.js';
import { ConfigError, loadConfigFile, resolveConfigPath } from '../config/load.js';

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
    const servers = Object.keys(config.servers).length;
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
