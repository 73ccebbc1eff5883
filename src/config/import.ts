/**
 * `switchboard import`: converts an MCP client's configuration file into Switchboard YAML.
 *
 * Recognised shapes:
 * - Claude Desktop / Cursor / Windsurf: `{ "mcpServers": { name: { command, args, env } | { url, headers } } }`
 * - VS Code `.vscode/mcp.json`: `{ "servers": { name: { type: "stdio" | "http" | "sse", … } }, "inputs": […] }`
 * - VS Code `settings.json`: the same under `"mcp": { "servers": … }`.
 *
 * `command`, `args`, `env`, `cwd`, `url` and `headers` are copied verbatim, `${VAR}` references
 * included (Switchboard interpolates them when it loads the file). VS Code's `${env:VAR}` becomes
 * `${VAR}`, which means the same. Anything Switchboard cannot express is dropped with a warning.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { Document } from 'yaml';
import type { EnvSource } from './interpolate.js';
import { ConfigError, formatIssue, formatPath, parseConfigSyntax, parseConfigText } from './load.js';
import { NAME_RE } from './schema.js';

/** Which client shape the input had. */
export type ClientConfigShape = 'mcpServers' | 'vscode';

/** One imported server entry, in Switchboard's vocabulary (stdio or remote). */
export type ImportedServer = Record<string, unknown>;

/** Result of {@link importClientConfig}. */
export interface ImportResult {
  /** Switchboard YAML, starting with a comment header that names the source file. */
  yaml: string;
  /** The imported servers, name → entry, in input order (names made valid if they were not). */
  servers: Record<string, ImportedServer>;
  /** The client shape that was recognised. */
  shape: ClientConfigShape;
  /**
   * Everything that was not carried over exactly, one line each (`file: path: message`), plus the
   * problems the generated configuration would have when loaded now (for example an environment
   * variable that is not set).
   */
  warnings: string[];
}

/** Options for {@link importClientConfig}. */
export interface ImportOptions {
  /** The input file's name, shown in warnings and in the YAML header. */
  path?: string;
  /** Variables used to check the generated configuration. Default `process.env`. */
  env?: EnvSource;
}

const STDIO_KEYS = ['command', 'args', 'env', 'cwd'] as const;
const REMOTE_KEYS = ['url', 'headers'] as const;
const COMMON_KEYS = ['description', 'disabled', 'enabled'] as const;

/**
 * Converts a client configuration (JSON text, comments allowed) to Switchboard YAML.
 *
 * @throws {@link ConfigError} (`SWB_ERR_CONFIG_INVALID`) when the text does not parse, or has
 *   neither `mcpServers` nor `servers` (nor `mcp.servers`) holding an object.
 */
export function importClientConfig(text: string, options: ImportOptions = {}): ImportResult {
  const file = options.path;
  const warnings: string[] = [];
  const warn = (path: (string | number)[], message: string): void => {
    warnings.push(formatIssue({ file, path: formatPath(path), message }));
  };

  const tree = parseConfigSyntax(text, { path: file, format: 'json', onWarning: (w) => warnings.push(w) });
  const located = locateServers(tree);
  if (located === undefined) {
    throw new ConfigError([
      {
        file,
        path: '',
        kind: 'schema',
        message:
          'not an MCP client configuration: expected "mcpServers" (Claude Desktop, Cursor) or "servers" (VS Code mcp.json) holding an object',
      },
    ]);
  }
  const { shape, entries, base } = located;
  if (shape === 'vscode' && isObject(tree) && 'inputs' in tree) {
    warn(['inputs'], 'not imported: VS Code input prompts have no Switchboard equivalent; use environment variables');
  }

  const servers: Record<string, ImportedServer> = {};
  for (const [rawName, entry] of Object.entries(entries)) {
    const path = [...base, rawName];
    const name = uniqueName(validName(rawName), servers);
    if (name !== rawName) warn(path, `renamed to ${JSON.stringify(name)}: names may only use [A-Za-z0-9_.-]`);
    if (!isObject(entry)) {
      warn(path, 'skipped: expected an object');
      continue;
    }
    const server = convertEntry(entry, path, warn);
    if (server !== undefined) servers[name] = server;
  }
  if (Object.keys(servers).length === 0) warn(base, 'no servers to import');

  const yaml = renderYaml(servers, file, shape);

  // Report now what `switchboard check` would report, so nothing surprises the user later.
  try {
    parseConfigText(yaml, { format: 'yaml', env: options.env ?? process.env });
  } catch (e) {
    if (!(e instanceof ConfigError)) throw e;
    for (const issue of e.issues) {
      warnings.push(formatIssue({ file: 'imported config', path: issue.path, message: issue.message }));
    }
  }
  return { yaml, servers, shape, warnings };
}

/**
 * Reads a client configuration file and converts it, see {@link importClientConfig}.
 *
 * @throws {@link ConfigError} with code `SWB_ERR_CONFIG_READ` if the file cannot be read, or as
 *   {@link importClientConfig} does.
 */
