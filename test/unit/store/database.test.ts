/**
 * Choosing and opening the database: URL forms, defaults, SQLite pragmas, startup errors. Needs
 * no PostgreSQL server (the stores themselves are tested in test/integration/store).
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import BetterSqlite3 from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import {
  openDatabase,
  parseDatabaseUrl,
  redactUrl,
  resolveDataDir,
  type OpenDatabaseOptions,
} from '../../../src/store/database.js';
import { MIGRATIONS } from '../../../src/store/migrations.js';
import type { Database } from '../../../src/store/types.js';

let dir: string;
const opened: Database[] = [];

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swb-db-'));
});

afterEach(async () => {
  for (const db of opened.splice(0)) await db.close();
  await rm(dir, { recursive: true, force: true });
});

async function open(options: Partial<OpenDatabaseOptions> = {}): Promise<Database> {
  const db = await openDatabase({ dataDir: join(dir, 'data'), logger: silentLogger(), env: {}, ...options });
  opened.push(db);
  return db;
}

describe('parseDatabaseUrl', () => {
  const dataDir = '/var/lib/switchboard';

  it.each([
    [undefined, resolve(dataDir, 'switchboard.db')],
    ['', resolve(dataDir, 'switchboard.db')],
    ['   ', resolve(dataDir, 'switchboard.db')],
  ])('uses switchboard.db in the data directory when the URL is %j', (url, path) => {
    expect(parseDatabaseUrl(url, dataDir)).toEqual({ dialect: 'sqlite', path, isDefault: true });
  });

  it.each([
    ['/srv/sb/file.db', '/srv/sb/file.db'],
    ['relative/file.db', resolve('relative/file.db')],
    ['sqlite:/srv/sb/file.db', '/srv/sb/file.db'],
    ['sqlite:relative.db', resolve('relative.db')],
    ['sqlite:///srv/sb/file.db', '/srv/sb/file.db'],
    ['sqlite://relative.db', resolve('relative.db')],
    ['file:/srv/sb/file.db', '/srv/sb/file.db'],
    ['file:///srv/sb/my%20file.db', '/srv/sb/my file.db'],
    ['file:relative.db', resolve('relative.db')],
  ])('reads %s as the SQLite file %s', (url, path) => {
    expect(parseDatabaseUrl(url, dataDir)).toEqual({ dialect: 'sqlite', path, isDefault: false });
  });

  it.each([':memory:', 'sqlite::memory:', 'sqlite://:memory:'])('reads %s as an in-memory SQLite database', (url) => {
    expect(parseDatabaseUrl(url, dataDir)).toEqual({ dialect: 'sqlite', path: ':memory:', isDefault: false });
  });

  it.each([
    'postgres://postgres@127.0.0.1:5432/test',
    'postgresql://user:secret@db.internal/switchboard?sslmode=require',
    'POSTGRES://host/db',
  ])('reads %s as PostgreSQL', (url) => {
    expect(parseDatabaseUrl(url, dataDir)).toEqual({ dialect: 'postgres', url });
  });

  it.each(['mysql://root@localhost/db', 'redis://127.0.0.1:6379', 'http://example.com/db', 'sqlite:', 'file:'])(
    'rejects %s with SWB_ERR_CONFIG_INVALID',
    (url) => {
      expect(() => parseDatabaseUrl(url, dataDir)).toThrow(expect.objectContaining({ code: 'SWB_ERR_CONFIG_INVALID' }));
    },
  );

  it('never repeats a password in its error message', () => {
    expect(() => parseDatabaseUrl('mysql://root:hunter2@localhost/db', dataDir)).toThrow(
      expect.objectContaining({ message: expect.not.stringContaining('hunter2') as unknown }),
    );
  });
});

describe('redactUrl', () => {
  it('replaces the password and keeps everything else', () => {
    expect(redactUrl('postgres://sb:s3cr%2Ft@db:5432/prod?sslmode=require')).toBe(
      'postgres://sb:***@db:5432/prod?sslmode=require',
    );
  });

  it('leaves URLs without a password unchanged', () => {
    expect(redactUrl('postgres://postgres@127.0.0.1:5432/test')).toBe('postgres://postgres@127.0.0.1:5432/test');
  });
});

describe('resolveDataDir', () => {
  it('uses dataDir as loaded, else .switchboard next to the config file', () => {
    expect(resolveDataDir({ dataDir: '/data', source: '/etc/sb/switchboard.yaml' })).toBe('/data');
    expect(resolveDataDir({ source: '/etc/sb/switchboard.yaml' })).toBe('/etc/sb/.switchboard');
    expect(resolveDataDir({})).toBe(resolve('.switchboard'));
  });
});

describe('openDatabase', () => {
  it('creates the data directory and switchboard.db in WAL mode when no URL is given', async () => {
    const db = await open({ dataDir: join(dir, 'nested', 'data') });
    const path = join(dir, 'nested', 'data', 'switchboard.db');
    expect(db.dialect).toBe('sqlite');
    expect(db.location).toBe(path);
    expect(existsSync(path)).toBe(true);
    const raw = new BetterSqlite3(path, { readonly: true });
    try {
      expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    } finally {
      raw.close();
    }
  });

  it('does not migrate by itself: migrate() applies every migration', async () => {
    const db = await open();
    const raw = new BetterSqlite3(join(dir, 'data', 'switchboard.db'), { readonly: true });
    try {
      expect(raw.prepare("select name from sqlite_master where type = 'table' and name = 'tokens'").all()).toEqual([]);
    } finally {
      raw.close();
    }
    expect(await db.migrate()).toEqual(Object.keys(MIGRATIONS).sort());
  });

  it('takes SWITCHBOARD_DATABASE_URL from the environment, and an explicit url over it', async () => {
    const fromEnv = join(dir, 'env.db');
    const explicit = join(dir, 'explicit.db');
    expect((await open({ env: { SWITCHBOARD_DATABASE_URL: fromEnv } })).location).toBe(fromEnv);
    expect((await open({ url: explicit, env: { SWITCHBOARD_DATABASE_URL: fromEnv } })).location).toBe(explicit);
    expect((await open({ url: pathToFileURL(join(dir, 'url.db')).href })).location).toBe(join(dir, 'url.db'));
  });

  it('opens an in-memory database that works and leaves no file behind', async () => {
    const db = await open({ url: ':memory:' });
    expect(db.location).toBe(':memory:');
    await db.migrate();
    await db.settings.set('k', { v: 1 });
    expect(await db.settings.get('k')).toEqual({ v: 1 });
    expect(await db.ping()).toBe(true);
    expect(existsSync(join(dir, 'data'))).toBe(false);
  });

  it('fails with SWB_ERR_STORE_UNAVAILABLE when an explicit file is in a missing directory', async () => {
    await expect(open({ url: join(dir, 'missing', 'file.db') })).rejects.toMatchObject({
      code: 'SWB_ERR_STORE_UNAVAILABLE',
      status: 503,
    });
  });

  it('fails with SWB_ERR_CONFIG_INVALID for an unsupported URL scheme', async () => {
    await expect(open({ url: 'mysql://root@localhost/db' })).rejects.toMatchObject({ code: 'SWB_ERR_CONFIG_INVALID' });
  });

  it('fails at open with SWB_ERR_STORE_UNAVAILABLE when PostgreSQL cannot be reached, without the password', async () => {
    const error: unknown = await open({ url: 'postgres://sb:hunter2@127.0.0.1:1/db', connectTimeout: 2_000 }).catch(
      (e: unknown) => e,
    );
    expect(error).toMatchObject({ code: 'SWB_ERR_STORE_UNAVAILABLE' });
    expect((error as Error).message).toContain('postgres://sb:***@127.0.0.1:1/db');
    expect((error as Error).message).not.toContain('hunter2');
  });

  it('rejects a PostgreSQL schema name that is not a plain lower-case identifier, before connecting', async () => {
    await expect(open({ url: 'postgres://127.0.0.1:1/db', schema: 'x"; drop table tokens; --' })).rejects.toMatchObject(
      { code: 'SWB_ERR_CONFIG_INVALID' },
    );
  });
});
