#!/usr/bin/env node
// Switchboard benchmark harness (`npm run bench`). See docs/benchmarks.md.
//
//   node bench/run.mjs [--quick] [--only 1,4] [--duration S] [--warmup S] [--repeat R]
//                      [--client undici|http] [--idle-sessions N] [--json FILE] [--cpu-prof DIR]
//                      [--features FILE.yaml [--header 'Authorization: Bearer …']]
//
// --features: a config fragment (YAML/JSON) merged into Switchboard's config for scenario 3
// (e.g. auth, rate limits, metrics, usage log); --header adds headers to that contender's requests.
//
// Every scenario runs its contenders side by side in this one invocation (same machine, same
// fixture upstream, same load), one after another, each load run in its own process. Progress goes
// to stderr; the result tables (Markdown) go to stdout.
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from 'node:fs';
import { tmpdir, cpus, totalmem } from 'node:os';
import { join, resolve as resolvePath } from 'node:path';
import { parseArgs } from 'node:util';
import { spawn, spawnSync } from 'node:child_process';
import * as lib from './lib.mjs';
import {
  cpuSnapshot,
  foreignCpuPercent,
  FIXTURE_STDIO,
  NODE,
  processCpuMs,
  jsonListening,
  median,
  peerBin,
  rssKiB,
  runLoadProcess,
  sleep,
  startProcess,
  stdioEcho,
  treeRssKiB,
} from './lib.mjs';

const { values: argv } = parseArgs({
  options: {
    quick: { type: 'boolean', default: false },
    only: { type: 'string' },
    duration: { type: 'string' },
    warmup: { type: 'string' },
    repeat: { type: 'string' },
    client: { type: 'string', default: 'undici' },
    'idle-sessions': { type: 'string' },
    json: { type: 'string' },
    'cpu-prof': { type: 'string' },
    features: { type: 'string' },
    header: { type: 'string', multiple: true, default: [] },
    help: { type: 'boolean', short: 'h', default: false },
  },
});
if (argv.help) {
  process.stdout.write(
    'usage: node bench/run.mjs [--quick] [--only 1,4] [--duration S] [--warmup S] [--repeat R]\n' +
      '                          [--client undici|http] [--idle-sessions N] [--json FILE] [--cpu-prof DIR]\n' +
      '                          [--features FILE.yaml [--header "Authorization: Bearer …"]]\n' +
      'Scenarios: 1 stdio tools/call, 2 Streamable HTTP tools/call, 3 features (default only),\n' +
      '           4 tools/list of a 1,000-tool aggregate, 5 idle sessions RSS, 6 session setup rate,\n' +
      '           7 cold start, 8 three replicas behind HAProxy against one,\n' +
      '           9 search_tools over 5,000 tools (exposure: search).\n',
  );
  process.exit(0);
}

const QUICK = argv.quick;
const CFG = {
  duration: Number(argv.duration ?? (QUICK ? 0.5 : 2)),
  warmup: Number(argv.warmup ?? (QUICK ? 0.2 : 0.5)),
  repeat: Math.max(1, Number(argv.repeat ?? (QUICK ? 1 : 4))),
  client: argv.client,
  concurrency: QUICK ? [1, 16] : [1, 16, 64],
  sessions: 4,
  idleSessions: Number(argv['idle-sessions'] ?? (QUICK ? 500 : 10_000)),
  startRepeats: QUICK ? 1 : 5,
  sgSessionCap: QUICK ? 4 : 20,
};
const ONLY = argv.only ? new Set(argv.only.split(',').map((s) => Number(s.trim()))) : undefined;
const CPU_PROF = argv['cpu-prof'] ? resolvePath(argv['cpu-prof']) : undefined;
const TMP = mkdtempSync(join(tmpdir(), 'swb-bench-'));

const running = new Set();
async function stopAll() {
  await Promise.all([...running].map((h) => h.stop()));
  running.clear();
}
for (const sig of ['SIGINT', 'SIGTERM']) {
  process.on(sig, () => {
    void stopAll().finally(() => process.exit(130));
  });
}

function log(msg) {
  process.stderr.write(`${msg}\n`);
}
const f1 = (x) => (Number.isFinite(x) ? x.toFixed(1) : 'n/a');
const f2 = (x) => (Number.isFinite(x) ? x.toFixed(2) : 'n/a');
const f3 = (x) => (Number.isFinite(x) ? x.toFixed(3) : 'n/a');
const int = (x) => (Number.isFinite(x) ? Math.round(x).toLocaleString('en-US') : 'n/a');

// ─── contenders ────────────────────────────────────────────────────────────────────────────────

const SUPERGATEWAY = peerBin('supergateway');
const MCP_PROXY = peerBin('mcp-proxy');

async function track(promise) {
  const h = await promise;
  running.add(h);
  const stop = h.stop.bind(h);
  h.stop = async () => {
    running.delete(h);
    return stop();
  };
  return h;
}

const startRelay = (env, o) => track(lib.startRelay(env, o));
const startHttpFixture = (env) => track(lib.startHttpFixture(env));
const startPeer = (kind) => track(lib.startPeer(kind));
const startSwitchboard = (servers, { profile = false } = {}) =>
  track(lib.startSwitchboard(servers, { tmpDir: TMP, cpuProfDir: profile ? CPU_PROF : undefined }));

// ─── measuring ─────────────────────────────────────────────────────────────────────────────────

let quietBudgetMs = QUICK ? 0 : 60_000; // total time we may spend waiting for other load to pass

/** Waits (bounded) until processes outside the harness use < 25 % of a core. */
async function waitQuiet() {
  while (quietBudgetMs > 0) {
    const a = cpuSnapshot();
    await sleep(250);
    const b = cpuSnapshot();
    const foreign = foreignCpuPercent(a, b);
    if (foreign < 25) return;
    log(`    (other processes use ${Math.round(foreign)} % of a core; waiting for a quieter machine)`);
    const w = Math.min(quietBudgetMs, 2000);
    quietBudgetMs -= w + 250;
    await sleep(w);
  }
}

/**
 * One load run in its own process, with the CPU used meanwhile by processes outside the harness
 * and — when `pid` is given — the CPU time the server process itself spent per request.
 */
async function loadOnce(opts, pid) {
  await waitQuiet();
  const cpu0 = pid ? safeCpu(pid) : NaN;
  const a = cpuSnapshot();
  const r = await runLoadProcess({
    client: CFG.client,
    duration: CFG.duration,
    warmup: CFG.warmup,
    sessions: CFG.sessions,
    ...opts,
  });
  r.foreignCpu = Math.round(foreignCpuPercent(a, cpuSnapshot()));
  if (pid)
    r.cpuUsPerReq =
      ((safeCpu(pid) - cpu0) * 1000) / Math.max(1, r.total + (opts.op === 'setup' ? 0 : 2 * (r.sessions ?? 0)));
  return r;
}

function safeCpu(pid) {
  try {
    return processCpuMs(pid);
  } catch {
    return NaN;
  }
}

