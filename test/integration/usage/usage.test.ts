/**
 * The usage log end to end on a SQLite file and on the shared PostgreSQL (a schema per database,
 * dropped afterwards): the batched writer, the `usage_log` table, the analytics queries, the
 * seed-004 blocked-row rule with the real token service, the HTTP endpoints and
 * `switchboard usage`.
 */
import { randomUUID } from 'node:crypto';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import BetterSqlite3 from 'better-sqlite3';
import { SignJWT } from 'jose';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect } from 'kysely';
import pg from 'pg';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import { createTokenService, TOKEN_ISSUER } from '../../../src/auth/tokens.js';
import type { CliOutput } from '../../../src/cli/check.js';
import { runUsage } from '../../../src/cli/usage.js';
import { createUsageApi } from '../../../src/http/usage-api.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { blockedRowFor, createUsageLog } from '../../../src/observability/usage-log.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database, TokenRecord, UsageRow, UsageStore } from '../../../src/store/types.js';
import { KyselyUsageStore, type UsageTables } from '../../../src/store/usage-store.js';
import { dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';

const postgresUp = await postgresGate('usage log tests');
const tmp = await mkdtemp(join(tmpdir(), 'swb-usage-'));
const schemas: string[] = [];
let files = 0;

/** One fresh, migrated database and ways to look at it without going through the store. */
interface Fixture {
  db: Database;
  usage: UsageStore;
  /** A URL `switchboard usage --database-url` can open. */
  url: string;
  /** Opens another handle on the same data (closed by the caller). */
  reopen(): Promise<Database>;
  /** Runs one SQL query on a connection of its own. */
  query<T>(text: string): Promise<T[]>;
  /** A usage store on its own connection that reports every SQL statement it runs. */
  loggingStore(statements: string[]): { store: KyselyUsageStore; destroy: () => Promise<void> };
}

interface Target {
  name: 'sqlite' | 'postgres';
  available: boolean;
  fresh(): Promise<Fixture>;
}

const targets: Target[] = [
  {
    name: 'sqlite',
    available: true,
    async fresh() {
      const url = join(tmp, `usage-${++files}.db`);
      const open = () => openDatabase({ url, dataDir: tmp, logger: silentLogger(), env: {} });
      const db = await open();
      await db.migrate();
      return fixture(db, {
        url,
        reopen: open,
        async query<T>(text: string) {
          const conn = new BetterSqlite3(url, { readonly: true });
          try {
            return conn.prepare(text).all() as T[];
          } finally {
            conn.close();
          }
        },
        loggingStore(statements) {
          const kysely = new Kysely<UsageTables>({
            dialect: new SqliteDialect({ database: new BetterSqlite3(url) }),
            log: (event) => void statements.push(event.query.sql),
          });
          return {
            store: new KyselyUsageStore(kysely, { dialect: 'sqlite' }),
            destroy: () => kysely.destroy(),
          };
        },
      });
    },
  },
  {
    name: 'postgres',
    available: postgresUp,
    async fresh() {
      const schema = uniqueSchema('usage');
      schemas.push(schema);
      const open = () => openDatabase({ url: POSTGRES_URL, schema, dataDir: tmp, logger: silentLogger(), env: {} });
      const db = await open();
      await db.migrate();
      const searchPath = (c: { executeQuery: (q: CompiledQuery) => Promise<unknown> }) =>
        c.executeQuery(CompiledQuery.raw(`set search_path to "${schema}"`));
      return fixture(db, {
        url: `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`,
        reopen: open,
        async query<T>(text: string) {
          const client = new pg.Client({ connectionString: POSTGRES_URL });
          await client.connect();
          try {
            await client.query(`set search_path to "${schema}"`);
            return (await client.query(text)).rows as T[];
          } finally {
            await client.end();
          }
        },
        loggingStore(statements) {
          const kysely = new Kysely<UsageTables>({
            dialect: new PostgresDialect({
              pool: new pg.Pool({ connectionString: POSTGRES_URL, max: 2 }),
              onCreateConnection: async (c) => void (await searchPath(c)),
            }),
            log: (event) => void statements.push(event.query.sql),
          });
          return {
            store: new KyselyUsageStore(kysely, { dialect: 'postgres' }),
            destroy: () => kysely.destroy(),
          };
        },
      });
    },
  },
];

function fixture(db: Database, rest: Omit<Fixture, 'db' | 'usage'>): Fixture {
  if (db.usage === undefined) throw new Error('openDatabase() returned a database without a usage store');
  return { db, usage: db.usage, ...rest };
}

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  for (const schema of schemas) await dropSchema(schema);
});

