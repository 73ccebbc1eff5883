/**
 * Runs the MCP 2026-07-28 conformance requirements (`conformance-2026`, an alias of
 * `@modelcontextprotocol/conformance@0.2.0-alpha.12`) against one MCP endpoint and summarises the
 * result per scenario:
 *
 *   conformance server --url URL --requirements 2026-07-28 -o DIR
 *
 * Usage (Node ≥ 22; `npm run conformance:2026 -- …` passes the same flags):
 *
 *   node --import tsx scripts/conformance-2026.ts (--url URL | --fixture serve|stateless|reject)
 *        [--out DIR] [--scenario NAME] [--timeout MS] [--json]
 *
 * - `--url URL`: an endpoint that is already running (for example Switchboard's
 *   `/servers/{name}/mcp`).
 * - `--fixture serve|stateless|reject`: starts `test/fixtures/v2-server.ts` over Streamable HTTP in-process
 *   (`serve` = dual-era with sessionful 2025 serving, `stateless` = dual-era through the SDK's
 *   stateless legacy fallback, `reject` = modern-only), runs the suite against it, stops it.
 * - `--scenario NAME`: one scenario instead of the requirement set.
 *
 * Output: a table on stdout (one row per scenario: passed / failed / warnings / verdict, and whether
 * the requirement set scores it), then `summary.json` in the output directory (default: a fresh
 * temporary directory), next to the suite's own `server-<scenario>-<timestamp>/checks.json` and
 * `suite-output.txt`. With `--json` the summary JSON is printed instead of the table.
 *
 * Counting: `passed` = checks with status SUCCESS, `failed` = FAILURE, `warnings` = WARNING;
 * INFO and SKIPPED checks are counted in `other`. A scenario passes when it has no FAILURE.
 * Scenarios listed under `not_scored` in the suite's `requirements/2026-07-28.yaml` (extensions,
 * pending) run and are reported but do not count towards the scored totals.
 *
 * Exit code: 0 when every scored scenario passes, 1 when some scored scenario fails, 2 when the
 * suite could not run (bad flags, no results).
 *
 * @module
 */
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, readdir, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { parse as parseYaml } from 'yaml';

const require = createRequire(import.meta.url);

/** The spec revision whose frozen requirement set is run. */
export const REQUIREMENTS = '2026-07-28';

const SUITE_ROOT = dirname(require.resolve('conformance-2026/package.json'));
const SUITE_BIN = join(SUITE_ROOT, 'dist/index.js');

/** Per-scenario counts. */
export interface Scenario2026 {
  scenario: string;
  /** `false` for the requirement set's `not_scored` entries (extension, pending, …). */
  scored: boolean;
  /** Why a scenario is not scored (`extension`, `pending`, …). */
  notScoredReason?: string;
  passed: number;
  failed: number;
  warnings: number;
  /** INFO and SKIPPED checks. */
  other: number;
  verdict: 'pass' | 'fail' | 'missing';
  /** `checkId: message` of each FAILURE check. */
  failures: string[];
}

/** What {@link runConformance2026} returns and writes as `summary.json`. */
export interface Summary2026 {
  url: string;
  requirements: typeof REQUIREMENTS;
  suiteVersion: string;
  scenarioFilter?: string;
  startedAt: string;
  durationMs: number;
  exitCode: number | null;
  outDir: string;
  /** Sums over scored scenarios. */
  scored: { scenarios: number; passing: number; passed: number; failed: number };
  /** Sums over every scenario that ran. */
  all: { scenarios: number; passing: number; passed: number; failed: number };
  scenarios: Scenario2026[];
}

/** Options for {@link runConformance2026}. */
export interface Run2026Options {
  url: string;
  /** Directory for the suite's results and `summary.json` (created). */
  outDir: string;
  /** Run one scenario instead of the requirement set. */
  scenario?: string;
  /** Per-scenario timeout passed to the suite (ms). */
  scenarioTimeoutMs?: number;
  /** Kill the whole suite after this long. Default 600 s. */
  timeoutMs?: number;
}

interface RawCheck {
  id: string;
  status: string;
  errorMessage?: string;
}

