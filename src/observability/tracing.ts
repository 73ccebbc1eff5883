/**
 * OpenTelemetry traces: a SERVER span per gateway request, a CLIENT span per upstream call, and
 * the W3C `traceparent` header value to send to HTTP upstreams. Configured by the standard
 * `OTEL_*` environment variables and **off by default**.
 *
 * Spans are parented explicitly (the caller passes the parent span or the inbound
 * `traceparent`) rather than through the OTel context API, so nothing is registered globally
 * (no global tracer provider, no context manager) and the hot path does not depend on
 * `AsyncLocalStorage`. When tracing is off, {@link createTracing} returns one shared object
 * whose functions allocate nothing and return the shared {@link NOOP_SPAN}.
 *
 * Export is OTLP over HTTP with a batch span processor. The installed exporter
 * (`@opentelemetry/exporter-trace-otlp-http`) encodes OTLP/JSON, which every OTLP/HTTP receiver
 * accepts (`Content-Type: application/json`, the OTel Collector's port 4318);
 * `OTEL_EXPORTER_OTLP_PROTOCOL=http/protobuf` or `grpc` is reported as unsupported and JSON is
 * sent.
 *
 * @module
 */
import {
  DiagLogLevel,
  INVALID_SPAN_CONTEXT,
  ROOT_CONTEXT,
  SpanKind,
  SpanStatusCode,
  diag,
  isSpanContextValid,
  trace,
  type Attributes,
  type Context,
  type DiagLogger,
  type Span,
  type Tracer,
} from '@opentelemetry/api';
import { parseKeyPairsIntoRecord, parseTraceParent } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { defaultResource, resourceFromAttributes } from '@opentelemetry/resources';
import {
  AlwaysOffSampler,
  AlwaysOnSampler,
  BatchSpanProcessor,
  ParentBasedSampler,
  TraceIdRatioBasedSampler,
  TracerProvider,
  type Sampler,
} from '@opentelemetry/sdk-trace';
import type { Logger } from './logger.js';

/**
 * Span attribute names used by the gateway, following the OpenTelemetry MCP semantic
 * conventions (`mcp.*`, `gen_ai.tool.name`, `jsonrpc.request.id`) and the HTTP/RPC ones. The
 * upstream's configured name has no convention of its own and goes in `switchboard.server.name`
 * (the `server.*` namespace is the convention's, for the peer's address and port).
 */
export const SPAN_ATTRIBUTES = Object.freeze({
  /** JSON-RPC method, e.g. `tools/call`. */
  MCP_METHOD_NAME: 'mcp.method.name',
  /** The client's `Mcp-Session-Id` (server span) or the upstream's (client span). */
  MCP_SESSION_ID: 'mcp.session.id',
  /** Negotiated MCP protocol version, e.g. `2025-11-25`. */
  MCP_PROTOCOL_VERSION: 'mcp.protocol.version',
  /** `resources/read` and `resources/subscribe` URI. */
  MCP_RESOURCE_URI: 'mcp.resource.uri',
  /** `tools/call` tool name: the exposed name on the server span, the upstream's own name on the client span. */
  TOOL_NAME: 'gen_ai.tool.name',
  /** `prompts/get` prompt name. */
  PROMPT_NAME: 'gen_ai.prompt.name',
  /** JSON-RPC request id, as a string. */
  JSONRPC_REQUEST_ID: 'jsonrpc.request.id',
  /** The configured upstream server name the request was routed to. */
  SERVER_NAME: 'switchboard.server.name',
  /** The identity the upstream knows the caller by (a per-user credential's subject; never a token). */
  UPSTREAM_SUBJECT: 'switchboard.upstream.subject',
  /** HTTP request method of the gateway request (`POST`, `GET`, `DELETE`). */
  HTTP_REQUEST_METHOD: 'http.request.method',
  /** HTTP response status code; set by {@link Tracing.end} from `statusCode`. */
  HTTP_RESPONSE_STATUS_CODE: 'http.response.status_code',
  /** JSON-RPC `error.code` of the answer; set by {@link Tracing.end} from `jsonRpcErrorCode`. */
  RPC_JSONRPC_ERROR_CODE: 'rpc.jsonrpc.error_code',
  /** Error class: the JSON-RPC code or `GatewayError` code as a string; set by {@link Tracing.end}. */
  ERROR_TYPE: 'error.type',
  /** `pipe` for stdio upstreams, `tcp` for HTTP ones. */
  NETWORK_TRANSPORT: 'network.transport',
});