function fmtRun(label, r) {
  return (
    `  ${label.padEnd(48)} ${String(r.rps).padStart(7)} req/s  p50 ${f3(r.p50)}  p90 ${f3(r.p90)}  p99 ${f3(r.p99)} ms` +
    (Number.isFinite(r.cpuUsPerReq) ? `  cpu ${f1(r.cpuUsPerReq)} µs/req` : '') +
    (r.foreignCpu >= 10 ? `  [other load ${r.foreignCpu} %]` : '') +
    (r.errors ? `  errors ${r.errors} (${r.firstError})` : '')
  );
}

/**
 * Best of the repeated runs: the run with the highest throughput, all its figures kept together.
 * On a shared machine background load can only slow a run down, so the least disturbed run is
 * the best estimate of what the contender can do; every run is kept in the JSON output.
 */
function combine(runs) {
  const best = runs.reduce((a, r) => (r.rps > a.rps ? r : a), runs[0]);
  return {
    rps: best.rps,
    p50: best.p50,
    p90: best.p90,
    p99: best.p99,
    mean: best.mean,
    cpuUsPerReq: best.cpuUsPerReq,
    ok: best.ok,
    errors: runs.reduce((s, r) => s + r.errors, 0),
    firstError: runs.find((r) => r.firstError)?.firstError,
    foreignCpu: best.foreignCpu,
    medianRps: median(runs.map((r) => r.rps)),
    runs: runs.map((r) => ({
      rps: r.rps,
      p50: r.p50,
      p99: r.p99,
      cpuUsPerReq: r.cpuUsPerReq,
      foreignCpu: r.foreignCpu,
    })),
  };
}

/**
 * Starts every contender, then measures each point for each contender in rounds
 * (contender A, B, C, A, B, C, …) so that background noise hits all of them alike, and keeps
 * the best round of each (see `combine`). `points`: [{ id, label, opts(contender) }]. Returns rows[key][pointId].
 */
async function compare(contenders, points, { rounds = CFG.repeat } = {}) {
  const handles = {};
  const rows = {};
  /** HTTP responses each contender gave, over all its load runs (warm-up and session setup included). */
  const served = {};
  try {
    for (const c of contenders) {
      try {
        handles[c.key] = await c.start();
        if (CPU_PROF && handles[c.key].name === 'switchboard')
          log(`  (profiling ${c.label}: switchboard pid ${handles[c.key].pid} → ${CPU_PROF})`);
      } catch (err) {
        const msg = String(err?.message ?? err).split('\n')[0];
        log(`  ${c.label}: could not start: ${msg}`);
        rows[c.key] = { error: msg };
      }
    }
    for (const p of points) {
      const runs = {};
      for (let r = 0; r < rounds; r++) {
        for (const c of contenders) {
          const h = handles[c.key];
          if (!h || rows[c.key]?.error) continue;
          const label = `${c.label} ${p.label}${rounds > 1 ? ` #${r + 1}` : ''}`;
          try {
            const res = await loadOnce({ url: h.url, ...p.opts(c) }, h.pid);
            served[c.key] = (served[c.key] ?? 0) + (res.httpResponses ?? 0);
            log(fmtRun(label, res));
            (runs[c.key] ??= []).push(res);
          } catch (err) {
            const msg = String(err?.message ?? err).split('\n')[0];
            log(`  ${label}: failed: ${msg}`);
            rows[c.key] = { error: msg };
          }
        }
      }
      for (const [k, rs] of Object.entries(runs)) if (!rows[k]?.error) (rows[k] ??= {})[p.id] = combine(rs);
    }
  } finally {
    await Promise.all(Object.values(handles).map((h) => h.stop()));
  }
  // After a graceful stop (SIGTERM): e.g. count what the contender stored while it ran.
  for (const c of contenders) {
    if (!c.afterStop || !handles[c.key] || rows[c.key]?.error) continue;
    try {
      (rows[c.key] ??= {}).afterStop = await c.afterStop({ served: served[c.key] ?? 0 });
    } catch (err) {
      (rows[c.key] ??= {}).afterStop = { error: String(err?.message ?? err).split('\n')[0] };
    }
  }
  return rows;
}

/** Starts one contender, runs `fn(handle)`, always stops it. Failures become `{ error }`. */
async function withContender(label, start, fn) {
  let h;
  try {
    h = await start();
  } catch (err) {
    const msg = String(err?.message ?? err).split('\n')[0];
    log(`  ${label}: could not start: ${msg}`);
    return { error: msg };
  }
  try {
    return await fn(h);
  } catch (err) {
    const msg = String(err?.message ?? err).split('\n')[0];
    log(`  ${label}: failed: ${msg}`);
    return { error: msg };
  } finally {
    await h.stop();
  }
}

/** initialize + initialized + tools/list (following nextCursor): the number of tools exposed. */
async function countTools(url) {
  const { extractResponse, PROTOCOL_VERSION } = await import('./load.mjs');
  const base = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
  let id = 0;
  async function rpc(headers, method, params, notification) {
    const body = { jsonrpc: '2.0', method, ...(params ? { params } : {}) };
    if (!notification) body.id = ++id;
    const r = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
    const text = await r.text();
    if (notification) return { r };
    try {
      return { r, msg: extractResponse(r.headers.get('content-type'), text, body.id) };
    } catch (err) {
      // Say what answered: a wrong body from the right port tells a gateway bug from a port race.
      throw new Error(`${method} at ${url}: HTTP ${r.status} ${r.headers.get('content-type')}: ${text.slice(0, 300)}`, {
        cause: err,
      });
    }
  }
  const init = await rpc(base, 'initialize', {
    protocolVersion: PROTOCOL_VERSION,
    capabilities: {},
    clientInfo: { name: 'bench-check', version: '1' },
  });
  const sid = init.r.headers.get('mcp-session-id');
  const h = { ...base, 'mcp-protocol-version': PROTOCOL_VERSION, ...(sid ? { 'mcp-session-id': sid } : {}) };
  await rpc(h, 'notifications/initialized', undefined, true);
  let n = 0;
  let pages = 0;
  let cursor;
  do {
    const { msg } = await rpc(h, 'tools/list', cursor ? { cursor } : {});
    n += msg.result.tools.length;
    pages++;
    cursor = msg.result.nextCursor;
  } while (cursor);
  return { tools: n, pages };
}

/** Read-only: the commit and how many files differ from it (dist/ is what is measured). */
function gitInfo() {
  const git = (...a) => spawnSync('git', a, { cwd: lib.ROOT, encoding: 'utf8' }).stdout?.trim() ?? '';
  const head = git('rev-parse', '--short', 'HEAD');
  const dirty = git('status', '--porcelain').split('\n').filter(Boolean).length;
  return head ? `${head}${dirty ? ` + ${dirty} changed files` : ''}` : 'unknown';
}

const results = {
  meta: {
    date: new Date().toISOString(),
    command: `node bench/run.mjs ${process.argv.slice(2).join(' ')}`.trim(),
    node: process.version,
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model,
    memGiB: Math.round(totalmem() / 2 ** 30),
    config: CFG,
    git: gitInfo(),
    peers: {
      supergateway: SUPERGATEWAY?.version ?? 'not installed',
      'mcp-proxy': MCP_PROXY?.version ?? 'not installed',
    },
  },
};
const out = [];
const print = (s = '') => out.push(s);
function table(headers, rows) {
  print(`| ${headers.join(' | ')} |`);
  print(`| ${headers.map((h, i) => (i === 0 ? '---' : '---:')).join(' | ')} |`);
  for (const r of rows) print(`| ${r.join(' | ')} |`);
  print();
}
const want = (n) => !ONLY || ONLY.has(n);

