import type { IncomingHttpHeaders } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { UpstreamAuth } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/observability/logger.js';
import {
  MAX_HEADER_VALUE_BYTES,
  NEVER_FORWARDED_HEADERS,
  PASSTHROUGH_SETTINGS_KEY,
  createPassthroughPolicy,
  isNeverForwarded,
  loadGlobalAllowlist,
  mergeAllowlists,
  parseAllowlistEnv,
  readStoredAllowlist,
  sanitizeHeaderValue,
  type PassthroughPolicyOptions,
} from '../../../src/policy/passthrough.js';
import type { SettingsStore } from '../../../src/store/types.js';

function policy(options: Partial<PassthroughPolicyOptions>) {
  return createPassthroughPolicy({
    globalAllowlist: [],
    upstreamAuthType: 'none',
    baseHeaders: {},
    overwriteBase: false,
    ...options,
  });
}

/** Headers as node:http hands them over: lower-case names, latin1 byte-string values. */
function wire(headers: Record<string, string | string[]>): IncomingHttpHeaders {
  return headers;
}

/** Header value as node:http would deliver UTF-8 bytes sent by a client. */
function latin1OfUtf8(s: string): string {
  return Buffer.from(s, 'utf8').toString('latin1');
}

function memorySettings(initial: Record<string, unknown> = {}): SettingsStore {
  const data = new Map(Object.entries(initial));
  return {
    get: <T>(key: string) => Promise.resolve(data.get(key) as T | undefined),
    set: (key, value) => {
      data.set(key, value);
      return Promise.resolve();
    },
    setIfAbsent: <T>(key: string, value: T) => {
      if (!data.has(key)) data.set(key, value);
      return Promise.resolve(data.get(key) as T);
    },
  };
}

const CREDENTIALED: UpstreamAuth['type'][] = ['bearer', 'basic', 'oauth2-client-credentials', 'token-exchange'];

