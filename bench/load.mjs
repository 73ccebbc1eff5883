#!/usr/bin/env node
// Load generator for MCP Streamable HTTP endpoints (2025 era, sessionful; or 2026-07-28, stateless).
//
// N sessions (each: initialize + notifications/initialized, keeps its Mcp-Session-Id), C
// concurrent in-flight requests spread over the sessions (worker w uses session w mod N), bounded
// by a warm-up plus a measured duration, or by a number of operations. JSON and SSE responses are
// both understood. Raw per-request latency samples are taken with performance.now() (a
// monotonic hrtime clock) and reduced to req/s and p50/p90/p99.
//
// Run it as its own process so it never shares the measured server's event loop:
//
//   node bench/load.mjs --url http://127.0.0.1:8080/mcp --op call --tool echo__echo \
//        --sessions 4 --concurrency 16 --duration 5 --warmup 1 [--client undici|http]
//
// `--verify light` checks JSON answers by id and a result member instead of a full JSON.parse
// (for large bodies such as a 1,000-tool list, where client-side parsing would dominate).
// `--header 'Name: value'` (repeatable) adds a header to every request (e.g. Authorization).
// Ops: call (tools/call TOOL {message: --text}), list (tools/list), ping, setup (initialize +
// notifications/initialized as one operation; new session each time; never closed).
// Prints one JSON object on stdout (see `summarize`). `--max-ops K` stops after K operations.
// `--sessions 0` sends no initialize (for servers that need none).
// `--era modern` sends MCP 2026-07-28 stateless requests instead (ops call and list): no
// initialize and no session; each request carries the per-request `_meta` and the
// MCP-Protocol-Version, Mcp-Method and Mcp-Name headers.
import { performance } from 'node:perf_hooks';
import http from 'node:http';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';
import { Pool } from 'undici';

export const PROTOCOL_VERSION = '2025-06-18';
/** The stateless era's version (`--era modern`). */
export const MODERN_VERSION = '2026-07-28';
const ACCEPT = 'application/json, text/event-stream';

/** Finds the JSON-RPC response with `id` in a JSON or SSE body; returns it or throws. */
export function extractResponse(contentType, text, id) {
  if (contentType && contentType.includes('text/event-stream')) {
    // SSE: events separated by blank lines; a message's data lines are joined with \n.
    let data = [];
    const lines = text.split(/\r?\n/);
    for (let i = 0; i <= lines.length; i++) {
      const line = i < lines.length ? lines[i] : '';
      if (line === '') {
        if (data.length) {
          const payload = data.join('\n');
          data = [];
          if (payload.trim() === '') continue;
          const msg = JSON.parse(payload);
          if (msg && msg.id === id && !('method' in msg)) return msg;
        }
      } else if (line.startsWith('data:')) {
        data.push(line.slice(line[5] === ' ' ? 6 : 5));
      }
    }
    throw new Error(`no response for id ${id} in SSE body (${text.length} bytes)`);
  }
  const msg = JSON.parse(text);
  if (msg.id !== id) throw new Error(`response id ${msg.id} != ${id}`);
  return msg;
}

/**
 * Minimal HTTP POST over a keep-alive client; resolves { status, headers, text }. `responses`
 * counts the HTTP responses received (any status): the requests the server handled.
 */
function makeClient(kind, url, connections) {
  const client = makeRawClient(kind, url, connections);
  const counted = {
    responses: 0,
    async post(headers, body) {
      const r = await client.post(headers, body);
      counted.responses++;
      return r;
    },
    close: () => client.close(),
  };
  return counted;
}

function makeRawClient(kind, url, connections) {
  const u = new URL(url);
  if (kind === 'undici') {
    const pool = new Pool(u.origin, {
      connections,
      pipelining: 1,
      keepAliveTimeout: 60_000,
      keepAliveMaxTimeout: 600_000,
    });
    return {
      async post(headers, body) {
        const r = await pool.request({ path: u.pathname + u.search, method: 'POST', headers, body });
        const text = await r.body.text();
        return { status: r.statusCode, headers: r.headers, text };
      },
      close: () => pool.close(),
    };
  }
  if (kind === 'http') {
    const agent = new http.Agent({ keepAlive: true, maxSockets: connections, keepAliveMsecs: 60_000 });
    return {
      post(headers, body) {
        return new Promise((resolve, reject) => {
          const req = http.request(
            {
              host: u.hostname,
              port: u.port,
              path: u.pathname + u.search,
              method: 'POST',
              agent,
              headers: { ...headers, 'content-length': Buffer.byteLength(body) },
            },
            (res) => {
              res.setEncoding('utf8');
              let text = '';
              res.on('data', (c) => (text += c));
              res.on('end', () => resolve({ status: res.statusCode, headers: res.headers, text }));
              res.on('error', reject);
            },
          );
          req.on('error', reject);
          req.end(body);
        });
      },
      close: async () => agent.destroy(),
    };
  }
  throw new Error(`unknown client ${kind}`);
}

