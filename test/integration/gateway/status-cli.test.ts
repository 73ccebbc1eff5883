/**
 * `switchboard status` against a running gateway: each server's state and error, the exit code
 * (0 ready, 1 not ready, 2 unreachable), and the JSON form.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { RunningGateway } from '../../../src/app.js';
import { runStatus } from '../../../src/cli/status.js';
import { freePort } from '../../helpers/everything.js';
import { startTestGateway } from '../../helpers/gateway.js';
import { captureOutput } from '../../helpers/cli-output.js';

const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));
const echo = { command: process.execPath, args: [ECHO] };

let gw: RunningGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('switchboard status', () => {
  it('prints every server with its state and exits 0 when the gateway is ready', async () => {
    gw = await startTestGateway({ servers: { echo, other: echo } });
    const c = captureOutput();
    expect(await runStatus({ url: `${gw.url}/` }, c.output)).toBe(0);
    expect(c.out[0]).toBe(`${gw.url}: ready (2 servers: 2 ready)`);
    expect(c.out.slice(1, 3)).toEqual(['  echo   ready', '  other  ready']);
    expect(c.out[3]).toBe('stores: database ok');
  });

  it('names the failed server and its error, exits 1, and prints the report as JSON with --json', async () => {
    const port = await freePort();
    gw = await startTestGateway({ servers: { echo, down: { url: `http://127.0.0.1:${port}/mcp` } } });
    const c = captureOutput();
    expect(await runStatus({ url: gw.url }, c.output)).toBe(1);
    expect(c.out[0]).toBe(`${gw.url}: not ready (2 servers: 1 ready, 1 failed)`);
    expect(c.out.find((l) => l.startsWith('  down'))).toMatch(/^ {2}down {2}failed {2}.*ECONNREFUSED/);
    const j = captureOutput();
    expect(await runStatus({ url: gw.url, json: true }, j.output)).toBe(1);
    const report = JSON.parse(j.out.join('\n')) as { status: string; upstreams: Array<{ name: string }> };
    expect(report.status).toBe('not ready');
    expect(report.upstreams.map((u) => u.name)).toEqual(['echo', 'down']);
  });

  it('exits 2 with a clear message when nothing answers', async () => {
    const port = await freePort();
    const c = captureOutput();
    expect(await runStatus({ url: `http://127.0.0.1:${port}` }, c.output)).toBe(2);
    expect(c.err[0]).toContain(`no gateway answers at http://127.0.0.1:${port} (ECONNREFUSED)`);
    expect(c.out).toEqual([]);
  });
});
