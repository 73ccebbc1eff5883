/**
 * Pure parts of the pages: try-it arguments from a JSON Schema form, CSV export, usage totals,
 * the live page's bounded lists.
 */
import { describe, expect, it } from 'vitest';
import { toCsv } from '../src/format.ts';
import { append, MAX_LIVE_ENTRIES } from '../src/pages/live.tsx';
import { totals } from '../src/pages/usage.tsx';
import { fieldKind, toArguments } from '../src/schema-form.tsx';

describe('try-it form', () => {
  const schema = {
    type: 'object',
    properties: {
      message: { type: 'string' },
      count: { type: 'integer' },
      ratio: { type: 'number' },
      loud: { type: 'boolean' },
      level: { enum: ['low', 'high', 3] },
      tags: { type: 'array', items: { type: 'string' } },
      note: { type: ['string', 'null'] },
    },
    required: ['message', 'count'],
  };

  it('gives each property the input of its type', () => {
    const kinds = Object.fromEntries(Object.entries(schema.properties).map(([k, v]) => [k, fieldKind(v)]));
    expect(kinds).toEqual({
      message: 'string',
      count: 'integer',
      ratio: 'number',
      loud: 'boolean',
      level: 'enum',
      tags: 'json',
      note: 'string',
    });
  });

  it('converts values to typed arguments and leaves empty optional ones out', () => {
    const { args, errors } = toArguments(schema, {
      message: 'hi',
      count: '3',
      ratio: '',
      loud: 'true',
      level: '3',
      tags: '["a","b"]',
      note: '',
    });
    expect(errors).toEqual({});
    expect(args).toEqual({ message: 'hi', count: 3, loud: true, level: 3, tags: ['a', 'b'] });
  });

  it('reports missing required values, non-integers and bad JSON per property', () => {
    const { errors } = toArguments(schema, { message: ' ', count: '2.5', tags: '[oops' });
    expect(errors).toEqual({ message: 'required', count: 'must be a whole number', tags: 'must be valid JSON' });
  });
});

describe('CSV export', () => {
  it('quotes fields with commas, quotes or line breaks and ends lines with CRLF (RFC 4180)', () => {
    expect(
      toCsv(
        ['a', 'b'],
        [
          ['x,y', 'say "hi"'],
          [null, 'two\nlines'],
        ],
      ),
    ).toBe('a,b\r\n"x,y","say ""hi"""\r\n,"two\nlines"\r\n');
  });
});

describe('usage totals', () => {
  it('sums each key over its buckets, busiest first, with latency weighted by non-blocked requests', () => {
    const row = (key: string | null, count: number, blocked: number, avg: number | null) => ({
      bucket: '2026-01-01T00:00:00.000Z',
      key,
      count,
      success: count - blocked,
      blocked,
      errors: 0,
      avgLatencyMs: avg,
    });
    const t = totals([row('echo', 1, 0, 10), row('echo', 3, 1, 40), row('add', 5, 0, 2), row(null, 1, 1, null)]);
    expect(t.map((x) => [x.key, x.count, x.blocked, x.avgLatencyMs])).toEqual([
      ['add', 5, 0, 2],
      ['echo', 4, 1, 30],
      ['(none)', 1, 1, null],
    ]);
  });
});

describe('live lists', () => {
  it(`keep at most ${MAX_LIVE_ENTRIES} entries, dropping the oldest`, () => {
    let list: number[] = [];
    for (let i = 0; i < MAX_LIVE_ENTRIES + 25; i++) list = append(list, i);
    expect(list).toHaveLength(MAX_LIVE_ENTRIES);
    expect(list[0]).toBe(25);
    expect(list.at(-1)).toBe(MAX_LIVE_ENTRIES + 24);
  });
});
