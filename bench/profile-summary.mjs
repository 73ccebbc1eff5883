#!/usr/bin/env node
// Summarises a V8 .cpuprofile (from `node --cpu-prof`): top functions by self time, top functions
// by inclusive ("total") time, and self time per file. Percentages are of the non-idle time.
//
//   node bench/profile-summary.mjs FILE.cpuprofile [--top 25] [--filter substring] [--skip-ms N]
//                                  [--requests N]
// --callers NAME lists the call paths (--depth frames up) leading to functions named NAME, by
// the time spent in and under them.
// --skip-ms ignores the first N ms of the profile (process startup, warm-up); --requests adds a
// µs-per-request column (CPU time ÷ N requests served in the kept window).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { relative } from 'node:path';

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    top: { type: 'string', default: '25' },
    filter: { type: 'string' },
    'skip-ms': { type: 'string', default: '0' },
    requests: { type: 'string' },
    callers: { type: 'string' },
    depth: { type: 'string', default: '4' },
  },
});
if (positionals.length === 0) {
  process.stderr.write('usage: profile-summary.mjs FILE.cpuprofile [--top N]\n');
  process.exit(2);
}
const TOP = Number(values.top);
const ROOT = fileURLToPath(new URL('..', import.meta.url));

function shortUrl(url) {
  if (!url) return '';
  let p = url.startsWith('file://') ? fileURLToPath(url) : url;
  if (p.startsWith(ROOT)) p = relative(ROOT, p);
  return p.replace(/^node_modules\//, 'nm/');
}

export function summarize(profile, skipUs = 0) {
  const byId = new Map();
  for (const n of profile.nodes) byId.set(n.id, n);
  const parent = new Map();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  // Self time per node from the sample stream (timeDeltas[i+1] is the time spent in samples[i]).
  const self = new Map();
  const { samples, timeDeltas } = profile;
  let t = 0;
  for (let i = 0; i < samples.length; i++) {
    t += timeDeltas[i];
    if (t < skipUs) continue;
    const dt = i + 1 < timeDeltas.length ? timeDeltas[i + 1] : 0;
    self.set(samples[i], (self.get(samples[i]) ?? 0) + dt);
  }
  const keyOf = (n) => {
    const cf = n.callFrame;
    const name = cf.functionName || '(anonymous)';
    const url = shortUrl(cf.url);
    return url ? `${name}  ${url}:${cf.lineNumber + 1}` : name;
  };
  let total = 0;
  let idle = 0;
  const selfByKey = new Map();
  const selfByFile = new Map();
  for (const [id, us] of self) {
    const n = byId.get(id);
    total += us;
    const name = n.callFrame.functionName;
    if (name === '(idle)') {
      idle += us;
      continue;
    }
    const k = keyOf(n);
    selfByKey.set(k, (selfByKey.get(k) ?? 0) + us);
    const file = shortUrl(n.callFrame.url) || name || '(native)';
    selfByFile.set(file, (selfByFile.get(file) ?? 0) + us);
  }
  // Inclusive time: walk each node's ancestors once per sample bucket, counting a function once
  // per stack even when it recurses.
  const inclByKey = new Map();
  for (const [id, us] of self) {
    if (byId.get(id).callFrame.functionName === '(idle)') continue;
    const seen = new Set();
    for (let cur = id; cur !== undefined; cur = parent.get(cur)) {
      const k = keyOf(byId.get(cur));
      if (seen.has(k)) continue;
      seen.add(k);
      inclByKey.set(k, (inclByKey.get(k) ?? 0) + us);
    }
  }
  const busy = total - idle;
  // Call paths into functions named `callers` (time in and under them, by the path above).
  const pathTime = new Map();
  if (values.callers) {
    const depth = Number(values.depth);
    for (const [id, us] of self) {
      if (byId.get(id).callFrame.functionName === '(idle)') continue;
      // The outermost frame on this stack named `callers` (so recursion counts once).
      let hit;
      for (let cur = id; cur !== undefined; cur = parent.get(cur))
        if (byId.get(cur).callFrame.functionName === values.callers) hit = cur;
      if (hit === undefined) continue;
      const chain = [];
      for (let cur = hit; cur !== undefined && chain.length <= depth; cur = parent.get(cur))
        chain.push(keyOf(byId.get(cur)));
      const k = chain.join('\n      ← ');
      pathTime.set(k, (pathTime.get(k) ?? 0) + us);
    }
  }
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return {
    totalMs: total / 1000,
    busyMs: busy / 1000,
    idleMs: idle / 1000,
    self: sorted(selfByKey),
    files: sorted(selfByFile),
    incl: sorted(inclByKey),
    paths: sorted(pathTime),
  };
}

/** Allocation summary of a sampling heap profile (bytes by function, by file, inclusive). */
export function summarizeHeap(profile) {
  const selfByKey = new Map();
  const selfByFile = new Map();
  const inclByKey = new Map();
  let total = 0;
  const keyOf = (cf) => {
    const name = cf.functionName || '(anonymous)';
    const url = shortUrl(cf.url);
    return url ? `${name}  ${url}:${cf.lineNumber + 1}` : name;
  };
  const walk = (node, stack) => {
    const k = keyOf(node.callFrame);
    const size = node.selfSize ?? 0;
    total += size;
    selfByKey.set(k, (selfByKey.get(k) ?? 0) + size);
    const file = shortUrl(node.callFrame.url) || node.callFrame.functionName || '(native)';
    selfByFile.set(file, (selfByFile.get(file) ?? 0) + size);
    const next = stack.includes(k) ? stack : [...stack, k];
    for (const sk of next) inclByKey.set(sk, (inclByKey.get(sk) ?? 0) + size);
    for (const c of node.children ?? []) walk(c, next);
  };
  walk(profile.head, []);
  const sorted = (m) => [...m.entries()].sort((a, b) => b[1] - a[1]);
  return { total, self: sorted(selfByKey), files: sorted(selfByFile), incl: sorted(inclByKey) };
}

function mainHeap(file, profile) {
  const s = summarizeHeap(profile);
  const reqs = values.requests ? Number(values.requests) : 0;
  const pct = (b) => ((100 * b) / s.total).toFixed(1).padStart(5);
  const mb = (b) =>
    `${(b / 2 ** 20).toFixed(1).padStart(8)} MiB` + (reqs ? ` ${(b / reqs).toFixed(0).padStart(7)} B/req` : '');
  process.stdout.write(
    `${file}\n  allocated (sampled estimate) ${(s.total / 2 ** 20).toFixed(1)} MiB` +
      (reqs
        ? `; ${reqs} requests (incl. warm-up) → ${(s.total / reqs).toFixed(0)} B per request` +
          ' (startup allocations included: profile --case startup --heap to subtract them)'
        : '') +
      '\n\n  Top allocating functions (self)\n',
  );
  for (const [k, b] of s.self.slice(0, TOP)) process.stdout.write(`  ${pct(b)} % ${mb(b)}  ${k}\n`);
  process.stdout.write('\n  Allocations by file\n');
  for (const [k, b] of s.files.slice(0, TOP)) process.stdout.write(`  ${pct(b)} % ${mb(b)}  ${k}\n`);
  process.stdout.write('\n  Inclusive allocations of Switchboard functions (dist/)\n');
  for (const [k, b] of s.incl.filter(([k]) => k.includes('dist/')).slice(0, TOP))
    process.stdout.write(`  ${pct(b)} % ${mb(b)}  ${k}\n`);
  process.stdout.write('\n');
}

function main() {
  for (const file of positionals) {
    const profile = JSON.parse(readFileSync(file, 'utf8'));
    if (profile.head && !profile.nodes) {
      mainHeap(file, profile);
      continue;
    }
    const s = summarize(profile, Number(values['skip-ms']) * 1000);
    const reqs = values.requests ? Number(values.requests) : 0;
    const pct = (us) => ((100 * us) / (s.busyMs * 1000)).toFixed(1).padStart(5);
    const ms = (us) =>
      `${(us / 1000).toFixed(0).padStart(6)} ms` + (reqs ? ` ${(us / reqs).toFixed(2).padStart(7)} µs/req` : '');
    const filt = (rows) => (values.filter ? rows.filter(([k]) => k.includes(values.filter)) : rows);
    process.stdout.write(
      `${file}\n  profiled ${s.totalMs.toFixed(0)} ms, busy ${s.busyMs.toFixed(0)} ms, idle ${s.idleMs.toFixed(0)} ms (percentages are of busy time)` +
        (values['skip-ms'] !== '0' ? `, first ${values['skip-ms']} ms skipped` : '') +
        (reqs ? `; ${reqs} requests → ${((s.busyMs * 1000) / reqs).toFixed(1)} µs CPU per request` : '') +
        '\n',
    );
    process.stdout.write(`\n  Top self time\n`);
    for (const [k, us] of filt(s.self).slice(0, TOP)) process.stdout.write(`  ${pct(us)} % ${ms(us)}  ${k}\n`);
    process.stdout.write(`\n  Self time by file\n`);
    for (const [k, us] of s.files.slice(0, TOP)) process.stdout.write(`  ${pct(us)} % ${ms(us)}  ${k}\n`);
    if (values.callers) {
      process.stdout.write(`\n  Call paths into ${values.callers} (time in and under it)\n`);
      for (const [k, us] of s.paths.slice(0, 10)) process.stdout.write(`  ${pct(us)} % ${ms(us)}  ${k}\n`);
    }
    process.stdout.write(`\n  Top inclusive time (functions in src/ = dist/)\n`);
    const mine = s.incl.filter(([k]) => k.includes('dist/'));
    for (const [k, us] of filt(mine).slice(0, TOP)) process.stdout.write(`  ${pct(us)} % ${ms(us)}  ${k}\n`);
    process.stdout.write('\n');
  }
}

if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) main();
