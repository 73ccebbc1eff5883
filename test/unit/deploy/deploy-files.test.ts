/**
 * The deployment files (`deploy/`) agree with each other and with the code: the YAML parses, the
 * sample configuration passes the gateway's own validation and bind check, every replica of the
 * Compose file shares one secret, database and Redis, the balancer and the probes reach the port
 * the configuration listens on, and the environment variables set are ones the code reads.
 *
 * No container runtime is needed: the images and the Compose file are read, not run. HAProxy is
 * run when it is installed, with the real `deploy/haproxy/haproxy.cfg`, in front of three small
 * HTTP servers standing in for the replicas.
 */
import { spawnSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer, request as httpRequest, Agent, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { parse, parseAllDocuments } from 'yaml';
import { checkBind } from '../../../src/app/listen.js';
import { loadConfigFile, parseConfigText } from '../../../src/config/load.js';
import type { SwitchboardConfig } from '../../../src/config/schema.js';
import {
  HAPROXY_CFG,
  haproxyGate,
  localHaproxyConfig,
  startHaproxy,
  type HaproxyProcess,
} from '../../helpers/haproxy.js';
import { freePort } from '../../helpers/redis.js';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const DEPLOY = join(ROOT, 'deploy');

function read(path: string): string {
  return readFileSync(join(ROOT, path), 'utf8');
}

function* walk(dir: string): Generator<string> {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const full = join(dir, e.name);
    if (e.isDirectory()) yield* walk(full);
    else yield full;
  }
}

/** A parsed YAML value, navigated loosely; each test asserts on the shape it relies on. */
// eslint-disable-next-line @typescript-eslint/no-explicit-any -- third-party manifests, checked by assertions
type Doc = Record<string, any>;

function yamlDoc(path: string): Doc {
  return parse(read(path)) as Doc;
}

/** Kubernetes manifests of `deploy/kubernetes/` by kind. */
function manifest(kind: string): Doc {
  for (const file of readdirSync(join(DEPLOY, 'kubernetes'))) {
    if (!file.endsWith('.yaml')) continue;
    for (const doc of parseAllDocuments(read(`deploy/kubernetes/${file}`))) {
      const value = doc.toJS() as Doc | null;
      if (value?.kind === kind) return value;
    }
  }
  throw new Error(`no ${kind} in deploy/kubernetes/`);
}

/** The instructions of the Dockerfile's last stage, continuation lines joined. */
function runtimeStage(): string[] {
  const lines = read('deploy/Dockerfile')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'));
  const last = lines.findLastIndex((l) => /^FROM\s/i.test(l));
  return lines.slice(last);
}

function instruction(stage: string[], name: string): string[] {
  return stage.filter((l) => l.toUpperCase().startsWith(`${name} `)).map((l) => l.slice(name.length).trim());
}

/** The exec-form argument list of a CMD/ENTRYPOINT/HEALTHCHECK CMD line. */
function execForm(text: string): string[] {
  const json = text.slice(text.indexOf('['));
  return JSON.parse(json) as string[];
}

/** Every source file's text under src/, for the environment-variable check. */
function sourceText(): string {
  let all = '';
  for (const file of walk(join(ROOT, 'src'))) if (file.endsWith('.ts')) all += readFileSync(file, 'utf8');
  return all;
}

let config: SwitchboardConfig;
let warnings: string[];

beforeAll(async () => {
  warnings = [];
  config = await loadConfigFile(join(DEPLOY, 'switchboard.yaml'), { env: {}, onWarning: (w) => warnings.push(w) });
});

