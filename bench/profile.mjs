#!/usr/bin/env node
// Profiles the Switchboard gateway process under one bench load and summarises where its CPU
// time goes (top self-time functions, self time per file, inclusive time of Switchboard's own
// functions). The load generator runs in its own process, as in `npm run bench`.
//
//   node bench/profile.mjs [--case stdio|http|list|setup|startup] [--target switchboard|relay]
//                          [-c 16] [-d 5] [--top 25] [--out DIR] [--heap] [--features FILE]
//                          [--era legacy|modern]
//
// --heap records allocations (including short-lived garbage) instead of CPU time.
// --features merges a config fragment (e.g. bench/features.yaml) into Switchboard's config and,
// with auth.mode tokens, creates an API token and sends it on every request.
// --era modern sends MCP 2026-07-28 stateless requests (no session) instead of 2025-era ones.
//
// Cases: stdio  tools/call echo__echo through a stdio upstream (4 sessions)
//        http   tools/call echo__echo through a Streamable HTTP upstream (4 sessions)
//        list   tools/list of a 1,000-tool aggregate (20 stdio upstreams × 50 tools), c=1
//        setup  initialize + notifications/initialized (new sessions)
//        startup  spawn → listening, then stop (module loading and startup)
import { mkdirSync, mkdtempSync, readdirSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { spawnSync } from 'node:child_process';
import {
  BENCH_DIR,
  FIXTURE_STDIO,
  NODE,
  runLoadProcess,
  sleep,
  startHttpFixture,
  startRelay,
  startSwitchboardWithFeatures,
  stdioEcho,
} from './lib.mjs';

const { values } = parseArgs({
  options: {
    case: { type: 'string', default: 'stdio' },
    concurrency: { type: 'string', short: 'c' },
    duration: { type: 'string', short: 'd', default: '5' },
    top: { type: 'string', default: '25' },
    target: { type: 'string', default: 'switchboard' },
    heap: { type: 'boolean', default: false },
    features: { type: 'string' },
    era: { type: 'string', default: 'legacy' },
    out: { type: 'string' },
  },
});
const out = resolve(values.out ?? mkdtempSync(join(tmpdir(), 'swb-prof-')));
mkdirSync(out, { recursive: true });
const tmp = mkdtempSync(join(tmpdir(), 'swb-prof-cfg-'));
const kase = values.case;
const conc = Number(values.concurrency ?? (kase === 'list' ? 1 : 16));

let fixture;
let servers;
if (kase === 'http') {
  fixture = await startHttpFixture();
  servers = { echo: { url: fixture.url } };
} else if (kase === 'list') {
  servers = {};
  for (let i = 1; i <= 20; i++)
    servers[`s${String(i).padStart(2, '0')}`] = { command: NODE, args: [FIXTURE_STDIO], env: { TOOLS: '50' } };
} else {
  servers = stdioEcho();
}
const before = new Set(readdirSync(out, { withFileTypes: false }));
let sb;
const headers = [];
const heapFile = join(out, `heap-${kase}-${values.target}-${Date.now()}.heapprofile`);
const profArgs = values.heap
  ? ['--import', join(BENCH_DIR, 'heap-sampler.mjs')]
  : ['--cpu-prof', '--cpu-prof-dir', out];
const profEnv = values.heap ? { SWB_HEAP_PROFILE: heapFile } : {};
if (values.target === 'relay') {
  // The bare relay under the same load, for comparison (stdio, list with TOOLS=1000, setup, http).
  sb = await startRelay(kase === 'list' ? { TOOLS: '1000', ...profEnv } : profEnv, {
    upstream: kase === 'http' ? fixture.url : undefined,
    nodeArgs: profArgs,
  });
} else {
  const started = await startSwitchboardWithFeatures(servers, values.features, {
    tmpDir: tmp,
    nodeArgs: profArgs,
    env: profEnv,
  });
  sb = started.proc;
  headers.push(...started.headers);
}
process.stderr.write(`${sb.name} pid ${sb.pid} ready in ${sb.readyMs.toFixed(0)} ms (startupMs ${sb.startupMs})\n`);
let served = 0;
let servedAll = 0;
try {
  if (kase === 'startup') await sleep(500); // let it install its signal handlers
  if (kase !== 'startup') {
    const op = kase === 'list' ? 'list' : kase === 'setup' ? 'setup' : 'call';
    const r = await runLoadProcess({
      url: sb.url,
      op,
      tool: values.target === 'relay' ? 'echo' : 'echo__echo',
      sessions: kase === 'list' ? 1 : 4,
      concurrency: conc,
      duration: Number(values.duration),
      warmup: 1,
      verify: kase === 'list' ? 'light' : 'full',
      era: values.era,
      headers,
    });
    process.stderr.write(`load: ${JSON.stringify(r)}\n`);
    served = r.ok;
    servedAll = r.total; // including warm-up and session setup: what a heap profile covers
  }
} finally {
  await sb.stop();
  await fixture?.stop();
}
if (values.heap) {
  process.stderr.write(`heap profile: ${heapFile}\n`);
  spawnSync(
    NODE,
    [
      join(BENCH_DIR, 'profile-summary.mjs'),
      heapFile,
      '--top',
      values.top,
      ...(servedAll ? ['--requests', String(servedAll)] : []),
    ],
    {
      stdio: 'inherit',
    },
  );
  process.exit(0);
}
const files = readdirSync(out)
  .filter((f) => f.endsWith('.cpuprofile') && !before.has(f))
  .map((f) => join(out, f))
  .sort((a, b) => statSync(b).mtimeMs - statSync(a).mtimeMs);
if (files.length === 0) {
  process.stderr.write(`no .cpuprofile written in ${out}\n`);
  process.exit(1);
}
process.stderr.write(`profile: ${files[0]}\n`);
// Skip startup and the load generator's warm-up; per-request figures use the measured requests.
const skip = kase === 'startup' ? 0 : Math.round(sb.readyMs + 1000);
spawnSync(
  NODE,
  [
    join(BENCH_DIR, 'profile-summary.mjs'),
    files[0],
    '--top',
    values.top,
    '--skip-ms',
    String(skip),
    ...(served ? ['--requests', String(served)] : []),
  ],
  { stdio: 'inherit' },
);
