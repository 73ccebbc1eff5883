/**
 * Slow readers through the real gateway: a client that opens an SSE stream and stops reading
 * must not make the gateway buffer without bound. Its stream is closed once over
 * `http.maxStreamBytes` / `http.maxStreamEvents` (the defaults, 4 MiB / 4096 events, unless a
 * test sets them), counted in `switchboard_stream_overflows_total`, and other clients keep being
 * served.
 *
 * The reader is a raw `node:http` request whose socket is paused after the first event: the
 * kernel buffers fill (a few MB on loopback), then the gateway's own queue grows until the budget
 * closes the stream.
 */
import { request, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, everythingStdio, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { initSession, MCP_HEADERS, parseSse } from '../../helpers/raw.js';

let gw: RunningGateway | undefined;
const sockets: Array<{ destroy(): void }> = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  await gw?.close();
  gw = undefined;
});

/** Opens a GET SSE stream; returns the (paused) response once its headers and first bytes arrived. */
function openStream(url: string, headers: Record<string, string>): Promise<{ res: IncomingMessage; first: string }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'GET', headers: { accept: 'text/event-stream', ...headers } }, (res) => {
      sockets.push(res.socket);
      res.setEncoding('utf8');
      res.once('data', (chunk: string) => {
        res.pause(); // nothing more is read until the caller decides
        resolve({ res, first: chunk });
      });
    });
    req.on('error', reject);
    req.end();
  });
}

/** Stops reading: nothing more is taken from the socket, so TCP's window closes. */
function stopReading(res: IncomingMessage): void {
  res.pause();
  res.socket.pause();
}

/**
 * Reads an SSE body until a complete event's data contains `marker` (or the stream ends), and
 * returns the complete events that carry data. Only whole events (ended by a blank line) count,
 * so a chunk boundary never yields a half-read event.
 */
function readEventsUntil(res: IncomingMessage, marker: string): Promise<ReturnType<typeof parseSse>> {
  return new Promise((resolve) => {
    let buffer = '';
    let settled = false;
    const complete = () => parseSse(buffer.slice(0, buffer.lastIndexOf('\n\n') + 2)).filter((e) => e.data !== '');
    const done = () => {
      if (settled) return;
      settled = true;
      resolve(complete());
    };
    res.setEncoding('utf8');
    res.on('data', (chunk: string) => {
      buffer += chunk;
      if (chunk.includes(marker) && complete().some((e) => e.data.includes(marker))) done();
    });
    res.on('end', done);
    res.resume();
  });
}

