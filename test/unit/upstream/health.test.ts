import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { GatewayError } from '../../../src/errors.js';
import type { JsonRpcResponse } from '../../../src/protocol/jsonrpc.js';
import { healthOutcome, UpstreamHealth } from '../../../src/upstream/health.js';

const OK: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: {} };

function failure(code: ConstructorParameters<typeof GatewayError>[0], data?: Record<string, unknown>): JsonRpcResponse {
  return { jsonrpc: '2.0', id: 1, error: new GatewayError(code, 'x', data ? { data } : {}).toJsonRpcError() };
}

describe('healthOutcome', () => {
  it('counts network errors, timeouts, closed connections and HTTP 5xx as failures', () => {
    expect(healthOutcome(failure('SWB_ERR_UPSTREAM_UNAVAILABLE'))).toBe('failed');
    expect(healthOutcome(failure('SWB_ERR_UPSTREAM_TIMEOUT'))).toBe('failed');
    expect(healthOutcome(failure('SWB_ERR_UPSTREAM_CLOSED'))).toBe('failed');
    expect(healthOutcome(failure('SWB_ERR_UPSTREAM_HTTP', { status: 503 }))).toBe('failed');
  });

  it("counts the gateway's own refusals (credentials, limits, cancellation) neither way", () => {
    expect(healthOutcome(failure('SWB_ERR_UPSTREAM_AUTH'))).toBe('neutral');
    expect(healthOutcome(failure('SWB_ERR_UPSTREAM_BUSY'))).toBe('neutral');
    expect(healthOutcome({ jsonrpc: '2.0', id: 1, error: { code: -32800, message: 'Request cancelled' } })).toBe(
      'neutral',
    );
  });

  it('treats what the upstream answered (results, JSON-RPC errors, HTTP 4xx) as reachable', () => {
    expect(healthOutcome(OK)).toBe('answered');
    expect(healthOutcome({ jsonrpc: '2.0', id: 1, error: { code: -32601, message: 'Method not found' } })).toBe(
      'answered',
    );
    expect(healthOutcome(failure('SWB_ERR_UPSTREAM_HTTP', { status: 401 }))).toBe('answered');
    // initialize answered 401: wrapped as UNAVAILABLE, but the upstream did answer.
    const wrapped = failure('SWB_ERR_UPSTREAM_UNAVAILABLE', {
      upstreamError: { code: -33026, message: 'x', data: { code: 'SWB_ERR_UPSTREAM_HTTP', status: 401 } },
    });
    expect(healthOutcome(wrapped)).toBe('answered');
  });
});

describe('UpstreamHealth', () => {
  beforeEach(() => {
    vi.useFakeTimers();
  });
  afterEach(() => {
    vi.useRealTimers();
  });

  function tracker(probeAnswer: () => JsonRpcResponse) {
    const changes: boolean[] = [];
    let probes = 0;
    const health: UpstreamHealth = new UpstreamHealth({
      failureThreshold: 3,
      probeIntervalMs: 100,
      maxProbeIntervalMs: 400,
      probe: () => {
        probes++;
        health.record(probeAnswer());
        return Promise.resolve();
      },
      onChange: (up) => changes.push(up),
    });
    return { health, changes, probes: () => probes };
  }

  it('marks down only after the threshold of consecutive failures; an answer in between resets the count', () => {
    const { health, changes } = tracker(() => OK);
    const down = failure('SWB_ERR_UPSTREAM_UNAVAILABLE');
    health.record(down);
    health.record(down);
    health.record(OK);
    // A refusal of the gateway's own neither resets nor counts.
    health.record(down);
    health.record(failure('SWB_ERR_UPSTREAM_AUTH'));
    expect(health.failures).toBe(1);
    health.record(OK);
    health.record(down);
    health.record(down);
    expect(health.down).toBe(false);
    health.record(down);
    expect(health.down).toBe(true);
    expect(changes).toEqual([false]);
  });

  it('probes with backoff while down and marks up when the probe is answered', async () => {
    let answering = false;
    const { health, changes, probes } = tracker(() => (answering ? OK : failure('SWB_ERR_UPSTREAM_UNAVAILABLE')));
    health.markDown('unreachable');
    // First delay 100 ms ± 20 % jitter, then 200 ms ± 20 %, capped at 400 ms.
    await vi.advanceTimersByTimeAsync(79);
    expect(probes()).toBe(0);
    await vi.advanceTimersByTimeAsync(41);
    expect(probes()).toBe(1);
    await vi.advanceTimersByTimeAsync(40);
    expect(probes()).toBe(1);
    answering = true;
    await vi.advanceTimersByTimeAsync(1_000);
    expect(health.down).toBe(false);
    expect(changes).toEqual([false, true]);
    const after = probes();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(probes()).toBe(after);
  });

  it('stops probing when stopped', async () => {
    const { health, probes } = tracker(() => failure('SWB_ERR_UPSTREAM_UNAVAILABLE'));
    health.markDown('unreachable');
    health.stop();
    await vi.advanceTimersByTimeAsync(5_000);
    expect(probes()).toBe(0);
  });
});
