/**
 * Acceptance 1 as a user runs it: `switchboard serve` with the bundled example config, then the
 * official inspector CLI lists `everything__*` tools at /mcp and calls `everything__echo`;
 * SIGTERM shuts down cleanly.
 */
import { spawn, execFile, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { startServe } from '../helpers/serve.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const CLI = existsSync(`${ROOT}dist/bin/switchboard.js`)
  ? [`${ROOT}dist/bin/switchboard.js`]
  : ['--import', 'tsx', `${ROOT}src/cli/main.ts`];
const INSPECTOR = `${ROOT}node_modules/@modelcontextprotocol/inspector-cli/build/cli.js`;
const run = promisify(execFile);

describe('switchboard serve with the bundled example', () => {
  let child: ChildProcess;
  let url: string;
  let log = '';

  beforeAll(async () => {
    child = spawn(process.execPath, [...CLI, 'serve', '--port', '0'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no listening line:\n${log}`)), 20_000);
      child.stderr!.on('data', (d: Buffer) => {
        log += d.toString();
        const m = /"msg":"listening"/.test(log) ? /"url":"(http:\/\/[^"]+)"/.exec(log) : null;
        if (m) {
          clearTimeout(timer);
          resolve(m[1]!);
        }
      });
      child.once('exit', (code) => reject(new Error(`exited ${code}:\n${log}`)));
    });
  });

  afterAll(() => {
    if (child.exitCode === null) child.kill('SIGKILL');
  });

  // The inspector CLI (1.0.3) finds its package.json relative to the working directory's parent.
  const inspector = (...args: string[]) =>
    run(process.execPath, [INSPECTOR, '--cli', `${url}/mcp`, '--transport', 'http', ...args], { cwd: `${ROOT}docs` });

  it('lets the official inspector CLI list everything__* tools at /mcp', async () => {
    const { stdout } = await inspector('--method', 'tools/list');
    const names = (JSON.parse(stdout) as { tools: Array<{ name: string }> }).tools.map((t) => t.name);
    expect(names).toContain('everything__echo');
    expect(names.every((n) => n.startsWith('everything__'))).toBe(true);
  });

  it('lets the official inspector CLI call everything__echo', async () => {
    const { stdout } = await inspector(
      '--method',
      'tools/call',
      '--tool-name',
      'everything__echo',
      '--tool-arg',
      'message=hello',
    );
    expect(JSON.parse(stdout)).toEqual({ content: [{ type: 'text', text: 'Echo: hello' }] });
  });

  it('shuts down cleanly on SIGTERM', async () => {
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.kill('SIGTERM');
    expect(await exited).toBe(0);
    expect(log).toContain('shutting down');
  });
});

describe('switchboard check', () => {
  it('accepts the bundled example and exits 0', async () => {
    const { stdout } = await run(process.execPath, [...CLI, 'check', '--config', `${ROOT}examples/switchboard.yaml`], {
      cwd: ROOT,
    });
    expect(stdout).toMatch(/ok/i);
  });
});

describe('switchboard serve hot reload', () => {
  it('applies an edited config file and keeps running on an invalid one', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/swb-reload-`);
    const file = `${dir}/sb.yaml`;
    const odd = `${ROOT}test/fixtures/odd-server.mjs`;
    const server = (name: string) =>
      `  ${name}:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(odd)}]\n`;
    writeFileSync(file, `listen: { port: 0 }\nservers:\n${server('one')}`);
    const serve = await startServe(['--config', file]);
    const child = serve.child;
    const url = serve.url;
    try {
      const names = async () =>
        ((await (await fetch(`${url}/readyz`)).json()) as { upstreams: Array<{ name: string }> }).upstreams.map(
          (u) => u.name,
        );
      expect(await names()).toEqual(['one']);
      writeFileSync(file, `listen: { port: 0 }\nservers:\n${server('one')}${server('two')}`);
      const deadline = Date.now() + 10_000;
      while ((await names()).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
      expect(await names()).toEqual(['one', 'two']);
      writeFileSync(file, `listen: { port: 0 }\nservers:\n  one:\n    command: 42\n`);
      const deadline2 = Date.now() + 10_000;
      while (!serve.log().includes('keeping the running') && Date.now() < deadline2)
        await new Promise((r) => setTimeout(r, 50));
      expect(serve.log()).toContain('servers.one.command');
      expect(await names()).toEqual(['one', 'two']);
    } finally {
      child.kill('SIGTERM');
    }
  });
});

describe('switchboard token create with serve', () => {
  it('creates a token with --json that the served gateway then accepts', async () => {
    const { mkdtempSync, writeFileSync } = await import('node:fs');
    const { tmpdir } = await import('node:os');
    const dir = mkdtempSync(`${tmpdir()}/swb-token-`);
    const file = `${dir}/sb.yaml`;
    const odd = `${ROOT}test/fixtures/odd-server.mjs`;
    writeFileSync(
      file,
      `auth: { mode: tokens }\nlisten: { port: 0 }\nservers:\n  odd:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(odd)}]\n`,
    );
    const created = await run(
      process.execPath,
      [...CLI, 'token', 'create', '--config', file, '--name', 'admin', '--permissions', 'admin.*', '--json'],
      {
        cwd: dir,
      },
    );
    const token = JSON.parse(created.stdout) as { id: string; token: string; jti: string; expiresAt: string | null };
    expect(Object.keys(token).sort()).toEqual(['expiresAt', 'id', 'jti', 'token']);
    const listed = await run(process.execPath, [...CLI, 'token', 'list', '--config', file], { cwd: dir });
    expect(listed.stdout).toContain(token.id);
    expect(listed.stdout).not.toContain(token.token);
    const serve = await startServe(['--config', file], { cwd: dir });
    const child = serve.child;
    const url = serve.url;
    try {
      const init = JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
      });
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      expect((await fetch(`${url}/mcp`, { method: 'POST', headers, body: init })).status).toBe(401);
      const ok = await fetch(`${url}/mcp`, {
        method: 'POST',
        headers: { ...headers, authorization: `Bearer ${token.token}` },
        body: init,
      });
      expect(ok.status).toBe(200);
      await ok.text();
    } finally {
      child.kill('SIGTERM');
    }
  });
});
