/**
 * What a client learns from an upstream's HTTP error: the status and a code, never the body. An
 * upstream reached on a client's behalf may be any HTTP service; quoting its answers would turn
 * the gateway into a reader of whatever that service returns.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { ERROR_CODES } from '../../../src/errors.js';
import { startTestGateway, waitFor } from '../../helpers/gateway.js';
import { initSession, messages, post } from '../../helpers/raw.js';

const MARKER = 'BODY-TEXT-ami-id-169.254.169.254-secret';

/** A minimal Streamable HTTP MCP server whose `tools/call` (or everything, with `failAll`) answers `status` + MARKER. */
async function startUpstream(status: number, failAll = false): Promise<{ url: string; close: () => Promise<void> }> {
  const server: Server = createServer((req: IncomingMessage, res: ServerResponse) => {
    let body = '';
    req.on('data', (d: Buffer) => (body += d.toString()));
    req.on('end', () => {
      if (req.method !== 'POST') return void res.writeHead(405).end();
      const msg = JSON.parse(body) as { id?: number; method: string };
      if (failAll || msg.method === 'tools/call') {
        return void res.writeHead(status, { 'content-type': 'text/plain' }).end(MARKER);
      }
      if (msg.id === undefined) return void res.writeHead(202).end();
      const result =
        msg.method === 'initialize'
          ? { protocolVersion: '2025-06-18', capabilities: { tools: {} }, serverInfo: { name: 'raw', version: '1' } }
          : msg.method === 'tools/list'
            ? { tools: [{ name: 'boom', inputSchema: { type: 'object' } }] }
            : {};
      res.writeHead(200, { 'content-type': 'application/json', 'mcp-session-id': 's1' });
      res.end(JSON.stringify({ jsonrpc: '2.0', id: msg.id, result }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    close: async () => {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

describe('upstream HTTP errors seen by clients', () => {
  const cleanups: Array<() => Promise<unknown>> = [];
  let gw: RunningGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
    for (const c of cleanups.splice(0)) await c();
  });

  it('answers a tools/call the upstream refused with HTTP 500 by SWB_ERR_UPSTREAM_HTTP and the status, without the body', async () => {
    const upstream = await startUpstream(500);
    cleanups.push(upstream.close);
    gw = await startTestGateway({ servers: { remote: { url: upstream.url } } });
    const sid = await initSession(`${gw.url}/mcp`);
    const res = await post(
      `${gw.url}/mcp`,
      { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'remote__boom', arguments: {} } },
      { 'mcp-session-id': sid },
    );
    expect(res.status).toBe(200);
    const [answer] = await messages(res);
    const error = answer?.error as { code: number; message: string; data: Record<string, unknown> };
    expect(error.code).toBe(ERROR_CODES.SWB_ERR_UPSTREAM_HTTP.jsonRpcCode);
    expect(error.data).toEqual({ code: 'SWB_ERR_UPSTREAM_HTTP', status: 500 });
    expect(JSON.stringify(answer)).not.toContain('BODY-TEXT');
  });

  it('keeps the body of a failed initialize out of /readyz and the admin API', async () => {
    const upstream = await startUpstream(401, true);
    cleanups.push(upstream.close);
    // Unauthenticated, from loopback: admitted to the admin API only by admin.allowAnonymous.
    gw = await startTestGateway({ admin: { allowAnonymous: true }, servers: { remote: { url: upstream.url } } });
    const running = gw;
    // The first answer that reports the upstream's failure.
    const ready = await waitFor(async () => {
      const r = await fetch(`${running.url}/readyz`);
      const body = (await r.json()) as { upstreams: Array<{ error?: string }> };
      return body.upstreams[0]?.error === undefined ? false : { status: r.status, body };
    });
    if (ready === false) throw new Error('unreachable: waitFor returns a truthy value');
    expect(ready.status).toBe(503);
    expect(JSON.stringify(ready.body)).not.toContain('BODY-TEXT');
    expect(ready.body.upstreams[0]?.error).toContain('401');
    const listed = await (await fetch(`${gw.url}/api/v1/servers/remote`)).text();
    expect(listed).toContain('401');
    expect(listed).not.toContain('BODY-TEXT');
  });
});
