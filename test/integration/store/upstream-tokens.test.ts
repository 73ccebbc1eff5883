/**
 * The token vault over real databases (a SQLite file and the shared PostgreSQL, one schema per
 * run): the store round-trips sealed values, the raw rows hold no token, and a row moved to
 * another principal or a value sealed under an unknown key does not open.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import pg from 'pg';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  deriveVaultKey,
  MAX_VAULT_SCOPES,
  MAX_VAULT_TOKEN_LENGTH,
  TokenVault,
  vaultKeyOf,
} from '../../../src/auth/token-vault.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database, UpstreamTokenStore } from '../../../src/store/types.js';
import { dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';

const postgresUp = await postgresGate('token vault tests');
const tmp = await mkdtemp(join(tmpdir(), 'swb-vault-'));
const schema = uniqueSchema('vault');

/** Reads every raw `upstream_tokens` row as text, past the stores. */
type RawRows = () => Promise<Record<string, unknown>[]>;

const targets = [
  {
    name: 'sqlite',
    available: true,
    async open(): Promise<{ db: Database; raw: RawRows }> {
      const file = join(tmp, 'vault.db');
      const db = await openDatabase({ url: file, dataDir: tmp, logger: silentLogger(), env: {} });
      const raw: RawRows = () => {
        const conn = new BetterSqlite3(file, { readonly: true });
        try {
          return Promise.resolve(conn.prepare('select * from upstream_tokens').all() as Record<string, unknown>[]);
        } finally {
          conn.close();
        }
      };
      return { db, raw };
    },
  },
  {
    name: 'postgres',
    available: postgresUp,
    async open(): Promise<{ db: Database; raw: RawRows }> {
      const db = await openDatabase({ url: POSTGRES_URL, schema, dataDir: tmp, logger: silentLogger(), env: {} });
      const raw: RawRows = async () => {
        const client = new pg.Client({ connectionString: POSTGRES_URL });
        await client.connect();
        try {
          const { rows } = await client.query<Record<string, unknown>>(`select * from "${schema}".upstream_tokens`);
          return rows;
        } finally {
          await client.end();
        }
      };
      return { db, raw };
    },
  },
];

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  if (postgresUp) await dropSchema(schema);
});

const ACCESS = 'upstream-access-token-0123456789abcdef';
const REFRESH = 'upstream-refresh-token-fedcba9876543210';

