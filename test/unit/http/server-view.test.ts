import { describe, expect, it } from 'vitest';
import { REDACTED, redactServerEntry, restoreRedacted } from '../../../src/http/server-view.js';

const stored = {
  url: 'https://mcp.example.com/mcp',
  headers: { 'X-Api-Key': 'k-123', 'X-Team': 'blue' },
  auth: {
    type: 'oauth2-client-credentials',
    tokenUrl: 'https://id.example.com/token',
    clientId: 'c',
    clientSecret: 's-456',
  },
};

describe('redactServerEntry', () => {
  it('replaces every env and headers value and the auth secrets, and leaves the rest', () => {
    const shown = redactServerEntry({ ...stored, env: { A: '1' } });
    expect(shown).toEqual({
      url: stored.url,
      headers: { 'X-Api-Key': REDACTED, 'X-Team': REDACTED },
      env: { A: REDACTED },
      auth: { ...stored.auth, clientSecret: REDACTED },
    });
    expect(JSON.stringify(shown)).not.toMatch(/k-123|s-456/);
    expect(redactServerEntry({ url: 'x', auth: { type: 'bearer', token: 't' } }).auth).toEqual({
      type: 'bearer',
      token: REDACTED,
    });
    expect(redactServerEntry({ url: 'x', auth: { type: 'basic', username: 'u', password: 'p' } }).auth).toEqual({
      type: 'basic',
      username: 'u',
      password: REDACTED,
    });
    // The stored entry itself is untouched.
    expect(stored.headers['X-Api-Key']).toBe('k-123');
  });
});

describe('restoreRedacted', () => {
  it('gives redacted values back their stored secret and keeps new values', () => {
    const edited = redactServerEntry(stored);
    (edited.headers as Record<string, string>)['X-Team'] = 'red';
    (edited.headers as Record<string, string>)['X-New'] = REDACTED;
    expect(restoreRedacted(edited, stored)).toEqual({
      ...stored,
      headers: { 'X-Api-Key': 'k-123', 'X-Team': 'red', 'X-New': REDACTED },
    });
  });

  it('does not carry a secret over to another auth type, and changes nothing without a stored entry', () => {
    const edited = { url: 'x', auth: { type: 'bearer', token: REDACTED } };
    expect(restoreRedacted(edited, { url: 'x', auth: { type: 'basic', username: 'u', password: 'p' } })).toEqual(
      edited,
    );
    expect(restoreRedacted(edited, undefined)).toBe(edited);
  });
});
