import { describe, expect, it } from 'vitest';
import { ANONYMOUS, type Principal } from '../../../src/auth/principal.js';
import { isGatewayError } from '../../../src/errors.js';
import { exposeTaskId, routeTask, TaskIds } from '../../../src/gateway/tasks.js';
import { View, type ViewMember } from '../../../src/gateway/view.js';
import type { RequestContext } from '../../../src/pipeline/stage.js';
import type { JsonRpcRequest, JsonRpcResponse, JsonRpcSuccess } from '../../../src/protocol/jsonrpc.js';
import type { Upstream } from '../../../src/upstream/upstream.js';

const TASKS = 'io.modelcontextprotocol/tasks';
const WITH_TASKS = { extensions: { [TASKS]: {} } };

const alice: Principal = { id: 'alice', kind: 'token', subject: 'alice', permissions: ['*'] };
const bob: Principal = { id: 'bob', kind: 'token', subject: 'bob', permissions: ['*'] };

function member(name: string): ViewMember {
  const upstream = {
    name,
    catalogVersion: 0,
    capabilities: { tools: {}, extensions: { [TASKS]: {} } },
    initializeResult: undefined,
    catalog: { tools: [], prompts: [], resources: [], resourceTemplates: [] },
  } as unknown as Upstream;
  const pass = (n: string) => n;
  return { upstream, tools: pass, prompts: pass, resources: pass };
}

function aggregate(...names: string[]): View {
  return new View({
    name: 'default',
    kind: 'aggregate',
    members: names.map(member),
    separator: '__',
    gatewayVersion: '1',
  });
}

function request(method: string, taskId: unknown): JsonRpcRequest {
  return { jsonrpc: '2.0', id: 1, method, params: { taskId } };
}

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (err) {
    return isGatewayError(err) ? err.code : 'not a GatewayError';
  }
  return undefined;
}

describe('TaskIds', () => {
  const ids = new TaskIds();

  it('gives back the server and the upstream’s task id for the principal it was minted for', () => {
    const id = ids.wrap('alice', 'jobs', 'task-1');
    expect(id).not.toContain('task-1');
    expect(ids.unwrap('alice', id)).toEqual({ server: 'jobs', taskId: 'task-1' });
    // Any characters survive (ids are the upstream's to choose).
    const odd = ids.wrap('alice', 'a.b', 'x.y/ z=é');
    expect(ids.unwrap('alice', odd)).toEqual({ server: 'a.b', taskId: 'x.y/ z=é' });
  });

  it('keeps two members’ equal task ids apart', () => {
    const a = ids.wrap('alice', 'one', 'task-1');
    const b = ids.wrap('alice', 'two', 'task-1');
    expect(a).not.toBe(b);
    expect(ids.unwrap('alice', a)?.server).toBe('one');
    expect(ids.unwrap('alice', b)?.server).toBe('two');
  });

  it('refuses another principal’s id, an altered id, another process’s id and a bare upstream id', () => {
    const id = ids.wrap('alice', 'jobs', 'task-1');
    expect(ids.unwrap('bob', id)).toBeUndefined();
    const [prefix, server, , mac] = id.split('.');
    const other = Buffer.from('task-2').toString('base64url');
    expect(ids.unwrap('alice', `${prefix}.${server}.${other}.${mac}`)).toBeUndefined();
    expect(ids.unwrap('alice', new TaskIds().wrap('alice', 'jobs', 'task-1'))).toBeUndefined();
    expect(ids.unwrap('alice', 'task-1')).toBeUndefined();
    expect(ids.unwrap('alice', `${id}.extra`)).toBeUndefined();
  });
});

