/**
 * Input limits and hygiene at the HTTP edge, against the real gateway and a real shared stdio
 * child: nesting depth, a message that cannot be serialised, malformed paths, aborted bodies,
 * exact media types, duplicate in-flight ids and the node:http connection limits.
 */
import { connect, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/app.js';
import { createLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { buildConfig, connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { initSession, messages, post, MCP_HEADERS } from '../../helpers/raw.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const DEEP = fileURLToPath(new URL('../../fixtures/deep-result-server.mjs', import.meta.url));
/** pino's numeric level of `error`. */
const ERROR_LEVEL = 50;

/** `depth` nested arrays. */
const nested = (depth: number): string => '['.repeat(depth) + '1' + ']'.repeat(depth);

/** The text of a tool result's first content item. */
function text(result: unknown): string {
  return ((result as { content: Array<{ text: string }> }).content[0] as { text: string }).text;
}

/** A gateway on a real pino logger at `debug` whose lines are kept. */
async function startLogged(
  input: Record<string, unknown>,
): Promise<{ gw: RunningGateway; db: Database; lines: Array<Record<string, unknown>> }> {
  const lines: Array<Record<string, unknown>> = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  const db = await openDatabase({ url: ':memory:', dataDir: '.', logger });
  const gw = await startGateway({ config: buildConfig(input), logger, database: db, sweepIntervalMs: 0 });
  return { gw, db, lines };
}

/** Opens a raw TCP connection to the gateway. */
function rawSocket(url: string): Promise<Socket> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(port), hostname, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything a socket receives until it closes. */
function untilClosed(s: Socket): Promise<string> {
  let got = '';
  s.setEncoding('utf8');
  s.on('data', (c: string) => (got += c));
  s.on('error', () => undefined);
  return new Promise((resolve) => s.once('close', () => resolve(got)));
}

describe('nesting depth and serialisation on a shared stdio child', () => {
  let gw: RunningGateway;
  let mcp: string;
  let other: Client;

  beforeAll(async () => {
    gw = await startTestGateway({ servers: { odd: { command: process.execPath, args: [ODD] } } });
    mcp = `${gw.url}/mcp`;
    other = (await connectClient(mcp)).client;
  });
  afterAll(async () => {
    await other?.close();
    await gw?.close();
  });

  /** Starts `n` slow calls from the other client on the shared child. */
  function othersCalls(n: number, ms: number): Promise<string[]> {
    return Promise.all(
      Array.from({ length: n }, () =>
        other.callTool({ name: 'odd__slow', arguments: { ms } }, undefined, { timeout: 20_000 }).then(text),
      ),
    );
  }

  it('refuses a body nested deeper than http.maxJsonDepth with 400 / -32600 while the shared child keeps serving another client', async () => {
    const up = gw.gateway.upstreams.get('odd')!;
    const pid = text(await other.callTool({ name: 'odd__pid', arguments: {} }));
    const inFlight = othersCalls(56, 1500);
    const sid = await initSession(mcp);
    const deep = `{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"odd__slow","arguments":{"ms":1,"x":${nested(100_000)}}}}`;
    const res = await post(mcp, deep, { 'mcp-session-id': sid });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number; data: { code: string } } };
    expect(body.error.code).toBe(-32600);
    expect(body.error.data.code).toBe('SWB_ERR_HTTP_TOO_DEEP');
    expect(await inFlight).toEqual(Array.from({ length: 56 }, () => 'slept 1500'));
    expect(up.restarts).toBe(0);
    expect(text(await other.callTool({ name: 'odd__pid', arguments: {} }))).toBe(pid);
  });

  it('fails only the request whose message cannot be serialised; the shared connection stays up for the calls in flight', async () => {
    const up = gw.gateway.upstreams.get('odd')!;
    const pid = text(await other.callTool({ name: 'odd__pid', arguments: {} }));
    const inFlight = othersCalls(56, 1500);
    // Past the edge (library use): params too deep for JSON.stringify reach the upstream.
    const deep = JSON.parse(`{"name":"slow","arguments":{"x":${nested(100_000)}}}`) as Record<string, unknown>;
    const response = await up.call({ sessionId: 'lib', principalId: 'lib' }, 'tools/call', deep, undefined).response;
    expect('error' in response && response.error.data).toEqual({ code: 'SWB_ERR_UPSTREAM_UNSERIALISABLE' });
    expect('error' in response && response.error.code).toBe(-32602);
    expect(await inFlight).toEqual(Array.from({ length: 56 }, () => 'slept 1500'));
    expect(up.restarts).toBe(0);
    expect(text(await other.callTool({ name: 'odd__pid', arguments: {} }))).toBe(pid);
  });
});

describe('an upstream answer too deep to serialise', () => {
  let gw: RunningGateway;
  afterAll(async () => gw?.close());

  it('becomes a -33023 SWB_ERR_UPSTREAM_PROTOCOL error for that call; the session and the child keep serving', async () => {
    gw = await startTestGateway({ servers: { d: { command: process.execPath, args: [DEEP] } } });
    const mcp = `${gw.url}/mcp`;
    const sid = await initSession(mcp);
    const call = (id: number, name: string) =>
      post(
        mcp,
        { jsonrpc: '2.0', id, method: 'tools/call', params: { name, arguments: {} } },
        { 'mcp-session-id': sid },
      );
    expect(await messages(await call(3, 'd__deep'))).toEqual([
      {
        jsonrpc: '2.0',
        id: 3,
        error: expect.objectContaining({ code: -33023, data: { code: 'SWB_ERR_UPSTREAM_PROTOCOL' } }) as unknown,
      },
    ]);
    expect(await messages(await call(4, 'd__ok'))).toMatchObject([{ id: 4, result: { content: [{ text: 'ok' }] } }]);
    expect(gw.gateway.upstreams.get('d')!.restarts).toBe(0);
  });
});

describe('edge hygiene', () => {
  let gw: RunningGateway;
  let db: Database;
  let lines: Array<Record<string, unknown>>;
  let mcp: string;

  beforeAll(async () => {
    ({ gw, db, lines } = await startLogged({ servers: { odd: { command: process.execPath, args: [ODD] } } }));
    mcp = `${gw.url}/mcp`;
  });
  afterAll(async () => {
    await gw?.close();
    await db?.close();
  });

  const errorLines = () => lines.filter((l) => (l.level as number) >= ERROR_LEVEL);

  it('answers a malformed percent-escape in the path with 400 SWB_ERR_HTTP_BAD_PATH and logs no error', async () => {
    for (const path of ['/servers/%ZZ/mcp', '/mcp/%E0%A4%A/mcp', '/servers/%C3%28/mcp']) {
      const res = await post(`${gw.url}${path}`, { jsonrpc: '2.0', id: 1, method: 'ping' });
      expect(res.status).toBe(400);
      expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'SWB_ERR_HTTP_BAD_PATH',
      );
    }
    expect(errorLines()).toEqual([]);
  });

  it('logs a request body the client aborted at debug, never at error', async () => {
    const before = lines.length;
    const s = await rawSocket(gw.url);
    const closed = untilClosed(s);
    s.write(
      'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        'Accept: application/json, text/event-stream\r\nContent-Length: 1000\r\n\r\n{"jsonrpc":"2.0",',
    );
    await new Promise((r) => setTimeout(r, 50));
    s.destroy();
    await closed;
    await waitFor(
      () => lines.slice(before).some((l) => l.code === 'SWB_ERR_HTTP_BODY_ABORTED' && l.level === 20),
      5000,
      'the debug line about the aborted body',
    );
    expect(errorLines()).toEqual([]);
  });

  it('refuses Content-Type application/jsonx with 415 and a charset other than UTF-8', async () => {
    for (const ct of ['application/jsonx', 'text/plain; a=application/json', 'application/json; charset=latin1']) {
      const res = await post(mcp, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }, { 'content-type': ct });
      expect(res.status).toBe(415);
      expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'SWB_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
      );
    }
  });

  it('refuses Accept: application/jsonx and a type excluded with q=0 with 406', async () => {
    for (const accept of ['application/jsonx, text/event-stream', '*/*, text/event-stream;q=0', 'text/html']) {
      const res = await post(mcp, { jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }, { accept });
      expect(res.status).toBe(406);
    }
  });

  it('accepts wildcard and q-value forms of Accept and Content-Type parameters', async () => {
    const cases: Array<[string, string]> = [
      ['*/*', 'application/json'],
      ['application/*;q=0.9, text/*;q=0.1', 'application/json; charset=utf-8'],
      ['text/event-stream;q=0.5, application/json;q=1.0', 'Application/JSON'],
      ['application/json;charset=utf-8, text/event-stream', 'application/json;charset="UTF-8"'],
    ];
    for (const [accept, contentType] of cases) {
      const res = await post(
        mcp,
        {
          jsonrpc: '2.0',
          id: 1,
          method: 'initialize',
          params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'q', version: '1' } },
        },
        { accept, 'content-type': contentType },
      );
      expect(res.status).toBe(200);
      expect((await messages(res))[0]).toMatchObject({ id: 1, result: { protocolVersion: '2025-06-18' } });
    }
  });

  it('applies the media-type and depth checks to the legacy SSE message endpoint too', async () => {
    const ac = new AbortController();
    const stream = await fetch(`${gw.url}/sse`, { headers: { accept: 'text/event-stream' }, signal: ac.signal });
    try {
      const reader = stream.body!.getReader();
      let head = '';
      while (!head.includes('\n\n')) head += new TextDecoder().decode((await reader.read()).value);
      const endpoint = new URL(/data: (.*)\n/.exec(head)![1]!, gw.url).href;
      const plain = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'text/plain' },
        body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
      });
      expect(plain.status).toBe(415);
      const deep = await fetch(endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: `{"jsonrpc":"2.0","id":2,"method":"ping","params":{"x":${nested(100)}}}`,
      });
      expect(deep.status).toBe(400);
      expect(((await deep.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
        'SWB_ERR_HTTP_TOO_DEEP',
      );
    } finally {
      ac.abort();
    }
  });

  it('refuses a second in-flight request reusing a JSON-RPC id with SWB_ERR_SESSION_DUPLICATE_ID; the first is answered', async () => {
    const sid = await initSession(mcp);
    const call = { jsonrpc: '2.0', id: 5, method: 'tools/call', params: { name: 'odd__slow', arguments: { ms: 800 } } };
    const first = post(mcp, call, { 'mcp-session-id': sid });
    await waitFor(() => gw.gateway.getSession(sid)?.inFlight === 1, 5000, 'the first call in flight');
    const second = await post(mcp, call, { 'mcp-session-id': sid });
    expect(await messages(second)).toEqual([
      {
        jsonrpc: '2.0',
        id: 5,
        error: expect.objectContaining({ code: -32600, data: { code: 'SWB_ERR_SESSION_DUPLICATE_ID' } }) as unknown,
      },
    ]);
    const answered = await first;
    expect(answered.status).toBe(200);
    expect(await messages(answered)).toMatchObject([{ id: 5, result: { content: [{ text: 'slept 800' }] } }]);
    // Once answered, the id may be used again.
    const again = await post(
      mcp,
      { ...call, params: { name: 'odd__slow', arguments: { ms: 1 } } },
      { 'mcp-session-id': sid },
    );
    expect(await messages(again)).toMatchObject([{ id: 5, result: { content: [{ text: 'slept 1' }] } }]);
  });
});

