/**
 * {@link ModernChannel}'s answers: the client's id restored, `resultType`, the endpoint's identity
 * and caching hints added to what the session sends (spliced in front of a plain result, merged
 * into one that sets any of them), resource-not-found moved to -32602.
 */
import { EventEmitter } from 'node:events';
import type { ServerResponse } from 'node:http';
import { describe, expect, it } from 'vitest';
import type { ClientSession } from '../../../src/gateway/client-session.js';
import type { View } from '../../../src/gateway/view.js';
import { ModernChannel } from '../../../src/http/modern-channel.js';
import type { InputParking } from '../../../src/http/modern-input.js';
import type { RequestContext } from '../../../src/pipeline/stage.js';

const SERVER_INFO = { name: 'switchboard', version: '9.9.9' };

/** The part of a ServerResponse the channel uses, recording what was written. */
class FakeResponse extends EventEmitter {
  status = 0;
  body = '';
  destroyed = false;
  writeHead(status: number): this {
    this.status = status;
    return this;
  }
  end(data?: string): void {
    this.body += data ?? '';
  }
}

function channel(method: string, principalKind: 'anonymous' | 'token' = 'anonymous') {
  const res = new FakeResponse();
  const view = { serverInfo: () => SERVER_INFO } as unknown as View;
  const meta = { principal: { kind: principalKind, id: 'p' } } as unknown as RequestContext;
  const ch = new ModernChannel(
    res as unknown as ServerResponse,
    { id: 's1' } as unknown as ClientSession,
    'client-7',
    '~1',
    { method, name: 'x', capabilities: {}, logLevel: undefined },
    view,
    meta,
    {} as InputParking<ModernChannel>,
  );
  return {
    ch,
    res,
    meta,
    answer: () =>
      JSON.parse(res.body) as { id: unknown; result?: Record<string, unknown>; error?: Record<string, unknown> },
  };
}

describe('ModernChannel answers', () => {
  it('adds resultType and the identity in front of a plain result, under the client’s id', () => {
    const { ch, res, answer } = channel('tools/call');
    ch.send({ jsonrpc: '2.0', id: '~1', result: { content: [{ type: 'text', text: 'hi' }] } });
    expect(res.status).toBe(200);
    expect(answer()).toEqual({
      jsonrpc: '2.0',
      id: 'client-7',
      result: {
        resultType: 'complete',
        _meta: { 'io.modelcontextprotocol/serverInfo': SERVER_INFO },
        content: [{ type: 'text', text: 'hi' }],
      },
    });
    expect(ch.closed).toBe(true);
  });

  it('answers an empty result with the fields alone', () => {
    const { ch, answer } = channel('tools/call');
    ch.send({ jsonrpc: '2.0', id: '~1', result: {} });
    expect(answer().result).toEqual({
      resultType: 'complete',
      _meta: { 'io.modelcontextprotocol/serverInfo': SERVER_INFO },
    });
  });

  it('keeps the upstream’s resultType and _meta, with the identity set over it', () => {
    const { ch, answer } = channel('tools/call');
    ch.send({
      jsonrpc: '2.0',
      id: '~1',
      result: {
        resultType: 'input_required',
        _meta: { trace: 't', 'io.modelcontextprotocol/serverInfo': { name: 'upstream' } },
        requestState: 'r',
      },
    });
    expect(answer().result).toEqual({
      resultType: 'input_required',
      _meta: { trace: 't', 'io.modelcontextprotocol/serverInfo': SERVER_INFO },
      requestState: 'r',
    });
  });

  it('gives resources/read the upstream’s caching hints, else ttlMs 0 and the principal’s scope', () => {
    const plain = channel('resources/read', 'token');
    plain.ch.send({ jsonrpc: '2.0', id: '~1', result: { contents: [] } });
    expect(plain.answer().result).toMatchObject({ ttlMs: 0, cacheScope: 'private', contents: [] });
    const hinted = channel('resources/read');
    hinted.ch.send({ jsonrpc: '2.0', id: '~1', result: { contents: [], ttlMs: 5000 } });
    expect(hinted.answer().result).toMatchObject({ ttlMs: 5000, cacheScope: 'public', resultType: 'complete' });
  });

  it('puts the list hints in front of a list serialised once', () => {
    const { ch, answer } = channel('tools/list');
    ch.sendResult('~1', '{"tools":[{"name":"a"}]}');
    expect(answer()).toEqual({
      jsonrpc: '2.0',
      id: 'client-7',
      result: {
        resultType: 'complete',
        _meta: { 'io.modelcontextprotocol/serverInfo': SERVER_INFO },
        ttlMs: 60_000,
        cacheScope: 'public',
        tools: [{ name: 'a' }],
      },
    });
  });

  it('answers resource-not-found with -32602 and ignores another request’s answer', () => {
    const { ch, res, meta, answer } = channel('resources/read');
    ch.send({ jsonrpc: '2.0', id: '~2', result: {} });
    expect(res.body).toBe('');
    ch.send({ jsonrpc: '2.0', id: '~1', error: { code: -32002, message: 'Resource not found' } });
    expect(answer().error).toEqual({ code: -32602, message: 'Resource not found' });
    expect(meta.rpcError).toBe(-32602);
  });
});
