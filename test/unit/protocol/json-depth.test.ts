import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { exceedsJsonDepth } from '../../../src/protocol/json-depth.js';

/** `depth` nested arrays around `inner`. */
const nested = (depth: number, inner = '1') => '['.repeat(depth) + inner + ']'.repeat(depth);

describe('exceedsJsonDepth', () => {
  it('allows exactly the limit and refuses one more level', () => {
    expect(exceedsJsonDepth(nested(64), 64)).toBe(false);
    expect(exceedsJsonDepth(nested(65), 64)).toBe(true);
  });

  it('counts objects and arrays alike, the outer message object as depth 1', () => {
    const text = JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'x', params: { a: [{ b: [1] }] } }); // depth 5
    expect(exceedsJsonDepth(text.padEnd(200), 5)).toBe(false);
    expect(exceedsJsonDepth(text.padEnd(200), 4)).toBe(true);
  });

  it('ignores brackets inside strings, including after escaped quotes and backslashes', () => {
    const text = JSON.stringify({ a: 'x\\', b: ['"[[[[', '\\"{{{{{'], c: '[[[[[[[[[[', d: '\\\\"]]]]' });
    expect(JSON.parse(text)).toBeTypeOf('object');
    expect(exceedsJsonDepth(text, 2)).toBe(false);
    expect(exceedsJsonDepth(text, 1)).toBe(true);
  });

  it('refuses the 100 000-deep message that would overflow JSON.stringify', () => {
    const text = `{"jsonrpc":"2.0","id":1,"method":"tools/call","params":{"name":"echo","arguments":{"x":${nested(100_000)}}}}`;
    expect(() => JSON.stringify(JSON.parse(text))).toThrow(RangeError);
    expect(exceedsJsonDepth(text, 64)).toBe(true);
  });

  it('leaves malformed text within the limit to JSON.parse', () => {
    expect(exceedsJsonDepth('{"a":"unterminated [[[[[[[[[[[[[[[[[[[[[[[[[[[[[[', 4)).toBe(false);
    expect(exceedsJsonDepth(']]]]]]]]]]]]]]]]]][[[[', 4)).toBe(false);
  });

  it('agrees with the depth of the parsed value for any JSON value and limit', () => {
    const depthOf = (v: unknown): number =>
      typeof v === 'object' && v !== null
        ? 1 + Math.max(0, ...Object.values(v as Record<string, unknown>).map(depthOf))
        : 0;
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 12 }), fc.integer({ min: 1, max: 12 }), (value, limit) => {
        const text = JSON.stringify(value);
        expect(exceedsJsonDepth(text, limit)).toBe(depthOf(value) > limit);
      }),
      { numRuns: 2000 },
    );
  });
});
