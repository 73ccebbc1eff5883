/**
 * The tasks extension (`io.modelcontextprotocol/tasks`, MCP 2026-07-28 extensions) passed through
 * to the upstream that owns each task.
 *
 * A task-supporting upstream answers a `tools/call` with a `CreateTaskResult` (`resultType:
 * "task"`, a flat `taskId`, `status`, `createdAt`, `lastUpdatedAt`, `ttlMs`), and the client
 * follows it with `tasks/get` (the task, with the tool's result or error inlined once terminal),
 * `tasks/update` (`inputResponses` for a task in `input_required`) and `tasks/cancel`, each naming
 * the task by `params.taskId` (tasks extension §Methods). Everything but the task id passes
 * unchanged.
 *
 * The id the client sees is the gateway's own ({@link TaskIds}): `swt1.{server}.{task}.{mac}`, the
 * owning server's name and the upstream's task id (Base64url), and an HMAC-SHA256 (per-process
 * secret) over the principal, the server and the task id. So the gateway routes `tasks/*` to the
 * member that created the task without a table, two members' task ids cannot collide, and a task
 * is reachable only by the principal it was created for: every principal looks alike to the
 * upstream (the gateway calls it), so its own ids are not a capability to hand out. An id that
 * does not verify is an unknown task (-32602, as the extension specifies for unknown ids).
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { scopeOf } from '../auth/rbac.js';
import { GatewayError } from '../errors.js';
import { TASKS_EXTENSION } from '../protocol/era.js';
import type { JsonObject, JsonRpcRequest, JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { RequestContext, Route } from '../pipeline/stage.js';
import type { ClientCapabilities } from '../upstream/connection.js';
import type { View, ViewMember } from './view.js';

/** The methods of the tasks extension that name a task (`params.taskId`), routed to its owner. */
export const TASK_METHODS: ReadonlySet<string> = new Set(['tasks/get', 'tasks/update', 'tasks/cancel']);

const PREFIX = 'swt1.';
/** 128 bits of HMAC-SHA256: forging one is as hard as guessing a random 128-bit id. */
const MAC_BYTES = 16;

/** What a gateway task id names. */
export interface TaskRef {
  /** The owning upstream's name. */
  readonly server: string;
  /** The upstream's own task id. */
  readonly taskId: string;
}

/**
 * Mints and checks the task ids the gateway gives clients (see the module comment). Stateless:
 * nothing is stored per task, so an id stays valid as long as the upstream keeps the task, in the
 * process that minted it (the secret is per process).
 */
export class TaskIds {
  readonly #secret: Buffer;

  /** @param secret - HMAC key; default 32 random bytes. */
  constructor(secret: Buffer = randomBytes(32)) {
    this.#secret = secret;
  }

  /** The id the client sees for `taskId` of upstream `server`, bound to `principalId`. */
  wrap(principalId: string, server: string, taskId: string): string {
    const s = Buffer.from(server, 'utf8').toString('base64url');
    const t = Buffer.from(taskId, 'utf8').toString('base64url');
    return `${PREFIX}${s}.${t}.${this.#mac(principalId, s, t).toString('base64url')}`;
  }

  /**
   * The server and upstream task id a client's id names, when the id is well formed and was
   * minted for `principalId` by this process; `undefined` otherwise (forged, altered, another
   * principal's, or no gateway id at all).
   */
  unwrap(principalId: string, id: string): TaskRef | undefined {
    if (!id.startsWith(PREFIX)) return undefined;
    const parts = id.slice(PREFIX.length).split('.');
    if (parts.length !== 3) return undefined;
    const [s, t, mac] = parts as [string, string, string];
    const given = Buffer.from(mac, 'base64url');
    if (given.length !== MAC_BYTES || !timingSafeEqual(given, this.#mac(principalId, s, t))) return undefined;
    return {
      server: Buffer.from(s, 'base64url').toString('utf8'),
      taskId: Buffer.from(t, 'base64url').toString('utf8'),
    };
  }

  #mac(principalId: string, server: string, taskId: string): Buffer {
    // The two encoded parts contain no '\n'; the principal's id is hashed as is, last.
    return createHmac('sha256', this.#secret)
      .update(`${server}\n${taskId}\n${principalId}`)
      .digest()
      .subarray(0, MAC_BYTES);
  }
}

/** True when `caps` declares the tasks extension (`extensions["io.modelcontextprotocol/tasks"]`). */
export function declaresTasks(caps: ClientCapabilities | undefined): boolean {
  const ext = caps?.extensions;
  return typeof ext === 'object' && ext !== null && (ext as JsonObject)[TASKS_EXTENSION] !== undefined;
}

/**
 * Routes a `tasks/get`, `tasks/update` or `tasks/cancel` to the member owning the task. Sets
 * `ctx.server` and `ctx.route` (`name`: the upstream's task id).
 *
 * @param caps - The capabilities the client declared for this request (a modern request's
 *   `_meta`) or at `initialize`
 * @returns the member and the upstream's own task id
 * @throws GatewayError `SWB_ERR_PROTOCOL_MISSING_CAPABILITY` (-32021, `data.requiredCapabilities`)
 *   when the client did not declare the tasks extension (tasks extension §Capability Negotiation;
 *   basic §`_meta` Missing Required Capabilities); `SWB_ERR_ROUTE_UNKNOWN_TASK` (-32602) for an
 *   id that is not a task of this principal on a member of this view within its scope
 */
export function routeTask(
  view: View,
  req: JsonRpcRequest,
  ctx: RequestContext,
  ids: TaskIds,
  caps: ClientCapabilities | undefined,
): { readonly member: ViewMember; readonly name: string } {
  if (!declaresTasks(caps)) {
    throw new GatewayError(
      'SWB_ERR_PROTOCOL_MISSING_CAPABILITY',
      `Missing required client capability: extensions["${TASKS_EXTENSION}"] (needed for ${req.method})`,
      { data: { requiredCapabilities: { extensions: { [TASKS_EXTENSION]: {} } } } },
    );
  }
  const id = req.params?.taskId;
  const ref = typeof id === 'string' ? ids.unwrap(ctx.principal.id, id) : undefined;
  const member = ref === undefined ? undefined : view.members.find((m) => m.upstream.name === ref.server);
  if (ref === undefined || member === undefined || !scopeOf(ctx.principal).server(ref.server)) {
    throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_TASK', `Unknown task: ${String(id)}`);
  }
  ctx.server = ref.server;
  ctx.route = { server: ref.server, name: ref.taskId } satisfies Route;
  return { member, name: ref.taskId };
}

/**
 * Replaces the upstream's task id in a response with the gateway's: the `taskId` of a
 * `CreateTaskResult` answering `tools/call` (`resultType: "task"`) and of the task `tasks/get`
 * answers. Anything else is left as it is.
 */
export function exposeTaskId(
  ids: TaskIds,
  method: string,
  principalId: string,
  server: string,
  response: JsonRpcResponse,
): void {
  if (!('result' in response)) return;
  const result = response.result;
  const taskId = result.taskId;
  if (typeof taskId !== 'string') return;
  if (method === 'tasks/get' || (method === 'tools/call' && result.resultType === 'task'))
    result.taskId = ids.wrap(principalId, server, taskId);
}