describe('sanitizeHeaderValue', () => {
  it('removes CR and LF so a client cannot inject a header line', () => {
    expect(sanitizeHeaderValue('acme\r\nX-Admin: true')).toBe('acmeX-Admin: true');
    expect(sanitizeHeaderValue('a\rb\nc')).toBe('abc');
  });

  it('removes NUL, other C0 controls and DEL but keeps tabs inside the value', () => {
    expect(sanitizeHeaderValue('a\x00b\x07c\x1bd\x7fe')).toBe('abcde');
    expect(sanitizeHeaderValue('a\tb')).toBe('a\tb');
  });

  it('trims surrounding spaces and tabs only (0xA0 is a UTF-8 continuation byte, not whitespace)', () => {
    expect(sanitizeHeaderValue(' \t spaced \t ')).toBe('spaced');
    const nbspEnding = latin1OfUtf8('à'); // C3 A0
    expect(sanitizeHeaderValue(nbspEnding)).toBe(nbspEnding);
  });

  it('keeps bytes 0x80-0xFF of a UTF-8 value delivered by node:http intact', () => {
    const v = latin1OfUtf8('Zürich – 東京 🚀');
    expect(Buffer.from(sanitizeHeaderValue(v), 'latin1').toString('utf8')).toBe('Zürich – 東京 🚀');
  });

  it('returns an empty string when only controls and whitespace remain', () => {
    expect(sanitizeHeaderValue('\r\n \t\x00')).toBe('');
  });

  it('leaves a value of exactly 4096 bytes alone and cuts a longer ASCII value to 4096 bytes', () => {
    expect(sanitizeHeaderValue('a'.repeat(4096))).toHaveLength(4096);
    expect(sanitizeHeaderValue('a'.repeat(5000))).toHaveLength(MAX_HEADER_VALUE_BYTES);
  });

  it('counts bytes, not characters, and never splits a 3-byte UTF-8 sequence at the 4 KB cut', () => {
    // 'aa' + '€' (E2 82 AC) × 2000: byte 4096 falls in the middle of a euro sign.
    const v = latin1OfUtf8('aa' + '€'.repeat(2000));
    const out = sanitizeHeaderValue(v);
    expect(out.length).toBe(2 + 3 * 1364); // 4094 bytes: the incomplete sign is dropped
    expect(out.length).toBeLessThanOrEqual(4096);
    expect(Buffer.from(out, 'latin1').toString('utf8')).toBe('aa' + '€'.repeat(1364));
  });

  it('never splits a 4-byte sequence, wherever the cut falls inside it', () => {
    for (const pad of [0, 1, 2, 3]) {
      const v = latin1OfUtf8('x'.repeat(pad) + '🚀'.repeat(1100));
      const out = sanitizeHeaderValue(v);
      const decoded = Buffer.from(out, 'latin1').toString('utf8');
      expect(out.length).toBeLessThanOrEqual(4096);
      expect(out.length).toBeGreaterThan(4092);
      expect(decoded).not.toContain('\ufffd');
      expect(decoded).toBe('x'.repeat(pad) + '🚀'.repeat((out.length - pad) / 4));
    }
  });

  it('encodes characters beyond U+00FF as UTF-8 bytes and cuts them on a sequence boundary', () => {
    const out = sanitizeHeaderValue('€'.repeat(2000));
    expect(out.length).toBe(4095); // 1365 whole euro signs
    expect([...out].every((c) => c.charCodeAt(0) <= 0xff)).toBe(true);
    expect(Buffer.from(out, 'latin1').toString('utf8')).toBe('€'.repeat(1365));
  });

  it('cuts at the byte limit when the bytes are not UTF-8 at all', () => {
    const v = '\x80'.repeat(5000); // stray continuation bytes: no sequence to protect
    expect(sanitizeHeaderValue(v)).toHaveLength(4096);
  });

  it('removes controls before cutting, so injected CR/LF do not count against the limit', () => {
    const v = '\r\n'.repeat(100) + 'a'.repeat(4096);
    expect(sanitizeHeaderValue(v)).toBe('a'.repeat(4096));
  });

  it('honours a custom byte limit', () => {
    expect(sanitizeHeaderValue('abcdef', 3)).toBe('abc');
  });
});

describe('parseAllowlistEnv', () => {
  it('splits a comma-separated list, trimming and dropping empty entries', () => {
    expect(parseAllowlistEnv(' X-Tenant-Id , X-Request-Id,,  ')).toEqual(['X-Tenant-Id', 'X-Request-Id']);
  });

  it('accepts a JSON array as well as a comma-separated list', () => {
    expect(parseAllowlistEnv('["X-Tenant-Id", "X-Trace"]')).toEqual(['X-Tenant-Id', 'X-Trace']);
  });

  it('falls back to commas when a value starting with [ is not JSON', () => {
    expect(parseAllowlistEnv('[X-A, X-B')).toEqual(['[X-A', 'X-B']);
  });

  it('removes case-insensitive duplicates keeping the first spelling', () => {
    expect(parseAllowlistEnv('X-Tenant-Id,x-tenant-id,X-TENANT-ID')).toEqual(['X-Tenant-Id']);
  });

  it('gives an empty list for unset or blank values', () => {
    expect(parseAllowlistEnv(undefined)).toEqual([]);
    expect(parseAllowlistEnv('   ')).toEqual([]);
  });

  it('keeps invalid names for the policy to report', () => {
    expect(parseAllowlistEnv('Bad Name,X-Ok')).toEqual(['Bad Name', 'X-Ok']);
  });
});

