/**
 * The HTTP edge's answers to bad input, each with its defined status and JSON-RPC code
 * (issue acceptance 4), plus session lifecycle and resumability on the Streamable HTTP front.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { startTestGateway } from '../../helpers/gateway.js';
import { initSession, messages, post, MCP_HEADERS, parseSse } from '../../helpers/raw.js';
import { fileURLToPath } from 'node:url';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));

describe('Streamable HTTP edge', () => {
  let gw: RunningGateway;
  let mcp: string;

  beforeAll(async () => {
    gw = await startTestGateway({
      http: { maxBodyBytes: 2048 },
      servers: { odd: { command: process.execPath, args: [ODD] } },
    });
    mcp = `${gw.url}/mcp`;
  });
  afterAll(async () => gw?.close());

  it('answers malformed JSON with 400 and JSON-RPC -32700', async () => {
    const res = await post(mcp, '{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number }; id: unknown };
    expect(body.error.code).toBe(-32700);
    expect(body.id).toBeNull();
  });

  it('answers a structurally invalid JSON-RPC message with 400 and -32600', async () => {
    const res = await post(mcp, { jsonrpc: '1.0', id: 7, method: 'ping' });
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: number }; id: unknown };
    expect(body.error.code).toBe(-32600);
    expect(body.id).toBe(7);
  });

  it('rejects JSON-RPC batches with -32600', async () => {
    const res = await post(mcp, [{ jsonrpc: '2.0', id: 1, method: 'ping' }]);
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: number } }).error.code).toBe(-32600);
  });

  it('answers an unknown session with 404 so the client re-initialises', async () => {
    const res = await post(
      mcp,
      { jsonrpc: '2.0', id: 1, method: 'tools/list' },
      { 'mcp-session-id': 'no-such-session' },
    );
    expect(res.status).toBe(404);
    expect(((await res.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'SWB_ERR_SESSION_NOT_FOUND',
    );
  });

  it('answers a request without a session id with 400', async () => {
    const res = await post(mcp, { jsonrpc: '2.0', id: 1, method: 'tools/list' });
    expect(res.status).toBe(400);
  });

  it('answers an oversized body with 413 and keeps serving', async () => {
    const big = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping', params: { pad: 'x'.repeat(5000) } });
    const res = await post(mcp, big);
    expect(res.status).toBe(413);
    const sid = await initSession(mcp);
    const ok = await post(mcp, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid });
    expect(ok.status).toBe(200);
  });

  it('answers a foreign Origin with 403 and a foreign Host with 403', async () => {
    const res = await post(mcp, { jsonrpc: '2.0', id: 1, method: 'ping' }, { origin: 'http://evil.example' });
    expect(res.status).toBe(403);
    const res2 = await fetch(mcp, { method: 'POST', headers: { ...MCP_HEADERS, host: 'evil.example' }, body: '{}' });
    // fetch may refuse to override Host; when it does, the request still reaches us with the real Host.
    expect([403, 400]).toContain(res2.status);
  });

  it('answers a wrong Accept header with 406', async () => {
    const res = await fetch(mcp, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json' },
      body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'initialize', params: {} }),
    });
    expect(res.status).toBe(406);
  });

  it('answers an unsupported MCP-Protocol-Version with 400', async () => {
    const sid = await initSession(mcp);
    const res = await post(
      mcp,
      { jsonrpc: '2.0', id: 2, method: 'ping' },
      { 'mcp-session-id': sid, 'mcp-protocol-version': '1999-01-01' },
    );
    expect(res.status).toBe(400);
  });

  it('answers notifications and responses with 202', async () => {
    const sid = await initSession(mcp);
    const res = await post(
      mcp,
      { jsonrpc: '2.0', method: 'notifications/roots/list_changed' },
      { 'mcp-session-id': sid },
    );
    expect(res.status).toBe(202);
    const res2 = await post(mcp, { jsonrpc: '2.0', id: 99, result: {} }, { 'mcp-session-id': sid });
    expect(res2.status).toBe(202);
  });

  it('answers an unknown tool with a JSON-RPC error, not an HTTP error', async () => {
    const sid = await initSession(mcp);
    const res = await post(
      mcp,
      { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'nope__x', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    expect(res.status).toBe(200);
    const [m] = await messages(res);
    expect((m?.error as { code: number }).code).toBe(-32602);
  });

  it('refuses params._meta that is not an object with 400 and -32600 at once, and keeps serving', async () => {
    const sid = await initSession(mcp);
    for (const [i, meta] of [null, false, 'x', 5, []].entries()) {
      const res = await fetch(mcp, {
        method: 'POST',
        headers: { ...MCP_HEADERS, 'mcp-session-id': sid },
        body: JSON.stringify({
          jsonrpc: '2.0',
          id: 40 + i,
          method: 'tools/call',
          params: { name: 'odd__pid', _meta: meta },
        }),
        // Unanswered, such a call would otherwise wait for the upstream timeout (or forever).
        signal: AbortSignal.timeout(3_000),
      });
      expect(res.status).toBe(400);
      const body = (await res.json()) as { id: unknown; error: { code: number; data: { code: string } } };
      expect(body).toMatchObject({
        id: 40 + i,
        error: { code: -32600, data: { code: 'SWB_ERR_HTTP_INVALID_REQUEST' } },
      });
    }
    const ok = await post(
      mcp,
      { jsonrpc: '2.0', id: 50, method: 'tools/call', params: { name: 'odd__pid', _meta: { progressToken: 't' } } },
      { 'mcp-session-id': sid },
    );
    expect(ok.status).toBe(200);
    const [m] = await messages(ok);
    expect(m).toMatchObject({ id: 50, result: { content: [{ type: 'text' }] } });
  });

  it('sends JSON answers with a byte-exact Content-Length, not chunked (one write per answer)', async () => {
    const sid = await initSession(mcp);
    // Non-ASCII in the answer: the length counts UTF-8 bytes, not characters.
    const res = await post(
      mcp,
      { jsonrpc: '2.0', id: 4, method: 'tools/call', params: { name: 'nope__ü€', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    const body = Buffer.from(await res.arrayBuffer());
    expect(res.headers.get('transfer-encoding')).toBeNull();
    expect(Number(res.headers.get('content-length'))).toBe(body.length);
    expect(body.toString('utf8')).toContain('ü€');

    const bad = await post(mcp, '{"jsonrpc": "2.0", "id": 1, "method": ');
    expect(Number(bad.headers.get('content-length'))).toBe(Buffer.from(await bad.arrayBuffer()).length);

    const accepted = await post(
      mcp,
      { jsonrpc: '2.0', method: 'notifications/initialized' },
      { 'mcp-session-id': sid },
    );
    expect(accepted.status).toBe(202);
    expect(accepted.headers.get('content-length')).toBe('0');
  });

  it('ends a session on DELETE; its id then gets 404', async () => {
    const sid = await initSession(mcp);
    const del = await fetch(mcp, { method: 'DELETE', headers: { 'mcp-session-id': sid } });
    expect(del.status).toBe(200);
    const res = await post(mcp, { jsonrpc: '2.0', id: 2, method: 'ping' }, { 'mcp-session-id': sid });
    expect(res.status).toBe(404);
  });

  it('refuses a second GET stream on one session with 409', async () => {
    const sid = await initSession(mcp);
    const ac = new AbortController();
    const first = await fetch(mcp, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': sid },
      signal: ac.signal,
    });
    expect(first.status).toBe(200);
    const second = await fetch(mcp, { headers: { accept: 'text/event-stream', 'mcp-session-id': sid } });
    expect(second.status).toBe(409);
    ac.abort();
  });

  it('drops the answer of a client that went away: nothing is written, the call settles, the session keeps serving', async () => {
    const sid = await initSession(mcp);
    const session = gw.gateway.getSession(sid)!;
    // The real ServerResponse of that request, seen through a second 'request' listener.
    let response: ServerResponse | undefined;
    const spy = (req: IncomingMessage, res: ServerResponse): void => {
      if (req.headers['x-test'] === 'gone') response = res;
    };
    gw.server.on('request', spy);
    const ac = new AbortController();
    const gone = fetch(mcp, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'x-test': 'gone' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 8,
        method: 'tools/call',
        params: { name: 'odd__slow', arguments: { ms: 300 } },
      }),
      signal: ac.signal,
    });
    await new Promise((resolve) => setTimeout(resolve, 100));
    ac.abort();
    await expect(gone).rejects.toMatchObject({ name: 'AbortError' });
    // The upstream still answers at 300 ms; the gateway drops it and the session goes on.
    await new Promise((resolve) => setTimeout(resolve, 400));
    gw.server.off('request', spy);
    expect(session.inFlight).toBe(0);
    // The answer arrived after the client left: not even headers were written to its response.
    expect(response?.destroyed).toBe(true);
    expect(response?.headersSent).toBe(false);
    const res = await post(mcp, { jsonrpc: '2.0', id: 9, method: 'ping' }, { 'mcp-session-id': sid });
    expect(res.status).toBe(200);
    expect(((await res.json()) as { id: number }).id).toBe(9);
  });

  it('returns 405 for PUT on the MCP endpoint', async () => {
    const res = await fetch(mcp, { method: 'PUT' });
    expect(res.status).toBe(405);
  });

  it('returns 404 for an unknown server route', async () => {
    const res = await post(`${gw.url}/servers/nope/mcp`, { jsonrpc: '2.0', id: 1, method: 'ping' });
    expect(res.status).toBe(404);
  });

  it('resumes an interrupted SSE response stream from Last-Event-ID', async () => {
    const sid = await initSession(mcp, {}, '2025-11-25');
    // A call with a progress token is answered over SSE (progress precedes the response).
    const ac = new AbortController();
    const res = await fetch(mcp, {
      method: 'POST',
      headers: { ...MCP_HEADERS, 'mcp-session-id': sid, 'mcp-protocol-version': '2025-11-25' },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 5,
        method: 'tools/call',
        params: { name: 'odd__slow', arguments: { ms: 300 }, _meta: { progressToken: 'p1' } },
      }),
      signal: ac.signal,
    });
    expect(res.status).toBe(200);
    // No progress is sent by this upstream, so the answer comes as JSON after 300 ms; abort before that.
    ac.abort();
    // JSON-mode answers cannot be resumed; an unknown event id is refused with a clear error.
    const resumed = await fetch(mcp, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': '9.9' },
    });
    expect(resumed.status).toBe(400);
    await new Promise((r) => setTimeout(r, 350));
  });

  it('replays stored events of the standalone stream after a reconnect', async () => {
    const sid = await initSession(mcp, {}, '2025-11-25');
    const ac = new AbortController();
    const stream = await fetch(mcp, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': sid },
      signal: ac.signal,
    });
    expect(stream.status).toBe(200);
    const reader = stream.body!.getReader();
    const first = new TextDecoder().decode((await reader.read()).value);
    const priming = parseSse(first)[0];
    // Standalone stream 0, before its first event (transports §Resumability and Redelivery); the
    // id names this replica (portable sessions).
    expect(priming?.id).toMatch(/^0\.0\.[0-9a-f]{8}$/);
    ac.abort();
    // While no GET stream is open, the upstream adds a tool: list_changed is stored for the session.
    await new Promise((r) => setTimeout(r, 50));
    const call = await post(
      mcp,
      { jsonrpc: '2.0', id: 6, method: 'tools/call', params: { name: 'odd__add-tool', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    await call.text();
    await new Promise((r) => setTimeout(r, 200));
    const ac2 = new AbortController();
    const resumed = await fetch(mcp, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': sid, 'last-event-id': priming!.id! },
      signal: ac2.signal,
    });
    expect(resumed.status).toBe(200);
    const r2 = resumed.body!.getReader();
    let buf = '';
    const deadline = Date.now() + 3000;
    while (!buf.includes('list_changed') && Date.now() < deadline) {
      const { value, done } = await r2.read();
      if (done) break;
      buf += new TextDecoder().decode(value);
    }
    ac2.abort();
    expect(buf).toContain('notifications/tools/list_changed');
  });
});

describe('session bounds', () => {
  it('refuses a principal beyond sessions.maxPerPrincipal with 429 and accepts again after a DELETE', async () => {
    const gw = await startTestGateway({ sessions: { maxPerPrincipal: 2 }, servers: {} });
    try {
      const url = `${gw.url}/mcp`;
      const a = await initSession(url);
      await initSession(url);
      await expect(initSession(url)).rejects.toThrow(/initialize failed: 429/);
      await fetch(url, { method: 'DELETE', headers: { 'mcp-session-id': a } });
      await expect(initSession(url)).resolves.toMatch(
        /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}(\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)?$/,
      );
    } finally {
      await gw.close();
    }
  });
});
