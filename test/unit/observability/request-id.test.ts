import { describe, expect, it } from 'vitest';
import { MAX_INBOUND_REQUEST_ID_LENGTH, nextRequestId, requestIdFrom } from '../../../src/observability/request-id.js';

describe('request ids', () => {
  it('generates distinct, short ids sharing one process prefix', () => {
    const ids = Array.from({ length: 10_000 }, () => nextRequestId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 5)) expect(id).toMatch(/^[0-9a-z]{8}-[0-9a-z]+$/);
    expect(new Set(ids.map((id) => id.split('-')[0])).size).toBe(1);
    expect(ids.at(-1)!.length).toBeLessThanOrEqual(13);
  });

  it('accepts a well-formed inbound id and replaces anything else', () => {
    expect(requestIdFrom('3f2c9a1e-7b1d-4c1e-9a55-1f0b1d2e3c4d')).toBe('3f2c9a1e-7b1d-4c1e-9a55-1f0b1d2e3c4d');
    expect(requestIdFrom('Root=1-67891233-abcdef012345678912345678')).toBe('Root=1-67891233-abcdef012345678912345678');
    for (const bad of [
      undefined,
      '',
      'two words',
      'line\nbreak',
      'x'.repeat(MAX_INBOUND_REQUEST_ID_LENGTH + 1),
      '"quoted"',
    ]) {
      const id = requestIdFrom(bad);
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-z]{8}-[0-9a-z]+$/);
    }
  });
});
