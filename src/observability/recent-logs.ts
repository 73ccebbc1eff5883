/**
 * The most recent log lines of the process, for the admin API's live feed (`GET /api/v1/live`,
 * `log` events). {@link RecentLogs} is a pino destination placed beside the real one
 * (`createLogger({ recent })`, a `pino.multistream`): it receives each line exactly as written to
 * stderr — after redaction — keeps the last {@link DEFAULT_RECENT_LOG_LINES} in a ring and hands
 * each new one to its listeners. What stderr receives is unchanged.
 *
 * Each kept line is reduced to the fields the live feed shows (`time`, `level`, `msg`,
 * `component`, `server`, `reqId`) and serialised once, at most {@link MAX_LOG_EVENT_BYTES}
 * bytes (a longer message is cut and ends in `…`).
 *
 * @module
 */

/** Default of {@link RecentLogsOptions.size}. */
export const DEFAULT_RECENT_LOG_LINES = 200;
/** Longest serialised log event, bytes (4 KiB). */
export const MAX_LOG_EVENT_BYTES = 4096;
/** Longest line parsed, bytes: a longer one is kept as its first bytes, as the message. */
const MAX_PARSED_LINE = 64 * 1024;

/** pino's numeric levels by name. */
const LEVEL_NAMES: Readonly<Record<number, string>> = {
  10: 'trace',
  20: 'debug',
  30: 'info',
  40: 'warn',
  50: 'error',
  60: 'fatal',
};

/** One log line as the live feed sends it. */
export interface LogEvent {
  /** ISO 8601 time of the line. */
  readonly time: string;
  /** `trace`, `debug`, `info`, `warn`, `error` or `fatal`. */
  readonly level: string;
  readonly msg: string;
  readonly component?: string;
  readonly server?: string;
  readonly reqId?: string;
}

/** A kept line: the event's fields for filtering and its JSON (≤ {@link MAX_LOG_EVENT_BYTES}). */
export interface RecentLogLine {
  /** Time of the line, epoch ms. */
  readonly time: number;
  readonly server: string | undefined;
  readonly json: string;
}

/** Options of {@link RecentLogs}. */
export interface RecentLogsOptions {
  /** Lines kept. Default {@link DEFAULT_RECENT_LOG_LINES}. */
  readonly size?: number;
}

/** Reduces one pino JSON line to a {@link RecentLogLine}. */
export function logLineOf(line: string): RecentLogLine {
  let raw: Record<string, unknown> = {};
  if (line.length <= MAX_PARSED_LINE) {
    try {
      const v: unknown = JSON.parse(line);
      if (typeof v === 'object' && v !== null) raw = v as Record<string, unknown>;
    } catch {
      raw = { msg: line };
    }
  } else raw = { msg: line.slice(0, MAX_LOG_EVENT_BYTES) };
  const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);
  const time = typeof raw.time === 'number' ? raw.time : Date.now();
  const event: { -readonly [K in keyof LogEvent]: LogEvent[K] } = {
    time: new Date(time).toISOString(),
    level: typeof raw.level === 'number' ? (LEVEL_NAMES[raw.level] ?? String(raw.level)) : (str(raw.level) ?? 'info'),
    msg: str(raw.msg) ?? '',
  };
  const component = str(raw.component);
  const server = str(raw.server);
  const reqId = str(raw.reqId);
  if (component !== undefined) event.component = component;
  if (server !== undefined) event.server = server;
  if (reqId !== undefined) event.reqId = reqId;
  let json = JSON.stringify(event);
  if (Buffer.byteLength(json) > MAX_LOG_EVENT_BYTES) {
    // The longest prefix of the message that fits (binary search: escapes and multi-byte
    // characters make the serialised length of a prefix hard to tell in advance).
    const fits = (n: number): string | undefined => {
      let msg = event.msg.slice(0, n);
      if (/[\uD800-\uDBFF]$/.test(msg)) msg = msg.slice(0, -1); // never half a surrogate pair
      const out = JSON.stringify({ ...event, msg: `${msg}…` });
      return Buffer.byteLength(out) <= MAX_LOG_EVENT_BYTES ? out : undefined;
    };
    let lo = 0;
    let hi = Math.min(event.msg.length, MAX_LOG_EVENT_BYTES);
    json = fits(0) ?? JSON.stringify({ time: event.time, level: event.level, msg: '…' });
    while (lo < hi) {
      const mid = Math.ceil((lo + hi) / 2);
      const out = fits(mid);
      if (out === undefined) hi = mid - 1;
      else {
        lo = mid;
        json = out;
      }
    }
  }
  return { time, server, json };
}

/**
 * A pino destination that keeps the last lines and tells listeners of each new one (see the
 * module comment). `write` never throws: a listener that throws is ignored.
 */
export class RecentLogs {
  readonly #size: number;
  readonly #ring: RecentLogLine[] = [];
  #next = 0;
  readonly #listeners = new Set<(line: RecentLogLine) => void>();

  constructor(options: RecentLogsOptions = {}) {
    this.#size = Math.max(1, options.size ?? DEFAULT_RECENT_LOG_LINES);
  }

  /** The pino destination interface: one serialised line (ending in a newline). */
  write(line: string): boolean {
    const kept = logLineOf(line.endsWith('\n') ? line.slice(0, -1) : line);
    if (this.#ring.length < this.#size) this.#ring.push(kept);
    else this.#ring[this.#next] = kept;
    this.#next = (this.#next + 1) % this.#size;
    for (const l of this.#listeners) {
      try {
        l(kept);
      } catch {
        // A listener's failure is its own; logging it here would loop.
      }
    }
    return true;
  }

  /** The kept lines, oldest first. */
  recent(): RecentLogLine[] {
    if (this.#ring.length < this.#size) return [...this.#ring];
    return [...this.#ring.slice(this.#next), ...this.#ring.slice(0, this.#next)];
  }

  /** Calls `listener` with every new line until the returned function is called. */
  subscribe(listener: (line: RecentLogLine) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
}
