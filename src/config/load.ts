/**
 * Loading configuration files: YAML (`.yaml`, `.yml`), JSON (`.json`, comments and trailing
 * commas allowed as VS Code writes them) and TOML (`.toml`), all validated by one schema.
 *
 * Pipeline: parse → drop client-only top-level keys → `${VAR}` interpolation → validation (zod)
 * → cross-reference checks → merge `servers` with `mcpServers` → drop disabled servers → resolve
 * relative `cwd`/`dataDir` against the file's directory. Every problem found on the way is
 * collected, and all of them are thrown together as one {@link ConfigError}.
 *
 * The stages live in their own modules: `syntax` (parsing), `schema-walk` and `schema-issues`
 * (validation messages), `references` (cross-entry checks), `paths` and `issues` (shared).
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import type { z } from 'zod';
import { interpolateTree, type EnvSource, type PathSegment } from './interpolate.js';
import { ConfigError, formatIssue, type ConfigIssue, type ConfigIssueKind, type RawIssue } from './issues.js';
import { documentOrder, formatPath, isPlainObject, isPrefix, orderOf } from './paths.js';
import { checkReferences, interpolatedVariables } from './references.js';
import { namespacingOf, SwitchboardConfigInput, type SwitchboardConfig, type VirtualServer } from './schema.js';
import { describe, flattenZodIssue } from './schema-issues.js';
import { coerceScalar } from './schema-walk.js';
import { formatFromPath, parseConfigSyntax, type LoadConfigOptions, type ParseConfigOptions } from './syntax.js';
import { packageRoot } from '../package-root.js';

export { ConfigError, formatIssue, isConfigError, type ConfigIssue, type ConfigIssueKind } from './issues.js';
export { formatPath } from './paths.js';
export {
  formatFromPath,
  parseConfigSyntax,
  stripJsonComments,
  type ConfigFormat,
  type LoadConfigOptions,
  type ParseConfigOptions,
} from './syntax.js';

/**
 * Absolute path of the bundled example configuration (`examples/switchboard.yaml` of the installed
 * package), served when neither `--config` nor `SWITCHBOARD_CONFIG` is given.
 */
export function defaultConfigPath(): string {
  return join(packageRoot(), 'examples', 'switchboard.yaml');
}

/**
 * The configuration file to use, as an absolute path: `explicit` (the `--config` flag) if given,
 * else `SWITCHBOARD_CONFIG` from `env` if non-empty, else {@link defaultConfigPath}.
 *
 * @param explicit - the `--config` value, relative to the current directory.
 * @param env - where `SWITCHBOARD_CONFIG` is read; default `process.env`.
 */
export function resolveConfigPath(explicit?: string, env: EnvSource = process.env): string {
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const fromEnv = env.SWITCHBOARD_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return defaultConfigPath();
}

/**
 * Reads, parses and validates a configuration file.
 *
 * @param path - the file; its extension picks the format. Named in issues as given.
 * @returns the validated config, `source` set to the file's absolute path.
 * @throws {@link ConfigError} with code `SWB_ERR_CONFIG_READ` if the file cannot be read or has an
 *   unknown extension, `SWB_ERR_CONFIG_INVALID` (carrying every problem) if it is invalid.
 */
export async function loadConfigFile(path: string, options: LoadConfigOptions = {}): Promise<SwitchboardConfig> {
  const format = formatFromPath(path);
  if (format === undefined) {
    throw new ConfigError(
      [
        {
          file: path,
          path: '',
          kind: 'read',
          message: `unsupported file extension ${JSON.stringify(extname(path))}: use .yaml, .yml, .json or .toml`,
        },
      ],
      { code: 'SWB_ERR_CONFIG_READ' },
    );
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : String((cause as Error).message);
    throw new ConfigError([{ file: path, path: '', kind: 'read', message: `cannot read the file: ${reason}` }], {
      code: 'SWB_ERR_CONFIG_READ',
      cause,
    });
  }
  return parseConfigText(text, { ...options, path, format });
}

/**
 * Parses and validates configuration text (see the module comment for the pipeline).
 *
 * Top-level keys that are not Switchboard settings are errors, except in a client file (one with
 * `mcpServers`, as Claude Desktop and Cursor write it), where they are ignored with a warning.
 * VS Code's `inputs` is always ignored with a warning; `$schema`, `x-…` extension keys (a home for
 * YAML anchors) and empty sections (`servers:` with nothing under it) silently.
 *
 * @returns the validated config with `servers` merged from `servers` and `mcpServers`, disabled
 *   servers (`disabled: true` or `enabled: false`) removed, and `source` set when `path` is given.
 * @throws {@link ConfigError} (`SWB_ERR_CONFIG_INVALID`) carrying every problem found.
 */
