/**
 * Tracing switched off, without loading the OpenTelemetry SDK: the app imports
 * `observability/tracing.ts` (and its exporter) only when an `OTEL_*` variable asks for traces,
 * which keeps startup fast (docs/benchmarks.md, startup).
 *
 * @module
 */
import { INVALID_SPAN_CONTEXT, trace, type Span } from '@opentelemetry/api';
import type { Tracing } from './tracing.js';

const NOOP: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);
const noop = (): void => {};

/** The disabled {@link Tracing}: every call is a no-op returning one shared span. */
export const TRACING_OFF: Tracing = Object.freeze({
  enabled: false,
  startServerSpan: (): Span => NOOP,
  startClientSpan: (): Span => NOOP,
  traceparentOf: (): undefined => undefined,
  end: noop,
  shutdown: (): Promise<void> => Promise.resolve(),
});

/** True when any `OTEL_*` variable is set: only then is the tracing module worth loading. */
export function otelConfigured(env: NodeJS.ProcessEnv = process.env): boolean {
  for (const name in env) if (name.startsWith('OTEL_') && env[name] !== '') return true;
  return false;
}
