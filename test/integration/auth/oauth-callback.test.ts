/**
 * `GET /oauth/callback` on a real gateway: every malformed, forged or misdirected return is
 * refused with 400 before any token request, and nothing is stored.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { BROKER_KEY_INFO, UpstreamOAuthBroker } from '../../../src/auth/upstream-oauth.js';
import { createAuthServerHttp } from '../../../src/auth/oauth-common.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { buildConfig, startTestGateway } from '../../helpers/gateway.js';

const ECHO = fileURLToPath(new URL('../../fixtures/echo-server.mjs', import.meta.url));
let gw: RunningGateway;

beforeAll(async () => {
  gw = await startTestGateway({
    auth: { mode: 'tokens' },
    servers: { echo: { command: process.execPath, args: [ECHO] } },
  });
}, 30_000);

afterAll(async () => {
  await gw?.close();
});

async function callback(query: string, method = 'GET'): Promise<{ status: number; code?: string; text: string }> {
  const res = await fetch(`${gw.url}/oauth/callback${query}`, { method });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { data?: { code?: string } } }).error?.data?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, text, ...(code === undefined ? {} : { code }) };
}

/** A state the gateway itself would issue (same key: derived from its signing secret). */
function gatewayState(principal: string, server: string): string {
  return new UpstreamOAuthBroker({
    key: gw.tokens.deriveKey(BROKER_KEY_INFO),
    vault: gw.tokenVault!,
    redirectUri: `${gw.url}/oauth/callback`,
    http: createAuthServerHttp(1_000, undefined),
    logger: silentLogger(),
  }).issueState(principal, server);
}

describe('GET /oauth/callback', () => {
  it('answers 400 without code or state, and for an error from the authorization server', async () => {
    for (const q of ['', '?code=abc', '?state=abc', '?error=access_denied&state=x']) {
      const r = await callback(q);
      expect(r.status, q).toBe(400);
    }
    expect((await callback('?error=access_denied&state=x')).text).toContain('access_denied');
  });

  it('refuses a state this gateway did not issue, and a code longer than 2048 characters', async () => {
    const other = new UpstreamOAuthBroker({
      key: Buffer.alloc(32, 1),
      vault: gw.tokenVault!,
      redirectUri: 'http://x/',
      http: createAuthServerHttp(1_000, undefined),
      logger: silentLogger(),
    }).issueState('token:mallory', 'echo');
    const forged = await callback(`?code=abc&state=${encodeURIComponent(other)}`);
    expect(forged.status).toBe(400);
    expect(forged.text).toMatch(/not issued by this gateway/);
    const long = await callback(
      `?code=${'a'.repeat(2049)}&state=${encodeURIComponent(gatewayState('token:a', 'echo'))}`,
    );
    expect(long.status).toBe(400);
    expect(long.text).toMatch(/longer than 2048/);
  });

  it('refuses a genuine state naming a server that is not an oauth2-user server; nothing is stored', async () => {
    for (const server of ['echo', 'nowhere']) {
      const r = await callback(`?code=abc&state=${encodeURIComponent(gatewayState('token:alice', server))}`);
      expect(r.status, server).toBe(400);
      expect(r.text).toContain('is not an oauth2-user server');
    }
    expect(await gw.tokenVault!.connections()).toEqual([]);
  });

  it('answers 405 to another method', async () => {
    expect((await callback('?code=a&state=b', 'POST')).status).toBe(405);
  });
});

describe('a configuration with an oauth2-user server', () => {
  it('is added by a reload under auth.mode tokens', async () => {
    const next = buildConfig({
      auth: { mode: 'tokens' },
      servers: {
        echo: { command: process.execPath, args: [ECHO] },
        gh: { url: 'http://127.0.0.1:9/mcp', auth: { type: 'oauth2-user', clientId: 'gw' } },
      },
    });
    await gw.reload(next);
    expect([...gw.gateway.upstreams.keys()].sort()).toEqual(['echo', 'gh']);
  });

  it('is refused as a runtime server through the admin API (400), and nothing is stored', async () => {
    const { token } = await gw.tokens.create({ name: 'root', subject: 'root', permissions: ['admin.*'] });
    const res = await fetch(`${gw.url}/api/v1/servers/gh2`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ url: 'http://127.0.0.1:9/mcp', auth: { type: 'oauth2-user', clientId: 'gw' } }),
    });
    expect(res.status).toBe(400);
    expect(await res.text()).toMatch(/configured in the configuration file, not at runtime/);
    expect(await gw.database.servers.get('gh2')).toBeUndefined();
  });
});