/**
 * The span returned by every function of a disabled {@link Tracing} (and by an enabled one for
 * nothing): a non-recording span with an invalid context. Shared, never allocated per call;
 * {@link Tracing.traceparentOf} returns `undefined` for it.
 */
export const NOOP_SPAN: Span = trace.wrapSpanContext(INVALID_SPAN_CONTEXT);

/** How a span's operation ended; every field is optional. */
export interface SpanOutcome {
  /** A thrown error: recorded as an exception event, sets status ERROR and `error.type`. */
  error?: unknown;
  /**
   * HTTP status code: sets `http.response.status_code`; ≥ 500 sets status ERROR (and ≥ 400 on
   * CLIENT spans), per the HTTP semantic conventions.
   */
  statusCode?: number;
  /** JSON-RPC `error.code` of the answer: sets `rpc.jsonrpc.error_code`, `error.type` and status ERROR. */
  jsonRpcErrorCode?: number;
  /** The upstream subject a per-user credential used: sets `switchboard.upstream.subject`. */
  upstreamSubject?: string;
}

/** The gateway's tracer. Create one per process with {@link createTracing}. */
export interface Tracing {
  /**
   * Whether spans are recorded and exported. When `false` every function is a no-op; callers
   * on the hot path should test it before building attribute objects.
   */
  readonly enabled: boolean;
  /**
   * Starts the SERVER span of one gateway request. Name it `{mcp.method.name} {target}` (e.g.
   * `tools/call echo`) or just the method when there is no target.
   *
   * @param parentTraceparent - the inbound W3C `traceparent` header (or `params._meta.traceparent`);
   *   when absent or malformed the span starts a new trace.
   */
  startServerSpan(name: string, attributes: Attributes, parentTraceparent?: string): Span;
  /**
   * Starts the CLIENT span of one upstream call, as a child of `parent` (the request's server
   * span), or a root span when `parent` is `undefined`.
   */
  startClientSpan(name: string, parent: Span | undefined, attributes: Attributes): Span;
  /**
   * The W3C Trace Context `traceparent` value for `span` (`00-{trace-id}-{span-id}-{flags}`,
   * W3C Trace Context §3.2) to send to an HTTP upstream, or `undefined` for a span with an
   * invalid context (the no-op span).
   */
  traceparentOf(span: Span): string | undefined;
  /** Sets the outcome attributes and status on `span` and ends it. Ending twice is ignored by the SDK. */
  end(span: Span, outcome?: SpanOutcome): void;
  /** Exports the spans still queued and stops the exporter. Resolves (never rejects) when done. */
  shutdown(): Promise<void>;
}

/** Options for {@link createTracing}. */
export interface TracingOptions {
  /** `service.name` unless `OTEL_SERVICE_NAME` or `OTEL_RESOURCE_ATTRIBUTES` set one. Default `switchboard`. */
  serviceName?: string;
  /** `service.version` resource attribute, when known. */
  serviceVersion?: string;
  /** Environment to read the `OTEL_*` variables from. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /**
   * Logger for the enable/disable decision and configuration problems; while tracing is on,
   * OpenTelemetry's own diagnostics (e.g. failed exports) are forwarded to it at warn level.
   */
  logger?: Logger;
}

const noop = (): void => {};

