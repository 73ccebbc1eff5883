/**
 * Client-session fairness and lifecycle on a real gateway with API-token principals: the
 * per-principal session limit (429 + Retry-After) on the Streamable HTTP and legacy SSE
 * endpoints, the global limit's Retry-After, idle timeout and maximum lifetime for sessions held
 * open by a stream (injected clock, no sleeps), the admin session endpoints, and the binding of a
 * session to its principal and endpoint.
 */
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { buildConfig, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { post } from '../../helpers/raw.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const odd = { command: process.execPath, args: [ODD] };

let gw: RunningGateway | undefined;
const aborts: AbortController[] = [];
afterEach(async () => {
  for (const a of aborts.splice(0)) a.abort();
  await gw?.close();
  gw = undefined;
});

const auth = (t: string) => ({ authorization: `Bearer ${t}` });

async function token(subject: string, permissions = ['servers.use', 'tools.execute']): Promise<string> {
  return (await gw!.tokens.create({ name: subject, subject, permissions, servers: [], tools: [] })).token;
}

/** POSTs `initialize`; returns the response with its body read. */
async function initialize(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ status: number; sid: string | null; retryAfter: string | null; code: string | undefined }> {
  const res = await post(
    `${gw!.url}${path}`,
    {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'fair', version: '1' } },
    },
    headers,
  );
  const body = (await res.json()) as { error?: { data?: { code?: string } } };
  return {
    status: res.status,
    sid: res.headers.get('mcp-session-id'),
    retryAfter: res.headers.get('retry-after'),
    code: body.error?.data?.code,
  };
}

async function session(path: string, headers: Record<string, string> = {}): Promise<string> {
  const r = await initialize(path, headers);
  expect(r.status).toBe(200);
  const n = await post(
    `${gw!.url}${path}`,
    { jsonrpc: '2.0', method: 'notifications/initialized' },
    { ...headers, 'mcp-session-id': r.sid! },
  );
  await n.text();
  return r.sid!;
}

async function ping(path: string, sid: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await post(
    `${gw!.url}${path}`,
    { jsonrpc: '2.0', id: 9, method: 'ping' },
    { ...headers, 'mcp-session-id': sid },
  );
  await res.text();
  return res.status;
}

/** Opens the session's GET stream (Streamable HTTP); the caller reads or abandons it. */
async function openGet(path: string, sid: string, headers: Record<string, string> = {}): Promise<Response> {
  const ac = new AbortController();
  aborts.push(ac);
  const res = await fetch(`${gw!.url}${path}`, {
    headers: { ...headers, accept: 'text/event-stream', 'mcp-session-id': sid },
    signal: ac.signal,
  });
  expect(res.status).toBe(200);
  return res;
}

/** Opens a legacy SSE stream and returns it with the session id from its `endpoint` event. */
async function openLegacy(
  path: string,
  headers: Record<string, string> = {},
): Promise<{ res: Response; sid: string; reader: ReadableStreamDefaultReader<Uint8Array> }> {
  const ac = new AbortController();
  aborts.push(ac);
  const res = await fetch(`${gw!.url}${path}`, {
    headers: { ...headers, accept: 'text/event-stream' },
    signal: ac.signal,
  });
  expect(res.status).toBe(200);
  const reader = res.body!.getReader();
  let buf = '';
  while (!buf.includes('\n\n')) {
    const { value, done } = await reader.read();
    if (done) break;
    buf += new TextDecoder().decode(value);
  }
  const sid = /sessionId=([^\s]+)/.exec(buf)?.[1];
  if (!sid) throw new Error(`no endpoint event in ${JSON.stringify(buf)}`);
  return { res, sid, reader };
}

/** True when the stream ends (server closed it) within `ms`; false when it is still open. */
async function ends(reader: ReadableStreamDefaultReader<Uint8Array>, ms = 3000): Promise<boolean> {
  const deadline = Date.now() + ms;
  for (;;) {
    const left = deadline - Date.now();
    if (left <= 0) return false;
    const r = await Promise.race([
      reader.read().catch(() => ({ done: true, value: undefined })),
      new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), left)),
    ]);
    if (r === 'timeout') return false;
    if (r.done) return true;
  }
}

