import { describe, expect, it } from 'vitest';
import { createMemoryTransportPair } from '../../../src/upstream/memory-transport.js';
import type { JsonRpcMessage } from '../../../src/protocol/jsonrpc.js';
import type { TransportCloseInfo } from '../../../src/upstream/transport.js';
import { SENT } from '../../../src/upstream/transport.js';

const PING: JsonRpcMessage = { jsonrpc: '2.0', id: 1, method: 'ping' };

async function started() {
  const pair = createMemoryTransportPair({ name: 'm' });
  const toServer: JsonRpcMessage[] = [];
  const toGateway: JsonRpcMessage[] = [];
  pair.server.onmessage = (m) => toServer.push(m as JsonRpcMessage);
  pair.upstream.onmessage = (m) => toGateway.push(m);
  await pair.server.start();
  await pair.upstream.start();
  return { pair, toServer, toGateway };
}

describe('createMemoryTransportPair', () => {
  it('delivers asynchronously, in order, and as a copy of what was sent', async () => {
    const { pair, toServer } = await started();
    const msg: JsonRpcMessage = { jsonrpc: '2.0', id: 7, method: 'tools/call', params: { name: 'a' } };
    expect(pair.upstream.send(msg)).toBe(SENT);
    void pair.upstream.send(PING);
    expect(toServer).toEqual([]);
    await Promise.resolve();
    await Promise.resolve();
    expect(toServer).toEqual([msg, PING]);
    expect(toServer[0]).not.toBe(msg);
    (msg.params as Record<string, unknown>).name = 'changed';
    expect((toServer[0] as { params?: { name?: string } }).params?.name).toBe('a');
  });

  it('passes relatedRequestId to the gateway end only when asked to', async () => {
    const plain = await started();
    const plainInfos: unknown[] = [];
    plain.pair.upstream.onmessage = (_m, info) => plainInfos.push(info);
    await plain.pair.server.send(PING, { relatedRequestId: 4 });
    const related = createMemoryTransportPair({ relatedRequestIds: true });
    const infos: unknown[] = [];
    related.upstream.onmessage = (_m, info) => infos.push(info);
    await related.server.start();
    await related.upstream.start();
    await related.server.send(PING, { relatedRequestId: 4 });
    await related.server.send(PING);
    await new Promise((r) => setImmediate(r));
    expect(infos).toEqual([{ relatedRequestId: 4 }, {}]);
    expect(plainInfos).toEqual([{}]);
  });

  it('holds messages for an end that has not started and delivers them, in order, once it does', async () => {
    const pair = createMemoryTransportPair();
    const toServer: unknown[] = [];
    pair.server.onmessage = (m) => toServer.push(m);
    await pair.upstream.start();
    await pair.upstream.send(PING);
    await pair.upstream.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await new Promise((r) => setImmediate(r));
    expect(toServer).toEqual([]);
    await pair.server.start();
    await new Promise((r) => setImmediate(r));
    expect(toServer).toEqual([PING, { jsonrpc: '2.0', method: 'notifications/initialized' }]);
  });

  it('refuses an unserialisable message alone and keeps the link open', async () => {
    const { pair, toServer } = await started();
    const cyclic: Record<string, unknown> = {};
    cyclic.self = cyclic;
    await expect(pair.upstream.send({ jsonrpc: '2.0', id: 1, method: 'x', params: cyclic })).rejects.toMatchObject({
      code: 'SWB_ERR_UPSTREAM_UNSERIALISABLE',
    });
    await pair.upstream.send(PING);
    await new Promise((r) => setImmediate(r));
    expect(toServer).toEqual([PING]);
  });

  it('rejects sends before start and after close with SWB_ERR_UPSTREAM_CLOSED', async () => {
    const pair = createMemoryTransportPair();
    await expect(pair.upstream.send(PING)).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    await pair.upstream.start();
    await pair.server.start();
    await pair.server.close();
    await expect(pair.upstream.send(PING)).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    await expect(pair.server.send(PING)).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
  });

  it('delivers what was sent before a close, then fires onclose once on each started end', async () => {
    const { pair, toGateway } = await started();
    const closes: TransportCloseInfo[] = [];
    let serverCloses = 0;
    pair.upstream.onclose = (info) => closes.push(info);
    pair.server.onclose = () => serverCloses++;
    await pair.server.send(PING);
    const closing = pair.server.close();
    void pair.upstream.close();
    await closing;
    expect(toGateway).toEqual([PING]);
    expect(closes).toHaveLength(1);
    expect((closes[0]?.error as { code?: string } | undefined)?.code).toBe('SWB_ERR_UPSTREAM_CLOSED');
    expect(serverCloses).toBe(1);
  });

  it('reports {} for a close of the gateway end and the given info for disconnect()', async () => {
    const a = await started();
    const infoA: TransportCloseInfo[] = [];
    a.pair.upstream.onclose = (i) => infoA.push(i);
    await a.pair.upstream.close();
    expect(infoA).toEqual([{}]);
    const b = await started();
    const infoB: TransportCloseInfo[] = [];
    b.pair.upstream.onclose = (i) => infoB.push(i);
    await b.pair.disconnect({ exitCode: 3, signal: null });
    expect(infoB).toEqual([{ exitCode: 3, signal: null }]);
  });
});
