/**
 * The request pipeline of a client session: one typed {@link RequestContext} per JSON-RPC request
 * and an ordered list of {@link Stage}s built once from the configuration.
 *
 * A request goes through, in order: the edge (authenticate, decode, session: `http/`), route
 * resolution (once, into `ctx.route`), the request phase of every stage (rate limits, then
 * guardrails in configuration order), the upstream call (`upstream/`), the result phase of every
 * stage in the same order, then the encoder (the session's outbound channel) and the exchange
 * observers (metrics, usage log, server span: `app.ts`).
 *
 * Cost rules, because this is the hot path:
 * - An empty stage list composes to `undefined`: the session checks one field and goes on, with no
 *   closure, promise or array touched.
 * - A stage is synchronous unless it returns a promise; {@link composeRequest} runs stages in a
 *   plain loop and only chains promises from the first stage that returns one.
 *
 * @module
 */
import type { IncomingHttpHeaders } from 'node:http';
import type { Principal } from '../auth/principal.js';
import type { JsonObject, JsonRpcRequest, JsonRpcSuccess } from '../protocol/jsonrpc.js';

/** Where a request is routed: the view member's upstream and the upstream's own name for the item. */
export interface Route {
  /** The upstream server's configured name. */
  readonly server: string;
  /**
   * The upstream's own name of the tool or prompt (`tools/call`, `prompts/get`) or the upstream's
   * URI (`resources/*`), or the upstream's task id (`tasks/*`); undefined for methods without a
   * named item.
   */
  readonly name: string | undefined;
}

/**
 * Everything the gateway knows about one JSON-RPC request, from the edge to the observers. Created
 * by the edge (`http/server.ts`) per HTTP request, or by a library caller; the session fills in
 * the route and method. Fields written after creation are marked.
 */
export interface RequestContext {
  /** The request's id for log lines (`observability/request-id.ts`); absent in library use. */
  readonly reqId?: string;
  /** Who is calling (authenticated at the edge). */
  readonly principal: Principal;
  /** The client's HTTP headers (header passthrough, identity headers). */
  readonly httpHeaders?: IncomingHttpHeaders;
  /** The client's IP address (rate limits, usage log). */
  readonly ip?: string | undefined;
  /** Opaque tracing parent (a span), passed to upstream calls. */
  readonly trace?: unknown;
  /** Written by the edge: the JSON-RPC method of the request. */
  method?: string | undefined;
  /** Written by the session: the target server, when one is known. */
  server?: string | undefined;
  /** Written by the session: the upstream's own tool name, for `tools/call`. */
  tool?: string | undefined;
  /** Written by the session: the resolved route (resolved once per request). */
  route?: Route | undefined;
  /** Written by the edge: the JSON-RPC error code of the response, when it was an error. */
  rpcError?: number | undefined;
  /** Written by a stage that refused or changed the request: its name (usage log `blockReason`). */
  stage?: string | undefined;
  /**
   * Written by the edge: `modern` for a stateless MCP 2026-07-28 request (`http/modern.ts`);
   * absent for the 2025 era (metrics label `era`).
   */
  era?: 'modern' | undefined;
  /**
   * Written by the upstream call: the identity the upstream knows the caller by, when the
   * gateway used a per-user upstream credential (`oauth2-user`: the upstream subject). Never a
   * token. Usage log `upstreamSubject`, trace attribute `switchboard.upstream.subject`.
   */
  upstreamSubject?: string | undefined;
}

/**
 * One step of the pipeline. Every hook is optional; a stage with none does nothing.
 *
 * Refusing: a hook throws (or its promise rejects with) a `GatewayError`; the session answers the
 * request with it (an HTTP status before the response has started when the code's family is HTTP,
 * such as 429 for a rate limit; a JSON-RPC error otherwise) and nothing reaches the upstream (or,
 * in the result phase, the client). The stage should set `ctx.stage` to its name first.
 */
