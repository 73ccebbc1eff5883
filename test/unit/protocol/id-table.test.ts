import { describe, expect, it } from 'vitest';
import { IdTable } from '../../../src/protocol/id-table.js';

describe('IdTable', () => {
  it('keeps number and string ids apart (1 and "1" are different JSON-RPC ids)', () => {
    const t = new IdTable<string>();
    t.set(1, 'number one');
    t.set('1', 'string one');
    expect(t.size).toBe(2);
    expect(t.get(1)).toBe('number one');
    expect(t.get('1')).toBe('string one');
    expect(t.delete(1)).toBe(true);
    expect(t.get(1)).toBeUndefined();
    expect(t.get('1')).toBe('string one');
    expect(t.size).toBe(1);
  });

  it('counts a replaced id once, and a missing delete as false', () => {
    const t = new IdTable<{ v: number }>();
    t.set(7, { v: 1 });
    t.set(7, { v: 2 });
    expect(t.size).toBe(1);
    expect(t.get(7)).toEqual({ v: 2 });
    expect(t.delete(8)).toBe(false);
    expect(t.delete('7')).toBe(false);
    expect(t.size).toBe(1);
  });

  it('accepts ids that are special on plain objects', () => {
    const t = new IdTable<number>();
    const ids = ['__proto__', 'constructor', 'toString', 'hasOwnProperty', '', -1, 0, 1.5, 2 ** 53];
    ids.forEach((id, i) => t.set(id, i));
    expect(t.size).toBe(ids.length);
    ids.forEach((id, i) => expect(t.get(id)).toBe(i));
    expect(t.get('valueOf')).toBeUndefined();
    expect(Object.getPrototypeOf(t.values())).toBe(Array.prototype);
  });

  it('holds a sliding window of sequential ids (the in-flight pattern) with the right size', () => {
    const t = new IdTable<number>();
    for (let id = 0; id < 100_000; id++) {
      t.set(id, id);
      if (id >= 16) expect(t.delete(id - 16)).toBe(true);
    }
    expect(t.size).toBe(16);
    expect(t.values().sort((a, b) => a - b)).toEqual(Array.from({ length: 16 }, (_, i) => 99_984 + i));
  });

  it('returns a snapshot from values() that deleting during the walk does not disturb, and clears', () => {
    const t = new IdTable<number>();
    for (let i = 0; i < 5; i++) t.set(i, i);
    t.set('a', 10);
    const seen: number[] = [];
    for (const v of t.values()) {
      seen.push(v);
      t.delete(v === 10 ? 'a' : v);
    }
    expect(seen.sort((a, b) => a - b)).toEqual([0, 1, 2, 3, 4, 10]);
    expect(t.size).toBe(0);
    t.set(1, 1);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.get(1)).toBeUndefined();
    expect(t.values()).toEqual([]);
  });

  it('agrees with a Map under random inserts, replaces and deletes of colliding and mixed ids', () => {
    // A small deterministic PRNG (mulberry32), so a failure reproduces.
    let seed = 0x5eed;
    const random = (): number => {
      seed = (seed + 0x6d2b79f5) | 0;
      let t = Math.imul(seed ^ (seed >>> 15), 1 | seed);
      t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
      return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    };
    // Multiples of 16 share home slots; strings and negative / fractional numbers mix in.
    const pool: Array<number | string> = [];
    for (let i = 0; i < 200; i++) pool.push(i * 16, i, -i, i + 0.5, `req-${i}`, String(i));
    const table = new IdTable<number>();
    const model = new Map<number | string, number>();
    for (let step = 0; step < 50_000; step++) {
      const id = pool[Math.floor(random() * pool.length)]!;
      const r = random();
      if (r < 0.5) {
        table.set(id, step);
        model.set(id, step);
      } else if (r < 0.9) {
        expect(table.delete(id)).toBe(model.delete(id));
      } else {
        expect(table.get(id)).toBe(model.get(id));
      }
      if (step % 997 === 0) {
        expect(table.size).toBe(model.size);
        for (const [k, v] of model) expect(table.get(k)).toBe(v);
        expect(table.values().sort((a, b) => a - b)).toEqual([...model.values()].sort((a, b) => a - b));
      }
    }
    // Drain: every id is deleted exactly once and the table ends empty.
    for (const k of [...model.keys()]) expect(table.delete(k)).toBe(true);
    expect(table.size).toBe(0);
    for (const k of pool) expect(table.get(k)).toBeUndefined();
  });
});
