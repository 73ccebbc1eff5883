/**
 * Rate limits through the gateway (docs/rate-limits.md): the documented rule shape as written, HTTP 429 with Retry-After, two Switchboard instances sharing one limit in real Redis,
 * and the configured fail mode when Redis stops mid-test (a private redis-server).
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { everythingStdio, startTestGateway } from '../../helpers/gateway.js';
import { initSession, messages, post } from '../../helpers/raw.js';
import {
  deleteKeys,
  REDIS_URL,
  redisGate,
  redisServerGate,
  startRedisServer,
  uniqueKeyPrefix,
} from '../../helpers/redis.js';

/** The rule, as written. */
const RULE = { match: { server: 'echo', tool: 'echo' }, key: 'principal', limit: 5, window: '60s' };

async function echo(gw: RunningGateway, sid: string, id: number, tool = 'echo__echo'): Promise<Response> {
  return post(
    `${gw.url}/mcp`,
    { jsonrpc: '2.0', id, method: 'tools/call', params: { name: tool, arguments: { message: 'x' } } },
    { 'mcp-session-id': sid },
  );
}

const running: RunningGateway[] = [];
afterAll(async () => {
  await Promise.all(running.map((g) => g.close()));
});

describe('rate limits through the gateway (memory store)', () => {
  it('allows 5 echo calls a minute and answers the 6th with 429, Retry-After and data.retryAfterMs', async () => {
    const gw = await startTestGateway({ rateLimits: [RULE], servers: { echo: everythingStdio() } }, { redisUrl: '' });
    running.push(gw);
    const sid = await initSession(`${gw.url}/mcp`);
    for (let i = 1; i <= 5; i++) {
      const r = await echo(gw, sid, i);
      expect(r.status).toBe(200);
      expect((await messages(r))[0]?.result).toEqual({ content: [{ type: 'text', text: 'Echo: x' }] });
    }
    const limited = await echo(gw, sid, 6);
    expect(limited.status).toBe(429);
    const retryAfter = Number(limited.headers.get('retry-after'));
    expect(retryAfter).toBeGreaterThan(0);
    expect(retryAfter).toBeLessThanOrEqual(60);
    const body = (await limited.json()) as { id: number; error: { data: { code: string; retryAfterMs: number } } };
    expect(body.id).toBe(6);
    expect(body.error.data.code).toBe('SWB_ERR_RATE_LIMITED');
    expect(body.error.data.retryAfterMs).toBeGreaterThan(0);
    // Another tool of the same server is not covered by the rule.
    const other = await echo(gw, sid, 7, 'echo__get-sum');
    expect(other.status).toBe(200);
    await other.text();
  });
});

const redisUp = await redisGate('gateway rate-limit tests with Redis');

describe.skipIf(!redisUp)('rate limits shared through Redis', () => {
  it('makes two Switchboard instances share one limit', async () => {
    const keyPrefix = uniqueKeyPrefix('gw');
    const cfg = {
      rateLimits: [RULE],
      rateLimiting: { store: 'redis', keyPrefix },
      servers: { echo: everythingStdio() },
    };
    const a = await startTestGateway(cfg, { redisUrl: REDIS_URL });
    const b = await startTestGateway(cfg, { redisUrl: REDIS_URL });
    running.push(a, b);
    try {
      const sa = await initSession(`${a.url}/mcp`);
      const sb = await initSession(`${b.url}/mcp`);
      const statuses: number[] = [];
      for (let i = 1; i <= 6; i++) {
        const r = await echo(i % 2 === 0 ? b : a, i % 2 === 0 ? sb : sa, i);
        statuses.push(r.status);
        await r.text();
      }
      expect(statuses).toEqual([200, 200, 200, 200, 200, 429]);
    } finally {
      await deleteKeys(keyPrefix);
    }
  });
});

describe.skipIf(!redisServerGate('gateway rate-limit chaos tests'))('when Redis stops mid-test', () => {
  it.each([
    { failOpen: true, expected: 200 },
    { failOpen: false, expected: 503 },
  ])('applies failOpen=$failOpen (status $expected), logs and counts it', async ({ failOpen, expected }) => {
    const redis = await startRedisServer();
    const events: string[] = [];
    try {
      const gw = await startTestGateway(
        { rateLimits: [RULE], rateLimiting: { store: 'redis', failOpen }, servers: { echo: everythingStdio() } },
        { redisUrl: redis.url, onRateLimitEvent: (e) => events.push(e.type) },
      );
      running.push(gw);
      const sid = await initSession(`${gw.url}/mcp`);
      const before = await echo(gw, sid, 1);
      expect(before.status).toBe(200);
      await before.text();
      await redis.stop();
      const during = await echo(gw, sid, 2);
      expect(during.status).toBe(expected);
      await during.text();
      expect(events).toContain('store_error');
    } finally {
      await redis.close();
    }
  });
});
