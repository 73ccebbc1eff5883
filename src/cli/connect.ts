/**
 * `switchboard connect CLIENT`: writes the gateway's entry into an MCP client's configuration
 * file — Claude Desktop, Claude Code, Cursor or VS Code — keeping every other entry. Dry run by
 * default (prints the file it would write); `--write` writes it, after copying the old file to
 * `FILE.bak-YYYYMMDDHHMMSS`.
 *
 * Entry shapes, per client:
 * - `claude-desktop` (`claude_desktop_config.json`, `mcpServers`): its configuration file starts
 *   local commands only, so the entry runs this installation's `switchboard stdio --url URL`
 *   bridge with the current Node.js; a token goes in the entry's `env` (`SWITCHBOARD_TOKEN`).
 * - `claude-code` (project `.mcp.json`, `mcpServers`): `{type: "http", url, headers}`.
 * - `cursor` (`~/.cursor/mcp.json`, `mcpServers`): `{url, headers}`.
 * - `vscode` (workspace `.vscode/mcp.json`, `servers`): `{type: "http", url, headers}`.
 *
 * @module
 */
import { copyFile, mkdir, readFile, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { packageRoot } from '../package-root.js';
import { processOutput, type CliOutput } from './check.js';

/** The clients `connect` knows. */
export const CONNECT_CLIENTS = ['claude-desktop', 'claude-code', 'cursor', 'vscode'] as const;
/** One of {@link CONNECT_CLIENTS}. */
export type ConnectClient = (typeof CONNECT_CLIENTS)[number];

/** Options of `switchboard connect`. */
export interface ConnectOptions {
  client: ConnectClient;
  /** The gateway's MCP URL. Default `http://127.0.0.1:8080/mcp`. */
  url?: string | undefined;
  /** The entry's name in the client's file. Default `switchboard`. */
  name?: string | undefined;
  /** An API token sent as `Authorization: Bearer`; it is written into the file in clear. */
  token?: string | undefined;
  /** The file to change. Default: the client's usual file ({@link defaultConfigFile}). */
  file?: string | undefined;
  /** Write the file (default: print what would be written). */
  write?: boolean | undefined;
  /** Replace an existing entry of that name. */
  force?: boolean | undefined;
  /** Clock for the backup's name (tests). Default `new Date()`. */
  now?: () => Date;
}

/**
 * The usual configuration file of `client`: Claude Desktop's per platform, `~/.cursor/mcp.json`,
 * and for Claude Code and VS Code the project's file in `cwd`.
 */
export function defaultConfigFile(
  client: ConnectClient,
  platform: NodeJS.Platform = process.platform,
  home: string = homedir(),
  cwd: string = process.cwd(),
  env: NodeJS.ProcessEnv = process.env,
): string {
  switch (client) {
    case 'claude-desktop':
      if (platform === 'darwin')
        return join(home, 'Library', 'Application Support', 'Claude', 'claude_desktop_config.json');
      if (platform === 'win32')
        return join(env.APPDATA ?? join(home, 'AppData', 'Roaming'), 'Claude', 'claude_desktop_config.json');
      return join(env.XDG_CONFIG_HOME ?? join(home, '.config'), 'Claude', 'claude_desktop_config.json');
    case 'claude-code':
      return join(cwd, '.mcp.json');
    case 'cursor':
      return join(home, '.cursor', 'mcp.json');
    case 'vscode':
      return join(cwd, '.vscode', 'mcp.json');
  }
}

/** The entry `connect` writes for `client`, and the top-level key it goes under. */
export function clientEntry(
  client: ConnectClient,
  url: string,
  token: string | undefined,
): { key: 'mcpServers' | 'servers'; entry: Record<string, unknown> } {
  const headers = token === undefined ? undefined : { Authorization: `Bearer ${token}` };
  switch (client) {
    case 'claude-desktop':
      return {
        key: 'mcpServers',
        entry: {
          command: process.execPath,
          args: [join(packageRoot(), 'dist', 'bin', 'switchboard.js'), 'stdio', '--url', url],
          ...(token === undefined ? {} : { env: { SWITCHBOARD_TOKEN: token } }),
        },
      };
    case 'claude-code':
      return { key: 'mcpServers', entry: { type: 'http', url, ...(headers ? { headers } : {}) } };
    case 'cursor':
      return { key: 'mcpServers', entry: { url, ...(headers ? { headers } : {}) } };
    case 'vscode':
      return { key: 'servers', entry: { type: 'http', url, ...(headers ? { headers } : {}) } };
  }
}

/**
 * Adds the gateway's entry to the client's file (see the module comment).
 *
 * @returns the exit code: 0 when written or printed, 1 when the file is not a JSON object, the
 *   entry exists without `force`, or the URL is not an http(s) URL
 */
export async function runConnect(options: ConnectOptions, output: CliOutput = processOutput): Promise<number> {
  const url = options.url ?? 'http://127.0.0.1:8080/mcp';
  if (!/^https?:\/\/[^/]+/.test(url)) {
    output.err(`--url must be the gateway's http(s) MCP URL, e.g. http://127.0.0.1:8080/mcp (got "${url}")`);
    return 1;
  }
  const name = options.name ?? 'switchboard';
  const file = resolve(options.file ?? defaultConfigFile(options.client));
  let existing: string | undefined;
  try {
    existing = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
  }
  let doc: Record<string, unknown> = {};
  if (existing !== undefined && existing.trim() !== '') {
    try {
      const parsed = JSON.parse(existing) as unknown;
      if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not a JSON object');
      doc = parsed as Record<string, unknown>;
    } catch (err) {
      output.err(
        `${file} is not plain JSON (${err instanceof Error ? err.message : String(err)}); comments are not kept by this command — add the entry by hand (see docs/clients.md)`,
      );
      return 1;
    }
  }
  const { key, entry } = clientEntry(options.client, url, options.token);
  const section = doc[key];
  if (section !== undefined && (typeof section !== 'object' || section === null || Array.isArray(section))) {
    output.err(`${file}: "${key}" is not an object`);
    return 1;
  }
  const servers = { ...((section as Record<string, unknown> | undefined) ?? {}) };
  if (servers[name] !== undefined && !options.force) {
    output.err(`${file} already has "${name}" under "${key}"; --force replaces it, --name picks another name`);
    return 1;
  }
  servers[name] = entry;
  const text = `${JSON.stringify({ ...doc, [key]: servers }, null, 2)}\n`;
  if (!options.write) {
    output.out(text.trimEnd());
    output.err(
      `dry run: ${file} is unchanged; run again with --write to write it${existing === undefined ? ' (it does not exist yet)' : ''}`,
    );
    if (options.token !== undefined) output.err('note: the token is written in clear into that file');
    return 0;
  }
  await mkdir(dirname(file), { recursive: true });
  if (existing !== undefined) {
    const backup = `${file}.bak-${stamp((options.now ?? (() => new Date()))())}`;
    await copyFile(file, backup);
    output.err(`backed up ${file} to ${backup}`);
  }
  await writeFile(file, text, { mode: options.token === undefined ? 0o644 : 0o600 });
  output.out(`wrote "${name}" to ${file}; restart ${options.client} (or reload its MCP servers) to connect`);
  return 0;
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:T]/g, '').slice(0, 14);
}