// ─── scenario 1 / 2: tools/call echo ───────────────────────────────────────────────────────────

function callScenario(contenders) {
  return compare(
    contenders,
    CFG.concurrency.map((conc) => ({
      id: conc,
      label: `c=${conc}`,
      opts: (c) => ({ op: 'call', tool: c.tool, concurrency: conc, headers: c.headers, era: c.era }),
    })),
  );
}

function printCallTable(title, contenders, rows, floorKey, peerKeys, refKey, peerTitle = 'best peer') {
  print(`### ${title}`);
  print();
  const t = [];
  for (const c of contenders) {
    const r = rows[c.key];
    if (!r || r.error) {
      t.push([c.label, '—', `not run: ${r?.error ?? 'no result'}`, '', '', '', '', '', '', '']);
      continue;
    }
    for (const conc of CFG.concurrency) {
      const x = r[conc];
      if (!x) continue;
      t.push([
        c.label,
        conc,
        int(x.rps),
        f3(x.p50),
        f3(x.p90),
        f3(x.p99),
        f1(x.cpuUsPerReq),
        x.errors,
        x.foreignCpu,
        x.runs.map((r) => int(r.rps)).join(' / '),
      ]);
    }
  }
  table(
    [
      'contender',
      'concurrency',
      'req/s',
      'p50 ms',
      'p90 ms',
      'p99 ms',
      'server CPU µs/req',
      'errors',
      'other load %',
      'req/s of each round',
    ],
    t,
  );
  const get = (k, conc) => (rows[k] && !rows[k].error ? rows[k][conc] : undefined);
  const refs = [floorKey, ...(refKey ? [refKey] : [])];
  const name = {
    relay: floorKey === 'relay' ? 'bare relay' : 'bare HTTP relay',
    direct: 'direct',
    default: 'Switchboard default config',
  };
  const ratios = [];
  for (const conc of CFG.concurrency) {
    const s = get('switchboard', conc);
    let best;
    for (const k of peerKeys) {
      const p = get(k, conc);
      if (p && (!best || p.rps > best.r.rps)) best = { k, r: p };
    }
    const row = [conc];
    for (const k of refs) row.push(s && get(k, conc) ? f2(s.rps / get(k, conc).rps) : 'n/a');
    if (peerKeys.length) row.push(s && best ? `${f2(s.rps / best.r.rps)} (${best.k})` : 'n/a');
    for (const k of refs) {
      const fl = get(k, conc);
      row.push(s && fl ? `${f3(s.p50 - fl.p50)} / ${f3(s.p99 - fl.p99)}` : 'n/a');
    }
    const cpuRef = get(refKey ?? floorKey, conc);
    row.push(s && cpuRef && Number.isFinite(cpuRef.cpuUsPerReq) ? f2(s.cpuUsPerReq / cpuRef.cpuUsPerReq) : 'n/a');
    ratios.push(row);
  }
  table(
    [
      'concurrency',
      ...refs.map((k) => `Switchboard ÷ ${name[k]} (req/s)`),
      ...(peerKeys.length ? [`Switchboard ÷ ${peerTitle} (req/s)`] : []),
      ...refs.map((k) => `added p50 / p99 ms vs ${name[k]}`),
      `server CPU per request ÷ ${name[refKey ?? floorKey]}`,
    ],
    ratios,
  );
}

const S1 = [
  { key: 'relay', label: 'bare relay (floor)', start: () => startRelay(), tool: 'echo' },
  {
    key: 'switchboard',
    label: 'Switchboard /mcp',
    start: () => startSwitchboard(stdioEcho(), { profile: true }),
    tool: 'echo__echo',
  },
  {
    // The same default config, asked by MCP 2026-07-28 (stateless) clients: no session.
    key: 'switchboard-modern',
    label: 'Switchboard /mcp, 2026-07-28 stateless',
    start: () => startSwitchboard(stdioEcho(), { profile: true }),
    tool: 'echo__echo',
    era: 'modern',
  },
  {
    key: 'supergateway',
    label: `supergateway ${SUPERGATEWAY?.version ?? ''} --stateful`.replace('  ', ' '),
    start: () => startPeer('supergateway'),
    tool: 'echo',
  },
  {
    key: 'mcp-proxy',
    label: `mcp-proxy ${MCP_PROXY?.version ?? ''}`.trim(),
    start: () => startPeer('mcp-proxy'),
    tool: 'echo',
  },
];

/**
 * Scenarios 1 and 3 share one interleaved run: the features contender of 3 is measured beside the
 * contenders of 1 (same fixture, same load, same rounds). `--only 3` measures relay, Switchboard
 * with its default config and Switchboard with the features.
 */
async function scenario1and3() {
  const contenders = [];
  if (want(1)) contenders.push(...S1);
  else contenders.push(S1[0], S1[1]);
  let feat;
  let featOff;
  let guard;
  if (want(3)) {
    try {
      [feat, featOff] = await featureContenders();
      contenders.splice(2, 0, ...(featOff ? [featOff, feat] : [feat]));
    } catch (err) {
      results.s3error = String(err?.message ?? err).split('\n')[0];
      log(`  scenario 3: ${results.s3error}`);
    }
    try {
      guard = await guardrailsContender();
      contenders.splice(2, 0, guard);
    } catch (err) {
      log(`  scenario 3 (guardrails): ${String(err?.message ?? err).split('\n')[0]}`);
    }
  }
  log(
    `\n[${want(1) ? '1' : ''}${want(1) && feat ? ' + ' : ''}${feat ? '3' : ''}] tools/call echo via a stdio upstream` +
      `${feat ? ` (with ${feat.label})` : ''}, ${CFG.sessions} sessions, c=${CFG.concurrency.join('/')}`,
  );
  const rows = await callScenario(contenders);
  if (want(1)) results.s1 = rows;
  if (feat) {
    results.s3 = {
      relay: rows.relay,
      default: rows.switchboard,
      switchboard: rows.features,
      ...(featOff ? { 'usage-off': rows['features-off'] } : {}),
      ...(guard ? { guardrails: rows.guardrails } : {}),
      supergateway: rows.supergateway,
      'mcp-proxy': rows['mcp-proxy'],
      contenders: contenders.map(({ key, label }) => ({
        key:
          key === 'switchboard'
            ? 'default'
            : key === 'features'
              ? 'switchboard'
              : key === 'features-off'
                ? 'usage-off'
                : key,
        label,
      })),
      features: feat.file,
      fragment: feat.fragment,
    };
  }
}