describe.each(targets)('token vault on $name', (target) => {
  describe.skipIf(!target.available)(target.name, () => {
    let db: Database;
    let raw: RawRows;
    let store: UpstreamTokenStore;
    let now = 1_800_000_000_000;
    const clock = () => now;
    const current = deriveVaultKey('a'.repeat(32), 'k2');
    const previous = deriveVaultKey('b'.repeat(32), 'k1');

    beforeAll(async () => {
      ({ db, raw } = await target.open());
      await db.migrate();
      store = db.upstreamTokens!;
    });

    afterAll(async () => {
      await db?.close();
    });

    it('stores tokens sealed: the raw row holds neither token, nor any part of one, and names the key', async () => {
      const vault = new TokenVault({ store, keys: [current], clock });
      await vault.put('alice', 'github', {
        accessToken: ACCESS,
        refreshToken: REFRESH,
        expiresAt: now + 3_600_000,
        scopes: ['repo', 'read:user'],
        upstreamSubject: 'alice-upstream',
      });
      const rows = (await raw()).filter((r) => r.principal === 'alice');
      expect(rows).toHaveLength(1);
      const text = JSON.stringify(rows[0]);
      for (const secret of [ACCESS, REFRESH]) {
        expect(text).not.toContain(secret);
        expect(text).not.toContain(secret.slice(0, 16));
        expect(text).not.toContain(Buffer.from(secret).toString('base64').slice(0, 16));
        expect(text).not.toContain(Buffer.from(secret).toString('hex').slice(0, 16));
      }
      expect(rows[0]!.key_id).toBe('k2');
      expect(await vault.get('alice', 'github')).toEqual({
        principal: 'alice',
        server: 'github',
        accessToken: ACCESS,
        refreshToken: REFRESH,
        expiresAt: now + 3_600_000,
        scopes: ['repo', 'read:user'],
        upstreamSubject: 'alice-upstream',
        createdAt: now,
        updatedAt: now,
      });
    });

    it('seals each value under a fresh IV: the same token stored twice gives different ciphertexts', async () => {
      const vault = new TokenVault({ store, keys: [current], clock });
      await vault.put('iv-user', 'github', { accessToken: ACCESS });
      const first = (await store.get('iv-user', 'github'))!.accessToken;
      await vault.put('iv-user', 'github', { accessToken: ACCESS });
      const second = (await store.get('iv-user', 'github'))!.accessToken;
      expect(second).not.toBe(first);
      expect((await vault.get('iv-user', 'github'))?.accessToken).toBe(ACCESS);
    });

    it('does not open a row moved to another principal or server (the AAD binds both)', async () => {
      const vault = new TokenVault({ store, keys: [current], clock });
      await vault.put('mallory', 'github', { accessToken: 'mallory-token' });
      const alice = (await store.get('alice', 'github'))!;
      // Alice's sealed values copied onto Mallory's row, and onto another server of Alice.
      await store.put({ ...alice, principal: 'mallory' });
      await store.put({ ...alice, server: 'notion' });
      expect(await vault.get('mallory', 'github')).toBeUndefined();
      expect(await vault.get('alice', 'notion')).toBeUndefined();
      expect((await vault.get('alice', 'github'))?.accessToken).toBe(ACCESS);
      // The refresh token cannot stand in for the access token either.
      await store.put({ ...alice, server: 'swap', accessToken: alice.refreshToken!, refreshToken: alice.accessToken });
      expect(await vault.get('alice', 'swap')).toBeUndefined();
    });

    it('rotates keys: the first seals, the others still open; a value under an unlisted key reads as absent', async () => {
      const old = new TokenVault({ store, keys: [previous], clock });
      await old.put('bob', 'github', { accessToken: 'bob-token' });
      const rotated = new TokenVault({ store, keys: [current, previous], clock });
      expect((await rotated.get('bob', 'github'))?.accessToken).toBe('bob-token');
      await rotated.put('bob', 'github', { accessToken: 'bob-token-2' });
      expect((await store.get('bob', 'github'))?.keyId).toBe('k2');
      const withoutCurrent = new TokenVault({ store, keys: [previous], clock });
      expect(await withoutCurrent.get('bob', 'github')).toBeUndefined();
      // Same id, other material: the tag check fails, so nothing opens.
      const impostor = new TokenVault({ store, keys: [vaultKeyOf(Buffer.alloc(32, 7), 'k2')], clock });
      expect(await impostor.get('bob', 'github')).toBeUndefined();
    });

    it('keeps the first creation time on replacement, records uses without going backwards, lists and deletes', async () => {
      const vault = new TokenVault({ store, keys: [current], clock });
      now = 1_800_000_100_000;
      await vault.put('carol', 'github', { accessToken: 't1' });
      now += 5_000;
      await vault.put('carol', 'github', { accessToken: 't2', scopes: ['a'] });
      await vault.put('carol', 'notion', { accessToken: 't3' });
      await store.touch('carol', 'github', now + 10);
      await store.touch('carol', 'github', now + 5);
      const carol = await vault.connections({ principal: 'carol' });
      expect(carol.map((c) => c.server)).toEqual(['github', 'notion']);
      expect(carol[0]).toEqual({
        principal: 'carol',
        server: 'github',
        scopes: ['a'],
        createdAt: 1_800_000_100_000,
        updatedAt: now,
        lastUsedAt: now + 10,
      });
      expect(JSON.stringify(await vault.connections())).not.toMatch(/t1|t2|t3|token/);
      expect((await vault.connections({ server: 'notion' })).map((c) => c.principal)).toEqual(['alice', 'carol']);
      expect(await vault.delete('carol', 'github')).toBe(true);
      expect(await vault.delete('carol', 'github')).toBe(false);
      expect(await vault.get('carol', 'github')).toBeUndefined();
    });
  });
});

