/** Helpers shared by the rate-limit tests (unit, Redis and chaos). */
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { isGatewayError, type GatewayError } from '../../src/errors.js';
import type { Logger } from '../../src/observability/logger.js';
import type { RateLimitContext, RateLimiter } from '../../src/policy/rate-limit.js';

/** One check: `'ok'` when admitted, the GatewayError when refused; other errors are rethrown. */
export async function attempt(l: RateLimiter, c: RateLimitContext): Promise<'ok' | GatewayError> {
  try {
    await l.check(c);
    return 'ok';
  } catch (e) {
    if (isGatewayError(e)) return e;
    throw e;
  }
}

/** A real pino logger at `info` whose lines (parsed JSON) are collected in `lines`. */
export function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'info' }, sink), lines };
}
