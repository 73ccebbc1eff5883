/**
 * The SQLite usage writer thread (`src/store/sqlite-usage-writer.ts`): real better-sqlite3
 * connections on a temporary file, the worker loaded from `src/` (type stripping).
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import { SqliteUsageWriter } from '../../../src/store/sqlite-usage-writer.js';
import type { UsageRow } from '../../../src/store/types.js';

const tmp = await mkdtemp(join(tmpdir(), 'swb-writer-'));
let files = 0;

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
});

/** A file with one table `t(v integer not null)`, WAL as `openDatabase()` sets it. */
function scratchFile(): string {
  const path = join(tmp, `w-${++files}.db`);
  const db = new BetterSqlite3(path);
  db.pragma('journal_mode = WAL');
  db.exec('create table t (v integer not null)');
  db.close();
  return path;
}

function values(path: string): number[] {
  const db = new BetterSqlite3(path, { readonly: true });
  try {
    return (db.prepare('select v from t order by v').all() as { v: number }[]).map((r) => r.v);
  } finally {
    db.close();
  }
}

function row(i: number): UsageRow {
  return {
    ts: Date.UTC(2026, 0, 1) + i,
    tokenId: 'tok',
    jti: 'jti',
    subject: 'alice',
    endpoint: '/mcp',
    httpMethod: 'POST',
    mcpMethod: 'tools/call',
    httpStatus: 200,
    latencyMs: 1,
    bytesIn: 10,
    bytesOut: 20,
    blocked: false,
  };
}

describe('SqliteUsageWriter', () => {
  it('runs a batch of statements in one transaction: all rows, or none when one fails', async () => {
    const path = scratchFile();
    const writer = new SqliteUsageWriter({ path, busyTimeout: 1_000 });
    try {
      await writer.run([
        { sql: 'insert into t (v) values (?), (?)', params: [1, 2] },
        { sql: 'insert into t (v) values (?)', params: [3] },
      ]);
      expect(values(path)).toEqual([1, 2, 3]);

      await expect(
        writer.run([
          { sql: 'insert into t (v) values (?)', params: [4] },
          { sql: 'insert into t (v) values (?)', params: [null] },
        ]),
      ).rejects.toThrow(/NOT NULL/);
      expect(values(path)).toEqual([1, 2, 3]);

      // The thread survives a failed batch.
      await writer.run([{ sql: 'insert into t (v) values (?)', params: [5] }]);
      expect(values(path)).toEqual([1, 2, 3, 5]);
    } finally {
      await writer.close();
    }
  });

  it('rejects SQL errors with SQLite’s message', async () => {
    const path = scratchFile();
    const writer = new SqliteUsageWriter({ path, busyTimeout: 1_000 });
    try {
      await expect(writer.run([{ sql: 'insert into nope (v) values (?)', params: [1] }])).rejects.toThrow(
        /no such table: nope/,
      );
    } finally {
      await writer.close();
    }
  });

  it('lets a batch posted before close() finish, then refuses new ones; close() is idempotent', async () => {
    const path = scratchFile();
    const writer = new SqliteUsageWriter({ path, busyTimeout: 1_000 });
    const params = Array.from({ length: 500 }, (_, i) => i);
    const inFlight = writer.run([{ sql: `insert into t (v) values ${params.map(() => '(?)').join(', ')}`, params }]);
    const closing = writer.close();
    await expect(inFlight).resolves.toBeUndefined();
    await closing;
    await writer.close();
    expect(values(path)).toHaveLength(500);
    await expect(writer.run([{ sql: 'insert into t (v) values (?)', params: [1] }])).rejects.toThrow(/closed/);
  });

  it('reports a thread that cannot open the database, and starts a new thread for the next batch', async () => {
    const path = join(tmp, 'missing-dir', 'x.db');
    const writer = new SqliteUsageWriter({ path, busyTimeout: 1_000 });
    try {
      await expect(writer.run([{ sql: 'select 1', params: [] }])).rejects.toThrow(/usage writer thread/);
      await expect(writer.run([{ sql: 'select 1', params: [] }])).rejects.toThrow(/usage writer thread/);
    } finally {
      await writer.close();
    }
  });
});

describe('openDatabase() on a SQLite file', () => {
  it('writes usage rows off the event loop: a timer queued before a batch runs before the batch is stored', async () => {
    const url = join(tmp, `usage-${++files}.db`);
    const db = await openDatabase({ url, dataDir: tmp, logger: silentLogger(), env: {} });
    try {
      await db.migrate();
      const order: string[] = [];
      setImmediate(() => order.push('event loop turn'));
      // In-thread, better-sqlite3 would write these synchronously inside the call's microtasks.
      await db.usage!.insert(Array.from({ length: 5_000 }, (_, i) => row(i)));
      order.push('batch stored');
      expect(order).toEqual(['event loop turn', 'batch stored']);

      // A failing chunk rolls back the whole batch (several INSERTs in one transaction).
      const bad = Array.from({ length: 2_500 }, (_, i) => row(i));
      bad[2_499] = { ...row(0), tokenId: null as unknown as string };
      await expect(db.usage!.insert(bad)).rejects.toMatchObject({ code: 'SWB_ERR_STORE_UNAVAILABLE' });
      const check = new BetterSqlite3(url, { readonly: true });
      try {
        expect(check.prepare('select count(*) as n from usage_log').get()).toEqual({ n: 5_000 });
      } finally {
        check.close();
      }
    } finally {
      await db.close();
    }
  });

  it('keeps writing in-thread for :memory: (a second connection would be another database)', async () => {
    const db = await openDatabase({ url: ':memory:', dataDir: tmp, logger: silentLogger(), env: {} });
    try {
      await db.migrate();
      await db.usage!.insert([row(1), row(2)]);
      const summary = await db.usage!.tokenUsage('tok', { days: 1, now: Date.UTC(2026, 0, 1, 1) });
      expect(summary).toMatchObject({ total: 2 });
    } finally {
      await db.close();
    }
  });
});