describe('deploy/ files', () => {
  it('parses every YAML file', () => {
    const files = [...walk(DEPLOY)].filter((f) => /\.ya?ml$/.test(f));
    expect(files.length).toBeGreaterThanOrEqual(8);
    for (const file of files) {
      for (const doc of parseAllDocuments(readFileSync(file, 'utf8'))) {
        expect(doc.errors.map((e) => `${relative(ROOT, file)}: ${e.message}`)).toEqual([]);
      }
    }
  });

  it('has a sample configuration the gateway accepts, binding beyond loopback without --insecure', () => {
    expect(warnings).toEqual([]);
    expect(config.listen.host).toBe('0.0.0.0');
    // The check `serve` makes before binding: passes only because clients must authenticate.
    expect(() => checkBind(config, '0.0.0.0', undefined)).not.toThrow();
    expect(config.auth.mode).not.toBe('none');
    // Run from the image's package root, where the reference server is installed.
    expect(config.servers.everything).toMatchObject({ command: 'node', cwd: '/app' });
  });

  it('puts the same gateway settings in the Kubernetes ConfigMap as in deploy/switchboard.yaml', () => {
    const text = manifest('ConfigMap').data?.['switchboard.yaml'] as string;
    const fromMap = parseConfigText(text, { path: '/etc/switchboard/switchboard.yaml', env: {} });
    expect(parse(text)).toEqual(yamlDoc('deploy/switchboard.yaml'));
    expect(fromMap.listen).toEqual(config.listen);
  });

  it('builds an image that serves the mounted config on 0.0.0.0 as a non-root user, never with --insecure', () => {
    const stage = runtimeStage();
    const cmd = [...execForm(instruction(stage, 'ENTRYPOINT')[0]!), ...execForm(instruction(stage, 'CMD')[0]!)];
    expect(cmd.slice(0, 3)).toEqual(['node', 'dist/bin/switchboard.js', 'serve']);
    expect(cmd[cmd.indexOf('--config') + 1]).toBe('/etc/switchboard/switchboard.yaml');
    expect(cmd[cmd.indexOf('--host') + 1]).toBe('0.0.0.0');
    expect(cmd).not.toContain('--insecure');
    // The flags are the CLI's own.
    const cli = read('src/cli/main.ts');
    expect(cli).toContain("'-c, --config <file>'");
    expect(cli).toContain("'--host <host>'");

    expect(instruction(stage, 'COPY')).toContain('deploy/switchboard.yaml /etc/switchboard/switchboard.yaml');
    const user = instruction(stage, 'USER')[0] ?? 'root';
    expect(user).toMatch(/^[1-9]\d*(:\d+)?$/);
    expect(instruction(stage, 'EXPOSE')).toEqual([String(config.listen.port)]);
    const health = instruction(stage, 'HEALTHCHECK')[0] ?? '';
    expect(execForm(health)[0]).toBe('node');
    expect(health).toContain(`http://127.0.0.1:${config.listen.port}/healthz`);
  });

  it('installs production dependencies with build tools in their own stage and omits dev dependencies', () => {
    const text = read('deploy/Dockerfile');
    const stage = /FROM \S+ AS prod-deps\n([\s\S]*?)\nFROM /.exec(text)?.[1] ?? '';
    expect(stage).toMatch(/apt-get install[^\n]*python3 make g\+\+/);
    expect(stage).toContain('npm ci --omit=dev');
    expect(runtimeStage()).toContain('COPY --from=prod-deps /app/node_modules ./node_modules');
    expect(text).toMatch(/npm run build/);
  });

  it('runs three Compose replicas of the image with one secret, one PostgreSQL and one Redis', () => {
    const compose = yamlDoc('deploy/compose.yaml');
    const services = compose.services as Record<string, Doc>;
    const replicas = Object.entries(services).filter(([, s]) => s.build?.dockerfile === 'deploy/Dockerfile');
    expect(replicas.map(([name]) => name)).toEqual(['switchboard-1', 'switchboard-2', 'switchboard-3']);
    const envs = replicas.map(([, s]) => s.environment as Record<string, string>);
    for (const env of envs) expect(env).toEqual(envs[0]);
    const env = envs[0]!;
    expect(env.SWITCHBOARD_SECRET).toMatch(/^\$\{SWITCHBOARD_SECRET:\?/);
    expect(env.SWITCHBOARD_REDIS_URL).toBe('redis://redis:6379/0');
    expect(new URL(env.SWITCHBOARD_DATABASE_URL!).protocol).toBe('postgres:');
    expect(new URL(env.SWITCHBOARD_DATABASE_URL!).hostname).toBe('postgres');
    expect(services.redis?.image).toMatch(/^redis:/);
    expect(services.postgres?.image).toMatch(/^postgres:/);

    for (const [, s] of replicas) {
      expect(s.volumes).toContain('./switchboard.yaml:/etc/switchboard/switchboard.yaml:ro');
      expect((s.healthcheck.test as string[]).join(' ')).toContain(`http://127.0.0.1:${config.listen.port}/readyz`);
      // Compose's SIGKILL comes after the gateway's own deadline.
      expect(Number(/^(\d+)s$/.exec(s.stop_grace_period as string)?.[1]) * 1000).toBeGreaterThan(
        config.shutdown.gracePeriod,
      );
      expect(Object.keys(s.depends_on as Doc).sort()).toEqual(['postgres', 'redis']);
    }
    expect(services.haproxy?.volumes).toContain('./haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg:ro');
  });

  it('balances every Compose replica per request, without affinity, checking /readyz', () => {
    const cfg = read('deploy/haproxy/haproxy.cfg');
    const servers = [...cfg.matchAll(/^\s*server\s+(\S+)\s+(\S+)/gm)].map((m) => m[2]);
    expect(servers).toEqual(
      ['switchboard-1', 'switchboard-2', 'switchboard-3'].map((s) => `${s}:${config.listen.port}`),
    );
    expect(cfg).toMatch(/^\s*balance\s+roundrobin\s*$/m);
    expect(cfg).toMatch(/^\s*http-check send meth GET uri \/readyz\b/m);
    const directives = cfg
      .split('\n')
      .map((l) => l.replace(/#.*/, '').trim())
      .filter(Boolean);
    for (const affinity of [/^stick\b/, /^cookie\b/, /^option prefer-last-server\b/, /^balance (source|hdr|uri)/]) {
      expect(directives.filter((d) => affinity.test(d))).toEqual([]);
    }
  });

  it('probes the Kubernetes pods on the configured port: /readyz for readiness, /healthz for liveness', () => {
    const deployment = manifest('Deployment');
    expect(deployment.spec.replicas).toBe(3);
    const pod = deployment.spec.template.spec as Doc;
    const container = pod.containers[0] as Doc;
    const ports = Object.fromEntries((container.ports as Doc[]).map((p) => [p.name, p.containerPort]));
    const port = (probe: Doc): unknown =>
      typeof probe.httpGet.port === 'string' ? ports[probe.httpGet.port] : probe.httpGet.port;
    expect(container.readinessProbe.httpGet.path).toBe('/readyz');
    expect(port(container.readinessProbe)).toBe(config.listen.port);
    expect(container.livenessProbe.httpGet.path).toBe('/healthz');
    expect(port(container.livenessProbe)).toBe(config.listen.port);

    // The kill comes after preStop plus the gateway's own deadline.
    const [sleep, seconds] = container.lifecycle.preStop.exec.command as string[];
    expect(sleep).toBe('sleep');
    expect(pod.terminationGracePeriodSeconds).toBeGreaterThan(Number(seconds) + config.shutdown.gracePeriod / 1000);

    const service = manifest('Service');
    const labels = deployment.spec.template.metadata.labels as Doc;
    expect(labels).toMatchObject(service.spec.selector as Doc);
    expect(labels).toMatchObject(manifest('PodDisruptionBudget').spec.selector.matchLabels as Doc);
    expect(ports[service.spec.ports[0].targetPort as string]).toBe(config.listen.port);
    expect(manifest('HorizontalPodAutoscaler').spec.scaleTargetRef.name).toBe(deployment.metadata.name);
    expect(pod.volumes.find((v: Doc) => v.configMap)?.configMap.name).toBe(manifest('ConfigMap').metadata.name);
  });

  it('takes every Kubernetes secret variable from the Secret', () => {
    const container = manifest('Deployment').spec.template.spec.containers[0] as Doc;
    const secret = manifest('Secret');
    const refs = (container.env as Doc[])
      .filter((e) => e.valueFrom?.secretKeyRef)
      .map((e) => [e.name, e.valueFrom.secretKeyRef.name, e.valueFrom.secretKeyRef.key]);
    expect(refs.map(([name]) => name).sort()).toEqual(Object.keys(secret.stringData as Doc).sort());
    for (const [name, secretName, key] of refs) {
      expect(secretName).toBe(secret.metadata.name);
      expect(key).toBe(name);
    }
    expect(refs.map(([name]) => name)).toEqual(
      expect.arrayContaining(['SWITCHBOARD_SECRET', 'SWITCHBOARD_DATABASE_URL', 'SWITCHBOARD_REDIS_URL']),
    );
  });

  it('sets only environment variables the code reads, and documents each', () => {
    const names = new Set<string>();
    for (const file of walk(DEPLOY)) {
      for (const m of readFileSync(file, 'utf8').matchAll(/\bSWITCHBOARD_[A-Z_]+\b/g)) names.add(m[0]);
    }
    expect(names.size).toBeGreaterThanOrEqual(5);
    const src = sourceText();
    const docs = read('docs/deployment.md');
    for (const name of names) {
      expect(new RegExp(`(?:env\\.|['"\`])${name}\\b`).test(src), `${name} is read in src/`).toBe(true);
      expect(docs, `${name} in docs/deployment.md`).toContain(name);
    }
  });

  it('is linked from the README', () => {
    expect(read('README.md')).toContain('(docs/deployment.md)');
  });
});

const haproxy = haproxyGate('HAProxy checks of deploy/haproxy/haproxy.cfg');

/** A stand-in replica: answers `/readyz` as told, and every other request with its name. */
interface Replica {
  readonly name: string;
  readonly server: Server;
  readonly port: number;
  ready: boolean;
  /** Requests other than health checks. */
  served: number;
}

async function startReplica(name: string): Promise<Replica> {
  const replica = { name, ready: true, served: 0 } as Replica;
  const server = createServer((req, res) => {
    if (req.url === '/readyz') {
      res.writeHead(replica.ready ? 200 : 503).end();
      return;
    }
    replica.served++;
    res.writeHead(200, { 'content-type': 'text/plain' }).end(name);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return Object.assign(replica, { server, port: (server.address() as AddressInfo).port });
}

/** GETs `path` over `agent`; resolves with the body and whether the connection was reused. */
function get(agent: Agent, port: number, path: string): Promise<{ status: number; body: string; reused: boolean }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, agent }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, reused: req.reusedSocket }));
    });
    req.on('error', reject);
    req.end();
  });
}

