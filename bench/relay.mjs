#!/usr/bin/env node
// The floor: the smallest Node HTTP → stdio JSON-RPC relay. One child, id remap with a counter
// and a Map, answers application/json. No session checks, no routing, no features.
//
//   node bench/relay.mjs [--port P] -- <command> [args...]
//
// Prints `{"listening":"http://127.0.0.1:PORT/mcp"}` on stdout when ready.
import { createServer } from 'node:http';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';

const argv = process.argv.slice(2);
const dd = argv.indexOf('--');
const opts = dd < 0 ? argv : argv.slice(0, dd);
const cmd = dd < 0 ? [] : argv.slice(dd + 1);
if (cmd.length === 0) {
  process.stderr.write('usage: relay.mjs [--port P] -- <command> [args...]\n');
  process.exit(2);
}
const pi = opts.indexOf('--port');
const port = pi >= 0 ? Number(opts[pi + 1]) : 0;

const child = spawn(cmd[0], cmd.slice(1), { stdio: ['pipe', 'pipe', 'inherit'] });
child.on('exit', (code) => {
  process.stderr.write(`relay: upstream exited (${code})\n`);
  process.exit(1);
});

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

const server = createServer({ keepAliveTimeout: 65_000 }, (req, res) => {
  if (req.method !== 'POST') return void res.writeHead(req.method === 'DELETE' ? 200 : 405).end();
  const chunks = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    let msg;
    try {
      msg = JSON.parse(chunks.length === 1 ? chunks[0].toString() : Buffer.concat(chunks).toString());
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
});
server.listen(port, '127.0.0.1', () => {
  const a = server.address();
  process.stdout.write(`${JSON.stringify({ listening: `http://${a.address}:${a.port}/mcp` })}\n`);
});
for (const s of ['SIGINT', 'SIGTERM']) process.on(s, () => {
  child.kill('SIGTERM');
  process.exit(0);
});
