import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../../src/gateway/cursor.js';
import { GatewayError } from '../../../src/errors.js';

function decodeError(cursor: unknown): unknown {
  try {
    decodeCursor(cursor);
  } catch (err) {
    return err;
  }
  return undefined;
}

function b64(text: string): string {
  return Buffer.from(text).toString('base64url');
}

describe('pagination cursors', () => {
  it.each([0, 1, 3, 35, 36, 1000, 2 ** 40])('round-trips offset %d', (offset) => {
    expect(decodeCursor(encodeCursor(offset))).toBe(offset);
  });

  it('gives different offsets different cursors', () => {
    expect(encodeCursor(3)).not.toBe(encodeCursor(6));
  });

  it('produces a string safe to put in JSON and URLs', () => {
    expect(encodeCursor(123_456)).toMatch(/^[A-Za-z0-9_-]+$/);
  });

  it.each([
    ['an arbitrary string', 'garbage'],
    ['the empty string', ''],
    ['a base64url text without our prefix', b64('other:3')],
    ['our prefix without an offset', b64('swb1:')],
    ['a negative offset', b64('swb1:-5')],
    ['an offset that is not a number', b64('swb1:!!')],
    ['a number instead of a string', 42],
    ['null', null],
    ['an object', { offset: 3 }],
  ])('rejects %s with SWB_ERR_ROUTE_INVALID_CURSOR (JSON-RPC -32602)', (_what, cursor) => {
    const err = decodeError(cursor);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({ code: 'SWB_ERR_ROUTE_INVALID_CURSOR', jsonRpcCode: -32602 });
  });
});
