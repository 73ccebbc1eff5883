import { Registry } from 'prom-client';
import { describe, expect, it } from 'vitest';
import {
  DURATION_BUCKETS,
  MAX_SERVER_LABELS,
  createMetrics,
  methodLabel,
  requestStatus,
} from '../../../src/observability/metrics.js';

/** One sample line of the Prometheus text format. */
interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

/** Parses Prometheus text exposition format 0.0.4 into samples plus the `# TYPE` of each family. */
function parseExposition(text: string): { samples: Sample[]; types: Map<string, string> } {
  const samples: Sample[] = [];
  const types = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const type = /^# TYPE (\S+) (\S+)$/.exec(line);
    if (type) {
      types.set(type[1]!, type[2]!);
      continue;
    }
    if (line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!m) throw new Error(`unparseable exposition line: ${line}`);
    const labels: Record<string, string> = {};
    for (const l of (m[2] ?? '').matchAll(/(\w+)="((?:[^"\\]|\\.)*)"/g)) labels[l[1]!] = l[2]!;
    samples.push({ name: m[1]!, labels, value: m[3] === '+Inf' ? Infinity : Number(m[3]) });
  }
  return { samples, types };
}

function find(samples: Sample[], name: string, labels: Record<string, string> = {}): Sample[] {
  return samples.filter((s) => s.name === name && Object.entries(labels).every(([k, v]) => s.labels[k] === v));
}

function value(samples: Sample[], name: string, labels: Record<string, string> = {}): number | undefined {
  const found = find(samples, name, labels);
  if (found.length > 1) throw new Error(`${name} ${JSON.stringify(labels)} matches ${found.length} series`);
  return found[0]?.value;
}

async function scrape(metrics: ReturnType<typeof createMetrics>): Promise<ReturnType<typeof parseExposition>> {
  return parseExposition(await metrics.metricsText());
}

