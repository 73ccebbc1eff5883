/**
 * The admin API without inbound authentication (`auth.mode: none`, everyone anonymous): closed by
 * default — an anonymous caller cannot add a stdio server (a command the gateway would run) —
 * and open to loopback callers only with `admin.allowAnonymous: true`.
 */
import { afterEach, describe, expect, it } from 'vitest';
import { fileURLToPath } from 'node:url';
import type { RunningGateway } from '../../../src/app.js';
import { startTestGateway } from '../../helpers/gateway.js';

const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));
const entry = JSON.stringify({ command: process.execPath, args: [ECHO] });

let gw: RunningGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

describe('admin API without inbound authentication', () => {
  it('refuses anonymous callers by default: no server is added, nothing is listed', async () => {
    gw = await startTestGateway({});
    const put = await fetch(`${gw.url}/api/v1/servers/x`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: entry,
    });
    expect(put.status).toBe(403);
    const body = (await put.json()) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('SWB_ERR_AUTH_ADMIN_REQUIRED');
    expect(body.error.message).toContain('admin.allowAnonymous');
    expect(await gw.database.servers.list()).toEqual([]);
    expect(gw.gateway.upstreams.has('x')).toBe(false);
    for (const path of ['/api/v1/servers', '/api/v1/tokens', '/api/v1/sessions', '/api/v1/usage?groupBy=server']) {
      const r = await fetch(`${gw.url}${path}`);
      await r.arrayBuffer();
      expect(r.status, path).toBe(403);
    }
    // MCP itself stays open to the anonymous caller.
    const ping = await fetch(`${gw.url}/healthz`);
    expect(ping.status).toBe(200);
  });

  it('admits anonymous loopback callers with admin.allowAnonymous: true', async () => {
    gw = await startTestGateway({ admin: { allowAnonymous: true } });
    const put = await fetch(`${gw.url}/api/v1/servers/x`, {
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body: entry,
    });
    expect(put.status).toBe(201);
    expect((await gw.database.servers.list()).map((s) => s.name)).toEqual(['x']);
    const listed = (await (await fetch(`${gw.url}/api/v1/servers`)).json()) as { servers: Array<{ name: string }> };
    expect(listed.servers.map((s) => s.name)).toContain('x');
  });
});
