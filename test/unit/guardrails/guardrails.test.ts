import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import { Guardrails as GuardrailsSchema } from '../../../src/config/schema.js';
import { GatewayError } from '../../../src/errors.js';
import { createGuardrails, type Guardrails } from '../../../src/guardrails/guardrails.js';
import { PinRegistry } from '../../../src/guardrails/pins.js';
import { silentLogger } from '../../../src/observability/logger.js';
import type { GuardrailAction } from '../../../src/observability/metrics.js';
import type { RequestContext, Route, Stage } from '../../../src/pipeline/stage.js';
import type { JsonObject, JsonRpcRequest, JsonRpcResponse } from '../../../src/protocol/jsonrpc.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';

const ALICE: Principal = { id: 'token:alice', kind: 'token', subject: 'alice', permissions: ['*'] };
const BOB: Principal = { id: 'token:bob', kind: 'token', subject: 'bob', permissions: ['*'] };

const closers: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of closers.splice(0).reverse()) await c();
});

function build(input: unknown[], pins?: PinRegistry): { g: Guardrails; actions: string[] } {
  const actions: string[] = [];
  const g = createGuardrails({
    guardrails: GuardrailsSchema.parse(input),
    logger: silentLogger(),
    onAction: (name: string, action: GuardrailAction) => actions.push(`${name}:${action}`),
    pins,
  });
  closers.push(() => g.close());
  return { g, actions };
}

function call(tool: string, args: JsonObject, principal = ALICE, server = 'echo'): [RequestContext, JsonRpcRequest] {
  const ctx: RequestContext = { principal, method: 'tools/call', server, tool, route: { server, name: tool } };
  return [
    ctx,
    { jsonrpc: '2.0', id: 1, method: 'tools/call', params: { name: `${server}__${tool}`, arguments: args } },
  ];
}

