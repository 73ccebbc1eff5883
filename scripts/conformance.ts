/**
 * Transparency check: runs the official MCP conformance suite (`@modelcontextprotocol/conformance`,
 * server scenarios) directly against an upstream and again through Switchboard fronting that
 * upstream, then compares the results scenario by scenario.
 *
 * Usage (Node ≥ 22; `npm run conformance -- …` passes the same flags):
 *
 *   node --import tsx scripts/conformance.ts [--suite all|active|pending]
 *        [--upstream fixture|fixture-stdio|everything|both|all] [--out DIR] [--strict] [--direct-only]
 *
 * Upstreams:
 * - `fixture`: `test/fixtures/conformance-server.ts` over Streamable HTTP (implements every server
 *   scenario under the suite's names, so the whole suite must pass through Switchboard).
 * - `fixture-stdio`: the same fixture served over stdio, which Switchboard starts itself; there is
 *   no direct URL, so its baseline is the direct run of the HTTP fixture.
 * - `everything`: `@modelcontextprotocol/server-everything` in `streamableHttp` mode on a free port
 *   (it implements only part of the suite; what passes directly must still pass through).
 * - `both` = fixture + everything (default); `all` = all three.
 *
 * Gate (exit 1 when broken): every scenario that passes directly passes through Switchboard's
 * per-server route `/servers/{name}/mcp`; with the fixture, every scenario passes through;
 * `dns-rebinding-protection` passes at Switchboard (per-server route and aggregate `/mcp`) whatever
 * the upstream does. A scenario passes when none of its checks is `FAILURE` (the suite's own
 * rule); one that passes through Switchboard with more `WARNING` checks, or without some checks
 * that succeeded directly (e.g. SSE checks skipped because the answer came as JSON), is reported as
 * degraded, and `--strict` turns that into a failure too. Exit 2 means the run itself could not happen (bad
 * flags, an upstream or Switchboard that did not start).
 *
 * Switchboard is started as `<cmd> serve --config <temp yaml>`, where `<cmd>` is `SWITCHBOARD_CMD`
 * (run through `sh -c`) or, by default, `node --import tsx src/cli/main.ts` when the sources exist,
 * else `node dist/bin/switchboard.js`. It is ready when it logs a JSON line with `"msg":"listening"` and a
 * `"url"`.
 *
 * Results: `<out>/<upstream>/{direct,switchboard,switchboard-aggregate}/server-<scenario>-<ts>/checks.json`
 * as written by the suite's `-o`, the Switchboard config and log, and `<out>/report.json`.
 *
 * @module
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, writeFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { stringify as toYaml } from 'yaml';
import { startConformanceServer } from '../test/fixtures/conformance-server.js';

const require = createRequire(import.meta.url);

/** Repository root (this file lives in `scripts/`). */
export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

const CONFORMANCE_BIN = join(
  dirname(require.resolve('@modelcontextprotocol/conformance/package.json')),
  'dist/index.js',
);
const EVERYTHING_BIN = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');
const FIXTURE_PATH = join(REPO_ROOT, 'test/fixtures/conformance-server.ts');
const TSX_LOADER = import.meta.resolve('tsx');
const DNS_SCENARIO = 'dns-rebinding-protection';

/** Upstreams the runner knows how to start. */
export const UPSTREAM_KINDS = ['fixture', 'fixture-stdio', 'everything'] as const;
export type UpstreamKind = (typeof UPSTREAM_KINDS)[number];

/** Suites of `conformance server --suite`. */
export type Suite = 'all' | 'active' | 'pending';

/** Status of one check in a scenario's `checks.json`. */
export type CheckStatus = 'SUCCESS' | 'FAILURE' | 'WARNING' | 'INFO' | 'SKIPPED';

/** One entry of a scenario's `checks.json`. */
export interface Check {
  id: string;
  name?: string;
  description?: string;
  status: CheckStatus;
  errorMessage?: string;
}

/**
 * A scenario's outcome: `fail` if any check is `FAILURE`, else `warn` if any is `WARNING`, else
 * `pass`; `missing` when the suite printed the scenario but wrote no `checks.json` (it crashed).
 */
export type Verdict = 'pass' | 'warn' | 'fail' | 'missing';

