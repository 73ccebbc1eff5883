#!/usr/bin/env node
// Tool search benchmark (`npm run bench:search`; docs/benchmarks.md): the built gateway (dist/)
// with two generated stdio upstreams of 2,500 realistic tools each (test/fixtures/catalog-server.mjs),
// served at /mcp (exposure: all, 5,000 tools) and at /mcp/lean (exposure: search).
//
//   node bench/tool-search.mjs [--queries N] [--json FILE]
//
// Measures, over Streamable HTTP with one session and one request at a time:
// - search_tools latency (client-observed round trip, ms): the first call (builds the index) and
//   p50/p95 of N further calls cycling through a set of task descriptions;
// - the size of the tools/list result a search-exposure client receives against the full
//   5,000-tool list (bytes of the JSON `result`).
// Targets: search_tools p50 ≤ 2 ms; search list ≤ 2 % of the full list. Exits 1 when one is missed.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { NODE, ROOT, startSwitchboard } from './lib.mjs';

const { values: argv } = parseArgs({
  options: { queries: { type: 'string', default: '2000' }, json: { type: 'string' } },
});
const QUERIES = Math.max(10, Number(argv.queries) | 0);
const CATALOG = join(ROOT, 'test', 'fixtures', 'catalog-server.mjs');
const PER_SERVER = 2500;

const TASKS = [
  'add two numbers',
  'create a calendar event',
  'send an email message',
  'export invoices',
  'search jira tickets by priority',
  'delete a kubernetes table',
  'update the DNS record value',
  'count orders by status',
  'share a wiki page',
  'import inventory items sku quantity',
  'archive slack channel',
  'merge github issues',
  'list employees in a department',
  'weather report for a metric',
  'echo a message',
];

const log = (s) => process.stderr.write(`${s}\n`);

const tmpDir = mkdtempSync(join(tmpdir(), 'swb-bench-search-'));
let gw;
try {
  gw = await startSwitchboard(
    {
      cat1: { command: NODE, args: [CATALOG], env: { TOOLS: String(PER_SERVER), OFFSET: '0' } },
      cat2: { command: NODE, args: [CATALOG], env: { TOOLS: String(PER_SERVER), OFFSET: String(PER_SERVER) } },
    },
    {
      tmpDir,
      extraConfig: {
        logging: { level: 'warn' },
        virtualServers: { lean: { servers: ['cat1', 'cat2'], exposure: 'search' } },
      },
    },
  );
  const base = gw.url.replace(/\/mcp$/, '');

  /** One MCP session over Streamable HTTP; `rpc` returns [result JSON text, ms]. */
  const session = async (url) => {
    const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
    let id = 0;
    const post = async (body) => {
      const t0 = performance.now();
      const res = await fetch(url, { method: 'POST', headers, body: JSON.stringify(body) });
      const text = await res.text();
      const ms = performance.now() - t0;
      if (!res.ok && res.status !== 202) throw new Error(`${res.status} ${text}`);
      const sid = res.headers.get('mcp-session-id');
      if (sid) headers['mcp-session-id'] = sid;
      // A JSON body, or the last `data:` line of an SSE body.
      const json = text.startsWith('{')
        ? text
        : text
            .split('\n')
            .filter((l) => l.startsWith('data:'))
            .pop()
            ?.slice(5);
      return { json, ms };
    };
    await post({
      jsonrpc: '2.0',
      id: ++id,
      method: 'initialize',
      params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'bench', version: '1' } },
    });
    await post({ jsonrpc: '2.0', method: 'notifications/initialized' });
    return async (method, params) => {
      const { json, ms } = await post({ jsonrpc: '2.0', id: ++id, method, params });
      const msg = JSON.parse(json);
      if (msg.error) throw new Error(`${method}: ${JSON.stringify(msg.error)}`);
      return { result: msg.result, bytes: Buffer.byteLength(JSON.stringify(msg.result)), ms };
    };
  };

  // Wait until both catalogs are in the aggregate.
  const all = await session(gw.url);
  let fullList;
  for (let i = 0; i < 600; i++) {
    fullList = await all('tools/list', {});
    if (fullList.result.tools.length >= 2 * PER_SERVER) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const toolCount = fullList.result.tools.length;
  log(`aggregate lists ${toolCount} tools, ${fullList.bytes} bytes`);

  const lean = await session(`${base}/mcp/lean`);
  const searchList = await lean('tools/list', {});
  const search = (query) => lean('tools/call', { name: 'search_tools', arguments: { query } });

  const first = await search(TASKS[0]);
  const top = first.result.structuredContent.tools[0];
  log(`first search_tools (builds the index): ${first.ms.toFixed(1)} ms; top match for "${TASKS[0]}": ${top?.name}`);
  for (let i = 0; i < 200; i++) await search(TASKS[i % TASKS.length]); // warm-up
  const times = [];
  for (let i = 0; i < QUERIES; i++) times.push((await search(TASKS[i % TASKS.length])).ms);
  times.sort((a, b) => a - b);
  const pct = (p) => times[Math.min(times.length - 1, Math.ceil(p * times.length) - 1)];

  // The same kind of request without a search, for the HTTP and session floor.
  const pings = [];
  for (let i = 0; i < QUERIES; i++) pings.push((await lean('ping', {})).ms);
  pings.sort((a, b) => a - b);

  const ratio = searchList.bytes / fullList.bytes;
  const result = {
    tools: toolCount,
    fullListBytes: fullList.bytes,
    searchListBytes: searchList.bytes,
    ratio,
    firstSearchMs: first.ms,
    searchP50Ms: pct(0.5),
    searchP95Ms: pct(0.95),
    pingP50Ms: pings[Math.floor(pings.length / 2)],
    queries: QUERIES,
  };
  const ok = { latency: result.searchP50Ms <= 2, size: ratio <= 0.02 };
  const f = (x) => x.toFixed(3);
  process.stdout.write(
    [
      `### Tool search over ${toolCount} tools (Streamable HTTP, 1 session, concurrency 1, ${QUERIES} queries)`,
      '',
      '| measure | value | target |',
      '| --- | --- | --- |',
      `| search_tools p50 | ${f(result.searchP50Ms)} ms | ≤ 2 ms ${ok.latency ? '✓' : '✗'} |`,
      `| search_tools p95 | ${f(result.searchP95Ms)} ms | |`,
      `| ping p50 (HTTP floor) | ${f(result.pingP50Ms)} ms | |`,
      `| first search_tools (index build) | ${result.firstSearchMs.toFixed(1)} ms | |`,
      `| tools/list, exposure: search | ${result.searchListBytes} bytes | |`,
      `| tools/list, exposure: all | ${result.fullListBytes} bytes | |`,
      `| ratio | ${(ratio * 100).toFixed(3)} % | ≤ 2 % ${ok.size ? '✓' : '✗'} |`,
      '',
    ].join('\n'),
  );
  if (argv.json) writeFileSync(argv.json, JSON.stringify(result, null, 2));
  process.exitCode = ok.latency && ok.size ? 0 : 1;
} finally {
  await gw?.stop();
  rmSync(tmpDir, { recursive: true, force: true });
}