const DISABLED: Tracing = Object.freeze({
  enabled: false,
  startServerSpan: (): Span => NOOP_SPAN,
  startClientSpan: (): Span => NOOP_SPAN,
  traceparentOf: (): undefined => undefined,
  end: noop,
  shutdown: (): Promise<void> => Promise.resolve(),
});

/** Reads an `OTEL_*` variable; an empty value counts as unset (OTel SDK environment spec). */
function envString(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const v = env[name]?.trim();
  return v === undefined || v === '' ? undefined : v;
}

function envPositiveInt(env: NodeJS.ProcessEnv, name: string, logger: Logger | undefined): number | undefined {
  const raw = envString(env, name);
  if (raw === undefined) return undefined;
  const n = Number(raw);
  if (Number.isInteger(n) && n > 0) return n;
  logger?.warn({ variable: name, value: raw }, 'ignoring invalid OpenTelemetry setting (expected a positive integer)');
  return undefined;
}

/**
 * Decides whether tracing is on: `OTEL_SDK_DISABLED=true` turns it off; otherwise it is on when
 * `OTEL_TRACES_EXPORTER` lists `otlp`, or when an OTLP endpoint variable is set and
 * `OTEL_TRACES_EXPORTER` is not `none`.
 */
function tracingWanted(env: NodeJS.ProcessEnv, logger: Logger | undefined): boolean {
  if (envString(env, 'OTEL_SDK_DISABLED')?.toLowerCase() === 'true') return false;
  const exporters = envString(env, 'OTEL_TRACES_EXPORTER')
    ?.toLowerCase()
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  if (exporters !== undefined && exporters.length > 0) {
    if (exporters.includes('none')) return false;
    const others = exporters.filter((e) => e !== 'otlp');
    if (others.length > 0)
      logger?.warn({ exporters: others }, 'unsupported OTEL_TRACES_EXPORTER values ignored (only otlp)');
    if (exporters.includes('otlp')) return true;
  }
  return (
    envString(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT') !== undefined ||
    envString(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') !== undefined
  );
}

/** The traces URL per the OTLP exporter spec: the signal endpoint as-is, else the base endpoint + `v1/traces`. */
function tracesUrl(env: NodeJS.ProcessEnv): string {
  const specific = envString(env, 'OTEL_EXPORTER_OTLP_TRACES_ENDPOINT');
  if (specific !== undefined) return specific;
  const base = envString(env, 'OTEL_EXPORTER_OTLP_ENDPOINT') ?? 'http://localhost:4318';
  return `${base}${base.endsWith('/') ? '' : '/'}v1/traces`;
}

/** `OTEL_TRACES_SAMPLER` / `OTEL_TRACES_SAMPLER_ARG`; default `parentbased_always_on`. */
function samplerFrom(env: NodeJS.ProcessEnv, logger: Logger | undefined): Sampler {
  const name = envString(env, 'OTEL_TRACES_SAMPLER')?.toLowerCase() ?? 'parentbased_always_on';
  const ratio = (): number => {
    const raw = envString(env, 'OTEL_TRACES_SAMPLER_ARG');
    const n = raw === undefined ? 1 : Number(raw);
    if (n >= 0 && n <= 1) return n;
    logger?.warn({ value: raw }, 'ignoring invalid OTEL_TRACES_SAMPLER_ARG (expected a ratio in [0, 1])');
    return 1;
  };
  switch (name) {
    case 'always_on':
      return new AlwaysOnSampler();
    case 'always_off':
      return new AlwaysOffSampler();
    case 'traceidratio':
      return new TraceIdRatioBasedSampler(ratio());
    case 'parentbased_always_off':
      return new ParentBasedSampler({ root: new AlwaysOffSampler() });
    case 'parentbased_traceidratio':
      return new ParentBasedSampler({ root: new TraceIdRatioBasedSampler(ratio()) });
    case 'parentbased_always_on':
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
    default:
      logger?.warn({ sampler: name }, 'unsupported OTEL_TRACES_SAMPLER; using parentbased_always_on');
      return new ParentBasedSampler({ root: new AlwaysOnSampler() });
  }
}

/** Forwards OpenTelemetry's internal diagnostics (export failures, bad settings) to pino. */
function diagToPino(logger: Logger): DiagLogger {
  const log = logger.child({ component: 'otel' });
  const at =
    (level: 'error' | 'warn' | 'info' | 'debug' | 'trace') =>
    (message: string, ...args: unknown[]): void => {
      if (args.length > 0) log[level]({ detail: args.map((a) => (a instanceof Error ? a.message : a)) }, message);
      else log[level](message);
    };
  return { error: at('error'), warn: at('warn'), info: at('info'), debug: at('debug'), verbose: at('trace') };
}

/** `error.type` for a thrown value: a `GatewayError`'s stable code, else the error's class name. */
function errorType(error: unknown): string {
  if (typeof error === 'object' && error !== null) {
    const { code, name } = error as { code?: unknown; name?: unknown };
    if (typeof code === 'string' && code !== '') return code;
    if (typeof name === 'string' && name !== '') return name;
  }
  return '_OTHER';
}

/**
 * Creates the gateway's tracer from the `OTEL_*` environment (see the module comment and
 * docs/observability.md for the variables honoured). Never throws: a configuration it cannot
 * use is logged and tracing stays off.
 */
export function createTracing(options: TracingOptions = {}): Tracing {
  const { serviceName = 'switchboard', serviceVersion, env = process.env, logger } = options;
  if (!tracingWanted(env, logger)) {
    logger?.debug('tracing off (no OTLP exporter configured)');
    return DISABLED;
  }

  const url = tracesUrl(env);
  const parsed = URL.canParse(url) ? new URL(url) : undefined;
  if (parsed === undefined || (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')) {
    logger?.error({ url }, 'invalid OTLP traces endpoint (expected an http or https URL); tracing off');
    return DISABLED;
  }
  const protocol =
    envString(env, 'OTEL_EXPORTER_OTLP_TRACES_PROTOCOL') ?? envString(env, 'OTEL_EXPORTER_OTLP_PROTOCOL');
  if (protocol !== undefined && protocol !== 'http/json') {
    logger?.warn({ protocol }, 'only the http/json OTLP protocol is available; sending OTLP/HTTP JSON');
  }

  const resourceAttributes: Attributes = {
    'service.name': serviceName,
    ...(serviceVersion !== undefined ? { 'service.version': serviceVersion } : {}),
    ...parseKeyPairsIntoRecord(envString(env, 'OTEL_RESOURCE_ATTRIBUTES')),
  };
  const envServiceName = envString(env, 'OTEL_SERVICE_NAME');
  if (envServiceName !== undefined) resourceAttributes['service.name'] = envServiceName;

  const headers = {
    ...parseKeyPairsIntoRecord(envString(env, 'OTEL_EXPORTER_OTLP_HEADERS')),
    ...parseKeyPairsIntoRecord(envString(env, 'OTEL_EXPORTER_OTLP_TRACES_HEADERS')),
  };
  const exporter = new OTLPTraceExporter({
    url: parsed.href,
    headers,
    timeoutMillis:
      envPositiveInt(env, 'OTEL_EXPORTER_OTLP_TRACES_TIMEOUT', logger) ??
      envPositiveInt(env, 'OTEL_EXPORTER_OTLP_TIMEOUT', logger),
  });
  const maxQueueSize = envPositiveInt(env, 'OTEL_BSP_MAX_QUEUE_SIZE', logger);
  const maxExportBatchSize = envPositiveInt(env, 'OTEL_BSP_MAX_EXPORT_BATCH_SIZE', logger);
  const processor = new BatchSpanProcessor({
    exporter,
    scheduledDelayMillis: envPositiveInt(env, 'OTEL_BSP_SCHEDULE_DELAY', logger),
    exportTimeoutMillis: envPositiveInt(env, 'OTEL_BSP_EXPORT_TIMEOUT', logger),
    ...(maxQueueSize !== undefined ? { maxQueueSize } : {}),
    ...(maxExportBatchSize !== undefined ? { maxExportBatchSize } : {}),
  });
  const provider = new TracerProvider({
    resource: defaultResource().merge(resourceFromAttributes(resourceAttributes)),
    sampler: samplerFrom(env, logger),
    spanProcessors: [processor],
  });
  const tracer: Tracer = provider.getTracer('switchboard', serviceVersion);
  if (logger) diag.setLogger(diagToPino(logger), { logLevel: DiagLogLevel.WARN, suppressOverrideMessage: true });
  logger?.info(
    { endpoint: `${parsed.origin}${parsed.pathname}`, serviceName: resourceAttributes['service.name'] },
    'tracing on: exporting spans with OTLP/HTTP JSON',
  );

  let shutdownPromise: Promise<void> | undefined;
  return {
    enabled: true,

    startServerSpan(name, attributes, parentTraceparent): Span {
      let ctx: Context = ROOT_CONTEXT;
      if (parentTraceparent !== undefined) {
        const parent = parseTraceParent(parentTraceparent);
        if (parent !== null && isSpanContextValid(parent)) {
          parent.isRemote = true;
          ctx = trace.setSpanContext(ROOT_CONTEXT, parent);
        }
      }
      return tracer.startSpan(name, { kind: SpanKind.SERVER, attributes }, ctx);
    },

    startClientSpan(name, parent, attributes): Span {
      const ctx = parent === undefined ? ROOT_CONTEXT : trace.setSpan(ROOT_CONTEXT, parent);
      return tracer.startSpan(name, { kind: SpanKind.CLIENT, attributes }, ctx);
    },

    traceparentOf(span): string | undefined {
      const sc = span.spanContext();
      if (!isSpanContextValid(sc)) return undefined;
      return `00-${sc.traceId}-${sc.spanId}-${(sc.traceFlags & 0xff).toString(16).padStart(2, '0')}`;
    },

    end(span, outcome): void {
      if (span === NOOP_SPAN) return;
      if (outcome !== undefined) {
        const { statusCode, jsonRpcErrorCode, error, upstreamSubject } = outcome;
        if (upstreamSubject !== undefined) span.setAttribute(SPAN_ATTRIBUTES.UPSTREAM_SUBJECT, upstreamSubject);
        let failed = false;
        if (statusCode !== undefined) {
          span.setAttribute(SPAN_ATTRIBUTES.HTTP_RESPONSE_STATUS_CODE, statusCode);
          const client = (span as { kind?: SpanKind }).kind === SpanKind.CLIENT;
          if (statusCode >= 500 || (client && statusCode >= 400)) {
            span.setAttribute(SPAN_ATTRIBUTES.ERROR_TYPE, String(statusCode));
            failed = true;
          }
        }
        if (jsonRpcErrorCode !== undefined) {
          span.setAttribute(SPAN_ATTRIBUTES.RPC_JSONRPC_ERROR_CODE, jsonRpcErrorCode);
          span.setAttribute(SPAN_ATTRIBUTES.ERROR_TYPE, String(jsonRpcErrorCode));
          failed = true;
        }
        if (error !== undefined) {
          span.recordException(error instanceof Error || typeof error === 'string' ? error : errorType(error));
          span.setAttribute(SPAN_ATTRIBUTES.ERROR_TYPE, errorType(error));
          span.setStatus({ code: SpanStatusCode.ERROR, message: error instanceof Error ? error.message : undefined });
        } else if (failed) {
          span.setStatus({ code: SpanStatusCode.ERROR });
        }
      }
      span.end();
    },

    shutdown(): Promise<void> {
      shutdownPromise ??= provider.shutdown().catch((err: unknown) => {
        logger?.warn({ err }, 'flushing traces on shutdown failed');
      });
      return shutdownPromise;
    },
  };
}