describe('mergeAllowlists (headers.source)', () => {
  const env = ['X-Env', 'X-Both'];
  const db = ['x-both', 'X-Db'];

  it('env: uses the environment list and ignores the stored one', () => {
    expect(mergeAllowlists('env', env, db)).toEqual(['X-Env', 'X-Both']);
  });

  it('db: the stored list wins when one is stored', () => {
    expect(mergeAllowlists('db', env, db)).toEqual(['x-both', 'X-Db']);
  });

  it('db: an explicitly stored empty list switches passthrough off', () => {
    expect(mergeAllowlists('db', env, [])).toEqual([]);
  });

  it('db: falls back to the environment list when nothing is stored', () => {
    expect(mergeAllowlists('db', env, undefined)).toEqual(['X-Env', 'X-Both']);
  });

  it('merge: unions both, the stored spelling winning for duplicates', () => {
    expect(mergeAllowlists('merge', env, db)).toEqual(['x-both', 'X-Db', 'X-Env']);
    expect(mergeAllowlists('merge', env, undefined)).toEqual(['X-Env', 'X-Both']);
  });
});

describe('stored allowlist', () => {
  it('reads the array stored under passthrough.headers, dropping non-strings', async () => {
    const settings = memorySettings({ [PASSTHROUGH_SETTINGS_KEY]: ['X-A', 3, 'X-B'] });
    expect(await readStoredAllowlist(settings)).toEqual(['X-A', 'X-B']);
  });

  it('treats a missing or malformed value as not stored', async () => {
    expect(await readStoredAllowlist(memorySettings())).toBeUndefined();
    expect(await readStoredAllowlist(memorySettings({ [PASSTHROUGH_SETTINGS_KEY]: 'X-A' }))).toBeUndefined();
  });

  it('loadGlobalAllowlist with source env never reads the database', async () => {
    let reads = 0;
    const settings: SettingsStore = {
      get: () => {
        reads++;
        return Promise.resolve(undefined);
      },
      set: () => Promise.resolve(),
      setIfAbsent: <T>(_key: string, value: T) => Promise.resolve(value),
    };
    expect(await loadGlobalAllowlist({ source: 'env', settings, envValue: 'X-Env' })).toEqual(['X-Env']);
    expect(reads).toBe(0);
  });

  it('loadGlobalAllowlist merges the environment value with the stored list', async () => {
    const settings = memorySettings({ [PASSTHROUGH_SETTINGS_KEY]: ['X-Db'] });
    expect(await loadGlobalAllowlist({ source: 'merge', settings, envValue: 'X-Env' })).toEqual(['X-Db', 'X-Env']);
    expect(await loadGlobalAllowlist({ source: 'db', settings, envValue: 'X-Env' })).toEqual(['X-Db']);
  });
});

