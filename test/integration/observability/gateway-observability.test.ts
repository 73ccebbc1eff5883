/**
 * Observability through a running gateway (docs/observability.md): `/metrics` scraped
 * and its series checked; a trace exported to an in-test OTLP/HTTP receiver with the server span
 * of a request as the parent of the client span of its upstream call, and `traceparent` reaching
 * an HTTP upstream; the usage log and its analytics endpoint.
 */
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { startTestGateway, waitFor } from '../../helpers/gateway.js';
import { initSession, messages, post } from '../../helpers/raw.js';
import { startHeaderCaptureServer, type HeaderCaptureServer } from '../../fixtures/header-capture-server.js';
import { OTLP_SPAN_KIND, startOtlpReceiver, type OtlpReceiver } from './otlp-receiver.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const odd = { command: process.execPath, args: [ODD] };

describe('metrics', () => {
  let gw: RunningGateway;
  beforeAll(async () => {
    gw = await startTestGateway({ servers: { odd } });
  });
  afterAll(async () => gw?.close());

  it('exposes request, upstream, session and process series at /metrics', async () => {
    const url = `${gw.url}/mcp`;
    const sid = await initSession(url);
    for (let i = 0; i < 3; i++) {
      await messages(
        await post(
          url,
          { jsonrpc: '2.0', id: 10 + i, method: 'tools/call', params: { name: 'odd__pid', arguments: {} } },
          { 'mcp-session-id': sid },
        ),
      );
    }
    await messages(
      await post(
        url,
        { jsonrpc: '2.0', id: 20, method: 'tools/call', params: { name: 'odd__fail', arguments: {} } },
        { 'mcp-session-id': sid },
      ),
    );
    const res = await fetch(`${gw.url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toContain('text/plain');
    const text = await res.text();
    const value = (series: string) => {
      const line = text.split('\n').find((l) => l.startsWith(series + ' '));
      return line === undefined ? undefined : Number(line.slice(series.length + 1));
    };
    expect(value('switchboard_requests_total{server="odd",method="tools/call",status="ok",era="legacy"}')).toBe(3);
    expect(value('switchboard_requests_total{server="odd",method="tools/call",status="error",era="legacy"}')).toBe(1);
    expect(value('switchboard_active_sessions')).toBe(1);
    expect(value('switchboard_upstream_up{server="odd"}')).toBe(1);
    expect(text).toMatch(/^switchboard_upstream_request_duration_seconds_count\{server="odd"\} 4$/m);
    expect(text).toMatch(
      /^switchboard_request_duration_seconds_bucket\{.*server="odd".*method="tools\/call".*\} \d+$/m,
    );
    expect(text).toMatch(/^process_resident_memory_bytes \d+/m);
  });
});

describe('traces', () => {
  let receiver: OtlpReceiver;
  let capture: HeaderCaptureServer;
  let gw: RunningGateway;
  const saved = { ...process.env };

  beforeAll(async () => {
    receiver = await startOtlpReceiver();
    capture = await startHeaderCaptureServer();
    process.env.OTEL_EXPORTER_OTLP_ENDPOINT = receiver.endpoint;
    process.env.OTEL_EXPORTER_OTLP_PROTOCOL = 'http/json';
    process.env.OTEL_BSP_SCHEDULE_DELAY = '50';
    gw = await startTestGateway({ servers: { remote: { url: capture.url } } });
  });
  afterAll(async () => {
    process.env = saved;
    await gw?.close();
    await capture?.stop();
    await receiver?.close();
  });

  it('exports a server span per request with a client span per upstream call as its child, and sends traceparent upstream', async () => {
    const url = `${gw.url}/servers/remote/mcp`;
    const sid = await initSession(url);
    const [m] = await messages(
      await post(
        url,
        { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name: 'whoami', arguments: {} } },
        { 'mcp-session-id': sid },
      ),
    );
    const seen = JSON.parse((m?.result as { content: Array<{ text: string }> }).content[0]!.text) as Record<
      string,
      string
    >;
    expect(seen.traceparent).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-0[01]$/);
    const found = await waitFor(
      () => receiver.spans.find((s) => s.kind === OTLP_SPAN_KIND.CLIENT && s.name === 'tools/call'),
      10_000,
      'client span',
    );
    if (!found) throw new Error('no client span');
    const client = found;
    const server = receiver.spans.find((s) => s.kind === OTLP_SPAN_KIND.SERVER && s.spanId === client.parentSpanId);
    expect(server).toMatchObject({ kind: OTLP_SPAN_KIND.SERVER, traceId: client.traceId });
    const [, traceId, spanId] = seen.traceparent!.split('-');
    expect(traceId).toBe(client.traceId);
    expect(spanId).toBe(client.spanId);
  });
});
