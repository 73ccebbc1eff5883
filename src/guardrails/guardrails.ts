/**
 * Guardrails as pipeline stages (`src/pipeline/stage.ts`): one stage per configured guardrail,
 * named `guardrail:<name>`, run in configuration order after the rate limits.
 *
 * Kinds (exactly one per guardrail, docs/guardrails.md):
 * - `deny` / `denyResult`: CEL expressions (`./cel.ts`) over the request (and the result); true
 *   refuses. A `deny` that reads no payload (`mcp.arguments`, `mcp.params`, `mcp.result`) also
 *   hides the tools it would refuse from `tools/list`.
 * - `redact`: detectors (`./redact.ts`) applied to the call's arguments before the upstream sees
 *   them and to the result's text before the client does.
 * - `webhook`: an external guard (`./webhook.ts`) asked about each routed request and result.
 * - `pinTools`: tools whose definition changed since pinned (`./pins.ts`) are refused and hidden
 *   (`block`) or reported (`warn`).
 *
 * Every refusal is `SWB_ERR_GUARDRAIL_DENIED` (or `SWB_ERR_GUARDRAIL_UNAVAILABLE` when the
 * external guard fails under `onError: deny`): a JSON-RPC error (HTTP 200) whose message and
 * `data.guardrail` name the guardrail; the stage sets `ctx.stage` to `guardrail:<name>` first, so
 * the usage log records the request as blocked with that reason.
 *
 * Cost: everything is compiled here, once per configuration. A request that no guardrail's
 * `match` selects costs one predicate call per guardrail; CEL expressions are evaluated against
 * one shared activation object filled in per evaluation (the `principal` variable is built once
 * per principal object), so they allocate nothing of their own.
 *
 * @module
 */
import type { Guardrail } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type { GuardrailAction } from '../observability/metrics.js';
import type { RequestContext, Route, Stage } from '../pipeline/stage.js';
import { compileMatch } from '../policy/rate-limit.js';
import type { JsonObject, JsonRpcRequest } from '../protocol/jsonrpc.js';
import { compileCel, principalVariable, type CelActivation, type CompiledCel } from './cel.js';
import type { PinRegistry } from './pins.js';
import { createRedactor, type Redactor } from './redact.js';
import { createWebhookClient, WebhookError, type WebhookClient } from './webhook.js';

/** Options of {@link createGuardrails}. */
export interface GuardrailsOptions {
  /** The `guardrails` list as parsed by the config schema. */
  guardrails: readonly Guardrail[];
  logger: Logger;
  /** Called for every action (metrics): `deny`, `redact`, `warn`, `error`. */
  onAction?: ((guardrail: string, action: GuardrailAction) => void) | undefined;
  /** The pin registry; required when a guardrail has `pinTools`. */
  pins?: PinRegistry | undefined;
}

/** The compiled guardrails of one configuration. */
export interface Guardrails {
  /** One stage per guardrail, in configuration order. */
  readonly stages: readonly Stage[];
  /** Closes the external guards' connection pools. */
  close(): Promise<void>;
}

/** The usage log's block reason and `ctx.stage` of a guardrail: `guardrail:<name>`. */
export function guardrailStageName(name: string): string {
  return `guardrail:${name}`;
}

/**
 * Compiles the guardrails of a configuration, once (at start and at each reload).
 *
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` for an expression or pattern that does not
 *   compile (the schema already refuses them with their path), or `pinTools` without `pins`
 */
export function createGuardrails(options: GuardrailsOptions): Guardrails {
  const clients: WebhookClient[] = [];
  const onAction = options.onAction ?? (() => undefined);
  const stages = options.guardrails.map((g, i): Stage => {
    try {
      return buildStage(g, options, onAction, clients);
    } catch (err) {
      if (err instanceof GatewayError) throw err;
      throw new GatewayError('SWB_ERR_CONFIG_INVALID', `guardrails[${i}] (${g.name}): ${(err as Error).message}`, {
        cause: err,
      });
    }
  });
  return {
    stages,
    async close() {
      await Promise.all(clients.map((c) => c.close()));
    },
  };
}

type OnAction = (guardrail: string, action: GuardrailAction) => void;

const EMPTY: JsonObject = Object.freeze({});