async function overflowCount(url: string, stream: string): Promise<number> {
  const text = await (await fetch(`${url}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith(`switchboard_stream_overflows_total{stream="${stream}"}`));
  return line === undefined ? 0 : Number(line.split(' ').pop());
}

describe('backpressure on SSE streams', () => {
  it('closes a legacy SSE stream whose client stops reading while POSTs keep coming, counts it, and keeps serving others', async () => {
    gw = await startTestGateway({ servers: { everything: everythingStdio() } });
    const { res, first } = await openStream(`${gw.url}/sse`, {});
    expect(res.statusCode).toBe(200);
    const endpoint = /data: (\S+)/.exec(first)?.[1];
    expect(endpoint).toMatch(/^\/message\?sessionId=/);
    const sessionId = endpoint!.slice(endpoint!.indexOf('=') + 1);
    stopReading(res);

    // The attack: tools/list (answered from the view, ~9 KB each) 32 at a time, never read.
    const body = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'tools/list' });
    const MAX_REQUESTS = 3000; // ~28 MB of answers: far past the 4 MiB budget plus kernel buffers
    let sent = 0;
    let accepted = 0;
    let refusedStatus: number | undefined;
    let refusedCode: string | undefined;
    let servedMidway = false;
    while (sent < MAX_REQUESTS && refusedStatus === undefined) {
      const batch = await Promise.all(
        Array.from({ length: 32 }, () =>
          fetch(`${gw!.url}${endpoint}`, { method: 'POST', headers: MCP_HEADERS, body }).then(async (r) => ({
            status: r.status,
            text: await r.text(),
          })),
        ),
      );
      sent += batch.length;
      for (const r of batch) {
        if (r.status === 202) accepted++;
        else if (refusedStatus === undefined) {
          refusedStatus = r.status;
          refusedCode = (JSON.parse(r.text) as { error: { data?: { code?: string } } }).error.data?.code;
        }
      }
      if (!servedMidway && sent >= 256) {
        // Another client is served while the slow reader's answers pile up.
        const { client } = await connectClient(`${gw.url}/mcp`);
        const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'midway' } });
        expect(echo.content).toEqual([{ type: 'text', text: 'Echo: midway' }]);
        await client.close();
        servedMidway = true;
      }
    }

    // The stream was closed over its budget: the session is gone, its message endpoint 404s.
    expect(refusedStatus).toBe(404);
    expect(refusedCode).toBe('SWB_ERR_SESSION_NOT_FOUND');
    expect(gw.gateway.getSession(sessionId)).toBeUndefined();
    expect(accepted).toBeGreaterThan(0);
    expect(await overflowCount(gw.url, 'legacy-sse')).toBe(1);

    // Others are still served afterwards.
    const { client } = await connectClient(`${gw.url}/mcp`);
    const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'after' } });
    expect(echo.content).toEqual([{ type: 'text', text: 'Echo: after' }]);
    await client.close();
  }, 60_000);

  it('closes a Streamable HTTP GET stream that is not read once over budget, and the client resumes with Last-Event-ID', async () => {
    gw = await startTestGateway({ servers: { everything: everythingStdio() } });
    const mcp = `${gw.url}/mcp`;
    const sessionId = await initSession(mcp, {}, '2025-11-25');
    const headers = { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' };
    const { res, first } = await openStream(mcp, headers);
    expect(res.statusCode).toBe(200);
    const priming = parseSse(first)[0]?.id; // 2025-11-25: a priming event carries the resume point
    expect(priming).toMatch(/^0\.\d+\.[0-9a-f]{8}$/);
    stopReading(res);

    // Unrelated messages (as an upstream's log notifications would be) pile up on the GET stream.
    const session = gw.gateway.getSession(sessionId)!;
    const payload = 'x'.repeat(64 * 1024);
    const MAX_EVENTS = 400; // ~26 MB: far past the 4 MiB budget plus kernel buffers
    let pushed = 0;
    while (pushed < MAX_EVENTS && session.hasStandaloneStream) {
      session.sendUnrelated({
        jsonrpc: '2.0',
        method: 'notifications/message',
        params: { level: 'info', data: `${pushed}:${payload}` },
      });
      pushed++;
      // Let the socket hand what it can to the kernel, as a real upstream's pace would.
      if (pushed % 8 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(session.hasStandaloneStream).toBe(false);
    expect(pushed).toBeLessThan(MAX_EVENTS);
    await waitFor(async () => (await overflowCount(gw!.url, 'streamable-get')) === 1, 5000, 'overflow metric');

    // Nothing is lost for a client that resumes: every event since the priming id is replayed,
    // and the stream is live again.
    const resumed = await openStream(mcp, { ...headers, 'last-event-id': priming! });
    expect(resumed.res.statusCode).toBe(200);
    resumed.res.unshift(resumed.first);
    const replayed = readEventsUntil(resumed.res, '"data":"live"');
    await waitFor(() => session.hasStandaloneStream, 5000, 'stream re-attached');
    session.sendUnrelated({ jsonrpc: '2.0', method: 'notifications/message', params: { level: 'info', data: 'live' } });
    // Only this test's notifications: the upstream may send its own (log messages, pings) meanwhile.
    const data = (await replayed)
      .map((e) => JSON.parse(e.data) as { method?: string; params?: { data?: unknown } })
      .filter((m) => m.method === 'notifications/message' && typeof m.params?.data === 'string')
      .map((m) => m.params!.data as string)
      .filter((d) => d === 'live' || /^\d+:x/.test(d));
    expect(data).toHaveLength(pushed + 1);
    expect(data.slice(0, pushed).map((d) => Number(d.slice(0, d.indexOf(':'))))).toEqual(
      Array.from({ length: pushed }, (_, i) => i),
    );
    expect(data[pushed]).toBe('live');
  }, 60_000);

  it('closes a stream past http.maxStreamEvents even while its queued bytes are within http.maxStreamBytes', async () => {
    gw = await startTestGateway({
      servers: { everything: everythingStdio() },
      http: { maxStreamBytes: '1gb', maxStreamEvents: 64 },
    });
    const mcp = `${gw.url}/mcp`;
    const sessionId = await initSession(mcp, {}, '2025-11-25'); // its GET stream starts with a priming event
    const { res } = await openStream(mcp, { 'mcp-session-id': sessionId, 'mcp-protocol-version': '2025-11-25' });
    stopReading(res);
    const session = gw.gateway.getSession(sessionId)!;
    const MAX_EVENTS = 10_000; // ~40 MB of 4 KB events: far past kernel buffers plus 64 events
    let pushed = 0;
    while (pushed < MAX_EVENTS && session.hasStandaloneStream) {
      session.sendUnrelated({
        jsonrpc: '2.0',
        method: 'notifications/message',
        params: { level: 'info', data: 'y'.repeat(4096) },
      });
      pushed++;
      if (pushed % 64 === 0) await new Promise((r) => setImmediate(r));
    }
    expect(session.hasStandaloneStream).toBe(false);
    expect(pushed).toBeLessThan(MAX_EVENTS);
    await waitFor(async () => (await overflowCount(gw!.url, 'streamable-get')) === 1, 5000, 'overflow metric');
  }, 60_000);
});