/** Per-scenario summary of one suite run. */
export interface ScenarioOutcome {
  scenario: string;
  verdict: Verdict;
  passed: number;
  failed: number;
  warnings: number;
  /** `checkId: message` for each FAILURE and WARNING check. */
  problems: string[];
  checks: Check[];
  /** Directory holding this scenario's `checks.json`. */
  resultDir?: string;
}

/** One invocation of `conformance server`. */
export interface SuiteRun {
  url: string;
  suite: Suite | undefined;
  scenarioFilter: string | undefined;
  exitCode: number | null;
  outDir: string;
  durationMs: number;
  scenarios: Map<string, ScenarioOutcome>;
  /** Last lines of the suite's output (for diagnostics). */
  outputTail: string;
}

/** `true` when a verdict counts as passing by the suite's own rule (no FAILURE). */
export const isPassing = (v: Verdict | 'not run' | undefined): boolean => v === 'pass' || v === 'warn';

// ---------------------------------------------------------------------------------------------
// Running the suite and reading its results
// ---------------------------------------------------------------------------------------------

const RESULT_DIR_RE = /^server-(.+)-\d{4}-\d{2}-\d{2}T\d{2}-\d{2}-\d{2}-\d{3}Z$/;

/** Summarises one scenario's checks (see {@link Verdict}). */
export function summarizeChecks(scenario: string, checks: Check[], resultDir?: string): ScenarioOutcome {
  const failed = checks.filter((c) => c.status === 'FAILURE').length;
  const warnings = checks.filter((c) => c.status === 'WARNING').length;
  const outcome: ScenarioOutcome = {
    scenario,
    verdict: failed > 0 ? 'fail' : warnings > 0 ? 'warn' : 'pass',
    passed: checks.filter((c) => c.status === 'SUCCESS').length,
    failed,
    warnings,
    problems: checks
      .filter((c) => c.status === 'FAILURE' || c.status === 'WARNING')
      .map((c) => `${c.id} ${c.status}${c.errorMessage ? `: ${c.errorMessage}` : ''}`),
    checks,
  };
  if (resultDir !== undefined) outcome.resultDir = resultDir;
  return outcome;
}

/**
 * Reads the `server-<scenario>-<timestamp>/checks.json` directories the suite writes with `-o`.
 * `expected` lists the scenarios the suite announced; those without results become `missing`.
 */
export async function readSuiteResults(outDir: string, expected: string[] = []): Promise<Map<string, ScenarioOutcome>> {
  const results = new Map<string, ScenarioOutcome>();
  const entries = existsSync(outDir) ? await readdir(outDir, { withFileTypes: true }) : [];
  for (const entry of entries.filter((e) => e.isDirectory()).sort((a, b) => a.name.localeCompare(b.name))) {
    const m = RESULT_DIR_RE.exec(entry.name);
    const file = join(outDir, entry.name, 'checks.json');
    if (!m?.[1] || !existsSync(file)) continue;
    const checks = JSON.parse(await readFile(file, 'utf8')) as Check[];
    results.set(m[1], summarizeChecks(m[1], checks, join(outDir, entry.name)));
  }
  // Keep the suite's own order; scenarios it announced without writing results crashed.
  const ordered = new Map<string, ScenarioOutcome>();
  for (const scenario of expected) {
    ordered.set(
      scenario,
      results.get(scenario) ?? {
        ...summarizeChecks(scenario, []),
        verdict: 'missing',
        problems: ['no checks.json written (the scenario crashed; see the suite output)'],
      },
    );
  }
  for (const [scenario, outcome] of results) if (!ordered.has(scenario)) ordered.set(scenario, outcome);
  return ordered;
}

/** Options for {@link runSuite}. */
export interface RunSuiteOptions {
  /** Suite to run (default `all`); ignored when `scenario` is set. */
  suite?: Suite;
  /** Run one scenario instead of a suite. */
  scenario?: string;
  /** Where the suite writes `checks.json` directories (created). */
  outDir: string;
  /** Kill the suite after this long. Default 180 s. */
  timeoutMs?: number;
}