const RESULT_DIR_RE = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/** `not_scored` scenarios (server leg) of the suite's requirement file, with their reasons. */
async function notScored(): Promise<Map<string, string>> {
  const file = join(SUITE_ROOT, 'requirements', `${REQUIREMENTS}.yaml`);
  const doc = parseYaml(await readFile(file, 'utf8')) as {
    not_scored?: Array<{ scenario: string; leg?: string; reason?: string }>;
  };
  return new Map(
    (doc.not_scored ?? [])
      .filter((e) => e.leg === undefined || e.leg === 'server')
      .map((e) => [e.scenario, e.reason ?? 'not scored']),
  );
}

/**
 * Runs the suite's server leg against `url` with `--requirements 2026-07-28` and summarises the
 * `checks.json` files it writes.
 *
 * @param options - See {@link Run2026Options}.
 * @returns The summary (also written to `<outDir>/summary.json`).
 * @throws When the suite wrote no results at all (it could not reach the URL or crashed).
 */
export async function runConformance2026(options: Run2026Options): Promise<Summary2026> {
  await mkdir(options.outDir, { recursive: true });
  const args = [SUITE_BIN, 'server', '--url', options.url, '-o', options.outDir];
  // `--force`: an extension scenario (tasks-*) is off the spec timeline and would be skipped.
  if (options.scenario) args.push('--scenario', options.scenario, '--spec-version', REQUIREMENTS, '--force');
  else args.push('--requirements', REQUIREMENTS);
  if (options.scenarioTimeoutMs !== undefined) args.push('--timeout', String(options.scenarioTimeoutMs));
  const startedAt = new Date();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 600_000);
  const exitCode = await new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  clearTimeout(timer);
  await writeFile(join(options.outDir, 'suite-output.txt'), output);

  const announced = [...output.matchAll(/^=== Running scenario: (\S+) ===$/gm)].map((m) => m[1] ?? '');
  const skip = await notScored();
  const byName = new Map<string, Scenario2026>();
  for (const entry of (await readdir(options.outDir, { withFileTypes: true })).filter((e) => e.isDirectory())) {
    const m = RESULT_DIR_RE.exec(entry.name);
    const file = join(options.outDir, entry.name, 'checks.json');
    if (!m?.[1] || !existsSync(file)) continue;
    const checks = JSON.parse(await readFile(file, 'utf8')) as RawCheck[];
    const count = (s: string) => checks.filter((c) => c.status === s).length;
    const failed = count('FAILURE');
    const reason = skip.get(m[1]);
    byName.set(m[1], {
      scenario: m[1],
      scored: reason === undefined,
      ...(reason !== undefined ? { notScoredReason: reason } : {}),
      passed: count('SUCCESS'),
      failed,
      warnings: count('WARNING'),
      other: checks.length - count('SUCCESS') - failed - count('WARNING'),
      verdict: failed > 0 ? 'fail' : 'pass',
      failures: checks
        .filter((c) => c.status === 'FAILURE')
        .map((c) => `${c.id}${c.errorMessage ? `: ${c.errorMessage}` : ''}`),
    });
  }
  if (byName.size === 0) {
    throw new Error(
      `conformance-2026 wrote no results for ${options.url} (exit ${exitCode}):\n${output.split('\n').slice(-20).join('\n')}`,
    );
  }
  // The suite's own order first; scenarios it announced without writing results crashed.
  const order = announced.length > 0 ? announced : [...byName.keys()];
  const scenarios: Scenario2026[] = order.map(
    (name) =>
      byName.get(name) ?? {
        scenario: name,
        scored: !skip.has(name),
        passed: 0,
        failed: 0,
        warnings: 0,
        other: 0,
        verdict: 'missing',
        failures: ['no checks.json written (see suite-output.txt)'],
      },
  );
  for (const [name, s] of byName) if (!order.includes(name)) scenarios.push(s);

  const sum = (list: Scenario2026[]) => ({
    scenarios: list.length,
    passing: list.filter((s) => s.verdict === 'pass').length,
    passed: list.reduce((n, s) => n + s.passed, 0),
    failed: list.reduce((n, s) => n + s.failed, 0),
  });
  const pkg = JSON.parse(await readFile(join(SUITE_ROOT, 'package.json'), 'utf8')) as { version: string };
  const summary: Summary2026 = {
    url: options.url,
    requirements: REQUIREMENTS,
    suiteVersion: pkg.version,
    ...(options.scenario ? { scenarioFilter: options.scenario } : {}),
    startedAt: startedAt.toISOString(),
    durationMs: Date.now() - startedAt.getTime(),
    exitCode,
    outDir: options.outDir,
    scored: sum(scenarios.filter((s) => s.scored)),
    all: sum(scenarios),
    scenarios,
  };
  await writeFile(join(options.outDir, 'summary.json'), JSON.stringify(summary, null, 2) + '\n');
  return summary;
}

