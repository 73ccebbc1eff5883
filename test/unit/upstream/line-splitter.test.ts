import { describe, expect, it } from 'vitest';
import { createLineSplitter } from '../../../src/upstream/stdio-transport.js';

function split(chunks: (string | Buffer)[], maxLineBytes = 1024): { lines: string[]; overflows: string[] } {
  const lines: string[] = [];
  const overflows: string[] = [];
  const s = createLineSplitter({ maxLineBytes, onLine: (l) => lines.push(l), onOverflow: (p) => overflows.push(p) });
  for (const c of chunks) s.push(typeof c === 'string' ? Buffer.from(c) : c);
  s.end();
  return { lines, overflows };
}

describe('createLineSplitter', () => {
  it('splits several lines in one chunk', () => {
    expect(split(['a\nbb\nccc\n']).lines).toEqual(['a', 'bb', 'ccc']);
  });

  it('joins a line spread over many chunks', () => {
    expect(split(['{"a"', ':', '1}', '\n{"b":2}\n']).lines).toEqual(['{"a":1}', '{"b":2}']);
  });

  it('strips \\r before \\n, also when \\r and \\n arrive in different chunks', () => {
    expect(split(['one\r\ntwo\r', '\nthree\n']).lines).toEqual(['one', 'two', 'three']);
  });

  it('keeps a multi-byte character split across chunks intact', () => {
    const bytes = Buffer.from('héllo ✓\n');
    const cut = bytes.indexOf(0xc3) + 1; // between the two bytes of é
    expect(split([bytes.subarray(0, cut), bytes.subarray(cut)]).lines).toEqual(['héllo ✓']);
    const check = Buffer.from('✓\n');
    expect(split([check.subarray(0, 1), check.subarray(1, 2), check.subarray(2)]).lines).toEqual(['✓']);
  });

  it('delivers empty lines and a final unterminated line on end()', () => {
    expect(split(['a\n\nb']).lines).toEqual(['a', '', 'b']);
  });

  it('reports an over-long line once with its prefix and resumes after the next newline', () => {
    const { lines, overflows } = split(['x'.repeat(30), 'y'.repeat(30), 'z'.repeat(30), '\nok\n'], 16);
    expect(overflows).toEqual(['x'.repeat(16)]);
    expect(lines).toEqual(['ok']);
    const oneChunk = split(['a'.repeat(40) + '\nfine\n'], 16);
    expect(oneChunk.overflows).toEqual(['a'.repeat(16)]);
    expect(oneChunk.lines).toEqual(['fine']);
  });

  it('accepts a line of exactly maxLineBytes followed by \\r\\n', () => {
    expect(split(['abcd', '\r', '\n'], 4)).toEqual({ lines: ['abcd'], overflows: [] });
  });
});
