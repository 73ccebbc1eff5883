/**
 * CEL (Common Expression Language, https://github.com/google/cel-spec) for guardrail `deny` and
 * `denyResult` expressions: compiled and type-checked once at load, evaluated per request.
 *
 * Library: `@marcbachmann/cel-js`. Of the two maintained ECMAScript implementations it was
 * weighed against `@bufbuild/cel`: both follow the cel-spec language definition and are tested
 * against its cases; `@bufbuild/cel` represents values as protobuf messages (it depends on
 * `@bufbuild/protobuf`), so every activation would be converted to protobuf values per request,
 * while `@marcbachmann/cel-js` has no dependencies, evaluates plain JavaScript objects as CEL maps
 * and lists directly (no conversion of the arguments or the result), type-checks declared
 * variables at compile time and exposes the parsed AST, which the `tools/list` filter needs to
 * tell argument-free expressions apart.
 *
 * Variables (both declared as `map`, fields are dynamic):
 * - `mcp.method` (string), `mcp.server` (string, `""` when the request has no target server),
 *   `mcp.tool` (the upstream's own tool name for `tools/call`, else `""`), `mcp.arguments` (map,
 *   `{}` when the request has none), `mcp.params` (the request's params, `{}` when none),
 *   `mcp.result` (result phase only: the upstream's result object);
 * - `principal.id`, `principal.name` (the subject), `principal.kind` (`token`, `oauth`,
 *   `proxy-header`, `anonymous`), `principal.scopes` (list, `[]` when none), `principal.claims`
 *   (map, `{}` when none).
 *
 * Evaluation errors (a missing field such as `mcp.arguments.message` when the call has no
 * `message`, a type mismatch at run time) are not a match: the expression did not say "deny",
 * so the request goes on; each one is counted (`action="error"`) and logged at debug. Write
 * `has(mcp.arguments.message) && …` to make the intent explicit.
 *
 * @module
 */
import { Environment, type TypeCheckResult } from '@marcbachmann/cel-js';
import type { Principal } from '../auth/principal.js';

/** The CEL environment every guardrail expression is compiled in. */
const ENV = new Environment({ limits: { maxAstNodes: 10_000, maxDepth: 100 } })
  .registerVariable('mcp', 'map')
  .registerVariable('principal', 'map');

/** Longest accepted expression, in characters. */
export const MAX_EXPRESSION_LENGTH = 8192;

/** The variables of one evaluation. */
export interface CelActivation {
  mcp: McpVariable;
  principal: PrincipalVariable;
}

/** The `mcp` variable. */
export interface McpVariable {
  method: string;
  server: string;
  tool: string;
  arguments: unknown;
  params: unknown;
  result?: unknown;
}

/** The `principal` variable. */
export interface PrincipalVariable {
  readonly id: string;
  readonly name: string;
  readonly kind: string;
  readonly scopes: readonly string[];
  readonly claims: Readonly<Record<string, unknown>>;
}

/** A compiled, type-checked expression. */
export interface CompiledCel {
  /** The source text. */
  readonly source: string;
  /**
   * Evaluates the expression.
   *
   * @returns true only when the expression evaluates to the boolean `true`
   * @throws the library's `EvaluationError` for evaluation errors (missing keys, …)
   */
  readonly test: (activation: CelActivation) => boolean;
  /**
   * True when the expression reads `mcp.arguments`, `mcp.params` or `mcp.result` (or uses `mcp`
   * as a whole): it cannot be decided from the caller and the tool alone.
   */
  readonly readsPayload: boolean;
}

/**
 * Why `source` is not a usable guardrail expression, or undefined when it is: a syntax error, an
 * unknown variable, a type error, or a type other than `bool`.
 */
export function celProblem(source: string): string | undefined {
  if (source.length > MAX_EXPRESSION_LENGTH) return `expression longer than ${MAX_EXPRESSION_LENGTH} characters`;
  let checked: TypeCheckResult;
  try {
    checked = ENV.check(source);
  } catch (err) {
    return `invalid CEL: ${firstLine(err)}`;
  }
  if (!checked.valid) return `invalid CEL: ${firstLine(checked.error)}`;
  if (checked.type !== 'bool' && checked.type !== 'dyn') {
    return `the expression must evaluate to a bool, not ${String(checked.type)}`;
  }
  return undefined;
}

/**
 * Compiles a guardrail expression, once.
 *
 * @throws Error with the message of {@link celProblem} when the expression is not usable
 */
export function compileCel(source: string): CompiledCel {
  const problem = celProblem(source);
  if (problem !== undefined) throw new Error(problem);
  const evaluate = ENV.parse(source);
  return {
    source,
    test: (activation) => {
      // An evaluation error (a missing field) is an ordinary outcome here, possibly on every
      // request: the library throws it, and capturing its stack trace would cost more than the
      // evaluation. The error's message is all that is used.
      const limit = Error.stackTraceLimit;
      Error.stackTraceLimit = 0;
      try {
        return evaluate(activation) === true;
      } finally {
        Error.stackTraceLimit = limit;
      }
    },
    readsPayload: readsPayload(evaluate.ast),
  };
}

const principalVars = new WeakMap<Principal, PrincipalVariable>();
const EMPTY_LIST: readonly string[] = Object.freeze([]);
const EMPTY_MAP: Readonly<Record<string, unknown>> = Object.freeze({});

/** The `principal` variable for `p`, built once per principal object. */
export function principalVariable(p: Principal): PrincipalVariable {
  let v = principalVars.get(p);
  if (v === undefined) {
    v = {
      id: p.id,
      name: p.subject,
      kind: p.kind,
      scopes: p.scopes ?? EMPTY_LIST,
      claims: p.claims ?? EMPTY_MAP,
    };
    principalVars.set(p, v);
  }
  return v;
}

/** Fields of `mcp` that carry the request's or the result's payload. */
const PAYLOAD_FIELDS = new Set(['arguments', 'params', 'result']);

interface AstNode {
  op: string;
  args: unknown;
}

function isNode(v: unknown): v is AstNode {
  return typeof v === 'object' && v !== null && typeof (v as { op?: unknown }).op === 'string';
}

/**
 * Walks the parsed AST: `mcp.<field>` (`.`, `.?` and `[]` with a constant key) is a payload read
 * when the field is in {@link PAYLOAD_FIELDS}; any other use of `mcp` (passed whole, indexed by
 * an expression) counts as one too, conservatively.
 */
function readsPayload(ast: unknown): boolean {
  const visit = (node: AstNode): boolean => {
    const args = node.args;
    if (node.op === 'id') return args === 'mcp';
    if ((node.op === '.' || node.op === '.?' || node.op === '[]' || node.op === '[?]') && Array.isArray(args)) {
      const [target, key] = args as unknown[];
      if (isNode(target) && target.op === 'id' && target.args === 'mcp') {
        const field = typeof key === 'string' ? key : isNode(key) && key.op === 'value' ? key.args : undefined;
        return typeof field !== 'string' || PAYLOAD_FIELDS.has(field);
      }
    }
    return children(args).some(visit);
  };
  return isNode(ast) ? visit(ast) : true;
}

function children(args: unknown): AstNode[] {
  if (!Array.isArray(args)) return isNode(args) ? [args] : [];
  const out: AstNode[] = [];
  for (const a of args) {
    if (isNode(a)) out.push(a);
    else if (Array.isArray(a)) out.push(...children(a));
  }
  return out;
}

function firstLine(err: unknown): string {
  const message = err instanceof Error ? err.message : String(err);
  return message.split('\n')[0] ?? message;
}
