/**
 * Remote (Streamable HTTP) upstreams: the upstream session is independent of client sessions and
 * is re-initialised transparently when the upstream loses it (here: the upstream restarts).
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { freePort, startEverythingHttp, type EverythingHttp } from '../../helpers/everything.js';

function text(result: unknown): string {
  return ((result as { content?: Array<{ text?: string }> }).content ?? []).map((c) => c.text ?? '').join('');
}

let gw: RunningGateway | undefined;
let upstream: EverythingHttp | undefined;
const clients: Client[] = [];
afterEach(async () => {
  await Promise.allSettled(clients.splice(0).map((c) => c.close()));
  await gw?.close();
  await upstream?.stop();
  gw = undefined;
  upstream = undefined;
});

describe('Streamable HTTP upstream sessions', () => {
  it('re-initialises the upstream session transparently after the upstream restarts', async () => {
    const port = await freePort();
    upstream = await startEverythingHttp('streamableHttp', port);
    gw = await startTestGateway({ servers: { remote: { url: upstream.url } } });
    const { client } = await connectClient(`${gw.url}/mcp`);
    clients.push(client);
    expect(text(await client.callTool({ name: 'remote__echo', arguments: { message: 'one' } }))).toBe('Echo: one');
    await upstream.stop();
    upstream = await startEverythingHttp('streamableHttp', port);
    // Same client session; the gateway's upstream session is gone on the new process.
    expect(text(await client.callTool({ name: 'remote__echo', arguments: { message: 'two' } }))).toBe('Echo: two');
  });

  it('answers promptly with a JSON-RPC error while the upstream is down, and recovers when it is back', async () => {
    const port = await freePort();
    upstream = await startEverythingHttp('streamableHttp', port);
    gw = await startTestGateway({ servers: { remote: { url: upstream.url } } });
    const { client } = await connectClient(`${gw.url}/mcp`);
    clients.push(client);
    await upstream.stop();
    upstream = undefined;
    const started = Date.now();
    const failed = await client
      .callTool({ name: 'remote__echo', arguments: { message: 'x' } })
      .catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(Error);
    expect(Date.now() - started).toBeLessThan(5000);
    upstream = await startEverythingHttp('streamableHttp', port);
    const ok = await waitFor(
      async () => {
        const r = await client
          .callTool({ name: 'remote__echo', arguments: { message: 'back' } })
          .catch(() => undefined);
        return r && text(r) === 'Echo: back';
      },
      10_000,
      'recovery',
    );
    expect(ok).toBe(true);
  });

  it('shares one upstream session between client sessions of the same principal', async () => {
    upstream = await startEverythingHttp('streamableHttp');
    gw = await startTestGateway({ servers: { remote: { url: upstream.url } } });
    const a = await connectClient(`${gw.url}/mcp`);
    const b = await connectClient(`${gw.url}/mcp`);
    clients.push(a.client, b.client);
    await a.client.callTool({ name: 'remote__echo', arguments: { message: 'a' } });
    await b.client.callTool({ name: 'remote__echo', arguments: { message: 'b' } });
    expect(gw.gateway.upstreams.get('remote')!.connectionCount).toBe(1);
  });
});