let httpFixture;
async function scenario2() {
  log(`\n[2] tools/call echo via a Streamable HTTP upstream, ${CFG.sessions} sessions, c=${CFG.concurrency.join('/')}`);
  httpFixture = await startHttpFixture();
  const contenders = [
    {
      key: 'direct',
      label: 'direct to upstream (floor)',
      start: async () => ({ url: httpFixture.url, stop: async () => {} }),
      tool: 'echo',
    },
    {
      key: 'relay',
      label: 'bare HTTP→HTTP relay (one hop, no features)',
      start: () => startRelay({}, { upstream: httpFixture.url }),
      tool: 'echo',
    },
    {
      key: 'switchboard',
      label: 'Switchboard /mcp',
      start: () => startSwitchboard({ echo: { url: httpFixture.url } }, { profile: true }),
      tool: 'echo__echo',
    },
  ];
  results.s2 = await callScenario(contenders);
  results.s2.contenders = contenders.map(({ key, label }) => ({ key, label }));
  await httpFixture.stop();
}

// ─── scenario 3: features on ───────────────────────────────────────────────────────────────────

/**
 * Scenario 3's contenders: Switchboard with the features file merged into its config (default
 * bench/features.yaml: auth tokens + rate limit + metrics + usage log). With `auth.mode: tokens`
 * an API token is created with `switchboard token create` and sent on every request.
 *
 * When the fragment turns the usage log on, a second contender runs the same fragment with
 * `usage.enabled: false` in the same rounds (the usage log's target: throughput with the log
 * within 10 % of without it), and after the graceful stop the rows in the contender's SQLite
 * database are counted against the HTTP responses the load generator received from it (every
 * request carries the API token, so each must be one row). Returns [features, featuresOff?].
 */
async function featureContenders() {
  const featuresFile = resolvePath(argv.features ?? join(lib.BENCH_DIR, 'features.yaml'));
  const { parse } = await import('yaml');
  const { readFileSync } = await import('node:fs');
  const fragment = parse(readFileSync(featuresFile, 'utf8')) ?? {};
  const label = relativeName(featuresFile);
  const usageOn = fragment.usage?.enabled === true;
  const make = (key, contenderLabel, frag, countRows) => {
    const headers = [...argv.header];
    let configFile;
    return {
      key,
      label: contenderLabel,
      tool: 'echo__echo',
      headers,
      fragment: frag,
      file: label,
      start: async () => {
        configFile = lib.writeSwitchboardConfig(stdioEcho(), { tmpDir: TMP, extraConfig: frag });
        const mode = String(frag.auth?.mode ?? 'none');
        if (mode.includes('tokens') && !headers.some((h) => /^authorization:/i.test(h))) {
          headers.push(`Authorization: Bearer ${lib.createToken(configFile)}`);
          log('  (created an API token with `switchboard token create`; sent as Authorization: Bearer …)');
        }
        return track(lib.startSwitchboard(stdioEcho(), { tmpDir: TMP, configFile }));
      },
      ...(countRows
        ? {
            afterStop: async ({ served }) => {
              const rows = await lib.countUsageRows(configFile);
              log(`  usage log: ${int(rows)} rows stored for ${int(served)} requests served`);
              return { usageRows: rows, served };
            },
          }
        : {}),
    };
  };
  const on = make('features', `Switchboard + ${label}`, fragment, usageOn);
  if (!usageOn) return [on];
  const off = make(
    'features-off',
    `Switchboard + ${label}, usage log off`,
    lib.deepMerge(fragment, { usage: { enabled: false } }),
    false,
  );
  return [on, off];
}

/**
 * Scenario 3's guardrails contender: Switchboard (default config otherwise) with the five
 * guardrails of bench/guardrails.yaml, its webhook pointed at a guard server the harness runs on
 * loopback for the whole run.
 */
async function guardrailsContender() {
  const { parse } = await import('yaml');
  const { readFileSync } = await import('node:fs');
  const file = join(lib.BENCH_DIR, 'guardrails.yaml');
  const fragment = parse(readFileSync(file, 'utf8'));
  const server = await lib.startGuardServer();
  running.add(server); // stopped with the contenders
  for (const g of fragment.guardrails) if (g.webhook) g.webhook.url = server.url;
  return {
    key: 'guardrails',
    label: `Switchboard + ${relativeName(file)}`,
    tool: 'echo__echo',
    start: () => {
      const configFile = lib.writeSwitchboardConfig(stdioEcho(), { tmpDir: TMP, extraConfig: fragment });
      return track(lib.startSwitchboard(stdioEcho(), { tmpDir: TMP, configFile }));
    },
  };
}

function relativeName(file) {
  return file.startsWith(lib.ROOT) ? file.slice(lib.ROOT.length + 1) : file;
}

// ─── scenario 4: tools/list of a 1,000-tool aggregate ──────────────────────────────────────────

async function scenario4() {
  log('\n[4] tools/list of a 1,000-tool aggregate (20 stdio upstreams × 50 tools), c=1, 1 session');
  const servers = {};
  for (let i = 1; i <= 20; i++) {
    servers[`s${String(i).padStart(2, '0')}`] = { command: NODE, args: [FIXTURE_STDIO], env: { TOOLS: '50' } };
  }
  const contenders = [
    {
      key: 'relay',
      label: 'bare relay, 1 upstream × 1,000 tools',
      start: async () => {
        const h = await startRelay({ TOOLS: '1000' });
        h.check = await countTools(h.url);
        return h;
      },
    },
    {
      key: 'switchboard',
      label: 'Switchboard /mcp, 20 × 50 tools',
      start: async () => {
        const h = await startSwitchboard(servers, { profile: true });
        h.check = await countTools(h.url);
        log(`  Switchboard aggregate exposes ${h.check.tools} tools in ${h.check.pages} page(s)`);
        return h;
      },
    },
  ];
  const checks = {};
  for (const c of contenders) {
    const start = c.start;
    c.start = async () => {
      const h = await start();
      checks[c.key] = h.check;
      return h;
    };
  }
  const rows = await compare(contenders, [
    // Light verification: the client does not JSON.parse 135 KB per answer (countTools checked it once).
    { id: 'list', label: 'tools/list c=1', opts: () => ({ op: 'list', sessions: 1, concurrency: 1, verify: 'light' }) },
  ]);
  const r = {};
  for (const c of contenders) r[c.key] = rows[c.key]?.error ? rows[c.key] : { ...rows[c.key].list, ...checks[c.key] };
  results.s4 = r;
}

// ─── scenario 5: idle sessions ─────────────────────────────────────────────────────────────────

async function openIdle(h, n, { tree = false } = {}) {
  const rss = () => (tree ? treeRssKiB(h.pid).kib : rssKiB(h.pid));
  await sleep(1000);
  await waitQuiet();
  const before = rss();
  const load = await runLoadProcess({
    url: h.url,
    op: 'setup',
    concurrency: 16,
    maxOps: n,
    client: CFG.client,
    timeout: 300,
  });
  await sleep(2000);
  const after = rss();
  const procs = tree ? treeRssKiB(h.pid).processes : 1;
  const res = {
    sessions: load.ok,
    errors: load.errors,
    firstError: load.firstError,
    openRate: load.rps,
    rssBeforeMiB: before / 1024,
    rssAfterMiB: after / 1024,
    perSessionKiB: (after - before) / Math.max(1, load.ok),
    processes: procs,
  };
  log(
    `  ${h.name}: ${load.ok} sessions (${load.errors} errors) at ${load.rps}/s; RSS ${f1(res.rssBeforeMiB)} → ${f1(res.rssAfterMiB)} MiB` +
      ` (${f1(res.perSessionKiB)} KiB/session${tree ? `, ${procs} processes` : ''})`,
  );
  return res;
}

