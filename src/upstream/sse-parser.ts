/**
 * Reading a `text/event-stream` body (WHATWG HTML §9.2 "Server-sent events") on top of
 * `eventsource-parser`, for the Streamable HTTP and legacy HTTP+SSE upstream transports.
 *
 * @module
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';

/** One parsed SSE event (`event`, `id`, `data`), as produced by `eventsource-parser`. */
export type { EventSourceMessage };

/** Callbacks of {@link readSseStream}. They must not throw: a throw aborts the read. */
export interface SseHandlers {
  /** One dispatched event (an event block with at least one `data:` line). */
  onEvent: (event: EventSourceMessage) => void;
  /**
   * The `id:` of every event block, including blocks without data (the MCP 2025-11-25
   * "priming" event is `id: X` + empty data). Called before `onEvent` for the same block.
   */
  onId?: (id: string) => void;
  /** A `retry:` field: the server's reconnection delay in milliseconds. */
  onRetry?: (retryMs: number) => void;
}

/** Options of {@link readSseStream}. */
export interface ReadSseOptions {
  /**
   * Bound on buffered, not yet dispatched text (one partial line plus the data of one event), in
   * characters. A stream exceeding it is abandoned with an error. Default 32 Mi characters.
   */
  maxBufferSize?: number;
}

/** Default bound of {@link ReadSseOptions.maxBufferSize}. */
export const DEFAULT_MAX_SSE_BUFFER = 32 * 1024 * 1024;

/**
 * Feeds an HTTP body (undici `Readable`, a web stream, any async iterable of bytes) through an SSE
 * parser until the body ends. UTF-8 is decoded incrementally, so multi-byte characters split
 * across chunks are handled. An event left incomplete at the end of the body is discarded, as
 * the SSE spec requires.
 *
 * @returns resolves when the body ended normally
 * @throws the body's own error (network failure, abort), or the parser's `ParseError` of type
 *   `max-buffer-size-exceeded` when the bound is exceeded
 */
export async function readSseStream(
  body: AsyncIterable<Uint8Array | string>,
  handlers: SseHandlers,
  options: ReadSseOptions = {},
): Promise<void> {
  const decoder = new TextDecoder();
  let overflow: Error | undefined;
  const parser = createParser({
    onEvent: handlers.onEvent,
    onId: handlers.onId,
    onRetry: handlers.onRetry,
    onError: (error) => {
      // Unknown fields and bad `retry:` values are ignored, as browsers do; only the bound is fatal.
      if (error.type === 'max-buffer-size-exceeded') overflow = error;
    },
    maxBufferSize: options.maxBufferSize ?? DEFAULT_MAX_SSE_BUFFER,
  });
  for await (const chunk of body) {
    parser.feed(typeof chunk === 'string' ? chunk : decoder.decode(chunk, { stream: true }));
    if (overflow !== undefined) throw overflow;
  }
  const tail = decoder.decode();
  if (tail.length > 0) parser.feed(tail);
}
