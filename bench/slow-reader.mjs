#!/usr/bin/env node
// Slow-reader memory check (not part of `npm test`): one client opens the legacy `GET /sse`
// stream, stops reading it, and POSTs `tools/list` to its `/message?sessionId=…` endpoint,
// CONCURRENCY at a time, REQUESTS in all. Every answer goes to the stream it never reads. When
// the gateway closes that stream (its session's endpoint answers 404), the reader opens a new one
// and goes on, as a persistent attacker would. Meanwhile another client calls `tools/call echo`
// over Streamable HTTP every 100 ms. Prints the gateway's RSS before, at its peak and after, the
// streams closed (`switchboard_stream_overflows_total`) and the other client's latencies.
//
//   node bench/slow-reader.mjs [--cli dist/bin/switchboard.js] [--requests 60000] [-c 32] [--tools 70]
//
// --cli: the build to measure (e.g. an older commit's dist/bin/switchboard.js), default this
// checkout's. --tools: tools of the fixture upstream; 70 gives ~9.4 KB per tools/list answer.
import { request } from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import {
  FIXTURE_STDIO,
  GATEWAY_CLI,
  NODE,
  freePort,
  median,
  rssKiB,
  sleep,
  startProcess,
  writeSwitchboardConfig,
} from './lib.mjs';

const { values } = parseArgs({
  options: {
    cli: { type: 'string', default: GATEWAY_CLI },
    requests: { type: 'string', default: '60000' },
    concurrency: { type: 'string', short: 'c', default: '32' },
    tools: { type: 'string', default: '70' },
  },
});
const CLI = resolve(values.cli);
const REQUESTS = Number(values.requests);
const CONCURRENCY = Number(values.concurrency);
const MCP_HEADERS = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };

const tmpDir = mkdtempSync(join(tmpdir(), 'swb-slow-reader-'));
const config = writeSwitchboardConfig(
  { echo: { command: NODE, args: [FIXTURE_STDIO], env: { TOOLS: values.tools } } },
  { tmpDir },
);
const port = await freePort();
const base = `http://127.0.0.1:${port}`;
const gw = await startProcess('switchboard', NODE, [CLI, 'serve', '--config', config, '--port', String(port)], {
  env: { SWITCHBOARD_LOG_FORMAT: 'json', SWITCHBOARD_LOG_LEVEL: 'error' },
  probe: async (cancelled) => {
    for (;;) {
      if (cancelled()) throw new Error('cancelled');
      try {
        const r = await fetch(`${base}/readyz`);
        await r.arrayBuffer();
        if (r.ok) return { url: base };
      } catch {
        /* not yet */
      }
      await sleep(50);
    }
  },
});

/** Opens GET /sse, reads the endpoint event, then stops reading. Returns the message path. */
function openSlowStream() {
  return new Promise((resolveOpen, reject) => {
    const req = request(`${base}/sse`, { headers: { accept: 'text/event-stream' } }, (res) => {
      res.setEncoding('utf8');
      let text = '';
      const onData = (chunk) => {
        text += chunk;
        const m = /data: (\S+)\n/.exec(text);
        if (!m) return;
        res.off('data', onData);
        res.pause();
        res.socket.pause();
        openSockets.push(res.socket);
        resolveOpen(m[1]);
      };
      res.on('data', onData);
    });
    req.on('error', reject);
    req.end();
  });
}
const openSockets = [];

async function rpc(url, body, headers = {}) {
  const r = await fetch(url, { method: 'POST', headers: { ...MCP_HEADERS, ...headers }, body: JSON.stringify(body) });
  return { status: r.status, headers: r.headers, text: await r.text() };
}

// The other client: its own session, a tools/call every 100 ms.
const init = await rpc(`${base}/mcp`, {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'other', version: '1' } },
});
const other = { 'mcp-session-id': init.headers.get('mcp-session-id') };
await rpc(`${base}/mcp`, { jsonrpc: '2.0', method: 'notifications/initialized' }, other);
const latencies = [];
let otherFailures = 0;
let running = true;
const otherLoop = (async () => {
  let id = 10;
  while (running) {
    const t0 = performance.now();
    try {
      const r = await rpc(
        `${base}/mcp`,
        {
          jsonrpc: '2.0',
          id: ++id,
          method: 'tools/call',
          params: { name: 'echo__echo', arguments: { message: 'hi' } },
        },
        other,
      );
      if (r.status === 200 && r.text.includes('"result"')) latencies.push(performance.now() - t0);
      else otherFailures++;
    } catch {
      otherFailures++;
    }
    await sleep(100);
  }
})();

// Warm up (JIT, lists cached), then the baseline.
let answerBytes = 0;
for (let i = 0; i < 200; i++) {
  answerBytes = (await rpc(`${base}/mcp`, { jsonrpc: '2.0', id: i, method: 'tools/list' }, other)).text.length;
}
await sleep(500);
const rssBefore = rssKiB(gw.pid);
let rssPeak = rssBefore;
const sampler = setInterval(() => {
  const r = rssKiB(gw.pid);
  if (r > rssPeak) rssPeak = r;
}, 100);

let endpoint = await openSlowStream();
let streamsOpened = 1;
let sent = 0;
let accepted = 0;
let refused = 0;
const body = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
const t0 = performance.now();
while (sent < REQUESTS) {
  const n = Math.min(CONCURRENCY, REQUESTS - sent);
  const path = endpoint;
  const batch = await Promise.all(Array.from({ length: n }, () => rpc(`${base}${path}`, body)));
  sent += n;
  let closed = false;
  for (const r of batch) {
    if (r.status === 202) accepted++;
    else {
      refused++;
      closed = true;
    }
  }
  if (closed && endpoint === path) {
    endpoint = await openSlowStream();
    streamsOpened++;
  }
}
const seconds = (performance.now() - t0) / 1000;
await sleep(1000);
clearInterval(sampler);
const rssAfter = rssKiB(gw.pid);
running = false;
await otherLoop;
const metrics = await (await fetch(`${base}/metrics`)).text();
const overflows = metrics
  .split('\n')
  .filter((l) => l.startsWith('switchboard_stream_overflows_total'))
  .join('; ');
for (const s of openSockets) s.destroy();
await gw.stop();
rmSync(tmpDir, { recursive: true, force: true });

const mib = (kib) => (kib / 1024).toFixed(1);
latencies.sort((a, b) => a - b);
process.stdout.write(
  [
    `build: ${CLI}`,
    `tools/list answer: ${answerBytes} bytes`,
    `slow reader: ${sent} POSTs (${accepted} accepted, ${refused} refused after their stream closed) in ${seconds.toFixed(1)} s, ${streamsOpened} streams opened`,
    `gateway RSS: before ${mib(rssBefore)} MiB, peak ${mib(rssPeak)} MiB (+${mib(rssPeak - rssBefore)}), after ${mib(rssAfter)} MiB (+${mib(rssAfter - rssBefore)})`,
    `overflow counter: ${overflows || '(none)'}`,
    `other client: ${latencies.length} tools/call ok, ${otherFailures} failed, p50 ${median(latencies)?.toFixed(1)} ms, max ${latencies.at(-1)?.toFixed(1)} ms`,
    '',
  ].join('\n'),
);
