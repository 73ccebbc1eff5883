/**
 * The topology of `deploy/compose.yaml` run as processes, without containers: three
 * `switchboard serve` replicas of `deploy/switchboard.yaml` sharing one `SWITCHBOARD_SECRET`, one
 * PostgreSQL database and one Redis, behind HAProxy running `deploy/haproxy/haproxy.cfg` (the
 * Compose addresses swapped for local ports). Requests go through the balancer, round robin per
 * request, and HAProxy's request log says which replica answered each.
 *
 * Needs `haproxy`, PostgreSQL and Redis; each missing one skips the file loudly (in CI, a missing
 * PostgreSQL or Redis fails it).
 */
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse, stringify } from 'yaml';
import {
  freeStablePort,
  haproxyGate,
  localHaproxyConfig,
  startHaproxy,
  type HaproxyProcess,
} from '../helpers/haproxy.js';
import { createSchema, dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../helpers/postgres.js';
import { deleteKeys, REDIS_URL, redisGate, uniqueKeyPrefix } from '../helpers/redis.js';
import { CLI, ROOT, startServe, type ServeProcess } from '../helpers/serve.js';

const run = haproxyGate('the deployment topology test (three replicas behind HAProxy)')
  ? (await postgresGate('deployment topology test')) && (await redisGate('deployment topology test'))
  : false;

const NAMES = ['switchboard-1', 'switchboard-2', 'switchboard-3'];
const MODERN = '2026-07-28';

/** A modern (stateless) `tools/call` of the reference server's echo, as a client of that era sends it. */
function echoCall(text: string): { body: string; headers: Record<string, string> } {
  return {
    body: JSON.stringify({
      jsonrpc: '2.0',
      id: 1,
      method: 'tools/call',
      params: {
        name: 'everything__echo',
        arguments: { message: text },
        _meta: {
          'io.modelcontextprotocol/protocolVersion': MODERN,
          'io.modelcontextprotocol/clientInfo': { name: 'deploy-test', version: '1' },
          'io.modelcontextprotocol/clientCapabilities': {},
        },
      },
    }),
    headers: { 'mcp-protocol-version': MODERN, 'mcp-method': 'tools/call', 'mcp-name': 'everything__echo' },
  };
}

describe.skipIf(!run)('the deploy/ topology as processes: three replicas behind HAProxy', () => {
  const schema = uniqueSchema('deploy');
  const keyPrefix = uniqueKeyPrefix('deploy');
  let dir: string;
  let config: string;
  let env: NodeJS.ProcessEnv;
  let replicas: ServeProcess[] = [];
  let balancer: HaproxyProcess | undefined;
  let url: string;
  let admin: string;

  /** A request through the balancer; resolves with the status, body and the replica that answered. */
  async function through(
    path: string,
    init: { method?: string; token?: string; body?: string; headers?: Record<string, string> } = {},
  ): Promise<{ status: number; text: string; headers: Headers; replica: string }> {
    const before = balancer!.servedBy().length;
    const res = await fetch(`${url}${path}`, {
      method: init.method ?? (init.body === undefined ? 'GET' : 'POST'),
      headers: {
        ...(init.body === undefined
          ? {}
          : { 'content-type': 'application/json', accept: 'application/json, text/event-stream' }),
        ...(init.token === undefined ? {} : { authorization: `Bearer ${init.token}` }),
        ...init.headers,
      },
      ...(init.body === undefined ? {} : { body: init.body }),
    });
    const text = await res.text();
    // HAProxy logs a request once its response is complete.
    const deadline = Date.now() + 5_000;
    while (balancer!.servedBy().length === before && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    return { status: res.status, text, headers: res.headers, replica: balancer!.servedBy().at(-1) ?? '' };
  }

  beforeAll(async () => {
    await createSchema(schema);
    dir = mkdtempSync(join(tmpdir(), 'swb-deploy-'));
    // deploy/switchboard.yaml as the image runs it, with what must differ on a shared test
    // machine: the reference server's package root, and Redis names of this run only.
    const doc = parse(readFileSync(join(ROOT, 'deploy/switchboard.yaml'), 'utf8')) as {
      servers: { everything: { cwd: string } };
      rateLimiting: { keyPrefix: string };
      auth: { revocationChannel: string };
      dataDir: string;
    };
    doc.servers.everything.cwd = ROOT;
    doc.rateLimiting.keyPrefix = `${keyPrefix}:rl`;
    doc.auth.revocationChannel = `${keyPrefix}:revoked`;
    doc.dataDir = join(dir, 'data');
    config = join(dir, 'switchboard.yaml');
    writeFileSync(config, stringify(doc));

    // Named in SWITCHBOARD_PUBLIC_URL before HAProxy binds it: a port no outgoing connection takes.
    const port = await freeStablePort();
    url = `http://127.0.0.1:${port}`;
    env = {
      ...process.env,
      SWITCHBOARD_SECRET: randomBytes(48).toString('base64url'),
      SWITCHBOARD_DATABASE_URL: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      SWITCHBOARD_REDIS_URL: REDIS_URL,
      SWITCHBOARD_PUBLIC_URL: url,
      SWITCHBOARD_LOG_FORMAT: 'json',
      SWITCHBOARD_LOG_LEVEL: 'info',
    };
    // Started together on an empty schema, as `docker compose up` starts them.
    replicas = await Promise.all(
      NAMES.map(() => startServe(['--config', config, '--host', '127.0.0.1', '--port', '0'], { env })),
    );
    balancer = startHaproxy(
      localHaproxyConfig({
        port,
        replicas: Object.fromEntries(NAMES.map((name, i) => [name, Number(new URL(replicas[i]!.url).port)])),
        checkInterval: '200ms',
      }),
    );
    const { stdout } = await promisify(execFile)(
      process.execPath,
      [...CLI, 'token', 'create', '--config', config, '--name', 'admin', '--permissions', 'admin.*', '--json'],
      { env, cwd: ROOT },
    );
    admin = (JSON.parse(stdout) as { token: string }).token;

    // In rotation once three readiness requests in a row reach three replicas.
    const deadline = Date.now() + 20_000;
    for (;;) {
      const answers = [];
      for (let i = 0; i < 3; i++) answers.push(await through('/readyz').catch(() => undefined));
      if (answers.every((a) => a?.status === 200) && new Set(answers.map((a) => a!.replica)).size === 3) break;
      if (Date.now() > deadline) throw new Error(`the replicas did not all become ready:\n${balancer.log()}`);
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }, 90_000);

  afterAll(async () => {
    await balancer?.stop();
    for (const r of replicas) if (r.child.exitCode === null && r.child.signalCode === null) r.child.kill('SIGKILL');
    await Promise.all(replicas.map((r) => r.exited));
    if (run) {
      await dropSchema(schema);
      await deleteKeys(keyPrefix);
    }
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('reports every replica ready with its database and Redis, one after another', async () => {
    const answers = [await through('/readyz'), await through('/readyz'), await through('/readyz')];
    expect(new Set(answers.map((a) => a.replica))).toEqual(new Set(NAMES));
    for (const a of answers) {
      expect(a.status).toBe(200);
      expect(JSON.parse(a.text)).toMatchObject({
        status: 'ready',
        stores: [
          { name: 'database', ok: true },
          { name: 'redis', ok: true },
        ],
      });
    }
  });

  it('accepts a token issued through one replica on every replica, and refuses it on all at once after a revocation through one', async () => {
    const issued = await through('/api/v1/tokens', {
      token: admin,
      body: JSON.stringify({ name: 'client', permissions: ['servers.use', 'tools.execute'] }),
    });
    expect(issued.status).toBe(201);
    const client = JSON.parse(issued.text) as { id: string; token: string };

    // Stateless (2026-07-28) calls: each request on the next replica, each verifying the token.
    const calls = [];
    for (let i = 0; i < 3; i++) {
      const { body, headers } = echoCall(`hello ${i}`);
      calls.push(await through('/mcp', { token: client.token, body, headers }));
    }
    expect(new Set(calls.map((c) => c.replica))).toEqual(new Set(NAMES));
    for (const [i, c] of calls.entries()) {
      expect(c.status).toBe(200);
      expect(c.text).toContain(`hello ${i}`);
    }

    // Every replica now holds the token in its verification cache (5 s); the revocation reaches
    // them through Redis, not through that cache's expiry.
    const revoked = await through(`/api/v1/tokens/${client.id}`, { method: 'DELETE', token: admin });
    expect(revoked.status).toBe(200);
    const refused = [];
    for (let i = 0; i < 3; i++) {
      const { body, headers } = echoCall('again');
      refused.push(await through('/mcp', { token: client.token, body, headers }));
    }
    expect(new Set(refused.map((c) => c.replica))).toEqual(new Set(NAMES));
    for (const r of refused) {
      expect(r.status).toBe(401);
      expect(r.text).toContain('SWB_ERR_AUTH_REVOKED_TOKEN');
    }
  });

  it('serves a 2025-era session on every replica: the next requests, balanced elsewhere, find it (sealed session id)', async () => {
    const init = await through('/mcp', {
      token: admin,
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'deploy-test', version: '1' } },
      }),
    });
    expect(init.status).toBe(200);
    const session = init.headers.get('mcp-session-id')!;
    const seen = new Set([init.replica]);
    for (let id = 2; id < 5; id++) {
      const next = await through('/mcp', {
        token: admin,
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'ping' }),
        headers: { 'mcp-session-id': session, 'mcp-protocol-version': '2025-06-18' },
      });
      expect(next.status).toBe(200);
      seen.add(next.replica);
    }
    expect(seen.size).toBe(3);
  });

  it('keeps answering while a replica drains on SIGTERM, which then exits 0', async () => {
    const stopping = replicas[2]!;
    stopping.child.kill('SIGTERM');
    const answers = [];
    for (let i = 0; i < 6; i++) {
      const { body, headers } = echoCall(`during drain ${i}`);
      answers.push(await through('/mcp', { token: admin, body, headers }));
    }
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 200]);
    expect(await stopping.exited).toBe(0);
    expect(stopping.log()).toContain('"msg":"shut down"');
  });
});
