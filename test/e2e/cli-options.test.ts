/**
 * Command-line options as a user types them: `serve --log-level/--log-format` win over
 * `SWITCHBOARD_LOG_LEVEL` / `SWITCHBOARD_LOG_FORMAT` and the file's `logging.level`, and an
 * unknown level is refused with the valid ones; `usage --token-id` (formerly `--token`).
 */
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { CLI, ROOT } from '../helpers/serve.js';

function serve(args: string[], env: NodeJS.ProcessEnv, until: (log: string) => boolean) {
  const child = spawn(process.execPath, [...CLI, 'serve', '--port', '0', ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  const seen = new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`timed out; log:\n${log}`)), 20_000);
    child.stderr.on('data', (d: Buffer) => {
      log += d.toString();
      if (until(log)) {
        clearTimeout(timer);
        resolve(log);
      }
    });
    void exited.then(() => {
      clearTimeout(timer);
      resolve(log);
    });
  });
  return { child, exited, seen };
}

describe('switchboard serve --log-level / --log-format', () => {
  it('logs debug lines as JSON with --log-level debug although the environment says error', async () => {
    const run = serve(
      ['--log-level', 'debug', '--log-format', 'json'],
      { SWITCHBOARD_LOG_LEVEL: 'error', SWITCHBOARD_LOG_FORMAT: 'pretty' },
      (log) => /"msg":"listening"/.test(log) && /"level":20/.test(log),
    );
    const log = await run.seen;
    run.child.kill('SIGTERM');
    expect(await run.exited).toBe(0);
    const lines = log.split('\n').filter((l) => l.trim() !== '');
    // Every line is JSON (not pino-pretty), debug ones included.
    for (const line of lines) expect(() => JSON.parse(line) as unknown, line).not.toThrow();
    expect(lines.some((l) => (JSON.parse(l) as { level: number }).level === 20)).toBe(true);
  }, 30_000);

  it('refuses an unknown level and names the valid ones', async () => {
    const run = serve(['--log-level', 'verbose'], {}, () => false);
    const log = await run.seen;
    expect(await run.exited).toBe(1);
    expect(log).toContain("argument 'verbose' is invalid");
    expect(log).toContain('fatal, error, warn, info, debug, trace, silent');
  }, 30_000);
});

describe('switchboard usage --token-id', () => {
  it('takes the token id as --token-id, and --token (its former name) with a notice', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swb-usage-cli-'));
    const config = join(dir, 'switchboard.yaml');
    writeFileSync(config, 'servers: {}\n');
    const usage = (flag: string) =>
      new Promise<{ code: number | null; err: string }>((resolve) => {
        const child = spawn(process.execPath, [...CLI, 'usage', '--config', config, flag, 'no-such-id'], {
          cwd: ROOT,
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let err = '';
        child.stderr.on('data', (d: Buffer) => (err += d.toString()));
        child.once('exit', (code) => resolve({ code, err }));
      });
    const byId = await usage('--token-id');
    expect(byId.code).toBe(1);
    expect(byId.err).toContain('no token with id no-such-id');
    expect(byId.err).not.toContain('--token is now --token-id');
    const former = await usage('--token');
    expect(former.code).toBe(1);
    expect(former.err).toContain('--token is now --token-id');
    expect(former.err).toContain('no token with id no-such-id');
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});

describe('switchboard --help', () => {
  const help = async (args: string[]): Promise<string> =>
    (await promisify(execFile)(process.execPath, [...CLI, ...args, '--help'], { cwd: ROOT })).stdout;
  const commandsOf = (text: string): string[] =>
    [...(text.split('\nCommands:\n')[1] ?? '').matchAll(/^ {2}(\S+)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');

  it('shows examples for every command', async () => {
    const checked: string[] = [];
    for (const name of commandsOf(await help([]))) {
      const text = await help([name]);
      const subs = commandsOf(text);
      for (const path of subs.length === 0 ? [[name]] : subs.map((s) => [name, s])) {
        const page = subs.length === 0 ? text : await help(path);
        expect(page, path.join(' ')).toMatch(/\nExamples:\n {2}\$ (SWITCHBOARD_\S+ )?switchboard /);
        checked.push(path.join(' '));
      }
    }
    expect(checked).toEqual(
      expect.arrayContaining(['serve', 'status', 'token create', 'server add', 'stdio', 'connect']),
    );
    expect(checked.length).toBeGreaterThan(18);
  }, 60_000);
});

describe('database commands without --config', () => {
  it('say which database they use', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swb-noconfig-'));
    const env = { ...process.env };
    delete env.SWITCHBOARD_CONFIG;
    delete env.SWITCHBOARD_DATABASE_URL;
    const { stderr } = await promisify(execFile)(process.execPath, [...CLI, 'token', 'list'], { cwd: dir, env });
    expect(stderr).toContain(
      `note: no --config given; using the database at ${join(dir, '.switchboard', 'switchboard.db')}`,
    );
    rmSync(dir, { recursive: true, force: true });
  }, 30_000);
});
