/**
 * Reading a Streamable HTTP answer of "Try it": JSON or SSE, the matching id, and the size bound.
 */
import { describe, expect, it } from 'vitest';
import { answerOf, MAX_ANSWER_BYTES } from '../src/mcp.ts';

describe('answerOf', () => {
  it('reads a JSON answer', async () => {
    const res = new Response('{"jsonrpc":"2.0","id":2,"result":{"content":[]}}', {
      headers: { 'content-type': 'application/json' },
    });
    expect(await answerOf(res, 2)).toEqual({ jsonrpc: '2.0', id: 2, result: { content: [] } });
  });

  it('takes the message event whose id matches from an SSE answer, skipping notifications', async () => {
    const body = [
      'event: message\ndata: {"jsonrpc":"2.0","method":"notifications/progress","params":{}}\n\n',
      'event: message\ndata: {"jsonrpc":"2.0","id":7,"result":{"other":true}}\n\n',
      'event: message\nid: 3\ndata: {"jsonrpc":"2.0","id":3,"result":{"isError":true}}\n\n',
    ].join('');
    const res = new Response(body, { headers: { 'content-type': 'text/event-stream' } });
    expect(await answerOf(res, 3)).toEqual({ jsonrpc: '2.0', id: 3, result: { isError: true } });
  });

  it('fails when the stream ends without the answer', async () => {
    const res = new Response('event: message\ndata: {"jsonrpc":"2.0","id":9,"result":{}}\n\n', {
      headers: { 'content-type': 'text/event-stream' },
    });
    await expect(answerOf(res, 1)).rejects.toThrow(/without an answer/);
  });

  it(`refuses a JSON answer larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`, async () => {
    const big = `{"jsonrpc":"2.0","id":1,"result":{"text":"${'z'.repeat(MAX_ANSWER_BYTES)}"}}`;
    const res = new Response(big, { headers: { 'content-type': 'application/json' } });
    await expect(answerOf(res, 1)).rejects.toThrow(/larger than 8 MiB/);
  });

  it(`refuses an SSE answer larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`, async () => {
    const big = `event: message\ndata: {"jsonrpc":"2.0","id":1,"result":{"text":"${'z'.repeat(MAX_ANSWER_BYTES)}"}}\n\n`;
    const res = new Response(big, { headers: { 'content-type': 'text/event-stream' } });
    await expect(answerOf(res, 1)).rejects.toThrow();
  });
});
