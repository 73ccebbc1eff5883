/**
 * Server-Sent Events over `fetch()`: `EventSource` cannot send an `Authorization` header, so the
 * app reads `text/event-stream` bodies itself with `eventsource-parser` (WHATWG HTML §9.2 event
 * stream interpretation).
 *
 * @module
 */
import { createParser, type EventSourceMessage } from 'eventsource-parser';
import { errorFrom } from './api.ts';

/** Longest event (field lines included) accepted before the stream is treated as broken: 256 KiB. */
export const MAX_EVENT_BYTES = 256 * 1024;

/**
 * Feeds the events of an event-stream body to `onEvent` until it ends.
 *
 * @param maxEventBytes - longest event accepted (its characters, field lines included).
 * @throws Error when one event exceeds `maxEventBytes` (the stream is cancelled), or what
 *   `onEvent` throws.
 */
export async function readEventStream(
  body: ReadableStream<Uint8Array>,
  maxEventBytes: number,
  onEvent: (event: EventSourceMessage) => void,
): Promise<void> {
  let failure: Error | undefined;
  const parser = createParser({
    maxBufferSize: maxEventBytes,
    onEvent,
    onError(err) {
      failure = new Error(`event stream: ${err.message}`);
    },
  });
  const reader = body.getReader();
  const decoder = new TextDecoder();
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      parser.feed(decoder.decode(value, { stream: true }));
      if (failure) throw failure;
    }
  } finally {
    reader.releaseLock();
    if (failure) await body.cancel().catch(() => undefined);
  }
}

/**
 * Opens `url` with the given headers and streams its events.
 *
 * @param onOpen - called once the answer's headers arrived with status 2xx.
 * @throws ApiError for a non-2xx answer; the fetch's `AbortError` when `signal` aborts.
 */
export async function streamEvents(
  url: string,
  headers: Record<string, string>,
  signal: AbortSignal,
  onEvent: (event: EventSourceMessage) => void,
  onOpen?: () => void,
): Promise<void> {
  const res = await fetch(url, { headers: { ...headers, accept: 'text/event-stream' }, signal });
  if (!res.ok) throw await errorFrom(res);
  if (!res.body) throw new Error('the answer has no body');
  onOpen?.();
  await readEventStream(res.body, MAX_EVENT_BYTES, onEvent);
}
