/**
 * `GET /api/v1/live` against a real gateway over HTTP: finished MCP requests as `request`
 * events (replayed on connect, then live), log lines only for `admin.*`, the filters, the limit
 * of 16 streams and the 1 MiB bound on a reader that does not read.
 */
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/app.js';
import { MAX_LIVE_STREAMS } from '../../../src/http/console-api.js';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import { RecentLogs } from '../../../src/observability/recent-logs.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { buildConfig, connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';

const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));

let gw: RunningGateway;
let database: Database;
let logger: Logger;
const tokens: Record<string, string> = {};
const open: Stream[] = [];

/** One live stream read incrementally. */
interface Stream {
  readonly req: ClientRequest;
  readonly res: IncomingMessage;
  /** Events received so far. */
  readonly events: Array<{ event: string; data: Record<string, unknown> }>;
  readonly comments: string[];
  close(): void;
}

function connect(token: string, query = ''): Promise<Stream | { status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(`${gw.url}/api/v1/live${query}`, { headers: { authorization: `Bearer ${token}` } });
    req.on('error', reject);
    req.on('response', (res) => {
      if (res.statusCode !== 200) {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (d: string) => (body += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
        return;
      }
      const events: Stream['events'] = [];
      const comments: string[] = [];
      let buf = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => {
        buf += d;
        let end: number;
        while ((end = buf.indexOf('\n\n')) >= 0) {
          const block = buf.slice(0, end);
          buf = buf.slice(end + 2);
          let event = 'message';
          let data = '';
          for (const line of block.split('\n')) {
            if (line.startsWith(':')) comments.push(line);
            else if (line.startsWith('event: ')) event = line.slice(7);
            else if (line.startsWith('data: ')) data += line.slice(6);
          }
          if (data !== '') events.push({ event, data: JSON.parse(data) as Record<string, unknown> });
        }
      });
      res.on('error', () => undefined);
      const stream: Stream = { req, res, events, comments, close: () => req.destroy() };
      open.push(stream);
      resolve(stream);
    });
    req.end();
  });
}

async function stream(token: string, query = ''): Promise<Stream> {
  const s = await connect(token, query);
  if (!('events' in s)) throw new Error(`live stream refused: ${s.status} ${s.body}`);
  return s;
}

async function callEcho(token: string, message: string, path = '/mcp'): Promise<void> {
  const { client } = await connectClient(`${gw.url}${path}`, {}, 'c', { authorization: `Bearer ${token}` });
  try {
    await client.callTool({ name: path === '/mcp' ? 'echo__echo' : 'echo', arguments: { message } });
  } finally {
    await client.close();
  }
}

/** {@link waitFor} for a value that must be there in the end. */
async function until<T>(fn: () => T | undefined | Promise<T | undefined>, what: string): Promise<T> {
  const v = await waitFor(fn, 5000, what);
  if (v === undefined) throw new Error(`no ${what}`);
  return v;
}

const requestsOf = (s: Stream) => s.events.filter((e) => e.event === 'request').map((e) => e.data);
const toolCalls = (s: Stream) => requestsOf(s).filter((r) => r.method === 'tools/call');

beforeAll(async () => {
  // A real logger (lines go nowhere) feeding the ring the live feed shows to admins.
  const recentLogs = new RecentLogs();
  const sink = new Writable({ write: (_chunk, _enc, cb) => cb() });
  logger = createLogger({ destination: sink, recent: recentLogs, level: 'info' });
  database = await openDatabase({ url: ':memory:', dataDir: '.', logger });
  gw = await startGateway({
    config: buildConfig({
      auth: { mode: 'tokens' },
      metrics: { enabled: true },
      rateLimits: [{ match: { principal: 'token:limited', method: 'tools/call' }, limit: 1, window: '1h' }],
      servers: { echo: { command: process.execPath, args: [ECHO] } },
    }),
    logger,
    database,
    recentLogs,
    sweepIntervalMs: 0,
  });
  const mint = async (name: string, permissions: string[]) =>
    (tokens[name] = (await gw.tokens.create({ name, subject: name, permissions })).token);
  await mint('admin', ['admin.*']);
  await mint('viewer', ['servers.use', 'tools.execute', 'usage.read']);
  await mint('user', ['servers.use', 'tools.execute']);
  await mint('limited', ['servers.use', 'tools.execute']);
}, 30_000);

