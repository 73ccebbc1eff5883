/**
 * Reaping a process group whose members ignore SIGTERM keeps the event loop alive: a Node process
 * whose only remaining work is awaiting `ProcessGroup.reap` runs it to the end (SIGKILL after the
 * grace) instead of exiting with 13 (unsettled top-level await), and leaves nothing of the group.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../../helpers/serve.js';

const SCRIPT = `
import { spawn } from 'node:child_process';
import { ProcessGroup } from ${JSON.stringify(`${ROOT}src/upstream/process-group.ts`)};
const logger = { warn() {}, info() {}, debug() {}, error() {} };
const child = spawn('sh', ['-c', "trap '' TERM; (trap '' TERM; exec sleep 300) & exec sleep 0.1"], { detached: true, stdio: 'ignore' });
await new Promise((r) => child.once('spawn', r));
const group = new ProcessGroup(child.pid, 300, logger);
await new Promise((r) => child.once('exit', r));
let gone = false;
await group.reap(() => { gone = true; });
console.log(JSON.stringify({ gone, pgid: child.pid }));
`;

describe('ProcessGroup.reap', () => {
  it('settles in a process with nothing else to do, after killing members that ignore SIGTERM', () => {
    const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', SCRIPT], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 10_000,
    });
    expect(r.status, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout.trim()) as { gone: boolean; pgid: number };
    expect(out.gone).toBe(true);
  }, 15_000);
});
