#!/usr/bin/env node
// The floor: the smallest Node relay in front of an MCP server, with no features.
//
//   node bench/relay.mjs [--port P] [--detach-child] -- <command> [args...]     HTTP → stdio
//   node bench/relay.mjs [--port P] --upstream URL               HTTP → HTTP
//
// HTTP → stdio: one child, id remap with a counter and a Map, answers application/json, adds an
// Mcp-Session-Id to initialize answers. No session checks, no routing, no features.
// HTTP → HTTP: forwards each POST body to URL over an undici keep-alive Pool (the client
// Switchboard uses too) and copies status, content-type, mcp-session-id and body back.
//
// Prints `{"listening":"http://127.0.0.1:PORT/mcp"}` on stdout when ready.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';

const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
const opts = dd < 0 ? argv : argv.slice(0, dd);
const cmd = dd < 0 ? [] : argv.slice(dd + 1);
const opt = (name) => {
  const i = opts.indexOf(name);
  return i >= 0 ? opts[i + 1] : undefined;
};
const port = Number(opt('--port') ?? 0);
const upstream = opt('--upstream');
if (cmd.length === 0 && !upstream) {
  process.stderr.write('usage: relay.mjs [--port P] -- <command> [args...] | relay.mjs [--port P] --upstream URL\n');
  process.exit(2);
}

function readBody(req, cb) {
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => cb(chunks.length === 1 ? chunks[0] : Buffer.concat(chunks)));
}

let handler;
let onStop = () => {};

if (upstream) {
  const { Pool } = await import('undici');
  const u = new URL(upstream);
  const pool = new Pool(u.origin, { connections: 128, keepAliveTimeout: 60_000 });
  const path = u.pathname + u.search;
  handler = (req, res) => {
    readBody(req, (body) => {
      const headers = { 'content-type': 'application/json', accept: 'application/json, text/event-stream' };
      const sid = req.headers['mcp-session-id'];
      if (sid) headers['mcp-session-id'] = sid;
      const pv = req.headers['mcp-protocol-version'];
      if (pv) headers['mcp-protocol-version'] = pv;
      void pool.request({ path, method: req.method, headers, body }).then(
        async (r) => {
          const out = Buffer.from(await r.body.arrayBuffer());
          const h = { 'content-length': out.length };
          if (r.headers['content-type']) h['content-type'] = r.headers['content-type'];
          if (r.headers['mcp-session-id']) h['mcp-session-id'] = r.headers['mcp-session-id'];
          res.writeHead(r.statusCode, h);
          res.end(out);
        },
        () => void res.writeHead(502).end(),
      );
    });
  };
  onStop = () => void pool.destroy();
} else {
  // --detach-child: the child in its own session/process group, as Switchboard spawns stdio
  // upstreams (with Linux autogroup scheduling this changes how CPU is shared).
  const child = spawn(cmd[0], cmd.slice(1), {
    stdio: ['pipe', 'pipe', 'inherit'],
    detached: opts.includes('--detach-child'),
  });
  child.on('exit', (code) => {
    process.stderr.write(`relay: upstream exited (${code})\n`);
    process.exit(1);
  });
  onStop = () => child.kill('SIGTERM');

  let nextId = 0;
  const pending = new Map(); // upstream id → { res, id, init }
  let buf = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (chunk) => {
    const data = buf.length ? buf + chunk : chunk;
    let start = 0;
    let nl;
    while ((nl = data.indexOf('\n', start)) >= 0) {
      const line = data.slice(start, nl);
      start = nl + 1;
      if (line.length === 0) continue;
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        continue;
      }
      const p = pending.get(msg.id);
      if (p === undefined) continue; // upstream notification / request: dropped (no features)
      pending.delete(msg.id);
      msg.id = p.id;
      const body = JSON.stringify(msg);
      const headers = { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) };
      if (p.init) headers['mcp-session-id'] = randomUUID();
      p.res.writeHead(200, headers);
      p.res.end(body);
    }
    buf = start < data.length ? data.slice(start) : '';
  });

  handler = (req, res) => {
    if (req.method !== 'POST') return void res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
    readBody(req, (raw) => {
      let msg;
      try {
        msg = JSON.parse(raw.toString());
      } catch {
        return void res.writeHead(400).end();
      }
      if (msg.id === undefined || msg.id === null) {
        child.stdin.write(`${JSON.stringify(msg)}\n`);
        return void res.writeHead(202).end();
      }
      const id = ++nextId;
      pending.set(id, { res, id: msg.id, init: msg.method === 'initialize' });
      msg.id = id;
      child.stdin.write(`${JSON.stringify(msg)}\n`);
    });
  };
}

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => handler(req, res));
server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ listening: `http://${a.address}:${a.port}/mcp` })}\n`);
});
for (const s of ['SIGINT', 'SIGTERM'])
  process.on(s, () => {
    onStop();
    process.exit(0);
  });
