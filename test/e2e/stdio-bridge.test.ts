/**
 * `switchboard stdio` as an MCP client launches it: an official SDK client over
 * `StdioClientTransport` runs the built CLI, which bridges to a real gateway (API tokens,
 * server-everything over stdio). Tools are listed and called, a sampling request from the
 * upstream reaches the client and its answer goes back, requests after `initialize` carry
 * `MCP-Protocol-Version`, the client closing stdin ends the gateway session, a wrong token fails
 * `initialize` with a one-line message on stderr, and an unreachable gateway gets a JSON-RPC
 * error for the request and exit code 0 on stdin EOF.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StdioClientTransport } from '@modelcontextprotocol/sdk/client/stdio.js';
import { CreateMessageRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import { startBalancer } from '../helpers/balancer.js';
import { EVERYTHING_ENTRY } from '../helpers/gateway.js';
import { CLI, ROOT, startServe, type ServeProcess } from '../helpers/serve.js';

function run(args: string[], cwd: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [...CLI, ...args], { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`${args.join(' ')}: ${code}\n${err}`))));
  });
}

/** A client whose server is `switchboard stdio --url <url>` with `SWITCHBOARD_TOKEN=token`. */
function bridgeClient(
  url: string,
  token: string,
): { client: Client; transport: StdioClientTransport; stderr: () => string } {
  const transport = new StdioClientTransport({
    command: process.execPath,
    args: [...CLI, 'stdio', '--url', url],
    env: { ...(process.env as Record<string, string>), SWITCHBOARD_TOKEN: token },
    cwd: ROOT,
    stderr: 'pipe',
  });
  let stderr = '';
  transport.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
  const client = new Client({ name: 'bridge-test', version: '1.0.0' }, { capabilities: { sampling: {} } });
  return { client, transport, stderr: () => stderr };
}

describe('switchboard stdio', () => {
  let serve: ServeProcess;
  let token: string;
  let dir: string;

  beforeAll(async () => {
    dir = mkdtempSync(`${tmpdir()}/swb-bridge-`);
    const config = `${dir}/switchboard.yaml`;
    writeFileSync(
      config,
      [
        'auth: { mode: tokens }',
        'listen: { port: 0 }',
        'servers:',
        '  everything:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(EVERYTHING_ENTRY)}, stdio]`,
        '',
      ].join('\n'),
    );
    token = (
      JSON.parse(
        await run(['token', 'create', '--config', config, '--name', 'bridge', '--permissions', '*', '--json'], dir),
      ) as { token: string }
    ).token;
    serve = await startServe(['--config', config], { cwd: dir });
  }, 60_000);

  afterAll(async () => {
    serve?.child.kill('SIGTERM');
    await serve?.exited;
  });

  it('lists and calls tools, and round-trips a sampling request through the client', async () => {
    // A pass-through proxy in front of the gateway records what the bridge sends.
    const seen: Array<{ method: string; version: string | undefined }> = [];
    const proxy = await startBalancer([serve.url], {
      onRequest: (req) => {
        const v = req.headers['mcp-protocol-version'];
        seen.push({ method: req.method ?? '', version: typeof v === 'string' ? v : undefined });
      },
    });
    const sessions = async (): Promise<Array<{ client: { name: string } | null }>> => {
      const res = await fetch(`${serve.url}/api/v1/sessions`, { headers: { authorization: `Bearer ${token}` } });
      expect(res.status).toBe(200);
      return ((await res.json()) as { sessions: Array<{ client: { name: string } | null }> }).sessions;
    };
    const ours = async () => (await sessions()).filter((s) => s.client?.name === 'bridge-test').length;
    const { client, transport, stderr } = bridgeClient(`${proxy.url}/mcp`, token);
    const prompts: string[] = [];
    client.setRequestHandler(CreateMessageRequestSchema, (request) => {
      const content = request.params.messages[0]?.content;
      prompts.push(content && 'text' in content ? String(content.text) : '');
      return {
        role: 'assistant' as const,
        model: 'bridge-test-model',
        content: { type: 'text' as const, text: 'answer from the stdio client' },
      };
    });
    try {
      await client.connect(transport);
      const names = (await client.listTools()).tools.map((t) => t.name);
      expect(names).toContain('everything__echo');
      expect(names).toContain('everything__trigger-sampling-request');
      const echo = await client.callTool({ name: 'everything__echo', arguments: { message: 'over the bridge' } });
      expect(JSON.stringify(echo.content)).toContain('over the bridge');
      const sampled = await client.callTool({
        name: 'everything__trigger-sampling-request',
        arguments: { prompt: 'hello sampler', maxTokens: 20 },
      });
      expect(prompts.some((p) => p.includes('hello sampler'))).toBe(true);
      expect(JSON.stringify(sampled.content)).toContain('answer from the stdio client');
      // The first POST is initialize (no version yet); every later request carries it.
      expect(seen[0]?.version).toBeUndefined();
      const later = seen.slice(1);
      expect(later.length).toBeGreaterThan(3);
      for (const r of later) expect(r.version).toMatch(/^\d{4}-\d{2}-\d{2}$/);
      expect(await ours()).toBe(1);
    } finally {
      await client.close();
    }
    // Closing the client ends the bridge's stdin: it sends DELETE, the session ends at once.
    expect(seen.some((r) => r.method === 'DELETE')).toBe(true);
    expect(await ours()).toBe(0);
    await proxy.close();
    expect(stderr()).not.toContain('switchboard stdio:');
  }, 60_000);

  it('fails initialize with a one-line stderr message on a wrong token', async () => {
    const { client, transport, stderr } = bridgeClient(`${serve.url}/mcp`, 'swb_wrong');
    try {
      await expect(client.connect(transport, { timeout: 10_000 })).rejects.toThrow(/401/);
      expect(stderr()).toMatch(/switchboard stdio: the gateway at \S+ refused the token \(HTTP 401\)/);
    } finally {
      await client.close();
    }
  }, 30_000);

  it('answers a request with a JSON-RPC error when the gateway is down, and exits 0 on stdin EOF', async () => {
    const child = spawn(process.execPath, [...CLI, 'stdio', '--url', 'http://127.0.0.1:9/mcp'], {
      cwd: ROOT,
      env: { ...process.env, SWITCHBOARD_TOKEN: token },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    child.stdin.write(
      `${JSON.stringify({
        jsonrpc: '2.0',
        id: 7,
        method: 'initialize',
        params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'raw', version: '1' } },
      })}\n`,
    );
    const deadline = Date.now() + 10_000;
    while (!out.includes('\n') && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    const lines = out.trim().split('\n');
    expect(lines).toHaveLength(1);
    const reply = JSON.parse(lines[0]!) as { id: number; error?: { code: number; message: string } };
    expect(reply.id).toBe(7);
    expect(reply.error?.code).toBe(-32000);
    expect(err).toMatch(/switchboard stdio: cannot reach the gateway at http:\/\/127\.0\.0\.1:9\/mcp/);
    child.stdin.end();
    expect(await exited).toBe(0);
  }, 30_000);
});
