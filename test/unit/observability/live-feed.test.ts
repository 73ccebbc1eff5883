import { describe, expect, it } from 'vitest';
import { ERROR_CODES } from '../../../src/errors.js';
import { errorCodeOfRpc, LiveFeed, type LiveRequest } from '../../../src/observability/live-feed.js';
import { RecentLogs } from '../../../src/observability/recent-logs.js';

function publish(feed: LiveFeed, n: number): void {
  const r = feed.next();
  r.time = n;
  r.reqId = `r${n}`;
  r.endpoint = 'mcp';
  r.method = 'tools/call';
  r.server = 'echo';
  r.tool = 'echo';
  r.principal = 'token:a';
  r.outcome = 'ok';
  r.status = 200;
  r.code = null;
  r.durationMs = 1;
  feed.published();
}

describe('LiveFeed', () => {
  it('keeps the last requests, oldest first, as copies that later requests do not change', () => {
    const feed = new LiveFeed({ size: 3 });
    expect(feed.recentRequests()).toEqual([]);
    for (let i = 1; i <= 5; i++) publish(feed, i);
    const kept = feed.recentRequests();
    expect(kept.map((r) => r.reqId)).toEqual(['r3', 'r4', 'r5']);
    publish(feed, 6);
    expect(kept.map((r) => r.reqId)).toEqual(['r3', 'r4', 'r5']);
  });

  it('tells listeners of each request with its serialised event, and of log lines while subscribed', () => {
    const logs = new RecentLogs();
    const feed = new LiveFeed({ logs });
    const seen: Array<{ record: LiveRequest; json: string }> = [];
    const lines: string[] = [];
    const stop = feed.subscribe({
      request: (record, json) => seen.push({ record: { ...record }, json }),
      log: (line) => lines.push(line.json),
      end: () => undefined,
    });
    publish(feed, Date.UTC(2026, 0, 1));
    logs.write(`${JSON.stringify({ level: 40, time: 0, msg: 'w' })}\n`);
    stop();
    publish(feed, 2);
    logs.write(`${JSON.stringify({ level: 40, time: 0, msg: 'after' })}\n`);
    expect(seen).toHaveLength(1);
    expect(JSON.parse(seen[0]!.json)).toMatchObject({
      time: '2026-01-01T00:00:00.000Z',
      reqId: `r${Date.UTC(2026, 0, 1)}`,
    });
    expect(lines.map((l) => (JSON.parse(l) as { msg: string }).msg)).toEqual(['w']);
    expect(feed.listeners).toBe(0);
  });

  it('ends every listener on close', () => {
    const feed = new LiveFeed();
    let ended = 0;
    for (let i = 0; i < 2; i++) feed.subscribe({ request: () => undefined, log: () => undefined, end: () => ended++ });
    feed.close();
    expect(ended).toBe(2);
  });

  it('names the gateway error code of a JSON-RPC code only when one code has it', () => {
    expect(errorCodeOfRpc(ERROR_CODES.SWB_ERR_RATE_LIMITED.jsonRpcCode)).toBe('SWB_ERR_RATE_LIMITED');
    // -32600 (Invalid Request) is shared by many codes.
    expect(errorCodeOfRpc(-32600)).toBeUndefined();
  });
});
