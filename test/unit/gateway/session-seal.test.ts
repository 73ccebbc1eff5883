import { randomBytes, randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import {
  deriveSessionKey,
  MAX_SEALED_CLAIMS_BYTES,
  SessionSealer,
  sessionKeyOf,
  type SessionClaims,
} from '../../../src/gateway/session-seal.js';

const claims = (over: Partial<SessionClaims> = {}): SessionClaims => ({
  sid: randomUUID(),
  principal: 'token:alice',
  endpoint: '/mcp',
  protocolVersion: '2025-11-25',
  clientCapabilities: { sampling: {}, elicitation: { form: {} } },
  clientInfo: { name: 'client', version: '1.0.0' },
  createdAt: 1_733_400_000_000,
  ...over,
});

const key = (id = 'k1') => deriveSessionKey('a-session-key-secret-of-at-least-32-chars', id);

describe('SessionSealer', () => {
  it('round-trips the claims, with the session id in the clear and only visible ASCII', () => {
    const sealer = new SessionSealer([key()]);
    const c = claims();
    const id = sealer.seal(c)!;
    expect(id.startsWith(`${c.sid}.k1.`)).toBe(true);
    expect(id).toMatch(/^[\x21-\x7e]+$/);
    expect(sealer.open(id)).toStrictEqual(c);
  });

  it('seals the same claims differently each time (random IV), and both open', () => {
    const sealer = new SessionSealer([key()]);
    const c = claims();
    const a = sealer.seal(c)!;
    const b = sealer.seal(c)!;
    expect(a).not.toBe(b);
    expect(sealer.open(a)).toStrictEqual(c);
    expect(sealer.open(b)).toStrictEqual(c);
  });

  it('refuses an id with any character changed, a swapped session id, or a truncated body', () => {
    const sealer = new SessionSealer([key()]);
    const id = sealer.seal(claims())!;
    const body = id.slice(id.lastIndexOf('.') + 1);
    // Every character, the last one too (its unused low bits included: a non-canonical spelling
    // of the same bytes is refused).
    for (let i = 0; i < body.length; i++) {
      const c = body[i] === 'A' ? 'B' : 'A';
      const altered = id.slice(0, id.length - body.length) + body.slice(0, i) + c + body.slice(i + 1);
      expect(sealer.open(altered)).toBeUndefined();
    }
    // The session id is authenticated data: another session's id with this body does not open.
    expect(sealer.open(`${randomUUID()}${id.slice(id.indexOf('.'))}`)).toBeUndefined();
    expect(sealer.open(id.slice(0, -4))).toBeUndefined();
    expect(sealer.open('plain-uuid')).toBeUndefined();
    expect(sealer.open('a.k1.')).toBeUndefined();
    expect(sealer.open('')).toBeUndefined();
  });

  it('does not open an id sealed under another key, nor one naming an unknown key id', () => {
    const mine = new SessionSealer([key('k1')]);
    const theirs = new SessionSealer([deriveSessionKey('another-secret-that-is-long-enough-to-use', 'k1')]);
    const id = theirs.seal(claims())!;
    expect(mine.open(id)).toBeUndefined();
    expect(mine.open(id.replace('.k1.', '.k9.'))).toBeUndefined();
  });

  it('rotation: the first key seals, every key opens', () => {
    const old = new SessionSealer([key('old')]);
    const rotated = new SessionSealer([key('new'), key('old')]);
    const before = old.seal(claims())!;
    expect(rotated.open(before)?.principal).toBe('token:alice');
    const after = rotated.seal(claims())!;
    expect(after.split('.')[1]).toBe('new');
    // A replica still on the old key alone cannot read ids sealed under the new one.
    expect(old.open(after)).toBeUndefined();
  });

  it('keys derived from the same material agree on their id; different material differs', () => {
    const m = randomBytes(32);
    expect(sessionKeyOf(m).id).toBe(sessionKeyOf(Buffer.from(m)).id);
    expect(sessionKeyOf(m).id).not.toBe(sessionKeyOf(randomBytes(32)).id);
    const sealed = new SessionSealer([sessionKeyOf(m)]).seal(claims())!;
    expect(new SessionSealer([sessionKeyOf(Buffer.from(m))]).open(sealed)).toBeDefined();
  });

  it('leaves claims too large for a header unsealed', () => {
    const sealer = new SessionSealer([key()]);
    const big = claims({ clientInfo: { name: 'x'.repeat(MAX_SEALED_CLAIMS_BYTES) } });
    expect(sealer.seal(big)).toBeUndefined();
  });

  it('refuses bad keys: none, duplicate ids, malformed ids, wrong material length', () => {
    expect(() => new SessionSealer([])).toThrow(TypeError);
    expect(() => new SessionSealer([key('a'), key('a')])).toThrow(/share the id/);
    expect(() => key('has space')).toThrow(TypeError);
    expect(() => deriveSessionKey('', 'k')).toThrow(TypeError);
    expect(() => sessionKeyOf(randomBytes(16))).toThrow(TypeError);
  });
});
