import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import { NOOP_SPAN, SPAN_ATTRIBUTES, createTracing, type Tracing } from '../../../src/observability/tracing.js';
import {
  OTLP_SPAN_KIND,
  OTLP_STATUS,
  startOtlpReceiver,
  type OtlpReceiver,
  type ReceivedSpan,
} from './otlp-receiver.js';

const INBOUND_TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const INBOUND_SPAN_ID = '00f067aa0ba902b7';
const INBOUND_TRACEPARENT = `00-${INBOUND_TRACE_ID}-${INBOUND_SPAN_ID}-01`;

let receiver: OtlpReceiver;
let tracing: Tracing | undefined;
let logLines: Record<string, unknown>[];
let logger: Logger;

beforeEach(async () => {
  receiver = await startOtlpReceiver();
  logLines = [];
  logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb): void {
        logLines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        cb();
      },
    }),
  });
});

afterEach(async () => {
  await tracing?.shutdown();
  tracing = undefined;
  await receiver.close();
});

/** Environment pointing the exporter at the in-test receiver, in OTLP/HTTP JSON. */
function otlpEnv(extra: NodeJS.ProcessEnv = {}): NodeJS.ProcessEnv {
  return { OTEL_EXPORTER_OTLP_ENDPOINT: receiver.endpoint, OTEL_EXPORTER_OTLP_PROTOCOL: 'http/json', ...extra };
}

function byName(spans: ReceivedSpan[], name: string): ReceivedSpan {
  const found = spans.filter((s) => s.name === name);
  expect(found, `exactly one span named ${name}`).toHaveLength(1);
  return found[0]!;
}

