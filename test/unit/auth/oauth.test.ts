/**
 * Unit tests of the OAuth resource server's pure parts: discovery URL construction (RFC 8414
 * §3.1), token shape detection, option checking and the checks made before any network call.
 */
import { describe, expect, it } from 'vitest';
import {
  ALLOWED_JWS_ALGORITHMS,
  MAX_ACCESS_TOKEN_LENGTH,
  createOAuthVerifier,
  discoveryUrls,
  looksLikeJwt,
  type OAuthVerifierOptions,
} from '../../../src/auth/oauth.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';

// Nothing listens here; the tests below must never reach the network.
const ISSUER = 'http://127.0.0.1:9/';
const base: OAuthVerifierOptions = {
  issuer: ISSUER,
  audience: 'https://gw.example.test/mcp',
  validation: 'jwt',
  logger: silentLogger(),
};

function thrown(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(GatewayError);
    return e as GatewayError;
  }
  throw new Error('expected a throw');
}

describe('discoveryUrls', () => {
  it('tries RFC 8414 then OpenID Connect discovery for an issuer without path', () => {
    expect(discoveryUrls('https://as.example.com')).toEqual([
      'https://as.example.com/.well-known/oauth-authorization-server',
      'https://as.example.com/.well-known/openid-configuration',
    ]);
    expect(discoveryUrls('https://as.example.com/')).toEqual(discoveryUrls('https://as.example.com'));
  });

  it('inserts the well-known segment before an issuer path, then tries the OIDC appended form', () => {
    expect(discoveryUrls('https://as.example.com/tenant/1')).toEqual([
      'https://as.example.com/.well-known/oauth-authorization-server/tenant/1',
      'https://as.example.com/.well-known/openid-configuration/tenant/1',
      'https://as.example.com/tenant/1/.well-known/openid-configuration',
    ]);
  });

  it('keeps a non-default port', () => {
    expect(discoveryUrls('http://127.0.0.1:8443/realms/mcp')[0]).toBe(
      'http://127.0.0.1:8443/.well-known/oauth-authorization-server/realms/mcp',
    );
  });
});

describe('looksLikeJwt', () => {
  it('recognises three base64url segments, including an empty signature', () => {
    expect(looksLikeJwt('eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln')).toBe(true);
    expect(looksLikeJwt('eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.')).toBe(true);
  });

  it('rejects opaque tokens, JWEs and padded or non-base64url input', () => {
    expect(looksLikeJwt('8xLOxBtZp8')).toBe(false);
    expect(looksLikeJwt('a.b.c.d.e')).toBe(false);
    expect(looksLikeJwt('a=.b.c')).toBe(false);
    expect(looksLikeJwt('a+b.c.d')).toBe(false);
    expect(looksLikeJwt('.b.c')).toBe(false);
  });
});

describe('ALLOWED_JWS_ALGORITHMS', () => {
  it('holds asymmetric algorithms only', () => {
    expect(ALLOWED_JWS_ALGORITHMS).toContain('RS256');
    expect(ALLOWED_JWS_ALGORITHMS).toContain('ES256');
    expect(ALLOWED_JWS_ALGORITHMS).toContain('EdDSA');
    expect(ALLOWED_JWS_ALGORITHMS.filter((a) => a === 'none' || a.startsWith('HS'))).toEqual([]);
  });
});

describe('createOAuthVerifier options', () => {
  it('accepts a minimal jwt configuration without touching the network', () => {
    expect(() => createOAuthVerifier(base)).not.toThrow();
  });

  it('refuses introspection without client credentials', () => {
    for (const validation of ['introspection', 'both'] as const) {
      const e = thrown(() => createOAuthVerifier({ ...base, validation, clientId: 'rs' }));
      expect(e.code).toBe('SWB_ERR_CONFIG_INVALID');
    }
  });

  it('refuses an empty audience', () => {
    expect(thrown(() => createOAuthVerifier({ ...base, audience: [] })).code).toBe('SWB_ERR_CONFIG_INVALID');
    expect(thrown(() => createOAuthVerifier({ ...base, audience: '' })).code).toBe('SWB_ERR_CONFIG_INVALID');
  });

  it('refuses an issuer that is not an absolute http(s) URL or has a query or fragment', () => {
    for (const issuer of [
      'as.example.com',
      'ftp://as.example.com',
      'https://as.example.com/?x=1',
      'https://as.example.com/#f',
    ]) {
      expect(thrown(() => createOAuthVerifier({ ...base, issuer })).code).toBe('SWB_ERR_CONFIG_INVALID');
    }
  });

  it('refuses malformed endpoint overrides', () => {
    expect(thrown(() => createOAuthVerifier({ ...base, jwksUri: '/jwks' })).code).toBe('SWB_ERR_CONFIG_INVALID');
    const e = thrown(() =>
      createOAuthVerifier({
        ...base,
        validation: 'introspection',
        clientId: 'a',
        clientSecret: 'b',
        introspectionEndpoint: 'x',
      }),
    );
    expect(e.code).toBe('SWB_ERR_CONFIG_INVALID');
  });
});

describe('checks made before any request to the authorization server', () => {
  const verifier = createOAuthVerifier(base);

  async function reason(token: string): Promise<unknown> {
    try {
      await verifier.verify(token);
    } catch (e) {
      expect(e).toBeInstanceOf(GatewayError);
      expect((e as GatewayError).code).toBe('SWB_ERR_AUTH_INVALID_TOKEN');
      return (e as GatewayError).data?.reason;
    }
    throw new Error('expected a rejection');
  }

  const b64 = (o: unknown): string => Buffer.from(JSON.stringify(o)).toString('base64url');

  it('rejects empty and oversized tokens', async () => {
    expect(await reason('')).toBe('empty token');
    expect(await reason('a'.repeat(MAX_ACCESS_TOKEN_LENGTH + 1))).toBe('token too long');
  });

  it('rejects alg none and HMAC before fetching any key', async () => {
    const payload = b64({ iss: ISSUER, aud: base.audience, sub: 'x', exp: 9_999_999_999 });
    expect(await reason(`${b64({ alg: 'none' })}.${payload}.`)).toBe('algorithm none not allowed');
    expect(await reason(`${b64({ alg: 'HS256', typ: 'JWT' })}.${payload}.c2ln`)).toBe('algorithm HS256 not allowed');
    expect(await reason(`${b64({ alg: 'HS512' })}.${payload}.c2ln`)).toBe('algorithm HS512 not allowed');
  });

  it('rejects a JWT type other than at+jwt or JWT before fetching any key', async () => {
    const payload = b64({ sub: 'x' });
    expect(await reason(`${b64({ alg: 'RS256', typ: 'logout+jwt' })}.${payload}.c2ln`)).toBe(
      'token type logout+jwt not accepted',
    );
  });

  it('rejects a non-JWT in jwt mode', async () => {
    expect(await reason('opaque-token-value')).toBe('not a JWT');
    expect(await reason('bm90.anNvbg.c2ln')).toBe('not a JWT');
  });
});
