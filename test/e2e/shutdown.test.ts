/**
 * Bounded shutdown as an operator sees it: `switchboard serve` (the built CLI when `dist/` exists)
 * exits promptly on SIGTERM even when the Redis it uses for rate limits is unreachable and its
 * client is in a reconnect loop, or when a remote upstream never answers the `DELETE` that ends
 * its session.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/redis.js';
import { startServe, type ServeProcess } from '../helpers/serve.js';

/** The bound the acceptance criterion sets: exit within 15 s of SIGTERM. */
const EXIT_BOUND_MS = 15_000;

let serve: ServeProcess | undefined;
let dir: string | undefined;
let upstream: Server | undefined;

afterEach(() => {
  upstream?.closeAllConnections();
  upstream?.close();
  upstream = undefined;
  if (serve && serve.child.exitCode === null && serve.child.signalCode === null) serve.child.kill('SIGKILL');
  serve = undefined;
  if (dir) rmSync(dir, { recursive: true, force: true });
  dir = undefined;
});

function configFile(yaml: string): string {
  dir = mkdtempSync(join(tmpdir(), 'swb-shutdown-'));
  const file = join(dir, 'switchboard.yaml');
  writeFileSync(file, `listen: { host: 127.0.0.1, port: 0 }\ndataDir: ${JSON.stringify(join(dir, 'data'))}\n${yaml}`);
  return file;
}

/** Sends SIGTERM and resolves with the exit code and the time it took (or `timeout` past the bound). */
async function terminate(p: ServeProcess): Promise<{ code: number | null | 'timeout'; ms: number }> {
  const t0 = performance.now();
  p.child.kill('SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const code = await Promise.race([
    p.exited,
    new Promise<'timeout'>((resolve) => {
      timer = setTimeout(() => resolve('timeout'), EXIT_BOUND_MS);
    }),
  ]);
  clearTimeout(timer);
  return { code, ms: performance.now() - t0 };
}

describe('switchboard serve shutdown', () => {
  it('exits 0 within 15 s of SIGTERM while the Redis it uses is unreachable', async () => {
    // A port that was bound and closed: connections are refused, ioredis keeps reconnecting.
    const deadPort = await freePort();
    const file = configFile(
      'servers: {}\nrateLimits:\n  - { limit: 100, window: 1m }\nrateLimiting: { store: redis, keyPrefix: "swb_test:shutdown" }\n',
    );
    serve = await startServe(['--config', file], {
      env: { ...process.env, SWITCHBOARD_REDIS_URL: `redis://127.0.0.1:${deadPort}`, SWITCHBOARD_LOG_LEVEL: 'info' },
    });
    // The client has failed its first connection and is reconnecting.
    expect(serve.log()).toContain('redis is not reachable yet');
    const { code, ms } = await terminate(serve);
    expect(code).toBe(0);
    expect(ms).toBeLessThan(EXIT_BOUND_MS);
    expect(serve.log()).toContain('"msg":"shut down"');
  }, 60_000);

  it('exits within shutdown.gracePeriod when an HTTP upstream never answers its session DELETE, naming the open step', async () => {
    // A minimal Streamable HTTP server (JSON answers) that leaves every DELETE hanging.
    upstream = createServer((req, res) => {
      if (req.method === 'GET') return void res.writeHead(405).end();
      if (req.method === 'DELETE') return; // never answered
      let body = '';
      req.on('data', (d: Buffer) => (body += d.toString()));
      req.on('end', () => {
        const msg = JSON.parse(body) as { id?: number; method?: string };
        if (msg.id === undefined) return void res.writeHead(202).end();
        const result =
          msg.method === 'initialize'
            ? { protocolVersion: '2025-06-18', capabilities: {}, serverInfo: { name: 'no-delete', version: '1' } }
            : {};
        res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'session-1' });
        res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
      });
    });
    await new Promise<void>((resolve) => upstream!.listen(0, '127.0.0.1', resolve));
    const port = (upstream.address() as AddressInfo).port;
    const file = configFile(
      `shutdown: { gracePeriod: 2s }\nservers:\n  stuck:\n    url: http://127.0.0.1:${port}/mcp\n`,
    );
    serve = await startServe(['--config', file], { env: { ...process.env, SWITCHBOARD_LOG_LEVEL: 'info' } });
    const { code, ms } = await terminate(serve);
    // The DELETE alone would wait 5 s; the grace period is 2 s (plus process exit).
    expect(ms).toBeLessThan(3_500);
    expect(code).toBe(1);
    expect(serve.log()).toMatch(/"unclosed":\["upstreams"\]/);
  }, 60_000);
});
