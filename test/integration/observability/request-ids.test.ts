/**
 * Request ids on log lines, end to end: the edge gives each HTTP request an id (or adopts a safe
 * inbound `X-Request-Id`) and passes it explicitly to the lines that concern that request — the
 * edge's and the session's unexpected errors, the upstream retry, the HTTP transport's
 * per-request lines — while lifecycle lines carry none. A real gateway (JSON logs through
 * `createLogger`) in front of the SDK fixture server.
 */
import { composePipeline } from '../../../src/pipeline/stage.js';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/app.js';
import { createRequestHandler } from '../../../src/http/server.js';
import { createLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { buildConfig, waitFor } from '../../helpers/gateway.js';
import { initSession, messages, post } from '../../helpers/raw.js';
import { startFixtureServer, type FixtureServer } from '../upstream/helpers.js';

const GENERATED = /^[0-9a-z]{8}-[0-9a-z]+$/;

describe('request ids on log lines', () => {
  let fixture: FixtureServer;
  let db: Database;
  let gw: RunningGateway;
  let mcp: string;
  let session: string;
  const lines: Record<string, unknown>[] = [];
  const withMsg = (msg: string) => lines.filter((l) => l.msg === msg);

  beforeAll(async () => {
    fixture = await startFixtureServer();
    const destination = new Writable({
      write(chunk: Buffer, _enc, cb): void {
        for (const line of chunk.toString('utf8').split('\n'))
          if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
        cb();
      },
    });
    const logger = createLogger({ level: 'debug', destination });
    db = await openDatabase({ url: ':memory:', dataDir: '.', logger });
    gw = await startGateway({
      config: buildConfig({ servers: { fx: { url: fixture.url } } }),
      logger,
      database: db,
      sweepIntervalMs: 0,
    });
    mcp = `${gw.url}/mcp`;
    session = await initSession(mcp);
  });

  afterAll(async () => {
    await gw?.close();
    await db?.close();
    await fixture?.close();
  });

  const call = async (name: string, args: Record<string, unknown>, headers: Record<string, string> = {}) => {
    const res = await post(
      mcp,
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } },
      { 'mcp-session-id': session, ...headers },
    );
    return { status: res.status, messages: await messages(res) };
  };

  it('carries an inbound X-Request-Id on the retry line of a call whose upstream session was lost', async () => {
    for (const id of new Set(fixture.requests.map((r) => r.sessionId))) if (id) fixture.forgetSession(id);
    const answer = await call('fx__echo', { message: 'again' }, { 'x-request-id': 'edge-trace-42' });
    expect(answer.messages.at(-1)).toMatchObject({ id: 7, result: { content: [{ text: 'Echo: again' }] } });
    const retry = withMsg('upstream connection lost; reconnecting and retrying once');
    expect(retry).toHaveLength(1);
    expect(retry[0]).toMatchObject({
      reqId: 'edge-trace-42',
      server: 'fx',
      reason: 'SWB_ERR_UPSTREAM_SESSION_EXPIRED',
    });
  });

  it('puts the same id on every per-request line of the HTTP transport (stream resumption)', async () => {
    const answer = await call('fx__poll-then-answer', { steps: 2 }, { 'x-request-id': 'poll-1' });
    expect(answer.messages.at(-1)).toMatchObject({ id: 7, result: { content: [{ text: 'done after 2 steps' }] } });
    const resumed = withMsg('resuming request stream');
    expect(resumed.length).toBeGreaterThan(0);
    for (const line of resumed) expect(line.reqId).toBe('poll-1');
  });

  it('generates an id when the inbound one is absent or unsafe', async () => {
    const before = withMsg('upstream connection lost; reconnecting and retrying once').length;
    for (const id of new Set(fixture.requests.map((r) => r.sessionId))) if (id) fixture.forgetSession(id);
    await call('fx__echo', { message: 'x' }, { 'x-request-id': 'two words' });
    for (const id of new Set(fixture.requests.map((r) => r.sessionId))) if (id) fixture.forgetSession(id);
    await call('fx__echo', { message: 'y' });
    const retries = withMsg('upstream connection lost; reconnecting and retrying once').slice(before);
    expect(retries).toHaveLength(2);
    expect(retries[0]?.reqId).toMatch(GENERATED);
    expect(retries[1]?.reqId).toMatch(GENERATED);
    expect(retries[0]?.reqId).not.toBe(retries[1]?.reqId);
  });

  it("logs a session's unexpected error with the request's id and answers -32603", async () => {
    const pipeline = gw.gateway.pipeline;
    gw.gateway.pipeline = composePipeline([
      {
        name: 'exploding',
        request: () => {
          throw new TypeError('admission exploded');
        },
      },
    ]);
    try {
      const answer = await call('fx__echo', { message: 'z' }, { 'x-request-id': 'boom-7' });
      expect(answer.messages[0]).toMatchObject({ id: 7, error: { code: -32603, message: 'Internal error' } });
    } finally {
      gw.gateway.pipeline = pipeline;
    }
    const line = withMsg('unexpected error handling a request')[0];
    expect(line).toMatchObject({ reqId: 'boom-7', err: { message: 'admission exploded' } });
  });

  it("logs the edge's unhandled error with the request's id, and gives extra routes the id", async () => {
    const seen: string[] = [];
    const edge: Server = createServer(
      createRequestHandler({
        gateway: gw.gateway,
        bindHost: '127.0.0.1',
        routes: [
          (_req, _res, path, _query, reqId) => {
            seen.push(reqId);
            if (path === '/explode') throw new RangeError('route exploded');
            return false;
          },
        ],
      }),
    );
    await new Promise<void>((resolve) => edge.listen(0, '127.0.0.1', resolve));
    try {
      const base = `http://127.0.0.1:${(edge.address() as AddressInfo).port}`;
      const res = await fetch(`${base}/explode`, { headers: { 'x-request-id': 'route-1' } });
      expect(res.status).toBe(500);
      expect(await res.json()).toMatchObject({ error: { data: { code: 'SWB_ERR_INTERNAL' } } });
      expect(seen).toEqual(['route-1']);
      const line = withMsg('unhandled error')[0];
      expect(line).toMatchObject({ reqId: 'route-1', err: { message: 'route exploded' } });
    } finally {
      await new Promise<void>((resolve) => edge.close(() => resolve()));
    }
  });

  it('writes lifecycle lines without a reqId and no request leaks its id into later lines', async () => {
    await waitFor(() => withMsg('upstream connected').length > 0, 5_000, 'upstream connected');
    for (const line of withMsg('upstream connected')) expect(line).not.toHaveProperty('reqId');
    // The retry reconnects the upstream while a request is being handled; the connect line is
    // about the connection, not the request.
    expect(withMsg('upstream connected').length).toBeGreaterThan(1);
  });
});
