/**
 * Resumption of a portable session's stream on another replica: two gateways with the same
 * session key and one Redis. A client whose GET stream was held by replica A resumes it on
 * replica B with `Last-Event-ID`: B gets the events A stored while the client was away, A lets
 * the stream go, and the session's later notifications raised on A reach the client through B.
 * An owner that does not answer (gone) costs the standalone stream its stored events, never the
 * stream; a request's stream from a gone owner is refused clearly. Without Redis a foreign id is
 * refused at once.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { everythingStdio, startTestGateway } from '../../helpers/gateway.js';
import { initSession, parseSse, post } from '../../helpers/raw.js';
import { REDIS_URL, redisGate, uniqueKeyPrefix } from '../../helpers/redis.js';

const ready = await redisGate('stream handover between replicas');
const ENDPOINT = '/servers/everything/mcp';
const URI = 'demo://resource/static/document/architecture.md';
const VERSION = '2025-11-25';

/** An open SSE GET: what it has received so far, and a way to close it. */
interface OpenStream {
  readonly status: number;
  text(): string;
  close(): Promise<void>;
}

async function openGet(url: string, headers: Record<string, string>): Promise<OpenStream> {
  const ac = new AbortController();
  const res = await fetch(url, {
    headers: { accept: 'text/event-stream', 'mcp-protocol-version': VERSION, ...headers },
    signal: ac.signal,
  });
  let seen = '';
  const reading = (async () => {
    if (res.status !== 200) {
      seen = await res.text();
      return;
    }
    const decoder = new TextDecoder();
    try {
      for await (const chunk of res.body as unknown as AsyncIterable<Uint8Array>) seen += decoder.decode(chunk);
    } catch {
      // aborted
    }
  })();
  return {
    status: res.status,
    text: () => seen,
    close: async () => {
      ac.abort();
      await reading;
    },
  };
}

