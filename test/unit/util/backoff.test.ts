import { describe, expect, it } from 'vitest';
import { createBackoff } from '../../../src/util/backoff.js';

describe('createBackoff', () => {
  it('grows exponentially from initialDelayMs and caps at maxDelayMs', () => {
    const b = createBackoff({ initialDelayMs: 100, maxDelayMs: 1000, jitter: 0 });
    expect([b.next(), b.next(), b.next(), b.next(), b.next(), b.next()]).toEqual([100, 200, 400, 800, 1000, 1000]);
    expect(b.attempts).toBe(6);
  });

  it('honours a custom factor', () => {
    const b = createBackoff({ initialDelayMs: 10, maxDelayMs: 10_000, factor: 3, jitter: 0 });
    expect([b.next(), b.next(), b.next()]).toEqual([10, 30, 90]);
  });

  it('applies ± jitter around the base delay and never exceeds the cap', () => {
    const low = createBackoff({ initialDelayMs: 1000, maxDelayMs: 1100, jitter: 0.2, random: () => 0 });
    const high = createBackoff({ initialDelayMs: 1000, maxDelayMs: 1100, jitter: 0.2, random: () => 0.999999 });
    expect(low.next()).toBe(800);
    expect(high.next()).toBe(1100); // 1200 capped
    const mid = createBackoff({ initialDelayMs: 1000, maxDelayMs: 5000, random: () => 0.5 });
    expect(mid.next()).toBe(1000);
  });

  it('spreads delays with the default random source within the jitter band', () => {
    const b = createBackoff({ initialDelayMs: 1000, maxDelayMs: 1000 });
    for (let i = 0; i < 100; i++) {
      const d = b.next();
      expect(d).toBeGreaterThanOrEqual(800);
      expect(d).toBeLessThanOrEqual(1000);
    }
  });

  it('reset() starts over and clears the attempt count', () => {
    const b = createBackoff({ initialDelayMs: 50, maxDelayMs: 1000, jitter: 0 });
    b.next();
    b.next();
    b.reset();
    expect(b.attempts).toBe(0);
    expect(b.next()).toBe(50);
  });

  it('stays finite after very many attempts', () => {
    const b = createBackoff({ initialDelayMs: 1, maxDelayMs: 30_000, jitter: 0 });
    let last = 0;
    for (let i = 0; i < 5000; i++) last = b.next();
    expect(last).toBe(30_000);
    const zero = createBackoff({ initialDelayMs: 0, maxDelayMs: 10 });
    for (let i = 0; i < 2000; i++) expect(zero.next()).toBe(0);
  });

  it('rejects out-of-range options with RangeError', () => {
    expect(() => createBackoff({ initialDelayMs: -1, maxDelayMs: 10 })).toThrow(RangeError);
    expect(() => createBackoff({ initialDelayMs: 100, maxDelayMs: 10 })).toThrow(RangeError);
    expect(() => createBackoff({ initialDelayMs: 1, maxDelayMs: 10, factor: 0.5 })).toThrow(RangeError);
    expect(() => createBackoff({ initialDelayMs: 1, maxDelayMs: 10, jitter: 1.5 })).toThrow(RangeError);
    expect(() => createBackoff({ initialDelayMs: Number.NaN, maxDelayMs: 10 })).toThrow(RangeError);
  });
});
