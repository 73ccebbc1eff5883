import { describe, expect, it } from 'vitest';
import { stderrLogLevel } from '../../../src/upstream/stdio-transport.js';

describe('stderrLogLevel', () => {
  it.each([
    'Error: ENOENT',
    'TypeError: x is not a function',
    'FATAL database gone',
    'panic: runtime error',
    'Unhandled exception in thread',
    'Traceback (most recent call last):',
    'warning: deprecated flag',
    'WARN slow start',
  ])('warn for %j', (line) => {
    expect(stderrLogLevel(line)).toBe('warn');
  });

  it.each(['Server running on stdio', 'listening', 'connected to 127.0.0.1', 'loaded 3 tools'])(
    'debug for %j',
    (line) => {
      expect(stderrLogLevel(line)).toBe('debug');
    },
  );
});
