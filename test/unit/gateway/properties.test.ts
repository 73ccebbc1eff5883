/**
 * Properties of aggregate names (`namespacedName`) and pagination cursors over random inputs.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { decodeCursor, encodeCursor } from '../../../src/gateway/cursor.js';
import { MAX_EXPOSED_NAME_LENGTH, namespacedName } from '../../../src/gateway/naming.js';
import { isGatewayError } from '../../../src/errors.js';
import { checkProperty } from '../../helpers/fuzz.js';

/** What LLM APIs accept as a tool name. */
const LLM_TOOL_NAME = /^[A-Za-z0-9_-]{1,64}$/;

const name = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9_-]{0,70}$/),
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
);
const separator = fc.stringMatching(/^[A-Za-z0-9_-]{0,3}$/);

describe('namespacedName (properties)', () => {
  it('always gives a valid tool name of at most 64 characters, the same for the same input', async () => {
    await checkProperty(
      fc.property(name, name, separator, (server, tool, sep) => {
        const exposed = namespacedName(server, tool, sep);
        expect(exposed).toMatch(LLM_TOOL_NAME);
        expect(exposed.length).toBeLessThanOrEqual(MAX_EXPOSED_NAME_LENGTH);
        expect(namespacedName(server, tool, sep)).toBe(exposed);
        const full = server + sep + tool;
        if (full.length <= MAX_EXPOSED_NAME_LENGTH && /^[A-Za-z0-9_-]+$/.test(full)) expect(exposed).toBe(full);
      }),
      1_000,
    );
  });

  it('gives distinct names to distinct joined names', async () => {
    await checkProperty(
      fc.property(name, name, name, name, separator, (s1, t1, s2, t2, sep) => {
        fc.pre(s1 + sep + t1 !== s2 + sep + t2);
        expect(namespacedName(s1, t1, sep)).not.toBe(namespacedName(s2, t2, sep));
      }),
      1_000,
    );
  });
});

describe('pagination cursors (properties)', () => {
  it('round-trips every safe offset through a URL-safe cursor', async () => {
    await checkProperty(
      fc.property(fc.nat({ max: Number.MAX_SAFE_INTEGER }), (offset) => {
        const cursor = encodeCursor(offset);
        expect(cursor).toMatch(/^[A-Za-z0-9_-]+$/);
        expect(decodeCursor(cursor)).toBe(offset);
      }),
      500,
    );
  });

  it('decodes any value to a safe offset or refuses it with SWB_ERR_ROUTE_INVALID_CURSOR, nothing else', async () => {
    const anyCursor = fc.oneof(
      fc.string(),
      fc.string({ unit: 'binary' }),
      fc.string().map((s) => Buffer.from(`swb1:${s}`).toString('base64url')),
      fc.jsonValue({ maxDepth: 1 }),
    );
    await checkProperty(
      fc.property(anyCursor, (cursor) => {
        let offset: number;
        try {
          offset = decodeCursor(cursor);
        } catch (err) {
          expect(isGatewayError(err) && err.code).toBe('SWB_ERR_ROUTE_INVALID_CURSOR');
          return;
        }
        expect(Number.isSafeInteger(offset) && offset >= 0).toBe(true);
        expect(decodeCursor(encodeCursor(offset))).toBe(offset);
      }),
      1_000,
    );
  });
});
