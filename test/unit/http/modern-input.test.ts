import { afterEach, describe, expect, it, vi } from 'vitest';
import { isGatewayError } from '../../../src/errors.js';
import { InputParking, type Parkable } from '../../../src/http/modern-input.js';

class Call implements Parkable {
  expired = 0;
  expire(): void {
    this.expired++;
  }
}

const binding = { principalId: 'alice', method: 'tools/call', name: 'echo' };

function refusal(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isGatewayError(err)) return `${err.code} ${err.message}`;
    throw err;
  }
  return 'accepted';
}

describe('InputParking (requestState of parked MRTR calls)', () => {
  afterEach(() => vi.useRealTimers());

  it('gives the parked call back once, for the same principal, method and name', () => {
    const parking = new InputParking<Call>(60_000);
    const call = new Call();
    const state = parking.park(call, binding);
    expect(state).toMatch(/^sw1\.[A-Za-z0-9_-]{24}\.[A-Za-z0-9_-]{43}$/);
    expect(parking.claim(state, binding)).toBe(call);
    expect(parking.size).toBe(0);
    expect(refusal(() => parking.claim(state, binding))).toMatch(/SWB_ERR_PROTOCOL_INVALID_STATE .*already used/);
  });

  it('refuses another principal, another method, another name, a changed MAC and garbage', () => {
    const parking = new InputParking<Call>(60_000);
    const state = parking.park(new Call(), binding);
    for (const other of [
      { ...binding, principalId: 'mallory' },
      { ...binding, method: 'prompts/get' },
      { ...binding, name: 'rm' },
    ]) {
      expect(
        refusal(() => parking.claim(state, other)),
        JSON.stringify(other),
      ).toMatch(/does not belong/);
    }
    const flipped = state.slice(0, -1) + (state.endsWith('A') ? 'B' : 'A');
    expect(refusal(() => parking.claim(flipped, binding))).toMatch(/does not belong/);
    expect(refusal(() => parking.claim('nonsense', binding))).toMatch(/malformed/);
    expect(refusal(() => parking.claim('sw1.unknownkey.mac', binding))).toMatch(/unknown/);
    // None of those spent it.
    expect(parking.claim(state, binding)).toBeInstanceOf(Call);
  });

  it('expires a call nobody claims in time, which then cannot be claimed', () => {
    vi.useFakeTimers();
    const parking = new InputParking<Call>(1_000);
    const call = new Call();
    const state = parking.park(call, binding);
    vi.advanceTimersByTime(999);
    expect(call.expired).toBe(0);
    vi.advanceTimersByTime(1);
    expect(call.expired).toBe(1);
    expect(refusal(() => parking.claim(state, binding))).toMatch(/unknown, already used or expired/);
  });

  it('does not accept a state from another gateway process (another secret)', () => {
    const a = new InputParking<Call>(60_000);
    const b = new InputParking<Call>(60_000);
    const state = a.park(new Call(), binding);
    expect(refusal(() => b.claim(state, binding))).toMatch(/unknown/);
  });
});
