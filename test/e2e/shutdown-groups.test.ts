/**
 * `switchboard serve` exits 0 on SIGTERM and SIGINT when a stdio server's process group outlives
 * its leader (a `sh -c 'sleep … & exec node …'` server, an npx-style wrapper that spawns the real
 * server without exec), even when some of their processes ignore SIGTERM, and no process of those groups is left behind.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, startServe, type ServeProcess } from '../helpers/serve.js';

let serve: ServeProcess | undefined;
let dir: string | undefined;
let groups: number[] = [];

afterEach(() => {
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null) serve.child.kill('SIGKILL');
  serve = undefined;
  for (const pgid of groups) {
    try {
      process.kill(-pgid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  groups = [];
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** The pids of the live (not zombie) processes in group `pgid` (empty when the group is gone). */
function groupMembers(pgid: number): number[] {
  try {
    return execFileSync('ps', ['-o', 'pid=,stat=', '-g', String(pgid)], { encoding: 'utf8' })
      .split('\n')
      .map((l) => l.trim().split(/\s+/))
      .filter((r) => r[1] !== undefined && !r[1].startsWith('Z'))
      .map((r) => Number(r[0]));
  } catch {
    return []; // ps exits 1 when nothing matches
  }
}

/** The process groups led by the direct children of `pid`. */
function childGroups(pid: number): number[] {
  const out = execFileSync('ps', ['-o', 'pid=,ppid=,pgid=', '-A'], { encoding: 'utf8' });
  return out
    .split('\n')
    .map((l) => l.trim().split(/\s+/).map(Number))
    .filter((r) => r[1] === pid && r[0] === r[2])
    .map((r) => r[2]!);
}

function setup(): string {
  dir = mkdtempSync(join(tmpdir(), 'swb-groups-'));
  const echo = join(ROOT, 'test/fixtures/echo-server.mjs');
  const wrapper = join(dir, 'wrapper.mjs');
  // Like npx: the leader spawns the real server as a child and relays its stdio.
  writeFileSync(
    wrapper,
    `import { spawn } from 'node:child_process';\n` +
      `process.on('SIGTERM', () => {});\nprocess.on('SIGINT', () => {});\n` +
      `spawn(process.execPath, [${JSON.stringify(echo)}], { stdio: 'inherit' });\n`,
  );
  const file = join(dir, 'switchboard.yaml');
  writeFileSync(
    file,
    `listen: { host: 127.0.0.1, port: 0 }\ndataDir: ${JSON.stringify(join(dir, 'data'))}\n` +
      `shutdown: { gracePeriod: 8s }\n` +
      `servers:\n` +
      `  shwrapped:\n    command: sh\n    args: ['-c', ${JSON.stringify(`(trap '' TERM INT; exec sleep 300) & exec ${process.execPath} ${echo}`)}]\n` +
      `  npxlike:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(wrapper)}]\n`,
  );
  return file;
}

async function waitReady(url: string): Promise<void> {
  const deadline = Date.now() + 15_000;
  for (;;) {
    const res = await fetch(new URL('/readyz', url)).catch(() => undefined);
    if (res?.status === 200) return;
    if (Date.now() > deadline) throw new Error(`not ready:\n${serve!.log()}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe('switchboard serve shutdown with lingering process groups', () => {
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    it(`exits 0 on ${signal} and leaves no process of a stdio server's group behind`, async () => {
      const file = setup();
      serve = await startServe(['--config', file], { env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'info' } });
      await waitReady(serve.url);
      groups = childGroups(serve.child.pid!);
      expect(groups).toHaveLength(2);
      // Each group holds more than its leader: the sleep, the wrapped server.
      for (const pgid of groups) expect(groupMembers(pgid).length).toBeGreaterThan(1);
      serve.child.kill(signal);
      const code = await Promise.race([serve.exited, new Promise((r) => setTimeout(() => r('timeout'), 15_000))]);
      expect(code, serve.log()).toBe(0);
      for (const pgid of groups) expect(groupMembers(pgid)).toEqual([]);
    }, 40_000);
  }
});
