/**
 * What Switchboard sends to remote upstreams (docs/upstream-identity.md): operator
 * credentials win over client headers, allowlisted headers pass, identity headers carry a
 * verifiable assertion and inbound copies are stripped, `forward` passes the caller's token.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createRemoteJWKSet, jwtVerify } from 'jose';
import type { RunningGateway } from '../../../src/app.js';
import { startTestGateway } from '../../helpers/gateway.js';
import { parseConfigText } from '../../../src/config/load.js';
import { startGateway } from '../../../src/app.js';
import { openDatabase } from '../../../src/store/database.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { messages, post } from '../../helpers/raw.js';
import { startHeaderCaptureServer, type HeaderCaptureServer } from '../../fixtures/header-capture-server.js';

let gw: RunningGateway;
let credentialed: HeaderCaptureServer;
let open: HeaderCaptureServer;
let forwarded: HeaderCaptureServer;
let token: string;

beforeAll(async () => {
  credentialed = await startHeaderCaptureServer({ requireBearer: 'operator-secret' });
  open = await startHeaderCaptureServer();
  forwarded = await startHeaderCaptureServer();
  // The shape, as written (JSON with ${HDR_TOKEN}), plus a `forward` server.
  const text = JSON.stringify({
    auth: { mode: 'tokens' },
    listen: { port: 0 },
    mcpServers: {
      hdr: {
        url: credentialed.url,
        auth: { type: 'bearer', token: '${HDR_TOKEN}' },
        passthroughHeaders: ['X-Tenant-Id', 'Authorization'],
        identityHeaders: true,
      },
      open: { url: open.url, auth: { type: 'none' }, passthroughHeaders: ['X-Tenant-Id'] },
      fwd: { url: forwarded.url, auth: { type: 'forward' } },
    },
  });
  const config = parseConfigText(text, { format: 'json', env: { HDR_TOKEN: 'operator-secret' } });
  const database = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger() });
  const running = await startGateway({ config, logger: silentLogger(), database, sweepIntervalMs: 0 });
  gw = { ...running, close: async () => (await running.close(), await database.close()) };
  token = (await gw.tokens.create({ name: 't', subject: 'alice', permissions: ['servers.use', 'tools.execute'] }))
    .token;
});
afterAll(async () => {
  await gw?.close();
  await Promise.all([credentialed?.stop(), open?.stop(), forwarded?.stop()]);
});

async function whoami(server: string, extra: Record<string, string> = {}): Promise<Record<string, string>> {
  const url = `${gw.url}/servers/${server}/mcp`;
  const headers = { authorization: `Bearer ${token}`, ...extra };
  const init = await post(
    url,
    {
      jsonrpc: '2.0',
      id: 1,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
    },
    headers,
  );
  const sid = init.headers.get('mcp-session-id')!;
  await init.text();
  const res = await post(
    url,
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
    { ...headers, 'mcp-session-id': sid },
  );
  const [m] = await messages(res);
  const result = m?.result as { content: Array<{ text: string }> } | undefined;
  if (!result) throw new Error(`call failed: ${JSON.stringify(m)}`);
  return JSON.parse(result.content[0]!.text) as Record<string, string>;
}

describe('outbound credentials and headers', () => {
  it('sends the operator credential, never the client Authorization or X-Upstream-Authorization', async () => {
    const seen = await whoami('hdr', { 'x-upstream-authorization': 'Bearer client-supplied', 'x-tenant-id': 'acme' });
    expect(seen.authorization).toBe('Bearer operator-secret');
    expect(seen['x-upstream-authorization']).toBeUndefined();
    expect(seen['x-tenant-id']).toBe('acme');
    expect(JSON.stringify(seen)).not.toContain(token);
  });

  it('maps X-Upstream-Authorization to Authorization only for an auth type none upstream', async () => {
    const seen = await whoami('open', {
      'x-upstream-authorization': 'Bearer for-upstream',
      'x-tenant-id': 'acme',
      'x-other': 'no',
    });
    expect(seen.authorization).toBe('Bearer for-upstream');
    expect(seen['x-tenant-id']).toBe('acme');
    expect(seen['x-other']).toBeUndefined();
    expect(JSON.stringify(seen)).not.toContain(token);
  });

  it('forwards the caller token only to an upstream configured with auth type forward', async () => {
    const seen = await whoami('fwd');
    expect(seen.authorization).toBe(`Bearer ${token}`);
  });

  it('sends identity headers with an assertion the upstream can verify, and strips spoofed inbound copies', async () => {
    const seen = await whoami('hdr', {
      'x-switchboard-principal': 'token:mallory',
      'x-switchboard-assertion': 'forged',
    });
    expect(seen['x-switchboard-principal']).toBe('token:alice');
    expect(seen['x-switchboard-session-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    const jwks = createRemoteJWKSet(new URL(`${gw.url}/.well-known/jwks.json`));
    const { payload } = await jwtVerify(seen['x-switchboard-assertion']!, jwks, {
      audience: 'hdr',
      issuer: gw.publicUrl,
    });
    expect(payload.sub).toBe('token:alice');
    // Bound to its audience (RFC 7519 §4.1.3): the assertion for `hdr` is refused for any other server.
    await expect(jwtVerify(seen['x-switchboard-assertion']!, jwks, { audience: 'open' })).rejects.toMatchObject({
      code: 'ERR_JWT_CLAIM_VALIDATION_FAILED',
      claim: 'aud',
    });
  });

  it('sends no identity headers to servers without identityHeaders', async () => {
    const seen = await whoami('open');
    expect(Object.keys(seen).filter((h) => h.startsWith('x-switchboard-'))).toEqual([]);
  });
});

describe('binding beyond loopback', () => {
  it('refuses to start without inbound auth unless --insecure', async () => {
    await expect(startTestGateway({ servers: {} }, { host: '0.0.0.0' })).rejects.toMatchObject({
      code: 'SWB_ERR_STARTUP_INSECURE_BIND',
    });
  });
});