function buildStage(g: Guardrail, options: GuardrailsOptions, onAction: OnAction, clients: WebhookClient[]): Stage {
  const matches = compileMatch(g.match);
  const name = g.name;
  const stageName = guardrailStageName(name);
  const logger = options.logger;
  const refuse = (ctx: RequestContext, reason?: string): GatewayError => {
    ctx.stage = stageName;
    onAction(name, 'deny');
    return new GatewayError(
      'SWB_ERR_GUARDRAIL_DENIED',
      reason === undefined ? `denied by guardrail ${name}` : `denied by guardrail ${name}: ${reason}`,
      { data: reason === undefined ? { guardrail: name } : { guardrail: name, reason } },
    );
  };

  if (g.deny !== undefined || g.denyResult !== undefined) {
    const deny = g.deny === undefined ? undefined : compileCel(g.deny);
    const denyResult = g.denyResult === undefined ? undefined : compileCel(g.denyResult);
    const test = (expr: CompiledCel, activation: CelActivation): boolean => {
      try {
        return expr.test(activation);
      } catch (err) {
        // Not a match (module comment of ./cel.ts): the expression did not say "deny".
        onAction(name, 'error');
        logger.debug({ guardrail: name, err }, 'guardrail expression failed to evaluate; treated as no match');
        return false;
      } finally {
        release(activation);
      }
    };
    const stage: { -readonly [K in keyof Stage]: Stage[K] } = { name: stageName };
    if (deny !== undefined) {
      stage.request = (ctx, req) => {
        if (!matches(ctx)) return;
        if (test(deny, activation(ctx, req, undefined))) throw refuse(ctx);
      };
      if (!deny.readsPayload) stage.listTools = listFilter(g, matches, deny);
    }
    if (denyResult !== undefined) {
      stage.result = (ctx, req, res) => {
        if (!matches(ctx)) return;
        if ('result' in res && test(denyResult, activation(ctx, req, res.result))) throw refuse(ctx);
      };
    }
    return stage;
  }

  if (g.redact !== undefined) {
    const redactor = createRedactor(g.redact);
    return {
      name: stageName,
      request(ctx, req) {
        if (!matches(ctx)) return;
        const args = req.params?.arguments;
        if (typeof args !== 'object' || args === null) return;
        hits = 0;
        redactor.redactValue(args, countHit);
        if (hits > 0) onAction(name, 'redact');
      },
      result(ctx, _req, res) {
        if (!matches(ctx) || !('result' in res)) return;
        hits = 0;
        redactResult(redactor, res.result);
        if (hits > 0) onAction(name, 'redact');
      },
    };
  }

  if (g.webhook !== undefined) {
    const hook = g.webhook;
    const client = createWebhookClient({ url: hook.url, timeoutMs: hook.timeout, headers: hook.headers });
    clients.push(client);
    let lastLog = Number.NEGATIVE_INFINITY;
    const failed = (ctx: RequestContext, err: unknown): void => {
      onAction(name, 'error');
      const now = Date.now();
      if (now - lastLog >= 10_000) {
        lastLog = now;
        logger.warn(
          { guardrail: name, err, onError: hook.onError },
          `external guard of guardrail ${name} failed: ${(err as Error).message}`,
        );
      }
      if (hook.onError === 'allow') return;
      ctx.stage = stageName;
      onAction(name, 'deny');
      const kind = err instanceof WebhookError ? err.kind : 'connection';
      throw new GatewayError(
        'SWB_ERR_GUARDRAIL_UNAVAILABLE',
        `guardrail ${name} could not decide (external guard ${kind === 'timeout' ? 'timed out' : 'failed'})`,
        { data: { guardrail: name, reason: kind }, cause: err },
      );
    };
    return {
      name: stageName,
      request(ctx, req) {
        if (ctx.route === undefined || !matches(ctx)) return;
        const params = req.params ?? EMPTY;
        const args = params.arguments;
        const hasArgs = typeof args === 'object' && args !== null && !Array.isArray(args);
        return client
          .ask({
            phase: 'request',
            method: req.method,
            server: ctx.server,
            tool: ctx.tool,
            arguments: hasArgs ? args : params,
            principal: principalOf(ctx),
          })
          .then(
            (decision) => {
              if (!decision.allow) throw refuse(ctx, decision.reason);
              if (decision.redacted !== undefined && hasArgs && req.params !== undefined) {
                req.params.arguments = decision.redacted;
                onAction(name, 'redact');
              }
            },
            (err: unknown) => failed(ctx, err),
          );
      },
      result(ctx, req, res) {
        if (ctx.route === undefined || !matches(ctx) || !('result' in res)) return;
        return client
          .ask({
            phase: 'result',
            method: req.method,
            server: ctx.server,
            tool: ctx.tool,
            result: res.result,
            principal: principalOf(ctx),
          })
          .then(
            (decision) => {
              if (!decision.allow) throw refuse(ctx, decision.reason);
              if (decision.redacted !== undefined) {
                (res as { result: JsonObject }).result = decision.redacted;
                onAction(name, 'redact');
              }
            },
            (err: unknown) => failed(ctx, err),
          );
      },
    };
  }

  // pinTools
  const pins = options.pins;
  if (pins === undefined)
    throw new GatewayError('SWB_ERR_CONFIG_INVALID', `guardrail ${name}: pinTools needs a database`);
  const block = g.pinTools === 'block';
  const warned = new Set<string>();
  return {
    name: stageName,
    request(ctx) {
      if (ctx.method !== 'tools/call' || !pins.isChanged(ctx.server, ctx.tool) || !matches(ctx)) return;
      if (block) {
        throw refuse(
          ctx,
          `tool "${ctx.tool}" of server "${ctx.server}" changed its definition since it was pinned; it is blocked until an operator approves it`,
        );
      }
      onAction(name, 'warn');
      const key = `${ctx.server}\n${ctx.tool}`;
      if (!warned.has(key)) {
        warned.add(key);
        logger.warn(
          { guardrail: name, server: ctx.server, tool: ctx.tool },
          `guardrail ${name}: tool "${ctx.tool}" of server "${ctx.server}" is called although its definition changed since it was pinned`,
        );
      }
    },
    ...(block ? { listTools: pinFilter(pins, matches) } : {}),
  };
}