async function scenario5() {
  const N = CFG.idleSessions;
  log(`\n[5] ${N.toLocaleString('en-US')} concurrent idle sessions (initialize + initialized, no GET stream): RSS`);
  const r = {};
  r.switchboard = await withContender(
    'switchboard',
    () => startSwitchboard(stdioEcho()),
    (h) => openIdle(h, N),
  );
  r['mcp-proxy'] = await withContender(
    'mcp-proxy',
    () => startPeer('mcp-proxy'),
    (h) => openIdle(h, N),
  );
  log(
    `  supergateway --stateful spawns a child per session: capped at ${CFG.sgSessionCap} sessions, RSS of the process tree`,
  );
  r.supergateway = await withContender(
    'supergateway',
    () => startPeer('supergateway'),
    (h) => openIdle(h, CFG.sgSessionCap, { tree: true }),
  );
  results.s5 = { target: N, ...r };
}

// ─── scenario 6: session setup rate ────────────────────────────────────────────────────────────

async function scenario6() {
  log('\n[6] session setup rate (initialize + notifications/initialized), c=16');
  const contenders = [
    { key: 'relay', label: 'bare relay (floor)', start: () => startRelay() },
    { key: 'switchboard', label: 'Switchboard /mcp', start: () => startSwitchboard(stdioEcho(), { profile: true }) },
    { key: 'mcp-proxy', label: `mcp-proxy ${MCP_PROXY?.version ?? ''}`.trim(), start: () => startPeer('mcp-proxy') },
  ];
  const rows = await compare(contenders, [
    { id: 'setup', label: 'setup c=16', opts: () => ({ op: 'setup', concurrency: 16 }) },
  ]);
  const r = {};
  for (const c of contenders) r[c.key] = rows[c.key]?.error ? rows[c.key] : rows[c.key].setup;
  log(`- supergateway --stateful: a child process per session, so capped at ${CFG.sgSessionCap} sessions`);
  r.supergateway = await withContender(
    'supergateway',
    () => startPeer('supergateway'),
    async (h) => {
      const res = await loadOnce(
        { url: h.url, op: 'setup', concurrency: 16, maxOps: CFG.sgSessionCap, timeout: 120 },
        h.pid,
      );
      log(fmtRun('supergateway setup c=16', res));
      return res;
    },
  );
  results.s6 = r;
}

// ─── scenario 7: cold start ────────────────────────────────────────────────────────────────────

async function scenario7() {
  log(`\n[7] cold start to ready (${CFG.startRepeats} starts each)`);
  const r = {};
  const collect = async (key, label, start, extra) => {
    const walls = [];
    const own = [];
    let error;
    for (let i = 0; i < CFG.startRepeats; i++) {
      try {
        const h = await start();
        walls.push(h.readyMs);
        if (h.startupMs !== undefined) own.push(h.startupMs);
        await h.stop();
      } catch (err) {
        error = String(err?.message ?? err).split('\n')[0];
        break;
      }
    }
    r[key] = {
      label,
      wallMs: median(walls),
      minWallMs: Math.min(...walls),
      startupMs: own.length ? median(own) : undefined,
      runs: walls,
      error,
      ...extra,
    };
    log(
      `  ${label.padEnd(58)} spawn→ready ${f1(r[key].wallMs)} ms` +
        (own.length ? `, startupMs ${f1(r[key].startupMs)}` : '') +
        (error ? ` (${error})` : ''),
    );
  };
  await collect('node', 'bare node http.createServer().listen (floor)', () =>
    track(
      startProcess(
        'node',
        NODE,
        ['-e', "require('node:http').createServer().listen(0,'127.0.0.1',()=>console.log('{\"listening\":\"x\"}'))"],
        { ready: jsonListening },
      ),
    ),
  );
  const fixture = await startHttpFixture();
  await collect('switchboardHttp', 'Switchboard, 1 Streamable HTTP upstream (already running)', () =>
    startSwitchboard({ echo: { url: fixture.url } }),
  );
  await fixture.stop();
  await collect('switchboardStdio', 'Switchboard, 1 stdio upstream (includes its spawn)', () =>
    startSwitchboard(stdioEcho()),
  );
  await collect('mcp-proxy', 'mcp-proxy (until its port accepts)', () => startPeer('mcp-proxy'));
  await collect('supergateway', 'supergateway --stateful (until its port accepts)', () => startPeer('supergateway'));
  results.s7 = r;
}

// ─── scenario 8: a cluster behind HAProxy ──────────────────────────────────────────────────────

/**
 * Replicas with one `SWITCHBOARD_SECRET` (portable sessions) behind HAProxy balancing every
 * request round robin (no affinity), each over its own stdio echo child.
 */
async function startCluster(n) {
  const env = { SWITCHBOARD_SECRET: 'bench-cluster-secret-0123456789abcdef' };
  const replicas = await Promise.all(
    Array.from({ length: n }, () => track(lib.startSwitchboard(stdioEcho(), { tmpDir: TMP, env }))),
  );
  const lb = await lib.startHaproxy(
    replicas.map((r) => r.url.replace(/\/mcp$/, '')),
    { tmpDir: TMP },
  );
  return {
    url: lb.url,
    replicas: replicas.length,
    stop: async () => {
      await lb.stop();
      await Promise.all(replicas.map((r) => r.stop()));
    },
  };
}

/** Bare relays (each over its own stdio echo child) behind the same HAProxy: what the platform allows. */
async function startRelayCluster(n) {
  const relays = await Promise.all(Array.from({ length: n }, () => startRelay()));
  const path = new URL(relays[0].url).pathname;
  const lb = await lib.startHaproxy(
    relays.map((r) => new URL(r.url).origin),
    { tmpDir: TMP },
  );
  return {
    url: lb.url.replace(/\/mcp$/, path),
    stop: async () => {
      await lb.stop();
      await Promise.all(relays.map((r) => r.stop()));
    },
  };
}

async function scenario8() {
  log(`\n[8] tools/call echo through HAProxy (per-request round robin), ${CFG.sessions} sessions, c=16`);
  if (!lib.haproxyBin()) {
    log('  skipped: haproxy is not installed (apt-get install -y haproxy)');
    results.s8 = { error: 'haproxy is not installed' };
    return;
  }
  const contenders = [
    { key: 'relay-one', label: 'HAProxy → 1 bare relay', start: () => startRelayCluster(1), tool: 'echo' },
    { key: 'relay-three', label: 'HAProxy → 3 bare relays', start: () => startRelayCluster(3), tool: 'echo' },
    { key: 'one', label: 'HAProxy → 1 replica', start: () => startCluster(1), tool: 'echo__echo' },
    { key: 'three', label: 'HAProxy → 3 replicas (sealed sessions)', start: () => startCluster(3), tool: 'echo__echo' },
  ];
  results.s8 = await compare(contenders, [
    { id: 16, label: 'c=16', opts: (c) => ({ op: 'call', tool: c.tool, concurrency: 16 }) },
  ]);
  results.s8.contenders = contenders.map(({ key, label }) => ({ key, label }));
}

// ─── report ────────────────────────────────────────────────────────────────────────────────────