describe('tracing export over OTLP/HTTP', () => {
  it('exports the server span and its child client span with matching ids, attributes and traceparent', async () => {
    tracing = createTracing({ env: otlpEnv({ OTEL_SERVICE_NAME: 'switchboard-under-test' }), logger });
    expect(tracing.enabled).toBe(true);

    const server = tracing.startServerSpan(
      'tools/call echo_echo',
      {
        [SPAN_ATTRIBUTES.MCP_METHOD_NAME]: 'tools/call',
        [SPAN_ATTRIBUTES.MCP_SESSION_ID]: 'session-1',
        [SPAN_ATTRIBUTES.TOOL_NAME]: 'echo_echo',
        [SPAN_ATTRIBUTES.HTTP_REQUEST_METHOD]: 'POST',
      },
      INBOUND_TRACEPARENT,
    );
    const client = tracing.startClientSpan('tools/call echo', server, {
      [SPAN_ATTRIBUTES.MCP_METHOD_NAME]: 'tools/call',
      [SPAN_ATTRIBUTES.TOOL_NAME]: 'echo',
      [SPAN_ATTRIBUTES.SERVER_NAME]: 'echo',
      [SPAN_ATTRIBUTES.NETWORK_TRANSPORT]: 'tcp',
    });
    const traceparent = tracing.traceparentOf(client);
    tracing.end(client, { statusCode: 200 });
    tracing.end(server, { statusCode: 200 });
    await tracing.shutdown();

    expect(receiver.requests.length).toBeGreaterThan(0);
    for (const r of receiver.requests) {
      expect(r).toMatchObject({ method: 'POST', path: '/v1/traces' });
      expect(r.contentType).toMatch(/^application\/json/);
    }
    expect(receiver.spans).toHaveLength(2);
    const s = byName(receiver.spans, 'tools/call echo_echo');
    const c = byName(receiver.spans, 'tools/call echo');

    // The server span continues the caller's trace; the client span is its child.
    expect(s.kind).toBe(OTLP_SPAN_KIND.SERVER);
    expect(s.traceId).toBe(INBOUND_TRACE_ID);
    expect(s.parentSpanId).toBe(INBOUND_SPAN_ID);
    expect(c.kind).toBe(OTLP_SPAN_KIND.CLIENT);
    expect(c.traceId).toBe(INBOUND_TRACE_ID);
    expect(c.parentSpanId).toBe(s.spanId);
    expect(c.spanId).not.toBe(s.spanId);

    // The header sent upstream names the client span, sampled.
    expect(traceparent).toBe(`00-${c.traceId}-${c.spanId}-01`);

    expect(s.attrs).toMatchObject({
      'mcp.method.name': 'tools/call',
      'mcp.session.id': 'session-1',
      'gen_ai.tool.name': 'echo_echo',
      'http.request.method': 'POST',
      'http.response.status_code': 200,
    });
    expect(c.attrs).toMatchObject({
      'mcp.method.name': 'tools/call',
      'gen_ai.tool.name': 'echo',
      'switchboard.server.name': 'echo',
      'network.transport': 'tcp',
      'http.response.status_code': 200,
    });
    expect(s.status?.code ?? OTLP_STATUS.UNSET).toBe(OTLP_STATUS.UNSET);
    expect(s.resource['service.name']).toBe('switchboard-under-test');
    expect(s.resource['telemetry.sdk.language']).toBe('nodejs');
    expect(logLines.some((l) => l.msg === 'tracing on: exporting spans with OTLP/HTTP JSON')).toBe(true);
  });

  it('starts a new trace when the inbound traceparent is absent or malformed', async () => {
    tracing = createTracing({ env: otlpEnv(), logger });
    const fresh = tracing.startServerSpan('ping', {});
    const malformed = tracing.startServerSpan('initialize', {}, '00-not-a-trace-01');
    const allZero = tracing.startServerSpan('tools/list', {}, `00-${'0'.repeat(32)}-${INBOUND_SPAN_ID}-01`);
    for (const span of [fresh, malformed, allZero]) tracing.end(span);
    await tracing.shutdown();

    expect(receiver.spans).toHaveLength(3);
    for (const span of receiver.spans) {
      expect(span.parentSpanId ?? '').toBe('');
      expect(span.traceId).toMatch(/^[0-9a-f]{32}$/);
      expect(span.traceId).not.toBe(INBOUND_TRACE_ID);
    }
    expect(new Set(receiver.spans.map((s) => s.traceId)).size).toBe(3);
  });

  it('records failures: JSON-RPC errors, 5xx answers, 4xx from upstreams and thrown errors', async () => {
    tracing = createTracing({ env: otlpEnv(), logger });
    const rpcError = tracing.startServerSpan('rpc-error', {});
    tracing.end(rpcError, { statusCode: 200, jsonRpcErrorCode: -32602 });
    const server4xx = tracing.startServerSpan('server-4xx', {});
    tracing.end(server4xx, { statusCode: 404 });
    const server5xx = tracing.startServerSpan('server-5xx', {});
    tracing.end(server5xx, { statusCode: 502 });
    const client4xx = tracing.startClientSpan('client-4xx', server5xx, {});
    tracing.end(client4xx, { statusCode: 401 });
    const thrown = tracing.startClientSpan('thrown', undefined, {});
    const error = Object.assign(new Error('upstream timed out'), { code: 'SWB_ERR_UPSTREAM_TIMEOUT' });
    tracing.end(thrown, { error });
    await tracing.shutdown();

    expect(byName(receiver.spans, 'rpc-error')).toMatchObject({
      status: { code: OTLP_STATUS.ERROR },
      attrs: { 'rpc.jsonrpc.error_code': -32602, 'error.type': '-32602' },
    });
    // A 4xx is the client's fault: not an error of the gateway's server span (HTTP semconv).
    const s4 = byName(receiver.spans, 'server-4xx');
    expect(s4.status?.code ?? OTLP_STATUS.UNSET).toBe(OTLP_STATUS.UNSET);
    expect(s4.attrs['error.type']).toBeUndefined();
    expect(byName(receiver.spans, 'server-5xx')).toMatchObject({
      status: { code: OTLP_STATUS.ERROR },
      attrs: { 'http.response.status_code': 502, 'error.type': '502' },
    });
    expect(byName(receiver.spans, 'client-4xx')).toMatchObject({
      status: { code: OTLP_STATUS.ERROR },
      attrs: { 'http.response.status_code': 401 },
    });
    const t = byName(receiver.spans, 'thrown');
    expect(t).toMatchObject({
      status: { code: OTLP_STATUS.ERROR, message: 'upstream timed out' },
      attrs: { 'error.type': 'SWB_ERR_UPSTREAM_TIMEOUT' },
    });
    expect(t.events?.map((e) => e.name)).toEqual(['exception']);
  });

  it('uses OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as the full URL', async () => {
    tracing = createTracing({
      env: { OTEL_TRACES_EXPORTER: 'otlp', OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${receiver.endpoint}/v1/traces` },
      logger,
    });
    tracing.end(tracing.startServerSpan('ping', {}));
    await tracing.shutdown();
    expect(receiver.spans.map((s) => s.name)).toEqual(['ping']);
  });

  it('exports nothing when tracing is disabled, whatever the endpoint says', async () => {
    for (const env of [
      otlpEnv({ OTEL_TRACES_EXPORTER: 'none' }),
      otlpEnv({ OTEL_SDK_DISABLED: 'true' }),
      otlpEnv({ OTEL_SDK_DISABLED: 'TRUE', OTEL_TRACES_EXPORTER: 'otlp' }),
    ]) {
      const off = createTracing({ env, logger });
      expect(off.enabled).toBe(false);
      const server = off.startServerSpan('tools/call echo', { [SPAN_ATTRIBUTES.MCP_METHOD_NAME]: 'tools/call' });
      const client = off.startClientSpan('tools/call echo', server, {});
      expect(server).toBe(NOOP_SPAN);
      expect(client).toBe(NOOP_SPAN);
      expect(off.traceparentOf(client)).toBeUndefined();
      off.end(client, { statusCode: 500, error: new Error('x') });
      off.end(server);
      await off.shutdown();
    }
    expect(receiver.requests).toEqual([]);
  });

  it('does not export spans the sampler drops, but still propagates their trace context', async () => {
    tracing = createTracing({ env: otlpEnv({ OTEL_TRACES_SAMPLER: 'always_off' }), logger });
    const server = tracing.startServerSpan('tools/call echo', {}, INBOUND_TRACEPARENT);
    const client = tracing.startClientSpan('tools/call echo', server, {});
    expect(server.isRecording()).toBe(false);
    expect(tracing.traceparentOf(client)).toMatch(new RegExp(`^00-${INBOUND_TRACE_ID}-[0-9a-f]{16}-00$`));
    tracing.end(client);
    tracing.end(server);
    await tracing.shutdown();
    expect(receiver.spans).toEqual([]);
  });
});
