#!/usr/bin/env node
// Startup evidence: how long importing each runtime dependency (and Switchboard's own modules)
// takes, each in a fresh Node process (fastest of N runs: background load only ever adds time).
//
//   node bench/import-cost.mjs [--runs 5]
import { spawnSync } from 'node:child_process';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { NODE, ROOT } from './lib.mjs';

const { values } = parseArgs({ options: { runs: { type: 'string', default: '5' } } });
const RUNS = Number(values.runs);
const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));

function timeImport(spec) {
  const code =
    `const t=performance.now();` +
    `await import(${JSON.stringify(spec)});` +
    `process.stdout.write(String(performance.now()-t));`;
  const ms = [];
  for (let i = 0; i < RUNS; i++) {
    const r = spawnSync(NODE, ['--input-type=module', '-e', code], { cwd: ROOT, encoding: 'utf8' });
    if (r.status !== 0) return { error: (r.stderr || '').split('\n').find((l) => l.trim()) ?? `exit ${r.status}` };
    ms.push(Number(r.stdout));
  }
  return { ms: Math.min(...ms) };
}

function walk(dir) {
  const out = [];
  for (const e of readdirSync(dir)) {
    const p = join(dir, e);
    if (statSync(p).isDirectory()) out.push(...walk(p));
    else if (p.endsWith('.js')) out.push(p);
  }
  return out;
}

/** @type {Array<[string, {ms?: number, error?: string}]>} */
const rows = [];
const nodeBase = timeImport('data:text/javascript,export{}');
for (const dep of Object.keys(pkg.dependencies ?? {})) {
  if (dep.startsWith('@modelcontextprotocol/server-')) continue; // a fixture, not imported by the gateway
  rows.push([dep, timeImport(dep)]);
}
const dist = walk(join(ROOT, 'dist')).filter((p) => !p.endsWith('.d.ts'));
/** @type {Array<[string, {ms?: number, error?: string}]>} */
const own = [];
for (const f of dist) {
  const r = timeImport(pathToFileURL(f).href);
  if (r.ms !== undefined) own.push([relative(ROOT, f), r]);
}
own.sort((a, b) => (b[1].ms ?? 0) - (a[1].ms ?? 0));
const base = nodeBase.ms ?? 0;
const fmt = (r) => (r.ms === undefined ? '    n/a' : (r.ms - base).toFixed(1).padStart(7));
process.stdout.write(
  `Import time in a fresh process, fastest of ${RUNS} runs, minus the baseline of importing an empty module (${base.toFixed(1)} ms)\n\n`,
);
for (const [name, r] of rows) process.stdout.write(`  ${fmt(r)} ms  ${name}${r.error ? `  (${r.error})` : ''}\n`);
process.stdout.write(`\nSwitchboard modules, each with its transitive imports (top 15)\n\n`);
for (const [name, r] of own.slice(0, 15)) process.stdout.write(`  ${fmt(r)} ms  ${name}\n`);
