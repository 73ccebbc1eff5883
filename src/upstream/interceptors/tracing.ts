/**
 * The tracing step: a client span per upstream call attempt, child of the client request's span
 * (OpenTelemetry semantic conventions for MCP: `mcp.method.name`), and for HTTP upstreams a
 * W3C `traceparent` header (Trace Context §3.2) so the upstream's spans join the trace. A call
 * without a parent span passes through untouched.
 *
 * @module
 */
import type { Span } from '@opentelemetry/api';
import type { Tracing } from '../../observability/tracing.js';
import type { JsonRpcResponse } from '../../protocol/jsonrpc.js';
import type { Dispatch, UpstreamInterceptor, UpstreamRequest } from '../dispatch.js';

/** Options for {@link createTracingInterceptor}. */
export interface TracingInterceptorOptions {
  /** The enabled tracer. */
  tracing: Tracing;
  /** The upstream server's configured name (`switchboard.server.name`). */
  serverName: string;
  /** Send `traceparent` (HTTP upstreams); stdio upstreams have no headers. */
  propagate: boolean;
}

/** Creates the tracing step of one upstream. */
export function createTracingInterceptor(options: TracingInterceptorOptions): UpstreamInterceptor {
  const { tracing, serverName, propagate } = options;
  return (next: Dispatch): Dispatch =>
    (call: UpstreamRequest): Promise<JsonRpcResponse> => {
      if (call.ctx.trace === undefined) return next(call);
      const method = call.method;
      const span = tracing.startClientSpan(method, call.ctx.trace as Span, {
        'mcp.method.name': method,
        'switchboard.server.name': serverName,
      });
      const traceparent = propagate ? tracing.traceparentOf(span) : undefined;
      if (traceparent !== undefined) call.headers = { ...call.headers, traceparent };
      return next(call).then((response) => {
        tracing.end(span, 'error' in response ? { jsonRpcErrorCode: response.error.code } : {});
        return response;
      });
    };
}
