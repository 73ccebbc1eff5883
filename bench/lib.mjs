// Process helpers for the bench harness: start servers in their own process group, wait for
// readiness, read RSS from /proc, run the load generator as a separate process, stop cleanly.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
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
export const GATEWAY_CLI = join(ROOT, 'dist', 'bin', 'switchboard.js');

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
  const exitPromise = new Promise((resolve) =>
    child.once('exit', (code, signal) => resolve((exited = { code, signal }))),
  );
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
      const pid = /** @type {number} */ (child.pid);
      try {
        process.kill(-pid, 'SIGTERM');
      } catch {
        /* gone */
      }
      const timer = setTimeout(() => {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          /* gone */
        }
      }, 5000);
      const r = await exitPromise;
      clearTimeout(timer);
      // Anything left in the group (e.g. a shell's grandchildren) goes too.
      try {
        process.kill(-pid, 'SIGKILL');
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
      void handle.stop();
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
          void handle.stop();
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
    void exitPromise.then((e) => {
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
    verify: '--verify',
    era: '--era',
  };
  for (const [k, flag] of Object.entries(map)) if (opts[k] !== undefined) args.push(flag, String(opts[k]));
  for (const h of opts.headers ?? []) args.push('--header', h);
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

const CLK_TCK = 100; // USER_HZ on Linux

function procTimes(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields after ")": state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14)
  return { ppid: Number(f[1]), ticks: Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]) };
}

/**
 * CPU accounting snapshot: busy ticks of the whole machine and of this process's tree (this
 * process, every live descendant, and — through cutime/cstime — every reaped one).
 */
export function cpuSnapshot(rootPid = process.pid) {
  const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0];
  const v = line.trim().split(/\s+/).slice(1).map(Number);
  // user nice system idle iowait irq softirq steal
  const busy = v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] ?? 0);
  const kids = new Map();
  const times = new Map();
  for (const d of readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const t = procTimes(d);
      times.set(Number(d), t.ticks);
      if (!kids.has(t.ppid)) kids.set(t.ppid, []);
      kids.get(t.ppid).push(Number(d));
    } catch {
      /* raced */
    }
  }
  let ours = 0;
  const stack = [rootPid];
  while (stack.length) {
    const p = stack.pop();
    ours += times.get(p) ?? 0;
    for (const c of kids.get(p) ?? []) stack.push(c);
  }
  return { t: performance.now(), busy, ours };
}

/** CPU time (user + system, ms) consumed so far by one process itself (not its children). */
export function processCpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / CLK_TCK;
}

/** CPU used by processes outside this harness between two snapshots, in % of one core. */
export function foreignCpuPercent(a, b) {
  const secs = (b.t - a.t) / 1000;
  if (secs <= 0) return 0;
  const foreign = b.busy - a.busy - (b.ours - a.ours);
  return Math.max(0, (foreign / CLK_TCK / secs) * 100);
}

// ─── contenders ────────────────────────────────────────────────────────────────────────────────

const require = createRequire(import.meta.url);

/** The CLI entry and version of an installed npm package, or undefined. */
export function peerBin(pkg) {
  try {
    const pj = require.resolve(`${pkg}/package.json`);
    const meta = require(pj);
    const bin = typeof meta.bin === 'string' ? meta.bin : Object.values(meta.bin ?? {})[0];
    return { path: join(dirname(pj), bin), version: meta.version };
  } catch {
    return undefined;
  }
}

/** Switchboard `servers` entry for the stdio echo fixture. */
export const stdioEcho = (env) => ({ echo: { command: NODE, args: [FIXTURE_STDIO], ...(env ? { env } : {}) } });

/** The bare relay over the stdio fixture (env reaches the fixture, e.g. TOOLS), or over `upstream` (HTTP). */
export async function startRelay(env = {}, { upstream, nodeArgs = [] } = {}) {
  const args = upstream ? ['--upstream', upstream] : ['--', NODE, FIXTURE_STDIO];
  const h = await startProcess('relay', NODE, [...nodeArgs, RELAY, ...args], { ready: jsonListening, env });
  h.url = h.readyValue;
  return h;
}

