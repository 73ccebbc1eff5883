/**
 * Runtime URL servers (admin API) cannot point the gateway at cloud metadata, loopback or the
 * gateway itself unless `runtimeServers.allowDestinations` allows it. Servers of the
 * configuration file are not subject to this policy.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { ServerConfig } from '../../../src/config/schema.js';
import { connectClient, startTestGateway } from '../../helpers/gateway.js';
import { startEverythingHttp, type EverythingHttp } from '../../helpers/everything.js';

describe('destinations of runtime URL servers', () => {
  let gw: RunningGateway | undefined;
  let upstream: EverythingHttp | undefined;
  afterEach(async () => {
    await gw?.close();
    await upstream?.stop();
    gw = undefined;
    upstream = undefined;
  });

  async function manager(g: RunningGateway): Promise<string> {
    return (
      await g.tokens.create({
        name: 'm',
        subject: 'mallory',
        permissions: ['servers.use', 'tools.execute', 'servers.manage'],
      })
    ).token;
  }

  async function create(g: RunningGateway, token: string, name: string, url: string) {
    const res = await fetch(`${g.url}/api/v1/servers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ name, url }),
    });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: body.error?.code };
  }

  it('refuses cloud metadata, loopback (also by name) and the gateway itself by default (403)', async () => {
    upstream = await startEverythingHttp('streamableHttp');
    gw = await startTestGateway({ auth: { mode: 'tokens' } });
    const t = await manager(gw);
    const port = new URL(upstream.url).port;
    for (const [name, url] of [
      ['meta', 'http://169.254.169.254/latest/meta-data/'],
      ['loop', upstream.url],
      ['loopname', `http://localhost:${port}/mcp`],
      ['self', `${gw.url}/mcp`],
    ] as const) {
      const refused = await create(gw, t, name, url);
      expect(refused, url).toEqual({ status: 403, code: 'SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION' });
      await expect(gw.database.servers.get(name)).resolves.toBeUndefined();
    }
  });

  it('accepts a loopback destination listed in runtimeServers.allowDestinations, and serves it', async () => {
    upstream = await startEverythingHttp('streamableHttp');
    gw = await startTestGateway({
      auth: { mode: 'tokens' },
      runtimeServers: { allowDestinations: ['127.0.0.1/32'] },
    });
    const t = await manager(gw);
    expect(await create(gw, t, 'loop', upstream.url)).toEqual({ status: 201, code: undefined });
    expect(await create(gw, t, 'meta', 'http://169.254.169.254/')).toEqual({
      status: 403,
      code: 'SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION',
    });
    const { client } = await connectClient(`${gw.url}/mcp`, {}, 'rt', { authorization: `Bearer ${t}` });
    try {
      const result = await client.callTool({ name: 'loop__echo', arguments: { message: 'allowed' } });
      expect((result.content as Array<{ text: string }>)[0]?.text).toBe('Echo: allowed');
    } finally {
      await client.close();
    }
  });

  it('refuses at connect time a stored runtime server whose destination is no longer allowed', async () => {
    upstream = await startEverythingHttp('streamableHttp');
    gw = await startTestGateway({ auth: { mode: 'tokens' } });
    // As if stored before the policy existed, or while the allow list still listed loopback.
    await gw.gateway.setRuntimeServers({ old: ServerConfig.parse({ url: upstream.url }) });
    const u = gw.gateway.upstreams.get('old');
    expect(u?.state).not.toBe('ready');
    expect(u?.lastError).toContain('refused for runtime servers');
  });
});

describe('runtime servers with auth.type token-exchange', () => {
  let gw: RunningGateway | undefined;
  afterEach(async () => {
    await gw?.close();
    gw = undefined;
  });

  async function post(g: RunningGateway, token: string, name: string, auth: Record<string, unknown>) {
    const res = await fetch(`${g.url}/api/v1/servers`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
      body: JSON.stringify({ name, url: 'https://upstream.example/mcp', auth }),
    });
    const body = (await res.json()) as { error?: { code: string } };
    return { status: res.status, code: body.error?.code };
  }

  const exchange = {
    type: 'token-exchange',
    clientId: 'gw-client',
    clientSecret: 'gw-secret',
    audience: 'https://upstream.example/mcp',
  };

  it('needs admin.* for its own tokenEndpoint, which is held to the destination policy', async () => {
    gw = await startTestGateway({
      auth: { mode: 'tokens' },
      // Names that resolve nowhere in a test: allowed by name, so no DNS lookup is needed.
      runtimeServers: { allowDestinations: ['upstream.example', 'collector.example'] },
    });
    const manager = (
      await gw.tokens.create({ name: 'm', subject: 'mallory', permissions: ['servers.use', 'servers.manage'] })
    ).token;
    const admin = (await gw.tokens.create({ name: 'a', subject: 'root', permissions: ['admin.*'] })).token;
    // Every caller's access token would go to the endpoint: only an administrator may choose it.
    expect(await post(gw, manager, 'own', { ...exchange, tokenEndpoint: 'https://collector.example/token' })).toEqual({
      status: 403,
      code: 'SWB_ERR_AUTH_ADMIN_REQUIRED',
    });
    expect(await post(gw, admin, 'meta', { ...exchange, tokenEndpoint: 'http://169.254.169.254/token' })).toEqual({
      status: 403,
      code: 'SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION',
    });
    await expect(gw.database.servers.get('meta')).resolves.toBeUndefined();
    // The inbound issuer's endpoint (the default) already sees those tokens.
    expect(await post(gw, manager, 'default', exchange)).toEqual({ status: 201, code: undefined });
  });
});