/** Redactions counted by {@link countHit} during one synchronous redaction pass. */
let hits = 0;
const countHit = (): void => {
  hits++;
};

/**
 * Redacts the text a client sees in a result: `content[]` text and embedded resource text
 * (tools/call), `structuredContent` (every string), `contents[].text` (resources/read) and
 * `messages[].content` (prompts/get). Binary data (`blob`, image/audio `data`) is left alone.
 */
function redactResult(redactor: Redactor, result: JsonObject): void {
  const content = result.content;
  if (Array.isArray(content)) for (const item of content) redactContent(redactor, item);
  if (result.structuredContent !== undefined) redactor.redactValue(result.structuredContent, countHit);
  const contents = result.contents;
  if (Array.isArray(contents)) for (const item of contents) redactText(redactor, item);
  const messages = result.messages;
  if (Array.isArray(messages)) {
    for (const m of messages) {
      if (typeof m === 'object' && m !== null) redactContent(redactor, (m as JsonObject).content);
    }
  }
}

function redactContent(redactor: Redactor, item: unknown): void {
  if (typeof item !== 'object' || item === null) return;
  const c = item as JsonObject;
  if (c.type === 'text') redactText(redactor, c);
  else if (c.type === 'resource') redactText(redactor, c.resource);
}

function redactText(redactor: Redactor, holder: unknown): void {
  if (typeof holder !== 'object' || holder === null) return;
  const h = holder as JsonObject;
  if (typeof h.text === 'string') {
    const r = redactor.redactString(h.text, countHit);
    if (r !== h.text) h.text = r;
  }
}

/**
 * The two activations every CEL evaluation fills in (request phase without `mcp.result`, result
 * phase with it): evaluation is synchronous and keeps no reference, so one object of each suffices
 * and a request allocates nothing for its expressions. Two objects keep both shapes stable.
 */
const REQUEST_ACTIVATION: CelActivation = {
  mcp: { method: '', server: '', tool: '', arguments: EMPTY, params: EMPTY },
  principal: { id: '', name: '', kind: '', scopes: [], claims: {} },
};
const RESULT_ACTIVATION: CelActivation = {
  mcp: { method: '', server: '', tool: '', arguments: EMPTY, params: EMPTY, result: EMPTY },
  principal: REQUEST_ACTIVATION.principal,
};