export function parseConfigText(text: string, options: ParseConfigOptions = {}): SwitchboardConfig {
  const file = options.path;
  const format = options.format ?? (file === undefined ? undefined : formatFromPath(file)) ?? 'yaml';
  const warn = (path: PathSegment[], message: string): void =>
    options.onWarning?.(formatIssue({ file, path: formatPath(path), message }));

  const raw = parseConfigSyntax(text, { ...options, format }) ?? {};
  if (!isPlainObject(raw)) {
    throw new ConfigError([
      {
        file,
        path: '',
        kind: 'schema',
        message: `expected an object of settings at the top level, got ${describe(raw)}`,
      },
    ]);
  }

  // Client-only top-level keys are removed before interpolation: they are not ours to interpret.
  const top: Record<string, unknown> = { ...raw };
  delete top.$schema;
  // `servers:` with every entry commented out parses as null: treat an empty section as absent.
  // `x-…` keys are extension fields (as in Docker Compose), a home for YAML anchors: ignored.
  for (const [key, value] of Object.entries(top)) if (value === null || key.startsWith('x-')) delete top[key];
  if ('inputs' in top) {
    warn(['inputs'], 'ignored: VS Code input prompts are not supported; use ${VAR} environment variables instead');
    delete top.inputs;
  }
  if ('mcpServers' in top) {
    const known = new Set(Object.keys(SwitchboardConfigInput.shape));
    for (const key of Object.keys(top)) {
      if (known.has(key)) continue;
      warn([key], 'ignored: not a Switchboard setting (allowed beside mcpServers in a client config file)');
      delete top[key];
    }
  }

  const env = options.env ?? process.env;
  const interpolated = interpolateTree(top, env);
  const doc = interpolated.value;
  for (const path of interpolated.substitutedPaths) coerceScalar(doc, path);

  const found: (RawIssue & { kind: ConfigIssueKind })[] = interpolated.issues.map((i) => ({
    ...i,
    kind: 'interpolation',
  }));

  const result = SwitchboardConfigInput.safeParse(doc);
  if (!result.success) {
    const schemaIssues: RawIssue[] = [];
    for (const issue of result.error.issues) flattenZodIssue(issue, [], SwitchboardConfigInput, doc, schemaIssues);
    for (const r of schemaIssues) {
      // A value whose interpolation failed is already reported; its schema error would be noise.
      if (interpolated.issues.some((i) => isPrefix(i.path, r.path))) continue;
      found.push({ ...r, kind: 'schema' });
    }
  }

  const refs = checkReferences(doc);
  for (const r of refs.issues) found.push({ ...r, kind: 'reference' });
  for (const w of refs.warnings) warn(w.path, w.message);

  // Report in the order of the file, whichever stage found the problem.
  const order = documentOrder(doc);
  const issues: ConfigIssue[] = found
    .map((r, i) => ({ r, i, at: orderOf(order, r.path) }))
    .sort((a, b) => a.at - b.at || a.i - b.i)
    .map(({ r }) => ({ file, path: formatPath(r.path), message: r.message, kind: r.kind }));

  if (!result.success && issues.length === 0) {
    issues.push({ file, path: '', kind: 'schema', message: result.error.message });
  }
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  const config = buildConfig(result.data, file === undefined ? undefined : resolve(file));
  config.interpolated = interpolatedVariables(interpolated.references);
  return config;
}
// ---------------------------------------------------------------------------------------------
// Assembly

function buildConfig(parsed: z.output<typeof SwitchboardConfigInput>, source: string | undefined): SwitchboardConfig {
  const { servers, mcpServers, ...rest } = parsed;
  const baseDir = source === undefined ? undefined : dirname(source);
  const merged: SwitchboardConfig['servers'] = {};
  for (const [name, server] of [...Object.entries(servers), ...Object.entries(mcpServers)]) {
    if (server.disabled === true || server.enabled === false) continue;
    merged[name] =
      baseDir !== undefined && 'command' in server && server.cwd !== undefined && !isAbsolute(server.cwd)
        ? { ...server, cwd: resolve(baseDir, server.cwd) }
        : server;
  }

  const virtualServers: Record<string, VirtualServer> = {};
  for (const [name, vs] of Object.entries(rest.virtualServers)) {
    const namespacing = namespacingOf(rest, vs);
    virtualServers[name] = Array.isArray(vs.servers)
      ? { ...vs, namespacing, servers: vs.servers.filter((m) => m in merged) }
      : { ...vs, namespacing, servers: Object.fromEntries(Object.entries(vs.servers).filter(([m]) => m in merged)) };
  }

  const config: SwitchboardConfig = { ...rest, namespacing: namespacingOf(rest), servers: merged, virtualServers };
  if (baseDir !== undefined && config.dataDir !== undefined && !isAbsolute(config.dataDir)) {
    config.dataDir = resolve(baseDir, config.dataDir);
  }
  if (source !== undefined) config.source = source;
  return config;
}
