import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importClientConfig, importClientConfigFile } from '../../../src/config/import.js';
import { ConfigError, loadConfigFile, parseConfigText } from '../../../src/config/load.js';

const CLAUDE = JSON.stringify({
  globalShortcut: 'Ctrl+Space',
  mcpServers: {
    everything: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'] },
    github: {
      command: 'docker',
      args: ['run', '-i', '--rm', '-e', 'GITHUB_PERSONAL_ACCESS_TOKEN', 'ghcr.io/github/github-mcp-server'],
      env: { GITHUB_PERSONAL_ACCESS_TOKEN: '${GITHUB_TOKEN}' },
    },
    paused: { command: 'node', args: ['x.js'], disabled: true },
    remote: { url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer ${API_KEY}' } },
  },
});

describe('importClientConfig', () => {
  const env = { GITHUB_TOKEN: 'ghp_x', API_KEY: 'k' };

  it('round-trips a Claude Desktop file: the YAML loads to the same servers as the original', () => {
    const result = importClientConfig(CLAUDE, { path: 'claude_desktop_config.json', env });
    expect(result.shape).toBe('mcpServers');
    expect(result.warnings).toEqual([]);
    const fromYaml = parseConfigText(result.yaml, { format: 'yaml', env });
    const fromClaude = parseConfigText(CLAUDE, { format: 'json', env });
    expect(fromYaml.servers).toEqual(fromClaude.servers);
    expect(Object.keys(fromYaml.servers)).toEqual(['everything', 'github', 'remote']);
  });

  it('keeps env, args and headers verbatim, ${VAR} references included, under a header comment', () => {
    const { yaml } = importClientConfig(CLAUDE, { path: 'claude_desktop_config.json', env });
    expect(
      yaml.startsWith('# Switchboard configuration imported by `switchboard import` from claude_desktop_config.json'),
    ).toBe(true);
    expect(yaml).toContain('GITHUB_PERSONAL_ACCESS_TOKEN: ${GITHUB_TOKEN}');
    expect(yaml).toContain('Authorization: Bearer ${API_KEY}');
    expect(yaml).toContain('disabled: true');
    expect(yaml).not.toContain('globalShortcut');
  });

  it('maps VS Code type http to url + transport streamable-http, sse to transport sse', () => {
    const vscode = `{
      "inputs": [{ "type": "promptString", "id": "key", "password": true }],
      "servers": {
        "api": { "type": "http", "url": "https://api.example.com/mcp", "headers": { "X-Key": "\${env:API_KEY}" } },
        "events": { "type": "sse", "url": "https://events.example.com/v1" },
        "local": { "type": "stdio", "command": "node", "args": ["server.js"], "envFile": ".env" }
      }
    }`;
    const r = importClientConfig(vscode, { path: 'mcp.json', env: { API_KEY: 'k' } });
    expect(r.shape).toBe('vscode');
    expect(r.servers).toEqual({
      api: { url: 'https://api.example.com/mcp', transport: 'streamable-http', headers: { 'X-Key': '${API_KEY}' } },
      events: { url: 'https://events.example.com/v1', transport: 'sse' },
      local: { command: 'node', args: ['server.js'] },
    });
    expect(r.warnings.map((w) => w.split(': ')[1])).toEqual(['inputs', 'servers.local.envFile']);
    expect(parseConfigText(r.yaml, { env: { API_KEY: 'k' } }).servers.api).toMatchObject({
      headers: { 'X-Key': 'k' },
    });
  });

  it('warns about client-side variables and names that are not valid, and renames them', () => {
    const r = importClientConfig(
      JSON.stringify({
        servers: { 'my server': { type: 'http', url: 'https://a.example/mcp', headers: { A: '${input:key}' } } },
      }),
      { env: {} },
    );
    expect(Object.keys(r.servers)).toEqual(['my-server']);
    expect(r.warnings.join('\n')).toContain('renamed to "my-server"');
    expect(r.warnings.join('\n')).toContain(
      'imported config: servers.my-server.headers.A: "${input:key}" is a client-side (VS Code) variable',
    );
  });

  it('reports problems the result would have when loaded, such as unset variables', () => {
    const r = importClientConfig(CLAUDE, { env: {} });
    expect(r.warnings.filter((w) => w.includes('is not set'))).toHaveLength(2);
  });

  it('rejects a file that is not a client configuration', () => {
    expect(() => importClientConfig('{"editor.fontSize": 12}')).toThrow(ConfigError);
    expect(() => importClientConfig('{ nope')).toThrow(ConfigError);
  });

  describe('from a file', () => {
    let dir: string;
    beforeEach(async () => {
      dir = await mkdtemp(join(tmpdir(), 'swb-import-'));
    });
    afterEach(async () => {
      await rm(dir, { recursive: true, force: true });
    });

    it('imports the bundled Claude Desktop example, and the written YAML loads', async () => {
      const r = await importClientConfigFile('examples/claude_desktop_config.json', { env: {} });
      expect(Object.keys(r.servers)).toEqual(['everything', 'filesystem']);
      const out = join(dir, 'switchboard.yaml');
      await writeFile(out, r.yaml);
      const loaded = await loadConfigFile(out, { env: {} });
      const original = await loadConfigFile('examples/claude_desktop_config.json', { env: {} });
      expect(loaded.servers).toEqual(original.servers);
      expect(await readFile(out, 'utf8')).toContain('@modelcontextprotocol/server-filesystem');
    });
  });
});