describe('createPassthroughPolicy: allowlist', () => {
  it('copies allowlisted client headers with lower-case names and nothing else', () => {
    const p = policy({ globalAllowlist: ['X-Tenant-Id'] });
    expect(p(wire({ 'x-tenant-id': 'acme', 'x-other': 'no', authorization: 'Bearer sb' }))).toEqual({
      'x-tenant-id': 'acme',
    });
  });

  it('matches allowlist names case-insensitively', () => {
    const p = policy({ globalAllowlist: ['x-TENANT-id'] });
    expect(p(wire({ 'x-tenant-id': 'acme' }))).toEqual({ 'x-tenant-id': 'acme' });
  });

  it('forwards nothing with an empty allowlist (the default)', () => {
    const p = policy({});
    const out = p(wire({ 'x-tenant-id': 'acme' }));
    expect(out).toEqual({});
    expect(Object.isFrozen(out)).toBe(true);
  });

  it('lets the server allowlist replace the global one', () => {
    const p = policy({ globalAllowlist: ['X-Global'], serverAllowlist: ['X-Server'] });
    expect(p(wire({ 'x-global': 'g', 'x-server': 's' }))).toEqual({ 'x-server': 's' });
  });

  it('treats an empty server allowlist as "forward nothing", not as "use the global list"', () => {
    const p = policy({ globalAllowlist: ['X-Global'], serverAllowlist: [] });
    expect(p(wire({ 'x-global': 'g' }))).toEqual({});
  });

  it('uses the global allowlist when the server sets none', () => {
    const p = policy({ globalAllowlist: ['X-Global'], serverAllowlist: undefined });
    expect(p(wire({ 'x-global': 'g' }))).toEqual({ 'x-global': 'g' });
  });

  it.each(['Bad Name', 'X_Under', 'X-Tenant:Id', 'Bad@Name', '', 'é-header'])(
    'drops invalid allowlist entry %j at compile time with a warning',
    (name) => {
      const p = policy({ globalAllowlist: [name, 'X-Ok'] });
      expect(p.allowed).toEqual(['x-ok']);
      expect(p.warnings).toHaveLength(1);
      expect(p.warnings[0]).toContain('^[A-Za-z0-9-]+$');
    },
  );

  it('logs each compile-time warning once through the given logger', () => {
    const lines: string[] = [];
    const logger = silentLogger();
    logger.warn = ((_obj: unknown, msg: string) => {
      lines.push(msg);
    }) as typeof logger.warn;
    const p = policy({ globalAllowlist: ['Bad Name'], logger, serverName: 'hdr' });
    p(wire({}));
    p(wire({}));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('server "hdr"');
  });

  it('joins repeated client headers with ", "', () => {
    const p = policy({ globalAllowlist: ['X-Multi'] });
    expect(p(wire({ 'x-multi': ['a', 'b'] }))).toEqual({ 'x-multi': 'a, b' });
  });

  it('skips a header whose value is empty after sanitising', () => {
    const p = policy({ globalAllowlist: ['X-Tenant-Id'] });
    expect(p(wire({ 'x-tenant-id': '\r\n' }))).toEqual({});
  });

  it('sanitises values: a CR/LF injection attempt arrives as one harmless value', () => {
    const p = policy({ globalAllowlist: ['X-Tenant-Id'] });
    expect(p(wire({ 'x-tenant-id': 'acme\r\nAuthorization: Bearer evil' }))).toEqual({
      'x-tenant-id': 'acmeAuthorization: Bearer evil',
    });
  });

  it('cuts values to 4 KB on a UTF-8 boundary', () => {
    const p = policy({ globalAllowlist: ['X-Big'] });
    const out = p(wire({ 'x-big': latin1OfUtf8('a' + 'é'.repeat(3000)) }));
    const value = out['x-big'] ?? '';
    expect(value.length).toBe(4095);
    expect(Buffer.from(value, 'latin1').toString('utf8')).toBe('a' + 'é'.repeat(2047));
  });

  it('honours maxValueBytes', () => {
    const p = policy({ globalAllowlist: ['X-Big'], maxValueBytes: 8 });
    expect(p(wire({ 'x-big': 'abcdefghijkl' }))).toEqual({ 'x-big': 'abcdefgh' });
  });
});