function refusal(fn: () => unknown): GatewayError {
  try {
    fn();
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('not refused');
}

async function asyncRefusal(p: unknown): Promise<GatewayError> {
  try {
    await p;
  } catch (err) {
    if (err instanceof GatewayError) return err;
    throw err;
  }
  throw new Error('not refused');
}

function only(g: Guardrails): Stage {
  expect(g.stages).toHaveLength(1);
  return g.stages[0]!;
}

describe('deny / denyResult', () => {
  it('refuses a matching request with SWB_ERR_GUARDRAIL_DENIED naming the guardrail, and sets ctx.stage', () => {
    const { g, actions } = build([
      { name: 'no-rm', match: { server: 'echo', tool: 'echo' }, deny: 'mcp.arguments.message.contains("rm -rf")' },
    ]);
    const stage = only(g);
    expect(stage.name).toBe('guardrail:no-rm');
    const [ctx, req] = call('echo', { message: 'rm -rf /' });
    const err = refusal(() => stage.request!(ctx, req));
    expect(err.code).toBe('SWB_ERR_GUARDRAIL_DENIED');
    expect(err.status).toBe(200);
    expect(err.jsonRpcCode).toBe(-31001);
    expect(err.message).toBe('denied by guardrail no-rm');
    expect(err.toJsonRpcError().data).toEqual({ code: 'SWB_ERR_GUARDRAIL_DENIED', guardrail: 'no-rm' });
    expect(ctx.stage).toBe('guardrail:no-rm');
    expect(actions).toEqual(['no-rm:deny']);
  });

  it('lets through what its match does not select, and what the expression does not deny', () => {
    const { g } = build([
      { name: 'no-rm', match: { server: 'echo', tool: 'echo' }, deny: 'mcp.arguments.message.contains("rm -rf")' },
    ]);
    const stage = only(g);
    const [other, otherReq] = call('shell', { message: 'rm -rf /' });
    expect(stage.request!(other, otherReq)).toBeUndefined();
    const [ctx, req] = call('echo', { message: 'ls' });
    expect(stage.request!(ctx, req)).toBeUndefined();
    expect(ctx.stage).toBeUndefined();
  });

  it('treats an evaluation error as no match and counts it as error', () => {
    const { g, actions } = build([{ name: 'no-rm', deny: 'mcp.arguments.message.contains("rm -rf")' }]);
    const [ctx, req] = call('echo', {});
    expect(only(g).request!(ctx, req)).toBeUndefined();
    // initialize: no arguments at all.
    expect(
      only(g).request!({ principal: ALICE, method: 'initialize' }, { jsonrpc: '2.0', id: 0, method: 'initialize' }),
    ).toBeUndefined();
    expect(actions).toEqual(['no-rm:error', 'no-rm:error']);
  });

  it('refuses a result with denyResult, reading mcp.result', () => {
    const { g } = build([{ name: 'no-errors', denyResult: 'mcp.result.isError == true' }]);
    const stage = only(g);
    expect('request' in stage).toBe(false);
    const [ctx, req] = call('echo', {});
    const ok: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: { content: [], isError: false } };
    expect(stage.result!(ctx, req, ok)).toBeUndefined();
    const bad: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: { content: [], isError: true } };
    expect(refusal(() => stage.result!(ctx, req, bad)).data).toEqual({ guardrail: 'no-errors' });
  });

  it('hides tools from tools/list only for argument-free expressions, cached per list and principal', () => {
    const { g } = build([{ name: 'not-for-b', deny: 'principal.name == "bob" && mcp.tool == "echo"' }]);
    const stage = only(g);
    const tools: JsonObject[] = [{ name: 'echo__echo' }, { name: 'echo__ping' }, { name: 'unknown' }];
    let lookups = 0;
    const routeOf = (t: JsonObject): Route | undefined => {
      lookups++;
      const [server, name] = String(t.name).split('__');
      return name === undefined ? undefined : { server: server!, name };
    };
    const forBob = stage.listTools!({ principal: BOB }, tools, routeOf);
    expect(forBob.map((t) => t.name)).toEqual(['echo__ping', 'unknown']);
    expect(stage.listTools!({ principal: BOB }, tools, routeOf)).toBe(forBob);
    // Nothing removed: the same array (the session then sends its cached serialisation).
    expect(stage.listTools!({ principal: ALICE }, tools, routeOf)).toBe(tools);
    expect(lookups).toBe(6);
    expect(stage.listTools!({ principal: ALICE }, tools, routeOf)).toBe(tools);
    expect(lookups).toBe(6);

    const { g: payload } = build([{ name: 'p', deny: 'mcp.arguments.x == 1' }]);
    expect('listTools' in only(payload)).toBe(false);
  });
});