function report() {
  const m = results.meta;
  print('## Switchboard benchmark results');
  print();
  print(
    `${m.date} · ${m.cpus} × ${m.cpuModel} · ${m.memGiB} GiB · Node ${m.node} · load generator on the same machine ` +
      `(separate process, ${CFG.client} keep-alive client) · warm-up ${CFG.warmup} s + ${CFG.duration} s per point` +
      (CFG.repeat > 1 ? ` · best of ${CFG.repeat} interleaved rounds` : '') +
      ` · peers: supergateway ${m.peers.supergateway}, mcp-proxy ${m.peers['mcp-proxy']}` +
      ` · tree ${m.git} (dist/ as built)`,
  );
  print();
  print(`Command: \`${m.command}\``);
  print();
  if (results.s1) {
    printCallTable(
      `1. tools/call echo through a stdio upstream (${CFG.sessions} sessions; Switchboard with its default config)`,
      S1,
      results.s1,
      'relay',
      ['supergateway', 'mcp-proxy'],
    );
  }
  if (results.s2) {
    printCallTable(
      `2. tools/call echo through a Streamable HTTP upstream (${CFG.sessions} sessions; floor = calling the upstream directly)`,
      results.s2.contenders,
      results.s2,
      'direct',
      [],
      'relay',
    );
  }
  if (results.s3) {
    print(
      `Features: \`${JSON.stringify(results.s3.fragment)}\` merged into the config of the last contender ` +
        '(default config = what Switchboard does with no such keys).',
    );
    print();
    printCallTable(
      `3. Features on the hot path: ${results.s3.features} (stdio upstream, ${CFG.sessions} sessions; measured in the same rounds as 1)`,
      results.s3.contenders,
      results.s3,
      'relay',
      ['supergateway', 'mcp-proxy'].filter((k) => results.s3[k]),
      'default',
    );
    printUsageCost(results.s3);
  } else if (results.s3error) {
    print('### 3. Features on the hot path');
    print();
    print(`Not measured: ${results.s3error}`);
    print();
  }
  if (results.s4) {
    const r = results.s4;
    print('### 4. tools/list of a 1,000-tool aggregate (20 stdio upstreams × 50 tools), concurrency 1');
    print();
    const row = (label, x) =>
      x?.error
        ? [label, 'n/a', 'n/a', 'n/a', `not run: ${x.error}`, '']
        : [label, x.tools, f3(x.p50), f3(x.p99), int(x.rps), f1(x.cpuUsPerReq)];
    table(
      ['contender', 'tools', 'p50 ms', 'p99 ms', 'req/s', 'server CPU µs/req'],
      [
        row('bare relay, 1 upstream with 1,000 tools (floor)', r.relay),
        row('Switchboard /mcp (catalogue cache)', r.switchboard),
      ],
    );
    if (r.switchboard && !r.switchboard.error && r.relay && !r.relay.error) {
      print(`Switchboard ÷ floor p50: ${f2(r.switchboard.p50 / r.relay.p50)} (lower is better).`);
      print();
    }
  }
  if (results.s5) {
    const r = results.s5;
    print(`### 5. ${r.target.toLocaleString('en-US')} concurrent idle sessions: resident memory`);
    print();
    const row = (label, x) =>
      x?.error
        ? [label, 'n/a', 'n/a', 'n/a', 'n/a', 'n/a', `not run: ${x.error}`]
        : [
            label,
            int(x.sessions),
            f1(x.rssBeforeMiB),
            f1(x.rssAfterMiB),
            f1(x.rssAfterMiB - x.rssBeforeMiB),
            f1(x.perSessionKiB),
            x.errors,
          ];
    table(
      ['contender', 'sessions', 'RSS before MiB', 'RSS after MiB', 'Δ MiB', 'KiB / session', 'errors'],
      [
        row('Switchboard (gateway process)', r.switchboard),
        row('mcp-proxy (process)', r['mcp-proxy']),
        row(`supergateway --stateful (process tree, ${CFG.sgSessionCap} sessions only)`, r.supergateway),
      ],
    );
    const sb = r.switchboard;
    const mp = r['mcp-proxy'];
    const sg = r.supergateway;
    if (sb && !sb.error) {
      const parts = [];
      if (mp && !mp.error)
        parts.push(`mcp-proxy ÷ Switchboard per session: ${f1(mp.perSessionKiB / sb.perSessionKiB)}×`);
      if (sg && !sg.error)
        parts.push(
          `supergateway at ${r.target.toLocaleString('en-US')} sessions would need ≈ ${f1((sg.perSessionKiB * r.target) / 2 ** 20)} GiB (extrapolated, one child process per session)`,
        );
      if (parts.length) {
        print(`${parts.join('; ')}.`);
        print();
      }
    }
  }
  if (results.s6) {
    const r = results.s6;
    print('### 6. Session setup rate (initialize + notifications/initialized), concurrency 16');
    print();
    const row = (label, x) =>
      x?.error
        ? [label, 'n/a', 'n/a', 'n/a', 'n/a', `not run: ${x.error}`]
        : [label, int(x.rps), f3(x.p50), f3(x.p99), f1(x.cpuUsPerReq), x.errors];
    table(
      ['contender', 'sessions/s', 'p50 ms', 'p99 ms', 'server CPU µs/session', 'errors'],
      [
        row('bare relay (floor; forwards initialize to the child)', r.relay),
        row('Switchboard /mcp', r.switchboard),
        row('mcp-proxy', r['mcp-proxy']),
        row(`supergateway --stateful (${CFG.sgSessionCap} sessions only: a child per session)`, r.supergateway),
      ],
    );
    const sb = r.switchboard;
    if (sb && !sb.error) {
      const parts = [];
      if (r.relay && !r.relay.error) parts.push(`Switchboard ÷ floor: ${f2(sb.rps / r.relay.rps)}`);
      const peers = [r['mcp-proxy'], r.supergateway].filter((x) => x && !x.error);
      if (peers.length) parts.push(`Switchboard ÷ best peer: ${f2(sb.rps / Math.max(...peers.map((x) => x.rps)))}`);
      if (parts.length) {
        print(`${parts.join('; ')}.`);
        print();
      }
    }
  }
  const s8 = results.s8;
  if (s8 && !s8.error) {
    print('### 8. tools/call echo through HAProxy: three replicas against one (per-request round robin, no affinity)');
    print();
    const t = [];
    for (const c of s8.contenders) {
      const x = s8[c.key]?.[16];
      if (!x) {
        t.push([c.label, `not run: ${s8[c.key]?.error ?? 'no result'}`, '', '', '', '', '']);
        continue;
      }
      t.push([
        c.label,
        int(x.rps),
        int(x.medianRps),
        f3(x.p50),
        f3(x.p99),
        x.errors,
        x.runs.map((r) => int(r.rps)).join(' / '),
      ]);
    }
    table(
      ['contender (c=16)', 'req/s (best)', 'req/s (median)', 'p50 ms', 'p99 ms', 'errors', 'req/s of each round'],
      t,
    );
    const r1 = s8['relay-one']?.[16];
    const r3 = s8['relay-three']?.[16];
    if (r1 && r3) {
      print(
        `Three bare relays reach ${f2(r3.medianRps / r1.medianRps)}× one (median rounds) on this machine: with more ` +
          'processes than cores every request wakes more processes, and each pipe and socket write costs more.',
      );
      print();
    }
    print(
      'Every replica runs its own stdio echo child; the 4 sessions are opened through the balancer, so most of their ' +
        'requests land on a replica that did not open them and is served from the sealed session id (the first such ' +
        'request restores the session there; later ones find it).',
    );
    print();
  }
  if (results.s7) {
    const r = results.s7;
    print('### 7. Cold start to ready');
    print();
    table(
      [
        'process',
        'spawn → ready ms (fastest)',
        'spawn → ready ms (median)',
        'startupMs logged by Switchboard (median)',
        'runs (ms)',
      ],
      Object.values(r).map((x) => [
        x.label,
        x.error ? `n/a: ${x.error}` : f1(x.minWallMs),
        x.error ? 'n/a' : f1(x.wallMs),
        x.startupMs === undefined ? '—' : f1(x.startupMs),
        x.runs.map((v) => Math.round(v)).join(', '),
      ]),
    );
    print(
      '`startupMs` is measured inside the gateway from before its upstreams start to the listening socket ' +
        '(so with a stdio upstream it includes that child’s spawn and initialize); spawn → ready is the wall time ' +
        'from spawning the process to its listening line (Node boot and module loading included). ' +
        'The target is judged on the fastest start: background load on a shared machine only adds time.',
    );
    print();
  }
  printTargets();
}

