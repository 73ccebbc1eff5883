import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tmpdir } from 'node:os';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, it } from 'vitest';
import { isGatewayError } from '../../../src/errors.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { JsonRpcMessage } from '../../../src/protocol/jsonrpc.js';
import {
  createStdioTransport,
  STDERR_LINE_MAX_BYTES,
  type StdioTransport,
  type StdioTransportOptions,
} from '../../../src/upstream/stdio-transport.js';
import {
  attachInbox,
  EVERYTHING_ENTRY,
  eventually,
  initializeRequest,
  memoryLogger,
  paramsOf,
  resultOf,
} from './helpers.js';

const FIXTURE = fileURLToPath(new URL('../../fixtures/stdio-echo-crash.mjs', import.meta.url));

/** True while `pid` is a live (not zombie) process. */
function isAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // Field 3, after the parenthesised command name, is the state.
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}

const request = (id: number, method: string, params?: Record<string, unknown>): JsonRpcMessage =>
  params === undefined ? { jsonrpc: '2.0', id, method } : { jsonrpc: '2.0', id, method, params };

describe('stdio transport', () => {
  const open: StdioTransport[] = [];
  const extraPids: number[] = [];

  function fixture(options: Partial<StdioTransportOptions> = {}): StdioTransport {
    const t = createStdioTransport({
      command: process.execPath,
      args: [FIXTURE],
      logger: silentLogger(),
      ...options,
    });
    open.push(t);
    return t;
  }

  afterEach(async () => {
    await Promise.all(open.splice(0).map((t) => t.close()));
    for (const pid of extraPids.splice(0)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  });

  it('runs initialize and tools/list against server-everything over stdio', async () => {
    const t = createStdioTransport({
      command: process.execPath,
      args: [EVERYTHING_ENTRY, 'stdio'],
      logger: silentLogger(),
    });
    open.push(t);
    const inbox = attachInbox(t);
    await t.start();
    expect(t.pid).toBeGreaterThan(0);
    expect(t.description).toContain(`pid=${t.pid}`);

    await t.send(initializeRequest(1));
    const init = await inbox.response(1);
    expect(init.info).toEqual({});
    expect('result' in init.response && init.response.result.protocolVersion).toBe('2025-11-25');

    await t.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    await t.send(request(2, 'tools/list'));
    const list = await inbox.response(2);
    expect('result' in list.response).toBe(true);
    const tools = resultOf<{ tools: { name: string }[] }>(list.response).tools.map((x) => x.name);
    expect(tools).toContain('echo');
    expect(tools).toContain('trigger-long-running-operation');
    expect(inbox.errors).toEqual([]);
  });

  it('gives the child exactly the env it is given, and cwd', async () => {
    const t = fixture({ env: { SWB_TEST_VALUE: 'from-config' }, cwd: tmpdir() });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'env', { name: 'SWB_TEST_VALUE' }));
    await t.send(request(2, 'env', { name: 'PATH' }));
    const own = resultOf<{ value: string; cwd: string }>((await inbox.response(1)).response);
    const notGiven = resultOf<{ value: string | null }>((await inbox.response(2)).response);
    expect(own).toEqual({ value: 'from-config', cwd: tmpdir() });
    expect(notGiven.value).toBeNull();
  });

  it('gives the child only the minimal allowlist of the gateway’s variables by default', async () => {
    const saved = process.env.SWITCHBOARD_SECRET;
    process.env.SWITCHBOARD_SECRET = 'not-for-children-0123456789abcdef';
    try {
      const t = fixture();
      const inbox = attachInbox(t);
      await t.start();
      await t.send(request(1, 'env', { name: 'SWITCHBOARD_SECRET' }));
      await t.send(request(2, 'env', { name: 'PATH' }));
      expect(resultOf<{ value: string | null }>((await inbox.response(1)).response).value).toBeNull();
      expect(resultOf<{ value: string | null }>((await inbox.response(2)).response).value).toBe(process.env.PATH);
    } finally {
      if (saved === undefined) delete process.env.SWITCHBOARD_SECRET;
      else process.env.SWITCHBOARD_SECRET = saved;
    }
  });

  it('skips garbage lines, reports them to onerror, and keeps delivering valid messages', async () => {
    const { logger, records } = memoryLogger({ server: 'fixture' });
    const t = fixture({ logger });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(
      request(1, 'garbage', { lines: ['this is not json', '{"truncated": ', '{"jsonrpc":"1.0","id":5}', '[1,2]'] }),
    );
    const answer = await inbox.response(1);
    expect(answer.response).toEqual({ jsonrpc: '2.0', id: 1, result: { ok: true } });
    await inbox.errorCount(4);
    expect(inbox.errors.every((e) => isGatewayError(e) && e.code === 'SWB_ERR_UPSTREAM_PROTOCOL')).toBe(true);
    expect(records.filter((r) => r.level === 40 && r.server === 'fixture' && 'excerpt' in r)).toHaveLength(4);

    await t.send(request(2, 'echo', { still: 'alive' }));
    expect((await inbox.response(2)).response).toEqual({ jsonrpc: '2.0', id: 2, result: { still: 'alive' } });
    expect(inbox.closes).toEqual([]);
  });

  it('reassembles messages split over many chunks and handles \\r\\n terminators', async () => {
    const t = fixture();
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'big', { size: 300_000 }));
    await t.send(request(2, 'crlf'));
    await t.send(request(3, 'notify-then-answer', { count: 50 }));
    const big = resultOf<{ data: string }>((await inbox.response(1)).response);
    expect(big.data).toHaveLength(300_000);
    expect((await inbox.response(2)).response).toEqual({ jsonrpc: '2.0', id: 2, result: { crlf: true } });
    await inbox.response(3);
    const notes = inbox.deliveries.filter((d) => 'method' in d.message).map((d) => d.message);
    expect(notes).toHaveLength(50);
    expect(notes.map((n) => paramsOf<{ i: number }>(n).i)).toEqual([...Array(50).keys()]);
    expect(inbox.errors).toEqual([]);
  });

  it('drops a stdout line larger than maxMessageBytes and reports it', async () => {
    const t = fixture({ maxMessageBytes: 10_000 });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'big', { size: 50_000 }));
    await inbox.errorCount(1);
    expect(inbox.errors[0]).toMatchObject({ code: 'SWB_ERR_UPSTREAM_PROTOCOL' });
    await t.send(request(2, 'echo', { after: 'overflow' }));
    expect((await inbox.response(2)).response).toEqual({ jsonrpc: '2.0', id: 2, result: { after: 'overflow' } });
    expect(inbox.deliveries.some((d) => !('method' in d.message) && d.message.id === 1)).toBe(false);
  });

  it('keeps only the last stderrLines lines, each truncated to 4 KiB, and logs them with the server binding', async () => {
    const { logger, records } = memoryLogger({ server: 'noisy' });
    const t = fixture({ stderrLines: 5, logger });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'stderr', { count: 1000, width: 10 }));
    await inbox.response(1);
    await eventually(() => t.stderrTail()[4]?.startsWith('999 ') === true, 5000, 'last stderr line');
    expect(t.stderrTail()).toEqual(['995', '996', '997', '998', '999'].map((n) => `${n} ${'e'.repeat(10)}`));
    const logged = records.filter((r) => r.msg === 'upstream stderr');
    expect(logged).toHaveLength(1000);
    expect(logged.every((r) => r.server === 'noisy' && r.level === 20)).toBe(true);

    await t.send(request(2, 'stderr', { count: 1, width: 100_000 }));
    await inbox.response(2);
    await eventually(() => t.stderrTail()[4]?.startsWith('0 ') === true, 5000, 'long stderr line');
    const long = t.stderrTail()[4]!;
    expect(Buffer.byteLength(long)).toBeLessThanOrEqual(STDERR_LINE_MAX_BYTES + 3);
    expect(long.endsWith('…')).toBe(true);
  });

  it('logs stderr lines at debug, and at warn those that look like errors', async () => {
    const { logger, records } = memoryLogger({ server: 'noisy' });
    const t = fixture({ logger });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'stderr', { count: 0, lines: ['listening on stdio', 'TypeError: boom', 'WARNING: old'] }));
    await inbox.response(1);
    await eventually(() => records.filter((r) => r.msg === 'upstream stderr').length === 3, 5000, 'stderr logged');
    const levels = records.filter((r) => r.msg === 'upstream stderr').map((r) => [r.stderr, r.level]);
    expect(levels).toEqual([
      ['listening on stdio', 20],
      ['TypeError: boom', 40],
      ['WARNING: old', 40],
    ]);
  });

  it('fires onclose once with the exit code when the child crashes, then rejects send()', async () => {
    const t = fixture();
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'exit', { code: 3 }));
    const info = await inbox.closed();
    expect(info).toMatchObject({ exitCode: 3, signal: null });
    await expect(t.send(request(2, 'echo'))).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    await t.close();
    expect(inbox.closes).toHaveLength(1);
  });

  it('reports the signal of a child killed by a signal', async () => {
    const t = fixture();
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'exit', { signal: 'SIGKILL' }));
    expect(await inbox.closed()).toMatchObject({ exitCode: null, signal: 'SIGKILL' });
  });

  it('rejects start() with SWB_ERR_UPSTREAM_UNAVAILABLE when the command does not exist', async () => {
    const t = createStdioTransport({ command: 'swb-no-such-command-xyz', logger: silentLogger() });
    const inbox = attachInbox(t);
    const err: unknown = await t.start().catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'SWB_ERR_UPSTREAM_UNAVAILABLE' });
    expect((err as Error).message).toBe(
      'failed to start "swb-no-such-command-xyz": spawn swb-no-such-command-xyz ENOENT',
    );
    await expect(t.send(request(1, 'echo'))).rejects.toMatchObject({ code: 'SWB_ERR_UPSTREAM_CLOSED' });
    await t.close();
    expect(inbox.closes).toEqual([]);
  });

  it('close() escalates to SIGKILL for a child that ignores SIGTERM, and kills its grandchildren', async () => {
    const t = fixture({ killGraceMs: 300 });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'ignore-sigterm'));
    await inbox.response(1);
    await t.send(request(2, 'spawn-grandchild', { ignoreTerm: true }));
    await t.send(request(3, 'spawn-grandchild', { ignoreTerm: false }));
    const stubborn = resultOf<{ pid: number }>((await inbox.response(2)).response).pid;
    const polite = resultOf<{ pid: number }>((await inbox.response(3)).response).pid;
    extraPids.push(stubborn, polite);
    const pid = t.pid!;
    expect(isAlive(pid) && isAlive(stubborn) && isAlive(polite)).toBe(true);

    const started = Date.now();
    await t.close();
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
    expect(await inbox.closed()).toMatchObject({ signal: 'SIGKILL' });
    await eventually(() => !isAlive(pid) && !isAlive(stubborn) && !isAlive(polite), 5000, 'the whole group to die');
  });

  it('close() of a cooperative child resolves quickly and reports the exit', async () => {
    const t = fixture({ killGraceMs: 5000 });
    const inbox = attachInbox(t);
    await t.start();
    const pid = t.pid!;
    const started = Date.now();
    await t.close();
    expect(Date.now() - started).toBeLessThan(2000);
    expect(inbox.closes).toHaveLength(1);
    expect(isAlive(pid)).toBe(false);
  });

  it('kills the grandchildren a crashed child left behind', async () => {
    const t = fixture({ killGraceMs: 200 });
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'spawn-grandchild', { ignoreTerm: true }));
    const orphan = resultOf<{ pid: number }>((await inbox.response(1)).response).pid;
    extraPids.push(orphan);
    await t.send(request(2, 'exit', { code: 1 }));
    expect(await inbox.closed()).toMatchObject({ exitCode: 1 });
    await eventually(() => !isAlive(orphan), 5000, 'the orphaned grandchild to die');
  });

  it('writes the messages sent in one event-loop turn to stdin together, in order', async () => {
    const t = fixture();
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(1, 'stdin-chunks'));
    const before = resultOf<{ chunks: number }>((await inbox.response(1)).response).chunks;
    const sends: Promise<void>[] = [];
    for (let i = 0; i < 20; i++) sends.push(t.send(request(100 + i, 'echo', { i })));
    sends.push(t.send(request(2, 'stdin-chunks')));
    await Promise.all(sends);
    const after = resultOf<{ chunks: number }>((await inbox.response(2)).response).chunks;
    // 21 lines, one write(2): the child read them in one chunk (a single small pipe write is atomic).
    expect(after - before).toBe(1);
    const order = inbox.deliveries
      .map((d) => d.message)
      .filter((m) => !('method' in m) && typeof m.id === 'number' && m.id >= 100)
      .map((m) => resultOf<{ i: number }>(m).i);
    expect(order).toEqual([...Array(20).keys()]);
  });

  it('keeps message order under backpressure when the child stops reading', async () => {
    const t = fixture();
    const inbox = attachInbox(t);
    await t.start();
    await t.send(request(0, 'pause-stdin', { ms: 300 }));
    await inbox.response(0);
    const payload = 'p'.repeat(64 * 1024);
    const sends: Promise<void>[] = [];
    for (let i = 1; i <= 100; i++) sends.push(t.send(request(i, 'echo', { i, payload })));
    // 6.4 MB cannot fit in the pipe: some sends must still be waiting for 'drain'.
    let settled = 0;
    for (const s of sends) void s.then(() => settled++);
    await new Promise((r) => setTimeout(r, 50));
    expect(settled).toBeLessThan(100);
    await Promise.all(sends);
    await inbox.response(100, 15_000);
    const order = inbox.deliveries
      .map((d) => d.message)
      .filter((m) => !('method' in m) && typeof m.id === 'number' && m.id > 0)
      .map((m) => resultOf<{ i: number }>(m).i);
    expect(order).toEqual([...Array(100).keys()].map((i) => i + 1));
  });

  it('kills the process groups of live children when the gateway process exits', async () => {
    // A separate "gateway" process starts a child (which starts a grandchild), then exits
    // without closing the transport: the exit hook must take the whole group down.
    const dir = mkdtempSync(join(tmpdir(), 'swb-stdio-'));
    const script = join(dir, 'gateway.mjs');
    const source = fileURLToPath(new URL('../../../src/upstream/stdio-transport.ts', import.meta.url));
    const loggerSource = fileURLToPath(new URL('../../../src/observability/logger.ts', import.meta.url));
    writeFileSync(
      script,
      `import { createStdioTransport } from ${JSON.stringify(source)};
import { silentLogger } from ${JSON.stringify(loggerSource)};
const t = createStdioTransport({ command: process.execPath, args: [${JSON.stringify(FIXTURE)}], logger: silentLogger() });
t.onmessage = (m) => {
  process.stdout.write(JSON.stringify({ child: t.pid, grandchild: m.result.pid }) + '\\n');
  process.exit(0);
};
await t.start();
await t.send({ jsonrpc: '2.0', id: 1, method: 'spawn-grandchild', params: { ignoreTerm: true } });
`,
    );
    const out = await new Promise<string>((resolve, reject) => {
      const gw = spawn(process.execPath, ['--import', 'tsx', script], {
        cwd: fileURLToPath(new URL('../../../', import.meta.url)),
        stdio: ['ignore', 'pipe', 'inherit'],
      });
      let buf = '';
      gw.stdout.on('data', (d: Buffer) => (buf += d.toString()));
      gw.once('error', reject);
      gw.once('exit', () => resolve(buf));
    });
    rmSync(dir, { recursive: true, force: true });
    const { child, grandchild } = JSON.parse(out) as { child: number; grandchild: number };
    extraPids.push(child, grandchild);
    await eventually(() => !isAlive(child) && !isAlive(grandchild), 5000, 'the orphaned group to die');
  });
});
