#!/usr/bin/env node
// Young-generation GC under load: runs the gateway (or the bare relay) with `--trace-gc-nvp`,
// drives tools/call through a stdio upstream, and prints what the scavenges cost and how much
// survived them. Dead request objects that survive scavenges (and get promoted, then need a
// full GC) show up here long before they show up as CPU in a profile.
//
//   node bench/gc.mjs [--target switchboard|relay] [--upstream stdio|http] [-c 16] [-d 5]
//                     [--op call|list|setup] [--features FILE] [--semi-space MB]
//
// Output: requests served, scavenges (count, total pause ms, µs per request), mean bytes that
// survived a scavenge and were promoted, and mark-compacts (count, pause ms).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { runLoadProcess, startHttpFixture, startRelay, startSwitchboardWithFeatures, stdioEcho } from './lib.mjs';

const { values } = parseArgs({
  options: {
    target: { type: 'string', default: 'switchboard' },
    upstream: { type: 'string', default: 'stdio' },
    c: { type: 'string', short: 'c', default: '16' },
    d: { type: 'string', short: 'd', default: '5' },
    op: { type: 'string', default: 'call' },
    features: { type: 'string' },
    'semi-space': { type: 'string' },
  },
});
const tmp = mkdtempSync(join(tmpdir(), 'swb-gc-'));
const nodeArgs = ['--trace-gc-nvp'];
if (values['semi-space']) nodeArgs.push(`--max-semi-space-size=${values['semi-space']}`);
const headers = [];
const fixture = values.upstream === 'http' ? await startHttpFixture() : undefined;
const servers = fixture ? { echo: { url: fixture.url } } : stdioEcho();
let proc;
if (values.target === 'relay') {
  proc = await startRelay({}, { nodeArgs, upstream: fixture?.url });
} else {
  const started = await startSwitchboardWithFeatures(servers, values.features, { tmpDir: tmp, nodeArgs });
  proc = started.proc;
  headers.push(...started.headers);
}
const lines = [];
let partial = '';
proc.child.stdout.on('data', (d) => {
  const parts = (partial + String(d)).split('\n');
  partial = parts.pop() ?? '';
  lines.push(...parts);
});
let result;
try {
  result = await runLoadProcess({
    url: proc.url,
    op: values.op,
    tool: values.target === 'relay' ? 'echo' : 'echo__echo',
    sessions: 4,
    concurrency: Number(values.c),
    duration: Number(values.d),
    warmup: 1,
    verify: 'full',
    headers,
  });
} finally {
  await proc.stop();
  await fixture?.stop();
  rmSync(tmp, { recursive: true, force: true });
}
const field = (line, name) => Number(new RegExp(`\\b${name}=([\\d.]+)`).exec(line)?.[1] ?? 0);
const scavenges = lines.filter((l) => /\bgc=s\b/.test(l));
const fulls = lines.filter((l) => /\bgc=(ms|mc)\b/.test(l));
const sum = (ls, name) => ls.reduce((a, l) => a + field(l, name), 0);
const pause = sum(scavenges, 'pause');
const mean = (name) => (scavenges.length ? sum(scavenges, name) / scavenges.length : 0);
console.log(
  JSON.stringify({
    target: values.target,
    upstream: values.upstream,
    requests: result.total,
    scavenges: scavenges.length,
    scavengePauseMs: Math.round(pause),
    scavengeUsPerRequest: Number(((pause * 1000) / Math.max(1, result.total)).toFixed(2)),
    survivedKiBPerScavenge: Math.round(mean('new_space_survived') / 1024),
    promotedKiBPerScavenge: Math.round(mean('promoted') / 1024),
    fullGcs: fulls.length,
    fullGcPauseMs: Math.round(sum(fulls, 'pause')),
  }),
);
