/**
 * The storage ports against real databases: a SQLite file and the shared PostgreSQL (one schema
 * per run, dropped afterwards). Every test runs on both.
 */
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { once } from 'node:events';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase, type OpenDatabaseOptions } from '../../../src/store/database.js';
import { MIGRATIONS } from '../../../src/store/migrations.js';
import type { Database, TokenRecord } from '../../../src/store/types.js';
import { dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';

const postgresUp = await postgresGate('store tests');
const tmp = await mkdtemp(join(tmpdir(), 'swb-store-'));
const schemas: string[] = [];
let files = 0;

type Extra = Partial<Pick<OpenDatabaseOptions, 'touchFlushInterval' | 'clock'>>;

/** A new, empty database location: how to open it here, and how to name it to a child process. */
interface Location {
  open: (extra?: Extra) => Promise<Database>;
  /** Arguments of `migrate-child.ts`. */
  args: string[];
}

/** One database to test against; `fresh()` makes a new, empty location of the same kind. */
interface Target {
  name: 'sqlite' | 'postgres';
  available: boolean;
  fresh(): Location;
}

const targets: Target[] = [
  {
    name: 'sqlite',
    available: true,
    fresh() {
      const url = join(tmp, `store-${++files}.db`);
      return {
        open: (extra = {}) => openDatabase({ url, dataDir: tmp, logger: silentLogger(), env: {}, ...extra }),
        args: [url],
      };
    },
  },
  {
    name: 'postgres',
    available: postgresUp,
    fresh() {
      const schema = uniqueSchema('store');
      schemas.push(schema);
      return {
        open: (extra = {}) =>
          openDatabase({ url: POSTGRES_URL, schema, dataDir: tmp, logger: silentLogger(), env: {}, ...extra }),
        args: [POSTGRES_URL, schema],
      };
    },
  },
];

const CHILD = fileURLToPath(new URL('./migrate-child.ts', import.meta.url));

/**
 * Starts one `migrate-child.ts` process per entry of `count`, releases them together once all
 * have opened the database, and resolves to the migration names each applied.
 */
async function migrateInChildren(count: number, args: string[]): Promise<string[][]> {
  const children = Array.from({ length: count }, () =>
    spawn(process.execPath, ['--import', 'tsx', CHILD, ...args], { stdio: ['pipe', 'pipe', 'inherit'] }),
  );
  const outputs = children.map((child) => {
    let text = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (text += chunk));
    const ready = new Promise<void>((resolve) => {
      const check = (): void => {
        if (text.startsWith('ready\n')) {
          child.stdout.off('data', check);
          resolve();
        }
      };
      child.stdout.on('data', check);
    });
    const exited = once(child, 'exit').then(([code]) => {
      if (code !== 0) throw new Error(`migrate-child exited with ${String(code)}: ${text}`);
      return JSON.parse(text.slice('ready\n'.length)) as string[];
    });
    return { ready, exited };
  });
  try {
    await Promise.race([Promise.all(outputs.map((o) => o.ready)), Promise.all(outputs.map((o) => o.exited))]);
    for (const child of children) child.stdin.end('go\n');
    return await Promise.all(outputs.map((o) => o.exited));
  } finally {
    for (const child of children) if (child.exitCode === null) child.kill();
  }
}

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  for (const schema of schemas) await dropSchema(schema);
});

const MIGRATION_NAMES = Object.keys(MIGRATIONS).sort();

function token(overrides: Partial<TokenRecord> = {}): TokenRecord {
  const id = randomUUID();
  return {
    id,
    jti: randomUUID(),
    name: `token ${id.slice(0, 8)}`,
    tokenHash: 'a'.repeat(64),
    subject: `user-${randomUUID()}`,
    permissions: ['servers.use', 'tools.execute'],
    servers: [],
    tools: [],
    createdAt: Date.now(),
    ...overrides,
  };
}

/** The store's batched-touch flush, which `openDatabase()` always provides. */
async function flush(db: Database): Promise<void> {
  expect(typeof db.tokens.flush).toBe('function');
  await db.tokens.flush?.();
}

