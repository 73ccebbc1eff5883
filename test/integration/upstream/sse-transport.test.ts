import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JsonRpcMessage } from '../../../src/protocol/jsonrpc.js';
import {
  createSseTransport,
  type SseTransport,
  type SseTransportOptions,
} from '../../../src/upstream/sse-transport.js';
import {
  attachInbox,
  initializeRequest,
  memoryLogger,
  PROTOCOL_VERSION,
  startEverythingHttp,
  type EverythingHttp,
} from './helpers.js';

const request = (id: number, method: string, params?: Record<string, unknown>): JsonRpcMessage =>
  params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };

/** A plain node:http server for wire situations server-everything does not produce. */
async function startRawServer(
  handler: (req: IncomingMessage, res: ServerResponse) => void,
): Promise<{ base: string; close: () => Promise<void> }> {
  const server: Server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    base: `http://127.0.0.1:${port}`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('legacy HTTP+SSE transport', () => {
  const cleanups: (() => Promise<unknown>)[] = [];

  afterEach(async () => {
    for (const c of cleanups.splice(0).reverse()) await c();
  });

  function transport(options: Partial<SseTransportOptions> & { url: string }): SseTransport {
    const t = createSseTransport({ logger: silentLogger(), ...options });
    cleanups.push(() => t.close());
    return t;
  }

  describe('against server-everything (sse)', () => {
    let everything: EverythingHttp;

    afterEach(async () => {
      await everything.stop();
    });

    it('waits for the endpoint event, then initializes and calls echo', async () => {
      everything = await startEverythingHttp('sse');
      const t = transport({ url: everything.url });
      const inbox = attachInbox(t);
      await t.start();
      expect(t.endpoint?.origin).toBe(everything.baseUrl);
      expect(t.endpoint?.pathname).toBe('/message');
      expect(t.endpoint?.searchParams.get('sessionId')).toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
      );

      await t.send(initializeRequest(1));
      const init = await inbox.response(1);
      expect(init.info).toEqual({});
      expect(init.response).toMatchObject({ result: { protocolVersion: PROTOCOL_VERSION } });
      await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });

      await t.send(request(2, 'tools/call', { name: 'echo', arguments: { message: 'over sse' } }));
      const echo = await inbox.response(2);
      expect(echo.response).toEqual({
        jsonrpc: '2.0',
        id: 2,
        result: { content: [{ type: 'text', text: 'Echo: over sse' }] },
      });
      expect(inbox.errors).toEqual([]);
    });

    it('closes with an error when the server goes away, and rejects later sends', async () => {
      everything = await startEverythingHttp('sse');
      const t = transport({ url: everything.url });
      const inbox = attachInbox(t);
      await t.start();
      await everything.stop();
      const info = await inbox.closed();
      expect(info.error).toBeInstanceOf(Error);
      await expect(t.send(request(3, 'ping'))).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    });
  });

  it('rejects start() with SWB_ERR_UPSTREAM_TIMEOUT when no endpoint event arrives in time', async () => {
    const raw = await startRawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write(': no endpoint for you\n\n');
    });
    cleanups.push(raw.close);
    const t = transport({ url: `${raw.base}/sse`, startTimeoutMs: 200 });
    await expect(t.start()).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_TIMEOUT' });
    await expect(t.send(request(1, 'ping'))).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
  });

  it('rejects start() with SWB_ERR_UPSTREAM_HTTP and the status when the GET fails; the body is logged only', async () => {
    const raw = await startRawServer((_req, res) => {
      res.writeHead(401, { 'content-type': 'text/plain' }).end('missing token');
    });
    cleanups.push(raw.close);
    const { logger, records } = memoryLogger();
    const t = transport({ url: `${raw.base}/sse`, logger });
    const err: unknown = await t.start().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SWB_ERR_UPSTREAM_HTTP', data: { status: 401 } });
    expect((err as Error).message).not.toContain('missing token');
    expect(records.some((r) => r.status === 401 && r.excerpt === 'missing token')).toBe(true);
  });

  it('refuses an endpoint on another origin (the POSTs carry credentials)', async () => {
    const raw = await startRawServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: endpoint\ndata: http://evil.example/message\n\n');
    });
    cleanups.push(raw.close);
    const t = transport({ url: `${raw.base}/sse` });
    await expect(t.start()).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_PROTOCOL' });
  });

  it('answers a request whose POST fails with a synthetic error response; rejects a failed notification', async () => {
    const seen: IncomingMessage['headers'][] = [];
    const raw = await startRawServer((req, res) => {
      seen.push(req.headers);
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'text/event-stream' });
        res.write('event: endpoint\ndata: /message?sessionId=abc\n\n');
        return;
      }
      req.resume();
      req.on('end', () => res.writeHead(500, { 'content-type': 'text/plain' }).end('boom'));
    });
    cleanups.push(raw.close);
    const t = transport({ url: `${raw.base}/sse`, headers: { Authorization: 'Bearer k' } });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'tools/list'));
    const { response } = await inbox.response(1);
    expect(response).toMatchObject({ id: 1, error: { data: { code: 'SWB_ERR_UPSTREAM_HTTP', status: 500 } } });
    await expect(t.send({ jsonrpc: '2.0', method: 'notifications/initialized' })).rejects.toMatchObject({
      code: 'SWB_ERR_UPSTREAM_HTTP',
    });
    expect(seen[0]).toMatchObject({ accept: 'text/event-stream', authorization: 'Bearer k' });
    expect(seen[1]).toMatchObject({ 'content-type': 'application/json', authorization: 'Bearer k' });
  });

  it('close() aborts the stream and fires onclose({}) once', async () => {
    let streamGone!: () => void;
    const gone = new Promise<void>((resolve) => (streamGone = resolve));
    const raw = await startRawServer((req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('event: endpoint\ndata: /message\n\n');
      req.on('close', () => streamGone());
    });
    cleanups.push(raw.close);
    const t = transport({ url: `${raw.base}/sse` });
    const inbox = attachInbox(t);
    await t.start();
    await t.close();
    await gone;
    await t.close();
    expect(inbox.closes).toEqual([{}]);
  });
});
