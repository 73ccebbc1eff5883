/**
 * The retry step: a call whose upstream session was lost (the upstream answered 404 to its
 * `Mcp-Session-Id`, MCP transports §Session Management) or whose request never left the gateway
 * (the transport was closing) is sent once more, on a fresh connection. It is also the step that
 * decides a call's answer is final, so it settles the call (metrics observer, health).
 *
 * @module
 */
import type { Logger } from '../../observability/logger.js';
import type { JsonRpcResponse } from '../../protocol/jsonrpc.js';
import type { Dispatch, UpstreamInterceptor, UpstreamRequest } from '../dispatch.js';

/**
 * Creates the retry step of one upstream.
 *
 * @param logger - the upstream's logger (one `info` line per retry)
 */
export function createRetryInterceptor(logger: Logger): UpstreamInterceptor {
  return (next: Dispatch): Dispatch =>
    async (call: UpstreamRequest): Promise<JsonRpcResponse> => {
      const response = await next(call);
      const data =
        'error' in response ? (response.error.data as { code?: string; notSent?: boolean } | undefined) : undefined;
      if (
        call.attempt === 0 &&
        !call.cancelled &&
        (data?.code === 'SWB_ERR_UPSTREAM_SESSION_EXPIRED' || data?.notSent === true)
      ) {
        logger.info(
          { reqId: call.ctx.reqId, reason: data.code },
          'upstream connection lost; reconnecting and retrying once',
        );
        call.reattempt();
        return call.settle(await next(call));
      }
      return call.settle(response);
    };
}
