import { describe, expect, it } from 'vitest';
import { GatewayError } from '../../../src/errors.js';
import {
  createConcurrencyLimiter,
  type ConcurrencyLimiter,
  type ConcurrencyLimiterOptions,
  type Release,
  type TimerClock,
} from '../../../src/policy/concurrency.js';

function limiter(options: Partial<ConcurrencyLimiterOptions> = {}): ConcurrencyLimiter {
  return createConcurrencyLimiter({ maxInFlight: 1, maxQueue: 10, queueTimeoutMs: 30_000, name: 'echo', ...options });
}

/** A slot taken synchronously (fails the test if acquire had to wait). */
function takeNow(l: ConcurrencyLimiter): Release {
  const r = l.acquire();
  expect(typeof r).toBe('function');
  return r as Release;
}

/** A slot that must be waited for (fails the test if acquire returned at once). */
function wait(l: ConcurrencyLimiter, signal?: AbortSignal): Promise<Release> {
  const r = l.acquire(signal);
  expect(r).toBeInstanceOf(Promise);
  return r as Promise<Release>;
}

function thrown(fn: () => unknown): unknown {
  try {
    fn();
  } catch (e) {
    return e;
  }
  return undefined;
}

/** A timer clock whose timers fire only when the test says so. */
function manualClock(): TimerClock & { fireAll(): void; readonly pending: number } {
  const timers = new Map<number, () => void>();
  let next = 1;
  return {
    setTimeout(callback) {
      const id = next++;
      timers.set(id, callback);
      return id;
    },
    clearTimeout(handle) {
      timers.delete(handle as number);
    },
    fireAll() {
      const due = [...timers.values()];
      timers.clear();
      for (const fn of due) fn();
    },
    get pending() {
      return timers.size;
    },
  };
}