describe('redact', () => {
  it('redacts arguments in place before the upstream sees them, counting one redact per phase', () => {
    const { g, actions } = build([{ name: 'secrets', redact: ['secrets'] }]);
    const [ctx, req] = call('echo', {
      message: 'key AKIAIOSFODNN7EXAMPLE',
      nested: { list: ['sk_live_4eC39HqLyjWDarjtT1zdp7dc'] },
    });
    expect(only(g).request!(ctx, req)).toBeUndefined();
    expect(req.params!.arguments).toEqual({
      message: 'key [REDACTED:aws-access-key]',
      nested: { list: ['[REDACTED:stripe-key]'] },
    });
    expect(actions).toEqual(['secrets:redact']);
    expect(ctx.stage).toBeUndefined();
    const [clean, cleanReq] = call('echo', { message: 'hello' });
    expect(only(g).request!(clean, cleanReq)).toBeUndefined();
    expect(actions).toEqual(['secrets:redact']);
  });

  it('redacts result text, embedded resources, structuredContent, resource contents and prompt messages, not binary data', () => {
    const { g } = build([{ name: 'pii', redact: ['pii', { pattern: 'secret-\\d+', replacement: '***' }] }]);
    const [ctx, req] = call('echo', {});
    const result: JsonObject = {
      content: [
        { type: 'text', text: 'mail jane@example.com' },
        { type: 'resource', resource: { uri: 'file:///a', text: 'secret-42' } },
        { type: 'image', data: 'jane@example.com', mimeType: 'image/png' },
      ],
      structuredContent: { who: ['jane@example.com'] },
      contents: [
        { uri: 'file:///b', text: 'call +1 555 123 4567' },
        { uri: 'file:///c', blob: 'jane@example.com' },
      ],
      messages: [{ role: 'user', content: { type: 'text', text: 'secret-7' } }],
    };
    expect(only(g).result!(ctx, req, { jsonrpc: '2.0', id: 1, result })).toBeUndefined();
    expect(result).toEqual({
      content: [
        { type: 'text', text: 'mail [REDACTED:email]' },
        { type: 'resource', resource: { uri: 'file:///a', text: '***' } },
        { type: 'image', data: 'jane@example.com', mimeType: 'image/png' },
      ],
      structuredContent: { who: ['[REDACTED:email]'] },
      contents: [
        { uri: 'file:///b', text: 'call [REDACTED:phone]' },
        { uri: 'file:///c', blob: 'jane@example.com' },
      ],
      messages: [{ role: 'user', content: { type: 'text', text: '***' } }],
    });
  });
});

