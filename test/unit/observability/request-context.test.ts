import { setTimeout as sleep } from 'node:timers/promises';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger, type Logger } from '../../../src/observability/logger.js';
import {
  MAX_INBOUND_REQUEST_ID_LENGTH,
  currentRequestId,
  nextRequestId,
  requestIdFrom,
  runWithRequestContext,
} from '../../../src/observability/request-context.js';

/** A real pino logger (createLogger) writing JSON lines into an array. */
function capture(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const destination = new Writable({
    write(chunk: Buffer, _enc, cb): void {
      for (const line of chunk.toString('utf8').split('\n')) {
        if (line !== '') lines.push(JSON.parse(line) as Record<string, unknown>);
      }
      cb();
    },
  });
  return { logger: createLogger({ level: 'debug', destination }), lines };
}

describe('request context and the logger', () => {
  it('stamps reqId on every line logged while handling a request, across awaits and timers', async () => {
    const { logger, lines } = capture();
    const child = logger.child({ component: 'upstream', server: 'echo' });
    logger.info('before');
    await runWithRequestContext({ reqId: 'req-1' }, async () => {
      logger.info('sync');
      await Promise.resolve();
      child.warn({ tool: 'echo' }, 'after await');
      await sleep(1);
      logger.error(new Error('boom'));
      await new Promise<void>((resolve) =>
        setImmediate(() => {
          child.debug('in setImmediate');
          resolve();
        }),
      );
    });
    logger.info('after');

    const byMsg = Object.fromEntries(lines.map((l) => [l.msg, l]));
    expect(byMsg.before?.reqId).toBeUndefined();
    expect(byMsg.after?.reqId).toBeUndefined();
    expect(byMsg.sync).toMatchObject({ reqId: 'req-1', name: 'switchboard' });
    expect(byMsg['after await']).toMatchObject({ reqId: 'req-1', component: 'upstream', server: 'echo', tool: 'echo' });
    expect(byMsg.boom).toMatchObject({ reqId: 'req-1', err: { message: 'boom' } });
    expect(byMsg['in setImmediate']).toMatchObject({ reqId: 'req-1' });
  });

  it('keeps concurrent requests apart', async () => {
    const { logger, lines } = capture();
    const handle = (reqId: string, delays: number[]): Promise<void> =>
      runWithRequestContext({ reqId }, async () => {
        for (const [i, d] of delays.entries()) {
          await sleep(d);
          logger.info({ step: i, expected: reqId }, 'step');
        }
      });
    await Promise.all([handle('a', [3, 0, 2]), handle('b', [0, 3, 0]), handle('c', [1, 1, 1])]);
    expect(lines).toHaveLength(9);
    for (const line of lines) expect(line.reqId).toBe(line.expected);
  });

  it('lets an explicit reqId in the line win and the inner of nested contexts apply', () => {
    const { logger, lines } = capture();
    runWithRequestContext({ reqId: 'outer' }, () => {
      logger.info({ reqId: 'explicit' }, 'explicit');
      runWithRequestContext({ reqId: 'inner' }, () => logger.info('nested'));
      logger.info('outer again');
    });
    expect(lines.map((l) => [l.msg, l.reqId])).toEqual([
      ['explicit', 'explicit'],
      ['nested', 'inner'],
      ['outer again', 'outer'],
    ]);
  });

  it('does not leak context fields into the objects passed to the logger', () => {
    const { logger, lines } = capture();
    const fields = { server: 'echo' };
    runWithRequestContext({ reqId: 'r' }, () => logger.info(fields, 'with fields'));
    logger.info(fields, 'outside');
    expect(fields).toEqual({ server: 'echo' });
    expect(lines.map((l) => l.reqId)).toEqual(['r', undefined]);
  });

  it('still redacts secrets on lines that carry a reqId', () => {
    const { logger, lines } = capture();
    runWithRequestContext({ reqId: 'r' }, () => {
      logger.info(
        { headers: { authorization: 'Bearer sk-live-123' }, token: 'swb_abc', auth: { clientSecret: 's3' } },
        'x',
      );
    });
    expect(lines[0]).toMatchObject({
      reqId: 'r',
      headers: { authorization: '[redacted]' },
      token: '[redacted]',
      auth: { clientSecret: '[redacted]' },
    });
    expect(JSON.stringify(lines[0])).not.toMatch(/sk-live-123|swb_abc|s3"/);
  });

  it('returns the current id only inside runWithRequestContext, and the callback result', async () => {
    expect(currentRequestId()).toBeUndefined();
    const result = await runWithRequestContext({ reqId: 'q' }, async () => {
      await Promise.resolve();
      return currentRequestId();
    });
    expect(result).toBe('q');
    expect(currentRequestId()).toBeUndefined();
  });
});

describe('request ids', () => {
  it('generates distinct, short ids sharing one process prefix', () => {
    const ids = Array.from({ length: 10_000 }, () => nextRequestId());
    expect(new Set(ids).size).toBe(ids.length);
    for (const id of ids.slice(0, 5)) expect(id).toMatch(/^[0-9a-z]{8}-[0-9a-z]+$/);
    expect(new Set(ids.map((id) => id.split('-')[0])).size).toBe(1);
    expect(ids.at(-1)!.length).toBeLessThanOrEqual(13);
  });

  it('accepts a well-formed inbound id and replaces anything else', () => {
    expect(requestIdFrom('3f2c9a1e-7b1d-4c1e-9a55-1f0b1d2e3c4d')).toBe('3f2c9a1e-7b1d-4c1e-9a55-1f0b1d2e3c4d');
    expect(requestIdFrom('Root=1-67891233-abcdef012345678912345678')).toBe('Root=1-67891233-abcdef012345678912345678');
    for (const bad of [
      undefined,
      '',
      'two words',
      'line\nbreak',
      'x'.repeat(MAX_INBOUND_REQUEST_ID_LENGTH + 1),
      '"quoted"',
    ]) {
      const id = requestIdFrom(bad);
      expect(id).not.toBe(bad);
      expect(id).toMatch(/^[0-9a-z]{8}-[0-9a-z]+$/);
    }
  });
});