/** The Streamable HTTP fixture on a free port. */
export async function startHttpFixture(env = {}) {
  const h = await startProcess('http-fixture', NODE, [FIXTURE_HTTP], { ready: jsonListening, env });
  h.url = h.readyValue;
  return h;
}

/**
 * An external guard for the guardrails contender: answers every POST with `{"allow":true}` after
 * reading its body, over keep-alive, on a free loopback port.
 *
 * @returns `{ url, stop() }`
 */
export async function startGuardServer() {
  const { createServer } = await import('node:http');
  const server = createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': 14 });
      res.end('{"allow":true}');
    });
  });
  server.keepAliveTimeout = 60_000;
  await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
  server.unref(); // never what keeps the harness alive
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}/check`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  };
}

/** Plain-object deep merge (b wins); arrays and scalars are replaced. */
export function deepMerge(a, b) {
  if (typeof a !== 'object' || a === null || Array.isArray(a)) return b === undefined ? a : b;
  if (typeof b !== 'object' || b === null || Array.isArray(b)) return b === undefined ? a : b;
  const out = { ...a };
  for (const [k, v] of Object.entries(b)) out[k] = k in a ? deepMerge(a[k], v) : v;
  return out;
}

let configCount = 0;

/** Guard servers {@link writeFeaturesConfig} started; they live as long as this process. */
const guardServers = [];

/**
 * Writes a Switchboard config for `servers` with the config fragment in `featuresFile` (YAML,
 * e.g. bench/features.yaml) merged in. When the fragment turns on API-token auth, creates a
 * token (`switchboard token create`) and returns the header that carries it.
 *
 * @returns `{ configFile, headers }` (`headers`: `'Name: value'` strings for the load generator)
 */
export async function writeFeaturesConfig(servers, featuresFile, { tmpDir }) {
  const { parse } = await import('yaml');
  const fragment = parse(readFileSync(featuresFile, 'utf8')) ?? {};
  // A guardrail webhook is pointed at a guard server of this process (always allows; keep-alive).
  const hooks = (fragment.guardrails ?? []).filter((g) => g?.webhook);
  if (hooks.length > 0) {
    const guard = await startGuardServer();
    guardServers.push(guard);
    for (const g of hooks) g.webhook.url = guard.url;
  }
  const configFile = writeSwitchboardConfig(servers, { tmpDir, extraConfig: fragment });
  const headers = String(fragment.auth?.mode ?? '').includes('tokens')
    ? [`Authorization: Bearer ${createToken(configFile)}`]
    : [];
  return { configFile, headers };
}

/**
 * Starts Switchboard for `servers`, with the config fragment of `features` (a YAML file) merged
 * in when given (see {@link writeFeaturesConfig}).
 *
 * @returns `{ proc, headers }`: the process handle, and the headers every request must carry
 */
export async function startSwitchboardWithFeatures(servers, features, { tmpDir, nodeArgs = [], env = {} }) {
  if (!features) return { proc: await startSwitchboard(servers, { tmpDir, nodeArgs, env }), headers: [] };
  const { configFile, headers } = await writeFeaturesConfig(servers, features, { tmpDir });
  return { proc: await startSwitchboard(servers, { tmpDir, nodeArgs, env, configFile }), headers };
}

/**
 * Writes a Switchboard config (JSON, which is valid YAML) in a directory of its own, so each
 * instance gets its own `dataDir` (`.switchboard` next to the file: its SQLite database).
 *
 * `uncapped` (default true) lifts `sessions.maxPerPrincipal`; pass false for builds that predate
 * that key (an A/B against an older commit), which only open a few sessions anyway.
 */
export function writeSwitchboardConfig(servers, { tmpDir, extraConfig = {}, uncapped = true }) {
  const dir = join(tmpDir, `switchboard-${process.pid}-${++configCount}`);
  mkdirSync(dir, { recursive: true });
  const file = join(dir, 'switchboard.yaml');
  const config = deepMerge(
    // Scenarios 5 and 6 open 10,000+ sessions as the one anonymous principal: no per-principal cap.
    {
      listen: { host: '127.0.0.1', port: 0 },
      sessions: { maxSessions: 1_000_000, ...(uncapped ? { maxPerPrincipal: 0 } : {}) },
      servers,
    },
    extraConfig,
  );
  writeFileSync(file, JSON.stringify(config, null, 2));
  return file;
}

/**
 * Rows in the `usage_log` table of the SQLite database of a config written by
 * {@link writeSwitchboardConfig} (`<config dir>/.switchboard/switchboard.db`). Call it after the
 * gateway stopped: a graceful stop flushes the usage log.
 */
export async function countUsageRows(configFile) {
  const { default: BetterSqlite3 } = await import('better-sqlite3');
  const db = new BetterSqlite3(join(dirname(configFile), '.switchboard', 'switchboard.db'), { readonly: true });
  try {
    return db.prepare('select count(*) as n from usage_log').get().n;
  } finally {
    db.close();
  }
}

/** `switchboard token create --json` against a config's database; returns the bearer token. */
export function createToken(configFile, name = 'bench') {
  const r = spawnSync(NODE, [GATEWAY_CLI, 'token', 'create', '--config', configFile, '--name', name, '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
  });
  if (r.status !== 0) throw new Error(`token create failed (${r.status}): ${r.stderr || r.stdout}`);
  const line = r.stdout.trim().split('\n').pop() ?? '';
  return JSON.parse(line).token;
}
/**
 * Starts `switchboard serve` (dist/) with these `servers` (the config is written as JSON, which is
 * valid YAML). `cpuProfDir` runs it under `node --cpu-prof`. Resolves with url (…/mcp), startupMs.
 */
export async function startSwitchboard(
  servers,
  { tmpDir, cpuProfDir, nodeArgs: extraNodeArgs = [], env = {}, extraConfig = {}, configFile } = {},
) {
  if (!existsSync(GATEWAY_CLI)) throw new Error(`${GATEWAY_CLI} missing: run \`npm run build\` first`);
  const file = configFile ?? writeSwitchboardConfig(servers, { tmpDir, extraConfig });
  const nodeArgs = [...extraNodeArgs];
  if (cpuProfDir) {
    mkdirSync(cpuProfDir, { recursive: true });
    nodeArgs.push('--cpu-prof', '--cpu-prof-dir', cpuProfDir);
  }
  // Ready on the `listening` log line; /readyz polling covers configs that raise the log level.
  // (/healthz answers as soon as the port is bound, before the upstreams are ready.)
  const port = await freePort();
  const base = `http://127.0.0.1:${port}`;
  const h = await startProcess(
    'switchboard',
    NODE,
    [...nodeArgs, GATEWAY_CLI, 'serve', '--config', file, '--port', String(port)],
    {
      env: { SWITCHBOARD_LOG_FORMAT: 'json', ...env },
      ready: (line) => {
        if (!line.startsWith('{')) return undefined;
        const o = JSON.parse(line);
        return o.msg === 'listening' ? o : undefined;
      },
      probe: async (cancelled) => {
        for (;;) {
          if (cancelled()) throw new Error('cancelled');
          try {
            const r = await fetch(`${base}/readyz`);
            await r.arrayBuffer();
            if (r.ok) return { url: base };
          } catch {
            /* not yet */
          }
          await sleep(50);
        }
      },
    },
  );
  if (h.readyValue.startupMs === undefined) {
    // Ready by probe first (pino writes asynchronously): give the listening line a moment.
    for (let i = 0; i < 20 && h.startupMs === undefined; i++) {
      for (const line of h.lines) {
        if (line.includes('"listening"')) {
          try {
            h.startupMs = JSON.parse(line).startupMs;
          } catch {
            /* partial */
          }
        }
      }
      if (h.startupMs === undefined) await sleep(25);
    }
  } else {
    h.startupMs = h.readyValue.startupMs;
  }
  h.url = `${base}/mcp`;
  return h;
}

