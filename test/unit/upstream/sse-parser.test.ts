import { describe, expect, it } from 'vitest';
import { readSseStream, type EventSourceMessage } from '../../../src/upstream/sse-parser.js';

async function* chunks(parts: (string | Uint8Array)[]): AsyncIterable<Uint8Array | string> {
  for (const p of parts) yield p;
}

async function read(parts: (string | Uint8Array)[], maxBufferSize?: number) {
  const events: EventSourceMessage[] = [];
  const ids: string[] = [];
  const retries: number[] = [];
  await readSseStream(
    chunks(parts),
    { onEvent: (e) => events.push(e), onId: (id) => ids.push(id), onRetry: (ms) => retries.push(ms) },
    maxBufferSize === undefined ? {} : { maxBufferSize },
  );
  return { events, ids, retries };
}

describe('readSseStream', () => {
  it('parses events split across chunks, with types, ids and multi-line data', async () => {
    const { events } = await read(['event: mess', 'age\nid: 7\ndata: {"a":', '1}\n\n', 'data: l1\ndata: l2\n\n']);
    expect(events).toEqual([
      { event: 'message', id: '7', data: '{"a":1}' },
      { event: undefined, id: undefined, data: 'l1\nl2' },
    ]);
  });

  it('reports the id and retry of a data-less priming event (MCP 2025-11-25)', async () => {
    const { events, ids, retries } = await read(['id: p1\nretry: 250\ndata: \n\n', ': keep-alive\n\n']);
    expect(ids).toEqual(['p1']);
    expect(retries).toEqual([250]);
    expect(events).toEqual([{ event: undefined, id: 'p1', data: '' }]);
  });

  it('decodes UTF-8 split inside a multi-byte character', async () => {
    const bytes = new TextEncoder().encode('data: ✓ ok\n\n');
    const { events } = await read([bytes.subarray(0, 7), bytes.subarray(7)]);
    expect(events[0]?.data).toBe('✓ ok');
  });

  it('accepts CRLF line endings and drops an incomplete final event', async () => {
    const { events } = await read(['data: a\r\n\r\n', 'data: never finished']);
    expect(events.map((e) => e.data)).toEqual(['a']);
  });

  it('throws when an event exceeds the buffer bound', async () => {
    await expect(read(['data: ' + 'x'.repeat(5000)], 1000)).rejects.toMatchObject({ type: 'max-buffer-size-exceeded' });
  });

  it('propagates the body error', async () => {
    async function* failing(): AsyncIterable<string> {
      yield 'data: a\n\n';
      throw new Error('socket hang up');
    }
    const events: EventSourceMessage[] = [];
    await expect(readSseStream(failing(), { onEvent: (e) => events.push(e) })).rejects.toThrow('socket hang up');
    expect(events).toHaveLength(1);
  });
});