/** Runs `conformance server --url <url> …` in a child Node process and reads its results. */
export async function runSuite(url: string, options: RunSuiteOptions): Promise<SuiteRun> {
  await mkdir(options.outDir, { recursive: true });
  const args = [CONFORMANCE_BIN, 'server', '--url', url, '-o', options.outDir];
  if (options.scenario) args.push('--scenario', options.scenario);
  else args.push('--suite', options.suite ?? 'all');
  const started = Date.now();
  const child = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env } });
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (output += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (output += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 180_000);
  const exitCode = await new Promise<number | null>((done) => child.on('close', (code) => done(code)));
  clearTimeout(timer);
  await writeFile(join(options.outDir, 'suite-output.txt'), output);

  const announced = [...output.matchAll(/^=== Running scenario: (\S+) ===$/gm)].map((m) => m[1] ?? '');
  const expected = options.scenario ? [options.scenario] : announced;
  const scenarios = await readSuiteResults(options.outDir, expected);
  if (scenarios.size === 0) {
    throw new Error(
      `conformance suite produced no results against ${url} (exit ${exitCode}):\n${output.split('\n').slice(-20).join('\n')}`,
    );
  }
  return {
    url,
    suite: options.scenario ? undefined : (options.suite ?? 'all'),
    scenarioFilter: options.scenario,
    exitCode,
    outDir: options.outDir,
    durationMs: Date.now() - started,
    scenarios,
    outputTail: output.split('\n').slice(-30).join('\n'),
  };
}

// ---------------------------------------------------------------------------------------------
// Processes: upstreams and Switchboard
// ---------------------------------------------------------------------------------------------

/** A started process or in-process server with a stop function. */
export interface Started {
  stop(): Promise<void>;
}

/** Asks the OS for a free TCP port on 127.0.0.1 (released before returning; small race). */
export async function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const srv = createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolvePort(port));
    });
  });
}

/** Sends SIGTERM to a child (its process group when detached), then SIGKILL after `graceMs`. */
async function stopChild(child: ChildProcess, graceMs = 5000, group = false): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null || child.pid === undefined) return;
  const pid = child.pid;
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const signal = (sig: NodeJS.Signals) => {
    try {
      if (group) process.kill(-pid, sig);
      else child.kill(sig);
    } catch {
      // already gone
    }
  };
  signal('SIGTERM');
  const timer = setTimeout(() => signal('SIGKILL'), graceMs);
  await exited;
  clearTimeout(timer);
}

/** A child process plus its output, read line by line until `ready` matches. */
async function spawnUntilReady<T>(
  label: string,
  command: string,
  args: string[],
  options: { env?: NodeJS.ProcessEnv; cwd?: string; detached?: boolean; timeoutMs: number; logFile?: string },
  ready: (line: string) => T | undefined,
): Promise<{ child: ChildProcess; value: T; output: () => string }> {
  const child = spawn(command, args, {
    cwd: options.cwd ?? REPO_ROOT,
    env: options.env ?? process.env,
    stdio: ['ignore', 'pipe', 'pipe'],
    detached: options.detached ?? false,
  });
  let output = '';
  let pending = '';
  let settle: ((v: T) => void) | undefined;
  const readyPromise = new Promise<T>((resolveReady) => (settle = resolveReady));
  const onData = (s: string) => {
    output += s;
    pending += s;
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const line of lines) {
      const v = ready(line);
      if (v !== undefined) settle?.(v);
    }
  };
  child.stdout?.setEncoding('utf8').on('data', onData);
  child.stderr?.setEncoding('utf8').on('data', onData);
  const failure = new Promise<never>((_, reject) => {
    child.once('error', (err) => reject(new Error(`${label}: could not start ${command}: ${err.message}`)));
    child.once('exit', (code, sig) =>
      reject(
        new Error(
          `${label} exited before it was ready (code ${code}, signal ${sig}). Last output:\n` +
            output.split('\n').slice(-25).join('\n'),
        ),
      ),
    );
  });
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `${label} was not ready after ${options.timeoutMs} ms. Last output:\n` +
              output.split('\n').slice(-25).join('\n'),
          ),
        ),
      options.timeoutMs,
    );
  });
  try {
    const value = await Promise.race([readyPromise, failure, timeout]);
    failure.catch(() => {}); // the exit after a later stop() is expected
    return { child, value, output: () => output };
  } catch (err) {
    failure.catch(() => {});
    await stopChild(child, 2000, options.detached ?? false);
    if (options.logFile) await writeFile(options.logFile, output).catch(() => {});
    throw err;
  } finally {
    clearTimeout(timer);
  }
}

