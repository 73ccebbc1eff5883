import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../../src/config/load.js';
import type { RemoteServer } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createUpstreamCredentials } from '../../../src/upstream/credentials.js';

function parse(auth: unknown): RemoteServer {
  const config = parseConfigText(
    JSON.stringify({ auth: { mode: 'tokens' }, servers: { gh: { url: 'https://mcp.example/mcp', auth } } }),
  );
  return config.servers.gh as RemoteServer;
}

function issues(text: string): string[] {
  try {
    parseConfigText(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => `${i.path}: ${i.message}`);
    throw e;
  }
  throw new Error('expected a ConfigError');
}

const server = (auth: unknown) =>
  JSON.stringify({ auth: { mode: 'tokens' }, servers: { gh: { url: 'https://mcp.example/mcp', auth } } });

describe('auth.type oauth2-user', () => {
  it('accepts a static client with scopes and an authorization server, registration defaulting to static', () => {
    expect(
      parse({
        type: 'oauth2-user',
        clientId: 'gw',
        clientSecret: 's3cret',
        scopes: ['repo', 'read:user'],
        authorizationServer: 'https://auth.example',
      }).auth,
    ).toEqual({
      type: 'oauth2-user',
      clientId: 'gw',
      clientSecret: 's3cret',
      registration: 'static',
      scopes: ['repo', 'read:user'],
      authorizationServer: 'https://auth.example',
    });
  });

  it('accepts dynamic registration and client ID metadata documents without a client id', () => {
    expect(parse({ type: 'oauth2-user', registration: 'dynamic' }).auth).toEqual({
      type: 'oauth2-user',
      registration: 'dynamic',
    });
    expect(parse({ type: 'oauth2-user', registration: 'metadata-document' }).auth).toEqual({
      type: 'oauth2-user',
      registration: 'metadata-document',
    });
  });

  it('requires a clientId unless registration is dynamic or metadata-document, naming the field', () => {
    expect(issues(server({ type: 'oauth2-user' }))).toEqual([
      'servers.gh.auth.clientId: oauth2-user needs a clientId (or registration: dynamic or metadata-document)',
    ]);
  });

  it('refuses a client id or secret with dynamic registration, a secret without an id, bad scopes and URLs', () => {
    expect(issues(server({ type: 'oauth2-user', registration: 'dynamic', clientId: 'x' }))).toEqual([
      'servers.gh.auth.registration: registration: dynamic obtains its own client id: remove clientId and clientSecret',
    ]);
    expect(issues(server({ type: 'oauth2-user', registration: 'metadata-document', clientId: 'x' }))).toEqual([
      'servers.gh.auth.registration: registration: metadata-document obtains its own client id: remove clientId and clientSecret',
    ]);
    expect(issues(server({ type: 'oauth2-user', registration: 'dynamic', clientSecret: 'x' })).join('\n')).toMatch(
      /a clientSecret needs its clientId/,
    );
    expect(issues(server({ type: 'oauth2-user', clientId: 'x', scopes: ['two words'] }))[0]).toMatch(
      /^servers\.gh\.auth\.scopes\[0\]: a scope is printable ASCII/,
    );
    expect(issues(server({ type: 'oauth2-user', clientId: 'x', authorizationServer: 'ftp://a' }))[0]).toMatch(
      /^servers\.gh\.auth\.authorizationServer: expected an http/,
    );
    expect(issues(server({ type: 'oauth2-user', clientId: 'x', registration: 'magic' }))[0]).toMatch(
      /^servers\.gh\.auth\.registration/,
    );
    expect(issues(server({ type: 'oauth2-user', clientId: 'x', extra: 1 }))[0]).toMatch(/extra/);
  });

  it('is refused under auth.mode none, where every caller is the same anonymous principal', () => {
    expect(
      issues(
        JSON.stringify({
          servers: { gh: { url: 'https://mcp.example/mcp', auth: { type: 'oauth2-user', clientId: 'x' } } },
        }),
      ),
    ).toEqual([expect.stringMatching(/^servers\.gh\.auth\.type: oauth2-user keeps upstream tokens per user/)]);
  });

  it('leaves oauth2-user to tokens, oauth and tokens+oauth, and token-exchange to oauth and tokens+oauth', () => {
    const text = (mode: string | undefined, auth: unknown) =>
      JSON.stringify({
        ...(mode === undefined
          ? {}
          : { auth: { mode, ...(mode.includes('oauth') ? { oauth: { issuer: 'https://as.example' } } : {}) } }),
        servers: { up: { url: 'https://mcp.example/mcp', auth } },
      });
    const user = { type: 'oauth2-user', clientId: 'x' };
    const exchange = { type: 'token-exchange', clientId: 'gw', clientSecret: 's', audience: 'https://mcp.example/mcp' };
    const refused = (mode: string | undefined, auth: unknown) => {
      try {
        parseConfigText(text(mode, auth));
        return false;
      } catch (e) {
        if (e instanceof ConfigError) return e.issues.some((i) => i.path === 'servers.up.auth.type');
        throw e;
      }
    };
    expect([undefined, 'none', 'tokens', 'oauth', 'tokens+oauth'].map((m) => refused(m, user))).toEqual([
      true,
      true,
      false,
      false,
      false,
    ]);
    expect([undefined, 'none', 'tokens', 'oauth', 'tokens+oauth'].map((m) => refused(m, exchange))).toEqual([
      true,
      true,
      true,
      false,
      false,
    ]);
  });

  it('is refused without a token vault when the upstream call path is built, never run without a credential', () => {
    const auth = parse({ type: 'oauth2-user', clientId: 'gw' }).auth;
    expect(() => createUpstreamCredentials(auth, { serverName: 'gh', logger: silentLogger() })).toThrow(
      expect.objectContaining({
        code: 'SWB_ERR_CONFIG_INVALID',
        message: expect.stringMatching(/needs the token vault/),
      }),
    );
  });
});

describe('tokenVault.keys', () => {
  it('defaults to no keys and accepts {id, secret} entries', () => {
    expect(parseConfigText('{}').tokenVault).toEqual({ keys: [] });
    const keys = [{ id: 'k1', secret: 'x'.repeat(32) }];
    expect(parseConfigText(JSON.stringify({ tokenVault: { keys } })).tokenVault.keys).toEqual(keys);
  });

  it('refuses short secrets, malformed and duplicate ids', () => {
    const text = JSON.stringify({
      tokenVault: {
        keys: [
          { id: 'k1', secret: 'short' },
          { id: 'bad id', secret: 'x'.repeat(32) },
          { id: 'k1', secret: 'y'.repeat(32) },
        ],
      },
    });
    expect(issues(text)).toEqual([
      expect.stringMatching(/^tokenVault\.keys\[0\]\.secret: expected at least 32 characters/),
      expect.stringMatching(/^tokenVault\.keys\[1\]\.id: a key id is/),
      'tokenVault.keys[2].id: duplicate key id k1',
    ]);
  });
});