describe.each(targets)('stores on $name', (target) => {
  describe.skipIf(!target.available)(`${target.name}`, () => {
    let open: Location['open'];
    let db: Database;
    /** A second handle on the same data, to see what really reached the database. */
    let observer: Database;
    let firstMigration: string[];

    beforeAll(async () => {
      open = target.fresh().open;
      db = await open({ touchFlushInterval: 1_000 });
      firstMigration = await db.migrate();
      observer = await open();
    });

    afterAll(async () => {
      await observer?.close();
      await db?.close();
    });

    describe('migrations', () => {
      it('applies every migration on an empty database, then reports nothing to do', async () => {
        expect(db.dialect).toBe(target.name);
        expect(firstMigration).toEqual(MIGRATION_NAMES);
        expect(await db.migrate()).toEqual([]);
        expect(await observer.migrate()).toEqual([]);
      });

      it('opens one new location from eight connections at once (concurrent schema creation is not an error)', async () => {
        const location = target.fresh();
        const opened = await Promise.allSettled(Array.from({ length: 8 }, () => location.open()));
        const failures = opened.filter((r) => r.status === 'rejected').map((r) => String(r.reason));
        for (const r of opened) if (r.status === 'fulfilled') await r.value.close();
        expect(failures).toEqual([]);
      });

      it('applies each migration exactly once when three processes migrate the same database at once', async () => {
        const location = target.fresh();
        const results = await migrateInChildren(3, location.args);
        expect(results.flat()).toEqual(MIGRATION_NAMES);
        const check = await location.open();
        try {
          expect(await check.migrate()).toEqual([]);
          await check.tokens.create(token());
          expect(await check.tokens.list()).toHaveLength(1);
        } finally {
          await check.close();
        }
      });
    });

    describe('tokens', () => {
      it('stores a token and reads it back by id and by jti, optional fields absent or present', async () => {
        const minimal = token();
        const full = token({
          servers: ['everything', 'hdr'],
          tools: ['echo*', 'get_*'],
          permissions: ['admin.*'],
          expiresAt: Date.now() + 86_400_000,
          revokedAt: Date.now() + 1,
          lastUsedAt: Date.now() + 2,
          createdBy: 'admin',
        });
        await db.tokens.create(minimal);
        await db.tokens.create(full);
        expect(await db.tokens.get(minimal.id)).toStrictEqual(minimal);
        expect(await db.tokens.getByJti(minimal.jti)).toStrictEqual(minimal);
        expect(await db.tokens.get(full.id)).toStrictEqual(full);
        expect(await db.tokens.getByJti(full.jti)).toStrictEqual(full);
      });

      it('returns undefined for an unknown id or jti', async () => {
        expect(await db.tokens.get(randomUUID())).toBeUndefined();
        expect(await db.tokens.getByJti(randomUUID())).toBeUndefined();
      });

      it('rejects a second token with the same jti, or the same id, with SWB_ERR_STORE_CONFLICT', async () => {
        const first = token();
        await db.tokens.create(first);
        await expect(db.tokens.create(token({ jti: first.jti }))).rejects.toMatchObject({
          code: 'SWB_ERR_STORE_CONFLICT',
          status: 409,
        });
        await expect(db.tokens.create(token({ id: first.id }))).rejects.toMatchObject({
          code: 'SWB_ERR_STORE_CONFLICT',
        });
        expect(await db.tokens.get(first.id)).toStrictEqual(first);
      });

      it('lists tokens newest first, all of them or those of one subject', async () => {
        const subject = `user-${randomUUID()}`;
        const base = Date.now();
        const old = token({ subject, createdAt: base - 3_000 });
        const newest = token({ subject, createdAt: base });
        const middle = token({ subject, createdAt: base - 1_000 });
        const other = token({ createdAt: base - 2_000 });
        for (const t of [old, newest, other, middle]) await db.tokens.create(t);

        expect((await db.tokens.list({ subject })).map((t) => t.id)).toEqual([newest.id, middle.id, old.id]);
        const all = await db.tokens.list();
        const ids = all.map((t) => t.id);
        expect(ids).toEqual(expect.arrayContaining([old.id, newest.id, middle.id, other.id]));
        const times = all.map((t) => t.createdAt);
        expect(times).toEqual([...times].sort((a, b) => b - a));
        expect(await db.tokens.list({ subject: `nobody-${randomUUID()}` })).toEqual([]);
      });

      it('revokes a token, keeps the first revocation time when repeated, and returns false for an unknown id', async () => {
        const t = token();
        await db.tokens.create(t);
        expect(await db.tokens.revoke(t.id, 1_000)).toBe(true);
        expect(await db.tokens.revoke(t.id, 2_000)).toBe(true);
        expect((await db.tokens.get(t.id))?.revokedAt).toBe(1_000);
        expect(await db.tokens.revoke(randomUUID(), 3_000)).toBe(false);
      });

      it('revokes every token minted from a token, transitively, and only those', async () => {
        const root = token();
        const child = token({ parentId: root.id });
        const grandchild = token({ parentId: child.id });
        const sibling = token();
        const early = token({ parentId: child.id, revokedAt: 500 });
        for (const t of [root, child, grandchild, sibling, early]) await db.tokens.create(t);
        expect((await db.tokens.get(grandchild.id))?.parentId).toBe(child.id);

        expect(await db.tokens.revoke(child.id, 1_000)).toBe(true);
        expect((await db.tokens.get(root.id))?.revokedAt).toBeUndefined();
        expect((await db.tokens.get(sibling.id))?.revokedAt).toBeUndefined();
        expect((await db.tokens.get(child.id))?.revokedAt).toBe(1_000);
        expect((await db.tokens.get(grandchild.id))?.revokedAt).toBe(1_000);
        expect((await db.tokens.get(early.id))?.revokedAt).toBe(500);
      });

      it('lists the ancestors of a token nearest first, and none for a root or an unknown id', async () => {
        const root = token();
        const child = token({ parentId: root.id });
        const grandchild = token({ parentId: child.id });
        for (const t of [root, child, grandchild]) await db.tokens.create(t);
        expect((await db.tokens.ancestors(grandchild.id)).map((t) => t.id)).toEqual([child.id, root.id]);
        expect(await db.tokens.ancestors(child.id)).toStrictEqual([root]);
        expect(await db.tokens.ancestors(root.id)).toEqual([]);
        expect(await db.tokens.ancestors(randomUUID())).toEqual([]);
      });

      it('keeps only the latest touch per token and writes it once the flush interval has passed', async () => {
        const t = token();
        await db.tokens.create(t);
        const at = t.createdAt;
        vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
        try {
          await db.tokens.touch(t.id, at + 100);
          await db.tokens.touch(t.id, at + 300);
          await db.tokens.touch(t.id, at + 200);
          // This handle already answers with the pending time; the database has nothing yet.
          expect((await db.tokens.get(t.id))?.lastUsedAt).toBe(at + 300);
          expect((await observer.tokens.get(t.id))?.lastUsedAt).toBeUndefined();
          await vi.advanceTimersByTimeAsync(999);
          expect((await observer.tokens.get(t.id))?.lastUsedAt).toBeUndefined();
          await vi.advanceTimersByTimeAsync(1);
          await vi.waitFor(async () => expect((await observer.tokens.get(t.id))?.lastUsedAt).toBe(at + 300));
        } finally {
          vi.useRealTimers();
        }
      });

      it('writes pending touches on close, and ignores touches after close', async () => {
        const t = token();
        await db.tokens.create(t);
        const writer = await open();
        await writer.tokens.touch(t.id, t.createdAt + 50);
        expect((await observer.tokens.get(t.id))?.lastUsedAt).toBeUndefined();
        await writer.close();
        expect((await observer.tokens.get(t.id))?.lastUsedAt).toBe(t.createdAt + 50);
        await writer.tokens.touch(t.id, t.createdAt + 60);
        await writer.close();
        expect((await observer.tokens.get(t.id))?.lastUsedAt).toBe(t.createdAt + 50);
      });

      it('never moves a stored last-used time backwards', async () => {
        const t = token();
        await db.tokens.create(t);
        await db.tokens.touch(t.id, t.createdAt + 500);
        await flush(db);
        await observer.tokens.touch(t.id, t.createdAt + 400);
        await flush(observer);
        expect((await observer.tokens.get(t.id))?.lastUsedAt).toBe(t.createdAt + 500);
      });

      it('ignores a touch for an unknown token', async () => {
        await db.tokens.touch(randomUUID(), Date.now());
        await expect(flush(db)).resolves.toBeUndefined();
      });
    });

    describe('servers', () => {
      it('inserts, replaces and deletes a runtime server; deleting an unknown one returns false', async () => {
        const name = `srv-${randomUUID().slice(0, 8)}`;
        const config = { url: 'http://127.0.0.1:9000/mcp', auth: { type: 'bearer', token: '${HDR_TOKEN}' } };
        await db.servers.put({ name, config, createdAt: 1_000, updatedAt: 1_000, createdBy: 'admin' });
        expect(await db.servers.get(name)).toStrictEqual({
          name,
          config,
          createdAt: 1_000,
          updatedAt: 1_000,
          createdBy: 'admin',
        });

        const replaced = { command: 'npx', args: ['-y', '@modelcontextprotocol/server-everything'] };
        await db.servers.put({ name, config: replaced, createdAt: 1_000, updatedAt: 2_000 });
        expect(await db.servers.get(name)).toStrictEqual({
          name,
          config: replaced,
          createdAt: 1_000,
          updatedAt: 2_000,
        });
        expect((await db.servers.list()).filter((s) => s.name === name)).toHaveLength(1);

        expect(await db.servers.delete(name)).toBe(true);
        expect(await db.servers.get(name)).toBeUndefined();
        expect(await db.servers.delete(name)).toBe(false);
      });

      it('lists servers by name', async () => {
        const prefix = `list-${randomUUID().slice(0, 8)}`;
        for (const n of ['c', 'a', 'b']) {
          await db.servers.put({
            name: `${prefix}-${n}`,
            config: { url: `http://${n}.test/mcp` },
            createdAt: 1,
            updatedAt: 1,
          });
        }
        const names = (await db.servers.list()).map((s) => s.name).filter((n) => n.startsWith(prefix));
        expect(names).toEqual([`${prefix}-a`, `${prefix}-b`, `${prefix}-c`]);
      });
    });

    describe('settings', () => {
      it('round-trips JSON values of every kind', async () => {
        const values: unknown[] = [
          { keys: [{ kid: 'k1', alg: 'HS256' }], nested: { deep: [1, 2.5, null, true] } },
          ['X-Tenant-Id', 'X-Request-Id'],
          'a string with "quotes" and ünïcödé',
          42,
          false,
          null,
        ];
        for (const [i, value] of values.entries()) {
          const key = `k-${randomUUID()}-${i}`;
          await db.settings.set(key, value);
          expect(await db.settings.get(key)).toStrictEqual(value);
        }
      });

      it('replaces a value, deletes it when set to undefined, and returns undefined for an unknown key', async () => {
        const key = `passthrough-${randomUUID()}`;
        expect(await db.settings.get(key)).toBeUndefined();
        await db.settings.set(key, { headers: ['X-A'] });
        await db.settings.set(key, { headers: ['X-B'] });
        expect(await db.settings.get<{ headers: string[] }>(key)).toStrictEqual({ headers: ['X-B'] });
        expect(await observer.settings.get(key)).toStrictEqual({ headers: ['X-B'] });
        await db.settings.set(key, undefined);
        expect(await db.settings.get(key)).toBeUndefined();
      });

      it('setIfAbsent: of writers racing on one key, the first stored wins for every one of them', async () => {
        const key = `secret-${randomUUID()}`;
        // Two connections (two replicas) writing at once, several times each.
        const answers = await Promise.all(
          ['a', 'b', 'c', 'd'].map((v, i) => (i % 2 ? observer : db).settings.setIfAbsent(key, { v })),
        );
        const stored = await db.settings.get<{ v: string }>(key);
        expect(stored).toBeDefined();
        for (const a of answers) expect(a).toStrictEqual(stored);
        // Later writers never replace it.
        expect(await observer.settings.setIfAbsent(key, { v: 'late' })).toStrictEqual(stored);
        expect(await db.settings.get(key)).toStrictEqual(stored);
      });
    });

    describe('lifecycle', () => {
      it('answers ping while open; after close, ping is false and queries reject with SWB_ERR_STORE_UNAVAILABLE', async () => {
        const handle = await open();
        expect(await handle.ping()).toBe(true);
        await handle.close();
        expect(await handle.ping()).toBe(false);
        await expect(handle.tokens.get(randomUUID())).rejects.toMatchObject({ code: 'SWB_ERR_STORE_UNAVAILABLE' });
      });
    });
  });
});
