/**
 * The MCP POST body path over a real node:http server and client: `receiveBody` (shared
 * listeners, size limit) feeding `parseJsonRpcMessage`. Bodies in one chunk or many, the size
 * limit with and without Content-Length, bad JSON, batches, invalid or too deep messages, and a client that
 * aborts mid-body. Each case checks which outcome happened, once, and what went on the wire.
 */
import { createServer, request, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isGatewayError } from '../../../src/errors.js';
import { receiveBody } from '../../../src/http/guards.js';
import { parseJsonRpcMessage } from '../../../src/http/jsonrpc-body.js';
import type { JsonRpcMessage } from '../../../src/protocol/jsonrpc.js';

type Outcome = { kind: 'message'; message: JsonRpcMessage } | { kind: 'refused' } | { kind: 'failed'; err: unknown };

const LIMIT = 64;
/** `http.maxJsonDepth` of this server. */
const DEPTH = 4;
let server: Server;
let port: number;
let outcomes: Outcome[] = [];
let settled: (() => void) | undefined;

beforeAll(async () => {
  server = createServer((req, res) => {
    receiveBody(req, LIMIT, {
      body(text) {
        const message = parseJsonRpcMessage(res, text, DEPTH);
        if (message === undefined) {
          outcomes.push({ kind: 'refused' }); // the 400 is already sent
        } else {
          outcomes.push({ kind: 'message', message });
          res.writeHead(200).end('ok');
        }
        settled?.();
      },
      failed(err) {
        outcomes.push({ kind: 'failed', err });
        if (!res.headersSent) res.writeHead(isGatewayError(err) ? err.status : 500).end();
        settled?.();
      },
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

/** Sends `chunks` one write at a time (chunked encoding unless `length` is given). */
async function send(chunks: string[], length?: number): Promise<{ status: number; body: string; outcomes: Outcome[] }> {
  outcomes = [];
  const done = new Promise<void>((resolve) => (settled = resolve));
  const response = new Promise<{ status: number; body: string }>((resolve, reject) => {
    const req = request(
      {
        port,
        host: '127.0.0.1',
        method: 'POST',
        headers: length === undefined ? {} : { 'content-length': length },
      },
      (res) => {
        let body = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (body += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('error', reject);
    void (async () => {
      for (const c of chunks) {
        req.write(c);
        await new Promise((r) => setTimeout(r, 5));
      }
      req.end();
    })();
  });
  const [r] = await Promise.all([response, done]);
  return { ...r, outcomes };
}

describe('receiveBody + parseJsonRpcMessage', () => {
  it('delivers a message sent in several chunks, once', async () => {
    const text = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' });
    const r = await send([text.slice(0, 10), text.slice(10, 20), text.slice(20)]);
    expect(r.status).toBe(200);
    expect(r.outcomes).toEqual([{ kind: 'message', message: { jsonrpc: '2.0', id: 1, method: 'ping' } }]);
  });

  it('refuses a declared Content-Length over the limit before reading', async () => {
    const r = await send(['x'.repeat(LIMIT + 1)], LIMIT + 1);
    expect(r.status).toBe(413);
    expect(r.outcomes).toHaveLength(1);
    expect(r.outcomes[0]).toMatchObject({ kind: 'failed', err: { code: 'SWB_ERR_HTTP_BODY_TOO_LARGE' } });
  });

  it('refuses a chunked body once it grows past the limit, and reports it once', async () => {
    const r = await send(['{"jsonrpc":"2.0",', '"pad":"' + 'x'.repeat(LIMIT), '"}', '  ']);
    expect(r.status).toBe(413);
    expect(r.outcomes).toHaveLength(1);
    expect(r.outcomes[0]).toMatchObject({ kind: 'failed', err: { code: 'SWB_ERR_HTTP_BODY_TOO_LARGE' } });
  });

  it('answers malformed JSON, an empty body, a batch, an invalid message and one nested too deep with 400 itself', async () => {
    const cases: Array<[string[], number, string]> = [
      [['{"jsonrpc":'], -32700, 'SWB_ERR_HTTP_PARSE'],
      [[], -32700, 'SWB_ERR_HTTP_PARSE'],
      [['[{"jsonrpc":"2.0","id":1,"method":"ping"}]'], -32600, 'SWB_ERR_HTTP_INVALID_REQUEST'],
      [['{"jsonrpc":"1.0","id":3,"method":"ping"}'], -32600, 'SWB_ERR_HTTP_INVALID_REQUEST'],
      [['{"jsonrpc":"2.0","id":4,"method":"x","params":{"a":[[[1]]]}}'], -32600, 'SWB_ERR_HTTP_TOO_DEEP'],
    ];
    for (const [chunks, code, swb] of cases) {
      const r = await send(chunks);
      expect(r.status).toBe(400);
      expect(r.outcomes).toEqual([{ kind: 'refused' }]);
      expect(JSON.parse(r.body)).toMatchObject({ jsonrpc: '2.0', error: { code, data: { code: swb } } });
    }
  });

  it('reports a client that aborts mid-body as SWB_ERR_HTTP_BODY_ABORTED, once, and keeps serving', async () => {
    outcomes = [];
    const done = new Promise<void>((resolve) => (settled = resolve));
    const req = request({ port, host: '127.0.0.1', method: 'POST', headers: { 'content-length': 40 } });
    req.on('error', () => undefined);
    req.write('{"jsonrpc":"2.0",');
    await new Promise((r) => setTimeout(r, 20));
    req.destroy();
    await done;
    expect(outcomes).toHaveLength(1);
    expect(outcomes[0]).toMatchObject({ kind: 'failed', err: { code: 'SWB_ERR_HTTP_BODY_ABORTED' } });
    const r = await send([JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' })]);
    expect(r.outcomes).toEqual([{ kind: 'message', message: { jsonrpc: '2.0', method: 'notifications/initialized' } }]);
  });
});
