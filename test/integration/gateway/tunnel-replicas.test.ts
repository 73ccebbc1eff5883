/**
 * A tunnelled server on every replica: two gateways sharing a database and Redis; a tunnel dials
 * in to replica A. Replica B serves the same server from A's published record — its lists in the
 * aggregate and on its own endpoint — and passes every call to A, with sampling and progress
 * relayed to B's client. When the tunnel goes, B stops serving it.
 */
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import { startTunnelClient, type TunnelClient } from '../../../src/tunnel/client.js';
import {
  BIDI_CAPABILITIES,
  connectClient,
  EVERYTHING_ENTRY,
  startTestGateway,
  waitFor,
} from '../../helpers/gateway.js';
import { REDIS_URL, redisGate, uniqueKeyPrefix } from '../../helpers/redis.js';

const ready = await redisGate('tunnels served by every replica');

describe.runIf(ready)('a tunnel that reached one replica is served by the others (Redis)', () => {
  let a: RunningGateway;
  let b: RunningGateway;
  let database: Awaited<ReturnType<typeof openDatabase>>;
  let token: string;
  let tunnel: TunnelClient | undefined;

  beforeAll(async () => {
    database = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger() });
    await database.migrate();
    const config = {
      auth: { mode: 'tokens' },
      sessions: {
        keys: [{ id: 'k1', secret: randomBytes(32).toString('base64url') }],
        endedChannel: uniqueKeyPrefix('ended'),
        answersChannel: uniqueKeyPrefix('answers'),
        eventsChannel: uniqueKeyPrefix('events'),
        ownersPrefix: uniqueKeyPrefix('owners'),
      },
      runtimeServers: { changesChannel: uniqueKeyPrefix('changes') },
      servers: {},
    };
    // One after the other: they share one in-memory database.
    a = await startTestGateway(config, { database, redisUrl: REDIS_URL });
    b = await startTestGateway(config, { database, redisUrl: REDIS_URL });
    token = (await a.tokens.create({ name: 'root', subject: 'root', permissions: ['*'] })).token;
    tunnel = startTunnelClient({
      gateway: a.url,
      token,
      name: 'remote',
      command: process.execPath,
      args: [EVERYTHING_ENTRY, 'stdio'],
      logger: silentLogger(),
    });
    await waitFor(() => b.gateway.upstreams.get('remote')?.state === 'ready', 20_000, 'the tunnel on replica B');
  }, 60_000);

  afterAll(async () => {
    await tunnel?.stop();
    await Promise.all([a?.close(), b?.close()]);
    await database?.close();
  });

  it('lists and calls the tunnelled server through the replica its tunnel did not reach, with sampling and progress', async () => {
    expect(a.gateway.isLocalTunnel('remote')).toBe(true);
    expect(b.gateway.isLocalTunnel('remote')).toBe(false);
    const headers = { authorization: `Bearer ${token}` };
    const aggregate = await connectClient(`${b.url}/mcp`, {}, 'aggregate', headers);
    try {
      const names = (await aggregate.client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('remote__echo');
      const r = await aggregate.client.callTool({ name: 'remote__echo', arguments: { message: 'via B' } });
      expect(JSON.stringify(r.content)).toContain('Echo: via B');
    } finally {
      await aggregate.client.close();
    }

    const { client } = await connectClient(`${b.url}/servers/remote/mcp`, BIDI_CAPABILITIES, 'single', headers);
    client.setRequestHandler(CreateMessageRequestSchema, async () => ({
      model: 'test-model',
      role: 'assistant' as const,
      content: { type: 'text' as const, text: 'sampled on B' },
    }));
    try {
      const sampled = await client.callTool({
        name: 'trigger-sampling-request',
        arguments: { prompt: 'hi', maxTokens: 5 },
      });
      expect(JSON.stringify(sampled.content)).toContain('sampled on B');
      const progress: number[] = [];
      const done = await client.callTool(
        { name: 'trigger-long-running-operation', arguments: { duration: 0.3, steps: 3 } },
        undefined,
        { onprogress: (p) => progress.push(p.progress) },
      );
      expect(JSON.stringify(done.content)).toContain('Long running operation completed');
      expect(progress).toEqual([1, 2, 3]);
      const prompts = (await client.listPrompts()).prompts.map((p) => p.name);
      expect(prompts.length).toBeGreaterThan(0);
    } finally {
      await client.close();
    }
  });

  it('stops serving it on the other replica when the tunnel goes away', async () => {
    await tunnel!.stop();
    tunnel = undefined;
    await waitFor(() => !a.gateway.upstreams.has('remote'), 5_000, 'the tunnel gone on A');
    await waitFor(() => !b.gateway.upstreams.has('remote'), 5_000, 'the tunnel gone on B');
  });
});
