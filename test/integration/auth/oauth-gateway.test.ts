/**
 * Switchboard as an OAuth 2.1 resource server in front of MCP (docs/oauth.md):
 * a real `oidc-provider` authorization server issues JWT and opaque access tokens; an official
 * SDK client and raw HTTP check 401/403 challenges, RFC 9728 metadata, audience, scopes, roles.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { connectClient, startTestGateway } from '../../helpers/gateway.js';
import { startAuthorizationServer, type RunningAuthorizationServer } from '../../helpers/oidc.js';
import { post } from '../../helpers/raw.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const odd = { command: process.execPath, args: [ODD] };
/** The gateway's public URL (SWITCHBOARD_PUBLIC_URL), fixed so tokens can be issued for it before it starts. */
const PUB = 'http://switchboard.test';
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
};

describe('OAuth resource server (validation: both)', () => {
  let as: RunningAuthorizationServer;
  let gw: RunningGateway;
  const opaqueResource = 'urn:switchboard:opaque';

  beforeAll(async () => {
    as = await startAuthorizationServer({ opaqueResources: [opaqueResource] });
    gw = await startTestGateway(
      {
        auth: {
          mode: 'tokens+oauth',
          oauth: {
            issuer: as.issuer,
            validation: 'both',
            clientId: as.introspectionClient.clientId,
            clientSecret: as.introspectionClient.clientSecret,
            audience: [`${PUB}/mcp`, opaqueResource],
            requiredScopes: ['mcp:read'],
            scopeRoles: { 'mcp:admin': 'admin' },
          },
        },
        servers: { odd },
      },
      { publicUrl: PUB },
    );
  });
  afterAll(async () => {
    await gw?.close();
    await as?.stop();
  });

  it('answers 401 with a resource_metadata challenge whose document names the authorization server', async () => {
    const res = await post(`${gw.url}/mcp`, INIT);
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    const m = /resource_metadata="([^"]+)"/.exec(challenge);
    expect(m?.[1]).toBe(`${PUB}/.well-known/oauth-protected-resource/mcp`);
    const doc = (await (await fetch(`${gw.url}/.well-known/oauth-protected-resource/mcp`)).json()) as {
      resource: string;
      authorization_servers: string[];
    };
    expect(doc.resource).toBe(`${PUB}/mcp`);
    expect(doc.authorization_servers).toEqual([as.issuer]);
    const root = await fetch(`${gw.url}/.well-known/oauth-protected-resource`);
    expect(root.status).toBe(200);
    expect((await fetch(`${gw.url}/.well-known/oauth-protected-resource/nope`)).status).toBe(404);
  });

  it('serves an SDK client with a JWT access token issued for this resource', async () => {
    const token = await as.issueJwtAccessToken({ resource: `${PUB}/mcp`, scope: 'mcp:read' });
    const { client } = await connectClient(`${gw.url}/mcp`, {}, 'oauth', { authorization: `Bearer ${token}` });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('odd__pid');
    await client.close();
  });

  it('accepts an opaque token through RFC 7662 introspection and rejects one the AS never issued', async () => {
    const token = await as.issueOpaqueAccessToken({ resource: opaqueResource, scope: 'mcp:read' });
    const res = await post(`${gw.url}/mcp`, INIT, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(200);
    await res.text();
    expect(as.requests.some((p) => p.includes('introspect'))).toBe(true);
    const forged = await post(`${gw.url}/mcp`, INIT, { authorization: 'Bearer not-a-token-the-as-issued' });
    expect(forged.status).toBe(401);
  });

  it('rejects a JWT issued for another audience (fails closed)', async () => {
    const token = await as.issueJwtAccessToken({ resource: 'http://elsewhere.example/mcp', scope: 'mcp:read' });
    const res = await post(`${gw.url}/mcp`, INIT, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(401);
    expect(res.headers.get('www-authenticate')).toContain('error="invalid_token"');
  });

  it('answers 403 insufficient_scope with the required scope when a scope is missing', async () => {
    const token = await as.issueJwtAccessToken({ resource: `${PUB}/mcp`, scope: 'mcp:write' });
    const res = await post(`${gw.url}/mcp`, INIT, { authorization: `Bearer ${token}` });
    expect(res.status).toBe(403);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toContain('error="insufficient_scope"');
    expect(challenge).toContain('scope="mcp:read"');
  });

  it('maps an OAuth scope to a role: mcp:admin reaches the admin API, plain users do not', async () => {
    const adminToken = await as.issueJwtAccessToken({ resource: `${PUB}/mcp`, scope: 'mcp:read mcp:admin' });
    const userToken = await as.issueJwtAccessToken({ resource: `${PUB}/mcp`, scope: 'mcp:read' });
    expect(
      (await fetch(`${gw.url}/api/v1/tokens`, { headers: { authorization: `Bearer ${adminToken}` } })).status,
    ).toBe(200);
    expect((await fetch(`${gw.url}/api/v1/tokens`, { headers: { authorization: `Bearer ${userToken}` } })).status).toBe(
      403,
    );
  });

  it('still accepts Switchboard API tokens in tokens+oauth mode', async () => {
    const t = (await gw.tokens.create({ name: 'x', subject: 'svc', permissions: ['servers.use'] })).token;
    const res = await post(`${gw.url}/mcp`, INIT, { authorization: `Bearer ${t}` });
    expect(res.status).toBe(200);
    await res.text();
  });
});

describe('trusted proxy header', () => {
  it('accepts the identity header from a trusted network', async () => {
    const gw = await startTestGateway({
      auth: { mode: 'tokens', trustedProxy: { cidrs: ['127.0.0.0/8'] } },
      servers: { odd },
    });
    try {
      const res = await post(`${gw.url}/mcp`, INIT, { 'x-authenticated-user': 'alice@example.com' });
      expect(res.status).toBe(200);
      await res.text();
      const session = [...gw.gateway.sessions.values()][0];
      expect(session?.principal.id).toBe('proxy:alice@example.com');
    } finally {
      await gw.close();
    }
  });

  it('ignores (strips) the identity header from any other address', async () => {
    const gw = await startTestGateway({
      auth: { mode: 'tokens', trustedProxy: { cidrs: ['10.0.0.0/8'] } },
      servers: { odd },
    });
    try {
      const res = await post(`${gw.url}/mcp`, INIT, { 'x-authenticated-user': 'admin' });
      expect(res.status).toBe(401);
    } finally {
      await gw.close();
    }
  });
});
