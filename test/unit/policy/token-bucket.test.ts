/** The in-memory token buckets (GCRA) behind the rate limits. */
import { afterEach, describe, expect, it, vi } from 'vitest';
import { MemoryTokenBuckets } from '../../../src/policy/token-bucket.js';

afterEach(() => {
  vi.useRealTimers();
});

describe('MemoryTokenBuckets', () => {
  it('admits a full bucket at once, then one token per emission interval, with exact waits', () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const b = new MemoryTokenBuckets();
    // 3 per second, bucket of 3: emission 333.33 ms.
    const emission = 1000 / 3;
    expect([0, 1, 2].map(() => b.takeNow('k', emission, 3))).toEqual([0, 0, 0]);
    const wait = b.takeNow('k', emission, 3);
    expect(wait).toBeCloseTo(emission, 6);
    vi.advanceTimersByTime(333);
    expect(b.takeNow('k', emission, 3)).toBeCloseTo(1 / 3, 6);
    vi.advanceTimersByTime(1);
    expect(b.takeNow('k', emission, 3)).toBe(0);
    // Over a long run the rate holds: 30 s at one attempt every 10 ms admits 3 × 30 (+ the 0 left).
    let admitted = 0;
    for (let t = 0; t < 30_000; t += 10) {
      vi.advanceTimersByTime(10);
      if (b.takeNow('k', emission, 3) === 0) admitted++;
    }
    expect(admitted).toBeGreaterThanOrEqual(89);
    expect(admitted).toBeLessThanOrEqual(91);
    b.close();
  });

  it('keeps keys apart and drops full buckets in its sweep', () => {
    vi.useFakeTimers({ now: 0 });
    const b = new MemoryTokenBuckets();
    expect(b.takeNow('a', 1_000, 1)).toBe(0);
    expect(b.takeNow('b', 60_000, 1)).toBe(0);
    expect(b.takeNow('a', 1_000, 1)).toBe(1_000);
    expect(b.size).toBe(2);
    vi.advanceTimersByTime(30_000); // the sweep runs: 'a' is full again, 'b' is not
    expect(b.size).toBe(1);
    vi.advanceTimersByTime(30_000);
    expect(b.size).toBe(0);
    expect(b.takeNow('b', 60_000, 1)).toBe(0);
    b.close();
    expect(b.size).toBe(0);
  });
});
