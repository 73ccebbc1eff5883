// Process helpers for the bench harness: start servers in their own process group, wait for
// readiness, read RSS from /proc, run the load generator as a separate process, stop cleanly.
import { spawn } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { dirname, join } from 'node:path';

export const BENCH_DIR = dirname(fileURLToPath(import.meta.url));
export const ROOT = dirname(BENCH_DIR);
export const NODE = process.execPath;
export const FIXTURE_STDIO = join(BENCH_DIR, 'fixtures', 'stdio-server.mjs');
export const FIXTURE_HTTP = join(BENCH_DIR, 'fixtures', 'http-server.mjs');
export const RELAY = join(BENCH_DIR, 'relay.mjs');
export const LOAD = join(BENCH_DIR, 'load.mjs');
export const GATEWAY_CLI = join(ROOT, 'dist', 'cli', 'main.js');

export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** A free TCP port on 127.0.0.1 (bind 0, read, close). */
export function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

/** Resolves once a TCP connect to 127.0.0.1:port succeeds (polling). */
export async function waitForPort(port, timeoutMs = 20_000, cancelled = () => false) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (cancelled()) throw new Error('cancelled');
    const ok = await new Promise((resolve) => {
      const sock = connect(port, '127.0.0.1');
      sock.once('connect', () => {
        sock.destroy();
        resolve(true);
      });
      sock.once('error', () => resolve(false));
    });
    if (ok) return;
    if (Date.now() > deadline) throw new Error(`port ${port} did not open within ${timeoutMs} ms`);
    await sleep(20);
  }
}

/**
 * Starts a server process in its own process group. Readiness: `ready(line)` is called for every
 * stdout and stderr line and returns a value (e.g. the URL) once the process is ready; or
 * `probe()` (e.g. a TCP connect poll) resolves with that value. `readyMs` is spawn → ready.
 */
export function startProcess(
  name,
  command,
  args,
  { env = {}, ready = () => undefined, probe, timeoutMs = 30_000, cwd = ROOT } = {},
) {
  const t0 = performance.now();
  const child = spawn(command, args, {
    cwd,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: true,
  });
  const tail = [];
  let exited = null;
  const exitPromise = new Promise((resolve) => child.once('exit', (code, signal) => resolve((exited = { code, signal }))));
  const handle = {
    name,
    pid: child.pid,
    child,
    lines: tail,
    readyValue: undefined,
    readyLine: undefined,
    readyMs: NaN,
    async stop() {
      if (exited) return exited;
      try {
        process.kill(-child.pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 5000);
      const r = await exitPromise;
      clearTimeout(timer);
      // Anything left in the group (e.g. a shell's grandchildren) goes too.
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
      return r;
    },
  };
  const promise = new Promise((resolve, reject) => {
    let done = false;
    const timer = setTimeout(() => {
      if (done) return;
      done = true;
      handle.stop();
      reject(new Error(`${name} not ready within ${timeoutMs} ms; output:\n${tail.join('\n')}`));
    }, timeoutMs);
    const markReady = (v, line) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      handle.readyValue = v;
      handle.readyLine = line;
      handle.readyMs = performance.now() - t0;
      resolve(handle);
    };
    if (probe) {
      probe(() => done).then(
        (v) => markReady(v ?? true, undefined),
        (err) => {
          if (done) return;
          done = true;
          clearTimeout(timer);
          handle.stop();
          reject(new Error(`${name}: ${err.message}; output:\n${tail.join('\n')}`));
        },
      );
    }
    const onLine = (line) => {
      tail.push(line);
      if (tail.length > 50) tail.shift();
      if (done) return;
      let v;
      try {
        v = ready(line);
      } catch {
        v = undefined;
      }
      if (v !== undefined) markReady(v, line);
    };
    for (const stream of [child.stdout, child.stderr]) {
      let buf = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk) => {
        buf += chunk;
        let nl;
        while ((nl = buf.indexOf('\n')) >= 0) {
          onLine(buf.slice(0, nl));
          buf = buf.slice(nl + 1);
        }
      });
    }
    exitPromise.then((e) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      reject(new Error(`${name} exited (${e.code ?? e.signal}) before ready; output:\n${tail.join('\n')}`));
    });
  });
  return promise;
}

/** Parses `{"listening": url}` (fixtures, relay). */
export function jsonListening(line) {
  if (!line.startsWith('{')) return undefined;
  const o = JSON.parse(line);
  return o.listening;
}

/** VmRSS of one process in KiB (from /proc/PID/status). */
export function rssKiB(pid) {
  const m = /VmRSS:\s+(\d+)\s+kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : NaN;
}

/** Sum of VmRSS over a process and all its descendants (KiB), and the number of processes. */
export function treeRssKiB(rootPid) {
  const children = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = readFileSync(`/proc/${d}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(d));
    } catch {
      /* raced */
    }
  }
  let total = 0;
  let count = 0;
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    try {
      total += rssKiB(p);
      count++;
    } catch {
      /* gone */
    }
    for (const c of children.get(p) ?? []) stack.push(c);
  }
  return { kib: total, processes: count };
}

/** Runs bench/load.mjs as a separate process and returns its JSON result. */
export function runLoadProcess(opts) {
  const args = [LOAD, '--url', opts.url];
  const map = {
    op: '--op',
    tool: '--tool',
    sessions: '--sessions',
    concurrency: '--concurrency',
    duration: '--duration',
    warmup: '--warmup',
    maxOps: '--max-ops',
    client: '--client',
    timeout: '--timeout',
  };
  for (const [k, flag] of Object.entries(map)) if (opts[k] !== undefined) args.push(flag, String(opts[k]));
  return new Promise((resolve, reject) => {
    const child = spawn(NODE, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c) => (out += c));
    child.stderr.on('data', (c) => (err += c));
    child.on('exit', (code) => {
      const last = out.trim().split('\n').pop() ?? '';
      let res;
      try {
        res = JSON.parse(last);
      } catch {
        return reject(new Error(`load generator failed (exit ${code}): ${out}${err}`));
      }
      if (res.fatal) return reject(new Error(`load generator: ${res.fatal}`));
      resolve(res);
    });
  });
}

/** Median of numbers. */
export function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}
