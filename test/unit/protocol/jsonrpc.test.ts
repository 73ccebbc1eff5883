/**
 * Properties of the JSON-RPC 2.0 message validator every inbound path uses (edge, upstream
 * transports, tunnel): it never throws, accepts exactly the well-formed messages, and names the
 * request id it could read.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { validateMessage } from '../../../src/protocol/jsonrpc.js';
import { checkProperty } from '../../helpers/fuzz.js';

const id = fc.oneof(fc.integer(), fc.double({ noNaN: true, noDefaultInfinity: true }), fc.string());
const params = fc.oneof(
  fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })),
  fc.record({ _meta: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 1 })) }),
  fc.array(fc.jsonValue({ maxDepth: 2 })),
);
const method = fc.string({ minLength: 1 });

/** Well-formed messages of all four kinds (JSON-RPC 2.0 §4, §5; MCP basic §Messages). */
const wellFormed = fc.oneof(
  fc.record({ jsonrpc: fc.constant('2.0'), id, method, params }, { requiredKeys: ['jsonrpc', 'id', 'method'] }),
  fc.record({ jsonrpc: fc.constant('2.0'), method, params }, { requiredKeys: ['jsonrpc', 'method'] }),
  fc.record({ jsonrpc: fc.constant('2.0'), id, result: fc.dictionary(fc.string(), fc.jsonValue({ maxDepth: 2 })) }),
  fc.record({
    jsonrpc: fc.constant('2.0'),
    id: fc.oneof(id, fc.constant(null)),
    error: fc.record(
      { code: fc.integer(), message: fc.string(), data: fc.jsonValue({ maxDepth: 2 }) },
      { requiredKeys: ['code', 'message'] },
    ),
  }),
);

/** Each member of a message, sometimes replaced by any JSON value or left out. */
const mutated = fc.record(
  {
    jsonrpc: fc.oneof(fc.constant('2.0'), fc.jsonValue({ maxDepth: 1 })),
    id: fc.oneof(id, fc.jsonValue({ maxDepth: 1 })),
    method: fc.oneof(method, fc.jsonValue({ maxDepth: 1 })),
    params: fc.oneof(params, fc.record({ _meta: fc.jsonValue({ maxDepth: 1 }) }), fc.jsonValue({ maxDepth: 2 })),
    result: fc.jsonValue({ maxDepth: 2 }),
    error: fc.oneof(fc.record({ code: fc.jsonValue({ maxDepth: 0 }) }), fc.jsonValue({ maxDepth: 1 })),
  },
  { requiredKeys: [] },
);

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function isId(v: unknown): boolean {
  return typeof v === 'string' || (typeof v === 'number' && Number.isFinite(v));
}

/** The validator's rules, written out independently as the oracle. */
function wellFormedByRule(v: unknown): boolean {
  if (!isObject(v) || v.jsonrpc !== '2.0') return false;
  if ('method' in v) {
    if (typeof v.method !== 'string' || v.method === '') return false;
    if (v.params !== undefined && (typeof v.params !== 'object' || v.params === null)) return false;
    const meta = (v.params as Record<string, unknown> | undefined)?._meta;
    if (meta !== undefined && !isObject(meta)) return false;
    return !('id' in v) || v.id === undefined || isId(v.id);
  }
  if ('result' in v === 'error' in v) return false;
  if (v.id !== null && !isId(v.id)) return false;
  return !('error' in v) || (isObject(v.error) && typeof v.error.code === 'number');
}

describe('validateMessage (properties)', () => {
  it('accepts every well-formed message, returning it unchanged', async () => {
    await checkProperty(
      fc.property(wellFormed, (m) => {
        expect(validateMessage(m)).toEqual({ ok: true, message: m });
      }),
      500,
    );
  });

  it('never throws on any JSON value and accepts exactly the messages the rules allow', async () => {
    await checkProperty(
      fc.property(fc.oneof(mutated, fc.jsonValue({ maxDepth: 3 })), (value) => {
        const v = validateMessage(value);
        expect(v.ok).toBe(wellFormedByRule(value));
        if (!v.ok) {
          // The id of a refusal is the message's own id when it could be read, else null.
          const own = isObject(value) && isId(value.id) ? value.id : null;
          expect([own, null]).toContain(v.id);
        }
      }),
      1_000,
    );
  });
});
