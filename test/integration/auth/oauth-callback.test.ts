/**
 * `GET /oauth/callback` and `/oauth/connect` on a real gateway: every malformed, forged,
 * misdirected or unbound return is refused with 400 before any token request, and nothing is
 * stored; a bad state at the connect page is 400 without a cookie.
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

async function callback(
  query: string,
  method = 'GET',
  cookie?: string,
  path = '/oauth/callback',
): Promise<{ status: number; code?: string; text: string; setCookie: string[] }> {
  const res = await fetch(`${gw.url}${path}${query}`, { method, headers: cookie === undefined ? {} : { cookie } });
  const text = await res.text();
  let code: string | undefined;
  try {
    code = (JSON.parse(text) as { error?: { data?: { code?: string } } }).error?.data?.code;
  } catch {
    code = undefined;
  }
  return { status: res.status, text, setCookie: res.headers.getSetCookie(), ...(code === undefined ? {} : { code }) };
}

/** A broker with the gateway's key (derived from its signing secret). */
function gatewayBroker(clock?: () => number, key?: Buffer): UpstreamOAuthBroker {
  return new UpstreamOAuthBroker({
    key: key ?? gw.tokens.deriveKey(BROKER_KEY_INFO),
    vault: gw.tokenVault!,
    redirectUri: `${gw.url}/oauth/callback`,
    connectUrl: `${gw.url}/oauth/connect`,
    http: createAuthServerHttp(1_000, undefined),
    logger: silentLogger(),
    ...(clock === undefined ? {} : { clock }),
  });
}

/** A state the gateway itself would issue. */
function gatewayState(principal: string, server: string): string {
  return gatewayBroker().issueState(principal, server);
}

/** The binding cookie (`name=value`) the gateway's connect page would set for `state`. */
function bindingCookie(state: string): string {
  const b = gatewayBroker();
  const c = b.bindingCookie(b.verifyState(state));
  return `${c.name}=${c.value}`;
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
    // Another gateway's key.
    const other = gatewayBroker(undefined, Buffer.alloc(32, 1)).issueState('token:mallory', 'echo');
    const forged = await callback(`?code=abc&state=${encodeURIComponent(other)}`);
    expect(forged.status).toBe(400);
    expect(forged.text).toMatch(/not issued by this gateway/);
    const long = await callback(
      `?code=${'a'.repeat(2049)}&state=${encodeURIComponent(gatewayState('token:a', 'echo'))}`,
    );
    expect(long.status).toBe(400);
    expect(long.text).toMatch(/longer than 2048/);
  });

  it('refuses a genuine state without its binding cookie, or with another flow’s', async () => {
    const state = gatewayState('token:alice', 'echo');
    for (const cookie of [undefined, bindingCookie(gatewayState('token:mallory', 'echo'))]) {
      const r = await callback(`?code=abc&state=${encodeURIComponent(state)}`, 'GET', cookie);
      expect(r.status).toBe(400);
      expect(r.code).toBe('SWB_ERR_HTTP_INVALID_REQUEST');
      expect(r.text).toMatch(/did not confirm this connection on the Switchboard connect page/);
    }
    expect(await gw.tokenVault!.connections()).toEqual([]);
  });

  it('refuses a genuine, bound state naming a server that is not an oauth2-user server; nothing is stored', async () => {
    for (const server of ['echo', 'nowhere']) {
      const state = gatewayState('token:alice', server);
      const r = await callback(`?code=abc&state=${encodeURIComponent(state)}`, 'GET', bindingCookie(state));
      expect(r.status, server).toBe(400);
      expect(r.text).toContain('is not an oauth2-user server');
    }
    expect(await gw.tokenVault!.connections()).toEqual([]);
  });

  it('answers 405 to another method', async () => {
    expect((await callback('?code=a&state=b', 'POST')).status).toBe(405);
  });
});

describe('/oauth/connect', () => {
  it('answers 400 to a missing, forged or expired state, and to a server that is not oauth2-user, with no cookie', async () => {
    const forged = gatewayBroker(undefined, Buffer.alloc(32, 1)).issueState('token:mallory', 'echo');
    const expired = gatewayBroker(() => Date.now() - 600_001).issueState('token:alice', 'echo');
    const cases: Array<[string, RegExp]> = [
      ['', /needs a state/],
      [forged, /not issued by this gateway/],
      [expired, /expired/],
      [gatewayState('token:alice', 'echo'), /is not an oauth2-user server/],
    ];
    for (const [state, why] of cases) {
      const r = await callback(`?state=${encodeURIComponent(state)}`, 'GET', undefined, '/oauth/connect');
      expect(r.status, state).toBe(400);
      expect(r.text).toMatch(why);
      expect(r.setCookie).toEqual([]);
    }
  });

  it('answers 405 to another method', async () => {
    expect((await callback('?state=x', 'PUT', undefined, '/oauth/connect')).status).toBe(405);
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
