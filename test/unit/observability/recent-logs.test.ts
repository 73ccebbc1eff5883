import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.js';
import { logLineOf, MAX_LOG_EVENT_BYTES, RecentLogs } from '../../../src/observability/recent-logs.js';

function capture(): { stream: Writable; lines: string[] } {
  const lines: string[] = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(...chunk.toString().split('\n').filter(Boolean));
      cb();
    },
  });
  return { stream, lines };
}

describe('RecentLogs', () => {
  it('receives the redacted lines while the destination receives exactly what it did without it', () => {
    const plain = capture();
    const tapped = capture();
    const recent = new RecentLogs();
    const a = createLogger({ destination: plain.stream, level: 'info' });
    const b = createLogger({ destination: tapped.stream, level: 'info', recent });
    for (const log of [a, b]) {
      log.child({ component: 'upstream', server: 'x' }).warn({ token: 'secret', reqId: 'r1' }, 'hello');
      log.debug('not at this level');
    }
    const strip = (l: string) => l.replace(/"(time|pid|hostname)":[^,]*,/g, '');
    expect(tapped.lines.map(strip)).toEqual(plain.lines.map(strip));
    expect(tapped.lines.join('\n')).not.toContain('secret');
    const kept = recent.recent();
    expect(kept).toHaveLength(1);
    expect(JSON.parse(kept[0]!.json)).toEqual({
      time: expect.any(String) as unknown,
      level: 'warn',
      msg: 'hello',
      component: 'upstream',
      server: 'x',
      reqId: 'r1',
    });
    expect(kept[0]!.json).not.toContain('secret');
  });

  it('keeps the last lines in order and tells listeners of new ones', () => {
    const recent = new RecentLogs({ size: 3 });
    const seen: string[] = [];
    const stop = recent.subscribe((l) => seen.push((JSON.parse(l.json) as { msg: string }).msg));
    for (let i = 0; i < 5; i++) recent.write(`${JSON.stringify({ level: 30, time: i, msg: `m${i}` })}\n`);
    stop();
    recent.write(`${JSON.stringify({ level: 30, time: 9, msg: 'after' })}\n`);
    expect(recent.recent().map((l) => (JSON.parse(l.json) as { msg: string }).msg)).toEqual(['m3', 'm4', 'after']);
    expect(seen).toEqual(['m0', 'm1', 'm2', 'm3', 'm4']);
  });

  it('cuts a line to 4 KiB, also with multi-byte characters, and keeps a line that is not JSON', () => {
    for (const ch of ['x', 'é', '😀', '"']) {
      const line = logLineOf(JSON.stringify({ level: 50, time: 0, msg: ch.repeat(20_000) }));
      expect(Buffer.byteLength(line.json)).toBeLessThanOrEqual(MAX_LOG_EVENT_BYTES);
      const msg = (JSON.parse(line.json) as { msg: string }).msg;
      expect(msg.endsWith('…')).toBe(true);
      expect(Buffer.byteLength(line.json)).toBeGreaterThan(MAX_LOG_EVENT_BYTES / 2);
    }
    expect(JSON.parse(logLineOf('not json').json)).toMatchObject({ msg: 'not json', level: 'info' });
  });
});
