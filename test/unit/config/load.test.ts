import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  ConfigError,
  defaultConfigPath,
  formatPath,
  loadConfigFile,
  parseConfigText,
  resolveConfigPath,
  type ConfigIssue,
} from '../../../src/config/load.js';
import {
  isStdioServer,
  parseDuration,
  parseSize,
  remoteTransport,
  type RemoteServer,
} from '../../../src/config/schema.js';

/** Runs `fn`, expecting a ConfigError, and returns it. */
function configError(fn: () => unknown): ConfigError {
  try {
    fn();
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

async function configErrorAsync(p: Promise<unknown>): Promise<ConfigError> {
  try {
    await p;
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const paths = (e: ConfigError): string[] => e.issues.map((i: ConfigIssue) => i.path);

const YAML_TEXT = `
listen:
  host: 0.0.0.0
  port: 9090
sessions:
  idleTimeout: 5m
http:
  maxBodyBytes: 1mb
servers:
  everything:
    command: npx
    args: ["-y", "@modelcontextprotocol/server-everything"]
    env:
      DEBUG: "1"
    timeout: 30s
    tools:
      deny: ["long*"]
  remote:
    url: https://mcp.example.com/mcp
    headers:
      Authorization: Bearer abc
virtualServers:
  demo:
    servers: [everything, remote]
`;

const JSON_TEXT = JSON.stringify({
  listen: { host: '0.0.0.0', port: 9090 },
  sessions: { idleTimeout: '5m' },
  http: { maxBodyBytes: '1mb' },
  servers: {
    everything: {
      command: 'npx',
      args: ['-y', '@modelcontextprotocol/server-everything'],
      env: { DEBUG: '1' },
      timeout: '30s',
      tools: { deny: ['long*'] },
    },
    remote: { url: 'https://mcp.example.com/mcp', headers: { Authorization: 'Bearer abc' } },
  },
  virtualServers: { demo: { servers: ['everything', 'remote'] } },
});

const TOML_TEXT = `
[listen]
host = "0.0.0.0"
port = 9090

[sessions]
idleTimeout = "5m"

[http]
maxBodyBytes = "1mb"

[servers.everything]
command = "npx"
args = ["-y", "@modelcontextprotocol/server-everything"]
env = { DEBUG = "1" }
timeout = "30s"
tools = { deny = ["long*"] }

[servers.remote]
url = "https://mcp.example.com/mcp"
headers = { Authorization = "Bearer abc" }

[virtualServers.demo]
servers = ["everything", "remote"]
`;

describe('parseConfigText', () => {
  it('gives the same config from YAML, JSON and TOML', () => {
    const fromYaml = parseConfigText(YAML_TEXT, { format: 'yaml' });
    const fromJson = parseConfigText(JSON_TEXT, { format: 'json' });
    const fromToml = parseConfigText(TOML_TEXT, { format: 'toml' });
    expect(fromJson).toEqual(fromYaml);
    expect(fromToml).toEqual(fromYaml);
    expect(fromYaml.listen).toEqual({ host: '0.0.0.0', port: 9090 });
    expect(Object.keys(fromYaml.servers)).toEqual(['everything', 'remote']);
  });

  it('records which variables interpolation read, per server entry and elsewhere', () => {
    const text = [
      'auth: { mode: oauth, oauth: { issuer: https://id.example.com, clientSecret: "${OIDC_SECRET}" } }',
      'servers:',
      '  gh: { url: https://x.example.com/mcp, headers: { Authorization: "Bearer ${GH_PAT}" } }',
      'mcpServers:',
      '  local: { command: x, env: { KEY: "${LOCAL_KEY}" }, args: ["${GH_PAT}"] }',
    ].join('\n');
    const c = parseConfigText(text, { env: { OIDC_SECRET: 'o', GH_PAT: 'p', LOCAL_KEY: 'k' } });
    expect(c.interpolated).toEqual({
      servers: { gh: ['GH_PAT'], local: ['LOCAL_KEY', 'GH_PAT'] },
      other: ['OIDC_SECRET'],
    });
  });

  it('picks the format from the file extension', () => {
    expect(parseConfigText(TOML_TEXT, { path: 'x/switchboard.toml' }).listen.port).toBe(9090);
    expect(parseConfigText(JSON_TEXT, { path: 'x/switchboard.json' }).listen.port).toBe(9090);
  });

  it('fills documented defaults', () => {
    const c = parseConfigText('servers:\n  a:\n    command: x\n');
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    expect(c.namespaceSeparator).toBe('__');
    expect(c.http.maxBodyBytes).toBe(4 * 1024 * 1024);
    expect(c.sessions.idleTimeout).toBe(30 * 60_000);
    const a = c.servers.a;
    expect(a && isStdioServer(a) ? [a.args, a.env, a.isolation, a.maxProcesses] : undefined).toEqual([
      [],
      {},
      'shared',
      32,
    ]);
  });

  it('supports YAML anchors and merge keys, with x- top-level keys ignored', () => {
    const c = parseConfigText(
      'x-base: &base { command: node, idleTimeout: 5m }\nservers:\n  a: { <<: *base, args: [a.js] }\n  b: { <<: *base, args: [b.js] }\n',
    );
    expect(c.servers.a).toMatchObject({ command: 'node', idleTimeout: 300_000, args: ['a.js'] });
    expect(c.servers.b).toMatchObject({ command: 'node', args: ['b.js'] });
  });

  it('treats an empty section as absent', () => {
    expect(parseConfigText('servers:\n  # a: { command: x }\nvirtualServers:\n').servers).toEqual({});
  });

  it('treats an empty file as an empty configuration', () => {
    expect(parseConfigText('', { format: 'yaml' }).servers).toEqual({});
    expect(parseConfigText('  \n', { format: 'json' }).servers).toEqual({});
  });

  it('converts durations to milliseconds and sizes to bytes', () => {
    const c = parseConfigText(YAML_TEXT);
    expect(c.sessions.idleTimeout).toBe(300_000);
    expect(c.http.maxBodyBytes).toBe(1024 * 1024);
    expect(c.servers.everything?.timeout).toBe(30_000);
    expect([parseDuration('500ms'), parseDuration('1.5s'), parseDuration('2h'), parseDuration(250)]).toEqual([
      500, 1500, 7_200_000, 250,
    ]);
    expect([parseDuration('soon'), parseDuration(-1)]).toEqual([undefined, undefined]);
    expect([parseSize('512kb'), parseSize('4MB'), parseSize(100), parseSize('lots')]).toEqual([
      524_288,
      4_194_304,
      100,
      undefined,
    ]);
  });

  it('reports a malformed duration or size with its path', () => {
    const e = configError(() =>
      parseConfigText('sessions: { idleTimeout: soon }\nhttp: { maxBodyBytes: true }\n', { path: 'c.yaml' }),
    );
    expect(paths(e)).toEqual(['sessions.idleTimeout', 'http.maxBodyBytes']);
    expect(e.issues.find((i) => i.path === 'sessions.idleTimeout')?.message).toContain('expected a duration');
  });

  it('accepts numbers and booleans where strings are expected in env, args and headers', () => {
    const c = parseConfigText(
      'servers:\n  a:\n    command: x\n    args: [--port, 3000]\n    env: { PORT: 3000, ON: true }\n',
    );
    expect(c.servers.a).toMatchObject({ args: ['--port', '3000'], env: { PORT: '3000', ON: 'true' } });
  });

  it('normalises the remote transport from type or transport', () => {
    const c = parseConfigText(
      'servers:\n  h: { url: "https://a.example/mcp", type: http }\n  s: { url: "https://a.example/sse", type: sse }\n  t: { url: "https://a.example/sse", transport: sse }\n',
    );
    expect(['h', 's', 't'].map((n) => remoteTransport(c.servers[n] as RemoteServer))).toEqual([
      'streamable-http',
      'sse',
      'sse',
    ]);
  });

  it('rejects a type that contradicts transport', () => {
    const e = configError(() =>
      parseConfigText('servers:\n  s: { url: "https://a.example/x", type: sse, transport: streamable-http }\n'),
    );
    expect(paths(e)).toEqual(['servers.s.transport']);
  });
});

describe('interpolation while loading', () => {
  it('interpolates before validation and reports an unset variable by its path', () => {
    const text =
      'servers:\n  gh:\n    url: https://api.example.com/mcp\n    headers:\n      Authorization: Bearer ${GH_TOKEN}\n';
    expect(parseConfigText(text, { env: { GH_TOKEN: 't0k' } }).servers.gh).toMatchObject({
      headers: { Authorization: 'Bearer t0k' },
    });
    const e = configError(() => parseConfigText(text, { path: 'c.yaml', env: {} }));
    expect(e.issues).toEqual([
      expect.objectContaining({ file: 'c.yaml', path: 'servers.gh.headers.Authorization', kind: 'interpolation' }),
    ]);
    expect(e.format()).toContain('c.yaml: servers.gh.headers.Authorization: environment variable GH_TOKEN is not set');
  });

  it('does not add a schema error for a value whose interpolation failed', () => {
    const e = configError(() => parseConfigText('servers:\n  r:\n    url: ${REMOTE_URL}\n', { env: {} }));
    expect(e.issues.map((i) => [i.path, i.kind])).toEqual([['servers.r.url', 'interpolation']]);
  });

  it('converts an interpolated value to a number or boolean where the schema wants one', () => {
    const text =
      'listen:\n  port: ${PORT:-8181}\nservers:\n  a: { command: x, enabled: "${A_ON:-true}", maxProcesses: "${MAXP}" }\n';
    const c = parseConfigText(text, { env: { MAXP: '4' } });
    expect(c.listen.port).toBe(8181);
    expect(c.servers.a).toMatchObject({ maxProcesses: 4 });
  });

  it('does not interpolate literal numbers or keys and keeps $${ as a literal', () => {
    const c = parseConfigText('servers:\n  a: { command: x, args: ["$${NOT_A_VAR}"] }\n', { env: {} });
    expect(c.servers.a).toMatchObject({ args: ['${NOT_A_VAR}'] });
  });
});

describe('problems are all reported at once', () => {
  const BAD = `
listen:
  port: "eighty"
servers:
  everything:
    command: 42
  remote:
    url: not-a-url
    headers:
      Authorization: Bearer \${UNSET_TOKEN}
  typo:
    comand: npx
    timeout: soon
virtualServers:
  demo:
    servers: [everything, nope]
`;

  it('throws one ConfigError listing every problem with file and path', () => {
    const e = configError(() => parseConfigText(BAD, { path: 'examples/bad.yaml', env: {} }));
    expect(e.code).toBe('SWB_ERR_CONFIG_INVALID');
    // In file order, whichever stage (interpolation, schema, references) found the problem.
    expect(paths(e)).toEqual([
      'listen.port',
      'servers.everything.command',
      'servers.remote.url',
      'servers.remote.headers.Authorization',
      'servers.typo',
      'servers.typo.comand',
      'servers.typo.timeout',
      'virtualServers.demo.servers[1]',
    ]);
    const lines = e.format().split('\n');
    expect(lines).toHaveLength(e.issues.length);
    for (const line of lines) expect(line.startsWith('examples/bad.yaml: ')).toBe(true);
    expect(lines).toContain('examples/bad.yaml: servers.everything.command: expected a string, got number');
    expect(e.format()).toContain('servers.typo.comand: unknown key (did you mean "command"?)');
    expect(e.message).toBe(e.format());
  });

  it('reports an unknown top-level key when the file has no mcpServers', () => {
    const e = configError(() => parseConfigText('listn: {}\nservers: {}\n'));
    expect(e.issues).toEqual([
      expect.objectContaining({ path: 'listn', message: 'unknown key (did you mean "listen"?)' }),
    ]);
  });

  it('quotes keys that are not identifiers in paths', () => {
    expect(formatPath(['servers', 'my.server', 'args', 0])).toBe('servers["my.server"].args[0]');
    expect(formatPath(['servers', 'git-hub', 'env', 'A_B'])).toBe('servers.git-hub.env.A_B');
  });

  it('reports syntax errors with file, line and column', () => {
    const yaml = configError(() => parseConfigText('servers:\n  a: [1, 2\n', { path: 'a.yaml' }));
    expect(yaml.issues[0]).toMatchObject({ kind: 'syntax', file: 'a.yaml', line: expect.any(Number) });
    const json = configError(() => parseConfigText('{\n  "servers": {\n    "a" 1\n  }\n}', { path: 'a.json' }));
    expect(json.issues[0]).toMatchObject({ kind: 'syntax', line: 3, column: 9 });
    expect(json.format()).toMatch(/^a\.json:3:9: invalid JSON: /);
    const toml = configError(() => parseConfigText('[servers.a]\ncommand = \n', { path: 'a.toml' }));
    expect(toml.issues[0]).toMatchObject({ kind: 'syntax', line: 2 });
  });

  it('rejects duplicate YAML keys', () => {
    const e = configError(() => parseConfigText('servers: {}\nservers: {}\n'));
    expect(e.issues[0]?.kind).toBe('syntax');
  });
});

describe('client config compatibility', () => {
  it('accepts a Claude Desktop file as-is: mcpServers is servers, other settings are ignored with warnings', () => {
    const warnings: string[] = [];
    const text = JSON.stringify({
      globalShortcut: 'Ctrl+Space',
      theme: 'dark',
      mcpServers: { everything: { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'] } },
    });
    const c = parseConfigText(text, { path: 'claude_desktop_config.json', onWarning: (w) => warnings.push(w) });
    expect(Object.keys(c.servers)).toEqual(['everything']);
    expect('mcpServers' in c).toBe(false);
    expect(warnings).toHaveLength(2);
    expect(warnings[0]).toMatch(/^claude_desktop_config\.json: globalShortcut: ignored/);
  });

  it('merges servers and mcpServers, and rejects a name defined in both', () => {
    const c = parseConfigText('servers: { a: { command: x } }\nmcpServers: { b: { command: y } }\n');
    expect(Object.keys(c.servers)).toEqual(['a', 'b']);
    const e = configError(() =>
      parseConfigText('servers: { a: { command: x } }\nmcpServers: { a: { command: y } }\n', { path: 'c.yaml' }),
    );
    expect(e.issues).toEqual([expect.objectContaining({ path: 'mcpServers.a', kind: 'reference' })]);
  });

  it("accepts VS Code's mcp.json: comments, trailing commas, type, and inputs ignored with a warning", () => {
    const warnings: string[] = [];
    const text = `{
      // VS Code writes JSON with comments
      "inputs": [{ "type": "promptString", "id": "token", "password": true }],
      "servers": {
        "local": { "type": "stdio", "command": "node", "args": ["server.js"], },
        "remote": { "type": "http", "url": "https://mcp.example.com/mcp" },
        "legacy": { "type": "sse", "url": "https://mcp.example.com/sse" }, /* trailing */
      },
    }`;
    const c = parseConfigText(text, { path: '.vscode/mcp.json', onWarning: (w) => warnings.push(w) });
    expect(Object.keys(c.servers)).toEqual(['local', 'remote', 'legacy']);
    expect(remoteTransport(c.servers.remote as RemoteServer)).toBe('streamable-http');
    expect(remoteTransport(c.servers.legacy as RemoteServer)).toBe('sse');
    expect(warnings).toEqual([expect.stringContaining('.vscode/mcp.json: inputs: ignored')]);
  });

  it('drops servers with disabled: true or enabled: false, and leaves them out of virtual servers', () => {
    const warnings: string[] = [];
    const text = `
servers:
  on: { command: a }
  off: { command: b, disabled: true }
  alsoOff: { url: "https://x.example/mcp", enabled: false }
virtualServers:
  v: { servers: [on, off] }
  w: { servers: { on: {}, alsoOff: {} } }
`;
    const c = parseConfigText(text, { onWarning: (w) => warnings.push(w) });
    expect(Object.keys(c.servers)).toEqual(['on']);
    expect(c.virtualServers.v?.servers).toEqual(['on']);
    expect(c.virtualServers.w?.servers).toEqual({ on: {} });
    expect(warnings).toHaveLength(2);
  });

  it('refuses two servers whose namespaced names can collide, naming both', () => {
    const e = configError(() =>
      parseConfigText('servers:\n  a: { command: x }\n  b: { command: x }\n  a__b: { command: y }\n', {
        path: 'c.yaml',
      }),
    );
    expect(e.code).toBe('SWB_ERR_CONFIG_INVALID');
    expect(e.issues).toEqual([expect.objectContaining({ path: 'servers.a__b', kind: 'reference' })]);
    expect(e.issues[0]!.message).toContain('"a" and "a__b"');
    // With another separator the same names cannot collide; names sharing that one can.
    expect(
      Object.keys(
        parseConfigText('namespaceSeparator: "-"\nservers: { a: { command: x }, a__b: { command: y } }\n').servers,
      ),
    ).toEqual(['a', 'a__b']);
    const dash = configError(() =>
      parseConfigText(
        'namespaceSeparator: "-"\nservers: { git: { command: x } }\nmcpServers: { git-hub: { command: y } }\n',
      ),
    );
    expect(dash.issues).toEqual([expect.objectContaining({ path: 'mcpServers.git-hub', kind: 'reference' })]);
  });

  it('refuses two names of one server renamed to the same exposed name', () => {
    const e = configError(() =>
      parseConfigText(
        'servers:\n  a: { command: x, tools: { rename: { one: same, two: same } } }\n' +
          'virtualServers:\n  v: { servers: { a: { prompts: { rename: { p: q, r: q } } } } }\n',
      ),
    );
    expect(paths(e)).toEqual(['servers.a.tools.rename.two', 'virtualServers.v.servers.a.prompts.rename.r']);
  });

  it('reports a virtual server naming an unknown server at its path', () => {
    const e = configError(() =>
      parseConfigText('servers: { a: { command: x } }\nvirtualServers:\n  v: { servers: { a: {}, b: {} } }\n'),
    );
    expect(paths(e)).toEqual(['virtualServers.v.servers.b']);
  });
});

describe('files and paths', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swb-load-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('sets source and resolves relative cwd and dataDir against the file directory', async () => {
    const file = join(dir, 'sb.yaml');
    await writeFile(
      file,
      'dataDir: state\nservers:\n  a: { command: x, cwd: tools }\n  b: { command: y, cwd: /abs }\n',
    );
    const c = await loadConfigFile(file);
    expect(c.source).toBe(file);
    expect(c.dataDir).toBe(join(dir, 'state'));
    expect(c.servers.a).toMatchObject({ cwd: join(dir, 'tools') });
    expect(c.servers.b).toMatchObject({ cwd: '/abs' });
  });

  it('reports a missing file or an unknown extension with SWB_ERR_CONFIG_READ', async () => {
    const missing = await configErrorAsync(loadConfigFile(join(dir, 'nope.yaml')));
    expect(missing.code).toBe('SWB_ERR_CONFIG_READ');
    expect(missing.issues[0]).toMatchObject({ kind: 'read', message: 'cannot read the file: no such file' });
    const ext = await configErrorAsync(loadConfigFile(join(dir, 'sb.ini')));
    expect(ext.code).toBe('SWB_ERR_CONFIG_READ');
  });

  it('resolves the config path from --config, then SWITCHBOARD_CONFIG, then the bundled example', () => {
    expect(resolveConfigPath('a.yaml', { SWITCHBOARD_CONFIG: 'b.yaml' })).toBe(resolve('a.yaml'));
    expect(resolveConfigPath(undefined, { SWITCHBOARD_CONFIG: 'b.yaml' })).toBe(resolve('b.yaml'));
    expect(resolveConfigPath(undefined, {})).toBe(defaultConfigPath());
  });

  it('bundles an example that fronts server-everything over stdio', async () => {
    expect(defaultConfigPath()).toBe(resolve('examples/switchboard.yaml'));
    const c = await loadConfigFile(defaultConfigPath(), { env: {} });
    expect(Object.keys(c.servers)).toEqual(['everything']);
    expect(c.listen).toEqual({ host: '127.0.0.1', port: 8080 });
    const everything = c.servers.everything;
    expect(everything && isStdioServer(everything) ? everything.cwd : undefined).toBe(resolve('.'));
  });

  it("keeps the bundled example's commented-out examples valid when uncommented", async () => {
    const text = await readFile(defaultConfigPath(), 'utf8');
    // Uncomments YAML lines (`# key:` / `# - item`) between two markers, leaving prose comments.
    const uncomment = (from: string, to?: string): string =>
      text
        .slice(text.indexOf(from), to === undefined ? undefined : text.indexOf(to))
        .split('\n')
        .flatMap((l) => {
          const m = /^(\s*)# (\s*(?:[A-Za-z][\w-]*:|- ).*)$/.exec(l);
          return m ? [`${m[1]}${m[2]}`] : [];
        })
        .join('\n');
    const remote = uncomment('  # github:', '# A virtual server');
    const virtual = uncomment('# virtualServers:');
    const c = parseConfigText(`${text}\n${remote}\n${virtual}\n`, {
      path: defaultConfigPath(),
      env: { GITHUB_TOKEN: 't' },
    });
    expect(Object.keys(c.servers)).toEqual(['everything', 'github']);
    expect(c.virtualServers.demo?.servers).toEqual({ everything: { tools: { allow: ['echo', 'get-sum'] } } });
  });
});
