/**
 * Runs `switchboard serve` as a user would: a child process of the built CLI (or the sources via
 * tsx when there is no build), waiting for its `listening` log line.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/** The repository root (with a trailing slash). */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** Node arguments that run the CLI. */
export const CLI = existsSync(`${ROOT}dist/bin/switchboard.js`)
  ? [`${ROOT}dist/bin/switchboard.js`]
  : ['--import', 'tsx', `${ROOT}src/cli/main.ts`];

/** A running `switchboard serve` process. */
export interface ServeProcess {
  readonly child: ChildProcess;
  readonly url: string;
  /** Everything it wrote to stderr so far. */
  log(): string;
  /** Resolves with the exit code. */
  readonly exited: Promise<number | null>;
}

/** Starts `switchboard serve <args>` and resolves once it logs `listening` (20 s at most). */
export async function startServe(
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<ServeProcess> {
  const child = spawn(process.execPath, [...CLI, 'serve', ...args], {
    cwd: options.cwd ?? ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  child.stderr.on('data', (d: Buffer) => {
    log += d.toString();
  });
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no listening line:\n${log}`)), 20_000);
    const check = () => {
      const m = /"msg":"listening"/.test(log) ? /"url":"(http:\/\/[^"]+)"/.exec(log) : null;
      if (m) {
        clearTimeout(timer);
        child.stderr.off('data', check);
        resolve(m[1]!);
      }
    };
    child.stderr.on('data', check);
    void exited.then((code) => {
      clearTimeout(timer);
      reject(new Error(`switchboard serve exited with ${code}:\n${log}`));
    });
  });
  return { child, url, log: () => log, exited };
}