describe('routeTask', () => {
  const ids = new TaskIds();

  it('routes to the member that created the task with the upstream’s own id, and sets the route', () => {
    const view = aggregate('one', 'two');
    const ctx: RequestContext = { principal: alice, method: 'tasks/get' };
    const hit = routeTask(view, request('tasks/get', ids.wrap('alice', 'two', 't-9')), ctx, ids, WITH_TASKS);
    expect(hit.member.upstream.name).toBe('two');
    expect(hit.name).toBe('t-9');
    expect(ctx.server).toBe('two');
    expect(ctx.route).toEqual({ server: 'two', name: 't-9' });
  });

  it('answers MissingRequiredClientCapability, naming the extension, when the client did not declare it', () => {
    const view = aggregate('one');
    const ctx: RequestContext = { principal: alice, method: 'tasks/cancel' };
    let error: unknown;
    try {
      routeTask(view, request('tasks/cancel', ids.wrap('alice', 'one', 't')), ctx, ids, {});
    } catch (err) {
      error = err;
    }
    expect(isGatewayError(error) && error.code).toBe('SWB_ERR_PROTOCOL_MISSING_CAPABILITY');
    expect(isGatewayError(error) && error.jsonRpcCode).toBe(-32021);
    expect(isGatewayError(error) && error.data).toEqual({ requiredCapabilities: { extensions: { [TASKS]: {} } } });
    expect(codeOf(() => routeTask(view, request('tasks/get', 'x'), ctx, ids, undefined))).toBe(
      'SWB_ERR_PROTOCOL_MISSING_CAPABILITY',
    );
  });

  it('treats another principal’s task, a forged id and a server outside the view or scope as unknown', () => {
    const view = aggregate('one');
    const ctx = (principal: Principal): RequestContext => ({ principal, method: 'tasks/get' });
    const route = (principal: Principal, taskId: unknown) => () =>
      routeTask(view, request('tasks/get', taskId), ctx(principal), ids, WITH_TASKS);
    expect(codeOf(route(bob, ids.wrap('alice', 'one', 't')))).toBe('SWB_ERR_ROUTE_UNKNOWN_TASK');
    expect(codeOf(route(alice, 't'))).toBe('SWB_ERR_ROUTE_UNKNOWN_TASK');
    expect(codeOf(route(alice, 42))).toBe('SWB_ERR_ROUTE_UNKNOWN_TASK');
    expect(codeOf(route(alice, ids.wrap('alice', 'gone', 't')))).toBe('SWB_ERR_ROUTE_UNKNOWN_TASK');
    const scoped: Principal = { ...alice, servers: ['other'] };
    expect(codeOf(route(scoped, ids.wrap('alice', 'one', 't')))).toBe('SWB_ERR_ROUTE_UNKNOWN_TASK');
    expect(codeOf(route(ANONYMOUS, ids.wrap('anonymous', 'one', 't')))).toBeUndefined();
  });
});

describe('exposeTaskId', () => {
  const ids = new TaskIds();
  const result = (r: Record<string, unknown>): JsonRpcSuccess => ({ jsonrpc: '2.0', id: 1, result: r });

  it('replaces the task id of a CreateTaskResult and of tasks/get with the gateway’s', () => {
    const created = result({ resultType: 'task', taskId: 'up-1', status: 'working' });
    exposeTaskId(ids, 'tools/call', 'alice', 'jobs', created);
    const exposed = created.result.taskId as string;
    expect(ids.unwrap('alice', exposed)).toEqual({ server: 'jobs', taskId: 'up-1' });
    const got = result({ resultType: 'complete', taskId: 'up-1', status: 'completed' });
    exposeTaskId(ids, 'tasks/get', 'alice', 'jobs', got);
    expect(got.result.taskId).toBe(exposed);
  });

  it('leaves a tool’s own result alone, even one with a taskId field, and errors', () => {
    const plain = result({ resultType: 'complete', taskId: 'mine', content: [] });
    exposeTaskId(ids, 'tools/call', 'alice', 'jobs', plain);
    expect(plain.result.taskId).toBe('mine');
    const error: JsonRpcResponse = { jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'x' } };
    exposeTaskId(ids, 'tasks/get', 'alice', 'jobs', error);
    expect(error).toEqual({ jsonrpc: '2.0', id: 1, error: { code: -32602, message: 'x' } });
  });
});