/** An upstream under test. */
export interface StartedUpstream extends Started {
  kind: UpstreamKind;
  /** Direct MCP URL (absent for stdio). */
  url?: string;
  /** Entry for Switchboard's `servers:` map. */
  serverConfig: Record<string, unknown>;
}

/** Starts one upstream on 127.0.0.1 (stdio upstreams are started later, by Switchboard). */
export async function startUpstream(kind: UpstreamKind): Promise<StartedUpstream> {
  switch (kind) {
    case 'fixture': {
      const fixture = await startConformanceServer({ host: '127.0.0.1', port: 0 });
      return { kind, url: fixture.url, serverConfig: { url: fixture.url }, stop: () => fixture.close() };
    }
    case 'fixture-stdio':
      return {
        kind,
        serverConfig: {
          command: process.execPath,
          args: ['--import', TSX_LOADER, FIXTURE_PATH, '--stdio'],
          cwd: REPO_ROOT,
        },
        stop: async () => {},
      };
    case 'everything': {
      // server-everything reads PORT (default 3001; "0" would be used but not reported) and binds
      // all interfaces; it logs "listening on port N" on stderr when ready.
      const port = await freePort();
      const { child } = await spawnUntilReady(
        'server-everything',
        process.execPath,
        [EVERYTHING_BIN, 'streamableHttp'],
        { env: { ...process.env, PORT: String(port) }, timeoutMs: 20_000 },
        (line) => (/listening on port/i.test(line) ? true : undefined),
      );
      const url = `http://127.0.0.1:${port}/mcp`;
      return { kind, url, serverConfig: { url }, stop: () => stopChild(child, 3000) };
    }
  }
}

/** A running Switchboard. */
export interface StartedSwitchboard extends Started {
  /** Base URL from the `listening` log line, without a trailing slash. */
  url: string;
  /** Everything it printed so far. */
  output(): string;
}

/** Options for {@link startSwitchboard}. */
export interface StartSwitchboardOptions {
  /** `servers:` entries, by name. */
  servers: Record<string, Record<string, unknown>>;
  /** Directory for the generated config and the log. */
  workDir: string;
  /** Extra top-level config keys merged into the generated YAML. */
  extraConfig?: Record<string, unknown>;
  /** Command prefix (default: `SWITCHBOARD_CMD`, else the repo's CLI). */
  command?: string;
  /** Default 60 s (a cold `tsx` start compiles the sources). */
  startTimeoutMs?: number;
}