describe('createPassthroughPolicy: never-forwarded headers', () => {
  const neverForwarded = [
    'Connection',
    'Keep-Alive',
    'Proxy-Connection',
    'Proxy-Authorization',
    'Proxy-Authenticate',
    'TE',
    'Trailer',
    'Transfer-Encoding',
    'Upgrade',
    'Host',
    'Content-Length',
    'Content-Type',
    'Content-Encoding',
    'Accept',
    'Accept-Encoding',
    'Expect',
    'Mcp-Session-Id',
    'MCP-Protocol-Version',
    'Last-Event-ID',
    'Mcp-Method',
    'Mcp-Name',
    'Cookie',
    'X-Switchboard-Principal',
    'X-Switchboard-Assertion',
    'X-Switchboard-Anything',
  ];

  it.each(neverForwarded)('never forwards %s even when allowlisted', (name) => {
    const p = policy({ globalAllowlist: [name], overwriteBase: true });
    expect(p.allowed).toEqual([]);
    expect(p.warnings).toHaveLength(1);
    expect(p(wire({ [name.toLowerCase()]: 'v' }))).toEqual({});
  });

  it('classifies names with isNeverForwarded (set, proxy-* and x-switchboard-* prefixes)', () => {
    for (const n of NEVER_FORWARDED_HEADERS) expect(isNeverForwarded(n)).toBe(true);
    expect(isNeverForwarded('proxy-whatever')).toBe(true);
    expect(isNeverForwarded('x-switchboard-x')).toBe(true);
    expect(isNeverForwarded('x-tenant-id')).toBe(false);
  });

  it('never forwards reserved names such as the trusted-proxy identity header', () => {
    const p = policy({
      globalAllowlist: ['X-Authenticated-User', 'X-Tenant-Id'],
      reservedHeaders: ['x-authenticated-user'],
    });
    expect(p(wire({ 'x-authenticated-user': 'root', 'x-tenant-id': 'acme' }))).toEqual({ 'x-tenant-id': 'acme' });
  });

  it('does not forward a header the client nominated in Connection (RFC 9110 §7.6.1)', () => {
    const p = policy({ globalAllowlist: ['X-Tenant-Id', 'X-Other'] });
    expect(p(wire({ connection: 'keep-alive, X-Tenant-Id', 'x-tenant-id': 'acme', 'x-other': 'o' }))).toEqual({
      'x-other': 'o',
    });
    expect(p(wire({ connection: 'keep-alive', 'x-tenant-id': 'acme' }))).toEqual({ 'x-tenant-id': 'acme' });
  });
});

describe('createPassthroughPolicy: base headers', () => {
  it('keeps a configured base header when the client sends the same name (default)', () => {
    const p = policy({ globalAllowlist: ['X-Api-Version'], baseHeaders: { 'X-API-Version': '2' } });
    expect(p.allowed).toEqual([]);
    expect(p.warnings[0]).toContain('overwriteBase');
    expect(p(wire({ 'x-api-version': '3' }))).toEqual({});
  });

  it('lets the client replace a non-credential base header when overwriteBase is on', () => {
    const p = policy({
      globalAllowlist: ['X-Api-Version'],
      baseHeaders: { 'X-API-Version': '2' },
      overwriteBase: true,
    });
    expect(p(wire({ 'x-api-version': '3' }))).toEqual({ 'x-api-version': '3' });
  });

  it('never replaces a configured Authorization base header, even with overwriteBase', () => {
    const p = policy({
      globalAllowlist: ['Authorization'],
      baseHeaders: { authorization: 'Bearer operator' },
      overwriteBase: true,
    });
    expect(p(wire({ authorization: 'Bearer client' }))).toEqual({});
  });

  it('ignores X-Upstream-Authorization when the operator configured an Authorization header', () => {
    for (const upstreamAuthType of ['none', 'forward'] as const) {
      const p = policy({ upstreamAuthType, baseHeaders: { Authorization: 'Bearer operator' }, overwriteBase: true });
      expect(p.upstreamAuthorization).toBe(false);
      expect(p(wire({ 'x-upstream-authorization': 'Bearer client' }))).toEqual({});
    }
  });
});