/** Scenario 3's usage-log check: throughput on ÷ off, and rows stored == requests served. */
function usageCheck(s3) {
  const on = s3?.switchboard;
  const off = s3?.['usage-off'];
  if (!on || on.error || !off || off.error) return undefined;
  const points = CFG.concurrency.filter((c) => on[c] && off[c]);
  return {
    points: points.map((c) => ({
      c,
      on: on[c],
      off: off[c],
      ratio: on[c].rps / off[c].rps,
    })),
    rows: on.afterStop,
  };
}

function printUsageCost(s3) {
  const u = usageCheck(s3);
  if (!u) return;
  print('What the usage log costs (same rounds, same features, only `usage.enabled` differs):');
  print();
  table(
    [
      'concurrency',
      'req/s usage log on',
      'req/s off',
      'on ÷ off (best rounds)',
      'on ÷ off (median rounds)',
      'server CPU µs/req on / off',
    ],
    u.points.map((p) => [
      p.c,
      int(p.on.rps),
      int(p.off.rps),
      f2(p.ratio),
      f2(p.on.medianRps / p.off.medianRps),
      `${f1(p.on.cpuUsPerReq)} / ${f1(p.off.cpuUsPerReq)}`,
    ]),
  );
  print(
    'Best round of each (as everywhere in this report) and, for this A/B of two nearly equal ' +
      'configurations, the ratio of the median rounds too: on a shared box the best round of each ' +
      'contender is picked independently, so one lucky round moves the best-of ratio by more than ' +
      'the usage log costs. The target is judged where throughput peaks (c > 1); at c = 1 the gateway is idle most of the time.',
  );
  print();
  if (u.rows?.error) print(`Rows check: could not count the rows: ${u.rows.error}`);
  else if (u.rows)
    print(
      `Rows check: ${int(u.rows.usageRows)} rows in \`usage_log\` after the graceful stop, for ` +
        `${int(u.rows.served)} HTTP responses the load generator received from that gateway (every run, ` +
        `warm-up and session setup included) — ${u.rows.usageRows === u.rows.served ? 'equal' : '**NOT EQUAL**'}.`,
    );
  print();
}