/** The command used to start Switchboard, before `serve --config FILE`. */
export function switchboardCommand(): string {
  const fromEnv = process.env['SWITCHBOARD_CMD']?.trim();
  if (fromEnv) return fromEnv;
  const q = (s: string) => `'${s.replaceAll("'", `'\\''`)}'`;
  const src = join(REPO_ROOT, 'src/cli/main.ts');
  if (existsSync(src)) return `${q(process.execPath)} --import ${q(TSX_LOADER)} ${q(src)}`;
  return `${q(process.execPath)} ${q(join(REPO_ROOT, 'dist/bin/switchboard.js'))}`;
}

/** Extracts the base URL from a Switchboard `listening` log line (pino JSON). */
export function parseListeningLine(line: string): string | undefined {
  const start = line.indexOf('{');
  if (start < 0) return undefined;
  try {
    const record = JSON.parse(line.slice(start)) as { msg?: unknown; url?: unknown };
    if (record.msg === 'listening' && typeof record.url === 'string') return record.url.replace(/\/+$/, '');
  } catch {
    // not JSON
  }
  return undefined;
}

/**
 * Starts Switchboard with a temporary YAML config (`listen` on 127.0.0.1:0, the given `servers`),
 * waits for its `listening` log line and returns its URL. Throws, with the last lines it printed,
 * if it exits or stays silent.
 */
export async function startSwitchboard(options: StartSwitchboardOptions): Promise<StartedSwitchboard> {
  await mkdir(options.workDir, { recursive: true });
  const configFile = join(options.workDir, 'switchboard.yaml');
  const logFile = join(options.workDir, 'switchboard.log');
  const config = { listen: { host: '127.0.0.1', port: 0 }, ...options.extraConfig, servers: options.servers };
  await writeFile(configFile, toYaml(config));
  const command = options.command ?? switchboardCommand();
  const {
    child,
    value: url,
    output,
  } = await spawnUntilReady(
    `Switchboard (${command})`,
    'sh',
    ['-c', `${command} serve --config "$SWITCHBOARD_CONFORMANCE_CONFIG"`],
    {
      env: { ...process.env, SWITCHBOARD_CONFORMANCE_CONFIG: configFile },
      detached: true, // its own process group, so stdio upstreams it started stop with it
      timeoutMs: options.startTimeoutMs ?? 60_000,
      logFile,
    },
    parseListeningLine,
  );
  return {
    url,
    output,
    async stop() {
      await stopChild(child, 5000, true);
      await writeFile(logFile, output()).catch(() => {});
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Comparison
// ---------------------------------------------------------------------------------------------

/** One row of the direct-vs-Switchboard table. */
export interface ComparisonRow {
  scenario: string;
  direct: Verdict | 'not run';
  via: Verdict | 'not run';
  /** Passed directly, fails (or is missing) through Switchboard. */
  regression: boolean;
  /**
   * Passes both ways, but through Switchboard with more WARNING checks or without some checks that
   * succeeded directly (the suite verified less).
   */
  degraded: boolean;
  /** Ids of checks that succeeded directly and did not succeed (or did not run) through Switchboard. */
  lostChecks: string[];
  /** Failed directly, passes through Switchboard (e.g. DNS-rebinding protection added by the gateway). */
  improved: boolean;
  /** FAILURE/WARNING details through Switchboard, when they differ from the direct run. */
  details: string[];
}

/** Compares two runs scenario by scenario (union of both scenario lists, in the direct run's order). */
export function compareRuns(
  direct: Map<string, ScenarioOutcome>,
  via: Map<string, ScenarioOutcome> | undefined,
): ComparisonRow[] {
  const names = [...direct.keys(), ...[...(via?.keys() ?? [])].filter((s) => !direct.has(s))];
  return names.map((scenario) => {
    const d = direct.get(scenario);
    const v = via?.get(scenario);
    const dPass = isPassing(d?.verdict);
    const vPass = isPassing(v?.verdict);
    const regression = via !== undefined && d !== undefined && dPass && !vPass;
    const succeeded = (o: ScenarioOutcome | undefined) =>
      new Set((o?.checks ?? []).filter((c) => c.status === 'SUCCESS').map((c) => c.id));
    const viaSucceeded = succeeded(v);
    const lostChecks = [...succeeded(d)].filter((id) => !viaSucceeded.has(id));
    const degraded = dPass && vPass && ((v?.warnings ?? 0) > (d?.warnings ?? 0) || lostChecks.length > 0);
    const directProblems = new Set(d?.problems ?? []);
    return {
      scenario,
      direct: d?.verdict ?? 'not run',
      via: v?.verdict ?? 'not run',
      regression,
      degraded,
      lostChecks,
      improved: d !== undefined && v !== undefined && !dPass && vPass,
      details: (v?.problems ?? []).filter((p) => !directProblems.has(p)),
    };
  });
}

// ---------------------------------------------------------------------------------------------
// The whole run
// ---------------------------------------------------------------------------------------------

/** What was measured for one upstream. */
export interface UpstreamReport {
  upstream: UpstreamKind;
  /** Server name in the Switchboard config (route `/servers/{name}/mcp`). */
  serverName: string;
  directUrl?: string;
  viaUrl?: string;
  aggregateUrl?: string;
  /** Direct baseline (for `fixture-stdio`: the HTTP fixture's direct run). */
  direct?: SuiteRun;
  via?: SuiteRun;
  /** `dns-rebinding-protection` against Switchboard's aggregate `/mcp`. */
  aggregateDns?: ScenarioOutcome;
  /** Why an upstream or Switchboard could not be started. */
  startError?: string;
  rows: ComparisonRow[];
  /** Reasons this upstream fails the gate (empty = passes). */
  problems: string[];
}

/** Result of {@link runConformance}. */
export interface ConformanceReport {
  suite: Suite;
  outDir: string;
  strict: boolean;
  directOnly: boolean;
  switchboardCommand: string;
  upstreams: UpstreamReport[];
  ok: boolean;
}

/** Options for {@link runConformance}. */
export interface RunConformanceOptions {
  /** Default `['fixture', 'everything']`. */
  upstreams?: UpstreamKind[];
  /** Default `all`. */
  suite?: Suite;
  /** Default: a fresh directory under the OS temp dir. */
  outDir?: string;
  /** Count degraded scenarios (new WARNINGs or lost checks through Switchboard) as failures. Default false. */
  strict?: boolean;
  /** Only run the direct half (and check the fixture passes everything directly). Default false. */
  directOnly?: boolean;
  /** Overrides {@link switchboardCommand}. */
  switchboardCommand?: string;
  /** How long Switchboard may take to log `listening`. Default 60 s. */
  switchboardStartTimeoutMs?: number;
  /** Progress lines (default: none). */
  log?: (line: string) => void;
}

/** Scenarios the fixture is built to pass: all of them, in every suite. */
const FIXTURE_KINDS: ReadonlySet<UpstreamKind> = new Set(['fixture', 'fixture-stdio']);

/**
 * Runs the comparison for each upstream: suite directly (baseline), Switchboard in front, suite
 * through `/servers/{name}/mcp`, `dns-rebinding-protection` through `/mcp`, and the gate rules
 * described in this module's header. Never throws for an upstream or Switchboard that fails to
 * start: that is recorded in `startError` and fails the gate.
 */
export async function runConformance(options: RunConformanceOptions = {}): Promise<ConformanceReport> {
  const suite = options.suite ?? 'all';
  const log = options.log ?? (() => {});
  const outDir = options.outDir ?? (await mkdtemp(join(tmpdir(), 'switchboard-conformance-')));
  await mkdir(outDir, { recursive: true });
  const kinds = options.upstreams ?? ['fixture', 'everything'];
  const command = options.switchboardCommand ?? switchboardCommand();
  const reports: UpstreamReport[] = [];
  /** The HTTP fixture's direct run, reused as the stdio fixture's baseline. */
  let fixtureDirect: SuiteRun | undefined;

  const fixtureBaseline = async (): Promise<SuiteRun> => {
    if (fixtureDirect) return fixtureDirect;
    const fixture = await startUpstream('fixture');
    try {
      log(`fixture: running the ${suite} suite directly against ${fixture.url}`);
      fixtureDirect = await runSuite(fixture.url ?? '', { suite, outDir: join(outDir, 'fixture', 'direct') });
      return fixtureDirect;
    } finally {
      await fixture.stop();
    }
  };

  for (const kind of kinds) {
    const serverName = kind;
    const report: UpstreamReport = { upstream: kind, serverName, rows: [], problems: [] };
    reports.push(report);
    const dir = join(outDir, kind);
    let upstream: StartedUpstream | undefined;
    let switchboard: StartedSwitchboard | undefined;
    try {
      upstream = await startUpstream(kind);
      if (upstream.url) {
        report.directUrl = upstream.url;
        log(`${kind}: running the ${suite} suite directly against ${upstream.url}`);
        report.direct = await runSuite(upstream.url, { suite, outDir: join(dir, 'direct') });
        if (kind === 'fixture') fixtureDirect = report.direct;
      } else if (kind === 'fixture-stdio') {
        report.direct = await fixtureBaseline();
      }

      if (!options.directOnly) {
        if (
          options.switchboardCommand === undefined &&
          !process.env['SWITCHBOARD_CMD']?.trim() &&
          !existsSync(join(REPO_ROOT, 'src/cli/main.ts')) &&
          !existsSync(join(REPO_ROOT, 'dist/bin/switchboard.js'))
        ) {
          throw new Error(
            'Switchboard CLI not found: neither src/cli/main.ts nor dist/bin/switchboard.js exists (set SWITCHBOARD_CMD, or use --direct-only)',
          );
        }
        log(`${kind}: starting Switchboard (${command})`);
        switchboard = await startSwitchboard({
          servers: { [serverName]: upstream.serverConfig },
          workDir: dir,
          command,
          ...(options.switchboardStartTimeoutMs !== undefined
            ? { startTimeoutMs: options.switchboardStartTimeoutMs }
            : {}),
        });
        report.viaUrl = `${switchboard.url}/servers/${encodeURIComponent(serverName)}/mcp`;
        report.aggregateUrl = `${switchboard.url}/mcp`;
        log(`${kind}: running the ${suite} suite through Switchboard at ${report.viaUrl}`);
        report.via = await runSuite(report.viaUrl, { suite, outDir: join(dir, 'switchboard') });
        if (!report.via.scenarios.has(DNS_SCENARIO)) {
          const dns = await runSuite(report.viaUrl, { scenario: DNS_SCENARIO, outDir: join(dir, 'switchboard-dns') });
          const outcome = dns.scenarios.get(DNS_SCENARIO);
          if (outcome) report.via.scenarios.set(DNS_SCENARIO, outcome);
        }
        log(`${kind}: running ${DNS_SCENARIO} at Switchboard's aggregate endpoint ${report.aggregateUrl}`);
        const aggregate = await runSuite(report.aggregateUrl, {
          scenario: DNS_SCENARIO,
          outDir: join(dir, 'switchboard-aggregate'),
        });
        report.aggregateDns = aggregate.scenarios.get(DNS_SCENARIO);
      }
    } catch (err) {
      report.startError = err instanceof Error ? err.message : String(err);
    } finally {
      await switchboard?.stop();
      await upstream?.stop();
    }
    report.rows = report.direct ? compareRuns(report.direct.scenarios, report.via?.scenarios) : [];
    report.problems = gateProblems(report, {
      strict: options.strict ?? false,
      directOnly: options.directOnly ?? false,
    });
  }

  const report: ConformanceReport = {
    suite,
    outDir,
    strict: options.strict ?? false,
    directOnly: options.directOnly ?? false,
    switchboardCommand: command,
    upstreams: reports,
    ok: reports.every((r) => r.problems.length === 0),
  };
  await writeFile(join(outDir, 'report.json'), JSON.stringify(report, jsonReplacer, 2));
  return report;
}