describe('createMetrics', () => {
  it('counts requests by server, MCP method and status, with unknown methods collapsed to other', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordRequest('echo', 'tools/call', 'ok', 0.002);
    metrics.recordRequest('echo', 'tools/call', 'ok', 0.003);
    metrics.recordRequest('echo', 'tools/call', 'error', 0.004);
    metrics.recordRequest('echo', 'tools/list', 'ok', 0.0001);
    metrics.recordRequest('files', 'resources/read', 'http_5xx', 0.5);
    metrics.recordRequest('echo', 'x/made-up', 'ok', 0.001);
    metrics.recordRequest('echo', 'another/unknown', 'ok', 0.001);
    metrics.recordRequest('echo', 'tools/call', 'http_4xx', 0.0002);

    const { samples, types } = await scrape(metrics);
    expect(types.get('switchboard_requests_total')).toBe('counter');
    const total = 'switchboard_requests_total';
    expect(value(samples, total, { server: 'echo', method: 'tools/call', status: 'ok' })).toBe(2);
    expect(value(samples, total, { server: 'echo', method: 'tools/call', status: 'error' })).toBe(1);
    expect(value(samples, total, { server: 'echo', method: 'tools/call', status: 'http_4xx' })).toBe(1);
    expect(value(samples, total, { server: 'echo', method: 'tools/list', status: 'ok' })).toBe(1);
    expect(value(samples, total, { server: 'files', method: 'resources/read', status: 'http_5xx' })).toBe(1);
    expect(value(samples, total, { server: 'echo', method: 'other', status: 'ok' })).toBe(2);
    // Only label combinations that were seen are exported, and raw unknown names never appear.
    expect(find(samples, total)).toHaveLength(6);
    expect(samples.some((s) => s.labels.method === 'x/made-up' || s.labels.method === 'another/unknown')).toBe(false);
    for (const s of find(samples, total))
      expect(Object.keys(s.labels).sort()).toEqual(['era', 'method', 'server', 'status']);
  });

  it('exports the gateway duration histogram with cumulative buckets from 0.5 ms to 30 s', async () => {
    const metrics = createMetrics({ collectDefault: false });
    for (const seconds of [0.0003, 0.0005, 0.0007, 0.02, 3, 45])
      metrics.recordRequest('echo', 'tools/call', 'ok', seconds);

    const { samples, types } = await scrape(metrics);
    const name = 'switchboard_request_duration_seconds';
    expect(types.get(name)).toBe('histogram');
    const buckets = find(samples, `${name}_bucket`, { server: 'echo', method: 'tools/call' });
    expect(buckets.map((b) => b.labels.le)).toEqual([...DURATION_BUCKETS.map(String), '+Inf']);
    const at = (le: string): number | undefined => buckets.find((b) => b.labels.le === le)?.value;
    expect(at('0.0005')).toBe(2); // 0.3 ms and exactly 0.5 ms (le is inclusive)
    expect(at('0.001')).toBe(3);
    expect(at('0.025')).toBe(4);
    expect(at('2.5')).toBe(4);
    expect(at('5')).toBe(5);
    expect(at('30')).toBe(5);
    expect(at('+Inf')).toBe(6);
    expect(value(samples, `${name}_count`, { server: 'echo', method: 'tools/call' })).toBe(6);
    expect(value(samples, `${name}_sum`, { server: 'echo', method: 'tools/call' })).toBeCloseTo(48.0215, 9);
  });

  it('exports upstream call durations by server', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordUpstreamCall('echo', 0.001);
    metrics.recordUpstreamCall('echo', 0.004);
    metrics.recordUpstreamCall('files', 0.2);

    const { samples } = await scrape(metrics);
    const name = 'switchboard_upstream_request_duration_seconds';
    expect(value(samples, `${name}_count`, { server: 'echo' })).toBe(2);
    expect(value(samples, `${name}_sum`, { server: 'echo' })).toBeCloseTo(0.005, 12);
    expect(value(samples, `${name}_bucket`, { server: 'echo', le: '0.001' })).toBe(1);
    expect(value(samples, `${name}_bucket`, { server: 'echo', le: '0.005' })).toBe(2);
    expect(value(samples, `${name}_count`, { server: 'files' })).toBe(1);
  });

  it('reads active sessions and the usage log from their sources at each scrape', async () => {
    const metrics = createMetrics({ collectDefault: false });
    let sessions = 3;
    const usageLog = { queueDepth: 17, dropped: 2, written: 40 };
    let first = await scrape(metrics);
    expect(value(first.samples, 'switchboard_active_sessions')).toBe(0);
    expect(value(first.samples, 'switchboard_usage_log_written_total')).toBe(0);
    metrics.setActiveSessionsSource(() => sessions);
    metrics.setUsageLogSource(usageLog);
    first = await scrape(metrics);
    expect(first.types.get('switchboard_active_sessions')).toBe('gauge');
    expect(first.types.get('switchboard_usage_log_dropped_total')).toBe('counter');
    expect(value(first.samples, 'switchboard_active_sessions')).toBe(3);
    expect(value(first.samples, 'switchboard_usage_log_queue_depth')).toBe(17);
    expect(value(first.samples, 'switchboard_usage_log_dropped_total')).toBe(2);
    expect(value(first.samples, 'switchboard_usage_log_written_total')).toBe(40);
    sessions = 5;
    Object.assign(usageLog, { queueDepth: 0, dropped: 7, written: 95 });
    const second = await scrape(metrics);
    expect(value(second.samples, 'switchboard_active_sessions')).toBe(5);
    expect(value(second.samples, 'switchboard_usage_log_queue_depth')).toBe(0);
    expect(value(second.samples, 'switchboard_usage_log_dropped_total')).toBe(7);
    expect(value(second.samples, 'switchboard_usage_log_written_total')).toBe(95);
  });

  it('tracks upstream up/down and restarts, and forgets a removed server', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.setUpstreamUp('echo', true);
    metrics.setUpstreamUp('files', true);
    metrics.setUpstreamUp('files', false);
    metrics.recordUpstreamRestart('files');
    metrics.recordUpstreamRestart('files');
    metrics.recordRequest('files', 'tools/call', 'ok', 0.01);
    metrics.recordUpstreamCall('files', 0.01);

    const first = await scrape(metrics);
    let samples = first.samples;
    expect(first.types.get('switchboard_upstream_restarts_total')).toBe('counter');
    expect(value(samples, 'switchboard_upstream_up', { server: 'echo' })).toBe(1);
    expect(value(samples, 'switchboard_upstream_up', { server: 'files' })).toBe(0);
    expect(value(samples, 'switchboard_upstream_restarts_total', { server: 'files' })).toBe(2);

    metrics.forgetServer('files');
    samples = (await scrape(metrics)).samples;
    expect(samples.filter((s) => s.labels.server === 'files')).toEqual([]);
    expect(value(samples, 'switchboard_upstream_up', { server: 'echo' })).toBe(1);

    // A server that comes back starts from zero.
    metrics.recordRequest('files', 'tools/call', 'ok', 0.01);
    ({ samples } = await scrape(metrics));
    expect(value(samples, 'switchboard_requests_total', { server: 'files', method: 'tools/call', status: 'ok' })).toBe(
      1,
    );
  });

  it('counts rate-limited requests and rate-limit store errors by rule', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordRateLimited('echo-per-user');
    metrics.recordRateLimited('echo-per-user');
    metrics.recordRateLimited('1');
    metrics.recordRateLimitStoreError('echo-per-user');
    metrics.recordRateLimitStoreError('echo-per-user');
    metrics.recordRateLimitStoreError('global');

    const { samples, types } = await scrape(metrics);
    expect(types.get('switchboard_rate_limited_total')).toBe('counter');
    expect(types.get('switchboard_rate_limit_store_errors_total')).toBe('counter');
    expect(value(samples, 'switchboard_rate_limited_total', { rule: 'echo-per-user' })).toBe(2);
    expect(value(samples, 'switchboard_rate_limited_total', { rule: '1' })).toBe(1);
    expect(value(samples, 'switchboard_rate_limit_store_errors_total', { rule: 'echo-per-user' })).toBe(2);
    expect(value(samples, 'switchboard_rate_limit_store_errors_total', { rule: 'global' })).toBe(1);
  });

  it('counts guardrail actions by guardrail and action, all four actions of a guardrail pre-allocated', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordGuardrailAction('no-rm', 'deny');
    metrics.recordGuardrailAction('no-rm', 'deny');
    metrics.recordGuardrailAction('secrets', 'redact');
    metrics.recordGuardrailAction('no-rm', 'error');

    const { samples, types } = await scrape(metrics);
    expect(types.get('switchboard_guardrail_actions_total')).toBe('counter');
    expect(value(samples, 'switchboard_guardrail_actions_total', { guardrail: 'no-rm', action: 'deny' })).toBe(2);
    expect(value(samples, 'switchboard_guardrail_actions_total', { guardrail: 'no-rm', action: 'error' })).toBe(1);
    expect(value(samples, 'switchboard_guardrail_actions_total', { guardrail: 'no-rm', action: 'warn' })).toBe(0);
    expect(value(samples, 'switchboard_guardrail_actions_total', { guardrail: 'secrets', action: 'redact' })).toBe(1);
    expect(value(samples, 'switchboard_guardrail_actions_total', { guardrail: 'secrets', action: 'deny' })).toBe(0);
  });

  it('counts withheld name collisions by server and kind, and forgets a removed server', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordNameCollision('a', 'tool');
    metrics.recordNameCollision('a', 'tool');
    metrics.recordNameCollision('a', 'prompt');
    metrics.recordNameCollision('b', 'tool');
    const first = await scrape(metrics);
    let samples = first.samples;
    expect(first.types.get('switchboard_name_collisions_total')).toBe('counter');
    expect(value(samples, 'switchboard_name_collisions_total', { server: 'a', kind: 'tool' })).toBe(2);
    expect(value(samples, 'switchboard_name_collisions_total', { server: 'a', kind: 'prompt' })).toBe(1);
    expect(value(samples, 'switchboard_name_collisions_total', { server: 'b', kind: 'tool' })).toBe(1);
    metrics.forgetServer('a');
    ({ samples } = await scrape(metrics));
    expect(find(samples, 'switchboard_name_collisions_total', { server: 'a' })).toEqual([]);
    metrics.recordNameCollision('a', 'tool');
    ({ samples } = await scrape(metrics));
    expect(value(samples, 'switchboard_name_collisions_total', { server: 'a', kind: 'tool' })).toBe(1);
  });

  it('counts streams closed over their buffer budget by kind', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordStreamOverflow('legacy-sse');
    metrics.recordStreamOverflow('legacy-sse');
    metrics.recordStreamOverflow('tunnel');

    const { samples, types } = await scrape(metrics);
    expect(types.get('switchboard_stream_overflows_total')).toBe('counter');
    expect(value(samples, 'switchboard_stream_overflows_total', { stream: 'legacy-sse' })).toBe(2);
    expect(value(samples, 'switchboard_stream_overflows_total', { stream: 'tunnel' })).toBe(1);
  });

  it('exports only the unlabelled series before anything is recorded, all at zero', async () => {
    const { samples } = await scrape(createMetrics({ collectDefault: false }));
    expect(samples.map((s) => [s.name, s.value]).sort()).toEqual([
      ['switchboard_active_sessions', 0],
      ['switchboard_usage_log_dropped_total', 0],
      ['switchboard_usage_log_queue_depth', 0],
      ['switchboard_usage_log_written_total', 0],
    ]);
  });

  it('exports process metrics by default under their standard names, and not when disabled', async () => {
    const withDefaults = await scrape(createMetrics());
    expect(withDefaults.types.get('process_cpu_user_seconds_total')).toBe('counter');
    expect(value(withDefaults.samples, 'process_resident_memory_bytes')).toBeGreaterThan(0);
    expect(withDefaults.types.has('nodejs_eventloop_lag_seconds')).toBe(true);
    const without = await scrape(createMetrics({ collectDefault: false }));
    expect([...without.types.keys()].filter((n) => !n.startsWith('switchboard_'))).toEqual([]);
  });

  it('registers into a given registry and reports the Prometheus text content type', async () => {
    const registry = new Registry();
    const metrics = createMetrics({ registry, collectDefault: false });
    expect(metrics.registry).toBe(registry);
    expect(metrics.contentType).toBe('text/plain; version=0.0.4; charset=utf-8');
    metrics.recordRequest('echo', 'ping', 'ok', 0.0001);
    metrics.recordRequest('echo', 'tools/call', 'ok', 0.0001, true);
    metrics.recordRequest('echo', 'tools/call', 'ok', 0.0001, true);
    const text = await registry.metrics();
    expect(text).toContain('switchboard_requests_total{server="echo",method="ping",status="ok",era="legacy"} 1');
    expect(text).toContain('switchboard_requests_total{server="echo",method="tools/call",status="ok",era="modern"} 2');
    expect(text).not.toContain('method="tools/call",status="ok",era="legacy"');
    // prom-client's JSON view of the same registry works with these series too.
    const json = await registry.getMetricsAsJSON();
    // Two series (ping, tools/call), each its buckets, +Inf, sum and count.
    expect(json.find((m) => m.name === 'switchboard_request_duration_seconds')?.values.length).toBe(
      2 * (DURATION_BUCKETS.length + 3),
    );
    // Two metrics objects on one registry collide, as prom-client's own metrics do.
    expect(() => createMetrics({ registry, collectDefault: false })).toThrow(/already been registered/);
  });

  it('caps distinct server labels so a runaway caller cannot grow the series without bound', async () => {
    const metrics = createMetrics({ collectDefault: false });
    for (let i = 0; i < MAX_SERVER_LABELS + 5; i++) metrics.recordRequest(`s${i}`, 'ping', 'ok', 0.001);
    const { samples } = await scrape(metrics);
    const series = find(samples, 'switchboard_requests_total');
    expect(series).toHaveLength(MAX_SERVER_LABELS + 1);
    expect(value(samples, 'switchboard_requests_total', { server: '(overflow)' })).toBe(5);
  });

  it('escapes label values the Prometheus way', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordRateLimited('rule "a"\\b');
    expect(await metrics.metricsText()).toContain('switchboard_rate_limited_total{rule="rule \\"a\\"\\\\b"} 1');
  });

  it('drops invalid durations instead of corrupting the histogram sum', async () => {
    const metrics = createMetrics({ collectDefault: false });
    metrics.recordUpstreamCall('echo', Number.NaN);
    metrics.recordUpstreamCall('echo', -1);
    metrics.recordUpstreamCall('echo', 0.25);
    const { samples } = await scrape(metrics);
    expect(value(samples, 'switchboard_upstream_request_duration_seconds_count', { server: 'echo' })).toBe(1);
    expect(value(samples, 'switchboard_upstream_request_duration_seconds_sum', { server: 'echo' })).toBe(0.25);
  });
});

describe('requestStatus', () => {
  it('uses the HTTP status class for 4xx/5xx and the JSON-RPC outcome otherwise', () => {
    expect(requestStatus(200)).toBe('ok');
    expect(requestStatus(202)).toBe('ok');
    expect(requestStatus(200, -32602)).toBe('error');
    expect(requestStatus(404)).toBe('http_4xx');
    expect(requestStatus(429, -32000)).toBe('http_4xx');
    expect(requestStatus(502)).toBe('http_5xx');
  });
});

describe('methodLabel', () => {
  it('keeps known MCP methods and maps everything else to other', () => {
    expect(methodLabel('tools/call')).toBe('tools/call');
    expect(methodLabel('notifications/initialized')).toBe('notifications/initialized');
    expect(methodLabel('tools/call2')).toBe('other');
    expect(methodLabel('')).toBe('other');
  });
});