afterEach(() => {
  for (const s of open.splice(0)) s.close();
});

afterAll(async () => {
  await gw?.close();
  await database?.close();
});

describe('GET /api/v1/live', () => {
  it('streams a tools/call as a request event with its server, tool, principal and outcome', async () => {
    const s = await stream(tokens.viewer!);
    expect(s.res.headers['content-type']).toBe('text/event-stream');
    expect(s.res.headers['cache-control']).toBe('no-store');
    await callEcho(tokens.viewer!, 'live-1');
    const call = await until(() => toolCalls(s).find((r) => r.server === 'echo'), 'the tools/call event');
    expect(call).toMatchObject({
      endpoint: 'mcp',
      method: 'tools/call',
      server: 'echo',
      tool: 'echo',
      principal: 'token:viewer',
      outcome: 'ok',
      status: 200,
      code: null,
    });
    expect(typeof call.reqId).toBe('string');
    expect(Number.isNaN(Date.parse(call.time as string))).toBe(false);
    expect(call.durationMs).toBeGreaterThan(0);
  });

  it('replays the recent requests to a new stream', async () => {
    await callEcho(tokens.user!, 'before-connect');
    const s = await stream(tokens.viewer!);
    const replayed = await until(
      () => toolCalls(s).find((r) => r.principal === 'token:user'),
      'the replayed tools/call',
    );
    expect(replayed).toMatchObject({ server: 'echo', tool: 'echo', outcome: 'ok' });
  });

  it('reports refused requests as blocked with their code', async () => {
    const s = await stream(tokens.admin!, '?outcome=blocked');
    const res = await fetch(`${gw.url}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer nope', 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }),
    });
    expect(res.status).toBe(401);
    const blocked = await until(() => requestsOf(s).find((r) => r.status === 401), 'the blocked event');
    expect(blocked).toMatchObject({ outcome: 'blocked', principal: null });
    expect(String(blocked.code)).toMatch(/^SWB_ERR_AUTH_/);
    expect(requestsOf(s).every((r) => r.outcome === 'blocked')).toBe(true);
  });

  it('reports a request over a rate limit as rate_limited', async () => {
    const s = await stream(tokens.admin!, '?principal=token%3Alimited');
    await callEcho(tokens.limited!, 'first');
    await expect(callEcho(tokens.limited!, 'second')).rejects.toThrow();
    const limited = await until(
      () => toolCalls(s).find((r) => r.outcome === 'rate_limited'),
      'the rate-limited tools/call',
    );
    expect(limited).toMatchObject({ server: 'echo', tool: 'echo', code: 'SWB_ERR_RATE_LIMITED' });
    expect(toolCalls(s).filter((r) => r.outcome === 'ok')).toHaveLength(1);
  });

  it('filters by server and principal', async () => {
    const other = await stream(tokens.viewer!, '?server=elsewhere');
    const mine = await stream(tokens.viewer!, '?principal=token%3Aadmin');
    await callEcho(tokens.admin!, 'filtered');
    await waitFor(() => toolCalls(mine).some((r) => r.principal === 'token:admin'), 5000, 'the admin call');
    expect(requestsOf(mine).every((r) => r.principal === 'token:admin')).toBe(true);
    expect(requestsOf(other)).toEqual([]);
  });

  it('sends log lines to admin.* only', async () => {
    const admin = await stream(tokens.admin!);
    const viewer = await stream(tokens.viewer!);
    // Startup lines are replayed to the admin.
    await waitFor(() => admin.events.some((e) => e.event === 'log'), 5000, 'a replayed log line');
    logger.warn({ component: 'test', server: 'echo', reqId: 'r-1', token: 'hidden' }, 'a live line');
    const line = await until(
      () => admin.events.find((e) => e.event === 'log' && e.data.msg === 'a live line'),
      'the live log line',
    );
    expect(line.data).toEqual({
      time: expect.any(String) as unknown,
      level: 'warn',
      msg: 'a live line',
      component: 'test',
      server: 'echo',
      reqId: 'r-1',
    });
    await callEcho(tokens.viewer!, 'after-log');
    await until(() => toolCalls(viewer).find((r) => r.principal === 'token:viewer'), 'the viewer call');
    expect(viewer.events.filter((e) => e.event === 'log')).toEqual([]);
  });

  it('cuts a log line to 4 KiB', async () => {
    const admin = await stream(tokens.admin!);
    logger.info(`long ${'x'.repeat(10_000)}`);
    const line = await until(
      () => admin.events.find((e) => e.event === 'log' && String(e.data.msg).startsWith('long ')),
      'the long line',
    );
    expect(Buffer.byteLength(JSON.stringify(line.data))).toBeLessThanOrEqual(4096);
    expect(String(line.data.msg).endsWith('…')).toBe(true);
  });

  it('needs usage.read (403 without it)', async () => {
    const refused = await connect(tokens.user!);
    expect(refused).toMatchObject({ status: 403 });
    expect((JSON.parse((refused as { body: string }).body) as { error: { code: string } }).error.code).toBe(
      'SWB_ERR_AUTH_FORBIDDEN',
    );
  });

  it(`admits ${MAX_LIVE_STREAMS} streams at once and refuses the next with 429`, async () => {
    const streams: Stream[] = [];
    for (let i = 0; i < MAX_LIVE_STREAMS; i++) streams.push(await stream(tokens.viewer!));
    const refused = await connect(tokens.viewer!);
    expect(refused).toMatchObject({ status: 429 });
    expect((JSON.parse((refused as { body: string }).body) as { error: { code: string } }).error.code).toBe(
      'SWB_ERR_RATE_LIMITED',
    );
    // Closing one frees its place.
    streams[0]!.close();
    const again = await until(async () => {
      const s = await connect(tokens.viewer!);
      return 'events' in s ? s : undefined;
    }, 'a stream after one closed');
    expect('events' in again).toBe(true);
  });

  it('disconnects a reader that leaves more than 1 MiB unsent', async () => {
    const overflowsBefore = await overflows();
    const slow = await stream(tokens.admin!);
    // Stop reading: the socket's buffers fill, then the gateway's queue for this stream grows.
    slow.res.pause();
    const fast = await stream(tokens.admin!);
    let closed = false;
    slow.res.socket.once('close', () => (closed = true));
    const line = 'y'.repeat(3500);
    let sent = 0;
    // Bounded: 64 MiB of log lines at most.
    while ((await overflows()) === overflowsBefore && sent < 64 * 1024 * 1024) {
      for (let i = 0; i < 100; i++) logger.info(line);
      sent += 100 * 3500;
      await new Promise((r) => setImmediate(r));
    }
    expect(await overflows()).toBe(overflowsBefore + 1);
    // More than the bound had to be queued before the cut, far less than what was written.
    expect(sent).toBeGreaterThan(1024 * 1024);
    slow.res.resume();
    await waitFor(() => closed, 5000, 'the slow stream to close');
    // A reader that keeps up stays connected.
    expect(fast.res.socket.destroyed).toBe(false);
  });
});

describe('live streams at shutdown', () => {
  it('end at once, so an open stream does not hold the graceful stop', async () => {
    const own = await startTestGateway({ auth: { mode: 'tokens' } });
    try {
      const admin = (await own.tokens.create({ name: 'a', subject: 'a', permissions: ['admin.*'] })).token;
      const res = await new Promise<IncomingMessage>((resolve, reject) => {
        const req = request(`${own.url}/api/v1/live`, { headers: { authorization: `Bearer ${admin}` } });
        req.on('response', resolve);
        req.on('error', reject);
        req.end();
      });
      expect(res.statusCode).toBe(200);
      let ended = false;
      res.on('end', () => (ended = true));
      res.resume();
      const t0 = Date.now();
      const report = await own.shutdown();
      // Without ending them, open streams are cut only after min(2 s, gracePeriod / 4).
      expect(Date.now() - t0).toBeLessThan(1500);
      expect(report.unclosed).toEqual([]);
      await waitFor(() => ended, 5000, 'the stream to end');
    } finally {
      await own.close();
    }
  });
});

/** `switchboard_stream_overflows_total{stream="admin-live"}` from /metrics. */
async function overflows(): Promise<number> {
  const text = await (await fetch(`${gw.url}/metrics`)).text();
  const m = /switchboard_stream_overflows_total\{stream="admin-live"\} (\d+)/.exec(text);
  return m ? Number(m[1]) : 0;
}
