/**
 * `switchboard serve` as a user runs it: the live feed shows the process's own log lines (the
 * same ones it writes to stderr), and `/` leads to the console.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { ROOT, startServe, type ServeProcess } from '../helpers/serve.js';

let serve: ServeProcess | undefined;
let dir: string | undefined;
afterEach(async () => {
  serve?.child.kill('SIGTERM');
  await serve?.exited;
  serve = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

/** Reads an SSE response until `done` says so (or 5 s pass), then cancels it. */
async function readUntil(res: Response, done: (text: string) => boolean): Promise<string> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let text = '';
  const deadline = Date.now() + 5000;
  while (!done(text) && Date.now() < deadline) {
    const { value, done: end } = await reader.read();
    if (end) break;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel();
  return text;
}

describe('switchboard serve: admin console routes', () => {
  it('replays its own log lines to an admin on /api/v1/live, as it wrote them to stderr', async () => {
    dir = mkdtempSync(join(tmpdir(), 'swb-console-'));
    const file = join(dir, 'sb.yaml');
    const odd = `${ROOT}test/fixtures/odd-server.mjs`;
    writeFileSync(
      file,
      `listen: { port: 0 }\nadmin: { allowAnonymous: true }\nservers:\n  odd:\n    command: ${JSON.stringify(process.execPath)}\n    args: [${JSON.stringify(odd)}]\n`,
    );
    serve = await startServe(['--config', file], { cwd: dir, env: { ...process.env, SWITCHBOARD_LOG_FORMAT: 'json' } });
    // Anonymous loopback callers hold every permission with admin.allowAnonymous.
    const res = await fetch(`${serve.url}/api/v1/live`);
    expect(res.status).toBe(200);
    const text = await readUntil(res, (t) => t.includes('"msg":"listening"'));
    const logs = text
      .split('\n\n')
      .filter((block) => block.startsWith('event: log'))
      .map((block) => JSON.parse(block.slice(block.indexOf('data: ') + 6)) as { msg: string; level: string });
    expect(logs.map((l) => l.msg)).toContain('listening');
    expect(logs.find((l) => l.msg === 'listening')?.level).toBe('info');
    // stderr still has the full JSON lines.
    expect(serve.log()).toMatch(/\{"level":30,"time":\d+,[^\n]*"msg":"listening"\}/);

    const root = await fetch(`${serve.url}/`, { redirect: 'manual' });
    expect(root.status).toBe(302);
    expect(root.headers.get('location')).toBe('/ui/');
  });
});