async function legacyPost(messagePath: string, sid: string, headers: Record<string, string> = {}): Promise<number> {
  const res = await post(
    `${gw!.url}${messagePath}?sessionId=${sid}`,
    { jsonrpc: '2.0', id: 5, method: 'ping' },
    headers,
  );
  await res.text();
  return res.status;
}

describe('per-principal session limit', () => {
  it('has a default of 100 sessions per principal that only an explicit 0 or null turns off', () => {
    expect(buildConfig({}).sessions.maxPerPrincipal).toBe(100);
    expect(buildConfig({ sessions: { maxPerPrincipal: 0 } }).sessions.maxPerPrincipal).toBe(0);
    expect(buildConfig({ sessions: { maxPerPrincipal: null } }).sessions.maxPerPrincipal).toBeNull();
  });

  it('refuses one principal past the default limit with 429 while another still gets a session', async () => {
    gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: {} });
    const mallory = auth(await token('mallory'));
    for (let i = 0; i < 100; i++) expect((await initialize('/mcp', mallory)).status).toBe(200);
    const over = await initialize('/mcp', mallory);
    expect(over.status).toBe(429);
    expect(over.code).toBe('SWB_ERR_SESSION_PRINCIPAL_LIMIT');
    expect((await initialize('/mcp', auth(await token('alice')))).status).toBe(200);
  });

  it('caps one principal at sessions.maxPerPrincipal on /mcp and the legacy /sse, with Retry-After, and serves others', async () => {
    let now = Date.now();
    gw = await startTestGateway(
      { auth: { mode: 'tokens' }, sessions: { maxPerPrincipal: 5, idleTimeout: '10m' }, servers: {} },
      { now: () => now },
    );
    const mallory = auth(await token('mallory'));
    const results = [];
    for (let i = 0; i < 10; i++) {
      results.push(await initialize('/mcp', mallory));
      now += 1000;
    }
    expect(results.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429, 429, 429]);
    for (const r of results.slice(5)) {
      expect(r.code).toBe('SWB_ERR_SESSION_PRINCIPAL_LIMIT');
      expect(r.sid).toBeNull();
    }
    // The first of mallory's sessions expires 10m after it was created, 10 s ago.
    expect(results[9]!.retryAfter).toBe('591');

    const legacy = await fetch(`${gw.url}/sse`, { headers: { ...mallory, accept: 'text/event-stream' } });
    expect(legacy.status).toBe(429);
    expect(legacy.headers.get('retry-after')).toBe('590');
    expect(((await legacy.json()) as { error: { data: { code: string } } }).error.data.code).toBe(
      'SWB_ERR_SESSION_PRINCIPAL_LIMIT',
    );

    const alice = auth(await token('alice'));
    expect((await initialize('/mcp', alice)).status).toBe(200);
    await openLegacy('/sse', alice);

    // Closing one of its sessions frees a slot at once.
    const res = await fetch(`${gw.url}/mcp`, {
      method: 'DELETE',
      headers: { ...mallory, 'mcp-session-id': results[0]!.sid! },
    });
    expect(res.status).toBe(200);
    expect((await initialize('/mcp', mallory)).status).toBe(200);
  });

  it('frees the slots of expired sessions at the limit and keeps counting the sessions opened after', async () => {
    let now = Date.now();
    gw = await startTestGateway(
      { auth: { mode: 'tokens' }, sessions: { maxPerPrincipal: 2, idleTimeout: '10m' }, servers: {} },
      { now: () => now },
    );
    const mallory = auth(await token('mallory'));
    expect((await initialize('/mcp', mallory)).status).toBe(200);
    expect((await initialize('/mcp', mallory)).status).toBe(200);
    now += 10 * 60_000; // both idle past the timeout; no sweep has run
    const statuses = [];
    for (let i = 0; i < 3; i++) statuses.push((await initialize('/mcp', mallory)).status);
    expect(statuses).toEqual([200, 200, 429]);
  });

  it('answers the global sessions.maxSessions limit with 503 and a Retry-After of the first expiry', async () => {
    let now = Date.now();
    gw = await startTestGateway(
      { sessions: { maxSessions: 2, maxPerPrincipal: 0, idleTimeout: '10m' }, servers: {} },
      { now: () => now },
    );
    expect((await initialize('/mcp')).status).toBe(200);
    now += 60_000;
    expect((await initialize('/mcp')).status).toBe(200);
    now += 60_000;
    const full = await initialize('/mcp');
    expect(full.status).toBe(503);
    expect(full.code).toBe('SWB_ERR_SESSION_LIMIT');
    expect(full.retryAfter).toBe('480');
    now += 480_000;
    expect((await initialize('/mcp')).status).toBe(200);
  });
});