describe.skipIf(!haproxy)('deploy/haproxy/haproxy.cfg under HAProxy', () => {
  let proc: HaproxyProcess | undefined;
  let replicas: Replica[] = [];
  let agent: Agent | undefined;

  afterEach(async () => {
    agent?.destroy();
    await proc?.stop();
    await Promise.all(replicas.map((r) => new Promise((resolve) => r.server.close(resolve))));
    proc = undefined;
    replicas = [];
  });

  it('is valid for `haproxy -c`', () => {
    const check = spawnSync('haproxy', ['-c', '-f', HAPROXY_CFG], { encoding: 'utf8' });
    expect(check.status, check.stdout + check.stderr).toBe(0);
  });

  it('sends each request of one client connection to the next ready replica, and none to an unready one', async () => {
    replicas = await Promise.all(['switchboard-1', 'switchboard-2', 'switchboard-3'].map(startReplica));
    const port = await freePort();
    proc = startHaproxy(
      localHaproxyConfig({
        port,
        replicas: Object.fromEntries(replicas.map((r) => [r.name, r.port])),
        checkInterval: '100ms',
      }),
    );
    agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const deadline = Date.now() + 10_000;
    // Up once every replica has passed its checks: three requests in a row reach three replicas.
    for (;;) {
      const names = new Set<string>();
      for (let i = 0; i < 3; i++)
        names.add(
          await get(agent, port, '/mcp').then(
            (r) => r.body,
            () => '',
          ),
        );
      if (names.size === 3) break;
      if (Date.now() > deadline) throw new Error('HAProxy did not balance over the three replicas within 10 s');
      await new Promise((resolve) => setTimeout(resolve, 100));
    }

    for (const r of replicas) r.served = 0;
    const answers: Array<{ status: number; body: string; reused: boolean }> = [];
    for (let i = 0; i < 9; i++) answers.push(await get(agent, port, '/mcp'));
    expect(answers.every((a) => a.status === 200 && a.reused)).toBe(true);
    expect(replicas.map((r) => r.served)).toEqual([3, 3, 3]);
    // Consecutive requests on the one connection never go to the same replica twice in a row.
    expect(answers.every((a, i) => i === 0 || a.body !== answers[i - 1]!.body)).toBe(true);

    // A replica whose /readyz fails leaves the rotation.
    replicas[2]!.ready = false;
    for (;;) {
      replicas[2]!.served = 0;
      for (let i = 0; i < 6; i++) await get(agent, port, '/mcp');
      if (replicas[2]!.served === 0) break;
      if (Date.now() > deadline + 5_000) throw new Error('the unready replica still gets requests');
    }
    for (const r of replicas) r.served = 0;
    for (let i = 0; i < 6; i++) await get(agent, port, '/mcp');
    expect(replicas.map((r) => r.served)).toEqual([3, 3, 0]);

    // The balancer does not hand out one replica's metrics as the gateway's.
    expect((await get(agent, port, '/metrics')).status).toBe(404);
  });
});
