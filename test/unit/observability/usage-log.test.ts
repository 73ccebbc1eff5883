/**
 * The usage-log writer against an in-memory store whose speed and failures the tests control
 * (the real databases are exercised in test/integration/usage), and the seed-004 row rules.
 */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ANONYMOUS, type Principal } from '../../../src/auth/principal.js';
import { GatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import {
  blockedRowFor,
  createUsageLog,
  usageRowFor,
  type UsageLog,
  type UsageLogMetrics,
  type UsageLogOptions,
} from '../../../src/observability/usage-log.js';
import type { UsageRow, UsageStore } from '../../../src/store/types.js';

/** An in-memory store: records each insert call; `gate` holds writes until released; `failures` rejects the next N inserts. */
class MemoryStore implements Pick<UsageStore, 'insert' | 'purge'> {
  rows: UsageRow[] = [];
  batches: number[] = [];
  purges: number[] = [];
  failures = 0;
  attempts = 0;
  gate: Promise<void> | undefined;
  #release: (() => void) | undefined;

  hold(): void {
    this.gate = new Promise((resolve) => (this.#release = resolve));
  }

  release(): void {
    this.gate = undefined;
    this.#release?.();
  }

  async insert(rows: readonly UsageRow[]): Promise<void> {
    this.attempts++;
    if (this.gate) await this.gate;
    if (this.failures > 0) {
      this.failures--;
      throw new GatewayError('SWB_ERR_STORE_UNAVAILABLE', 'database down');
    }
    this.batches.push(rows.length);
    this.rows.push(...rows);
  }

  async purge(before: number): Promise<number> {
    this.purges.push(before);
    const keep = this.rows.filter((r) => r.ts >= before);
    const deleted = this.rows.length - keep.length;
    this.rows = keep;
    return deleted;
  }
}

let counter = 0;
function row(overrides: Partial<UsageRow> = {}): UsageRow {
  return {
    ts: 1_000_000 + counter++,
    tokenId: 'tok-1',
    jti: 'jti-1',
    subject: 'alice',
    endpoint: '/mcp',
    httpMethod: 'POST',
    mcpMethod: 'tools/call',
    server: 'echo',
    tool: 'echo',
    httpStatus: 200,
    latencyMs: 3.5,
    bytesIn: 120,
    bytesOut: 340,
    blocked: false,
    ...overrides,
  };
}

const logs: UsageLog[] = [];
function open(store: MemoryStore, options: Partial<UsageLogOptions> = {}): UsageLog {
  const log = createUsageLog({
    store,
    logger: silentLogger(),
    batchSize: 100,
    flushIntervalMs: 1_000,
    maxQueue: 10_000,
    retentionMs: 0,
    retryDelayMs: 1,
    ...options,
  });
  logs.push(log);
  return log;
}

/** Lets setImmediate callbacks and the promise chains they start run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((resolve) => setImmediate(resolve));
}

afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(logs.splice(0).map((l) => l.close()));
});

describe('usage log writer', () => {
  it('never writes on the caller’s stack: record() returns before any insert starts', () => {
    const store = new MemoryStore();
    const log = open(store, { batchSize: 10 });
    for (let i = 0; i < 25; i++) log.record(row());
    expect(store.attempts).toBe(0);
    expect(log.queueDepth).toBe(25);
  });

  it('writes full batches as soon as they are full, in batchSize pieces, and keeps the rest for the interval', async () => {
    const store = new MemoryStore();
    const log = open(store, { batchSize: 100, flushIntervalMs: 60_000 });
    for (let i = 0; i < 250; i++) log.record(row());
    await settle();
    expect(store.batches).toEqual([100, 100]);
    expect(log.queueDepth).toBe(50);
    expect(log.written).toBe(200);
  });

  it('writes a partial batch flushIntervalMs after its first row, as one insert', async () => {
    vi.useFakeTimers();
    const store = new MemoryStore();
    const log = open(store, { batchSize: 100, flushIntervalMs: 1_000 });
    log.record(row());
    await vi.advanceTimersByTimeAsync(500);
    log.record(row());
    log.record(row());
    await vi.advanceTimersByTimeAsync(499);
    expect(store.batches).toEqual([]);
    await vi.advanceTimersByTimeAsync(2);
    expect(store.batches).toEqual([3]);
    expect(log.queueDepth).toBe(0);
  });

  it('close() writes every queued row, partial batches included, so nothing is lost on shutdown', async () => {
    const store = new MemoryStore();
    const log = open(store, { batchSize: 100, flushIntervalMs: 60_000 });
    const rows = Array.from({ length: 1_234 }, () => row());
    for (const r of rows) log.record(r);
    await log.close();
    expect(store.rows).toEqual(rows);
    expect(store.batches).toEqual([...Array.from({ length: 12 }, () => 100), 34]);
    expect({ written: log.written, dropped: log.dropped, queueDepth: log.queueDepth }).toEqual({
      written: 1_234,
      dropped: 0,
      queueDepth: 0,
    });
  });

  it('flush() writes the rows queued before it and waits for a write already under way', async () => {
    const store = new MemoryStore();
    const log = open(store, { batchSize: 2, flushIntervalMs: 60_000 });
    store.hold();
    log.record(row());
    log.record(row());
    await settle(); // the full batch is now being written (held)
    log.record(row());
    const flushed = log.flush();
    store.release();
    await flushed;
    expect(store.rows).toHaveLength(3);
    expect(log.queueDepth).toBe(0);
  });

  it('drops and counts rows beyond maxQueue while the database is slow, then writes what it kept', async () => {
    const store = new MemoryStore();
    const metrics: UsageLogMetrics[] = [];
    const log = open(store, { batchSize: 10, maxQueue: 30, onMetrics: (m) => metrics.push(m) });
    store.hold();
    for (let i = 0; i < 10; i++) log.record(row());
    await settle(); // 10 rows in flight, held
    for (let i = 0; i < 25; i++) log.record(row());
    expect(log.queueDepth).toBe(30);
    expect(log.dropped).toBe(5);
    expect(metrics.at(-1)).toEqual({ queueDepth: 30, dropped: 5, written: 0 });
    store.release();
    await log.flush();
    expect(store.rows).toHaveLength(30);
    expect({ written: log.written, dropped: log.dropped }).toEqual({ written: 30, dropped: 5 });
    expect(metrics.at(-1)).toEqual({ queueDepth: 0, dropped: 5, written: 30 });
  });

  it('retries a failed batch and stores it when the database comes back', async () => {
    const store = new MemoryStore();
    const log = open(store, { maxRetries: 3 });
    store.failures = 2;
    for (let i = 0; i < 5; i++) log.record(row());
    await log.flush();
    expect(store.attempts).toBe(3);
    expect(store.rows).toHaveLength(5);
    expect(log.dropped).toBe(0);
  });

  it('drops a batch that fails every retry, counts it and logs an error, then carries on', async () => {
    const store = new MemoryStore();
    const logger = silentLogger();
    const error = vi.spyOn(logger, 'error');
    const log = open(store, { maxRetries: 2, logger });
    store.failures = 3;
    for (let i = 0; i < 5; i++) log.record(row());
    await log.flush();
    expect(store.attempts).toBe(3);
    expect(log.dropped).toBe(5);
    expect(error).toHaveBeenCalledWith(
      expect.objectContaining({ rows: 5, attempts: 3 }),
      expect.stringContaining('dropped'),
    );
    log.record(row());
    await log.flush();
    expect(store.rows).toHaveLength(1);
    expect({ written: log.written, dropped: log.dropped }).toEqual({ written: 1, dropped: 5 });
  });

  it('does not make shutdown wait batch by batch on a dead database: after one failed batch, close() drops the rest', async () => {
    const store = new MemoryStore();
    const log = open(store, { batchSize: 10, maxRetries: 1, flushIntervalMs: 60_000 });
    store.hold();
    for (let i = 0; i < 10; i++) log.record(row());
    await settle();
    for (let i = 0; i < 40; i++) log.record(row());
    store.failures = 1_000;
    const closed = log.close();
    store.release();
    await closed;
    expect(store.attempts).toBe(2); // one batch, one retry
    expect({ written: log.written, dropped: log.dropped, queueDepth: log.queueDepth }).toEqual({
      written: 0,
      dropped: 50,
      queueDepth: 0,
    });
  });

  it('counts rows recorded after close() as dropped', async () => {
    const store = new MemoryStore();
    const log = open(store);
    await log.close();
    log.record(row());
    expect(log.dropped).toBe(1);
    expect(store.attempts).toBe(0);
  });

  it('never throws from record(), even when the metrics callback does', async () => {
    const store = new MemoryStore();
    const log = open(store, {
      maxQueue: 1,
      onMetrics: () => {
        throw new Error('boom');
      },
    });
    expect(() => {
      log.record(row());
      log.record(row());
    }).not.toThrow();
    expect(log.dropped).toBe(1);
    await log.flush();
    expect(log.written).toBe(1);
  });

  it('purges rows older than the retention at start and then every purgeIntervalMs', async () => {
    vi.useFakeTimers();
    let now = 10_000_000;
    const store = new MemoryStore();
    const log = open(store, {
      retentionMs: 1_000_000,
      purgeIntervalMs: 600_000,
      clock: () => now,
    });
    expect(store.purges).toEqual([9_000_000]);
    now += 600_000;
    await vi.advanceTimersByTimeAsync(600_000);
    expect(store.purges).toEqual([9_000_000, 9_600_000]);
    expect(await log.purgeExpired()).toBe(0);
  });

  it('keeps everything when the retention is 0', async () => {
    const store = new MemoryStore();
    const log = open(store, { retentionMs: 0 });
    expect(await log.purgeExpired()).toBe(0);
    expect(store.purges).toEqual([]);
  });

  it('rejects sizes and intervals that are not positive', () => {
    const store = new MemoryStore();
    expect(() => createUsageLog({ store, logger: silentLogger(), batchSize: 0 })).toThrow(RangeError);
    expect(() => createUsageLog({ store, logger: silentLogger(), flushIntervalMs: -1 })).toThrow(RangeError);
    expect(() => createUsageLog({ store, logger: silentLogger(), maxQueue: Number.NaN })).toThrow(RangeError);
  });
});

const facts = { ts: 5_000, endpoint: '/mcp', httpMethod: 'POST', latencyMs: 1.25, ip: '127.0.0.1', userAgent: 'test' };
const tokenPrincipal: Principal = {
  id: 'token:alice',
  kind: 'token',
  subject: 'alice',
  permissions: ['servers.use'],
  tokenId: 'tok-1',
  jti: 'jti-1',
};

describe('blockedRowFor (refused tokens)', () => {
  it('records a revoked token whose jti exists as blocked, attributed to the stored owner', () => {
    const error = new GatewayError('SWB_ERR_AUTH_REVOKED_TOKEN', 'token revoked', {
      data: { tokenId: 'tok-9', subject: 'stored-owner', jti: 'jti-9' },
    });
    expect(blockedRowFor(error, facts)).toEqual({
      ...facts,
      tokenId: 'tok-9',
      jti: 'jti-9',
      subject: 'stored-owner',
      httpStatus: 401,
      bytesIn: 0,
      bytesOut: 0,
      blocked: true,
      blockReason: 'SWB_ERR_AUTH_REVOKED_TOKEN',
    });
  });

  it('records an expired token whose jti exists with reason SWB_ERR_AUTH_EXPIRED_TOKEN', () => {
    const error = new GatewayError('SWB_ERR_AUTH_EXPIRED_TOKEN', 'token expired', {
      data: { tokenId: 'tok-9', subject: 'bob', jti: 'jti-9' },
    });
    expect(blockedRowFor(error, facts)).toMatchObject({ blocked: true, blockReason: 'SWB_ERR_AUTH_EXPIRED_TOKEN' });
  });

  it('records nothing for a forged or unknown jti, a missing token, or errors without the stored record', () => {
    const forged = new GatewayError('SWB_ERR_AUTH_INVALID_TOKEN', 'invalid token', {
      data: { reason: 'unknown token', tokenId: 'tok-9', subject: 'victim', jti: 'jti-9' },
    });
    expect(blockedRowFor(forged, facts)).toBeUndefined();
    expect(blockedRowFor(new GatewayError('SWB_ERR_AUTH_MISSING_TOKEN', 'missing'), facts)).toBeUndefined();
    expect(blockedRowFor(new GatewayError('SWB_ERR_AUTH_REVOKED_TOKEN', 'token revoked'), facts)).toBeUndefined();
    expect(blockedRowFor(new Error('SWB_ERR_AUTH_REVOKED_TOKEN'), facts)).toBeUndefined();
  });
});

describe('usageRowFor (authenticated token requests)', () => {
  it('records a served token request with the principal’s token, jti and subject', () => {
    const r = usageRowFor(tokenPrincipal, { ...facts, httpStatus: 200, bytesOut: 99, server: 'echo', tool: 'echo' });
    expect(r).toEqual({
      ...facts,
      httpStatus: 200,
      server: 'echo',
      tool: 'echo',
      tokenId: 'tok-1',
      jti: 'jti-1',
      subject: 'alice',
      bytesIn: 0,
      bytesOut: 99,
      blocked: false,
    });
  });

  it('marks 4xx answers and 4xx denials sent as JSON-RPC errors as blocked, with the error code or http_<status>', () => {
    expect(usageRowFor(tokenPrincipal, { ...facts, httpStatus: 429 })).toMatchObject({
      blocked: true,
      blockReason: 'http_429',
    });
    const forbidden = new GatewayError('SWB_ERR_AUTH_FORBIDDEN', 'permission tools.execute is required');
    expect(
      usageRowFor(tokenPrincipal, { ...facts, httpStatus: 200, jsonrpcError: forbidden.jsonRpcCode, error: forbidden }),
    ).toMatchObject({ blocked: true, blockReason: 'SWB_ERR_AUTH_FORBIDDEN', jsonrpcError: forbidden.jsonRpcCode });
  });

  it('marks an error answer of a request a pipeline stage refused as blocked, with the stage as reason', () => {
    expect(
      usageRowFor(tokenPrincipal, { ...facts, httpStatus: 200, jsonrpcError: -31001, stage: 'guardrail:no-rm' }),
    ).toMatchObject({ blocked: true, blockReason: 'guardrail:no-rm', jsonrpcError: -31001 });
    expect(usageRowFor(tokenPrincipal, { ...facts, httpStatus: 429, stage: 'rate-limit' })).toMatchObject({
      blocked: true,
      blockReason: 'rate-limit',
    });
    // A stage that changed the request (redaction) without refusing it: served, not blocked.
    const served = usageRowFor(tokenPrincipal, { ...facts, httpStatus: 200, stage: 'guardrail:secrets' });
    expect(served?.blocked).toBe(false);
    expect(served?.blockReason).toBeUndefined();
  });

  it('does not mark upstream failures (5xx) or tool errors as blocked', () => {
    const r = usageRowFor(tokenPrincipal, { ...facts, httpStatus: 502 });
    expect(r?.blocked).toBe(false);
    expect(r?.blockReason).toBeUndefined();
    const unknownTool = new GatewayError('SWB_ERR_ROUTE_UNKNOWN_TOOL', 'unknown tool');
    expect(usageRowFor(tokenPrincipal, { ...facts, httpStatus: 200, error: unknownTool })?.blocked).toBe(false);
  });

  it('records nothing for principals that are not API tokens', () => {
    expect(usageRowFor(ANONYMOUS, { ...facts, httpStatus: 200 })).toBeUndefined();
    expect(
      usageRowFor({ id: 'oauth:x#y', kind: 'oauth', subject: 'y', permissions: [] }, { ...facts, httpStatus: 200 }),
    ).toBeUndefined();
  });
});
