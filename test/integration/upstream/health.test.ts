/**
 * Health of a remote upstream through a running gateway: a real MCP server (official SDK,
 * Streamable HTTP) is stopped, the gateway's calls to it fail, and after `failureThreshold`
 * consecutive transport failures `/readyz` and `switchboard_upstream_up` say it is down; the
 * server is started again on the same port and the gateway's `ping` probe brings both back up,
 * with no client call needed. The gateway's old upstream session is unknown to the restarted
 * server (404), so the call after recovery also exercises the re-initialise path.
 */
import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { afterEach, describe, expect, it } from 'vitest';
import { z } from 'zod';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, startTestGateway, waitFor } from '../../helpers/gateway.js';
import { freePort } from '../../helpers/redis.js';

/** An SDK MCP server over Streamable HTTP that can be stopped and started again on its port. */
function restartableServer(): { start(port?: number): Promise<number>; stop(): Promise<void> } {
  let http: Server | undefined;
  return {
    async start(port = 0) {
      const sessions = new Map<string, StreamableHTTPServerTransport>();
      const server = createServer((req, res) => {
        void (async () => {
          const sid = req.headers['mcp-session-id'] as string | undefined;
          if (sid !== undefined) {
            const transport = sessions.get(sid);
            if (!transport) return void res.writeHead(404).end();
            return transport.handleRequest(req, res);
          }
          const mcp = new McpServer({ name: 'restartable', version: '1.0.0' });
          mcp.registerTool('echo', { inputSchema: { message: z.string() } }, ({ message }) => ({
            content: [{ type: 'text', text: `Echo: ${message}` }],
          }));
          const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
            sessionIdGenerator: randomUUID,
            enableJsonResponse: true,
            onsessioninitialized: (id) => void sessions.set(id, transport),
          });
          await mcp.connect(transport);
          await transport.handleRequest(req, res);
        })().catch(() => {
          if (!res.headersSent) res.writeHead(500).end();
        });
      });
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      http = server;
      return (server.address() as AddressInfo).port;
    },
    async stop() {
      const server = http;
      http = undefined;
      if (!server) return;
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

let gw: RunningGateway | undefined;
let upstream: ReturnType<typeof restartableServer> | undefined;
let client: Client | undefined;

afterEach(async () => {
  await client?.close().catch(() => undefined);
  await gw?.close();
  await upstream?.stop();
  client = undefined;
  gw = undefined;
  upstream = undefined;
});

async function readyz(): Promise<{ status: number; state: string | undefined }> {
  const res = await fetch(`${gw!.url}/readyz`);
  const body = (await res.json()) as { upstreams: Array<{ name: string; state: string }> };
  return { status: res.status, state: body.upstreams.find((u) => u.name === 'remote')?.state };
}

async function upMetric(): Promise<number | undefined> {
  const text = await (await fetch(`${gw!.url}/metrics`)).text();
  const m = /^switchboard_upstream_up\{server="remote"\} (\d+)$/m.exec(text);
  return m ? Number(m[1]) : undefined;
}

describe('remote upstream health', () => {
  it('marks a stopped HTTP upstream down after 3 consecutive transport failures and up again once its probe answers', async () => {
    upstream = restartableServer();
    const port = await upstream.start();
    gw = await startTestGateway({
      servers: {
        remote: {
          url: `http://127.0.0.1:${port}/mcp`,
          timeout: '5s',
          // An idle ready upstream is probed every probeInterval too, and a failed probe counts:
          // 1 s keeps the idle probe out of the two-failure window below on a loaded machine.
          health: { failureThreshold: 3, probeInterval: 1000, maxProbeInterval: 1000 },
        },
      },
    });
    expect(await readyz()).toEqual({ status: 200, state: 'ready' });
    expect(await upMetric()).toBe(1);
    ({ client } = await connectClient(`${gw.url}/mcp`));
    const echo = (message: string) => client!.callTool({ name: 'remote__echo', arguments: { message } });
    expect(await echo('before')).toEqual({ content: [{ type: 'text', text: 'Echo: before' }] });

    await upstream.stop();
    // Two failures are below the threshold: still up.
    for (const i of [1, 2]) await expect(echo(`down ${i}`)).rejects.toMatchObject({ code: -33020 });
    expect(await readyz()).toEqual({ status: 200, state: 'ready' });
    expect(await upMetric()).toBe(1);
    await expect(echo('down 3')).rejects.toMatchObject({ code: -33020 });
    expect(await readyz()).toEqual({ status: 503, state: 'failed' });
    expect(await upMetric()).toBe(0);

    // Same port again; only the gateway's probe talks to it.
    await upstream.start(port);
    await waitFor(async () => (await readyz()).status === 200, 5_000, '/readyz back to 200');
    expect(await readyz()).toEqual({ status: 200, state: 'ready' });
    expect(await upMetric()).toBe(1);
    expect(await echo('after')).toEqual({ content: [{ type: 'text', text: 'Echo: after' }] });
  });

  it('probes an HTTP upstream that was unreachable at start and serves its tools once it answers', async () => {
    const port = await freePort();
    gw = await startTestGateway({
      servers: {
        remote: { url: `http://127.0.0.1:${port}/mcp`, health: { probeInterval: 100, maxProbeInterval: 200 } },
      },
    });
    expect(await readyz()).toEqual({ status: 503, state: 'failed' });
    expect(await upMetric()).toBe(0);

    upstream = restartableServer();
    await upstream.start(port);
    await waitFor(async () => (await readyz()).status === 200, 5_000, '/readyz 200');
    expect(await upMetric()).toBe(1);
    ({ client } = await connectClient(`${gw.url}/mcp`));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['remote__echo']);
    expect(await client.callTool({ name: 'remote__echo', arguments: { message: 'late' } })).toEqual({
      content: [{ type: 'text', text: 'Echo: late' }],
    });
  });
});
