import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCheck, type CliOutput } from '../../../src/cli/check.js';
import { ConfigError, parseConfigText } from '../../../src/config/load.js';

function issues(text: string): Array<{ path: string; message: string }> {
  try {
    parseConfigText(text);
  } catch (err) {
    if (err instanceof ConfigError) return err.issues.map((i) => ({ path: i.path, message: i.message }));
    throw err;
  }
  return [];
}

describe('guardrails configuration', () => {
  it('accepts the documented configuration with defaults filled in', () => {
    const config = parseConfigText(`
guardrails:
  - name: no-rm
    match: {server: echo, tool: echo}
    deny: 'mcp.arguments.message.contains("rm -rf")'
  - name: secrets
    redact: [secrets, pii, {pattern: 'ticket-\\d+', replacement: '#'}]
  - name: external
    webhook: {url: "http://127.0.0.1:9000/check", timeout: 500ms}
  - name: pins
    pinTools: warn
`);
    expect(config.guardrails.map((g) => g.name)).toEqual(['no-rm', 'secrets', 'external', 'pins']);
    expect(config.guardrails[2]?.webhook).toEqual({
      url: 'http://127.0.0.1:9000/check',
      timeout: 500,
      onError: 'deny',
      headers: {},
    });
    expect(config.guardrails[1]?.match).toEqual({});
  });

  it('defaults to no guardrails', () => {
    expect(parseConfigText('servers: {}').guardrails).toEqual([]);
  });

  it('reports CEL syntax and type errors at the expression’s path', () => {
    const found = issues(`
guardrails:
  - name: a
    deny: 'mcp.arguments.('
  - name: b
    denyResult: '"not a bool"'
  - name: c
    deny: 'request.tool == "x"'
`);
    expect(found).toEqual([
      { path: 'guardrails[0].deny', message: expect.stringMatching(/^invalid CEL: /) },
      { path: 'guardrails[1].denyResult', message: 'the expression must evaluate to a bool, not string' },
      { path: 'guardrails[2].deny', message: expect.stringContaining('Unknown variable: request') },
    ]);
  });

  it('reports a duplicate name at the second guardrail', () => {
    expect(issues("guardrails:\n  - {name: dup, deny: 'true'}\n  - {name: dup, redact: [pii]}\n")).toEqual([
      { path: 'guardrails[1].name', message: 'guardrail name "dup" is also used by guardrails[0]' },
    ]);
  });

  it('enforces the documented limits: webhook timeout 1ms–60s, redaction flags and names, name length', () => {
    const found = issues(`
guardrails:
  - {name: slow, webhook: {url: 'http://127.0.0.1:1/', timeout: 61s}}
  - {name: ok, webhook: {url: 'http://127.0.0.1:1/', timeout: 60s}}
  - {name: flags, redact: [{pattern: 'x', flags: 'gy'}]}
  - {name: detector, redact: [{pattern: 'x', name: 'Has Spaces'}]}
  - {name: ${'n'.repeat(65)}, deny: 'true'}
  - {name: empty, redact: []}
`).map((i) => i.path);
    expect(found).toEqual([
      'guardrails[0].webhook.timeout',
      'guardrails[2].redact[0].flags',
      'guardrails[3].redact[0].name',
      'guardrails[4].name',
      'guardrails[5].redact',
    ]);
  });

  it('reports bad patterns, globs, CIDRs, kinds, names and webhook settings', () => {
    const found = issues(`
guardrails:
  - name: bad-regex
    redact: [{pattern: '('}]
  - name: empty-match
    redact: [{pattern: 'a*'}]
  - name: glob
    match: {server: ''}
    deny: 'true'
  - name: cidr
    match: {ip: 'not-an-ip'}
    deny: 'true'
  - name: two-kinds
    deny: 'true'
    pinTools: block
  - name: none
  - name: bad name!
    deny: 'true'
  - name: hook
    webhook: {url: 'ftp://x/', timeout: 0, onError: maybe}
  - name: dup
    deny: 'true'
  - name: dup
    deny: 'true'
  - name: set
    redact: [passwords]
`).map((i) => i.path);
    expect(found).toEqual(
      expect.arrayContaining([
        'guardrails[0].redact[0].pattern',
        'guardrails[1].redact[0].pattern',
        'guardrails[2].match.server',
        'guardrails[3].match.ip',
        'guardrails[4]',
        'guardrails[5]',
        'guardrails[6].name',
        'guardrails[7].webhook.url',
        'guardrails[7].webhook.timeout',
        'guardrails[7].webhook.onError',
      ]),
    );
    expect(found.some((p) => p.startsWith('guardrails[10].redact'))).toBe(true);
  });
});

describe('switchboard check with guardrails', () => {
  let dir: string;
  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swb-guard-check-'));
  });
  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  function capture(): CliOutput & { stdout: string[]; stderr: string[] } {
    const stdout: string[] = [];
    const stderr: string[] = [];
    return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
  }

  it('prints the CEL error with file and path and exits 1', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, "guardrails:\n  - name: no-rm\n    deny: 'mcp.arguments.message.contains('\n");
    const out = capture();
    expect(await runCheck({ config: file, env: {} }, out)).toBe(1);
    expect(out.stderr[0]).toMatch(
      new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}.*guardrails\\[0\\]\\.deny: invalid CEL: `),
    );
    expect(out.stderr.at(-1)).toBe(`1 problem found in ${file}`);
  });

  it('counts guardrails in the summary of a valid file', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(file, 'guardrails:\n  - name: a\n    deny: \'mcp.tool == "x"\'\n  - name: b\n    redact: [pii]\n');
    const out = capture();
    expect(await runCheck({ config: file, env: {} }, out)).toBe(0);
    expect(out.stdout).toEqual([`ok: 0 servers, 0 virtual servers, 2 guardrails in ${file}`]);
  });
});