describe('vault bounds', () => {
  it('refuses an empty token, one over 16 KiB, and more than 64 scopes, before touching the store', async () => {
    const store = {
      get: () => Promise.reject(new Error('the store must not be reached')),
    } as unknown as UpstreamTokenStore;
    const vault = new TokenVault({ store, keys: [deriveVaultKey('x'.repeat(32), 'a')] });
    await expect(vault.put('p', 's', { accessToken: '' })).rejects.toThrow(RangeError);
    await expect(vault.put('p', 's', { accessToken: 'a'.repeat(MAX_VAULT_TOKEN_LENGTH + 1) })).rejects.toThrow(
      RangeError,
    );
    await expect(
      vault.put('p', 's', { accessToken: 'a', refreshToken: 'r'.repeat(MAX_VAULT_TOKEN_LENGTH + 1) }),
    ).rejects.toThrow(RangeError);
    await expect(
      vault.put('p', 's', {
        accessToken: 'a',
        scopes: Array.from({ length: MAX_VAULT_SCOPES + 1 }, (_, i) => `s${i}`),
      }),
    ).rejects.toThrow(RangeError);
    // At the bound: accepted (reaches the store).
    await expect(vault.put('p', 's', { accessToken: 'a'.repeat(MAX_VAULT_TOKEN_LENGTH) })).rejects.toThrow(
      /must not be reached/,
    );
  });
});

describe('vault keys', () => {
  it('refuses an empty key list, duplicate ids, malformed ids and material of the wrong length', () => {
    expect(() => new TokenVault({ store: {} as UpstreamTokenStore, keys: [] })).toThrow(TypeError);
    const k = deriveVaultKey('x'.repeat(32), 'a');
    expect(() => new TokenVault({ store: {} as UpstreamTokenStore, keys: [k, k] })).toThrow(/share the id/);
    expect(() => deriveVaultKey('x'.repeat(32), 'bad id')).toThrow(TypeError);
    expect(() => vaultKeyOf(Buffer.alloc(16))).toThrow(/32 bytes/);
    expect(vaultKeyOf(Buffer.alloc(32, 1)).id).toMatch(/^d[A-Za-z0-9_-]{8}$/);
  });
});

describe('values sealed outside the token rows', () => {
  it('open under the same context with any configured key, and under nothing else', () => {
    const store = {} as UpstreamTokenStore;
    const old = deriveVaultKey('o'.repeat(32), 'old');
    const current = deriveVaultKey('n'.repeat(32), 'new');
    const before = new TokenVault({ store, keys: [old] });
    const sealed = before.sealValue('client-secret\0https://as.example', 'client-secret-value');
    expect(sealed).toMatch(/^old\.[A-Za-z0-9_-]+$/);
    expect(sealed).not.toContain('client-secret-value');
    // Rotated: the new key seals, the old one still opens.
    const rotated = new TokenVault({ store, keys: [current, old] });
    expect(rotated.openValue('client-secret\0https://as.example', sealed)).toBe('client-secret-value');
    expect(rotated.sealValue('c', 'v')).toMatch(/^new\./);
    // Another context, an altered value, an unknown key or no key id: nothing.
    expect(rotated.openValue('client-secret\0https://other.example', sealed)).toBeUndefined();
    expect(rotated.openValue('client-secret\0https://as.example', `${sealed.slice(0, -2)}AA`)).toBeUndefined();
    expect(
      new TokenVault({ store, keys: [current] }).openValue('client-secret\0https://as.example', sealed),
    ).toBeUndefined();
    expect(rotated.openValue('c', sealed.slice(sealed.indexOf('.') + 1))).toBeUndefined();
  });
});