function gateProblems(report: UpstreamReport, opts: { strict: boolean; directOnly: boolean }): string[] {
  const problems: string[] = [];
  if (report.startError) problems.push(`could not run: ${summarizeError(report.startError)}`);
  const isFixture = FIXTURE_KINDS.has(report.upstream);
  if (report.upstream === 'fixture' && report.direct) {
    const failing = [...report.direct.scenarios.values()].filter((s) => !isPassing(s.verdict));
    if (failing.length > 0) {
      problems.push(`the fixture itself fails directly: ${failing.map((s) => s.scenario).join(', ')}`);
    }
  }
  if (opts.directOnly) return problems;
  if (!report.via) return problems.length > 0 ? problems : ['no run through Switchboard'];
  for (const row of report.rows) {
    if (row.regression) problems.push(`regression: ${row.scenario} passes directly, ${row.via} through Switchboard`);
    if (row.degraded && opts.strict)
      problems.push(`degraded (strict): ${row.scenario} has new warnings or lost checks through Switchboard`);
    if (isFixture && !row.regression && !isPassing(row.via) && row.scenario !== DNS_SCENARIO) {
      problems.push(`${row.scenario} does not pass through Switchboard (${row.via})`);
    }
  }
  const dns = report.via.scenarios.get(DNS_SCENARIO);
  if (!isPassing(dns?.verdict)) {
    problems.push(`${DNS_SCENARIO} does not pass at ${report.viaUrl} (${dns?.verdict ?? 'not run'})`);
  }
  if (!isPassing(report.aggregateDns?.verdict)) {
    problems.push(
      `${DNS_SCENARIO} does not pass at ${report.aggregateUrl} (${report.aggregateDns?.verdict ?? 'not run'})`,
    );
  }
  return problems;
}

