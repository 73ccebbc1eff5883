import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Agent, request as undiciRequest } from 'undici';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { UpstreamConnection } from '../../../src/upstream/connection.js';
import type { JsonRpcMessage, JsonRpcResponse } from '../../../src/protocol/jsonrpc.js';
import {
  createStreamableHttpTransport,
  type StreamableHttpTransport,
  type StreamableHttpTransportOptions,
} from '../../../src/upstream/streamable-http-transport.js';
import {
  attachInbox,
  eventually,
  freePort,
  initializeRequest,
  memoryLogger,
  PROTOCOL_VERSION,
  startEverythingHttp,
  startFixtureServer,
  type EverythingHttp,
  type FixtureServer,
  type Inbox,
  paramsOf,
  resultOf,
} from './helpers.js';

const request = (id: number, method: string, params?: Record<string, unknown>): JsonRpcMessage =>
  params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };

function errorData(response: JsonRpcResponse): Record<string, unknown> {
  if (!('error' in response)) throw new Error(`expected an error, got ${JSON.stringify(response)}`);
  return response.error.data as Record<string, unknown>;
}

/** A plain node:http server for wire situations no MCP server produces on demand. */
async function startRawServer(
  handler: (req: IncomingMessage, body: string, res: ServerResponse) => void,
): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req, res) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => handler(req, body, res));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('streamable HTTP transport', () => {
  const cleanups: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function transport(options: Partial<StreamableHttpTransportOptions> & { url: string }): StreamableHttpTransport {
    const t = createStreamableHttpTransport({ logger: silentLogger(), ...options });
    cleanups.push(() => t.close());
    return t;
  }

  /** initialize + setProtocolVersion + notifications/initialized, by hand. */
  async function handshake(t: StreamableHttpTransport, inbox: Inbox): Promise<void> {
    await t.start();
    await t.send(initializeRequest(0));
    const { response } = await inbox.response(0);
    expect('result' in response).toBe(true);
    t.setProtocolVersion(resultOf<{ protocolVersion: string }>(response).protocolVersion);
    await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
  }

  describe('against server-everything (streamableHttp)', () => {
    let everything: EverythingHttp;

    afterEach(async () => {
      await everything.stop();
    });

    it('initializes, keeps the session id and calls echo with relatedRequestId set', async () => {
      everything = await startEverythingHttp('streamableHttp');
      const t = transport({ url: everything.url });
      const inbox = attachInbox(t);
      await t.start();
      expect(t.description).toBe(`http ${everything.url}`);
      await t.send(initializeRequest(0));
      const init = await inbox.response(0);
      expect(init.info).toEqual({ relatedRequestId: 0 });
      expect(t.sessionId).toMatch(/^[0-9a-f-]{36}$/);
      expect(t.protocolVersion).toBe(PROTOCOL_VERSION);
      t.setProtocolVersion(PROTOCOL_VERSION);
      await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

      await t.send(request(1, 'tools/call', { name: 'echo', arguments: { message: 'hello upstream' } }));
      const echo = await inbox.response(1);
      expect(echo.info).toEqual({ relatedRequestId: 1 });
      expect(echo.response).toEqual({
        jsonrpc: '2.0',
        id: 1,
        result: { content: [{ type: 'text', text: 'Echo: hello upstream' }] },
      });
      const sessionAfter = t.sessionId;
      await t.send(request(2, 'tools/list'));
      await inbox.response(2);
      expect(t.sessionId).toBe(sessionAfter);
      expect(inbox.errors).toEqual([]);
    });

    it('delivers progress notifications of a long-running tool with the request id as relatedRequestId', async () => {
      everything = await startEverythingHttp('streamableHttp');
      const t = transport({ url: everything.url });
      const inbox = attachInbox(t);
      await handshake(t, inbox);
      await t.send(
        request(7, 'tools/call', {
          name: 'trigger-long-running-operation',
          arguments: { duration: 1, steps: 4 },
          _meta: { progressToken: 'tok-7' },
        }),
      );
      const done = await inbox.response(7);
      expect(done.info).toEqual({ relatedRequestId: 7 });
      const progress = inbox.deliveries.filter(
        (d) => 'method' in d.message && d.message.method === 'notifications/progress',
      );
      expect(progress.map((p) => p.info)).toEqual(Array(4).fill({ relatedRequestId: 7 }));
      expect(progress.map((p) => paramsOf<{ progress: number }>(p.message).progress)).toEqual([1, 2, 3, 4]);
      // All progress arrived before the response.
      expect(inbox.deliveries.indexOf(progress[3]!)).toBeLessThan(
        inbox.deliveries.findIndex((d) => d.message === done.response),
      );
    });

    it('reports a server-side deleted session as SWB_ERR_UPSTREAM_SESSION_EXPIRED and closes with sessionExpired', async () => {
      everything = await startEverythingHttp('streamableHttp');
      const t = transport({ url: everything.url });
      const inbox = attachInbox(t);
      await handshake(t, inbox);
      // The upstream forgets the session (as on restart): server-everything answers 400
      // "No valid session ID provided" for it, where the spec says 404.
      const del = await undiciRequest(everything.url, {
        method: 'DELETE',
        headers: { 'mcp-session-id': t.sessionId!, 'mcp-protocol-version': PROTOCOL_VERSION },
      });
      await del.body.dump();
      expect(del.statusCode).toBe(200);

      await t.send(request(3, 'tools/list'));
      const { response, info } = await inbox.response(3);
      expect(info).toEqual({ relatedRequestId: 3 });
      expect(errorData(response)).toMatchObject({ code: 'SWB_ERR_UPSTREAM_SESSION_EXPIRED', status: 400 });
      expect(await inbox.closed()).toEqual({ sessionExpired: true });
      await expect(t.send(request(4, 'tools/list'))).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    });
  });

  describe('against a spec-strict SDK server', () => {
    let fixture: FixtureServer;

    afterEach(async () => {
      await fixture.close();
    });

    it('answers 404 for a lost session with SWB_ERR_UPSTREAM_SESSION_EXPIRED and onclose({ sessionExpired })', async () => {
      fixture = await startFixtureServer();
      const t = transport({ url: fixture.url });
      const inbox = attachInbox(t);
      await handshake(t, inbox);
      fixture.forgetSession(t.sessionId!);
      await t.send(request(5, 'tools/call', { name: 'echo', arguments: { message: 'x' } }));
      const { response } = await inbox.response(5);
      expect(response.id).toBe(5);
      expect('error' in response && response.error.code).toBe(-33025);
      expect(errorData(response)).toMatchObject({ code: 'SWB_ERR_UPSTREAM_SESSION_EXPIRED', status: 404 });
      expect(await inbox.closed()).toEqual({ sessionExpired: true });
      expect(inbox.closes).toHaveLength(1);
    });

    it('resumes a response stream the server closed early (GET + Last-Event-ID) and delivers everything once', async () => {
      fixture = await startFixtureServer();
      const t = transport({ url: fixture.url });
      const inbox = attachInbox(t);
      await handshake(t, inbox);
      await t.send(
        request(9, 'tools/call', { name: 'poll-then-answer', arguments: { steps: 3 }, _meta: { progressToken: 9 } }),
      );
      const { response, info } = await inbox.response(9);
      expect(info).toEqual({ relatedRequestId: 9 });
      expect(response).toMatchObject({ result: { content: [{ type: 'text', text: 'done after 3 steps' }] } });
      const progress = inbox.deliveries.filter(
        (d) => 'method' in d.message && d.message.method === 'notifications/progress',
      );
      expect(progress.map((p) => paramsOf<{ progress: number }>(p.message).progress)).toEqual([1, 2, 3]);
      expect(progress.every((p) => p.info.relatedRequestId === 9)).toBe(true);
      const resumes = fixture.requests.filter((r) => r.method === 'GET' && r.lastEventId !== undefined);
      expect(resumes.length).toBeGreaterThanOrEqual(1);
      expect(resumes.every((r) => r.sessionId === t.sessionId && r.protocolVersion === PROTOCOL_VERSION)).toBe(true);
    });

    it('opens the standalone GET stream after initialize and reconnects it with Last-Event-ID', async () => {
      fixture = await startFixtureServer();
      const t = transport({ url: fixture.url, reconnectInitialDelayMs: 20, reconnectMaxDelayMs: 100 });
      const inbox = attachInbox(t);
      await handshake(t, inbox);
      await eventually(() => fixture.requests.some((r) => r.method === 'GET'), 5000, 'the standalone GET');
      const get = fixture.requests.find((r) => r.method === 'GET')!;
      expect(get).toMatchObject({ sessionId: t.sessionId, protocolVersion: PROTOCOL_VERSION, lastEventId: undefined });

      await fixture.broadcast('first');
      const first = await inbox.waitFor((d) => 'method' in d.message && JSON.stringify(d.message).includes('first'));
      expect(first.info).toEqual({});

      fixture.closeStandaloneStreams();
      await eventually(
        () => fixture.requests.some((r) => r.method === 'GET' && r.lastEventId !== undefined),
        5000,
        'the reconnecting GET',
      );
      await fixture.broadcast('second');
      const second = await inbox.waitFor((d) => 'method' in d.message && JSON.stringify(d.message).includes('second'));
      expect(second.info).toEqual({});
      expect(inbox.deliveries.filter((d) => JSON.stringify(d.message).includes('first'))).toHaveLength(1);
    });

    it('handles application/json responses (server in JSON response mode)', async () => {
      fixture = await startFixtureServer({ jsonResponse: true });
      const t = transport({ url: fixture.url });
      const inbox = attachInbox(t);
      await handshake(t, inbox);
      await t.send(request(1, 'tools/call', { name: 'echo', arguments: { message: 'json' } }));
      const { response, info } = await inbox.response(1);
      expect(info).toEqual({ relatedRequestId: 1 });
      expect(response).toMatchObject({ result: { content: [{ type: 'text', text: 'Echo: json' }] } });
    });

    it('close() ends the session with DELETE and fires onclose once', async () => {
      fixture = await startFixtureServer();
      const t = transport({ url: fixture.url });
      const inbox = attachInbox(t);
      await handshake(t, inbox);
      const sessionId = t.sessionId;
      await t.close();
      expect(fixture.requests.filter((r) => r.method === 'DELETE')).toEqual([
        expect.objectContaining({ sessionId, protocolVersion: PROTOCOL_VERSION }),
      ]);
      expect(inbox.closes).toEqual([{}]);
      await t.close();
      expect(inbox.closes).toHaveLength(1);
      await expect(t.send(request(2, 'ping'))).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    });
  });

  describe('failures become error responses', () => {
    it('answers a request to a refused connection with SWB_ERR_UPSTREAM_UNAVAILABLE', async () => {
      const port = await freePort();
      const t = transport({ url: `http://127.0.0.1:${port}/mcp` });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(initializeRequest(1));
      const { response, info } = await inbox.response(1);
      expect(info).toEqual({ relatedRequestId: 1 });
      expect(errorData(response)).toMatchObject({ code: 'SWB_ERR_UPSTREAM_UNAVAILABLE' });
      expect('error' in response && response.error.message).toContain('ECONNREFUSED');
      await expect(t.send({ jsonrpc: '2.0', method: 'notifications/initialized' })).rejects.toMatchObject({
        code: 'SWB_ERR_UPSTREAM_UNAVAILABLE',
      });
      expect(inbox.closes).toEqual([]);
    });

    it('answers an HTTP 5xx with SWB_ERR_UPSTREAM_HTTP and the status; the body excerpt goes to the log only', async () => {
      const raw = await startRawServer((_req, _body, res) => {
        res.writeHead(503, { 'content-type': 'text/plain' }).end('upstream overloaded, try later');
      });
      cleanups.push(raw.close);
      const { logger, records } = memoryLogger();
      const t = transport({ url: raw.url, logger });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(1, 'tools/list'));
      const { response } = await inbox.response(1);
      expect(errorData(response)).toEqual({ code: 'SWB_ERR_UPSTREAM_HTTP', status: 503 });
      expect(JSON.stringify(response)).not.toContain('upstream overloaded');
      expect(records.some((r) => r.status === 503 && r.excerpt === 'upstream overloaded, try later')).toBe(true);
    });

    it('answers a request whose headers do not arrive in time with SWB_ERR_UPSTREAM_TIMEOUT', async () => {
      const raw = await startRawServer(() => {
        // never answers
      });
      cleanups.push(raw.close);
      const t = transport({ url: raw.url, requestTimeoutMs: 300 });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(1, 'tools/list'));
      const { response } = await inbox.response(1, 5000);
      expect(errorData(response)).toMatchObject({ code: 'SWB_ERR_UPSTREAM_TIMEOUT' });
    });

    it('answers a JSON body larger than maxMessageBytes with SWB_ERR_UPSTREAM_PROTOCOL and drops the exchange', async () => {
      let closed = false;
      const raw = await startRawServer((_req, body, res) => {
        const id = (JSON.parse(body) as { id: number }).id;
        res.on('close', () => (closed = true));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"jsonrpc":"2.0","id":${id},"result":{"pad":"`);
        res.write('x'.repeat(4096)); // and never ends
      });
      cleanups.push(raw.close);
      const t = transport({ url: raw.url, maxMessageBytes: 1024 });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(5, 'tools/call'));
      const { response } = await inbox.response(5);
      expect(errorData(response)).toMatchObject({ code: 'SWB_ERR_UPSTREAM_PROTOCOL' });
      expect('error' in response && response.error.message).toContain('larger than 1024 bytes');
      await eventually(() => closed, 5000, 'the upstream response to be aborted');
    });

    it('delivers a JSON answer that arrives in several chunks, once', async () => {
      const raw = await startRawServer((_req, body, res) => {
        const id = (JSON.parse(body) as { id: number }).id;
        const text = JSON.stringify({
          jsonrpc: '2.0',
          id,
          result: { content: [{ type: 'text', text: 'é'.repeat(3000) }] },
        });
        const bytes = Buffer.from(text);
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': bytes.length });
        // Split inside a multi-byte character: the body must be decoded whole, not per chunk.
        const cut = text.indexOf('é') + 1;
        res.write(bytes.subarray(0, cut));
        setTimeout(() => res.end(bytes.subarray(cut)), 30);
      });
      cleanups.push(raw.close);
      const t = transport({ url: raw.url });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(6, 'tools/call'));
      const { response } = await inbox.response(6);
      expect(resultOf<{ content: { text: string }[] }>(response).content[0]?.text).toBe('é'.repeat(3000));
      await new Promise((r) => setTimeout(r, 50));
      expect(inbox.deliveries.filter((d) => 'id' in d.message && d.message.id === 6)).toHaveLength(1);
    });

    it('aborts the exchange of a request cancelled while its JSON body is still arriving', async () => {
      let closed = false;
      const raw = await startRawServer((req, body, res) => {
        const message = JSON.parse(body) as { id?: number; method: string };
        if (message.id === undefined) {
          res.writeHead(202).end(); // the notifications/cancelled
          return;
        }
        res.on('close', () => (closed = true));
        res.writeHead(200, { 'content-type': 'application/json' });
        res.write(`{"jsonrpc":"2.0","id":${message.id},`); // stalls
        void req;
      });
      cleanups.push(raw.close);
      const t = transport({ url: raw.url });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(7, 'tools/call'));
      await new Promise((r) => setTimeout(r, 50));
      await t.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 7 } });
      await eventually(() => closed, 5000, 'the stalled exchange to be aborted');
      expect(inbox.deliveries).toHaveLength(0);
    });

    it('under UpstreamConnection, times out a JSON body that stalls and aborts its exchange', async () => {
      let closed = false;
      const raw = await startRawServer((req, body, res) => {
        if (req.method !== 'POST') {
          res.writeHead(405).end(); // the standalone GET and the closing DELETE
          return;
        }
        const message = JSON.parse(body) as { id?: number; method: string };
        if (message.id === undefined) {
          res.writeHead(202).end();
        } else if (message.method === 'initialize') {
          res.writeHead(200, { 'content-type': 'application/json' });
          res.end(
            JSON.stringify({
              jsonrpc: '2.0',
              id: message.id,
              result: {
                protocolVersion: PROTOCOL_VERSION,
                capabilities: {},
                serverInfo: { name: 'raw', version: '1' },
              },
            }),
          );
        } else {
          res.on('close', () => (closed = true));
          res.writeHead(200, { 'content-type': 'application/json' });
          res.write(`{"jsonrpc":"2.0","id":${message.id},`); // stalls
        }
      });
      cleanups.push(raw.close);
      const conn = new UpstreamConnection(transport({ url: raw.url }), {
        name: 'raw',
        logger: silentLogger(),
        requestTimeoutMs: 300,
      });
      cleanups.push(() => conn.close());
      await conn.initialize();
      const response = await conn.request('tools/call', { name: 'slow' }).response;
      expect(errorData(response)).toMatchObject({ code: 'SWB_ERR_UPSTREAM_TIMEOUT' });
      await eventually(() => closed, 5000, 'the stalled exchange to be aborted');
    });

    it('answers a request whose SSE stream ends without the response or an event id with SWB_ERR_UPSTREAM_PROTOCOL', async () => {
      const raw = await startRawServer((_req, body, res) => {
        const id = (JSON.parse(body) as { id: number }).id;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.end(
          `event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{"progressToken":${id},"progress":1}}\n\n`,
        );
      });
      cleanups.push(raw.close);
      const t = transport({ url: raw.url });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(4, 'tools/call'));
      const { response } = await inbox.response(4);
      expect(errorData(response)).toMatchObject({ code: 'SWB_ERR_UPSTREAM_PROTOCOL' });
      const note = inbox.deliveries.find((d) => 'method' in d.message);
      expect(note?.info).toEqual({ relatedRequestId: 4 });
    });
  });

  describe('wire format', () => {
    it('sends the static and protocol headers, takes the session id from the initialize response, and reads JSON arrays', async () => {
      const seen: IncomingMessage['headers'][] = [];
      const raw = await startRawServer((req, body, res) => {
        seen.push(req.headers);
        if (req.method !== 'POST') {
          res.writeHead(405).end();
          return;
        }
        const msg = JSON.parse(body) as { id?: number; method: string };
        if (msg.id === undefined) {
          res.writeHead(202).end();
        } else if (msg.method === 'initialize') {
          res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 'sess-1' });
          res.end(
            JSON.stringify({ jsonrpc: '2.0', id: msg.id, result: { protocolVersion: '2025-06-18', capabilities: {} } }),
          );
        } else {
          res.writeHead(200, { 'content-type': 'application/json; charset=utf-8', 'mcp-session-id': 'other' });
          res.end(
            JSON.stringify([
              { jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'hi' } },
              { jsonrpc: '2.0', id: msg.id, result: { tools: [] } },
            ]),
          );
        }
      });
      cleanups.push(raw.close);
      const t = transport({
        url: raw.url,
        headers: { Authorization: 'Bearer cfg-token', Accept: 'text/html', 'X-Team': 'a' },
      });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(initializeRequest(1));
      await inbox.response(1);
      expect(t.sessionId).toBe('sess-1');
      t.setProtocolVersion('2025-06-18');
      await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
      await t.send(request(2, 'tools/list'));
      const { info } = await inbox.response(2);
      expect(info).toEqual({ relatedRequestId: 2 });
      expect(inbox.deliveries.find((d) => 'method' in d.message)?.info).toEqual({ relatedRequestId: 2 });
      // A session id on a later response does not replace the one from initialize.
      expect(t.sessionId).toBe('sess-1');

      const posts = seen.filter((h) => h['content-type'] === 'application/json');
      expect(posts[0]).toMatchObject({
        accept: 'application/json, text/event-stream',
        authorization: 'Bearer cfg-token',
        'x-team': 'a',
      });
      expect(posts[0]!['mcp-session-id']).toBeUndefined();
      expect(posts[0]!['mcp-protocol-version']).toBeUndefined();
      expect(posts.at(-1)).toMatchObject({ 'mcp-session-id': 'sess-1', 'mcp-protocol-version': '2025-06-18' });
      // The standalone GET was tried once and 405 accepted.
      await eventually(() => seen.some((h) => h.accept === 'text/event-stream'), 5000, 'the standalone GET');
      expect(seen.filter((h) => h.accept === 'text/event-stream')).toHaveLength(1);
    });

    it('does not time out an SSE response that stays quiet longer than requestTimeoutMs', async () => {
      const raw = await startRawServer((_req, body, res) => {
        const id = (JSON.parse(body) as { id: number }).id;
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': accepted\n\n');
        setTimeout(() => res.end(`data: ${JSON.stringify({ jsonrpc: '2.0', id, result: { late: true } })}\n\n`), 600);
      });
      cleanups.push(raw.close);
      const t = transport({ url: raw.url, requestTimeoutMs: 200 });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(1, 'tools/call'));
      const { response } = await inbox.response(1, 5000);
      expect(response).toEqual({ jsonrpc: '2.0', id: 1, result: { late: true } });
    });

    it('sends through a caller-provided dispatcher and leaves it open on close()', async () => {
      const raw = await startRawServer((_req, body, res) => {
        const id = (JSON.parse(body) as { id: number }).id;
        res
          .writeHead(200, { 'content-type': 'application/json' })
          .end(JSON.stringify({ jsonrpc: '2.0', id, result: {} }));
      });
      cleanups.push(raw.close);
      const agent = new Agent();
      cleanups.push(() => agent.close());
      const t = transport({ url: raw.url, dispatcher: agent });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(1, 'ping'));
      expect((await inbox.response(1)).response).toEqual({ jsonrpc: '2.0', id: 1, result: {} });
      await t.close();
      expect(agent.closed).toBe(false);
      expect(agent.destroyed).toBe(false);
    });

    it('drops the stream of a request after notifications/cancelled for it', async () => {
      let streamClosed!: () => void;
      const closed = new Promise<void>((resolve) => (streamClosed = resolve));
      const raw = await startRawServer((req, body, res) => {
        const msg = JSON.parse(body) as { id?: number };
        if (msg.id === undefined) {
          res.writeHead(202).end();
          return;
        }
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write(': open\n\n');
        res.on('close', () => streamClosed());
      });
      cleanups.push(raw.close);
      const t = transport({ url: raw.url });
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(11, 'tools/call'));
      await t.send({ jsonrpc: '2.0', method: 'notifications/cancelled', params: { requestId: 11 } });
      await closed;
      expect(inbox.deliveries).toEqual([]);
    });
  });
});
