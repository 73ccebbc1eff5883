/**
 * Three `switchboard serve` replicas with one configuration, one `SWITCHBOARD_SECRET`, one Redis
 * and one PostgreSQL database, behind a balancer that sends every HTTP request to the next
 * replica (no affinity): a 2025-era session opened through one replica is served by all of them
 * (sealed session ids), is refused to another principal on every replica, ends everywhere when
 * the client deletes it, and a revoked token is refused by every replica within a second; a
 * runtime server written through one replica runs on all of them within a second; a session
 * survives one replica draining on SIGTERM and another dying on SIGKILL, and the session-isolated
 * child the killed replica owned is started again on a survivor within seconds, with clear errors
 * in between.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startBalancer, type Balancer } from '../helpers/balancer.js';
import { startEverythingHttp, type EverythingHttp } from '../helpers/everything.js';
import { BIDI_CAPABILITIES, connectClient, EVERYTHING_ENTRY, waitFor } from '../helpers/gateway.js';
import { CreateMessageRequestSchema, ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { createSchema, dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../helpers/postgres.js';
import { REDIS_URL, redisGate } from '../helpers/redis.js';
import { CLI, ROOT, startServe, type ServeProcess } from '../helpers/serve.js';

const ready = (await postgresGate('multi-replica tests')) && (await redisGate('multi-replica tests'));

const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

function run(args: string[], env: NodeJS.ProcessEnv): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')}: ${code}\n${err}`))));
  });
}

describe.runIf(ready)('three replicas behind a balancer without affinity', () => {
  const schema = uniqueSchema('cluster');
  const replicas: ServeProcess[] = [];
  let balancer: Balancer;
  let everything: EverythingHttp;
  let env: NodeJS.ProcessEnv;
  let alice: { id: string; token: string };
  let bob: { id: string; token: string };
  let config: string;

  beforeAll(async () => {
    await createSchema(schema);
    everything = await startEverythingHttp('streamableHttp');
    const dir = mkdtempSync(`${tmpdir()}/swb-cluster-`);
    config = `${dir}/switchboard.yaml`;
    const prefix = `swb-test-${process.pid}-${randomBytes(3).toString('hex')}`;
    writeFileSync(
      config,
      [
        'auth:',
        '  mode: tokens',
        `  revocationChannel: ${prefix}:revoked`,
        'listen: { port: 0 }',
        'shutdown: { drainDelay: 500ms }',
        'sessions:',
        `  endedChannel: ${prefix}:ended`,
        `  answersChannel: ${prefix}:answers`,
        `  eventsChannel: ${prefix}:events`,
        `  ownersPrefix: ${JSON.stringify(`${prefix}:owners:`)}`,
        `runtimeServers: { changesChannel: ${JSON.stringify(`${prefix}:changes`)} }`,
        'rateLimiting: { keyPrefix: ' + JSON.stringify(`${prefix}:rl:`) + ' }',
        'servers:',
        `  everything: { url: ${JSON.stringify(everything.url)} }`,
        `  echo: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(`${ROOT}test/fixtures/echo-server.mjs`)}] }`,
        `  sampler: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(EVERYTHING_ENTRY)}, stdio] }`,
        `  iso: { command: ${JSON.stringify(process.execPath)}, args: [${JSON.stringify(`${ROOT}test/fixtures/odd-server.mjs`)}], isolation: session }`,
        '',
      ].join('\n'),
    );
    env = {
      ...process.env,
      SWITCHBOARD_SECRET: randomBytes(32).toString('base64url'),
      SWITCHBOARD_REDIS_URL: `${REDIS_URL}/11`,
      SWITCHBOARD_DATABASE_URL: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
      SWITCHBOARD_LOG_FORMAT: 'json',
    };
    // The first replica migrates the schema; the others start together on it.
    replicas.push(await startServe(['--config', config], { env }));
    replicas.push(...(await Promise.all([1, 2].map(() => startServe(['--config', config], { env })))));
    const create = async (name: string) =>
      JSON.parse(
        await run(['token', 'create', '--config', config, '--name', name, '--permissions', '*', '--json'], env),
      ) as { id: string; token: string };
    alice = await create('alice');
    bob = await create('bob');
    balancer = await startBalancer(replicas.map((r) => r.url));
  }, 120_000);

  afterAll(async () => {
    await balancer?.close();
    for (const r of replicas) r.child.kill('SIGTERM');
    await Promise.all(replicas.map((r) => r.exited));
    await everything?.stop();
    await dropSchema(schema);
  }, 60_000);

  const auth = (t: { token: string }) => ({ authorization: `Bearer ${t.token}` });

  async function status(url: string, sid: string, who: { token: string }): Promise<number> {
    const r = await fetch(url, {
      method: 'POST',
      headers: { ...MCP_HEADERS, ...auth(who), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 99, method: 'ping' }),
    });
    await r.arrayBuffer();
    return r.status;
  }

  it('serves one SDK session on every replica: lists and calls on an HTTP upstream, a stdio upstream and the aggregate', async () => {
    const before = [...balancer.served];
    const { client } = await connectClient(`${balancer.url}/mcp`, {}, 'cluster-client', auth(alice));
    try {
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toEqual(expect.arrayContaining(['everything__echo', 'echo__echo']));
      for (let i = 0; i < 6; i++) {
        const viaHttp = await client.callTool({ name: 'everything__echo', arguments: { message: `h${i}` } });
        expect(JSON.stringify(viaHttp.content)).toContain(`h${i}`);
        const viaStdio = await client.callTool({ name: 'echo__echo', arguments: { message: `s${i}` } });
        expect(JSON.stringify(viaStdio.content)).toContain(`Echo: s${i}`);
      }
      // Every replica served part of this one session.
      for (const [i, n] of balancer.served.entries()) expect(n - before[i]!).toBeGreaterThanOrEqual(4);
    } finally {
      await client.close();
    }
    const single = await connectClient(`${balancer.url}/servers/echo/mcp`, {}, 'cluster-single', auth(alice));
    try {
      expect((await single.client.listTools()).tools.map((t) => t.name)).toContain('echo');
      for (let i = 0; i < 3; i++) {
        const r = await single.client.callTool({ name: 'echo', arguments: { message: `x${i}` } });
        expect(JSON.stringify(r.content)).toContain(`Echo: x${i}`);
      }
    } finally {
      await single.client.close();
    }
  });

  it("answers 404 to another principal presenting a session's id, on every replica", async () => {
    const { client, transport } = await connectClient(`${balancer.url}/mcp`, {}, 'alice', auth(alice));
    try {
      const sid = transport.sessionId!;
      expect(sid.split('.')).toHaveLength(3);
      for (const r of replicas) {
        expect(await status(`${r.url}/mcp`, sid, bob)).toBe(404);
        expect(await status(`${r.url}/mcp`, sid, alice)).toBe(200);
        // Bound to its endpoint too.
        expect(await status(`${r.url}/servers/echo/mcp`, sid, alice)).toBe(404);
      }
    } finally {
      await client.close();
    }
  });

  it('ends a session on every replica when its client deletes it through one', async () => {
    const { transport } = await connectClient(`${balancer.url}/mcp`, {}, 'alice', auth(alice));
    const sid = transport.sessionId!;
    for (const r of replicas) expect(await status(`${r.url}/mcp`, sid, alice)).toBe(200);
    await transport.terminateSession();
    for (const r of replicas) {
      await waitFor(async () => (await status(`${r.url}/mcp`, sid, alice)) === 404, 1000, `404 from ${r.url}`);
    }
  });

  it('starts a runtime server written through one replica on every replica within a second, and stops it everywhere', async () => {
    const headers = { ...auth(alice), 'content-type': 'application/json' };
    const listed = async (url: string) =>
      (
        (await (await fetch(`${url}/api/v1/servers`, { headers })).json()) as { servers: Array<{ name: string }> }
      ).servers
        .map((s) => s.name)
        .includes('added');
    const entry = { command: process.execPath, args: [`${ROOT}test/fixtures/echo-server.mjs`] };
    const put = await fetch(`${replicas[0]!.url}/api/v1/servers/added`, {
      method: 'PUT',
      headers,
      body: JSON.stringify(entry),
    });
    expect(put.status).toBe(201);
    const at = Date.now();
    for (const r of replicas.slice(1)) await waitFor(() => listed(r.url), 1_000, 'runtime server on another replica');
    expect(Date.now() - at).toBeLessThan(1_000);
    const del = await fetch(`${replicas[2]!.url}/api/v1/servers/added`, { method: 'DELETE', headers });
    expect(del.status).toBe(200);
    for (const r of replicas.slice(0, 2))
      await waitFor(async () => !(await listed(r.url)), 1_000, 'runtime server gone on another replica');
  });

  /** Opens a session on `iso` (a session-isolated odd-server) through `base`. */
  async function isoSession(base: string): Promise<string> {
    const r = await fetch(`${base}/servers/iso/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, ...auth(alice) },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 1,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'iso', version: '1' } },
      }),
    });
    await r.text();
    return r.headers.get('mcp-session-id')!;
  }

  /** The pid of the session's `iso` child, asked through `base`; throws on an error answer. */
  async function isoPid(base: string, sid: string): Promise<string> {
    const r = await fetch(`${base}/servers/iso/mcp`, {
      method: 'POST',
      headers: { ...MCP_HEADERS, ...auth(alice), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'pid', arguments: {} } }),
    });
    const body = (await r.json()) as { result?: { content: Array<{ text: string }> }; error?: unknown };
    if (body.result === undefined) throw new Error(`iso pid: ${r.status} ${JSON.stringify(body)}`);
    return body.result.content[0]!.text;
  }

  it("brings an update of a resource subscribed through one replica to the session's GET stream on another", async () => {
    const endpoint = '/servers/everything/mcp';
    const post = async (base: string, sid: string | undefined, body: unknown) => {
      const r = await fetch(`${base}${endpoint}`, {
        method: 'POST',
        headers: {
          ...MCP_HEADERS,
          ...auth(alice),
          ...(sid === undefined ? {} : { 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' }),
        },
        body: JSON.stringify(body),
      });
      const text = await r.text();
      expect(r.status, text).toBeLessThan(300);
      return { r, text };
    };
    const [holder, other] = [replicas[0]!.url, replicas[1]!.url];
    const { r: init } = await post(holder, undefined, {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'subscriber', version: '1' } },
    });
    const sid = init.headers.get('mcp-session-id')!;
    await post(holder, sid, { jsonrpc: '2.0', method: 'notifications/initialized' });
    // The GET stream is held by the other replica, which restores the session from its id.
    const ac = new AbortController();
    const stream = await fetch(`${other}${endpoint}`, {
      headers: {
        accept: 'text/event-stream',
        ...auth(alice),
        'mcp-session-id': sid,
        'mcp-protocol-version': '2025-06-18',
      },
      signal: ac.signal,
    });
    expect(stream.status).toBe(200);
    let seen = '';
    const reading = (async () => {
      const decoder = new TextDecoder();
      try {
        for await (const chunk of stream.body as unknown as AsyncIterable<Uint8Array>) seen += decoder.decode(chunk);
      } catch {
        // aborted below
      }
    })();
    const uri = 'demo://resource/static/document/architecture.md';
    try {
      await post(holder, sid, { jsonrpc: '2.0', id: 2, method: 'resources/subscribe', params: { uri } });
      // server-everything sends an update at once, then every 5 s, through the holder's upstream session.
      const toggle = {
        jsonrpc: '2.0',
        id: 3,
        method: 'tools/call',
        params: { name: 'toggle-subscriber-updates', arguments: {} },
      };
      await post(holder, sid, toggle);
      await waitFor(
        () => seen.includes('notifications/resources/updated'),
        3_000,
        'resources/updated on the other replica',
      );
      expect(seen).toContain(uri);
      await post(holder, sid, { ...toggle, id: 4 });
    } finally {
      ac.abort();
      await reading;
      await fetch(`${holder}${endpoint}`, {
        method: 'DELETE',
        headers: { ...auth(alice), 'mcp-session-id': sid, 'mcp-protocol-version': '2025-06-18' },
      });
    }
  });

  it('refuses a token revoked through one replica on every replica within a second', async () => {
    const carol = JSON.parse(
      await run(['token', 'create', '--config', config, '--name', 'carol', '--permissions', '*', '--json'], env),
    ) as { id: string; token: string };
    const { transport } = await connectClient(`${balancer.url}/mcp`, {}, 'carol', auth(carol));
    const sid = transport.sessionId!;
    // Every replica has verified (and cached) the token.
    for (const r of replicas) expect(await status(`${r.url}/mcp`, sid, carol)).toBe(200);
    const revoked = await fetch(`${replicas[0]!.url}/api/v1/tokens/${carol.id}`, {
      method: 'DELETE',
      headers: auth(alice),
    });
    expect(revoked.status).toBe(200);
    const at = Date.now();
    for (const r of replicas) {
      await waitFor(async () => (await status(`${r.url}/mcp`, sid, carol)) === 401, 1000, `401 from ${r.url}`);
    }
    expect(Date.now() - at).toBeLessThan(1000);
  });

  it('serves MCP 2026-07-28 stateless requests on every replica (no session to share)', async () => {
    const before = [...balancer.served];
    for (let i = 0; i < 6; i++) {
      const r = await fetch(`${balancer.url}/mcp`, {
        method: 'POST',
        headers: {
          ...MCP_HEADERS,
          ...auth(alice),
          'mcp-protocol-version': '2026-07-28',
          'mcp-method': 'tools/call',
          'mcp-name': 'echo__echo',
        },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: i,
          method: 'tools/call',
          params: {
            name: 'echo__echo',
            arguments: { message: `m${i}` },
            _meta: {
              'io.modelcontextprotocol/protocolVersion': '2026-07-28',
              'io.modelcontextprotocol/clientCapabilities': {},
            },
          },
        }),
      });
      expect(r.status).toBe(200);
      expect(r.headers.get('mcp-session-id')).toBeNull();
      expect(JSON.stringify(await r.json())).toContain(`Echo: m${i}`);
    }
    // Round robin over six requests: every replica served at least two (a late request of an
    // earlier test, such as an SDK client's DELETE, may shift the rotation by one).
    for (const [i, n] of balancer.served.entries()) expect(n - before[i]!).toBeGreaterThanOrEqual(2);
  });

  it('brings sampling and elicitation from a stdio upstream to the right one of two concurrent sessions, and their answers back, whichever replica they land on', async () => {
    const seen = { a: 0, b: 0 };
    const make = async (who: 'a' | 'b') => {
      const { client } = await connectClient(`${balancer.url}/mcp`, BIDI_CAPABILITIES, who, auth(alice));
      client.setRequestHandler(CreateMessageRequestSchema, async () => {
        seen[who]++;
        await new Promise((r) => setTimeout(r, 20));
        return { model: 'm', role: 'assistant', content: { type: 'text', text: `answer-from-${who}` } };
      });
      client.setRequestHandler(ElicitRequestSchema, async () => ({
        action: 'accept',
        content: { name: `name-${who}` },
      }));
      return client;
    };
    const [a, b] = await Promise.all([make('a'), make('b')]);
    const text = (r: unknown) => JSON.stringify((r as { content: unknown }).content);
    try {
      for (let i = 0; i < 4; i++) {
        const [ra, rb] = await Promise.all([
          a.callTool({ name: 'sampler__trigger-sampling-request', arguments: { prompt: 'x', maxTokens: 5 } }),
          b.callTool({ name: 'sampler__trigger-sampling-request', arguments: { prompt: 'y', maxTokens: 5 } }),
        ]);
        expect(text(ra)).toContain('answer-from-a');
        expect(text(ra)).not.toContain('answer-from-b');
        expect(text(rb)).toContain('answer-from-b');
        expect(text(rb)).not.toContain('answer-from-a');
      }
      const [ea, eb] = await Promise.all([
        a.callTool({ name: 'sampler__trigger-elicitation-request', arguments: {} }),
        b.callTool({ name: 'sampler__trigger-elicitation-request', arguments: {} }),
      ]);
      expect(text(ea)).toContain('name-a');
      expect(text(eb)).toContain('name-b');
      expect(seen).toEqual({ a: 4, b: 4 });
    } finally {
      await Promise.all([a.close(), b.close()]);
    }
  });

  it('loses no call of a session calling every 50 ms while one replica drains on SIGTERM and exits 0, and hands its isolated children over', async () => {
    const { client } = await connectClient(`${balancer.url}/mcp`, {}, 'steady', auth(alice));
    const failures: unknown[] = [];
    let calls = 0;
    let stop = false;
    const loop = (async () => {
      while (!stop) {
        try {
          const r = await client.callTool({ name: 'echo__echo', arguments: { message: `n${calls}` } });
          if (!JSON.stringify(r.content).includes(`Echo: n${calls}`)) failures.push(r);
        } catch (err) {
          failures.push(err);
        }
        calls++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    // A session whose session-isolated child runs on the replica that will drain, called through
    // the two others: the calls go on without a failure (on a new child once it is handed over).
    const leavingUrl = replicas[2]!.url;
    const isoSid = await isoSession(leavingUrl);
    const isoPids = [await isoPid(leavingUrl, isoSid)];
    let isoCalls = 0;
    const isoLoop = (async () => {
      while (!stop) {
        const o = await isoPid(replicas[isoCalls % 2]!.url, isoSid).catch((err: unknown) => ({ error: err }));
        if (typeof o === 'string') {
          if (o !== isoPids.at(-1)) isoPids.push(o);
        } else failures.push(o);
        isoCalls++;
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    })();
    try {
      await new Promise((resolve) => setTimeout(resolve, 500));
      const leaving = replicas[2]!;
      leaving.child.kill('SIGTERM');
      // While it drains it fails /readyz and opens no session, but still serves this one.
      await waitFor(
        async () => {
          const r = await fetch(`${leaving.url}/readyz`).catch(() => undefined);
          return r?.status === 503 && ((await r.json()) as { status: string }).status === 'draining';
        },
        400,
        'draining /readyz',
      );
      const init = await fetch(`${leaving.url}/mcp`, {
        method: 'POST',
        headers: { ...MCP_HEADERS, ...auth(alice) },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'late', version: '1' } },
        }),
      });
      expect(init.status).toBe(503);
      expect(init.headers.get('connection')).toBe('close');
      expect(((await init.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'SWB_ERR_SESSION_DRAINING',
      );
      expect(await leaving.exited).toBe(0);
      const after = calls;
      await new Promise((resolve) => setTimeout(resolve, 1000));
      expect(calls - after).toBeGreaterThan(5);
    } finally {
      stop = true;
      await loop;
      await isoLoop;
      await client.close();
    }
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(20);
    expect(isoCalls).toBeGreaterThan(20);
    // The drained replica's child, then at most one new one.
    expect(isoPids.length).toBeLessThanOrEqual(2);
  });

  it('loses no call of a session when a replica it used is killed with SIGKILL between its calls, and reclaims the isolated child it owned', async () => {
    const { client } = await connectClient(`${balancer.url}/mcp`, {}, 'survivor', auth(alice));
    const victim = replicas[1]!;
    // A session whose session-isolated child runs on the victim (its first call went there); its
    // calls through another replica are passed on to that child.
    const isoUrl = (base: string) => `${base}/servers/iso/mcp`;
    const isoSid = await isoSession(replicas[0]!.url);
    const pid = async (base: string): Promise<{ pid?: string; code?: string; ms: number }> => {
      const t0 = Date.now();
      const r = await fetch(isoUrl(base), {
        method: 'POST',
        headers: { ...MCP_HEADERS, ...auth(alice), 'mcp-session-id': isoSid, 'mcp-protocol-version': '2025-06-18' },
        body: JSON.stringify({ jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'pid', arguments: {} } }),
      });
      const body = (await r.json()) as {
        result?: { content: Array<{ text: string }> };
        error?: { data?: { code?: string } };
      };
      const out: { pid?: string; code?: string; ms: number } = { ms: Date.now() - t0 };
      if (body.result) out.pid = body.result.content[0]!.text;
      else if (body.error?.data?.code) out.code = body.error.data.code;
      return out;
    };
    const owned = (await pid(victim.url)).pid!;
    expect((await pid(replicas[0]!.url)).pid).toBe(owned);
    const failures: unknown[] = [];
    let calls = 0;
    let killedAt = -1;
    const servedBefore = balancer.served[1]!;
    const started = Date.now();
    try {
      while (Date.now() - started < 2_500) {
        const tool = calls % 2 === 0 ? 'everything__echo' : 'echo__echo';
        try {
          const r = await client.callTool({ name: tool, arguments: { message: `k${calls}` } });
          if (!JSON.stringify(r.content).includes(`k${calls}`)) failures.push(r);
        } catch (err) {
          failures.push(err);
        }
        calls++;
        // The replica dies with no warning: no drain, no announcement, no closed sessions.
        if (calls === 10) {
          victim.child.kill('SIGKILL');
          killedAt = calls;
        }
        await new Promise((resolve) => setTimeout(resolve, 50));
      }
    } finally {
      await client.close();
    }
    expect(await victim.exited).not.toBe(0);
    // The victim served part of this session before it died; the rest went to the survivor.
    expect(balancer.served[1]! - servedBefore).toBeGreaterThan(0);
    expect(killedAt).toBe(10);
    expect(failures).toEqual([]);
    expect(calls).toBeGreaterThan(25);

    // The child the victim owned: until its record expires, calls end with a clear error (never a
    // hang); then the survivor starts a new child, well within 10 s of the kill.
    const outcomes: Array<{ pid?: string; code?: string; ms: number }> = [];
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const o = await pid(replicas[0]!.url);
      outcomes.push(o);
      if (o.pid !== undefined) break;
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const last = outcomes.at(-1)!;
    expect(last.pid, JSON.stringify(outcomes)).toBeDefined();
    expect(last.pid).not.toBe(owned);
    for (const o of outcomes.slice(0, -1)) expect(o.code).toBe('SWB_ERR_UPSTREAM_UNAVAILABLE');
    for (const o of outcomes) expect(o.ms).toBeLessThan(3_000);
    expect((await pid(replicas[0]!.url)).pid).toBe(last.pid);
  });
});
