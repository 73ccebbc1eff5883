#!/usr/bin/env node
// A/B of two Switchboard builds on this box: both gateways run side by side (default config, one
// echo upstream over stdio or Streamable HTTP, 4 sessions) and are loaded in interleaved rounds,
// so background noise hits both alike. Prints best and median req/s and the gateway's CPU per request (median, min). On a
// noisy shared VM the CPU per request is the steadier figure.
//
//   node bench/ab.mjs BASE_CLI [HEAD_CLI] [-c 16] [--rounds 6] [--duration 2] [--upstream stdio|http]
//                     [--era legacy|modern|legacy,modern]
//
// BASE_CLI / HEAD_CLI: a build's CLI entry, e.g. an older commit built in a git worktree:
//   git worktree add /tmp/base <rev> && ln -s "$PWD/node_modules" /tmp/base/node_modules
//   (cd /tmp/base && npm run build)   # or `npx tsc -p tsconfig.build.json` for builds without bundle
//   node bench/ab.mjs /tmp/base/dist/cli/main.js
// HEAD_CLI defaults to this checkout's dist/bin/switchboard.js.
// --era asks both contenders in one era (default legacy: 2025 sessions), or, given two eras, asks
// BASE in the first and HEAD in the second: `node bench/ab.mjs dist/bin/switchboard.js
// dist/bin/switchboard.js --era legacy,modern` compares the eras of one build.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  GATEWAY_CLI,
  NODE,
  processCpuMs,
  runLoadProcess,
  startHttpFixture,
  startProcess,
  stdioEcho,
  writeSwitchboardConfig,
} from './lib.mjs';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    concurrency: { type: 'string', short: 'c', default: '16' },
    rounds: { type: 'string', default: '6' },
    duration: { type: 'string', default: '2' },
    upstream: { type: 'string', default: 'stdio' },
    era: { type: 'string', default: 'legacy' },
  },
});
if (positionals.length === 0) {
  process.stderr.write(
    'usage: node bench/ab.mjs BASE_CLI [HEAD_CLI] [-c 16] [--rounds 6] [--duration 2] [--upstream stdio|http]\n',
  );
  process.exit(2);
}
const clis = { base: resolve(positionals[0]), head: resolve(positionals[1] ?? GATEWAY_CLI) };
const tmp = mkdtempSync(join(tmpdir(), 'swb-ab-'));
const eraList = values.era.split(',');
if (eraList.length > 2 || eraList.some((e) => e !== 'legacy' && e !== 'modern')) {
  process.stderr.write(`--era must be legacy, modern or two of them separated by a comma, not ${values.era}\n`);
  process.exit(2);
}
const eras = { base: eraList[0], head: eraList[1] ?? eraList[0] };

if (values.upstream !== 'stdio' && values.upstream !== 'http') {
  process.stderr.write(`--upstream must be stdio or http, not ${values.upstream}\n`);
  process.exit(2);
}
/** The HTTP fixture both gateways share (`--upstream http`). */
const fixture = values.upstream === 'http' ? await startHttpFixture() : undefined;

async function start(cli) {
  const servers = fixture ? { echo: { url: fixture.url } } : stdioEcho();
  // 4 sessions: no per-principal cap needed, and older builds do not know the key.
  const file = writeSwitchboardConfig(servers, { tmpDir: tmp, uncapped: false });
  const h = await startProcess('switchboard', NODE, [cli, 'serve', '--config', file, '--port', '0'], {
    env: { SWITCHBOARD_LOG_FORMAT: 'json' },
    ready: (line) => {
      if (!line.startsWith('{')) return undefined;
      const o = JSON.parse(line);
      return o.msg === 'listening' ? o : undefined;
    },
  });
  h.url = h.readyValue.mcp;
  return h;
}

const median = (a) => {
  const s = [...a].sort((x, y) => x - y);
  return s.length % 2 ? s[s.length >> 1] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

const handles = {};
try {
  for (const [k, cli] of Object.entries(clis)) handles[k] = await start(cli);
  const runs = { base: [], head: [] };
  for (let r = 0; r < Number(values.rounds); r++) {
    for (const k of Object.keys(handles)) {
      const h = handles[k];
      const cpu0 = processCpuMs(h.pid);
      const x = await runLoadProcess({
        url: h.url,
        op: 'call',
        tool: 'echo__echo',
        sessions: 4,
        concurrency: Number(values.concurrency),
        duration: Number(values.duration),
        warmup: 0.5,
        era: eras[k],
      });
      runs[k].push({ rps: x.rps, cpu: ((processCpuMs(h.pid) - cpu0) * 1000) / Math.max(1, x.total) });
      process.stderr.write(`  ${k} round ${r + 1}: ${x.rps} req/s\n`);
    }
  }
  process.stdout.write(
    `${values.upstream} upstream, c=${values.concurrency}, ${values.rounds} interleaved rounds, eras ${eras.base}/${eras.head}\n`,
  );
  for (const [k, v] of Object.entries(runs)) {
    process.stdout.write(
      `${k.padEnd(5)} ${clis[k]}\n      req/s best ${Math.max(...v.map((x) => x.rps))}, median ${median(v.map((x) => x.rps))}; ` +
        `CPU µs/req median ${median(v.map((x) => x.cpu)).toFixed(1)}, min ${Math.min(...v.map((x) => x.cpu)).toFixed(1)}\n`,
    );
  }
} finally {
  await Promise.all(Object.values(handles).map((h) => h.stop()));
  await fixture?.stop();
}
