/**
 * `switchboard import FILE [--output OUT] [--force]`: converts a Claude Desktop / Cursor / VS Code
 * MCP configuration into Switchboard YAML.
 *
 * @module
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { EnvSource } from '../config/interpolate.js';
import { importClientConfigFile } from '../config/import.js';
import { ConfigError, formatFromPath } from '../config/load.js';
import { processOutput, type CliOutput } from './check.js';

/** Options of `switchboard import`. */
export interface ImportCommandOptions {
  /** The client configuration file to read (JSON; comments allowed). */
  file: string;
  /** Write the YAML here instead of stdout. Must end in `.yaml` or `.yml`. */
  output?: string;
  /** Overwrite `output` if it exists. Default false. */
  force?: boolean;
  /** Environment used to check the result. Default `process.env`. */
  env?: EnvSource;
}

/**
 * Converts `file` and prints the YAML to `output.out`, or writes it to `options.output` (creating
 * its missing parent folders).
 * Warnings (anything not carried over exactly, and problems the result would have if loaded now,
 * such as unset environment variables) go to `output.err` as `warning: …` lines.
 *
 * @returns the process exit code: 0 on success (even with warnings), 1 when the input cannot be
 *   read or is not a client configuration, or the output cannot be written.
 */
export async function runImport(options: ImportCommandOptions, output: CliOutput = processOutput): Promise<number> {
  if (options.output !== undefined && formatFromPath(options.output) !== 'yaml') {
    output.err(`error: ${options.output}: import writes YAML; name the output file .yaml or .yml`);
    return 1;
  }
  try {
    const result = await importClientConfigFile(options.file, { env: options.env ?? process.env });
    for (const w of result.warnings) output.err(`warning: ${w}`);
    const count = Object.keys(result.servers).length;
    if (options.output === undefined) {
      output.out(result.yaml.trimEnd());
      return 0;
    }
    try {
      await mkdir(dirname(options.output), { recursive: true });
      await writeFile(options.output, result.yaml, { flag: options.force === true ? 'w' : 'wx' });
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      output.err(
        code === 'EEXIST'
          ? `error: ${options.output} exists; pass --force to overwrite it`
          : `error: cannot write ${options.output}: ${(e as Error).message}`,
      );
      return 1;
    }
    output.out(`wrote ${count} server${count === 1 ? '' : 's'} to ${options.output}`);
    return 0;
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const line of e.format().split('\n')) output.err(line);
    return 1;
  }
}