export interface Stage {
  /** Shown in logs, metrics and errors (`data.guardrail` for guardrails). */
  readonly name: string;
  /**
   * Request phase, after routing and before the upstream call. May change `req.params` in place
   * (redaction). Returns nothing to go on at once, a promise to wait for.
   */
  request?(ctx: RequestContext, req: JsonRpcRequest): void | Promise<void>;
  /**
   * Result phase, for requests that were forwarded to an upstream, before the response is sent.
   * May change `res.result` in place. Not called for error responses.
   */
  result?(ctx: RequestContext, req: JsonRpcRequest, res: JsonRpcSuccess): void | Promise<void>;
  /**
   * Filters a `tools/list` page for this caller; returns the array itself when nothing is removed
   * (the session then sends its cached serialisation). Tools carry their exposed names;
   * `serverOf` gives each one's route.
   */
  listTools?(ctx: RequestContext, tools: JsonObject[], routeOf: (tool: JsonObject) => Route | undefined): JsonObject[];
}

/** A composed request phase: `undefined` when it finished synchronously, else a promise. */
export type RequestPhase = (ctx: RequestContext, req: JsonRpcRequest) => Promise<void> | undefined;
/** A composed result phase: `undefined` when it finished synchronously, else a promise. */
export type ResultPhase = (ctx: RequestContext, req: JsonRpcRequest, res: JsonRpcSuccess) => Promise<void> | undefined;
/** A composed `tools/list` filter. */
export type ListToolsPhase = (
  ctx: RequestContext,
  tools: JsonObject[],
  routeOf: (tool: JsonObject) => Route | undefined,
) => JsonObject[];

/** The composed pipeline a session runs; each phase is absent when no stage has that hook. */
export interface Pipeline {
  readonly request: RequestPhase | undefined;
  readonly result: ResultPhase | undefined;
  readonly listTools: ListToolsPhase | undefined;
  /** The stages, in order (for logs and `switchboard check`). */
  readonly stages: readonly Stage[];
}

/** The pipeline with no stages: every phase absent. */
export const EMPTY_PIPELINE: Pipeline = Object.freeze({
  request: undefined,
  result: undefined,
  listTools: undefined,
  stages: [],
});

/**
 * Composes stages into a {@link Pipeline}, once (at start and at each reload).
 *
 * @param stages - in order; stages without any hook are dropped
 * @returns {@link EMPTY_PIPELINE} for an empty list
 */
export function composePipeline(stages: readonly Stage[]): Pipeline {
  const live = stages.filter((s) => s.request !== undefined || s.result !== undefined || s.listTools !== undefined);
  if (live.length === 0) return EMPTY_PIPELINE;
  return {
    request: composeRequest(live),
    result: composeResult(live),
    listTools: composeListTools(live),
    stages: live,
  };
}

/**
 * The request hooks of `stages` as one function: runs them in order, synchronously until one
 * returns a promise, then the rest after it settles. A throw (or rejection) stops the chain.
 */
export function composeRequest(stages: readonly Stage[]): RequestPhase | undefined {
  const hooks = stages.filter((s) => s.request !== undefined);
  if (hooks.length === 0) return undefined;
  if (hooks.length === 1) {
    const only = hooks[0]!;
    return (ctx, req) => only.request!(ctx, req) ?? undefined;
  }
  const run = (ctx: RequestContext, req: JsonRpcRequest, from: number): Promise<void> | undefined => {
    for (let i = from; i < hooks.length; i++) {
      const pending = hooks[i]!.request!(ctx, req);
      if (pending !== undefined) return pending.then(() => run(ctx, req, i + 1));
    }
    return undefined;
  };
  return (ctx, req) => run(ctx, req, 0);
}

/** The result hooks of `stages` as one function; same rules as {@link composeRequest}. */
export function composeResult(stages: readonly Stage[]): ResultPhase | undefined {
  const hooks = stages.filter((s) => s.result !== undefined);
  if (hooks.length === 0) return undefined;
  const run = (
    ctx: RequestContext,
    req: JsonRpcRequest,
    res: JsonRpcSuccess,
    from: number,
  ): Promise<void> | undefined => {
    for (let i = from; i < hooks.length; i++) {
      const pending = hooks[i]!.result!(ctx, req, res);
      if (pending !== undefined) return pending.then(() => run(ctx, req, res, i + 1));
    }
    return undefined;
  };
  return (ctx, req, res) => run(ctx, req, res, 0);
}

/** The `tools/list` filters of `stages` applied in order. */
export function composeListTools(stages: readonly Stage[]): ListToolsPhase | undefined {
  const hooks = stages.filter((s) => s.listTools !== undefined);
  if (hooks.length === 0) return undefined;
  return (ctx, tools, routeOf) => {
    let out = tools;
    for (const h of hooks) out = h.listTools!(ctx, out, routeOf);
    return out;
  };
}
