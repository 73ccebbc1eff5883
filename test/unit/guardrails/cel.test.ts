import { describe, expect, it } from 'vitest';
import type { Principal } from '../../../src/auth/principal.js';
import {
  celProblem,
  compileCel,
  MAX_EXPRESSION_LENGTH,
  principalVariable,
  type CelActivation,
} from '../../../src/guardrails/cel.js';

const ALICE: Principal = {
  id: 'oauth:https://issuer#alice',
  kind: 'oauth',
  subject: 'alice',
  permissions: ['servers.use'],
  scopes: ['mcp:read'],
  claims: { email: 'alice@example.com', groups: ['eng'] },
};

function activation(mcp: Partial<CelActivation['mcp']> = {}, principal: Principal = ALICE): CelActivation {
  return {
    mcp: { method: 'tools/call', server: 'echo', tool: 'echo', arguments: {}, params: {}, ...mcp },
    principal: principalVariable(principal),
  };
}

describe('compileCel', () => {
  it('evaluates the documented expressions against the request', () => {
    const rm = compileCel('mcp.arguments.message.contains("rm -rf")');
    expect(rm.test(activation({ arguments: { message: 'x; rm -rf /' } }))).toBe(true);
    expect(rm.test(activation({ arguments: { message: 'ls' } }))).toBe(false);
    const b = compileCel('principal.name == "bar-b" && mcp.tool == "echo"');
    const barB: Principal = { id: 'proxy:bar-b', kind: 'proxy-header', subject: 'bar-b', permissions: [] };
    expect(b.test(activation({}, barB))).toBe(true);
    expect(b.test(activation({ tool: 'ping' }, barB))).toBe(false);
    expect(b.test(activation())).toBe(false);
  });

  it('exposes principal id, kind, scopes and claims', () => {
    const e = compileCel(
      'principal.kind == "oauth" && "mcp:read" in principal.scopes && principal.claims.email.endsWith("@example.com") && principal.id.startsWith("oauth:")',
    );
    expect(e.test(activation())).toBe(true);
    const anon: Principal = { id: 'anonymous', kind: 'anonymous', subject: 'anonymous', permissions: ['*'] };
    // No scopes/claims: empty list and map, so `in` is false rather than an error.
    expect(compileCel('"mcp:read" in principal.scopes').test(activation({}, anon))).toBe(false);
  });

  it('compares JSON numbers from arguments with CEL int literals', () => {
    expect(compileCel('mcp.arguments.count > 3').test(activation({ arguments: { count: 5 } }))).toBe(true);
    expect(compileCel('mcp.arguments.count > 3').test(activation({ arguments: { count: 2 } }))).toBe(false);
  });

  it('throws an evaluation error for a missing field, which the guardrail treats as no match', () => {
    const e = compileCel('mcp.arguments.message.contains("rm -rf")');
    expect(() => e.test(activation({ arguments: {} }))).toThrow(/message/);
    // has() makes the intent explicit and never throws.
    expect(compileCel('has(mcp.arguments.message)').test(activation({ arguments: {} }))).toBe(false);
  });

  it('sees mcp.result in the result phase', () => {
    const e = compileCel('mcp.result.isError == true');
    expect(e.test(activation({ result: { isError: true } }))).toBe(true);
    expect(e.test(activation({ result: { isError: false } }))).toBe(false);
  });

  it('tells expressions that read the payload from those that do not', () => {
    expect(compileCel('principal.name == "bar-b" && mcp.tool == "echo"').readsPayload).toBe(false);
    expect(compileCel('mcp.server == "echo" || mcp.method == "tools/call"').readsPayload).toBe(false);
    expect(compileCel('mcp.arguments.message == "x"').readsPayload).toBe(true);
    expect(compileCel('mcp["arguments"].x == 1').readsPayload).toBe(true);
    expect(compileCel('has(mcp.params.name)').readsPayload).toBe(true);
    expect(compileCel('mcp.result.isError == true').readsPayload).toBe(true);
    // `mcp` used whole: conservatively a payload read.
    expect(compileCel('size(mcp) > 2').readsPayload).toBe(true);
    expect(compileCel('["a"].exists(x, x in mcp.arguments)').readsPayload).toBe(true);
  });
});

describe('celProblem', () => {
  it('reports syntax errors, unknown variables, type errors and non-bool results', () => {
    expect(celProblem('mcp.arguments.(')).toMatch(/^invalid CEL: /);
    expect(celProblem('request.tool == "x"')).toMatch(/Unknown variable: request/);
    expect(celProblem('1 + "a"')).toMatch(/no such overload/);
    expect(celProblem('"a string"')).toBe('the expression must evaluate to a bool, not string');
    expect(celProblem('x'.repeat(MAX_EXPRESSION_LENGTH + 1))).toMatch(/longer than/);
    expect(celProblem('mcp.tool == "echo"')).toBeUndefined();
  });

  it('makes compileCel throw with the same message', () => {
    expect(() => compileCel('"a"')).toThrow('the expression must evaluate to a bool, not string');
  });
});

describe('principalVariable', () => {
  it('is built once per principal object', () => {
    expect(principalVariable(ALICE)).toBe(principalVariable(ALICE));
    expect(principalVariable(ALICE)).toEqual({
      id: ALICE.id,
      name: 'alice',
      kind: 'oauth',
      scopes: ['mcp:read'],
      claims: ALICE.claims,
    });
  });
});