describe('createConcurrencyLimiter', () => {
  it('hands out free slots synchronously and counts them', () => {
    const l = limiter({ maxInFlight: 3 });
    const releases = [takeNow(l), takeNow(l), takeNow(l)];
    expect(l.inFlight).toBe(3);
    expect(l.queued).toBe(0);
    for (const r of releases) r();
    expect(l.inFlight).toBe(0);
  });

  it('ignores a second call of the same release', () => {
    const l = limiter({ maxInFlight: 2 });
    const a = takeNow(l);
    takeNow(l);
    a();
    a();
    expect(l.inFlight).toBe(1);
  });

  it('queues beyond maxInFlight and serves waiters first come, first served', async () => {
    const l = limiter({ maxInFlight: 1 });
    const first = takeNow(l);
    const order: string[] = [];
    const waiters = ['a', 'b', 'c'].map((name) =>
      wait(l).then((release) => {
        order.push(name);
        return release;
      }),
    );
    expect(l.queued).toBe(3);
    first();
    const a = await waiters[0]!;
    expect(l.inFlight).toBe(1);
    expect(l.queued).toBe(2);
    a();
    (await waiters[1]!)();
    (await waiters[2]!)();
    expect(order).toEqual(['a', 'b', 'c']);
    expect(l.inFlight).toBe(0);
    expect(l.queued).toBe(0);
  });

  it('passes a released slot to the longest waiter, not to a newcomer', async () => {
    const l = limiter({ maxInFlight: 1 });
    const first = takeNow(l);
    const waiting = wait(l);
    first();
    // The slot now belongs to the waiter even though its promise has not settled yet.
    expect(l.inFlight).toBe(1);
    const newcomer = wait(l);
    (await waiting)();
    (await newcomer)();
    expect(l.inFlight).toBe(0);
  });

  it('refuses synchronously with SWB_ERR_UPSTREAM_BUSY (503) when the queue is full', () => {
    const l = limiter({ maxInFlight: 1, maxQueue: 2 });
    takeNow(l);
    void wait(l);
    void wait(l);
    const e = thrown(() => l.acquire());
    expect(e).toBeInstanceOf(GatewayError);
    expect(e).toMatchObject({
      code: 'SWB_ERR_UPSTREAM_BUSY',
      status: 503,
      data: { reason: 'queue_full', server: 'echo' },
    });
    expect(l.queued).toBe(2);
  });

  it('never queues with maxQueue 0', () => {
    const l = limiter({ maxInFlight: 1, maxQueue: 0 });
    takeNow(l);
    expect(thrown(() => l.acquire())).toMatchObject({ code: 'SWB_ERR_UPSTREAM_BUSY', data: { reason: 'queue_full' } });
  });

  it('never queues with queueTimeoutMs 0', () => {
    const l = limiter({ maxInFlight: 1, maxQueue: 10, queueTimeoutMs: 0 });
    takeNow(l);
    expect(thrown(() => l.acquire())).toMatchObject({ code: 'SWB_ERR_UPSTREAM_BUSY' });
  });

  it('rejects a waiter after queueTimeoutMs with SWB_ERR_UPSTREAM_BUSY and a clear message', async () => {
    const l = limiter({ maxInFlight: 1, queueTimeoutMs: 20 });
    const first = takeNow(l);
    const started = performance.now();
    const err = await wait(l).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(performance.now() - started).toBeGreaterThanOrEqual(15);
    expect(err).toBeInstanceOf(GatewayError);
    expect(err).toMatchObject({
      code: 'SWB_ERR_UPSTREAM_BUSY',
      status: 503,
      data: { reason: 'queue_timeout', server: 'echo' },
    });
    expect((err as GatewayError).message).toMatch(/upstream echo is busy: no slot became free within 20ms/);
    expect(l.queued).toBe(0);
    // The timed-out waiter does not get the slot when it is released.
    first();
    expect(l.inFlight).toBe(0);
  });

  it('disarms the timer of a waiter that got its slot', async () => {
    const clock = manualClock();
    const l = limiter({ maxInFlight: 1, clock });
    const first = takeNow(l);
    const waiting = wait(l);
    expect(clock.pending).toBe(1);
    first();
    const release = await waiting;
    expect(clock.pending).toBe(0);
    release();
    expect(l.inFlight).toBe(0);
  });

  it('times out only the waiters whose timers fire, keeping the rest in order', async () => {
    const clock = manualClock();
    const l = limiter({ maxInFlight: 1, clock });
    const first = takeNow(l);
    const a = wait(l);
    clock.fireAll();
    const b = wait(l);
    await expect(a).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_BUSY', data: { reason: 'queue_timeout' } });
    expect(l.queued).toBe(1);
    first();
    (await b)();
    expect(l.inFlight).toBe(0);
  });

  it('removes a waiter whose signal aborts and rejects with the signal reason', async () => {
    const l = limiter({ maxInFlight: 1 });
    const first = takeNow(l);
    const ac = new AbortController();
    const aborted = wait(l, ac.signal);
    const after = wait(l);
    const reason = new Error('client cancelled');
    ac.abort(reason);
    await expect(aborted).rejects.toBe(reason);
    expect(l.queued).toBe(1);
    first();
    (await after)();
    expect(l.inFlight).toBe(0);
  });

  it('ignores the signal of a waiter once it holds its slot', async () => {
    const l = limiter({ maxInFlight: 1 });
    const first = takeNow(l);
    const ac = new AbortController();
    const served = wait(l, ac.signal);
    first();
    const release = await served;
    const next = wait(l);
    ac.abort(new Error('too late'));
    expect(l.queued).toBe(1);
    expect(l.inFlight).toBe(1);
    release();
    (await next)();
    expect(l.inFlight).toBe(0);
  });

  it('throws the reason of an already aborted signal without taking a slot', () => {
    const l = limiter({ maxInFlight: 1 });
    const reason = new Error('gone');
    expect(thrown(() => l.acquire(AbortSignal.abort(reason)))).toBe(reason);
    expect(l.inFlight).toBe(0);
  });

  it('keeps at most maxInFlight real tasks running while many run through it', async () => {
    const l = limiter({ maxInFlight: 3, maxQueue: 100 });
    let running = 0;
    let peak = 0;
    const gates: (() => void)[] = [];
    const task = async (): Promise<void> => {
      const r = l.acquire();
      const release = typeof r === 'function' ? r : await r;
      try {
        running++;
        peak = Math.max(peak, running);
        await new Promise<void>((resolve) => gates.push(resolve));
      } finally {
        running--;
        release();
      }
    };
    const all = Promise.all(Array.from({ length: 20 }, task));
    // Let the tasks start, then open gates one by one until every task is done.
    let done = false;
    void all.then(() => (done = true));
    while (!done) {
      await new Promise((resolve) => setImmediate(resolve));
      gates.shift()?.();
    }
    await all;
    expect(peak).toBe(3);
    expect(l.inFlight).toBe(0);
    expect(l.queued).toBe(0);
  });

  it('rejects invalid options with RangeError', () => {
    expect(() => limiter({ maxInFlight: 0 })).toThrow(RangeError);
    expect(() => limiter({ maxInFlight: 1.5 })).toThrow(RangeError);
    expect(() => limiter({ maxQueue: -1 })).toThrow(RangeError);
    expect(() => limiter({ queueTimeoutMs: Number.NaN })).toThrow(RangeError);
    expect(() => limiter({ queueTimeoutMs: -1 })).toThrow(RangeError);
  });

  it('says "upstream is busy" without a name', () => {
    const l = createConcurrencyLimiter({ maxInFlight: 1, maxQueue: 0, queueTimeoutMs: 1000 });
    takeNow(l);
    const e = thrown(() => l.acquire()) as GatewayError;
    expect(e.message).toMatch(/^upstream is busy/);
    expect(e.data).toEqual({ reason: 'queue_full' });
  });
});
