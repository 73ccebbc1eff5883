/**
 * Composition of pipeline stages: order, synchronous fast path, promise chaining, refusals, and
 * the empty pipeline (every phase absent).
 */
import { describe, expect, it } from 'vitest';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import { GatewayError } from '../../../src/errors.js';
import { composePipeline, EMPTY_PIPELINE, type RequestContext, type Stage } from '../../../src/pipeline/stage.js';
import type { JsonObject, JsonRpcRequest, JsonRpcSuccess } from '../../../src/protocol/jsonrpc.js';

const req: JsonRpcRequest = { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: 'x' } };
const ctx = (): RequestContext => ({ principal: ANONYMOUS, method: 'tools/call' });

/** A stage that appends its name to `log` in each phase, optionally after a tick. */
function recorder(name: string, log: string[], async = false): Stage {
  const step = (phase: string) => {
    if (!async) {
      log.push(`${name}:${phase}`);
      return undefined;
    }
    return new Promise<void>((resolve) =>
      setImmediate(() => {
        log.push(`${name}:${phase}`);
        resolve();
      }),
    );
  };
  return { name, request: () => step('request'), result: () => step('result') };
}

describe('composePipeline', () => {
  it('gives the empty pipeline, with every phase absent, for no stages or stages without hooks', () => {
    expect(composePipeline([])).toBe(EMPTY_PIPELINE);
    expect(composePipeline([{ name: 'inert' }])).toBe(EMPTY_PIPELINE);
    expect(EMPTY_PIPELINE.request).toBeUndefined();
    expect(EMPTY_PIPELINE.result).toBeUndefined();
    expect(EMPTY_PIPELINE.listTools).toBeUndefined();
  });

  it('runs synchronous stages in order and returns undefined (no promise)', () => {
    const log: string[] = [];
    const p = composePipeline([recorder('a', log), recorder('b', log), recorder('c', log)]);
    expect(p.request!(ctx(), req)).toBeUndefined();
    expect(p.result!(ctx(), req, { jsonrpc: '2.0', id: 1, result: {} })).toBeUndefined();
    expect(log).toEqual(['a:request', 'b:request', 'c:request', 'a:result', 'b:result', 'c:result']);
  });

  it('waits for a stage that returns a promise before running the next, keeping the order', async () => {
    const log: string[] = [];
    const p = composePipeline([recorder('a', log), recorder('b', log, true), recorder('c', log)]);
    const pending = p.request!(ctx(), req);
    expect(pending).toBeInstanceOf(Promise);
    expect(log).toEqual(['a:request']); // c has not run before b settled
    await pending;
    expect(log).toEqual(['a:request', 'b:request', 'c:request']);
  });

  it('stops at the first refusal, synchronous or asynchronous, and runs no later stage', async () => {
    const log: string[] = [];
    const refuse: Stage = {
      name: 'deny',
      request: () => {
        throw new GatewayError('SWB_ERR_AUTH_FORBIDDEN', 'no');
      },
    };
    const sync = composePipeline([recorder('a', log), refuse, recorder('c', log)]);
    expect(() => sync.request!(ctx(), req)).toThrow('no');
    expect(log).toEqual(['a:request']);

    log.length = 0;
    const rejecting: Stage = { name: 'later', request: () => Promise.reject(new Error('async no')) };
    const asyncP = composePipeline([recorder('a', log, true), rejecting, recorder('c', log)]);
    await expect(asyncP.request!(ctx(), req)).rejects.toThrow('async no');
    expect(log).toEqual(['a:request']);
  });

  it('lets a result stage change the response in place for the next one', () => {
    const upper: Stage = {
      name: 'upper',
      result: (_c, _r, res) => {
        const result = res.result as { text: string };
        result.text = result.text.toUpperCase();
      },
    };
    const suffix: Stage = {
      name: 'suffix',
      result: (_c, _r, res) => {
        (res.result as { text: string }).text += '!';
      },
    };
    const res: JsonRpcSuccess = { jsonrpc: '2.0', id: 1, result: { text: 'hi' } };
    expect(composePipeline([upper, suffix]).result!(ctx(), req, res)).toBeUndefined();
    expect(res.result).toEqual({ text: 'HI!' });
  });

  it('applies tools/list filters in order and only composes the phases some stage has', () => {
    const tools: JsonObject[] = [{ name: 'a' }, { name: 'b' }, { name: 'c' }];
    const dropA: Stage = { name: 'drop-a', listTools: (_c, t) => t.filter((x) => x.name !== 'a') };
    const dropC: Stage = { name: 'drop-c', listTools: (_c, t) => t.filter((x) => x.name !== 'c') };
    const p = composePipeline([dropA, dropC]);
    expect(p.request).toBeUndefined();
    expect(p.result).toBeUndefined();
    expect(p.listTools!(ctx(), tools, () => undefined)).toEqual([{ name: 'b' }]);
    expect(p.stages.map((s) => s.name)).toEqual(['drop-a', 'drop-c']);
  });
});