const NOW = Date.UTC(2026, 0, 15, 12, 0, 0);
const MINUTE = 60_000;
const HOUR = 3_600_000;
const DAY = 86_400_000;

function usageRow(overrides: Partial<UsageRow> = {}): UsageRow {
  return {
    ts: NOW,
    tokenId: 'tok-a',
    jti: 'jti-a',
    subject: 'alice',
    endpoint: '/mcp',
    httpMethod: 'POST',
    mcpMethod: 'tools/call',
    httpStatus: 200,
    latencyMs: 5,
    bytesIn: 100,
    bytesOut: 1_000,
    blocked: false,
    ...overrides,
  };
}

function tokenRecord(overrides: Partial<TokenRecord> = {}): TokenRecord {
  return {
    id: randomUUID(),
    jti: randomUUID(),
    name: 'ci-bot',
    tokenHash: 'a'.repeat(64),
    subject: 'owner-x',
    permissions: ['servers.use', 'tools.execute'],
    servers: [],
    tools: [],
    createdAt: NOW - DAY,
    ...overrides,
  };
}

/**
 * Token `tokenId`'s known data set (see the analytics test): 20 served requests with latencies
 * 1..20 ms — 17 successes, 3 errors — and 5 blocked attempts at 100 ms, plus rows that must not
 * count (another token, and this token 8 days ago).
 */
function knownDataSet(tokenId: string): UsageRow[] {
  const rows: UsageRow[] = [];
  for (let i = 1; i <= 20; i++) {
    rows.push(
      usageRow({
        tokenId,
        ts: NOW - i * MINUTE,
        latencyMs: i,
        endpoint: i <= 10 ? '/servers/echo/mcp' : '/mcp',
        server: i <= 12 ? 'echo' : i <= 17 ? 'fs' : undefined,
        tool: i <= 8 ? 'echo' : i <= 12 ? 'add' : i <= 17 ? 'read' : undefined,
        httpStatus: i === 20 ? 502 : 200,
        jsonrpcError: i === 18 ? -32602 : i === 19 ? -32001 : undefined,
      }),
    );
  }
  for (let i = 0; i < 5; i++) {
    rows.push(
      usageRow({
        tokenId,
        ts: NOW - HOUR - i,
        latencyMs: 100,
        httpStatus: 401,
        mcpMethod: undefined,
        bytesIn: 50,
        bytesOut: 0,
        blocked: true,
        blockReason: 'SWB_ERR_AUTH_REVOKED_TOKEN',
      }),
    );
  }
  rows.push(usageRow({ tokenId, ts: NOW - 8 * DAY, latencyMs: 999, server: 'old', tool: 'old' }));
  rows.push(usageRow({ tokenId: 'someone-else', ts: NOW - MINUTE, latencyMs: 999, server: 'other', tool: 'x' }));
  return rows;
}

