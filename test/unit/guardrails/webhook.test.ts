import { once } from 'node:events';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import {
  createWebhookClient,
  MAX_RESPONSE_BYTES,
  parseDecision,
  WebhookError,
  type WebhookClient,
  type WebhookQuestion,
} from '../../../src/guardrails/webhook.js';

const QUESTION: WebhookQuestion = {
  phase: 'request',
  method: 'tools/call',
  server: 'echo',
  tool: 'echo',
  arguments: { message: 'hi' },
  principal: { id: 'token:alice', name: 'alice', kind: 'token' },
};

type Handler = (req: IncomingMessage, body: string, res: ServerResponse) => void;

const opened: Array<{ close(): Promise<void> }> = [];
afterEach(async () => {
  for (const o of opened.splice(0).reverse()) await o.close();
});

async function guard(handler: Handler): Promise<{ url: string; server: Server; sockets: Set<unknown> }> {
  const sockets = new Set<unknown>();
  const server = createServer((req, res) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (c: string) => (body += c));
    req.on('end', () => handler(req, body, res));
  });
  server.on('connection', (s) => sockets.add(s));
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  opened.push({
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  });
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/check?x=1`, server, sockets };
}

function client(url: string, timeoutMs = 500): WebhookClient {
  const c = createWebhookClient({ url, timeoutMs, headers: { authorization: 'Bearer guard-secret' } });
  opened.push(c);
  return c;
}

function json(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(typeof body === 'string' ? body : JSON.stringify(body));
}

async function failure(p: Promise<unknown>): Promise<WebhookError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof WebhookError) return err;
    throw err;
  }
  throw new Error('resolved');
}

describe('webhook client', () => {
  it('POSTs the question as JSON with the configured headers and returns the decision', async () => {
    const seen: Array<{ method?: string; url?: string; auth?: string; type?: string; body: unknown }> = [];
    const g = await guard((req, body, res) => {
      seen.push({
        method: req.method,
        url: req.url,
        auth: req.headers.authorization,
        type: req.headers['content-type'],
        body: JSON.parse(body),
      });
      json(res, 200, { allow: false, reason: 'no', redacted: { message: 'x' } });
    });
    const decision = await client(g.url).ask(QUESTION);
    expect(decision).toEqual({ allow: false, reason: 'no', redacted: { message: 'x' } });
    expect(seen).toEqual([
      { method: 'POST', url: '/check?x=1', auth: 'Bearer guard-secret', type: 'application/json', body: QUESTION },
    ]);
  });

  it('reuses keep-alive connections across decisions (20 decisions, at most 2 sockets)', async () => {
    const g = await guard((_req, _body, res) => json(res, 200, { allow: true }));
    const c = client(g.url);
    for (let i = 0; i < 20; i++) expect((await c.ask(QUESTION)).allow).toBe(true);
    expect(g.sockets.size).toBeLessThanOrEqual(2);
  });

  it('fails with timeout when the guard does not answer in time', async () => {
    const g = await guard(() => undefined); // never answers
    const err = await failure(client(g.url, 100).ask(QUESTION));
    expect(err.kind).toBe('timeout');
  });

  it('fails with connection when nothing listens', async () => {
    const g = await guard(() => undefined);
    const url = g.url;
    await new Promise<void>((resolve) => g.server.close(() => resolve()));
    const err = await failure(client(url).ask(QUESTION));
    expect(err.kind).toBe('connection');
  });

  it('fails with status on a non-2xx answer, even with a decision in the body', async () => {
    const g = await guard((_req, _body, res) => json(res, 503, { allow: true }));
    expect((await failure(client(g.url).ask(QUESTION))).kind).toBe('status');
  });

  it('fails with body on malformed or oversized answers', async () => {
    const answers: unknown[] = [
      'not json',
      '[]',
      { allow: 'yes' },
      { allow: true, reason: 5 },
      { allow: true, redacted: [1] },
    ];
    for (const answer of answers) {
      const g = await guard((_req, _body, res) => json(res, 200, answer));
      expect((await failure(client(g.url).ask(QUESTION))).kind, JSON.stringify(answer)).toBe('body');
    }
    const big = await guard((_req, _body, res) =>
      json(res, 200, `{"allow":true,"reason":"${'x'.repeat(MAX_RESPONSE_BYTES)}"}`),
    );
    expect((await failure(client(big.url).ask(QUESTION))).kind).toBe('body');
  });
});

describe('parseDecision', () => {
  it('accepts the minimal and the full answer', () => {
    expect(parseDecision('{"allow":true}')).toEqual({ allow: true, reason: undefined, redacted: undefined });
    expect(parseDecision('{"allow":false,"reason":"r","redacted":{}}')).toEqual({
      allow: false,
      reason: 'r',
      redacted: {},
    });
  });
});
