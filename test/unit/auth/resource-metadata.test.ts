/**
 * RFC 9728 protected resource metadata, metadata URLs (§3.1 path insertion) and the RFC 6750 §3
 * / RFC 9728 §5.1 `WWW-Authenticate` challenge.
 */
import { describe, expect, it } from 'vitest';
import {
  PROTECTED_RESOURCE_WELL_KNOWN,
  challengeForError,
  metadataUrlFor,
  protectedResourceMetadata,
  wwwAuthenticate,
} from '../../../src/auth/resource-metadata.js';
import { GatewayError } from '../../../src/errors.js';

describe('protectedResourceMetadata', () => {
  it('builds the RFC 9728 §2 document with header-only bearer tokens', () => {
    expect(
      protectedResourceMetadata({
        resource: 'https://gw.example.com/mcp',
        authorizationServers: ['https://as.example.com'],
        scopesSupported: ['mcp:read', 'mcp:write'],
        resourceName: 'Switchboard',
      }),
    ).toEqual({
      resource: 'https://gw.example.com/mcp',
      authorization_servers: ['https://as.example.com'],
      bearer_methods_supported: ['header'],
      scopes_supported: ['mcp:read', 'mcp:write'],
      resource_name: 'Switchboard',
    });
  });

  it('omits optional members that are not given', () => {
    const doc = protectedResourceMetadata({
      resource: 'https://gw.example.com/mcp',
      authorizationServers: ['https://as'],
    });
    expect(Object.keys(doc).sort()).toEqual(['authorization_servers', 'bearer_methods_supported', 'resource']);
  });

  it('refuses a relative resource, a fragment, or no authorization server', () => {
    expect(() => protectedResourceMetadata({ resource: '/mcp', authorizationServers: ['https://as'] })).toThrow(
      TypeError,
    );
    expect(() =>
      protectedResourceMetadata({ resource: 'https://gw/mcp#x', authorizationServers: ['https://as'] }),
    ).toThrow(TypeError);
    expect(() => protectedResourceMetadata({ resource: 'https://gw/mcp', authorizationServers: [] })).toThrow(
      TypeError,
    );
  });
});

describe('metadataUrlFor', () => {
  it('inserts the well-known segment between host and path (RFC 9728 §3.1)', () => {
    expect(metadataUrlFor('https://gw.example.com', '/mcp')).toEqual({
      resource: 'https://gw.example.com/mcp',
      url: 'https://gw.example.com/.well-known/oauth-protected-resource/mcp',
      path: '/.well-known/oauth-protected-resource/mcp',
      rootResource: 'https://gw.example.com',
      rootUrl: 'https://gw.example.com/.well-known/oauth-protected-resource',
    });
  });

  it('handles nested MCP paths, trailing slashes and ports', () => {
    const m = metadataUrlFor('http://127.0.0.1:8080/', '/servers/github/mcp/');
    expect(m.resource).toBe('http://127.0.0.1:8080/servers/github/mcp');
    expect(m.url).toBe('http://127.0.0.1:8080/.well-known/oauth-protected-resource/servers/github/mcp');
    expect(m.rootUrl).toBe(`http://127.0.0.1:8080${PROTECTED_RESOURCE_WELL_KNOWN}`);
  });

  it('keeps a base path of the public URL in both forms', () => {
    const m = metadataUrlFor('https://Corp.Example.com/switchboard/', '/mcp/research');
    expect(m.resource).toBe('https://corp.example.com/switchboard/mcp/research');
    expect(m.url).toBe('https://corp.example.com/.well-known/oauth-protected-resource/switchboard/mcp/research');
    expect(m.rootResource).toBe('https://corp.example.com/switchboard');
    expect(m.rootUrl).toBe('https://corp.example.com/.well-known/oauth-protected-resource/switchboard');
  });

  it('refuses a relative base, a base with query or fragment, and a path without a leading slash', () => {
    expect(() => metadataUrlFor('gw.example.com', '/mcp')).toThrow(TypeError);
    expect(() => metadataUrlFor('https://gw.example.com/?a=1', '/mcp')).toThrow(TypeError);
    expect(() => metadataUrlFor('https://gw.example.com', 'mcp')).toThrow(TypeError);
  });
});

describe('wwwAuthenticate', () => {
  const url = 'https://gw.example.com/.well-known/oauth-protected-resource/mcp';

  it('names the resource metadata (RFC 9728 §5.1)', () => {
    expect(wwwAuthenticate({ resourceMetadataUrl: url })).toBe(`Bearer resource_metadata="${url}"`);
  });

  it('adds error, description and scope (RFC 6750 §3)', () => {
    expect(
      wwwAuthenticate({
        resourceMetadataUrl: url,
        error: 'insufficient_scope',
        errorDescription: 'needs admin',
        scope: ['mcp:read', 'mcp:admin'],
      }),
    ).toBe(
      `Bearer resource_metadata="${url}", error="insufficient_scope", error_description="needs admin", scope="mcp:read mcp:admin"`,
    );
  });

  it('escapes quotes and backslashes and drops CR, LF and non-ASCII characters', () => {
    const h = wwwAuthenticate({
      resourceMetadataUrl: url,
      error: 'invalid_token',
      errorDescription: 'bad "token" \\ here\r\nSet-Cookie: x=1 é',
    });
    expect(h).toBe(
      `Bearer resource_metadata="${url}", error="invalid_token", error_description="bad \\"token\\" \\\\ hereSet-Cookie: x=1 "`,
    );
    expect(h).not.toMatch(/[\r\n]/);
  });

  it('leaves out an empty scope', () => {
    expect(wwwAuthenticate({ resourceMetadataUrl: url, scope: [] })).toBe(`Bearer resource_metadata="${url}"`);
  });
});

describe('challengeForError', () => {
  const opts = { resourceMetadataUrl: 'https://gw/.well-known/oauth-protected-resource/mcp' };

  it('gives a missing token no error code (RFC 6750 §3.1) but may name the scope', () => {
    const e = new GatewayError('SWB_ERR_AUTH_MISSING_TOKEN', 'authentication required');
    expect(challengeForError(e, opts)).toBe(`Bearer resource_metadata="${opts.resourceMetadataUrl}"`);
    expect(challengeForError(e, { ...opts, scope: 'mcp:read' })).toBe(
      `Bearer resource_metadata="${opts.resourceMetadataUrl}", scope="mcp:read"`,
    );
  });

  it('maps invalid tokens to invalid_token with the reason as description', () => {
    const e = new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid access token', {
      data: { reason: 'token expired' },
    });
    expect(challengeForError(e, opts)).toBe(
      `Bearer resource_metadata="${opts.resourceMetadataUrl}", error="invalid_token", error_description="token expired"`,
    );
  });

  it('maps insufficient scope to insufficient_scope with the required scopes from the error', () => {
    const e = new GatewayError('SWB_ERR_AUTH_INSUFFICIENT_SCOPE', 'insufficient scope', {
      data: { scope: ['mcp:read', 'mcp:admin'] },
    });
    expect(challengeForError(e, opts)).toBe(
      `Bearer resource_metadata="${opts.resourceMetadataUrl}", error="insufficient_scope", scope="mcp:read mcp:admin"`,
    );
  });

  it('gives no challenge for an unavailable authorization server', () => {
    expect(challengeForError(new GatewayError('SWB_ERR_AUTH_UNAVAILABLE', 'x'), opts)).toBeUndefined();
  });
});