describe('webhook', () => {
  async function guardServer(answer: (body: JsonObject) => { status: number; body: string } | undefined) {
    const bodies: JsonObject[] = [];
    const server: Server = createServer((req, res) => {
      let text = '';
      req.on('data', (c: Buffer) => (text += c.toString()));
      req.on('end', () => {
        const body = JSON.parse(text) as JsonObject;
        bodies.push(body);
        const a = answer(body);
        if (a === undefined) return; // hang
        res.writeHead(a.status, { 'content-type': 'application/json' });
        res.end(a.body);
      });
    });
    server.listen(0, '127.0.0.1');
    await once(server, 'listening');
    closers.push(
      () =>
        new Promise<void>((r) => {
          server.close(() => r());
          server.closeAllConnections();
        }),
    );
    return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/check`, bodies };
  }

  it('replaces arguments and results with the guard’s redacted object', async () => {
    const guard = await guardServer((b) =>
      b.phase === 'request'
        ? { status: 200, body: JSON.stringify({ allow: true, redacted: { message: 'clean' } }) }
        : {
            status: 200,
            body: JSON.stringify({ allow: true, redacted: { content: [{ type: 'text', text: 'safe' }] } }),
          },
    );
    const { g, actions } = build([{ name: 'ext', webhook: { url: guard.url } }]);
    const [ctx, req] = call('echo', { message: 'dirty' });
    await only(g).request!(ctx, req);
    expect(req.params!.arguments).toEqual({ message: 'clean' });
    const res: JsonRpcResponse = { jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'dirty' }] } };
    await only(g).result!(ctx, req, res);
    expect(res).toEqual({ jsonrpc: '2.0', id: 1, result: { content: [{ type: 'text', text: 'safe' }] } });
    expect(actions).toEqual(['ext:redact', 'ext:redact']);
  });

  it('is not asked about requests without a route (initialize, lists)', async () => {
    const guard = await guardServer(() => ({ status: 200, body: '{"allow":false}' }));
    const { g } = build([{ name: 'ext', webhook: { url: guard.url } }]);
    expect(
      only(g).request!({ principal: ALICE, method: 'tools/list' }, { jsonrpc: '2.0', id: 1, method: 'tools/list' }),
    ).toBeUndefined();
    expect(guard.bodies).toEqual([]);
  });

  it('refuses on a timeout with onError deny (SWB_ERR_GUARDRAIL_UNAVAILABLE), lets through with onError allow', async () => {
    const guard = await guardServer(() => undefined);
    const { g, actions } = build([
      { name: 'strict', webhook: { url: guard.url, timeout: '50ms', onError: 'deny' } },
      { name: 'lenient', webhook: { url: guard.url, timeout: 50, onError: 'allow' } },
    ]);
    const [ctx, req] = call('echo', { message: 'x' });
    const err = await asyncRefusal(g.stages[0]!.request!(ctx, req));
    expect(err.code).toBe('SWB_ERR_GUARDRAIL_UNAVAILABLE');
    expect(err.jsonRpcCode).toBe(-31002);
    expect(err.status).toBe(200);
    expect(err.message).toBe('guardrail strict could not decide (external guard timed out)');
    expect(err.data).toEqual({ guardrail: 'strict', reason: 'timeout' });
    expect(ctx.stage).toBe('guardrail:strict');
    const [ctx2, req2] = call('echo', { message: 'x' });
    await g.stages[1]!.request!(ctx2, req2);
    expect(ctx2.stage).toBeUndefined();
    expect(actions).toEqual(['strict:error', 'strict:deny', 'lenient:error']);
  });

  it('treats a non-2xx answer as an error', async () => {
    const guard = await guardServer(() => ({ status: 500, body: '{"allow":true}' }));
    const { g } = build([{ name: 'ext', webhook: { url: guard.url } }]);
    const [ctx, req] = call('echo', {});
    expect((await asyncRefusal(only(g).request!(ctx, req))).code).toBe('SWB_ERR_GUARDRAIL_UNAVAILABLE');
  });
});

describe('pinTools', () => {
  async function registry(): Promise<{ pins: PinRegistry; db: Database }> {
    const db = await openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger(), env: {} });
    await db.migrate();
    const pins = new PinRegistry({ store: db.toolPins!, logger: silentLogger() });
    closers.push(async () => {
      await pins.close();
      await db.close();
    });
    pins.observe('echo', [{ name: 'echo', description: 'v1' }, { name: 'ping' }]);
    pins.observe('echo', [{ name: 'echo', description: 'v2' }, { name: 'ping' }]);
    return { pins, db };
  }

  it('block: refuses calls to a changed tool and hides it from tools/list', async () => {
    const { pins } = await registry();
    const { g } = build([{ name: 'pins', pinTools: 'block' }], pins);
    const [ctx, req] = call('echo', {});
    const err = refusal(() => only(g).request!(ctx, req));
    expect(err.data).toEqual({ guardrail: 'pins', reason: expect.stringContaining('changed its definition') });
    const [ok, okReq] = call('ping', {});
    expect(only(g).request!(ok, okReq)).toBeUndefined();
    const tools = [{ name: 'echo__echo' }, { name: 'echo__ping' }];
    const routeOf = (t: JsonObject): Route => ({ server: 'echo', name: String(t.name).split('__')[1] });
    const listed = only(g).listTools!({ principal: ALICE }, tools, routeOf);
    expect(listed.map((t) => t.name)).toEqual(['echo__ping']);
    await pins.approve('echo', undefined, 'root');
    // The approval bumps the pin version: the cached filtered list is not reused.
    expect(only(g).listTools!({ principal: ALICE }, tools, routeOf)).toBe(tools);
    expect(only(g).request!(ctx, req)).toBeUndefined();
  });

  it('warn: lets calls through, counting warn', async () => {
    const { pins } = await registry();
    const { g, actions } = build([{ name: 'pins', pinTools: 'warn' }], pins);
    const [ctx, req] = call('echo', {});
    expect(only(g).request!(ctx, req)).toBeUndefined();
    expect(only(g).request!(ctx, req)).toBeUndefined();
    expect('listTools' in only(g)).toBe(false);
    expect(actions).toEqual(['pins:warn', 'pins:warn']);
  });

  it('needs a pin registry', () => {
    expect(() => build([{ name: 'pins', pinTools: 'block' }])).toThrow(/pinTools needs a database/);
  });
});
