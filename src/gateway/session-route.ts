/**
 * Routing and authorization of a client request on a view: which member (upstream) serves the
 * tool, prompt, resource or completion it names, under which upstream name, and whether the
 * principal may reach it. Resolved once per request, before the pipeline's stages run.
 *
 * An item outside the principal's scope is answered as unknown, as it is absent from the lists;
 * the request is then marked refused by the `scope` stage (`ctx.stage`), so the usage log counts
 * it as blocked, not as an error.
 *
 * @module
 */
import { requirePermission, scopeOf, type Scope } from '../auth/rbac.js';
import { GatewayError } from '../errors.js';
import type { JsonObject, JsonRpcRequest } from '../protocol/jsonrpc.js';
import type { RequestContext, Route } from '../pipeline/stage.js';
import type { Upstream } from '../upstream/upstream.js';
import type { View, ViewMember } from './view.js';

/** What a request resolved to: the view member and the upstream's own name (or URI). */
export interface Hit {
  readonly member: ViewMember;
  readonly name: string;
}

/**
 * Resolves and authorizes the request's target, once: the server and the upstream's own name
 * of a tool, prompt or resource. Sets `ctx.server`, `ctx.tool` and `ctx.route`.
 *
 * @returns the view member and upstream name for `tools/call`, `prompts/get` and `resources/*`;
 *   undefined for other methods
 * @throws GatewayError `SWB_ERR_ROUTE_UNKNOWN_TOOL` / `_PROMPT` / `_RESOURCE` for a name that is
 *   not exposed to this principal (out-of-scope items are unknown, as they are absent from
 *   lists); `SWB_ERR_AUTH_FORBIDDEN` (`data.permission`) for `tools/call` without `tools.execute`
 */
export function routeRequest(view: View, req: JsonRpcRequest, ctx: RequestContext): Hit | undefined {
  const params = req.params;
  if (view.kind === 'single') ctx.server = view.members[0]?.upstream.name;
  let hit: Hit | undefined;
  switch (req.method) {
    case 'tools/call': {
      const name = params?.name;
      hit = typeof name === 'string' ? (view.resolveTool(name) ?? passThrough(view, name, 'tools')) : undefined;
      if (!hit || !scopeOf(ctx.principal).tool(hit.member.upstream.name, hit.name, view.separator)) {
        if (typeof name === 'string' && view.kind === 'single') ctx.tool = name;
        if (hit) refusedByScope(ctx, hit);
        throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_TOOL', `Unknown tool: ${String(name)}`);
      }
      ctx.tool = hit.name;
      requirePermission(ctx.principal, 'tools.execute');
      break;
    }
    case 'prompts/get': {
      const name = params?.name;
      hit = typeof name === 'string' ? (view.resolvePrompt(name) ?? passThrough(view, name, 'prompts')) : undefined;
      if (!hit || !scopeOf(ctx.principal).server(hit.member.upstream.name)) {
        if (hit) refusedByScope(ctx, hit);
        throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_PROMPT', `Unknown prompt: ${String(name)}`);
      }
      break;
    }
    case 'resources/read':
    case 'resources/subscribe':
    case 'resources/unsubscribe':
      hit = resolveResource(view, params, scopeOf(ctx.principal), ctx);
      break;
    default:
      return undefined;
  }
  const server = hit.member.upstream.name;
  ctx.server = server;
  ctx.route = { server, name: hit.name } satisfies Route;
  return hit;
}

/** The fields of a request's context a scope refusal writes. */
type ScopeMarks = Pick<RequestContext, 'stage' | 'server'>;

/** The stage name of a refusal by the principal's scope (usage log `blockReason`). */
export const SCOPE_STAGE = 'scope';

/**
 * Marks the request refused by the principal's scope: it names an item that exists but that the
 * principal may not reach. The server is recorded; the client still sees "unknown".
 */
function refusedByScope(ctx: ScopeMarks, hit: Hit): void {
  ctx.stage = SCOPE_STAGE;
  ctx.server = hit.member.upstream.name;
}

/**
 * On a single-server view, a name missing from the cached catalog is forwarded unchanged so the
 * upstream answers it (faithful pass-through) — unless the server's filters hide that name
 * (denied, or renamed away).
 */
function passThrough(view: View, name: string, kind: 'tools' | 'prompts'): Hit | undefined {
  if (view.kind !== 'single') return undefined;
  const member = view.members[0];
  return member && member[kind](name) === name ? { member, name } : undefined;
}

function resolveResource(view: View, params: JsonObject | undefined, scope: Scope, ctx: ScopeMarks): Hit {
  const uri = params?.uri;
  const hit = typeof uri === 'string' ? view.resolveResource(uri) : undefined;
  if (!hit || !scope.server(hit.member.upstream.name)) {
    if (hit) refusedByScope(ctx, hit);
    throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_RESOURCE', `Resource not found: ${String(uri)}`, { data: { uri } });
  }
  return hit;
}

/**
 * The upstream that completes a `completion/complete` request: the owner of the prompt
 * (`ref/prompt`, whose `name` is rewritten in place to the upstream's own) or of the resource
 * template (`ref/resource`).
 *
 * @throws GatewayError `SWB_ERR_ROUTE_UNKNOWN_PROMPT` / `SWB_ERR_ROUTE_UNKNOWN_RESOURCE` for a
 *   reference not exposed to this principal; `SWB_ERR_PROTOCOL_INVALID_PARAMS` for another `ref`
 */
export function routeCompletion(view: View, params: JsonObject, scope: Scope, ctx: ScopeMarks): Upstream {
  const ref = params.ref as JsonObject | undefined;
  if (ref?.type === 'ref/prompt' && typeof ref.name === 'string') {
    const hit = view.resolvePrompt(ref.name);
    if (!hit || !scope.server(hit.member.upstream.name)) {
      if (hit) refusedByScope(ctx, hit);
      throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_PROMPT', `Unknown prompt: ${ref.name}`);
    }
    ref.name = hit.name;
    return hit.member.upstream;
  }
  if (ref?.type === 'ref/resource' && typeof ref.uri === 'string') {
    const member = view.resolveTemplate(ref.uri);
    if (!member || !scope.server(member.upstream.name)) {
      if (member) refusedByScope(ctx, { member, name: ref.uri });
      throw new GatewayError('SWB_ERR_ROUTE_UNKNOWN_RESOURCE', `Unknown resource template: ${ref.uri}`);
    }
    return member.upstream;
  }
  throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_PARAMS', 'completion/complete needs ref/prompt or ref/resource');
}
