/**
 * Guardrails (src/guardrails; docs/guardrails.md): CEL deny rules, redaction, an external guard
 * (webhook) and tool pinning, applied to the requests each one's `match` selects.
 *
 * @module
 */
import { z } from 'zod';
import { celProblem } from '../../guardrails/cel.js';
import { redactPatternProblem } from '../../guardrails/redact.js';
import { ruleMatchProblems } from '../../policy/rate-limit-rules.js';
import { Duration } from './common.js';
import { RuleMatch } from './traffic.js';

/** A custom redaction: a regular expression (JavaScript syntax, `g` implied) and its replacement. */
export const RedactPattern = z
  .object({
    pattern: z.string().min(1),
    /** Replacement text (`$1` … refer to groups). Default `[REDACTED:<name>]`. */
    replacement: z.string().optional(),
    /** Detector name in metrics and the default replacement. Default `custom`. */
    name: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/)
      .optional(),
    /** Extra flags: `i`, `m`, `s`, `u` (`g` is always set). Default none. */
    flags: z
      .string()
      .regex(/^[imsu]*$/, 'expected flags from i, m, s, u')
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    // Bad flags are reported on `flags` alone.
    if (p.flags !== undefined && !/^[imsu]*$/.test(p.flags)) return;
    const problem = redactPatternProblem(p.pattern, p.flags ?? '');
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['pattern'], message: problem });
  });
export type RedactPattern = z.infer<typeof RedactPattern>;

/**
 * One guardrail. Exactly one kind of check: `deny`/`denyResult` (CEL), `redact`, `webhook` or
 * `pinTools`. Applies to the requests its `match` selects (all when absent).
 */
export const Guardrail = z
  .object({
    /** Unique name, shown in errors (`data.guardrail`), metrics and the usage log. */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 characters from [A-Za-z0-9_.-]'),
    match: RuleMatch.default({}),
    /** CEL expression over `mcp` and `principal`; true refuses the request. */
    deny: z.string().optional(),
    /** CEL expression over `mcp` (with `mcp.result`) and `principal`; true refuses the result. */
    denyResult: z.string().optional(),
    /** Built-in detector sets (`secrets`, `pii`) and custom patterns, redacted in arguments and results. */
    redact: z
      .array(z.union([z.enum(['secrets', 'pii']), RedactPattern]))
      .min(1)
      .optional(),
    /** An external guard asked for every matching request and result. */
    webhook: z
      .object({
        url: z.url({ protocol: /^https?$/ }),
        /** Longest wait for the guard's answer. Default 1s. */
        timeout: Duration.pipe(z.number().min(1).max(60_000)).default(1000),
        /** When the guard fails (timeout, refused, non-2xx, bad JSON): refuse or let through. Default deny. */
        onError: z.enum(['deny', 'allow']).default('deny'),
        /** Extra request headers, e.g. an authorization header for the guard. */
        headers: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .optional(),
    /** Tool pinning: a tool whose definition changed since first seen is blocked or warned about. */
    pinTools: z.enum(['block', 'warn']).optional(),
  })
  .strict()
  .superRefine((g, ctx) => {
    const kinds = [
      g.deny !== undefined || g.denyResult !== undefined ? 'deny' : undefined,
      g.redact !== undefined ? 'redact' : undefined,
      g.webhook !== undefined ? 'webhook' : undefined,
      g.pinTools !== undefined ? 'pinTools' : undefined,
    ].filter((k) => k !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          kinds.length === 0
            ? 'a guardrail needs one of deny/denyResult, redact, webhook or pinTools'
            : `a guardrail has one kind of check; found ${kinds.join(', ')} (split it into several guardrails)`,
      });
    }
    for (const field of ['deny', 'denyResult'] as const) {
      const text = g[field];
      if (text === undefined) continue;
      const problem = celProblem(text);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: problem });
    }
    for (const p of ruleMatchProblems(g.match)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  });
export type Guardrail = z.infer<typeof Guardrail>;

/** The `guardrails` list: names must be unique. */
export const Guardrails = z
  .array(Guardrail)
  .default([])
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((g, i) => {
      const first = seen.get(g.name);
      if (first === undefined) seen.set(g.name, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `guardrail name "${g.name}" is also used by guardrails[${first}]`,
        });
    });
  });
