/**
 * Session-isolated stdio children across replicas: two gateways with the same session key and one
 * Redis. A session's child runs on the replica that first served one of its calls (its owner);
 * calls of that session landing on the other replica are passed on, with their progress,
 * server→client requests (sampling) and answers, so the session keeps one child and its state.
 * An owner that does not answer costs a clear error within seconds, never a hang, and its slot is
 * taken over once its record expires.
 */
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import { FORWARD_ACK_MS } from '../../../src/app/forwarding.js';
import { startBalancer, type Balancer } from '../../helpers/balancer.js';
import { BIDI_CAPABILITIES, connectClient, everythingStdio, startTestGateway } from '../../helpers/gateway.js';
import { initSession, messages, post } from '../../helpers/raw.js';
import { REDIS_URL, redisGate, uniqueKeyPrefix } from '../../helpers/redis.js';

const ready = await redisGate('isolated children shared between replicas');
const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const VERSION = '2025-06-18';

describe.runIf(ready)('session-isolated children across replicas (Redis)', () => {
  let a: RunningGateway;
  let b: RunningGateway;
  let balancer: Balancer;
  let redis: Redis;
  const ownersPrefix = uniqueKeyPrefix('owners');

  beforeAll(async () => {
    const config = {
      sessions: {
        keys: [{ id: 'k1', secret: randomBytes(32).toString('base64url') }],
        endedChannel: uniqueKeyPrefix('ended'),
        answersChannel: uniqueKeyPrefix('answers'),
        eventsChannel: uniqueKeyPrefix('events'),
        ownersPrefix,
      },
      servers: {
        odd: { command: process.execPath, args: [ODD], isolation: 'session' },
        everything: everythingStdio({ isolation: 'session' }),
      },
    };
    [a, b] = await Promise.all([
      startTestGateway(config, { redisUrl: REDIS_URL }),
      startTestGateway(config, { redisUrl: REDIS_URL }),
    ]);
    balancer = await startBalancer([a.url, b.url]);
    redis = new Redis(REDIS_URL);
  }, 60_000);

  afterAll(async () => {
    await balancer?.close();
    await Promise.all([a?.close(), b?.close()]);
    if (redis) {
      const keys = await redis.keys(`${ownersPrefix}*`);
      if (keys.length > 0) await redis.del(...keys);
      redis.disconnect();
    }
  });

  const oddUrl = (gw: RunningGateway) => `${gw.url}/servers/odd/mcp`;
  async function callOdd(gw: RunningGateway, sid: string, name: string, args: Record<string, unknown> = {}) {
    const res = await post(
      oddUrl(gw),
      { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name, arguments: args } },
      { 'mcp-session-id': sid, 'mcp-protocol-version': VERSION },
    );
    expect(res.status).toBe(200);
    return (await messages(res)).at(-1) as {
      result?: { content: Array<{ text: string }> };
      error?: { message: string; data?: { code?: string } };
    };
  }
  const pidOf = async (gw: RunningGateway, sid: string) => (await callOdd(gw, sid, 'pid')).result!.content[0]!.text;

  it("runs a session's child on one replica and passes the session's calls on to it from the other", async () => {
    const sid = await initSession(oddUrl(a), {}, VERSION);
    const first = await pidOf(b, sid); // B serves the session's first call: B owns its child
    expect(await pidOf(a, sid)).toBe(first);
    expect(await pidOf(b, sid)).toBe(first);
    expect(await pidOf(a, sid)).toBe(first);
    // Another session gets a child of its own.
    const other = await initSession(oddUrl(a), {}, VERSION);
    const second = await pidOf(a, other);
    expect(second).not.toBe(first);
    expect(await pidOf(b, other)).toBe(second);
    // An error of the child comes back as it is.
    const failed = await callOdd(a, sid, 'fail');
    expect(failed.error?.message).toBe('odd failure');
  });

  it('brings progress and sampling of a passed-on call to the client, and its answer back, through a balancer', async () => {
    const children = () =>
      a.gateway.upstreams.get('everything')!.connectionCount + b.gateway.upstreams.get('everything')!.connectionCount;
    const before = children();
    const { client } = await connectClient(`${balancer.url}/servers/everything/mcp`, BIDI_CAPABILITIES);
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: 'test-model',
      role: 'assistant' as const,
      content: { type: 'text' as const, text: 'sampled through the other replica' },
    }));
    try {
      for (let i = 0; i < 3; i++) {
        const sampled = await client.callTool({
          name: 'trigger-sampling-request',
          arguments: { prompt: 'hi', maxTokens: 5 },
        });
        expect(JSON.stringify(sampled.content)).toContain('sampled through the other replica');
        // A call and its sampling answer are two requests: one more makes the next call land on
        // the other replica.
        await client.ping();
      }
      const progress: number[] = [];
      const done = await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 0.6, steps: 3 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(JSON.stringify(done.content)).toContain('Long running operation completed');
      expect(progress).toEqual([1, 2, 3]);
      // The session has one child, on one of the two replicas.
      expect(children()).toBe(before + 1);
    } finally {
      await client.close();
    }
    // Both replicas took requests; one of them ran the session's child.
    expect(balancer.served.every((n) => n > 0)).toBe(true);
  });

  it('answers a clear error when the owner does not take the call, and takes the slot over once its record expires', async () => {
    const sid = await initSession(oddUrl(a), {}, VERSION);
    const internal = sid.slice(0, sid.indexOf('.'));
    // A replica that recorded itself as the owner and then died: no liveness key, no channel.
    await redis.set(`${ownersPrefix}slot:odd:${internal}`, 'deadbeef', 'PX', 3000);
    const started = Date.now();
    const refused = await callOdd(b, sid, 'pid');
    expect(refused.error?.data?.code).toBe('SWB_ERR_UPSTREAM_UNAVAILABLE');
    expect(Date.now() - started).toBeGreaterThanOrEqual(FORWARD_ACK_MS - 100);
    expect(Date.now() - started).toBeLessThan(FORWARD_ACK_MS + 1500);
    // Once the record is gone, the next call claims the slot and starts a child here.
    await new Promise((r) => setTimeout(r, Math.max(0, started + 3100 - Date.now())));
    const pid = await pidOf(b, sid);
    expect(Number(pid)).toBeGreaterThan(0);
    expect(await pidOf(a, sid)).toBe(pid);
  });
});
