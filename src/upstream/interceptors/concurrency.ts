/**
 * The concurrency step: at most `maxInFlight` calls of an upstream hold a slot at once, up to
 * `maxQueue` more wait first come first served (`policy/concurrency.ts`). The slot is held across
 * the retry and released when the call's answer is final. A call refused (queue full, queue
 * timeout) is answered with `SWB_ERR_UPSTREAM_BUSY` without reaching the upstream. Health probes
 * are not held back.
 *
 * @module
 */
import type { ConcurrencyLimiter, Release } from '../../policy/concurrency.js';
import type { JsonRpcResponse } from '../../protocol/jsonrpc.js';
import { errorResponseOf, type Dispatch, type UpstreamInterceptor, type UpstreamRequest } from '../dispatch.js';

/** Creates the concurrency step of one upstream around its limiter. */
export function createConcurrencyInterceptor(limiter: ConcurrencyLimiter): UpstreamInterceptor {
  return (next: Dispatch): Dispatch =>
    (call: UpstreamRequest): Promise<JsonRpcResponse> => {
      if (call.probe) return next(call);
      let slot: Promise<Release> | Release;
      try {
        slot = limiter.acquire();
      } catch (err) {
        slot = Promise.reject(err instanceof Error ? err : new Error(String(err)));
      }
      return typeof slot === 'function'
        ? next(call).finally(slot)
        : slot.then(
            (release) => next(call).finally(release),
            (err: unknown) => call.settle(errorResponseOf(err)),
          );
    };
}