/** Drops the shared activation's references to a request's payload (nothing kept alive after it). */
function release(a: CelActivation): void {
  a.mcp.arguments = EMPTY;
  a.mcp.params = EMPTY;
  if (a.mcp.result !== undefined) a.mcp.result = EMPTY;
}

/** Fills in the shared activation for this request (and result); valid until the next call. */
function activation(ctx: RequestContext, req: JsonRpcRequest, result: JsonObject | undefined): CelActivation {
  const a = result === undefined ? REQUEST_ACTIVATION : RESULT_ACTIVATION;
  const params = req.params;
  const args = params?.arguments;
  const mcp = a.mcp;
  mcp.method = ctx.method ?? req.method;
  mcp.server = ctx.server ?? '';
  mcp.tool = ctx.tool ?? '';
  mcp.arguments = typeof args === 'object' && args !== null ? args : EMPTY;
  mcp.params = params ?? EMPTY;
  if (result !== undefined) mcp.result = result;
  a.principal = principalVariable(ctx.principal);
  return a;
}

function principalOf(ctx: RequestContext): { id: string; name: string; kind: string } {
  const p = ctx.principal;
  return { id: p.id, name: p.subject, kind: p.kind };
}

type Matches = (ctx: RequestContext) => boolean;
type ListFilter = NonNullable<Stage['listTools']>;

/** The caller's cache key: principal id, plus the client IP when the guardrail matches on it. */
function cacheKey(g: Guardrail, ctx: RequestContext): string {
  return g.match.ip === undefined ? ctx.principal.id : `${ctx.principal.id}\n${ctx.ip ?? ''}`;
}

/**
 * `tools/list` filter of an argument-free `deny`: a tool is hidden when the guardrail matches a
 * `tools/call` of it by this caller and the expression is true. Cached per list array and caller.
 */
function listFilter(g: Guardrail, matches: Matches, deny: CompiledCel): ListFilter {
  const cache = new WeakMap<JsonObject[], Map<string, JsonObject[]>>();
  return (ctx, tools, routeOf) => {
    let byCaller = cache.get(tools);
    if (byCaller === undefined) cache.set(tools, (byCaller = new Map()));
    const key = cacheKey(g, ctx);
    const cached = byCaller.get(key);
    if (cached !== undefined) return cached;
    const principal = principalVariable(ctx.principal);
    const kept = tools.filter((tool) => {
      const route = routeOf(tool);
      if (route === undefined) return true;
      const probe = callProbe(ctx, route);
      if (!matches(probe)) return true;
      try {
        return !deny.test({
          mcp: { method: 'tools/call', server: route.server, tool: route.name ?? '', arguments: EMPTY, params: EMPTY },
          principal,
        });
      } catch {
        return true;
      }
    });
    const out = kept.length === tools.length ? tools : kept;
    byCaller.set(key, out);
    return out;
  };
}

/** `tools/list` filter of `pinTools: block`: hides changed tools; cached per list, caller and pin state. */
function pinFilter(pins: PinRegistry, matches: Matches): ListFilter {
  const cache = new WeakMap<JsonObject[], { version: number; byCaller: Map<string, JsonObject[]> }>();
  return (ctx, tools, routeOf) => {
    if (!pins.anyChanged) return tools;
    let entry = cache.get(tools);
    if (entry === undefined || entry.version !== pins.version) {
      entry = { version: pins.version, byCaller: new Map() };
      cache.set(tools, entry);
    }
    const key = `${ctx.principal.id}\n${ctx.ip ?? ''}`;
    const cached = entry.byCaller.get(key);
    if (cached !== undefined) return cached;
    const kept = tools.filter((tool) => {
      const route = routeOf(tool);
      return route === undefined || !pins.isChanged(route.server, route.name) || !matches(callProbe(ctx, route));
    });
    const out = kept.length === tools.length ? tools : kept;
    entry.byCaller.set(key, out);
    return out;
  };
}

/** What a `tools/call` of `route` by this caller would look like to a `match`. */
function callProbe(ctx: RequestContext, route: Route): RequestContext {
  return { principal: ctx.principal, ip: ctx.ip, method: 'tools/call', server: route.server, tool: route.name };
}