export async function importClientConfigFile(
  path: string,
  options: Omit<ImportOptions, 'path'> = {},
): Promise<ImportResult> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const reason = code === 'ENOENT' ? 'no such file' : (cause as Error).message;
    throw new ConfigError([{ file: path, path: '', kind: 'read', message: `cannot read the file: ${reason}` }], {
      code: 'SWB_ERR_CONFIG_READ',
      cause,
    });
  }
  return importClientConfig(text, { ...options, path });
}

function locateServers(
  tree: unknown,
): { shape: ClientConfigShape; entries: Record<string, unknown>; base: string[] } | undefined {
  if (!isObject(tree)) return undefined;
  if (isObject(tree.mcpServers)) return { shape: 'mcpServers', entries: tree.mcpServers, base: ['mcpServers'] };
  if (isObject(tree.servers)) return { shape: 'vscode', entries: tree.servers, base: ['servers'] };
  if (isObject(tree.mcp) && isObject(tree.mcp.servers)) {
    return { shape: 'vscode', entries: tree.mcp.servers, base: ['mcp', 'servers'] };
  }
  return undefined;
}

function convertEntry(
  entry: Record<string, unknown>,
  path: (string | number)[],
  warn: (path: (string | number)[], message: string) => void,
): ImportedServer | undefined {
  const type = typeof entry.type === 'string' ? entry.type : undefined;
  // Windsurf writes `serverUrl`; everyone else `url`.
  const url = entry.url ?? entry.serverUrl;
  const isRemote = url !== undefined && entry.command === undefined;
  const out: ImportedServer = {};
  const copied = new Set<string>(['type', 'serverUrl', 'url']);

  if (isRemote) {
    out.url = strings(url);
    if (type === 'sse') out.transport = 'sse';
    else if (type === 'http' || type === 'streamable-http' || type === 'streamableHttp')
      out.transport = 'streamable-http';
    else if (type === undefined && typeof url === 'string' && /\/sse\/?(\?.*)?$/.test(url)) {
      out.transport = 'sse';
      warn(path, 'transport set to "sse" because the URL ends in /sse; change it if the server speaks Streamable HTTP');
    } else if (type !== undefined)
      warn([...path, 'type'], `unknown type ${JSON.stringify(type)}; using Streamable HTTP`);
    for (const key of REMOTE_KEYS) {
      copied.add(key);
      if (key !== 'url' && entry[key] !== undefined) out[key] = strings(entry[key]);
    }
  } else if (entry.command !== undefined) {
    if (type !== undefined && type !== 'stdio') {
      warn([...path, 'type'], `type ${JSON.stringify(type)} ignored: the entry has a command, so it runs over stdio`);
    }
    for (const key of STDIO_KEYS) {
      copied.add(key);
      if (entry[key] !== undefined) out[key] = strings(entry[key]);
    }
  } else {
    warn(path, 'skipped: neither "command" (stdio) nor "url" (remote)');
    return undefined;
  }

  for (const key of COMMON_KEYS) {
    copied.add(key);
    if (entry[key] !== undefined) out[key] = entry[key];
  }
  for (const key of Object.keys(entry)) {
    if (copied.has(key)) continue;
    const why =
      key === 'envFile'
        ? 'Switchboard does not read env files; list the variables under env'
        : 'no Switchboard equivalent';
    warn([...path, key], `not imported: ${why}`);
  }
  return out;
}

/**
 * Copies a JSON value, rewriting VS Code `${env:X}` to `${X}` (same meaning). Other references are
 * kept verbatim; the ones Switchboard cannot resolve are reported by the check of the result.
 */
function strings(value: unknown): unknown {
  if (typeof value === 'string') return value.replace(/\$\{env:([A-Za-z_][A-Za-z0-9_]*)\}/g, '${$1}');
  if (Array.isArray(value)) return value.map((v) => strings(v));
  if (isObject(value)) return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, strings(v)]));
  return value;
}

function validName(name: string): string {
  if (NAME_RE.test(name)) return name;
  const cleaned = name
    .replace(/[^A-Za-z0-9_.-]+/g, '-')
    .replace(/^[^A-Za-z0-9]+/, '')
    .slice(0, 64);
  return cleaned === '' ? 'server' : cleaned;
}

function uniqueName(name: string, taken: Record<string, unknown>): string {
  if (!(name in taken)) return name;
  for (let i = 2; ; i++) {
    const suffix = `-${i}`;
    const candidate = name.slice(0, 64 - suffix.length) + suffix;
    if (!(candidate in taken)) return candidate;
  }
}

function renderYaml(
  servers: Record<string, ImportedServer>,
  file: string | undefined,
  shape: ClientConfigShape,
): string {
  const doc = new Document({ servers });
  const from = shape === 'vscode' ? 'VS Code' : 'Claude Desktop / Cursor';
  doc.commentBefore = [
    ` Switchboard configuration imported by \`switchboard import\` from ${file ?? 'standard input'} (${from} format).`,
    ' Check it:  switchboard check --config <this file>',
    ' Serve it:  switchboard serve --config <this file>',
    ' ${VAR} and ${VAR:-default} in any value read environment variables; reference: docs/configuration.md',
    '',
    ' listen:            # default 127.0.0.1:8080',
    '   host: 127.0.0.1',
    '   port: 8080',
  ].join('\n');
  return doc.toString({ lineWidth: 0 });
}

function isObject(v: unknown): v is Record<string, unknown> {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}