describe('expiry of sessions held by an open stream', () => {
  it('closes a session whose GET stream is open once it is idle past sessions.idleTimeout; its id then gets 404', async () => {
    let now = Date.now();
    gw = await startTestGateway({ sessions: { idleTimeout: '10m' }, servers: { odd } }, { now: () => now });
    const sid = await session('/mcp');
    const stream = await openGet('/mcp', sid);
    const reader = stream.body!.getReader();
    now += 9 * 60_000;
    expect(gw.gateway.sweep().sessions).toBe(0);
    now += 60_000;
    expect(gw.gateway.sweep().sessions).toBe(1);
    expect(await ends(reader)).toBe(true);
    expect(await ping('/mcp', sid)).toBe(404);
    expect(gw.gateway.sessions.size).toBe(0);
  });

  it('counts opening the GET stream as activity', async () => {
    let now = Date.now();
    gw = await startTestGateway({ sessions: { idleTimeout: '10m' }, servers: {} }, { now: () => now });
    const sid = await session('/mcp');
    now += 9 * 60_000;
    await openGet('/mcp', sid);
    aborts.pop()!.abort(); // the stream is gone again: only the GET itself counts
    await waitFor(() => gw!.gateway.getSession(sid)?.hasStandaloneStream === false, 3000, 'stream closed');
    now += 9 * 60_000;
    expect(gw.gateway.sweep().sessions).toBe(0);
    expect(await ping('/mcp', sid)).toBe(200);
  });

  it('closes a busy session with an open GET stream at sessions.maxLifetime', async () => {
    let now = Date.now();
    gw = await startTestGateway(
      { sessions: { idleTimeout: '10m', maxLifetime: '1h' }, servers: {} },
      { now: () => now },
    );
    const sid = await session('/mcp');
    const reader = (await openGet('/mcp', sid)).body!.getReader();
    for (let i = 0; i < 6; i++) {
      now += 9 * 60_000;
      expect(await ping('/mcp', sid)).toBe(200);
    }
    expect(gw.gateway.sweep().sessions).toBe(0); // 54 min old, active
    now += 6 * 60_000;
    expect(gw.gateway.sweep().sessions).toBe(1);
    expect(await ends(reader)).toBe(true);
    expect(await ping('/mcp', sid)).toBe(404);
  });

  it('closes an idle legacy SSE session and its stream after sessions.idleTimeout', async () => {
    let now = Date.now();
    gw = await startTestGateway({ sessions: { idleTimeout: '10m' }, servers: {} }, { now: () => now });
    const { sid, reader } = await openLegacy('/sse');
    now += 10 * 60_000;
    expect(gw.gateway.sweep().sessions).toBe(1);
    expect(await ends(reader)).toBe(true);
    expect(await legacyPost('/message', sid)).toBe(404);
  });
});

