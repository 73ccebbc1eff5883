import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { runCheck, type CliOutput } from '../../../src/cli/check.js';
import { runImport } from '../../../src/cli/import.js';

function capture(): CliOutput & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => stdout.push(l), err: (l) => stderr.push(l) };
}

const BAD =
  'servers:\n  everything:\n    command: 42\n  r:\n    url: nope\nvirtualServers:\n  v: { servers: [ghost] }\n';

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swb-cli-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('switchboard check', () => {
  it('exits 0 and prints a summary for a valid file', async () => {
    const file = join(dir, 'ok.yaml');
    await writeFile(
      file,
      'servers:\n  a: { command: sh }\n  b: { url: "https://b.example/mcp" }\nvirtualServers:\n  v: { servers: [a] }\n',
    );
    const io = capture();
    expect(await runCheck({ config: file, env: {} }, io)).toBe(0);
    expect(io.stdout).toEqual([`ok: 2 servers, 1 virtual server in ${file}`]);
    expect(io.stderr).toEqual([]);
  });

  it('exits 1 and prints every problem with file and path', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, BAD);
    const io = capture();
    expect(await runCheck({ config: file, env: {} }, io)).toBe(1);
    expect(io.stdout).toEqual([]);
    expect(io.stderr).toEqual([
      `${file}: servers.everything.command: expected a string, got number`,
      `${file}: servers.r.url: expected an http:// or https:// URL, got "nope"`,
      expect.stringMatching(new RegExp(`^${file}: virtualServers\\.v\\.servers\\[0\\]: unknown server "ghost"`)),
      `3 problems found in ${file}`,
    ]);
  });

  it('exits 1 for a missing file', async () => {
    const io = capture();
    expect(await runCheck({ config: join(dir, 'none.yaml') }, io)).toBe(1);
    expect(io.stderr[0]).toContain('cannot read the file: no such file');
  });

  it('uses SWITCHBOARD_CONFIG when --config is absent, and prints warnings', async () => {
    const file = join(dir, 'claude.json');
    await writeFile(file, JSON.stringify({ globalShortcut: 'x', mcpServers: { a: { command: 'sh' } } }));
    const io = capture();
    expect(await runCheck({ env: { SWITCHBOARD_CONFIG: file } }, io)).toBe(0);
    expect(io.stdout).toEqual([`ok: 1 server, 0 virtual servers in ${file}`]);
    expect(io.stderr).toEqual([expect.stringMatching(/^warning: .*globalShortcut: ignored/)]);
  });

  it('exits 1 naming the server and the command when a stdio command is not installed', async () => {
    const file = join(dir, 'missing.yaml');
    await writeFile(
      file,
      'servers:\n  ok: { command: sh }\n  gone: { command: swb-no-such-command-7f3a }\n  rel: { command: ./nope.sh }\n',
    );
    const io = capture();
    expect(await runCheck({ config: file, env: {} }, io)).toBe(1);
    expect(io.stdout).toEqual([]);
    expect(io.stderr).toEqual([
      `${file}: servers.gone.command: command "swb-no-such-command-7f3a" not found (not on PATH)`,
      expect.stringMatching(new RegExp(`^${file}: servers\\.rel\\.command: command "\\./nope\\.sh" not found`)),
      `2 problems found in ${file}`,
    ]);
  });

  it('finds a command by path and on the PATH of the checking environment', async () => {
    const script = join(dir, 'server.sh');
    await writeFile(script, '#!/bin/sh\n', { mode: 0o755 });
    const file = join(dir, 'paths.yaml');
    await writeFile(file, `servers:\n  byPath: { command: ${script} }\n  byName: { command: server.sh }\n`);
    const io = capture();
    expect(await runCheck({ config: file, env: { PATH: dir } }, io)).toBe(0);
    expect(io.stdout).toEqual([`ok: 2 servers, 0 virtual servers in ${file}`]);
  });

  it('warns (exit 0) when the file declares no servers', async () => {
    const file = join(dir, 'empty.yaml');
    await writeFile(file, '');
    const io = capture();
    expect(await runCheck({ config: file, env: {} }, io)).toBe(0);
    expect(io.stderr).toEqual([`warning: ${file} declares no servers; the gateway would serve nothing`]);
    expect(io.stdout).toEqual([`ok: 0 servers, 0 virtual servers in ${file}`]);
  });

  it('checks the bundled example when nothing is given', async () => {
    const io = capture();
    expect(await runCheck({ env: {} }, io)).toBe(0);
    expect(io.stdout).toEqual(['ok: 1 server, 0 virtual servers in examples/switchboard.yaml']);
  });

  it('exits 1 from the real CLI process with the path in its output', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(file, BAD);
    const run = promisify(execFile);
    const err = await run(process.execPath, ['--import', 'tsx', 'src/cli/main.ts', 'check', '--config', file], {
      cwd: process.cwd(),
    }).then(
      () => undefined,
      (e: unknown) => e as { code: number; stdout: string; stderr: string },
    );
    expect(err?.code).toBe(1);
    expect(`${err?.stdout}${err?.stderr}`).toContain(
      `${file}: servers.everything.command: expected a string, got number`,
    );
  });
});

describe('switchboard import', () => {
  const claude = JSON.stringify({ mcpServers: { a: { command: 'x', args: ['--flag'] } } });

  it('prints YAML to stdout', async () => {
    const file = join(dir, 'claude.json');
    await writeFile(file, claude);
    const io = capture();
    expect(await runImport({ file, env: {} }, io)).toBe(0);
    expect(io.stdout.join('\n')).toContain('servers:\n  a:\n    command: x');
    expect(io.stderr).toEqual([]);
  });

  it('writes --output, refusing to overwrite without --force', async () => {
    const file = join(dir, 'claude.json');
    const out = join(dir, 'sb.yaml');
    await writeFile(file, claude);
    expect(await runImport({ file, output: out, env: {} }, capture())).toBe(0);
    expect(await readFile(out, 'utf8')).toContain('command: x');
    const again = capture();
    expect(await runImport({ file, output: out, env: {} }, again)).toBe(1);
    expect(again.stderr[0]).toContain('pass --force');
    expect(await runImport({ file, output: out, force: true, env: {} }, capture())).toBe(0);
    expect(await runImport({ file, output: join(dir, 'sb.json'), env: {} }, capture())).toBe(1);
  });

  it('creates the missing parent folders of --output', async () => {
    const file = join(dir, 'claude.json');
    const out = join(dir, 'some', 'missing', 'dir', 'sb.yaml');
    await writeFile(file, claude);
    const io = capture();
    expect(await runImport({ file, output: out, env: {} }, io)).toBe(0);
    expect(io.stderr).toEqual([]);
    expect(await readFile(out, 'utf8')).toContain('command: x');
  });

  it('exits 1 for a file that is not a client configuration', async () => {
    const file = join(dir, 'x.json');
    await writeFile(file, '{"a": 1}');
    const io = capture();
    expect(await runImport({ file }, io)).toBe(1);
    expect(io.stderr[0]).toContain('not an MCP client configuration');
  });
});
