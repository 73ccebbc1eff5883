/**
 * `switchboard connect`: the entry per client, merged into an existing file (other entries
 * kept), dry run by default, a backup before writing, and refusals that change nothing.
 */
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfigFile, runConnect } from '../../../src/cli/connect.js';
import { captureOutput } from '../../helpers/cli-output.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'swb-connect-'));
  dirs.push(d);
  return d;
}

describe('switchboard connect', () => {
  it('prints the merged file without writing it by default', async () => {
    const dir = await tempDir();
    const file = join(dir, 'mcp.json');
    const before = JSON.stringify({ mcpServers: { other: { url: 'https://x.example/mcp' } }, theme: 'dark' });
    await writeFile(file, before);
    const c = captureOutput();
    expect(await runConnect({ client: 'cursor', file, url: 'http://127.0.0.1:9000/mcp' }, c.output)).toBe(0);
    expect(JSON.parse(c.out.join('\n'))).toEqual({
      mcpServers: { other: { url: 'https://x.example/mcp' }, switchboard: { url: 'http://127.0.0.1:9000/mcp' } },
      theme: 'dark',
    });
    expect(c.err[0]).toContain('dry run');
    expect(await readFile(file, 'utf8')).toBe(before);
  });

  it('writes each client its own shape, with a backup of the old file', async () => {
    const dir = await tempDir();
    const vscode = join(dir, '.vscode', 'mcp.json');
    const c = captureOutput();
    // A missing file (and folder) is created.
    expect(await runConnect({ client: 'vscode', file: vscode, token: 'tok', write: true }, c.output)).toBe(0);
    expect(JSON.parse(await readFile(vscode, 'utf8'))).toEqual({
      servers: {
        switchboard: { type: 'http', url: 'http://127.0.0.1:8080/mcp', headers: { Authorization: 'Bearer tok' } },
      },
    });
    const code = join(dir, '.mcp.json');
    await writeFile(code, '{"mcpServers":{}}');
    const now = () => new Date('2026-12-05T10:11:12Z');
    expect(await runConnect({ client: 'claude-code', file: code, write: true, now }, c.output)).toBe(0);
    expect(JSON.parse(await readFile(code, 'utf8'))).toEqual({
      mcpServers: { switchboard: { type: 'http', url: 'http://127.0.0.1:8080/mcp' } },
    });
    expect(await readFile(`${code}.bak-20261205101112`, 'utf8')).toBe('{"mcpServers":{}}');

    const desktop = join(dir, 'claude_desktop_config.json');
    expect(await runConnect({ client: 'claude-desktop', file: desktop, token: 't2', write: true }, c.output)).toBe(0);
    const entry = (
      JSON.parse(await readFile(desktop, 'utf8')) as {
        mcpServers: Record<string, { command: string; args: string[]; env: unknown }>;
      }
    ).mcpServers.switchboard!;
    expect(entry.command).toBe(process.execPath);
    expect(entry.args.slice(-3)).toEqual(['stdio', '--url', 'http://127.0.0.1:8080/mcp']);
    expect(entry.args[0]).toMatch(/dist[/\\]bin[/\\]switchboard\.js$/);
    expect(entry.env).toEqual({ SWITCHBOARD_TOKEN: 't2' });
  });

  it('refuses an existing entry without --force, a file that is not plain JSON, and a bad URL, changing nothing', async () => {
    const dir = await tempDir();
    const file = join(dir, 'mcp.json');
    await writeFile(file, '{"mcpServers":{"switchboard":{"url":"http://old/mcp"}}}');
    const c = captureOutput();
    expect(await runConnect({ client: 'cursor', file, write: true }, c.output)).toBe(1);
    expect(c.err.at(-1)).toContain('--force');
    expect(
      await runConnect({ client: 'cursor', file, write: true, force: true, now: () => new Date(0) }, c.output),
    ).toBe(0);
    expect(JSON.parse(await readFile(file, 'utf8'))).toEqual({
      mcpServers: { switchboard: { url: 'http://127.0.0.1:8080/mcp' } },
    });

    const commented = join(dir, 'commented.json');
    await writeFile(commented, '{ // my servers\n "servers": {} }');
    expect(await runConnect({ client: 'vscode', file: commented, write: true }, c.output)).toBe(1);
    expect(c.err.at(-1)).toContain('is not plain JSON');
    expect(await readFile(commented, 'utf8')).toBe('{ // my servers\n "servers": {} }');
    expect(await runConnect({ client: 'vscode', file: commented, url: 'ftp://x' }, c.output)).toBe(1);
    expect((await readdir(dir)).sort()).toEqual(['commented.json', 'mcp.json', 'mcp.json.bak-19700101000000']);
  });

  it("knows each client's usual file", () => {
    expect(defaultConfigFile('claude-desktop', 'darwin', '/home/u')).toBe(
      '/home/u/Library/Application Support/Claude/claude_desktop_config.json',
    );
    expect(defaultConfigFile('claude-desktop', 'linux', '/home/u', '/w', {})).toBe(
      '/home/u/.config/Claude/claude_desktop_config.json',
    );
    expect(defaultConfigFile('cursor', 'linux', '/home/u')).toBe('/home/u/.cursor/mcp.json');
    expect(defaultConfigFile('vscode', 'linux', '/home/u', '/w')).toBe('/w/.vscode/mcp.json');
    expect(defaultConfigFile('claude-code', 'linux', '/home/u', '/w')).toBe('/w/.mcp.json');
  });
});
