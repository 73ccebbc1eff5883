/**
 * The official MCP conformance suite's server scenarios, run directly against each upstream and
 * through Switchboard in front of it (scripts/conformance.ts does the work; this file asserts the
 * acceptance rules on its report). See docs/conformance.md.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  REPO_ROOT,
  compareRuns,
  formatReport,
  isPassing,
  runConformance,
  summarizeChecks,
  type Check,
  type ConformanceReport,
  type ScenarioOutcome,
  type UpstreamKind,
  type UpstreamReport,
} from '../../scripts/conformance.js';

const UPSTREAMS: UpstreamKind[] = ['fixture', 'fixture-stdio', 'everything'];

describe('conformance suite, directly and through Switchboard', () => {
  let report: ConformanceReport;

  beforeAll(async () => {
    report = await runConformance({ upstreams: UPSTREAMS, suite: 'all', switchboardStartTimeoutMs: 30_000 });
  }, 170_000);

  afterAll(async () => {
    // Keep the checks.json files when something failed; the path is in every failure message.
    if (report?.ok) await rm(report.outDir, { recursive: true, force: true });
  });

  const upstream = (kind: UpstreamKind): UpstreamReport => {
    const found = report.upstreams.find((u) => u.upstream === kind);
    if (!found) throw new Error(`no report for ${kind}`);
    return found;
  };
  const table = () => formatReport(report);

  it('passes every server scenario of the suite when run directly against the fixture', () => {
    const direct = upstream('fixture').direct;
    expect(direct, table()).toMatchObject({ scenarios: expect.any(Map) });
    const failing = [...(direct?.scenarios.values() ?? [])].filter((s) => !isPassing(s.verdict));
    expect(failing.map((s) => `${s.scenario}: ${s.problems.join('; ')}`)).toEqual([]);
    expect(direct?.scenarios.size).toBeGreaterThanOrEqual(30);
  });

  it('gets results for every scenario run directly against server-everything', () => {
    const direct = upstream('everything').direct;
    expect(direct, table()).toMatchObject({ scenarios: expect.any(Map) });
    expect([...(direct?.scenarios.values() ?? [])].filter((s) => s.verdict === 'missing')).toEqual([]);
    // The scenarios it implements under the suite's names (the rest need the fixture's names).
    for (const s of ['server-initialize', 'ping', 'tools-list', 'resources-list', 'prompts-list']) {
      expect(direct?.scenarios.get(s)?.verdict, s).toBe('pass');
    }
  });

  for (const kind of UPSTREAMS) {
    it(`passes through Switchboard every scenario that passes directly (${kind})`, () => {
      const u = upstream(kind);
      expect(u.startError, table()).toBeUndefined();
      expect(u.via, table()).toMatchObject({ scenarios: expect.any(Map) });
      expect(
        u.rows.filter((r) => r.regression).map((r) => `${r.scenario}: ${r.details.join('; ')}`),
        table(),
      ).toEqual([]);
    });
  }

  it('passes the full suite through Switchboard with the fixture upstream, over HTTP and over stdio', () => {
    for (const kind of ['fixture', 'fixture-stdio'] as const) {
      const u = upstream(kind);
      expect(u.via, `${kind}\n${table()}`).toMatchObject({ scenarios: expect.any(Map) });
      const failing = [...(u.via?.scenarios.values() ?? [])].filter((s) => !isPassing(s.verdict));
      expect(
        failing.map((s) => `${kind} ${s.scenario}: ${s.problems.join('; ')}`),
        table(),
      ).toEqual([]);
      expect(u.via?.scenarios.size).toBe(u.direct?.scenarios.size);
    }
  });

  it('passes dns-rebinding-protection at Switchboard even though server-everything has no Host/Origin check', () => {
    const u = upstream('everything');
    expect(u.direct?.scenarios.get('dns-rebinding-protection')?.verdict).toBe('fail');
    for (const kind of UPSTREAMS) {
      const v = upstream(kind);
      expect(v.via?.scenarios.get('dns-rebinding-protection')?.verdict, `${kind} ${v.viaUrl}\n${table()}`).toBe('pass');
      expect(v.aggregateDns?.verdict, `${kind} ${v.aggregateUrl}\n${table()}`).toBe('pass');
    }
  });

  it('meets every rule of the gate (what `npm run conformance` exits on)', () => {
    expect(
      report.upstreams.flatMap((u) => u.problems.map((p) => `${u.upstream}: ${p}`)),
      table(),
    ).toEqual([]);
  });
});

describe('conformance comparison rules', () => {
  const outcome = (scenario: string, ...statuses: Check['status'][]): ScenarioOutcome =>
    summarizeChecks(
      scenario,
      statuses.map((status, i) => ({ id: `${scenario}-${i}`, status })),
    );
  const runOf = (...outcomes: ScenarioOutcome[]) => new Map(outcomes.map((o) => [o.scenario, o]));

  it('flags a scenario that passes directly and fails through the gateway as a regression', () => {
    const [row] = compareRuns(runOf(outcome('a', 'SUCCESS')), runOf(outcome('a', 'SUCCESS', 'FAILURE')));
    expect(row).toMatchObject({ direct: 'pass', via: 'fail', regression: true, improved: false });
  });

  it('flags a scenario missing from the gateway run as a regression', () => {
    const [row] = compareRuns(runOf(outcome('a', 'SUCCESS')), runOf());
    expect(row).toMatchObject({ via: 'not run', regression: true });
  });

  it('does not flag a scenario that fails both ways, and marks one fixed by the gateway as improved', () => {
    const rows = compareRuns(
      runOf(outcome('a', 'FAILURE'), outcome('b', 'SUCCESS', 'FAILURE')),
      runOf(outcome('a', 'FAILURE'), outcome('b', 'SUCCESS', 'SUCCESS')),
    );
    expect(rows.map((r) => [r.scenario, r.regression, r.improved])).toEqual([
      ['a', false, false],
      ['b', false, true],
    ]);
  });

  it('counts WARNING as passing (the suite rule) but reports new warnings as degraded', () => {
    const [row] = compareRuns(runOf(outcome('a', 'SUCCESS', 'SUCCESS')), runOf(outcome('a', 'SUCCESS', 'WARNING')));
    expect(row).toMatchObject({ direct: 'pass', via: 'warn', regression: false, degraded: true });
  });

  it('reports as degraded a scenario that passes through the gateway with fewer successful checks', () => {
    const [row] = compareRuns(runOf(outcome('a', 'SUCCESS', 'SUCCESS')), runOf(outcome('a', 'SUCCESS', 'INFO')));
    expect(row).toMatchObject({ via: 'pass', regression: false, degraded: true, lostChecks: ['a-1'] });
  });
});

describe('conformance fixture over stdio', () => {
  it('serves the same catalogue over stdio and answers a tool call', async () => {
    const client = new Client({ name: 'conformance-e2e', version: '1.0.0' });
    await client.connect(
      new StdioClientTransport({
        command: process.execPath,
        args: ['--import', 'tsx', join(REPO_ROOT, 'test/fixtures/conformance-server.ts'), '--stdio'],
        cwd: REPO_ROOT,
        stderr: 'pipe',
      }),
    );
    try {
      const { tools } = await client.listTools();
      expect(tools.map((t) => t.name)).toContain('test_simple_text');
      expect(tools.map((t) => t.name)).toContain('json_schema_2020_12_tool');
      const result = await client.callTool({ name: 'test_simple_text' });
      expect(result.content).toEqual([{ type: 'text', text: 'This is a simple text response for testing.' }]);
      const { resources } = await client.listResources();
      expect(resources.map((r) => r.uri)).toEqual([
        'test://static-text',
        'test://static-binary',
        'test://watched-resource',
      ]);
    } finally {
      await client.close();
    }
  });
});