function percentile(sorted, p) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i];
}

/** Reduces latency samples (ms) to the reported figures. */
export function summarize(samples, seconds, errors, firstError) {
  const sorted = Float64Array.from(samples).sort();
  let sum = 0;
  for (const v of sorted) sum += v;
  const r3 = (x) => Math.round(x * 1000) / 1000;
  return {
    ok: sorted.length,
    errors,
    firstError,
    seconds: r3(seconds),
    rps: Math.round(sorted.length / seconds),
    p50: r3(percentile(sorted, 50)),
    p90: r3(percentile(sorted, 90)),
    p99: r3(percentile(sorted, 99)),
    mean: r3(sorted.length ? sum / sorted.length : NaN),
    max: r3(sorted.length ? sorted[sorted.length - 1] : NaN),
  };
}

/**
 * Runs one load test. Options: url, op ('call'|'list'|'ping'|'setup'), tool, sessions,
 * concurrency, duration (s), warmup (s), maxOps, client ('undici'|'http'), text, timeout (s).
 */
export async function runLoad(o) {
  const opts = {
    op: 'call',
    tool: 'echo',
    sessions: 4,
    concurrency: 1,
    duration: 5,
    warmup: 1,
    maxOps: 0,
    client: 'undici',
    text: 'hello',
    timeout: 120,
    verify: 'full',
    ...o,
  };
  const client = makeClient(opts.client, opts.url, Math.max(1, opts.concurrency));
  let nextId = 1;
  // Extra headers (e.g. `authorization`) go on every request.
  const baseHeaders = { 'content-type': 'application/json', accept: ACCEPT, ...(opts.headers ?? {}) };

  async function rpc(sessionId, method, params, notification = false) {
    const headers = sessionId
      ? { ...baseHeaders, 'mcp-session-id': sessionId, 'mcp-protocol-version': PROTOCOL_VERSION }
      : baseHeaders;
    if (notification) {
      const body = JSON.stringify({ jsonrpc: '2.0', method, ...(params ? { params } : {}) });
      const r = await client.post(headers, body);
      if (r.status !== 202 && r.status !== 200) throw new Error(`${method}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
      return r;
    }
    const id = nextId++;
    const body = JSON.stringify({ jsonrpc: '2.0', id, method, ...(params ? { params } : {}) });
    const r = await client.post(headers, body);
    if (r.status !== 200) throw new Error(`${method}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    const msg = extractResponse(r.headers['content-type'], r.text, id);
    if (msg.error) throw new Error(`${method}: JSON-RPC error ${JSON.stringify(msg.error).slice(0, 200)}`);
    return { ...r, msg };
  }

  async function openSession() {
    const r = await rpc(undefined, 'initialize', {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'switchboard-bench', version: '1' },
    });
    const sid = r.headers['mcp-session-id'];
    if (typeof sid !== 'string' || sid === '') throw new Error('initialize: no Mcp-Session-Id');
    await rpc(sid, 'notifications/initialized', undefined, true);
    return sid;
  }

  // era 'modern': MCP 2026-07-28 stateless requests (no initialize, no session; the version and
  // capabilities in each request's _meta, mirrored headers).
  const modern = opts.era === 'modern';
  const sessions = [];
  if (opts.op !== 'setup' && !modern) {
    for (let i = 0; i < opts.sessions; i++) sessions.push(await openSession());
  }
  const META = {
    'io.modelcontextprotocol/protocolVersion': MODERN_VERSION,
    'io.modelcontextprotocol/clientInfo': { name: 'switchboard-bench', version: '1' },
    'io.modelcontextprotocol/clientCapabilities': {},
  };

  // Pre-built request bodies: only the id changes per request.
  let prefix;
  let suffix;
  let method;
  const withMeta = (params) => (modern ? { ...params, _meta: META } : params);
  if (opts.op === 'call') {
    method = 'tools/call';
    prefix = '{"jsonrpc":"2.0","id":';
    suffix = `,"method":"tools/call","params":${JSON.stringify(withMeta({ name: opts.tool, arguments: { message: opts.text } }))}}`;
  } else if (opts.op === 'list') {
    method = 'tools/list';
    prefix = '{"jsonrpc":"2.0","id":';
    suffix = `,"method":"tools/list","params":${JSON.stringify(withMeta({}))}}`;
  } else if (modern) {
    throw new Error(`op ${opts.op} has no 2026-07-28 form`);
  } else if (opts.op === 'ping') {
    method = 'ping';
    prefix = '{"jsonrpc":"2.0","id":';
    suffix = ',"method":"ping"}';
  } else if (opts.op !== 'setup') throw new Error(`unknown op ${opts.op}`);
  const sessionHeaders = sessions.map((sid) => ({
    ...baseHeaders,
    'mcp-session-id': sid,
    'mcp-protocol-version': PROTOCOL_VERSION,
  }));
  const noSessionHeaders = modern
    ? {
        ...baseHeaders,
        'mcp-protocol-version': MODERN_VERSION,
        'mcp-method': method,
        ...(method === 'tools/call' ? { 'mcp-name': opts.tool } : {}),
      }
    : { ...baseHeaders, 'mcp-protocol-version': PROTOCOL_VERSION };

  async function oneOp(worker) {
    if (opts.op === 'setup') {
      await openSession();
      return;
    }
    const id = nextId++;
    const headers = sessionHeaders.length ? sessionHeaders[worker % sessionHeaders.length] : noSessionHeaders;
    const r = await client.post(headers, prefix + id + suffix);
    if (r.status !== 200) throw new Error(`${method}: HTTP ${r.status} ${r.text.slice(0, 200)}`);
    const ct = r.headers['content-type'];
    if (lightVerify && ct && ct.includes('application/json')) {
      // Large JSON bodies: a full JSON.parse in the client (~0.5 ms for 1,000 tools) would dominate
      // what is measured; check the id and a result member instead.
      if (!(r.text.includes(`"id":${id},`) || r.text.includes(`"id":${id}}`)) || !r.text.includes('"result":{'))
        throw new Error(`${method}: unexpected body ${r.text.slice(0, 200)}`);
      return;
    }
    const msg = extractResponse(ct, r.text, id);
    if (msg.error) throw new Error(`${method}: JSON-RPC error ${JSON.stringify(msg.error).slice(0, 200)}`);
  }
  const lightVerify = opts.verify === 'light';

  const samples = [];
  let errors = 0;
  let firstError;
  let started = 0;
  let completed = 0; // including warm-up
  const t0 = performance.now();
  const bounded = opts.maxOps > 0;
  const measureFrom = bounded ? t0 : t0 + opts.warmup * 1000;
  const stopAt = bounded ? t0 + opts.timeout * 1000 : measureFrom + opts.duration * 1000;
  let lastEnd = t0;

  async function worker(w) {
    for (;;) {
      const start = performance.now();
      if (start >= stopAt) return;
      if (bounded && started >= opts.maxOps) return;
      started++;
      try {
        await oneOp(w);
        completed++;
        const end = performance.now();
        if (start >= measureFrom) {
          samples.push(end - start);
          lastEnd = end;
        }
      } catch (err) {
        errors++;
        firstError ??= String(err?.message ?? err);
        if (errors > 1000 && samples.length === 0) return; // clearly broken: stop early
      }
    }
  }
  await Promise.all(Array.from({ length: Math.max(1, opts.concurrency) }, (_, w) => worker(w)));
  const seconds = bounded ? (lastEnd - t0) / 1000 : opts.duration;
  await client.close();
  return {
    ...summarize(samples, seconds, errors, firstError),
    total: completed,
    sessions: sessions.length,
    httpResponses: client.responses,
  };
}

async function main() {
  const { values } = parseArgs({
    options: {
      url: { type: 'string' },
      op: { type: 'string', default: 'call' },
      tool: { type: 'string', default: 'echo' },
      sessions: { type: 'string', default: '4' },
      concurrency: { type: 'string', short: 'c', default: '1' },
      duration: { type: 'string', short: 'd', default: '5' },
      warmup: { type: 'string', default: '1' },
      'max-ops': { type: 'string', default: '0' },
      client: { type: 'string', default: 'undici' },
      text: { type: 'string', default: 'hello' },
      timeout: { type: 'string', default: '120' },
      header: { type: 'string', multiple: true, default: [] },
      verify: { type: 'string', default: 'full' },
      era: { type: 'string', default: 'legacy' },
    },
  });
  if (!values.url) {
    process.stderr.write(
      'usage: load.mjs --url URL [--op call|list|ping|setup] [--tool NAME] [--sessions N] [-c C] [-d S] [--warmup S] [--max-ops K] [--client undici|http]\n',
    );
    process.exit(2);
  }
  const result = await runLoad({
    url: values.url,
    op: values.op,
    tool: values.tool,
    sessions: Number(values.sessions),
    concurrency: Number(values.concurrency),
    duration: Number(values.duration),
    warmup: Number(values.warmup),
    maxOps: Number(values['max-ops']),
    client: values.client,
    text: values.text,
    timeout: Number(values.timeout),
    verify: values.verify,
    era: values.era,
    headers: Object.fromEntries(
      values.header.map((h) => {
        const i = h.indexOf(':');
        return [h.slice(0, i).trim().toLowerCase(), h.slice(i + 1).trim()];
      }),
    ),
  });
  process.stdout.write(`${JSON.stringify(result)}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main().catch((err) => {
    process.stdout.write(`${JSON.stringify({ fatal: String(err?.stack ?? err) })}\n`);
    process.exit(1);
  });
}
