import { describe, expect, it } from 'vitest';
import { BUCKET_COUNT, BUCKET_MS, RecentTraffic } from '../../../src/observability/recent-traffic.js';

const T0 = 1_700_000_000_000 - (1_700_000_000_000 % BUCKET_MS);

describe('RecentTraffic', () => {
  it('counts requests and errors per server in 10-second buckets, oldest first', () => {
    const t = new RecentTraffic();
    t.record('a', T0 + 1, 5, false);
    t.record('a', T0 + 2, 5, true);
    t.record('a', T0 + BUCKET_MS + 3, 5, false);
    t.record('b', T0 + 4, 5, false);
    const s = t.stats('a', T0 + BUCKET_MS + 10);
    expect(s.requests).toBe(3);
    expect(s.errors).toBe(1);
    expect(s.errorRate).toBeCloseTo(1 / 3, 10);
    expect(s.ratePerMinute).toBeCloseTo(3 / 5, 10);
    expect(s.series).toHaveLength(BUCKET_COUNT);
    expect(s.series.at(-1)).toEqual({ t: T0 + BUCKET_MS, requests: 1, errors: 0 });
    expect(s.series.at(-2)).toEqual({ t: T0, requests: 2, errors: 1 });
    expect(t.stats('b', T0 + 10).requests).toBe(1);
  });

  it('forgets buckets older than five minutes, also when the ring comes round to their slot', () => {
    const t = new RecentTraffic();
    t.record('a', T0, 5, true);
    expect(t.stats('a', T0 + (BUCKET_COUNT - 1) * BUCKET_MS).requests).toBe(1);
    expect(t.stats('a', T0 + BUCKET_COUNT * BUCKET_MS).requests).toBe(0);
    // Same slot, next lap: the old count is cleared, not added to.
    t.record('a', T0 + BUCKET_COUNT * BUCKET_MS, 5, false);
    const s = t.stats('a', T0 + BUCKET_COUNT * BUCKET_MS);
    expect(s).toMatchObject({ requests: 1, errors: 0 });
  });

  it('reports p50 and p95 within the histogram precision, null without requests', () => {
    const t = new RecentTraffic();
    expect(t.stats('a', T0)).toMatchObject({ requests: 0, p50Ms: null, p95Ms: null, errorRate: 0 });
    // 1..100 ms: p50 = 50 ms, p95 = 95 ms.
    for (let ms = 1; ms <= 100; ms++) t.record('a', T0 + ms, ms, false);
    const s = t.stats('a', T0 + 1000);
    expect(s.p50Ms).toBeGreaterThan(50 / 1.1);
    expect(s.p50Ms).toBeLessThan(50 * 1.1);
    expect(s.p95Ms).toBeGreaterThan(95 / 1.1);
    expect(s.p95Ms).toBeLessThan(95 * 1.1);
    // Sub-microsecond and very slow requests land in the end bins.
    t.record('z', T0, 0, false);
    t.record('z', T0, 3_600_000, false);
    const z = t.stats('z', T0);
    expect(z.p50Ms).toBe(0.05);
    expect(z.p95Ms).toBeGreaterThan(600_000);
  });

  it('keeps at most maxSeries series', () => {
    const t = new RecentTraffic({ maxSeries: 2 });
    t.record('a', T0, 1, false);
    t.record('b', T0, 1, false);
    t.record('c', T0, 1, false);
    expect(t.stats('c', T0).requests).toBe(0);
    expect(t.stats('b', T0).requests).toBe(1);
    t.delete('a');
    t.record('c', T0, 1, false);
    expect(t.stats('c', T0).requests).toBe(1);
  });
});
