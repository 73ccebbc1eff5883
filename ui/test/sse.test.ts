/**
 * The app's event-stream reader: events split across chunks, and the bound on one event.
 */
import { describe, expect, it } from 'vitest';
import { MAX_EVENT_BYTES, readEventStream } from '../src/sse.ts';

function streamOf(chunks: string[]): { body: ReadableStream<Uint8Array>; cancelled: () => boolean } {
  let cancelled = false;
  const encoder = new TextEncoder();
  let i = 0;
  const body = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (i < chunks.length) controller.enqueue(encoder.encode(chunks[i++]));
      else controller.close();
    },
    cancel() {
      cancelled = true;
    },
  });
  return { body, cancelled: () => cancelled };
}

describe('readEventStream', () => {
  it('delivers events whose lines and UTF-8 characters are split across chunks', async () => {
    const events: Array<{ event?: string; data: string }> = [];
    const euro = '€';
    const bytes = new TextEncoder().encode(`event: log\ndata: {"msg":"${euro}"}\n\n`);
    // Split inside the three-byte UTF-8 sequence of "€".
    const cut = bytes.indexOf(0xe2) + 1;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        controller.enqueue(new TextEncoder().encode(': keep-alive\n\nevent: request\nda'));
        controller.enqueue(new TextEncoder().encode('ta: {"a":1}\n\n'));
        controller.enqueue(bytes.slice(0, cut));
        controller.enqueue(bytes.slice(cut));
        controller.close();
      },
    });
    await readEventStream(body, MAX_EVENT_BYTES, (e) => events.push({ event: e.event, data: e.data }));
    expect(events).toEqual([
      { event: 'request', data: '{"a":1}' },
      { event: 'log', data: '{"msg":"€"}' },
    ]);
  });

  it('fails and cancels the stream when one event exceeds the bound', async () => {
    const big = 'x'.repeat(64 * 1024);
    const { body, cancelled } = streamOf(['data: ', big, big, big, '\n\n']);
    const seen: string[] = [];
    await expect(readEventStream(body, 100 * 1024, (e) => seen.push(e.data))).rejects.toThrow(/event stream/);
    expect(seen).toEqual([]);
    expect(cancelled()).toBe(true);
  });

  it('accepts an event just under the bound', async () => {
    const data = 'y'.repeat(1000);
    const { body } = streamOf([`data: ${data}\n\n`]);
    const seen: string[] = [];
    await readEventStream(body, 1100, (e) => seen.push(e.data));
    expect(seen).toEqual([data]);
  });
});
