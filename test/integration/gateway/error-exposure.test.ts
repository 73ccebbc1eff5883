/**
 * What a client learns when a stdio upstream cannot be started: the error code and a generic
 * message, never the command the operator configured (a path on the gateway's host) nor what
 * `spawn` reported. The detail goes to the gateway's log. A real gateway with JSON logs and a raw
 * HTTP client, configured with a program that does not exist.
 */
import { Writable } from 'node:stream';
import { afterEach, describe, expect, it } from 'vitest';
import { startGateway, type RunningGateway } from '../../../src/app.js';
import { ERROR_CODES } from '../../../src/errors.js';
import { createLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { buildConfig } from '../../helpers/gateway.js';
import { initSession, messages, post } from '../../helpers/raw.js';

/** A program path that cannot exist; spawning it fails with ENOENT. */
const MISSING = '/nonexistent/switchboard-secret-dir/mcp-server-bin';

let gw: RunningGateway | undefined;
let db: Database | undefined;
afterEach(async () => {
  await gw?.close();
  await db?.close();
  gw = undefined;
  db = undefined;
});

/** Starts a gateway whose JSON log lines are collected in `lines`. */
async function start(servers: Record<string, unknown>): Promise<{ lines: Record<string, unknown>[]; url: string }> {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      for (const line of chunk.toString('utf8').split('\n'))
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  const logger = createLogger({ level: 'debug', destination });
  db = await openDatabase({ url: ':memory:', dataDir: '.', logger });
  gw = await startGateway({ config: buildConfig({ servers }), logger, database: db, sweepIntervalMs: 0 });
  return { lines, url: gw.url };
}

/** Calls `tools/call` on a single-server endpoint (an unknown name is passed through to the upstream). */
async function callTool(endpoint: string, name: string): Promise<{ status: number; body: string }> {
  const sid = await initSession(endpoint);
  const res = await post(
    endpoint,
    { jsonrpc: '2.0', id: 2, method: 'tools/call', params: { name, arguments: {} } },
    { 'mcp-session-id': sid },
  );
  const body = JSON.stringify(await messages(res));
  return { status: res.status, body };
}

describe('upstream failures seen by clients', () => {
  it('answers a call to a stdio server whose program cannot be spawned with SWB_ERR_UPSTREAM_UNAVAILABLE, without its command path; the log has it', async () => {
    const { lines, url } = await start({
      missing: { command: MISSING, isolation: 'session', restart: { initialDelay: 60_000, maxDelay: 60_000 } },
    });
    const { status, body } = await callTool(`${url}/servers/missing/mcp`, 'anything');
    expect(status).toBe(200);
    const [answer] = JSON.parse(body) as Array<{ error: { code: number; message: string; data: unknown } }>;
    expect(answer?.error).toEqual({
      code: ERROR_CODES.SWB_ERR_UPSTREAM_UNAVAILABLE.jsonRpcCode,
      message: 'Upstream unavailable',
      data: { code: 'SWB_ERR_UPSTREAM_UNAVAILABLE' },
    });
    expect(body).not.toContain('switchboard-secret-dir');
    expect(body).not.toContain('ENOENT');
    const withheld = lines.filter((l) => l.msg === 'upstream error detail withheld');
    expect(JSON.stringify(withheld)).toContain(MISSING);
  });
});
