import { describe, expect, it } from 'vitest';
import { ServerConfig } from '../../../src/config/schema.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { createConcurrencyLimiter } from '../../../src/policy/concurrency.js';
import type { JsonRpcResponse } from '../../../src/protocol/jsonrpc.js';
import { createUpstreamCredentials } from '../../../src/upstream/credentials.js';
import {
  composeDispatch,
  type ConnectionBinding,
  type Dispatch,
  type OutboundHeaders,
  type UpstreamInterceptor,
  type UpstreamRequest,
} from '../../../src/upstream/dispatch.js';
import { createConcurrencyInterceptor } from '../../../src/upstream/interceptors/concurrency.js';
import { createUpstreamInterceptors } from '../../../src/upstream/interceptors/index.js';
import { createOutboundHeadersInterceptor } from '../../../src/upstream/interceptors/outbound-headers.js';
import { createRetryInterceptor } from '../../../src/upstream/interceptors/retry.js';
import type { SlotContext } from '../../../src/upstream/types.js';

const OK: JsonRpcResponse = { jsonrpc: '2.0', id: 0, result: {} };
const EXPIRED: JsonRpcResponse = {
  jsonrpc: '2.0',
  id: 0,
  error: { code: -33025, message: 'gone', data: { code: 'SWB_ERR_UPSTREAM_SESSION_EXPIRED' } },
};

/** A request as the interceptors see it, recording what they did to it. */
class TestRequest implements UpstreamRequest {
  readonly ctx: SlotContext;
  readonly method = 'tools/call';
  readonly params = undefined;
  readonly caller = undefined;
  readonly probe: boolean;
  attempt = 0;
  cancelled = false;
  headers: OutboundHeaders | undefined = undefined;
  readonly connection = undefined;
  settled: JsonRpcResponse[] = [];
  readonly bound: ConnectionBinding = { principal: undefined, authHeaders: {} };

  constructor(ctx: Partial<SlotContext> = {}, probe = false) {
    this.ctx = { sessionId: 's1', principalId: 'p1', ...ctx };
    this.probe = probe;
  }

  binding(): ConnectionBinding | undefined {
    return this.bound;
  }

  reattempt(): void {
    this.headers = undefined;
    this.attempt++;
  }

  settle(response: JsonRpcResponse): JsonRpcResponse {
    this.settled.push(response);
    return response;
  }
}

function server(entry: unknown): ServerConfig {
  return ServerConfig.parse(entry);
}

describe('composeDispatch', () => {
  it('returns the final dispatch itself when there are no interceptors', () => {
    const last: Dispatch = () => Promise.resolve(OK);
    expect(composeDispatch([], last)).toBe(last);
  });

  it('runs interceptors outermost first, each around the next', async () => {
    const seen: string[] = [];
    const tag =
      (name: string): UpstreamInterceptor =>
      (next) =>
      async (req) => {
        seen.push(`${name} in`);
        const res = await next(req);
        seen.push(`${name} out`);
        return res;
      };
    const dispatch = composeDispatch([tag('a'), tag('b')], () => {
      seen.push('send');
      return Promise.resolve(OK);
    });
    await dispatch(new TestRequest());
    expect(seen).toEqual(['a in', 'b in', 'send', 'b out', 'a out']);
  });
});

describe('createUpstreamInterceptors', () => {
  const logger = silentLogger();

  it('gives a stdio server without maxInFlight or tracing the retry step alone', () => {
    const path = createUpstreamInterceptors({ name: 'fs', config: server({ command: 'node' }), logger });
    expect(path.interceptors).toHaveLength(1);
    expect(path.connectHeaders).toBeUndefined();
  });

  it('adds no outbound-headers step to a remote server with nothing to send', () => {
    const config = server({ url: 'http://127.0.0.1:1/mcp', headers: { Authorization: 'Bearer static' } });
    const path = createUpstreamInterceptors({ name: 'r', config, logger });
    expect(path.interceptors).toHaveLength(1);
    expect(path.connectHeaders).toBeUndefined();
  });

  it('adds concurrency before retry and outbound headers after it for a remote server with a credential', async () => {
    const config = server({ url: 'http://127.0.0.1:1/mcp', auth: { type: 'bearer', token: 't' }, maxInFlight: 1 });
    const path = createUpstreamInterceptors({ name: 'r', config, logger });
    expect(path.interceptors).toHaveLength(3);
    expect(await path.connectHeaders!(undefined)).toEqual({ authorization: 'Bearer t' });
    let sent: OutboundHeaders | undefined;
    const dispatch = composeDispatch(path.interceptors!, (req) => {
      sent = req.headers;
      return Promise.resolve(OK);
    });
    const req = new TestRequest();
    await dispatch(req);
    expect(sent).toEqual({ authorization: 'Bearer t' });
    expect(req.settled).toEqual([OK]);
  });
});