function printTargets() {
  const rows = [];
  const status = (ok) => (ok === undefined ? 'not measured' : ok ? 'met' : '**MISSED**');
  const s1 = results.s1;
  const highC = CFG.concurrency.filter((c) => c > 1);
  const s3 = results.s3;
  const s3ok = s3?.switchboard && !s3.switchboard.error;
  // Throughput targets are judged on the median rounds (each contender's median req/s over the
  // interleaved rounds, at least three); the best-round ratio is shown beside it.
  const ratioRow = (label, on, floor, target) => {
    const med = highC.map((c) => on[c].medianRps / floor[c].medianRps);
    const best = highC.map((c) => on[c].rps / floor[c].rps);
    rows.push([
      `${label} ≥ ${target}× a bare relay (median rounds, best rounds in parentheses)`,
      highC.map((c, i) => `c=${c}: ${f2(med[i])} (${f2(best[i])})`).join(', '),
      status(CFG.repeat >= 3 ? med.every((x) => x >= target) : undefined),
    ]);
  };
  if (s3ok && s3.relay && !s3.relay.error) {
    ratioRow(
      `Tokens + usage log + a rate-limit rule + metrics (${s3.features}, scenario 3)`,
      s3.switchboard,
      s3.relay,
      0.85,
    );
  }
  if (s3?.guardrails && !s3.guardrails.error && s3.relay && !s3.relay.error) {
    ratioRow('The five guardrails of bench/guardrails.yaml (scenario 3)', s3.guardrails, s3.relay, 0.7);
  }
  const u = usageCheck(s3);
  if (u) {
    const high = u.points.filter((p) => p.c > 1);
    rows.push([
      'Usage log on: throughput within 10 % of off at peak (scenario 3, c > 1; best rounds, medians in parentheses)',
      high.map((p) => `c=${p.c}: ${f2(p.ratio)} (${f2(p.on.medianRps / p.off.medianRps)})`).join(', '),
      status(high.every((p) => p.ratio >= 0.9)),
    ]);
    rows.push([
      'Usage log on: rows stored == requests served (scenario 3, after SIGTERM)',
      u.rows && !u.rows.error ? `${int(u.rows.usageRows)} rows / ${int(u.rows.served)} requests` : 'n/a',
      status(u.rows && !u.rows.error ? u.rows.usageRows === u.rows.served : undefined),
    ]);
  }
  const s1peers = ['supergateway', 'mcp-proxy'].filter((k) => s1?.[k] && !s1[k].error);
  if (s3ok && s1peers.length) {
    const ratios = highC.map((c) => s3.switchboard[c].rps / Math.max(...s1peers.map((k) => s1[k][c].rps)));
    const medians = highC.map((c) => s3.switchboard[c].medianRps / Math.max(...s1peers.map((k) => s1[k][c].medianRps)));
    rows.push([
      `Throughput ≥ 4× the TypeScript peers, with those features (scenario 3 ÷ best peer of scenario 1; best rounds, medians in parentheses)`,
      highC.map((c, i) => `c=${c}: ${f2(ratios[i])}× (${f2(medians[i])}×)`).join(', '),
      status(ratios.every((x) => x >= 4)),
    ]);
  }
  const one = results.s8?.one?.[16];
  const three = results.s8?.three?.[16];
  if (one && three) {
    const med = three.medianRps / one.medianRps;
    rows.push([
      'Three replicas ≥ 0.9× one replica behind the same HAProxy (scenario 8, c=16; median rounds, best rounds in parentheses)',
      `${f2(med)} (${f2(three.rps / one.rps)})`,
      status(CFG.repeat >= 3 ? med >= 0.9 : undefined),
    ]);
  }
  const s9 = results.s9;
  if (s9 && !s9.error) {
    rows.push([
      `search_tools p50 over ${s9.tools} indexed tools ≤ 2 ms (scenario 9, one session, concurrency 1)`,
      `${f2(s9.searchP50Ms)} ms (p95 ${f2(s9.searchP95Ms)} ms)`,
      status(s9.searchP50Ms <= 2),
    ]);
    rows.push([
      `tools/list of a search-exposure client ≤ 2 % of the full ${s9.tools}-tool list (scenario 9)`,
      `${((s9.ratio ?? 0) * 100).toFixed(3)} % (${s9.searchListBytes} of ${s9.fullListBytes} bytes)`,
      status(s9.ratio <= 0.02),
    ]);
  } else if (s9?.error) {
    rows.push(['Tool search (scenario 9)', s9.error, 'not measured']);
  }
  const modern = s1?.['switchboard-modern'];
  if (modern && !modern.error && s1.switchboard && !s1.switchboard.error) {
    const med = highC.map((c) => modern[c].medianRps / s1.switchboard[c].medianRps);
    const best = highC.map((c) => modern[c].rps / s1.switchboard[c].rps);
    rows.push([
      '2026-07-28 stateless tools/call ≥ the 2025 session path (scenario 1, same config; median rounds, best rounds in parentheses)',
      highC.map((c, i) => `c=${c}: ${f2(med[i])} (${f2(best[i])})`).join(', '),
      status(CFG.repeat >= 3 ? med.every((x) => x >= 1) : undefined),
    ]);
  }
  if (s1?.switchboard && !s1.switchboard.error) {
    const sb = s1.switchboard;
    if (s1.relay && !s1.relay.error) ratioRow('Default config (scenario 1)', sb, s1.relay, 0.9);
    const peers = ['supergateway', 'mcp-proxy'].filter((k) => s1[k] && !s1[k].error);
    if (peers.length) {
      const ratios = highC.map((c) => sb[c].rps / Math.max(...peers.map((k) => s1[k][c].rps)));
      const medians = highC.map((c) => sb[c].medianRps / Math.max(...peers.map((k) => s1[k][c].medianRps)));
      rows.push([
        'Throughput ≥ 4× the TypeScript peers — default config (scenario 1; best rounds, medians in parentheses)',
        highC.map((c, i) => `c=${c}: ${f2(ratios[i])}× (${f2(medians[i])}×)`).join(', '),
        status(ratios.every((x) => x >= 4)),
      ]);
    }
    if (s1.relay && !s1.relay.error) {
      const d = sb[1].p50 - s1.relay[1].p50;
      rows.push(['Added p50 at concurrency 1 ≤ 0.1 ms (stdio; direct = bare relay)', `${f3(d)} ms`, status(d <= 0.1)]);
    }
  }
  const s2 = results.s2;
  if (s2?.switchboard && !s2.switchboard.error && s2.relay && !s2.relay.error) {
    const d = s2.switchboard[1].p50 - s2.relay[1].p50;
    rows.push([
      'Added p50 at concurrency 1 ≤ 0.05 ms over a bare Node HTTP→HTTP relay (Streamable HTTP upstream)',
      `${f3(d)} ms`,
      status(d <= 0.05),
    ]);
  }
  if (s2?.switchboard && !s2.switchboard.error && s2.direct && !s2.direct.error) {
    const d = s2.switchboard[1].p50 - s2.direct[1].p50;
    rows.push([
      'Added p50 at concurrency 1 ≤ 0.1 ms (Streamable HTTP; direct = upstream)',
      `${f3(d)} ms`,
      status(d <= 0.1),
    ]);
  }
  const s5 = results.s5?.switchboard;
  if (s5 && !s5.error) {
    const full = s5.sessions >= 10_000;
    rows.push([
      '10,000 concurrent idle sessions in ≤ 256 MB RSS',
      `${f1(s5.rssAfterMiB)} MiB with ${int(s5.sessions)} sessions (${f1(s5.perSessionKiB)} KiB/session)`,
      full
        ? status(s5.rssAfterMiB * 1.048576 <= 256)
        : `not measured at 10,000 (${status(s5.rssAfterMiB * 1.048576 <= 256)} at this count)`,
    ]);
  }
  const s4 = results.s4?.switchboard;
  if (s4 && !s4.error) {
    rows.push([
      'tools/list of a 1,000-tool aggregate ≤ 2 ms p50',
      `${f3(s4.p50)} ms (${s4.tools} tools)`,
      status(s4.p50 <= 2 && s4.tools >= 1000),
    ]);
  }
  const s7 = results.s7?.switchboardHttp;
  if (s7 && !s7.error) {
    rows.push([
      'Startup to ready (excluding upstream spawn) ≤ 500 ms',
      `${f1(s7.minWallMs)} ms spawn → listening, fastest of ${s7.runs.length} (median ${f1(s7.wallMs)}; startupMs ${f1(s7.startupMs)})`,
      status(s7.minWallMs <= 500),
    ]);
  }
  if (rows.length) {
    print('### Targets');
    print();
    table(['target', 'measured', 'status'], rows);
  }
}

// ─── scenario 9: tool search over 5,000 tools ──────────────────────────────────────────────────

/** Runs `bench/tool-search.mjs` (its own gateway and fixtures) and keeps its figures. */
async function scenario9() {
  log('\nscenario 9: search_tools over 5,000 tools (exposure: search) …');
  const json = join(TMP, 'tool-search.json');
  const queries = QUICK ? '200' : '2000';
  const code = await new Promise((resolve) => {
    const child = spawn(NODE, [join(lib.ROOT, 'bench', 'tool-search.mjs'), '--queries', queries, '--json', json], {
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    child.once('exit', (c) => resolve(c));
  });
  try {
    results.s9 = JSON.parse(readFileSync(json, 'utf8'));
  } catch {
    results.s9 = { error: `bench/tool-search.mjs exited with ${code} and wrote no figures` };
  }
}

// ─── main ──────────────────────────────────────────────────────────────────────────────────────

async function main() {
  const t0 = Date.now();
  log(
    `Switchboard bench: ${QUICK ? 'quick smoke, ' : ''}duration ${CFG.duration}s + warm-up ${CFG.warmup}s per point, ` +
      `client ${CFG.client}, ${cpus().length} CPUs (load generator on the same machine)`,
  );
  if (want(1) || want(3)) await scenario1and3();
  if (want(2)) await scenario2();
  if (want(4)) await scenario4();
  if (want(5)) await scenario5();
  if (want(6)) await scenario6();
  if (want(7)) await scenario7();
  if (want(8)) await scenario8();
  if (want(9)) await scenario9();
  results.meta.elapsedS = Math.round((Date.now() - t0) / 1000);
  log(`\ndone in ${results.meta.elapsedS} s\n`);
  report();
  process.stdout.write(`${out.join('\n')}\n`);
  if (argv.json) writeFileSync(argv.json, `${JSON.stringify(results, null, 2)}\n`);
}

main()
  .catch(async (err) => {
    process.stderr.write(`bench failed: ${err?.stack ?? err}\n`);
    process.exitCode = 1;
  })
  .finally(async () => {
    await stopAll();
    rmSync(TMP, { recursive: true, force: true });
  });