async function until(what: string, check: () => boolean, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

const count = (text: string, needle: string) => text.split(needle).length - 1;

/** A JSON-RPC answer of a 2026-07-28 call, as far as these tests read it. */
interface RpcAnswer {
  id: number;
  result: {
    resultType: string;
    requestState?: string;
    inputRequests?: Record<string, unknown>;
    content?: unknown;
  };
  error?: { code: number };
}

describe.runIf(ready)('a portable session resumes its stream on another replica (Redis)', () => {
  let a: RunningGateway;
  let b: RunningGateway;

  beforeAll(async () => {
    const config = {
      sessions: {
        keys: [{ id: 'k1', secret: randomBytes(32).toString('base64url') }],
        endedChannel: uniqueKeyPrefix('ended'),
        answersChannel: uniqueKeyPrefix('answers'),
        eventsChannel: uniqueKeyPrefix('events'),
      },
      servers: { everything: everythingStdio() },
    };
    [a, b] = await Promise.all([
      startTestGateway(config, { redisUrl: REDIS_URL }),
      startTestGateway(config, { redisUrl: REDIS_URL }),
    ]);
  }, 60_000);

  afterAll(async () => {
    await Promise.all([a?.close(), b?.close()]);
  });

  const call = async (gw: RunningGateway, sid: string, id: number, method: string, params: unknown) => {
    const res = await post(
      `${gw.url}${ENDPOINT}`,
      { jsonrpc: '2.0', id, method, params },
      { 'mcp-session-id': sid, 'mcp-protocol-version': VERSION },
    );
    const text = await res.text();
    expect(res.status, text).toBe(200);
  };
  const toggle = (gw: RunningGateway, sid: string, id: number) =>
    call(gw, sid, id, 'tools/call', { name: 'toggle-subscriber-updates', arguments: {} });

  it('replays on B what A stored while the client was away, and passes A’s later notifications to B', async () => {
    const sid = await initSession(`${a.url}${ENDPOINT}`, {}, VERSION);
    const headers = { 'mcp-session-id': sid };
    const onA = await openGet(`${a.url}${ENDPOINT}`, headers);
    expect(onA.status).toBe(200);
    await until('the priming event', () => onA.text().includes('id: '));
    const priming = parseSse(onA.text())[0]!.id!;
    // The id names the replica that sent it.
    expect(priming).toMatch(new RegExp(`^0\\.\\d+\\.${a.gateway.streamHandover.replica}$`));
    await onA.close();

    // While the client is away, A stores the session's notifications: the subscription's first update.
    await call(a, sid, 2, 'resources/subscribe', { uri: URI });
    await toggle(a, sid, 3);
    await new Promise((r) => setTimeout(r, 500));
    await toggle(a, sid, 4); // updates off

    const onB = await openGet(`${b.url}${ENDPOINT}`, { ...headers, 'last-event-id': priming });
    try {
      expect(onB.status).toBe(200);
      await until('the stored update replayed on B', () => onB.text().includes('notifications/resources/updated'));
      const replayed = parseSse(onB.text()).find((e) => e.data.includes('resources/updated'))!;
      // Replayed as B's own event, so the client's next resumption names B.
      expect(replayed.id).toMatch(new RegExp(`\\.${b.gateway.streamHandover.replica}$`));
      const before = count(onB.text(), 'notifications/resources/updated');

      // A no longer holds the stream: an update raised on A's upstream connection reaches B.
      await toggle(a, sid, 5);
      await until(
        'an update raised on A after the handover',
        () => count(onB.text(), 'notifications/resources/updated') > before,
      );
      await toggle(a, sid, 6);
    } finally {
      await onB.close();
    }
  });

  it('replays on B the stored part of a request stream interrupted on A, and the rest once A has it', async () => {
    const sid = await initSession(`${a.url}${ENDPOINT}`, {}, VERSION);
    const headers = { 'mcp-session-id': sid, 'mcp-protocol-version': VERSION };
    const ac = new AbortController();
    const res = await fetch(`${a.url}${ENDPOINT}`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', accept: 'application/json, text/event-stream', ...headers },
      body: JSON.stringify({
        jsonrpc: '2.0',
        id: 2,
        method: 'tools/call',
        params: {
          name: 'trigger-long-running-operation',
          arguments: { duration: 1.6, steps: 4 },
          _meta: { progressToken: 'p' },
        },
      }),
      signal: ac.signal,
    });
    expect(res.headers.get('content-type')).toContain('text/event-stream');
    const reader = res.body!.getReader();
    let seen = '';
    while (!parseSse(seen).some((e) => e.data.includes('notifications/progress'))) {
      const { value, done } = await reader.read();
      if (done) break;
      seen += new TextDecoder().decode(value);
    }
    ac.abort();
    const first = parseSse(seen).find((e) => e.data.includes('notifications/progress'))!;
    expect(first.id).toMatch(new RegExp(`\\.${a.gateway.streamHandover.replica}$`));
    const resume = async (lastEventId: string) => {
      const r = await fetch(`${b.url}${ENDPOINT}`, {
        headers: { accept: 'text/event-stream', ...headers, 'last-event-id': lastEventId },
      });
      expect(r.status).toBe(200);
      return parseSse(await r.text()); // ends: the rest is on A
    };
    // While the call runs on A, each resumption through B ends with what A has stored so far
    // (and a `retry` hint); once A has the answer, it comes through B.
    let last = first.id!;
    let all = '';
    let rounds = 0;
    const deadline = Date.now() + 5000;
    while (!all.includes('Long running operation completed') && Date.now() < deadline) {
      rounds++;
      const more = (await resume(last)).filter((e) => e.data !== '');
      // The owner's ids, so that the next resumption asks the owner again.
      for (const e of more) expect(e.id).toMatch(new RegExp(`\\.${a.gateway.streamHandover.replica}$`));
      if (more.length > 0) last = more[more.length - 1]!.id!;
      all += more.map((e) => e.data).join('\n');
      if (!all.includes('completed')) await new Promise((r) => setTimeout(r, 300));
    }
    expect(all).toContain('Long running operation completed');
    expect(rounds).toBeGreaterThan(1);
  });

  it('passes the retry of a 2026-07-28 call parked on A to A when it lands on B, and answers it on B', async () => {
    const modern = (method: string, name: string) => ({
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': '2026-07-28',
      'mcp-method': method,
      'mcp-name': name,
    });
    const meta = {
      'io.modelcontextprotocol/protocolVersion': '2026-07-28',
      'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
      'io.modelcontextprotocol/clientCapabilities': { sampling: {} },
    };
    const params = { name: 'trigger-sampling-request', arguments: { prompt: 'p', maxTokens: 5 }, _meta: meta };
    const call = async (gw: RunningGateway, id: number, extra: Record<string, unknown> = {}) => {
      const res = await fetch(`${gw.url}${ENDPOINT}`, {
        method: 'POST',
        headers: modern('tools/call', 'trigger-sampling-request'),
        body: JSON.stringify({ jsonrpc: '2.0', id, method: 'tools/call', params: { ...params, ...extra } }),
      });
      return { status: res.status, body: (await res.json()) as RpcAnswer };
    };
    const first = await call(a, 1);
    expect(first.body.result.resultType).toBe('input_required');
    const state = first.body.result.requestState!;
    // The state names the replica that parked the call.
    expect(state.endsWith(`.${a.gateway.streamHandover.replica}`)).toBe(true);
    const key = Object.keys(first.body.result.inputRequests!)[0]!;
    const answer = { [key]: { model: 'm', role: 'assistant', content: { type: 'text', text: 'answered-through-B' } } };

    const done = await call(b, 2, { requestState: state, inputResponses: answer });
    expect(done.status).toBe(200);
    expect(done.body.id).toBe(2);
    expect(done.body.result.resultType).toBe('complete');
    expect(JSON.stringify(done.body.result.content)).toContain('answered-through-B');
    // Spent on A: a replay through either replica is refused.
    for (const gw of [a, b]) {
      const replay = await call(gw, 3, { requestState: state, inputResponses: answer });
      expect([replay.status, replay.body.error?.code]).toEqual([400, -32602]);
    }
  });

  it('opens the standalone stream without the events of an owner that does not answer, and refuses a request stream of one', async () => {
    const sid = await initSession(`${b.url}${ENDPOINT}`, {}, VERSION);
    const headers = { 'mcp-session-id': sid };
    const started = Date.now();
    const standalone = await openGet(`${b.url}${ENDPOINT}`, { ...headers, 'last-event-id': '0.7.deadbeef' });
    try {
      expect(standalone.status).toBe(200);
      expect(Date.now() - started).toBeGreaterThanOrEqual(900);
    } finally {
      await standalone.close();
    }
    const request = await fetch(`${b.url}${ENDPOINT}`, {
      headers: {
        accept: 'text/event-stream',
        'mcp-protocol-version': VERSION,
        ...headers,
        'last-event-id': '3.7.deadbeef',
      },
    });
    const body = (await request.json()) as { error: { data?: { code?: string } } };
    expect(request.status).toBe(400);
    expect(body.error.data?.code).toBe('SWB_ERR_SESSION_EVENT_EXPIRED');
  });
});

describe('a foreign Last-Event-ID without a shared channel', () => {
  it('is refused at once with SWB_ERR_SESSION_EVENT_EXPIRED', async () => {
    const gw = await startTestGateway({ servers: { everything: everythingStdio() } });
    try {
      const sid = await initSession(`${gw.url}${ENDPOINT}`, {}, VERSION);
      const res = await fetch(`${gw.url}${ENDPOINT}`, {
        headers: {
          accept: 'text/event-stream',
          'mcp-protocol-version': VERSION,
          'mcp-session-id': sid,
          'last-event-id': '0.1.deadbeef',
        },
      });
      const body = (await res.json()) as { error: { message: string; data?: { code?: string } } };
      expect(res.status).toBe(400);
      expect(body.error.data?.code).toBe('SWB_ERR_SESSION_EVENT_EXPIRED');
      expect(body.error.message).toContain('another replica');
    } finally {
      await gw.close();
    }
  });
});