describe('node:http connection limits (http.*)', () => {
  let gw: RunningGateway | undefined;
  const sockets: Socket[] = [];
  afterEach(async () => {
    for (const s of sockets.splice(0)) s.destroy();
    await gw?.close();
    gw = undefined;
  });

  const connections = (): Promise<number> =>
    new Promise((resolve, reject) => gw!.server.getConnections((err, n) => (err ? reject(err) : resolve(n))));

  it('closes connections past http.maxConnections at accept and serves again once one is gone', async () => {
    gw = await startTestGateway({ http: { maxConnections: 2 } });
    sockets.push(await rawSocket(gw.url), await rawSocket(gw.url));
    await waitFor(async () => (await connections()) === 2, 5000, 'two connections');
    const third = await rawSocket(gw.url);
    sockets.push(third);
    const got = untilClosed(third);
    third.write('GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n');
    expect(await got).toBe('');
    sockets[0]!.destroy();
    await waitFor(async () => (await connections()) === 1, 5000, 'one connection');
    const res = await fetch(`${gw.url}/healthz`, { headers: { connection: 'close' } });
    expect(res.status).toBe(200);
  });

  it('answers 408 and closes a connection whose body does not arrive within http.requestTimeout', async () => {
    gw = await startTestGateway({ http: { headersTimeout: '300ms', requestTimeout: '600ms' } });
    const s = await rawSocket(gw.url);
    sockets.push(s);
    const got = untilClosed(s);
    const started = Date.now();
    s.write(
      'POST /mcp HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n' +
        `Accept: ${MCP_HEADERS.accept}\r\nContent-Length: 100\r\n\r\n{"jsonrpc":`,
    );
    expect(await got).toMatch(/^HTTP\/1\.1 408 /);
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('refuses headersTimeout longer than requestTimeout at configuration time', async () => {
    await expect(startTestGateway({ http: { headersTimeout: '60s', requestTimeout: '30s' } })).rejects.toMatchObject({
      issues: [expect.objectContaining({ path: ['http', 'headersTimeout'] })],
    });
  });
});