/**
 * Renders a summary as a plain-text table: one row per scenario, then the scored and overall
 * totals, then the first failure message of each failing scored scenario.
 *
 * @param summary - A {@link Summary2026}.
 * @returns The table (no trailing newline).
 */
export function formatSummary2026(summary: Summary2026): string {
  const w = Math.max('scenario'.length, ...summary.scenarios.map((s) => s.scenario.length));
  const out = [
    `conformance ${summary.suiteVersion} --requirements ${summary.requirements} against ${summary.url}`,
    '',
    `${'scenario'.padEnd(w)}  passed  failed  warn  verdict  scored`,
    `${'-'.repeat(w)}  ------  ------  ----  -------  ------`,
  ];
  for (const s of summary.scenarios) {
    out.push(
      `${s.scenario.padEnd(w)}  ${String(s.passed).padStart(6)}  ${String(s.failed).padStart(6)}  ${String(s.warnings).padStart(4)}  ${(s.verdict === 'pass' ? 'pass' : s.verdict.toUpperCase()).padEnd(7)}  ${s.scored ? 'yes' : `no (${s.notScoredReason ?? ''})`}`,
    );
  }
  const t = (x: Summary2026['all']) =>
    `${x.passing}/${x.scenarios} scenarios pass; checks: ${x.passed} passed, ${x.failed} failed`;
  out.push('', `scored: ${t(summary.scored)}`, `all:    ${t(summary.all)}`);
  const failing = summary.scenarios.filter((s) => s.scored && s.verdict !== 'pass');
  if (failing.length > 0) {
    out.push('', 'scored failures:');
    for (const s of failing) out.push(`  ${s.scenario}: ${s.failures[0] ?? ''}`);
  }
  out.push('', `results: ${join(summary.outDir, 'summary.json')}`);
  return out.join('\n');
}

const USAGE = `usage: node --import tsx scripts/conformance-2026.ts (--url URL | --fixture serve|stateless|reject)
       [--out DIR] [--scenario NAME] [--timeout MS] [--json]`;

async function main(): Promise<number> {
  if (Number(process.versions.node.split('.')[0]) < 22) {
    console.error(`The conformance suite needs Node >= 22 (this is ${process.version}).`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        url: { type: 'string' },
        fixture: { type: 'string' },
        out: { type: 'string' },
        scenario: { type: 'string' },
        timeout: { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h', default: false },
      },
    }));
  } catch (err) {
    console.error(`${err instanceof Error ? err.message : String(err)}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    console.log(USAGE);
    return 0;
  }
  const fixture = values.fixture;
  if (
    (values.url === undefined) === (fixture === undefined) ||
    (fixture && !['serve', 'stateless', 'reject'].includes(fixture))
  ) {
    console.error(USAGE);
    return 2;
  }
  const outDir = values.out ? resolve(values.out) : await mkdtemp(join(tmpdir(), 'switchboard-conformance-2026-'));
  let stop: (() => Promise<void>) | undefined;
  let url = values.url ?? '';
  if (fixture) {
    const { startV2HttpServer } = await import('../test/fixtures/v2-server.js');
    const server = await startV2HttpServer({ legacy: fixture as 'serve' | 'stateless' | 'reject' });
    url = server.url;
    stop = () => server.close();
    console.error(`[conformance-2026] fixture (legacy: ${fixture}) at ${url}`);
  }
  try {
    const summary = await runConformance2026({
      url,
      outDir,
      ...(values.scenario ? { scenario: values.scenario } : {}),
      ...(values.timeout ? { scenarioTimeoutMs: Number(values.timeout) } : {}),
    });
    console.log(values.json ? JSON.stringify(summary, null, 2) : formatSummary2026(summary));
    return summary.scenarios.some((s) => s.scored && s.verdict !== 'pass') ? 1 : 0;
  } finally {
    await stop?.();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().then(
    (code) => process.exit(code),
    (err: unknown) => {
      console.error(err);
      process.exit(2);
    },
  );
}
