#!/usr/bin/env node
// Cost of the request-body nesting-depth check (src/protocol/json-depth.ts) next to the
// JSON.parse it precedes, per body, on typical tools/call bodies. Needs `npm run build`.
//
//   node bench/json-depth.mjs [--iterations N]
import { parseArgs } from 'node:util';
import { exceedsJsonDepth } from '../dist/protocol/json-depth.js';

const { values } = parseArgs({ options: { iterations: { type: 'string', default: '1000000' } } });
const iterations = Number(values.iterations);

const bodies = {
  'tools/call, small': {
    jsonrpc: '2.0',
    id: 42,
    method: 'tools/call',
    params: { name: 'everything__echo', arguments: { message: 'hello world' }, _meta: { progressToken: 7 } },
  },
  'tools/call, 1 KB with escapes': {
    jsonrpc: '2.0',
    id: 'abc-123',
    method: 'tools/call',
    params: {
      name: 'github__create_issue',
      arguments: {
        owner: 'acme',
        repo: 'widgets',
        title: 'Crash on start',
        body: 'Steps:\n1. run "x"\n2. see error\n'.repeat(20),
        labels: ['bug', 'p1'],
        assignees: ['alice'],
      },
    },
  },
  'tools/call, 64 KB string': {
    jsonrpc: '2.0',
    id: 1,
    method: 'tools/call',
    params: { name: 'fs__write', arguments: { path: '/tmp/x', content: 'y'.repeat(64 * 1024) } },
  },
};

/** Median ns per call of `fn(text)` over 5 runs. */
function measure(fn, text, n) {
  let sink = 0;
  for (let i = 0; i < Math.min(n, 100_000); i++) if (fn(text)) sink++;
  const runs = [];
  for (let r = 0; r < 5; r++) {
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < n; i++) if (fn(text)) sink++;
    runs.push(Number(process.hrtime.bigint() - t0) / n);
  }
  if (sink === -1) console.log(sink);
  return runs.sort((a, b) => a - b)[2];
}

console.log('| body | bytes | depth check (ns) | JSON.parse (ns) |');
console.log('| ---- | ----: | ---------------: | --------------: |');
for (const [name, body] of Object.entries(bodies)) {
  const text = JSON.stringify(body);
  const n = text.length > 10_000 ? Math.max(1, Math.floor(iterations / 50)) : iterations;
  const depth = measure((t) => exceedsJsonDepth(t, 64), text, n);
  const parse = measure((t) => JSON.parse(t) === null, text, n);
  console.log(`| ${name} | ${text.length} | ${depth.toFixed(0)} | ${parse.toFixed(0)} |`);
}