/** Starts supergateway (`--stateful`) or mcp-proxy on a free port over the stdio fixture. */
export async function startPeer(kind) {
  const pkg = peerBin(kind);
  if (!pkg) throw new Error(`${kind} is not installed (npm install -D ${kind})`);
  const port = await freePort();
  // supergateway: --logLevel none, because at its default (info) it logs every message, which
  // would make it look slower than it can be; the peers are measured at their best.
  const args =
    kind === 'supergateway'
      ? [
          pkg.path,
          '--stdio',
          `${NODE} ${FIXTURE_STDIO}`,
          '--outputTransport',
          'streamableHttp',
          '--stateful',
          '--port',
          String(port),
          '--logLevel',
          'none',
        ]
      : [pkg.path, '--port', String(port), '--host', '127.0.0.1', '--server', 'stream', '--', NODE, FIXTURE_STDIO];
  const h = await startProcess(kind, NODE, args, {
    probe: (cancelled) => waitForPort(port, 30_000, cancelled),
    timeoutMs: 40_000,
  });
  h.url = `http://127.0.0.1:${port}/mcp`;
  h.version = pkg.version;
  return h;
}

/** The HAProxy binary of the cluster scenario (`SWITCHBOARD_BENCH_HAPROXY`, else `haproxy` from PATH), or undefined. */
export function haproxyBin() {
  const bin = process.env.SWITCHBOARD_BENCH_HAPROXY ?? 'haproxy';
  const r = spawnSync(bin, ['-v'], { encoding: 'utf8' });
  return r.status === 0 ? bin : undefined;
}

