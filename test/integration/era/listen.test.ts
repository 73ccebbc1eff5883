/**
 * `subscriptions/listen` for MCP 2026-07-28 clients: the acknowledgement first, only the
 * notification types asked for, each with the subscription id, URIs that cannot be subscribed
 * left out, the session ended when the client closes the stream, and a graceful end when the
 * gateway ends it; plus what the official SDK v2 client makes of it.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { buildConfig, everythingStdio, startTestGateway, waitFor } from '../../helpers/gateway.js';

const V = '2026-07-28';
const META = {
  'io.modelcontextprotocol/protocolVersion': V,
  'io.modelcontextprotocol/clientInfo': { name: 'raw', version: '1' },
  'io.modelcontextprotocol/clientCapabilities': {},
};

/** An open listen stream, read event by event. */
interface Listen {
  status: number;
  contentType: string | null;
  next(): Promise<Record<string, unknown>>;
  close(): void;
}

/** POSTs a `subscriptions/listen` request. */
function postListen(url: string, id: number | string, notifications: unknown, signal?: AbortSignal): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    ...(signal === undefined ? {} : { signal }),
    headers: {
      'content-type': 'application/json',
      accept: 'application/json, text/event-stream',
      'mcp-protocol-version': V,
      'mcp-method': 'subscriptions/listen',
    },
    body: JSON.stringify({
      jsonrpc: '2.0',
      id,
      method: 'subscriptions/listen',
      params: { notifications, _meta: META },
    }),
  });
}

async function listen(url: string, id: number | string, notifications: unknown): Promise<Listen> {
  const abort = new AbortController();
  const res = await postListen(url, id, notifications, abort.signal);
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  let buffer = '';
  const queue: Array<Record<string, unknown>> = [];
  async function next(): Promise<Record<string, unknown>> {
    for (;;) {
      const event = queue.shift();
      if (event) return event;
      const { value, done } = await reader.read();
      if (done) throw new Error('stream ended');
      buffer += decoder.decode(value, { stream: true });
      let end: number;
      while ((end = buffer.indexOf('\n\n')) >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        const data = block
          .split('\n')
          .filter((l) => l.startsWith('data: '))
          .map((l) => l.slice(6))
          .join('\n');
        if (data !== '') queue.push(JSON.parse(data) as Record<string, unknown>);
      }
    }
  }
  return {
    status: res.status,
    contentType: res.headers.get('content-type'),
    next,
    close: () => abort.abort(),
  };
}

const subscriptionId = (m: Record<string, unknown>) =>
  ((m.params ?? m.result) as { _meta?: Record<string, unknown> })._meta?.['io.modelcontextprotocol/subscriptionId'];

describe('subscriptions/listen (MCP 2026-07-28)', () => {
  let gw: RunningGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  it('acknowledges first, then delivers only the list changes asked for, each with the subscription id', async () => {
    gw = await startTestGateway({ servers: { everything: everythingStdio() } });
    // The upstream's catalog is in (no list change of the start-up can reach the streams).
    await waitFor(() => (gw!.gateway.upstreams.get('everything')?.catalog.tools.length ?? 0) > 0);
    await new Promise((r) => setTimeout(r, 200));
    const tools = await listen(`${gw.url}/mcp`, 'sub-1', {
      toolsListChanged: true,
      resourceSubscriptions: ['demo://resource/static/document/architecture.md', 'switchboard://ghost/x'],
    });
    const prompts = await listen(`${gw.url}/mcp`, 7, { promptsListChanged: true });
    expect([tools.status, tools.contentType]).toEqual([200, 'text/event-stream']);

    const ack = await tools.next();
    expect(ack.method).toBe('notifications/subscriptions/acknowledged');
    expect(subscriptionId(ack)).toBe('sub-1');
    // The URI the upstream cannot subscribe to is left out.
    expect((ack.params as { notifications: unknown }).notifications).toEqual({
      toolsListChanged: true,
      resourceSubscriptions: ['demo://resource/static/document/architecture.md'],
    });
    const promptsAck = await prompts.next();
    expect((promptsAck.params as { notifications: unknown }).notifications).toEqual({ promptsListChanged: true });

    // A new server changes the aggregate's tools (and prompts).
    await gw.gateway.reload(buildConfig({ servers: { everything: everythingStdio(), more: everythingStdio() } }));
    const changed = await tools.next();
    expect(changed.method).toBe('notifications/tools/list_changed');
    expect(subscriptionId(changed)).toBe('sub-1');
    const promptsChanged = await prompts.next();
    expect(promptsChanged.method).toBe('notifications/prompts/list_changed');
    expect(subscriptionId(promptsChanged)).toBe(7);

    // Two listen sessions of the anonymous principal; closing a stream ends its session.
    const listening = () =>
      [...gw!.gateway.sessionsOf('anonymous')].filter((s) => s.transportKind === 'stateless').length;
    expect(listening()).toBe(2);
    tools.close();
    await waitFor(() => listening() === 1);
    prompts.close();
    await waitFor(() => listening() === 0);
  });

  it('answers the listen request with a complete result when the gateway ends the subscription', async () => {
    let now = 1_000_000;
    gw = await startTestGateway({ servers: { everything: everythingStdio() } }, { now: () => now });
    const stream = await listen(`${gw.url}/servers/everything/mcp`, 3, { toolsListChanged: true });
    expect((await stream.next()).method).toBe('notifications/subscriptions/acknowledged');
    now += 2 * 3_600_000; // past sessions.idleTimeout
    expect(gw.gateway.sweep().sessions).toBe(1);
    let end = await stream.next();
    while (end.id === undefined) end = await stream.next(); // a list change of the start-up may come first
    expect(end).toMatchObject({ id: 3, result: { resultType: 'complete' } });
    expect(subscriptionId(end)).toBe(3);
  });

  it('refuses a malformed filter with -32602 before any stream', async () => {
    gw = await startTestGateway({ servers: { everything: everythingStdio() } });
    for (const notifications of [[], { toolsListChanged: 'yes' }, { resourceSubscriptions: 'x' }]) {
      const res = await postListen(`${gw.url}/mcp`, 1, notifications);
      expect(res.headers.get('content-type'), JSON.stringify(notifications)).toBe('application/json');
      const body = (await res.json()) as { id: number; error: { code: number } };
      expect([body.id, body.error.code], JSON.stringify(notifications)).toEqual([1, -32602]);
    }
  });
});