/** First line of an error, plus the first line of the captured output that names an error. */
function summarizeError(message: string): string {
  const [first = '', ...rest] = message.split('\n');
  const cause = rest.map((l) => l.trim()).find((l) => /error/i.test(l));
  const head = first.replace(/ Last output:$/, '');
  return cause && !first.includes(cause) ? `${head} — ${cause}` : head;
}

function jsonReplacer(key: string, value: unknown): unknown {
  if (value instanceof Map) return Object.fromEntries(value);
  if (key === 'checks') return undefined; // in the checks.json files already
  return value;
}

// ---------------------------------------------------------------------------------------------
// Printing
// ---------------------------------------------------------------------------------------------

const VERDICT_LABEL: Record<Verdict | 'not run', string> = {
  pass: 'pass',
  warn: 'pass (warn)',
  fail: 'FAIL',
  missing: 'MISSING',
  'not run': '-',
};

function counts(run: SuiteRun | undefined): string {
  if (!run) return 'not run';
  const all = [...run.scenarios.values()];
  return `${all.filter((s) => isPassing(s.verdict)).length}/${all.length} scenarios pass`;
}

/** Renders the report as plain-text tables, one per upstream. */
export function formatReport(report: ConformanceReport): string {
  const out: string[] = [];
  for (const u of report.upstreams) {
    out.push('');
    out.push(`== ${u.upstream} ==`);
    if (u.directUrl) out.push(`direct:      ${u.directUrl}`);
    else if (u.direct) out.push(`direct:      (baseline: the HTTP fixture's direct run, ${u.direct.url})`);
    if (u.viaUrl) out.push(`switchboard: ${u.viaUrl}`);
    if (u.startError) out.push(`ERROR: ${u.startError}`);
    if (u.rows.length > 0) {
      const w = Math.max(...u.rows.map((r) => r.scenario.length), 'scenario'.length);
      out.push('');
      out.push(`${'scenario'.padEnd(w)}  ${'direct'.padEnd(12)}  ${'via switchboard'.padEnd(15)}  note`);
      out.push(`${'-'.repeat(w)}  ${'-'.repeat(12)}  ${'-'.repeat(15)}  ----`);
      for (const r of u.rows) {
        const note = r.regression
          ? 'REGRESSION'
          : r.improved
            ? 'passes only through switchboard'
            : r.degraded
              ? `degraded${r.lostChecks.length > 0 ? ` (lost: ${r.lostChecks.join(', ')})` : ' (new warnings)'}`
              : '';
        out.push(
          `${r.scenario.padEnd(w)}  ${VERDICT_LABEL[r.direct].padEnd(12)}  ${VERDICT_LABEL[r.via].padEnd(15)}  ${note}`,
        );
        if (r.regression || r.degraded) for (const d of r.details) out.push(`${' '.repeat(w)}    ${d}`);
      }
    }
    out.push('');
    out.push(`direct: ${counts(u.direct)}; via switchboard: ${counts(u.via)}`);
    if (u.aggregateDns) {
      out.push(`${DNS_SCENARIO} at ${u.aggregateUrl}: ${VERDICT_LABEL[u.aggregateDns.verdict]}`);
    }
    out.push(u.problems.length === 0 ? 'result: OK' : `result: FAILED\n  - ${u.problems.join('\n  - ')}`);
  }
  out.push('');
  out.push(`results: ${report.outDir} (report.json, checks.json per scenario)`);
  out.push(report.ok ? 'OVERALL: OK' : 'OVERALL: FAILED');
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// CLI
// ---------------------------------------------------------------------------------------------

const USAGE = `usage: node --import tsx scripts/conformance.ts [--suite all|active|pending]
       [--upstream fixture|fixture-stdio|everything|both|all] [--out DIR] [--strict] [--direct-only]
env:   SWITCHBOARD_CMD  command prefix to start Switchboard (default: node --import tsx src/cli/main.ts)`;

async function main(): Promise<number> {
  const major = Number(process.versions.node.split('.')[0]);
  if (major < 22) {
    console.error(`The conformance suite needs Node >= 22 (this is ${process.version}).`);
    return 2;
  }
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        suite: { type: 'string', default: 'all' },
        upstream: { type: 'string', default: 'both' },
        out: { type: 'string' },
        strict: { type: 'boolean', default: false },
        'direct-only': { type: 'boolean', default: false },
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
  const suite = values.suite as Suite;
  if (!['all', 'active', 'pending'].includes(suite)) {
    console.error(`unknown --suite ${values.suite}\n${USAGE}`);
    return 2;
  }
  const upstreamArg = values.upstream;
  const upstreams: UpstreamKind[] | undefined =
    upstreamArg === 'both'
      ? ['fixture', 'everything']
      : upstreamArg === 'all'
        ? [...UPSTREAM_KINDS]
        : (UPSTREAM_KINDS as readonly string[]).includes(upstreamArg)
          ? [upstreamArg as UpstreamKind]
          : undefined;
  if (!upstreams) {
    console.error(`unknown --upstream ${upstreamArg}\n${USAGE}`);
    return 2;
  }

  const report = await runConformance({
    upstreams,
    suite,
    strict: values.strict,
    directOnly: values['direct-only'],
    ...(values.out !== undefined ? { outDir: resolve(values.out) } : {}),
    log: (line) => console.error(`[conformance] ${line}`),
  });
  console.log(formatReport(report));
  if (report.ok) return 0;
  return report.upstreams.some((u) => u.startError) ? 2 : 1;
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