/**
 * HAProxy on a free loopback port in front of `backends` (base URLs), without affinity: in HTTP
 * mode with keep-alive on both sides, every request is balanced round robin on its own, a
 * refused connection is retried on the next server. Resolves with `{ url: …/mcp, stop }`.
 */
export async function startHaproxy(backends, { tmpDir }) {
  const bin = haproxyBin();
  if (!bin) throw new Error('haproxy is not installed (apt-get install -y haproxy)');
  const port = await freePort();
  const file = join(tmpDir, `haproxy-${process.pid}-${port}.cfg`);
  writeFileSync(
    file,
    [
      'global',
      '  maxconn 4096',
      '  nbthread 1',
      'defaults',
      '  mode http',
      '  timeout connect 2s',
      '  timeout client 60s',
      '  timeout server 60s',
      '  option http-keep-alive',
      '  http-reuse always',
      '  retries 2',
      '  option redispatch',
      '  retry-on conn-failure empty-response',
      'frontend mcp',
      `  bind 127.0.0.1:${port}`,
      '  default_backend replicas',
      'backend replicas',
      '  balance roundrobin',
      ...backends.map((b, i) => `  server r${i + 1} ${new URL(b).host}`),
      '',
    ].join('\n'),
  );
  const proc = spawn(bin, ['-db', '-f', file], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  proc.stderr.on('data', (d) => (err += d));
  for (let i = 0; ; i++) {
    if (proc.exitCode !== null) throw new Error(`haproxy exited with ${proc.exitCode}: ${err}`);
    const up = await new Promise((resolve) => {
      const s = connect(port, '127.0.0.1', () => {
        s.destroy();
        resolve(true);
      });
      s.on('error', () => resolve(false));
    });
    if (up) break;
    if (i > 100) throw new Error(`haproxy did not listen on ${port}: ${err}`);
    await sleep(50);
  }
  return {
    pid: proc.pid,
    url: `http://127.0.0.1:${port}/mcp`,
    stop: () =>
      new Promise((resolve) => {
        if (proc.exitCode !== null) return resolve();
        proc.once('exit', () => resolve());
        proc.kill('SIGTERM');
      }),
  };
}
