/**
 * Runs `@modelcontextprotocol/server-everything` in its HTTP modes on a free loopback port.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createServer } from 'node:net';
import { EVERYTHING_ENTRY } from './gateway.js';

/** Finds a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const port = (srv.address() as { port: number }).port;
      srv.close(() => resolve(port));
    });
  });
}

/** A running server-everything HTTP process. */
export interface EverythingHttp {
  /** The MCP URL: `…/mcp` (streamableHttp) or `…/sse` (sse). */
  readonly url: string;
  /** `http://127.0.0.1:PORT`. */
  readonly baseUrl: string;
  readonly child: ChildProcess;
  stop(): Promise<void>;
}

/**
 * Starts server-everything in `streamableHttp` (URL `…/mcp`) or `sse` (URL `…/sse`) mode and
 * waits until it prints that it listens.
 */
export async function startEverythingHttp(mode: 'streamableHttp' | 'sse', fixedPort?: number): Promise<EverythingHttp> {
  const port = fixedPort ?? (await freePort());
  const child = spawn(process.execPath, [EVERYTHING_ENTRY, mode], {
    env: { ...process.env, PORT: String(port) },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  await new Promise<void>((resolve, reject) => {
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`server-everything ${mode} did not start: ${buf}`)), 15_000);
    child.stderr?.on('data', (d: Buffer) => {
      buf += d.toString();
      if (/listening on port|running on port/i.test(buf)) {
        clearTimeout(timer);
        resolve();
      }
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`server-everything ${mode} exited with ${code}: ${buf}`));
    });
  });
  child.stderr?.resume();
  const baseUrl = `http://127.0.0.1:${port}`;
  return {
    url: `${baseUrl}/${mode === 'sse' ? 'sse' : 'mcp'}`,
    baseUrl,
    child,
    stop: () =>
      new Promise<void>((resolve) => {
        if (child.exitCode !== null || child.signalCode !== null) return resolve();
        child.once('exit', () => resolve());
        child.kill('SIGTERM');
      }),
  };
}
