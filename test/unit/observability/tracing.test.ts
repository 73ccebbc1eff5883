import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import { NOOP_SPAN, createTracing } from '../../../src/observability/tracing.js';

/** A port nothing listens on: no test here ends a span, so nothing is ever sent. */
const UNUSED_ENDPOINT = 'http://127.0.0.1:9';

function capturingLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = createLogger({
    level: 'debug',
    destination: new Writable({
      write(chunk: Buffer, _enc, cb): void {
        lines.push(JSON.parse(chunk.toString('utf8')) as Record<string, unknown>);
        cb();
      },
    }),
  });
  return { logger, lines };
}

describe('createTracing', () => {
  it('is off by default and hands out one shared no-op tracer and span', async () => {
    const a = createTracing({ env: {} });
    const b = createTracing({ env: {} });
    expect(a.enabled).toBe(false);
    expect(a).toBe(b);
    const span = a.startServerSpan('tools/call x', {}, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(span).toBe(NOOP_SPAN);
    expect(a.startClientSpan('tools/call x', span, {})).toBe(NOOP_SPAN);
    expect(span.isRecording()).toBe(false);
    expect(a.traceparentOf(span)).toBeUndefined();
    expect(() => a.end(span, { statusCode: 500, jsonRpcErrorCode: -32603, error: new Error('x') })).not.toThrow();
    await expect(a.shutdown()).resolves.toBeUndefined();
  });

  it.each<[string, boolean, NodeJS.ProcessEnv]>([
    ['nothing set', false, {}],
    ['OTEL_TRACES_EXPORTER=otlp alone (default endpoint)', true, { OTEL_TRACES_EXPORTER: 'otlp' }],
    ['an OTLP endpoint', true, { OTEL_EXPORTER_OTLP_ENDPOINT: UNUSED_ENDPOINT }],
    ['an OTLP traces endpoint', true, { OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: `${UNUSED_ENDPOINT}/v1/traces` }],
    [
      'an endpoint with OTEL_TRACES_EXPORTER=none',
      false,
      { OTEL_EXPORTER_OTLP_ENDPOINT: UNUSED_ENDPOINT, OTEL_TRACES_EXPORTER: 'none' },
    ],
    ['OTEL_TRACES_EXPORTER listing otlp among others', true, { OTEL_TRACES_EXPORTER: 'console, otlp' }],
    ['only an unsupported exporter', false, { OTEL_TRACES_EXPORTER: 'zipkin' }],
    ['OTEL_SDK_DISABLED=true', false, { OTEL_TRACES_EXPORTER: 'otlp', OTEL_SDK_DISABLED: 'true' }],
    ['OTEL_SDK_DISABLED=false', true, { OTEL_EXPORTER_OTLP_ENDPOINT: UNUSED_ENDPOINT, OTEL_SDK_DISABLED: 'false' }],
    ['an empty endpoint (empty means unset)', false, { OTEL_EXPORTER_OTLP_ENDPOINT: '' }],
    ['an endpoint that is not an http(s) URL', false, { OTEL_EXPORTER_OTLP_ENDPOINT: 'collector:4318' }],
    ['an endpoint that does not parse', false, { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }],
  ])('with %s → enabled=%s', async (_name, enabled, env) => {
    const tracing = createTracing({ env });
    expect(tracing.enabled).toBe(enabled);
    await tracing.shutdown();
  });

  it('formats traceparent per W3C Trace Context and keeps the inbound trace and sampled flag', async () => {
    const tracing = createTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: UNUSED_ENDPOINT } });
    const sampled = tracing.startServerSpan('a', {}, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01');
    expect(tracing.traceparentOf(sampled)).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-01$/);
    expect(tracing.traceparentOf(sampled)).not.toContain('00f067aa0ba902b7');
    // parentbased_always_on (the default) follows an unsampled caller.
    const unsampled = tracing.startServerSpan('b', {}, '00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00');
    expect(unsampled.isRecording()).toBe(false);
    expect(tracing.traceparentOf(unsampled)).toMatch(/^00-4bf92f3577b34da6a3ce929d0e0e4736-[0-9a-f]{16}-00$/);
    const root = tracing.startServerSpan('c', {});
    expect(tracing.traceparentOf(root)).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-01$/);
    expect(tracing.traceparentOf(NOOP_SPAN)).toBeUndefined();
    await tracing.shutdown();
  });

  it('logs configuration it cannot honour instead of throwing', async () => {
    const { logger, lines } = capturingLogger();
    const a = createTracing({
      env: {
        OTEL_EXPORTER_OTLP_ENDPOINT: UNUSED_ENDPOINT,
        OTEL_EXPORTER_OTLP_PROTOCOL: 'http/protobuf',
        OTEL_TRACES_SAMPLER: 'jaeger_remote',
        OTEL_BSP_SCHEDULE_DELAY: 'soon',
      },
      logger,
    });
    expect(a.enabled).toBe(true);
    await a.shutdown();
    const b = createTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: 'not a url' }, logger });
    expect(b.enabled).toBe(false);
    const messages = lines.map((l) => l.msg);
    expect(messages).toContain('only the http/json OTLP protocol is available; sending OTLP/HTTP JSON');
    expect(messages).toContain('unsupported OTEL_TRACES_SAMPLER; using parentbased_always_on');
    expect(messages).toContain('ignoring invalid OpenTelemetry setting (expected a positive integer)');
    expect(messages).toContain('invalid OTLP traces endpoint (expected an http or https URL); tracing off');
  });

  it('flushes once however many times shutdown is called', async () => {
    const tracing = createTracing({ env: { OTEL_EXPORTER_OTLP_ENDPOINT: UNUSED_ENDPOINT } });
    const first = tracing.shutdown();
    expect(tracing.shutdown()).toBe(first);
    await first;
  });
});
