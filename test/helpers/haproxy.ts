/**
 * HAProxy for tests: the real `deploy/haproxy/haproxy.cfg` run as a process in front of local
 * servers standing for the Compose replicas. Tests that need it skip loudly when `haproxy` is not
 * installed (Debian/Ubuntu: `apt-get install -y haproxy`).
 */
import { spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * A free TCP port on 127.0.0.1 *below* the kernel's ephemeral range: a port that must stay free
 * from the moment it is chosen until a process binds it later (HAProxy, started after the
 * replicas whose URLs name it) cannot be taken meanwhile as the local port of some outgoing
 * connection, as a port from the ephemeral range can.
 */
export async function freeStablePort(): Promise<number> {
  let low = 32768;
  try {
    low = Number(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/)[0]) || low;
  } catch {
    // Not Linux: keep the IANA default start of the dynamic range.
  }
  const floor = Math.min(20_000, Math.max(1024, low - 5000));
  for (let attempt = 0; attempt < 50; attempt++) {
    const port = floor + Math.floor(Math.random() * Math.max(1, low - floor));
    const free = await new Promise<boolean>((resolve) => {
      const srv = createServer();
      srv.once('error', () => resolve(false));
      srv.listen(port, '127.0.0.1', () => srv.close(() => resolve(true)));
    });
    if (free) return port;
  }
  throw new Error('no free port below the ephemeral range');
}

/** The deployment's HAProxy configuration. */
export const HAPROXY_CFG = fileURLToPath(new URL('../../deploy/haproxy/haproxy.cfg', import.meta.url));

/** True when `haproxy -v` runs; otherwise warns once, loudly, naming what is skipped. */
export function haproxyGate(what: string): boolean {
  if (spawnSync('haproxy', ['-v']).status === 0) return true;
  console.warn(
    `\n!!! SKIPPED: ${what}: \`haproxy\` is not installed.\n!!! Install it (Debian/Ubuntu: apt-get install -y haproxy) to run them.\n`,
  );
  return false;
}

/** Options of {@link localHaproxyConfig}. */
export interface LocalHaproxyOptions {
  /** Port HAProxy listens on, on 127.0.0.1 (the file's `bind :8080`). */
  readonly port: number;
  /** Replica name as the file names it (`switchboard-1`) → its local port. */
  readonly replicas: Readonly<Record<string, number>>;
  /** Health-check interval replacing the file's `inter 2s`, e.g. `100ms`; `fall`/`rise` stay. */
  readonly checkInterval?: string;
}

/**
 * The text of `deploy/haproxy/haproxy.cfg` with its Compose addresses swapped for local ones.
 *
 * @throws Error when a replica of the file is not in `replicas` (it would keep a Compose name).
 */
export function localHaproxyConfig(options: LocalHaproxyOptions): string {
  let cfg = readFileSync(HAPROXY_CFG, 'utf8').replace(/^(\s*bind\s+):\d+/m, `$1127.0.0.1:${options.port}`);
  if (options.checkInterval !== undefined) cfg = cfg.replace(/\binter 2s\b/, `inter ${options.checkInterval}`);
  for (const [name, port] of Object.entries(options.replicas)) {
    cfg = cfg.replace(new RegExp(`(server ${name}) ${name}:\\d+`), `$1 127.0.0.1:${port}`);
  }
  const left = /^\s*server \S+ ([^\s:]+):/m.exec(cfg.replace(/^\s*server \S+ 127\.0\.0\.1:.*$/gm, ''));
  if (left) throw new Error(`no local port for replica ${left[1]}`);
  return cfg;
}

/** A running HAProxy. */
export interface HaproxyProcess {
  /** Its stdout and stderr so far (one `option httplog` line per request). */
  log(): string;
  /** The backend server of each request logged so far, in order (`switchboard-2`, …). */
  servedBy(): string[];
  /** SIGTERM, then waits for the exit; removes its directory. */
  stop(): Promise<void>;
}

/** Starts `haproxy -db` (foreground) with the configuration text `cfg`. */
export function startHaproxy(cfg: string): HaproxyProcess {
  const dir = mkdtempSync(join(tmpdir(), 'swb-haproxy-'));
  writeFileSync(join(dir, 'haproxy.cfg'), cfg);
  const child = spawn('haproxy', ['-db', '-f', join(dir, 'haproxy.cfg')], { stdio: ['ignore', 'pipe', 'pipe'] });
  let log = '';
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  return {
    log: () => log,
    servedBy: () => [...log.matchAll(/ \S+ switchboard\/(\S+) [\d/-]+ \d{3} /g)].map((m) => m[1]!),
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
      await exited;
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