describe('retry step', () => {
  it('sends a call once more when the upstream lost the session, and settles only the final answer', async () => {
    const answers = [EXPIRED, OK];
    const dispatch = composeDispatch([createRetryInterceptor(silentLogger())], () => Promise.resolve(answers.shift()!));
    const req = new TestRequest();
    expect(await dispatch(req)).toBe(OK);
    expect(req.attempt).toBe(1);
    expect(req.settled).toEqual([OK]);
  });

  it('does not retry twice', async () => {
    const dispatch = composeDispatch([createRetryInterceptor(silentLogger())], () => Promise.resolve(EXPIRED));
    const req = new TestRequest();
    expect(await dispatch(req)).toBe(EXPIRED);
    expect(req.attempt).toBe(1);
    expect(req.settled).toEqual([EXPIRED]);
  });

  it('does not retry a cancelled call', async () => {
    const dispatch = composeDispatch([createRetryInterceptor(silentLogger())], () => Promise.resolve(EXPIRED));
    const req = new TestRequest();
    req.cancelled = true;
    await dispatch(req);
    expect(req.attempt).toBe(0);
  });
});

describe('concurrency step', () => {
  it('answers SWB_ERR_UPSTREAM_BUSY without calling the upstream when no slot is free and the queue is full', async () => {
    const limiter = createConcurrencyLimiter({ maxInFlight: 1, maxQueue: 0, queueTimeoutMs: 0 });
    let release!: () => void;
    let calls = 0;
    const dispatch = composeDispatch([createConcurrencyInterceptor(limiter)], () => {
      calls++;
      return new Promise<JsonRpcResponse>((resolve) => (release = () => resolve(OK)));
    });
    const first = dispatch(new TestRequest());
    const refused = new TestRequest();
    const answer = await dispatch(refused);
    expect((answer as { error: { data: { code: string } } }).error.data.code).toBe('SWB_ERR_UPSTREAM_BUSY');
    expect(refused.settled).toEqual([answer]);
    expect(calls).toBe(1);
    release();
    await first;
    expect(limiter.inFlight).toBe(0);
  });

  it('lets a health probe through however busy the upstream is', async () => {
    const limiter = createConcurrencyLimiter({ maxInFlight: 1, maxQueue: 0, queueTimeoutMs: 0 });
    const pending = new Promise<JsonRpcResponse>(() => undefined);
    let calls = 0;
    const dispatch = composeDispatch([createConcurrencyInterceptor(limiter)], () => {
      calls++;
      return calls === 1 ? pending : Promise.resolve(OK);
    });
    void dispatch(new TestRequest());
    expect(await dispatch(new TestRequest({}, true))).toBe(OK);
  });
});

describe('outbound-headers step', () => {
  const credentials = createUpstreamCredentials(
    { type: 'bearer', token: 'op' },
    { serverName: 'r', logger: silentLogger() },
  );

  it('sets static credential headers synchronously and remembers them on the binding', () => {
    let sent: OutboundHeaders | undefined;
    const dispatch = composeDispatch([createOutboundHeadersInterceptor({ serverName: 'r', credentials })], (req) => {
      sent = req.headers;
      return Promise.resolve(OK);
    });
    const req = new TestRequest();
    void dispatch(req);
    expect(sent).toEqual({ authorization: 'Bearer op' });
    expect(req.bound.authHeaders).toEqual({ authorization: 'Bearer op' });
  });

  it('keeps a header an outer step set (traceparent) after the credential', () => {
    let sent: OutboundHeaders | undefined;
    const dispatch = composeDispatch([createOutboundHeadersInterceptor({ serverName: 'r', credentials })], (req) => {
      sent = req.headers;
      return Promise.resolve(OK);
    });
    const req = new TestRequest();
    req.headers = { traceparent: '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01' };
    void dispatch(req);
    expect(Object.keys(sent!)).toEqual(['authorization', 'traceparent']);
  });
});
