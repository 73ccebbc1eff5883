/**
 * Shared building blocks of the configuration schema: durations, byte sizes, scalar-tolerant
 * strings, server names and header names.
 *
 * Durations accept a number of milliseconds or a string such as `"500ms"`, `"30s"`, `"5m"`,
 * `"1h"`, `"1d"`. Sizes accept a number of bytes or a string such as `"512kb"`, `"4mb"`.
 * `Duration` and `Size` are single schema objects: `../schema-issues.ts` recognises them by
 * identity, so every section uses these and never builds its own.
 *
 * @module
 */
import { z } from 'zod';

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `"30s"`-style durations to milliseconds; `undefined` when malformed. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  const m = DURATION_RE.exec(v.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()] ?? 1));
}

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i;
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses `"4mb"`-style sizes to bytes; `undefined` when malformed. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
  const m = SIZE_RE.exec(v.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * (SIZE_UNITS[(m[2] ?? 'b').toLowerCase()] ?? 1));
}

/** A duration in milliseconds (input: ms number or `"30s"` string). */
export const Duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as 30s, 5m or a number of milliseconds, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A size in bytes (input: number or `"4mb"` string). */
export const Size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const b = parseSize(v);
  if (b === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size such as 512kb, 4mb or a number of bytes, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return b;
});

/**
 * A string value where YAML/TOML scalars are accepted too: `PORT: 3000` in `env` or `--port, 3000`
 * in `args` become `"3000"`, as a shell would pass them. Output is always a string.
 */
export const StringLike = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));

/** Names of servers and virtual servers: used in URLs and as namespace prefixes. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
/** A server or virtual server name ({@link NAME_RE}). */
export const Name = z
  .string()
  .regex(NAME_RE, 'expected a name of 1-64 characters from [A-Za-z0-9_.-], starting with a letter or digit');

/** HTTP header names: RFC 9110 §5.1 tokens restricted to letters, digits and `-`. */
export const HEADER_NAME_RE = /^[A-Za-z0-9-]+$/;
/** A header name ({@link HEADER_NAME_RE}). */
export const HeaderName = z.string().regex(HEADER_NAME_RE, 'expected a header name of letters, digits and "-"');

/**
 * A key ring: `[{id, secret}]`, secrets of at least 32 characters and ids unique, 1–16 characters
 * of `[A-Za-z0-9_-]`. The first key seals; all open (rotation adds the new key first). Used by
 * `sessions.keys` and `tokenVault.keys`.
 *
 * @param what - what the secrets are, for the message of a short one (`a session key secret`)
 */
export function KeyRing(what: string) {
  return z
    .array(
      z
        .object({
          id: z.string().regex(/^[A-Za-z0-9_-]{1,16}$/, 'a key id is 1–16 characters of A–Z, a–z, 0–9, _ and -'),
          secret: z.string().min(32, `${what} is at least 32 characters`),
        })
        .strict(),
    )
    .default([])
    .superRefine((keys, ctx) => {
      const seen = new Set<string>();
      for (const [i, k] of keys.entries()) {
        if (seen.has(k.id)) ctx.addIssue({ code: 'custom', path: [i, 'id'], message: `duplicate key id ${k.id}` });
        seen.add(k.id);
      }
    });
}