describe('admin session endpoints', () => {
  it('lists sessions by handle (never their ids) and closes one or all of a principal; others get 403', async () => {
    gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: { a: odd } });
    const admin = auth(await token('root', ['admin.*']));
    const alice = auth(await token('alice', ['servers.use', 'tools.execute', 'tokens.manage', 'servers.manage']));
    const s1 = await session('/mcp', alice);
    const s2 = await session('/servers/a/mcp', alice);
    const { sid: s3 } = await openLegacy('/sse', alice);
    await openGet('/mcp', s1, alice);

    // Non-admins: 403 for every method; no credential: 401.
    for (const method of ['GET', 'DELETE']) {
      const r = await fetch(`${gw.url}/api/v1/sessions?principal=token:alice`, { method, headers: alice });
      expect(r.status).toBe(403);
      expect(((await r.json()) as { error: { code: string } }).error.code).toBe('SWB_ERR_AUTH_FORBIDDEN');
    }
    expect((await fetch(`${gw.url}/api/v1/sessions`)).status).toBe(401);

    const res = await fetch(`${gw.url}/api/v1/sessions?principal=token:alice`, { headers: admin });
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const sid of [s1, s2, s3]) expect(text).not.toContain(sid);
    const body = JSON.parse(text) as {
      total: number;
      sessions: Array<{
        handle: string;
        principal: string;
        endpoint: string;
        transport: string;
        standaloneStream: boolean;
        createdAt: string;
        lastActivityAt: string;
        expiresAt: string;
        client: { name: string } | null;
      }>;
    };
    expect(body.total).toBe(3);
    expect(body.sessions.map((s) => [s.endpoint, s.transport, s.standaloneStream])).toEqual([
      ['/mcp', 'streamable-http', true],
      ['/servers/a/mcp', 'streamable-http', false],
      ['/sse', 'sse', true],
    ]);
    for (const s of body.sessions) {
      expect(s.principal).toBe('token:alice');
      expect(s.handle).toMatch(/^[0-9a-f]{16}$/);
      expect(Date.parse(s.expiresAt)).toBeGreaterThan(Date.parse(s.createdAt));
    }
    expect(body.sessions[0]!.client?.name).toBe('fair');

    const del = await fetch(`${gw.url}/api/v1/sessions/${body.sessions[0]!.handle}`, {
      method: 'DELETE',
      headers: admin,
    });
    expect(del.status).toBe(200);
    expect(await ping('/mcp', s1, alice)).toBe(404);
    expect(await ping('/servers/a/mcp', s2, alice)).toBe(200);
    const again = await fetch(`${gw.url}/api/v1/sessions/${body.sessions[0]!.handle}`, {
      method: 'DELETE',
      headers: admin,
    });
    expect(again.status).toBe(404);
    expect(((await again.json()) as { error: { code: string } }).error.code).toBe('SWB_ERR_SESSION_NOT_FOUND');

    const all = await fetch(`${gw.url}/api/v1/sessions?principal=token:alice`, { method: 'DELETE', headers: admin });
    expect(await all.json()).toEqual({ principal: 'token:alice', closed: 2 });
    expect(await ping('/servers/a/mcp', s2, alice)).toBe(404);
    expect(await legacyPost('/message', s3, alice)).toBe(404);
    const empty = (await (await fetch(`${gw.url}/api/v1/sessions`, { headers: admin })).json()) as { total: number };
    expect(empty.total).toBe(0);
  });
});

describe('session binding', () => {
  it("answers 404 when a second principal POSTs to someone else's legacy /message?sessionId", async () => {
    gw = await startTestGateway({ auth: { mode: 'tokens' }, servers: {} });
    const alice = auth(await token('alice'));
    const bob = auth(await token('bob'));
    const { sid } = await openLegacy('/sse', alice);
    expect(await legacyPost('/message', sid, bob)).toBe(404);
    expect(await legacyPost('/message', sid, alice)).toBe(202);
  });

  it('answers 404 when a session id from /mcp is presented on /servers/{name}/mcp', async () => {
    gw = await startTestGateway({ servers: { a: odd } });
    const sid = await session('/mcp');
    expect(await ping('/servers/a/mcp', sid)).toBe(404);
    const res = await fetch(`${gw.url}/servers/a/mcp`, {
      headers: { accept: 'text/event-stream', 'mcp-session-id': sid },
    });
    expect(res.status).toBe(404);
    await res.text();
    expect(await ping('/mcp', sid)).toBe(200);
  });
});
