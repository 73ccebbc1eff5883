/**
 * Newline-delimited framing (MCP basic/transports §stdio: messages are delimited by newlines and
 * contain no embedded newlines): a push-based splitter of a byte stream into lines.
 *
 * @module
 */

const LF = 0x0a;
const CR = 0x0d;

/** Options for {@link createLineSplitter}. */
export interface LineSplitterOptions {
  /** Longest line delivered whole, in bytes (excluding the newline). */
  maxLineBytes: number;
  /** A complete line, without `\n` or `\r\n`, decoded as UTF-8. Empty lines are delivered too. */
  onLine: (line: string) => void;
  /**
   * A line longer than `maxLineBytes`: called once with its first `maxLineBytes` bytes (decoded);
   * the rest of the line, up to the next newline, is discarded.
   */
  onOverflow: (prefix: string) => void;
}

/** A push-based splitter of a byte stream into lines. */
export interface LineSplitter {
  /** Feeds the next chunk. Only the new chunk is scanned for newlines. */
  push(chunk: Buffer): void;
  /** Delivers a final line that had no terminating newline. */
  end(): void;
}

/**
 * Creates a splitter of newline-delimited text (MCP stdio framing). Chunks are buffered without
 * copying until a `\n` arrives; each chunk is scanned once with a native search, so a message
 * spread over many chunks costs O(total bytes). Splitting on the byte 0x0A is UTF-8 safe (it never
 * occurs inside a multi-byte sequence); a trailing `\r` is removed.
 */
export function createLineSplitter(options: LineSplitterOptions): LineSplitter {
  const { maxLineBytes, onLine, onOverflow } = options;
  let parts: Buffer[] = [];
  let size = 0;
  let discarding = false;

  const emit = (line: Buffer): void => {
    const end = line.length > 0 && line[line.length - 1] === CR ? line.length - 1 : line.length;
    if (end > maxLineBytes) onOverflow(line.toString('utf8', 0, maxLineBytes));
    else onLine(line.toString('utf8', 0, end));
  };

  return {
    push(chunk: Buffer): void {
      let start = 0;
      let nl = chunk.indexOf(LF);
      while (nl !== -1) {
        if (discarding) {
          discarding = false;
        } else if (size === 0) {
          emit(chunk.subarray(start, nl));
        } else {
          parts.push(chunk.subarray(start, nl));
          const line = Buffer.concat(parts, size + nl - start);
          parts = [];
          size = 0;
          emit(line);
        }
        start = nl + 1;
        nl = chunk.indexOf(LF, start);
      }
      if (start >= chunk.length || discarding) return;
      const rest = start === 0 ? chunk : chunk.subarray(start);
      parts.push(rest);
      size += rest.length;
      if (size > maxLineBytes + 1) {
        // +1 leaves room for a `\r` whose `\n` has not arrived yet.
        onOverflow(Buffer.concat(parts, size).toString('utf8', 0, maxLineBytes));
        parts = [];
        size = 0;
        discarding = true;
      }
    },
    end(): void {
      if (size > 0 && !discarding) emit(Buffer.concat(parts, size));
      parts = [];
      size = 0;
      discarding = false;
    },
  };
}