describe('createPassthroughPolicy: Authorization and X-Upstream-Authorization', () => {
  it.each(CREDENTIALED)('never passes a client Authorization to a %s upstream, even when allowlisted', (type) => {
    const p = policy({ globalAllowlist: ['Authorization', 'X-Tenant-Id'], upstreamAuthType: type });
    expect(p.allowed).toEqual(['x-tenant-id']);
    expect(p.warnings.join('\n')).toContain('never replaced');
    expect(p(wire({ authorization: 'Bearer client', 'x-tenant-id': 'acme' }))).toEqual({ 'x-tenant-id': 'acme' });
  });

  it.each(CREDENTIALED)('ignores X-Upstream-Authorization for a %s upstream (operator credential wins)', (type) => {
    const p = policy({ globalAllowlist: ['X-Upstream-Authorization'], upstreamAuthType: type });
    expect(p.upstreamAuthorization).toBe(false);
    expect(p(wire({ 'x-upstream-authorization': 'Bearer client' }))).toEqual({});
  });

  it.each(['none', 'forward'] as const)(
    'turns X-Upstream-Authorization into Authorization for a %s upstream',
    (type) => {
      const p = policy({ upstreamAuthType: type });
      expect(p.upstreamAuthorization).toBe(true);
      expect(p(wire({ 'x-upstream-authorization': 'Bearer upstream-token' }))).toEqual({
        authorization: 'Bearer upstream-token',
      });
    },
  );

  it('honours X-Upstream-Authorization without allowlisting it, sanitised', () => {
    const p = policy({ upstreamAuthType: 'none', globalAllowlist: [] });
    expect(p(wire({ 'x-upstream-authorization': ' Bearer t\r\nX-Evil: 1 ' }))).toEqual({
      authorization: 'Bearer tX-Evil: 1',
    });
  });

  it('never forwards X-Upstream-Authorization under its own name, even when allowlisted', () => {
    const p = policy({ upstreamAuthType: 'none', globalAllowlist: ['X-Upstream-Authorization'] });
    expect(p.allowed).toEqual([]);
    expect(p.warnings).toHaveLength(1);
    expect(p(wire({ 'x-upstream-authorization': 'Bearer u' }))).toEqual({ authorization: 'Bearer u' });
  });

  it('does not pass the client Authorization implicitly to a none upstream', () => {
    const p = policy({ upstreamAuthType: 'none' });
    expect(p(wire({ authorization: 'Bearer switchboard-token' }))).toEqual({});
  });

  it('passes an allowlisted Authorization to a none upstream, with a warning', () => {
    const p = policy({ upstreamAuthType: 'none', globalAllowlist: ['Authorization'] });
    expect(p.allowed).toEqual(['authorization']);
    expect(p.warnings[0]).toContain('prefer auth type forward');
    expect(p(wire({ authorization: 'Bearer c' }))).toEqual({ authorization: 'Bearer c' });
  });

  it('prefers X-Upstream-Authorization over an allowlisted Authorization for a none upstream', () => {
    const p = policy({ upstreamAuthType: 'none', globalAllowlist: ['Authorization'] });
    expect(p(wire({ authorization: 'Bearer sb', 'x-upstream-authorization': 'Bearer up' }))).toEqual({
      authorization: 'Bearer up',
    });
  });

  it('does not pass an allowlisted Authorization to a forward upstream (the credential layer sends the bearer)', () => {
    const p = policy({ upstreamAuthType: 'forward', globalAllowlist: ['Authorization'] });
    expect(p.allowed).toEqual([]);
    expect(p(wire({ authorization: 'Bearer c' }))).toEqual({});
  });

  it('skips an empty X-Upstream-Authorization', () => {
    const p = policy({ upstreamAuthType: 'none' });
    expect(p(wire({ 'x-upstream-authorization': ' \r\n' }))).toEqual({});
  });

  it('does not honour an X-Upstream-Authorization the client nominated in Connection', () => {
    const p = policy({ upstreamAuthType: 'none' });
    expect(p(wire({ connection: 'X-Upstream-Authorization', 'x-upstream-authorization': 'Bearer u' }))).toEqual({});
  });

  it('result merged in the documented order never replaces an operator credential', () => {
    const base = { 'x-api-key': 'k' };
    const credential = { authorization: 'Bearer operator' };
    for (const type of CREDENTIALED) {
      const p = policy({
        upstreamAuthType: type,
        globalAllowlist: ['Authorization', 'X-Api-Key'],
        baseHeaders: base,
        overwriteBase: true,
      });
      const merged = {
        ...base,
        ...credential,
        ...p(
          wire({ authorization: 'Bearer client', 'x-upstream-authorization': 'Bearer client2', 'x-api-key': 'mine' }),
        ),
      };
      expect(merged.authorization).toBe('Bearer operator');
      expect(merged['x-api-key']).toBe('mine');
    }
  });
});