describe.each(targets)('usage log on $name', (target) => {
  describe.skipIf(!target.available)(target.name, () => {
    const cleanup: Array<() => Promise<void>> = [];
    afterEach(async () => {
      for (const fn of cleanup.splice(0).reverse()) await fn();
    });

    async function fresh(): Promise<Fixture> {
      const f = await target.fresh();
      cleanup.push(() => f.db.close());
      return f;
    }

    async function count(f: Fixture): Promise<number> {
      const [row] = await f.query<{ n: number | string }>('select count(*) as n from usage_log');
      return Number(row?.n);
    }

    describe('writing', () => {
      it('stores every recorded row by close(): N recorded, N rows in the table', async () => {
        const f = await fresh();
        const log = createUsageLog({
          store: f.usage,
          logger: silentLogger(),
          batchSize: 500,
          flushIntervalMs: 60_000,
          retentionMs: 0,
        });
        const n = 2_345;
        for (let i = 0; i < n; i++) log.record(usageRow({ ts: NOW + i }));
        await log.close();
        expect(await count(f)).toBe(n);
        expect({ written: log.written, dropped: log.dropped, queueDepth: log.queueDepth }).toEqual({
          written: n,
          dropped: 0,
          queueDepth: 0,
        });
      });

      it('stores every column, with booleans as 0/1, the user agent cut to 512 characters and sloppy values made safe', async () => {
        const f = await fresh();
        await f.usage.insert([
          usageRow({
            ts: NOW,
            server: 'echo',
            tool: 'echo',
            jsonrpcError: -32602,
            latencyMs: 12.75,
            ip: '127.0.0.1',
            userAgent: 'x'.repeat(600),
            blocked: true,
            blockReason: 'SWB_ERR_AUTH_FORBIDDEN',
            upstreamSubject: 'alice-upstream',
          }),
          usageRow({ ts: NOW + 1, mcpMethod: undefined }),
          // A sloppy caller (nulls, NaN) must not make the whole batch fail.
          usageRow({
            ts: NOW + 2,
            server: null as unknown as string,
            jsonrpcError: null as unknown as number,
            latencyMs: Number.NaN,
            bytesIn: -5,
          }),
        ]);
        const rows = await f.query<Record<string, unknown>>('select * from usage_log order by id');
        expect(rows).toHaveLength(3);
        const [full, minimal, sloppy] = rows.map((r) => ({
          ...r,
          id: Number(r.id),
          ts: Number(r.ts),
          bytes_in: Number(r.bytes_in),
          bytes_out: Number(r.bytes_out),
        }));
        expect(full).toEqual({
          id: 1,
          ts: NOW,
          token_id: 'tok-a',
          jti: 'jti-a',
          subject: 'alice',
          endpoint: '/mcp',
          http_method: 'POST',
          mcp_method: 'tools/call',
          server: 'echo',
          tool: 'echo',
          http_status: 200,
          jsonrpc_error: -32602,
          latency_ms: 12.75,
          bytes_in: 100,
          bytes_out: 1_000,
          ip: '127.0.0.1',
          user_agent: 'x'.repeat(512),
          blocked: 1,
          block_reason: 'SWB_ERR_AUTH_FORBIDDEN',
          upstream_subject: 'alice-upstream',
        });
        expect(minimal).toMatchObject({
          id: 2,
          mcp_method: null,
          server: null,
          tool: null,
          blocked: 0,
          upstream_subject: null,
        });
        expect(sloppy).toMatchObject({ id: 3, server: null, jsonrpc_error: null, latency_ms: 0, bytes_in: 0 });
      });

      it('batches: one multi-row INSERT per batch, never one per request', async () => {
        const f = await fresh();
        const statements: string[] = [];
        const { store, destroy } = f.loggingStore(statements);
        cleanup.push(destroy);
        const log = createUsageLog({ store, logger: silentLogger(), batchSize: 500, retentionMs: 0 });
        for (let i = 0; i < 1_200; i++) log.record(usageRow({ ts: NOW + i }));
        await log.close();
        const inserts = statements.filter((s) => /^insert into "usage_log"/i.test(s));
        expect(inserts).toHaveLength(3);
        expect(await count(f)).toBe(1_200);
      });

      it('splits a batch larger than 1000 rows into several INSERTs in one transaction: all rows or none', async () => {
        const f = await fresh();
        const statements: string[] = [];
        const { store, destroy } = f.loggingStore(statements);
        cleanup.push(destroy);
        await store.insert(Array.from({ length: 2_500 }, (_, i) => usageRow({ ts: NOW + i })));
        expect(statements.filter((s) => /^insert into/i.test(s))).toHaveLength(3);
        expect(await count(f)).toBe(2_500);

        // The last statement violates NOT NULL: the first two must be rolled back with it.
        const bad = Array.from({ length: 2_500 }, (_, i) => usageRow({ ts: NOW + i }));
        bad[2_499] = usageRow({ tokenId: null as unknown as string });
        await expect(store.insert(bad)).rejects.toMatchObject({ code: 'SWB_ERR_STORE_UNAVAILABLE' });
        expect(await count(f)).toBe(2_500);
      });

      it('drops and counts rows beyond maxQueue while the database is slow; rows stored == rows written', async () => {
        const f = await fresh();
        let release!: () => void;
        const gate = new Promise<void>((resolve) => (release = resolve));
        const slow: Pick<UsageStore, 'insert' | 'purge'> = {
          insert: async (rows) => {
            await gate;
            await f.usage.insert(rows);
          },
          purge: (before) => f.usage.purge(before),
        };
        const log = createUsageLog({
          store: slow,
          logger: silentLogger(),
          batchSize: 50,
          maxQueue: 100,
          retentionMs: 0,
        });
        for (let i = 0; i < 50; i++) log.record(usageRow({ ts: NOW + i }));
        await new Promise((resolve) => setImmediate(resolve)); // the first batch is now held at the gate
        for (let i = 0; i < 100; i++) log.record(usageRow({ ts: NOW + 50 + i }));
        expect(log.queueDepth).toBe(100);
        expect(log.dropped).toBe(50);
        release();
        await log.close();
        expect(await count(f)).toBe(100);
        expect({ written: log.written, dropped: log.dropped }).toEqual({ written: 100, dropped: 50 });
      });

      it('counts a batch as dropped after its retries when the database fails, and logs an error', async () => {
        const f = await fresh();
        const closed = await f.reopen();
        expect(await closed.ping()).toBe(true); // Kysely connects lazily: use the handle before closing it
        await closed.close(); // every statement on this handle now fails
        const logger = silentLogger();
        const errors: unknown[] = [];
        logger.error = (obj: unknown) => void errors.push(obj);
        const log = createUsageLog({
          store: closed.usage!,
          logger,
          retentionMs: 0,
          maxRetries: 2,
          retryDelayMs: 1,
        });
        for (let i = 0; i < 10; i++) log.record(usageRow());
        await log.close();
        expect({ written: log.written, dropped: log.dropped }).toEqual({ written: 0, dropped: 10 });
        expect(errors).toEqual([expect.objectContaining({ rows: 10, attempts: 3 })]);
        expect(await count(f)).toBe(0);
      });

      it('purges rows older than the retention at start (and on demand)', async () => {
        const f = await fresh();
        await f.usage.insert([
          usageRow({ ts: NOW - 40 * DAY }),
          usageRow({ ts: NOW - 31 * DAY }),
          usageRow({ ts: NOW - 29 * DAY }),
          usageRow({ ts: NOW }),
        ]);
        let now = NOW;
        const log = createUsageLog({ store: f.usage, logger: silentLogger(), retentionMs: 30 * DAY, clock: () => now });
        await log.close(); // waits for the purge started at creation
        const left = await f.query<{ ts: number | string }>('select ts from usage_log order by ts');
        expect(left.map((r) => Number(r.ts))).toEqual([NOW - 29 * DAY, NOW]);

        now = NOW + 2 * DAY;
        const again = createUsageLog({
          store: f.usage,
          logger: silentLogger(),
          retentionMs: 30 * DAY,
          clock: () => now,
        });
        await again.close();
        expect(await count(f)).toBe(1);
        expect(await f.usage.purge(NOW + 1)).toBe(1);
      });
    });

    describe('analytics', () => {
      it('summarises a token: totals, success rate, nearest-rank p50/p95 of served requests, top lists', async () => {
        const f = await fresh();
        await f.usage.insert(knownDataSet('tok-a'));
        const summary = await f.usage.tokenUsage('tok-a', { days: 7, now: NOW });
        expect(summary).toEqual({
          tokenId: 'tok-a',
          from: NOW - 7 * DAY,
          to: NOW,
          total: 25,
          success: 17,
          blocked: 5,
          errors: 3,
          successRate: 0.68,
          latencyMs: { p50: 10, p95: 19, avg: 10.5 },
          bytesIn: 20 * 100 + 5 * 50,
          bytesOut: 20 * 1_000,
          topEndpoints: [
            { name: '/mcp', count: 15 },
            { name: '/servers/echo/mcp', count: 10 },
          ],
          topServers: [
            { name: 'echo', count: 12 },
            { name: 'fs', count: 5 },
          ],
          topTools: [
            { name: 'echo', server: 'echo', count: 8 },
            { name: 'read', server: 'fs', count: 5 },
            { name: 'add', server: 'echo', count: 4 },
          ],
        });
      });

      it('widens the window with days and reports nulls for a token without requests', async () => {
        const f = await fresh();
        await f.usage.insert(knownDataSet('tok-a'));
        expect((await f.usage.tokenUsage('tok-a', { days: 9, now: NOW })).total).toBe(26);
        expect(await f.usage.tokenUsage('nobody', { days: 7, now: NOW })).toMatchObject({
          total: 0,
          success: 0,
          blocked: 0,
          errors: 0,
          successRate: null,
          latencyMs: { p50: null, p95: null, avg: null },
          topEndpoints: [],
          topServers: [],
          topTools: [],
        });
      });

      it('keeps the top lists to 10 entries, most requests first', async () => {
        const f = await fresh();
        const rows: UsageRow[] = [];
        for (let t = 1; t <= 12; t++) {
          const name = `t${String(t).padStart(2, '0')}`;
          for (let k = 0; k < 13 - t; k++)
            rows.push(usageRow({ tokenId: 'tok-c', server: 'many', tool: name, ts: NOW - k }));
        }
        await f.usage.insert(rows);
        const { topTools } = await f.usage.tokenUsage('tok-c', { days: 1, now: NOW });
        expect(topTools.map((t) => `${t.name}:${t.count}`)).toEqual(
          Array.from({ length: 10 }, (_, i) => `t${String(i + 1).padStart(2, '0')}:${12 - i}`),
        );
      });

      describe('series', () => {
        const T0 = Date.UTC(2026, 0, 15, 10, 0, 0);
        const from = T0;
        const to = T0 + DAY + HOUR;
        const dataSet = (): UsageRow[] => [
          usageRow({ ts: T0 + 5_000, server: 'echo', tool: 'echo', latencyMs: 10 }),
          usageRow({ ts: T0 + 59_000, server: 'echo', tool: 'echo', latencyMs: 20 }),
          usageRow({ ts: T0 + MINUTE, tokenId: 'tok-b', subject: 'bob', server: 'fs', tool: 'read', latencyMs: 30 }),
          usageRow({
            ts: T0 + 30 * MINUTE,
            tokenId: 'tok-b',
            subject: 'bob',
            server: 'echo',
            tool: 'add',
            httpStatus: 403,
            blocked: true,
            blockReason: 'SWB_ERR_AUTH_OUT_OF_SCOPE',
            latencyMs: 1,
          }),
          usageRow({ ts: T0 + 61 * MINUTE, mcpMethod: 'initialize', latencyMs: 2 }),
          usageRow({ ts: T0 + DAY, server: 'echo', tool: 'echo', httpStatus: 502, latencyMs: 4 }),
          usageRow({ ts: T0 - 1, server: 'echo', tool: 'echo' }), // before `from`
          usageRow({ ts: to, server: 'echo', tool: 'echo' }), // `to` is exclusive
        ];
        const base = { bytesIn: 0, bytesOut: 0 };

        it('groups by server in hour buckets, requests without a server as null', async () => {
          const f = await fresh();
          await f.usage.insert(dataSet().map((r) => ({ ...r, bytesIn: 1, bytesOut: 2 })));
          const rows = await f.usage.usageSeries({ groupBy: 'server', bucket: 'hour', from, to });
          expect(rows).toEqual([
            {
              bucket: T0,
              key: 'echo',
              count: 3,
              success: 2,
              blocked: 1,
              errors: 0,
              avgLatencyMs: 15,
              bytesIn: 3,
              bytesOut: 6,
            },
            {
              bucket: T0,
              key: 'fs',
              count: 1,
              success: 1,
              blocked: 0,
              errors: 0,
              avgLatencyMs: 30,
              bytesIn: 1,
              bytesOut: 2,
            },
            {
              bucket: T0 + HOUR,
              key: null,
              count: 1,
              success: 1,
              blocked: 0,
              errors: 0,
              avgLatencyMs: 2,
              bytesIn: 1,
              bytesOut: 2,
            },
            {
              bucket: T0 + DAY,
              key: 'echo',
              count: 1,
              success: 0,
              blocked: 0,
              errors: 1,
              avgLatencyMs: 4,
              bytesIn: 1,
              bytesOut: 2,
            },
          ]);
        });

        it('groups by tool in minute buckets, with the tool’s server', async () => {
          const f = await fresh();
          await f.usage.insert(dataSet().map((r) => ({ ...r, ...base })));
          const rows = await f.usage.usageSeries({ groupBy: 'tool', bucket: 'minute', from, to });
          expect(rows.map((r) => [r.bucket - T0, r.server, r.key, r.count, r.blocked, r.avgLatencyMs])).toEqual([
            [0, 'echo', 'echo', 2, 0, 15],
            [MINUTE, 'fs', 'read', 1, 0, 30],
            [30 * MINUTE, 'echo', 'add', 1, 1, null],
            [61 * MINUTE, null, null, 1, 0, 2],
            [DAY, 'echo', 'echo', 1, 0, 4],
          ]);
        });

        it('groups by token in UTC day buckets, with the owner, and filters by token', async () => {
          const f = await fresh();
          await f.usage.insert(dataSet().map((r) => ({ ...r, ...base })));
          const day0 = Date.UTC(2026, 0, 15);
          const rows = await f.usage.usageSeries({ groupBy: 'token', bucket: 'day', from, to });
          expect(rows.map((r) => [r.bucket, r.key, r.subject, r.count, r.success, r.blocked, r.errors])).toEqual([
            [day0, 'tok-a', 'alice', 3, 3, 0, 0],
            [day0, 'tok-b', 'bob', 2, 1, 1, 0],
            [day0 + DAY, 'tok-a', 'alice', 1, 0, 0, 1],
          ]);
          const onlyB = await f.usage.usageSeries({ groupBy: 'server', bucket: 'day', from, to, tokenId: 'tok-b' });
          expect(onlyB.map((r) => [r.key, r.count])).toEqual([
            ['echo', 1],
            ['fs', 1],
          ]);
        });
      });
    });

    describe('refused tokens (revoked or expired, with a stored jti)', () => {
      it('records a revoked or expired token’s attempts as blocked with the stored owner, and nothing for a forged jti', async () => {
        const f = await fresh();
        const secret = 'k'.repeat(48);
        let now = NOW;
        const tokens = await createTokenService({
          store: f.db.tokens,
          settings: f.db.settings,
          logger: silentLogger(),
          secret,
          clock: () => now,
        });
        const revoked = await tokens.create({ name: 'ci', subject: 'stored-owner', permissions: ['servers.use'] });
        const expiring = await tokens.create({
          name: 'short',
          subject: 'other-owner',
          permissions: ['servers.use'],
          expiresInMs: 60_000,
        });
        await tokens.revoke(revoked.id);
        now += 120_000;
        const forged = await new SignJWT({ name: 'evil' })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setIssuer(TOKEN_ISSUER)
          .setSubject('victim')
          .setJti(randomUUID())
          .setIssuedAt(Math.floor(now / 1000))
          .sign(new TextEncoder().encode(secret));
        // A token carrying a real jti but not the stored token (hash mismatch) is forged too.
        const realJti = await new SignJWT({ name: 'evil' })
          .setProtectedHeader({ alg: 'HS256', typ: 'JWT' })
          .setIssuer(TOKEN_ISSUER)
          .setSubject('victim')
          .setJti(revoked.jti)
          .setIssuedAt(Math.floor(now / 1000))
          .sign(new TextEncoder().encode(secret));

        const log = createUsageLog({ store: f.usage, logger: silentLogger(), retentionMs: 0 });
        const codes: string[] = [];
        for (const bearer of [revoked.token, revoked.token, expiring.token, forged, realJti]) {
          const error = await tokens.verify(bearer).then(
            () => undefined,
            (err: unknown) => err,
          );
          codes.push((error as { code: string }).code);
          const facts = {
            ts: now,
            endpoint: '/mcp',
            httpMethod: 'POST',
            latencyMs: 0.4,
            ip: '10.0.0.9',
            userAgent: 'ua',
          };
          const row = blockedRowFor(error, facts);
          if (row) log.record(row);
        }
        await log.close();
        expect(codes).toEqual([
          'SWB_ERR_AUTH_REVOKED_TOKEN',
          'SWB_ERR_AUTH_REVOKED_TOKEN',
          'SWB_ERR_AUTH_EXPIRED_TOKEN',
          'SWB_ERR_AUTH_INVALID_TOKEN',
          'SWB_ERR_AUTH_INVALID_TOKEN',
        ]);
        const rows = await f.query<Record<string, unknown>>(
          'select token_id, jti, subject, http_status, blocked, block_reason, ip from usage_log order by id',
        );
        expect(rows).toEqual([
          {
            token_id: revoked.id,
            jti: revoked.jti,
            subject: 'stored-owner',
            http_status: 401,
            blocked: 1,
            block_reason: 'SWB_ERR_AUTH_REVOKED_TOKEN',
            ip: '10.0.0.9',
          },
          {
            token_id: revoked.id,
            jti: revoked.jti,
            subject: 'stored-owner',
            http_status: 401,
            blocked: 1,
            block_reason: 'SWB_ERR_AUTH_REVOKED_TOKEN',
            ip: '10.0.0.9',
          },
          {
            token_id: expiring.id,
            jti: expiring.jti,
            subject: 'other-owner',
            http_status: 401,
            blocked: 1,
            block_reason: 'SWB_ERR_AUTH_EXPIRED_TOKEN',
            ip: '10.0.0.9',
          },
        ]);
        const summary = await f.usage.tokenUsage(revoked.id, { days: 1, now });
        expect(summary).toMatchObject({ total: 2, blocked: 2, success: 0, successRate: 0 });
      });
    });

    describe('HTTP endpoints', () => {
      const principal = (subject: string, permissions: string[]): Principal => ({
        id: `token:${subject}`,
        kind: 'token',
        subject,
        permissions,
      });
      const principals: Record<string, Principal> = {
        owner: principal('owner-x', ['servers.use']),
        stranger: principal('someone', ['servers.use', 'tokens.manage']),
        admin: principal('root', ['admin.*']),
        reader: principal('analyst', ['usage.read']),
      };

      async function serve(f: Fixture): Promise<string> {
        const api = createUsageApi({ usage: f.usage, tokens: f.db.tokens, clock: () => NOW });
        const server: Server = createServer((req, res) => {
          const url = req.url ?? '/';
          const q = url.indexOf('?');
          const who = principals[String(req.headers['x-who'])] ?? principals.stranger!;
          void api(req, res, q < 0 ? url : url.slice(0, q), q < 0 ? '' : url.slice(q + 1), who).then((handled) => {
            if (!handled) res.writeHead(418).end();
          });
        });
        server.listen(0, '127.0.0.1');
        await once(server, 'listening');
        cleanup.push(async () => {
          server.close();
          await once(server, 'close');
        });
        return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      }

      async function get(base: string, path: string, who: string, method = 'GET') {
        const res = await fetch(base + path, { method, headers: { 'x-who': who } });
        const text = await res.text();
        return { status: res.status, body: text === '' ? undefined : (JSON.parse(text) as Record<string, unknown>) };
      }

      it('serves a token’s usage to its owner, admins and usage.read, and 404 to anyone else', async () => {
        const f = await fresh();
        const record = tokenRecord();
        await f.db.tokens.create(record);
        await f.usage.insert(knownDataSet(record.id));
        const base = await serve(f);

        const owner = await get(base, `/api/v1/tokens/${record.id}/usage?days=7`, 'owner');
        expect(owner.status).toBe(200);
        expect(owner.body).toMatchObject({
          tokenId: record.id,
          days: 7,
          from: new Date(NOW - 7 * DAY).toISOString(),
          to: new Date(NOW).toISOString(),
          total: 25,
          success: 17,
          blocked: 5,
          errors: 3,
          successRate: 0.68,
          latencyMs: { p50: 10, p95: 19, avg: 10.5 },
        });
        expect((await get(base, `/api/v1/tokens/${record.id}/usage`, 'admin')).body).toMatchObject({
          days: 7,
          total: 25,
        });
        expect((await get(base, `/api/v1/tokens/${record.id}/usage?days=9`, 'reader')).body).toMatchObject({
          total: 26,
        });

        const stranger = await get(base, `/api/v1/tokens/${record.id}/usage`, 'stranger');
        expect(stranger).toEqual({
          status: 404,
          body: { error: { code: 'SWB_ERR_HTTP_NOT_FOUND', message: 'token not found' } },
        });
        expect((await get(base, `/api/v1/tokens/${randomUUID()}/usage`, 'admin')).status).toBe(404);
        expect((await get(base, `/api/v1/tokens/${record.id}/usage?days=0`, 'owner')).body).toMatchObject({
          error: { code: 'SWB_ERR_HTTP_INVALID_REQUEST' },
        });
        expect((await get(base, `/api/v1/tokens/${record.id}/usage`, 'owner', 'POST')).status).toBe(405);
      });

      it('serves the series to admins and usage.read only, validating its parameters', async () => {
        const f = await fresh();
        await f.usage.insert([
          usageRow({ ts: NOW - 2 * HOUR, server: 'echo' }),
          usageRow({ ts: NOW - 2 * HOUR + 1, server: 'echo' }),
          usageRow({ ts: NOW - HOUR, server: 'fs' }),
        ]);
        const base = await serve(f);
        const query = `groupBy=server&bucket=hour&from=${new Date(NOW - DAY).toISOString()}&to=${NOW}`;
        const admin = await get(base, `/api/v1/usage?${query}`, 'admin');
        expect(admin.status).toBe(200);
        expect(admin.body).toEqual({
          groupBy: 'server',
          bucket: 'hour',
          from: new Date(NOW - DAY).toISOString(),
          to: new Date(NOW).toISOString(),
          tokenId: null,
          series: [
            expect.objectContaining({ bucket: new Date(NOW - 2 * HOUR).toISOString(), key: 'echo', count: 2 }),
            expect.objectContaining({ bucket: new Date(NOW - HOUR).toISOString(), key: 'fs', count: 1 }),
          ],
        });
        // Defaults: group by server, hourly, the last 24 hours.
        expect((await get(base, '/api/v1/usage', 'reader')).body).toEqual(admin.body);

        const owner = await get(base, `/api/v1/usage?${query}`, 'owner');
        expect(owner.status).toBe(403);
        expect(owner.body).toMatchObject({ error: { code: 'SWB_ERR_AUTH_FORBIDDEN' } });
        for (const bad of [
          'groupBy=user',
          'bucket=week',
          `from=${NOW}&to=${NOW - 1}`,
          'from=yesterday',
          `bucket=minute&from=0&to=${NOW}`,
        ]) {
          const res = await get(base, `/api/v1/usage?${bad}`, 'admin');
          expect([bad, res.status, (res.body?.error as { code?: string } | undefined)?.code]).toEqual([
            bad,
            400,
            'SWB_ERR_HTTP_INVALID_REQUEST',
          ]);
        }
        expect((await get(base, '/api/v1/tokens', 'admin')).status).toBe(418); // not a usage route
      });
    });

    describe('switchboard usage', () => {
      async function cli(f: Fixture, args: Parameters<typeof runUsage>[0]) {
        const config = join(tmp, `cli-${++files}.yaml`);
        await writeFile(config, 'mcpServers: {}\n');
        const out: string[] = [];
        const err: string[] = [];
        const output: CliOutput = { out: (l) => out.push(l), err: (l) => err.push(l) };
        const code = await runUsage({ config, databaseUrl: f.url, env: {}, clock: () => NOW, ...args }, output);
        return { code, out, err };
      }

      it('prints a token’s summary as a table, and the API’s JSON with --json', async () => {
        const f = await fresh();
        const record = tokenRecord();
        await f.db.tokens.create(record);
        await f.usage.insert(knownDataSet(record.id));

        const table = await cli(f, { token: record.id, days: '7' });
        expect(table.code).toBe(0);
        expect(table.err).toEqual([]);
        expect(table.out[0]).toBe(`token ${record.id} (ci-bot, owner owner-x)`);
        const lines = table.out.map((l) => l.replace(/\s+/g, ' '));
        for (const line of [
          'requests 25',
          'success 17',
          'blocked 5',
          'errors 3',
          'success rate 68.0%',
          'latency p50 10 ms',
          'latency p95 19 ms',
          'latency avg 10.5 ms',
          'ENDPOINT REQUESTS',
          '/mcp 15',
          'echo/echo 8',
        ]) {
          expect(lines).toContain(line);
        }

        const json = await cli(f, { token: record.id, json: true });
        expect(json.code).toBe(0);
        expect(JSON.parse(json.out.join('\n'))).toMatchObject({
          tokenId: record.id,
          days: 7,
          total: 25,
          successRate: 0.68,
        });
      });

      it('prints a series grouped by server, tool or token', async () => {
        const f = await fresh();
        await f.usage.insert([
          usageRow({ ts: NOW - 2 * HOUR, server: 'echo', tool: 'echo', latencyMs: 4 }),
          usageRow({ ts: NOW - 2 * HOUR + 1, server: 'echo', tool: 'echo', latencyMs: 6 }),
        ]);
        const byServer = await cli(f, { days: 1 });
        expect(byServer.code).toBe(0);
        expect(byServer.out.map((l) => l.replace(/\s+/g, ' '))).toEqual([
          'BUCKET SERVER REQUESTS SUCCESS BLOCKED ERRORS AVG MS BYTES IN BYTES OUT',
          `${new Date(NOW - 2 * HOUR).toISOString().replace('.000', '')} echo 2 2 0 0 5.0 200 2000`,
        ]);
        const byTool = await cli(f, { days: 1, groupBy: 'tool' });
        expect(byTool.out[0]?.replace(/\s+/g, ' ')).toBe(
          'BUCKET SERVER TOOL REQUESTS SUCCESS BLOCKED ERRORS AVG MS BYTES IN BYTES OUT',
        );
        const byToken = await cli(f, { days: 3, groupBy: 'token', json: true });
        expect(JSON.parse(byToken.out.join(''))).toMatchObject({
          groupBy: 'token',
          bucket: 'day',
          series: [{ key: 'tok-a', subject: 'alice', count: 2 }],
        });
      });

      it('exits 1 for an unknown token or invalid options', async () => {
        const f = await fresh();
        const unknown = await cli(f, { token: 'nope' });
        expect(unknown).toEqual({ code: 1, out: [], err: ['no token with id nope'] });
        expect((await cli(f, { groupBy: 'user' })).code).toBe(1);
        expect((await cli(f, { days: 'many' })).err).toEqual([expect.stringContaining('--days')]);
      });
    });

    it('creates the usage_log indexes on (token_id, ts), (ts) and (server, ts)', async () => {
      const f = await fresh();
      const names =
        target.name === 'sqlite'
          ? await f.query<{ name: string }>(
              "select name from sqlite_master where type = 'index' and tbl_name = 'usage_log'",
            )
          : await f.query<{ name: string }>(
              "select indexname as name from pg_indexes where tablename = 'usage_log' and schemaname = current_schema()",
            );
      expect(names.map((n) => n.name)).toEqual(
        expect.arrayContaining(['usage_log_token_id_ts_idx', 'usage_log_ts_idx', 'usage_log_server_ts_idx']),
      );
    });
  });
});
