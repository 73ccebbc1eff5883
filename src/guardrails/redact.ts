/**
 * Redaction for guardrails: detectors that find secrets and personal data in strings and replace
 * each finding with `[REDACTED:<detector>]`.
 *
 * Built-in sets:
 * - `secrets`: `private-key` (PEM `-----BEGIN … PRIVATE KEY-----` blocks, RFC 7468 §2),
 *   `aws-access-key` (`AKIA`/`ASIA`/`ABIA`/`ACCA` + 16), `jwt` (three base64url parts whose first
 *   two are JSON objects, RFC 7519 §3), `bearer-token` (`Bearer <token68>`, RFC 6750 §2.1),
 *   `github-token` (`ghp_`, `gho_`, `ghu_`, `ghs_`, `ghr_`, `github_pat_`), `slack-token`
 *   (`xoxa-`, `xoxb-`, `xoxp-`, `xoxo-`, `xoxr-`, `xoxs-`), `stripe-key` (`sk_live_`, `sk_test_`,
 *   `rk_live_`, `rk_test_`), `google-api-key` (`AIza` + 35), `openai-api-key` (`sk-`, `sk-proj-`
 *   … + at least 20);
 * - `pii`: `email`, `payment-card` (13–19 digits, optionally grouped by spaces or dashes, that
 *   pass the Luhn check, ISO/IEC 7812-1 Annex B), `iban` (country code, check digits and BBAN
 *   that pass the ISO 13616 mod-97 check, ISO 7064), `phone` (grouped numbers such as
 *   `+1 555 123 4567`, `(555) 123-4567`, or E.164 `+15551234567`).
 *
 * The built-in detectors of one guardrail are one regular expression (an alternation of named
 * groups), so a string is scanned once; custom patterns are one more scan each. Only strings are
 * visited; objects and arrays are walked in place without copying.
 *
 * Linear time: detectors with unbounded repeats start only where a run of their characters
 * starts (a lookbehind, not `\b`, which also fires inside runs such as `a.a.a…` or `x-x-x…`), and
 * repeats are either bounded (e-mail parts, RFC 5321 §4.5.3.1) or cannot backtrack across their
 * own delimiter (a PEM body stops at the next `-----`), so text an attacker controls costs time
 * proportional to its length. Custom patterns are the operator's: keep them free of nested
 * quantifiers.
 *
 * @module
 */
import type { RedactPattern } from '../config/schema.js';

/** One built-in detector. */
interface Detector {
  readonly name: string;
  readonly set: 'secrets' | 'pii';
  /** Regular expression source, without capturing groups (non-capturing only). */
  readonly source: string;
  /** A second check of a match (checksum); the match is left alone when it returns false. */
  readonly valid?: (match: string) => boolean;
}

const B64URL = 'A-Za-z0-9_-';

/** Every built-in detector, in the order their alternatives are tried at one position. */
export const DETECTORS: readonly Detector[] = [
  {
    name: 'private-key',
    set: 'secrets',
    // The body stops at the next `-----`: a BEGIN without its END costs one scan of its body.
    source:
      '-----BEGIN (?:[A-Z0-9]{1,16} ){0,4}PRIVATE KEY-----(?:[A-Za-z0-9+/=\\s:,.]|-(?!----))*?-----END (?:[A-Z0-9]{1,16} ){0,4}PRIVATE KEY-----',
  },
  { name: 'aws-access-key', set: 'secrets', source: '\\b(?:AKIA|ASIA|ABIA|ACCA)[A-Z0-9]{16}\\b' },
  {
    name: 'jwt',
    set: 'secrets',
    source: `(?<![${B64URL}])eyJ[${B64URL}]{8,}\\.eyJ[${B64URL}]{8,}\\.[${B64URL}]*(?![${B64URL}])`,
  },
  { name: 'bearer-token', set: 'secrets', source: '\\b[Bb]earer[ \\t]+[A-Za-z0-9._~+/-]{16,}=*' },
  {
    name: 'github-token',
    set: 'secrets',
    source: '\\b(?:gh[pousr]_[A-Za-z0-9]{36,255}|github_pat_[A-Za-z0-9_]{22,255})\\b',
  },
  { name: 'slack-token', set: 'secrets', source: '\\bxox[abposr]-[A-Za-z0-9-]{10,}' },
  { name: 'stripe-key', set: 'secrets', source: '\\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}\\b' },
  { name: 'google-api-key', set: 'secrets', source: `(?<![${B64URL}])AIza[${B64URL}]{35}(?![${B64URL}])` },
  {
    name: 'openai-api-key',
    set: 'secrets',
    source: `(?<![${B64URL}])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9][${B64URL}]{19,}(?![${B64URL}])`,
  },
  {
    name: 'email',
    set: 'pii',
    // RFC 5321 §4.5.3.1: a local part of at most 64 octets, labels of at most 63.
    source: '(?<![A-Za-z0-9._%+-])[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\\.){1,8}[A-Za-z]{2,24}(?![A-Za-z0-9-])',
  },
  {
    name: 'payment-card',
    set: 'pii',
    source: '(?<!\\d|\\d[.-])\\d(?:[ -]?\\d){12,18}(?!\\d|\\.\\d)',
    valid: luhnValid,
  },
  {
    name: 'iban',
    set: 'pii',
    source: '\\b[A-Z]{2}\\d{2}(?: ?[A-Z0-9]{4}){2,7}(?: ?[A-Z0-9]{1,4})?\\b',
    valid: ibanValid,
  },
  {
    name: 'phone',
    set: 'pii',
    source:
      '(?<!\\w|\\d\\.|\\+)(?:\\+\\d{1,3}[ .-]?)?(?:\\(\\d{2,4}\\)[ .-]?|\\d{2,4}[ .-])\\d{3,4}[ .-]\\d{4}(?!\\w|\\.\\d)|(?<![\\w+])\\+\\d{8,15}\\b',
  },
];

/**
 * The Luhn check (ISO/IEC 7812-1 Annex B) over the digits of `text` (other characters ignored).
 *
 * @returns true for 13 to 19 digits whose Luhn sum is a multiple of 10
 */
export function luhnValid(text: string): boolean {
  let sum = 0;
  let count = 0;
  let double = false;
  for (let i = text.length - 1; i >= 0; i--) {
    const c = text.charCodeAt(i) - 48;
    if (c < 0 || c > 9) continue;
    count++;
    let d = c;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return count >= 13 && count <= 19 && sum % 10 === 0;
}

/**
 * The IBAN check (ISO 13616-1 §5, mod 97-10 of ISO 7064): the first four characters moved to the
 * end, letters as 10–35, the number modulo 97 must be 1. Spaces are ignored.
 *
 * @returns true for 15 to 34 characters that pass the check
 */
export function ibanValid(text: string): boolean {
  const iban = text.replace(/ /g, '');
  if (iban.length < 15 || iban.length > 34) return false;
  const rearranged = iban.slice(4) + iban.slice(0, 4);
  let remainder = 0;
  for (let i = 0; i < rearranged.length; i++) {
    const c = rearranged.charCodeAt(i);
    if (c >= 48 && c <= 57) remainder = (remainder * 10 + (c - 48)) % 97;
    else if (c >= 65 && c <= 90) remainder = (remainder * 100 + (c - 55)) % 97;
    else return false;
  }
  return remainder === 1;
}

/**
 * Why `pattern` is not a usable custom redaction pattern, or undefined: a syntax error, or a
 * pattern that matches the empty string (it would insert its replacement everywhere).
 */
export function redactPatternProblem(pattern: string, flags: string): string | undefined {
  let re: RegExp;
  try {
    re = new RegExp(pattern, `g${flags}`);
  } catch (err) {
    return `invalid regular expression: ${(err as Error).message}`;
  }
  if (re.test('')) return 'the pattern matches the empty string';
  return undefined;
}

/** A redaction entry as configured. */
export type RedactEntry = 'secrets' | 'pii' | RedactPattern;

/** Called with each detector name that changed a string. */
export type OnRedacted = (detector: string) => void;

/** A compiled set of detectors. */
export interface Redactor {
  /**
   * Redacts one string.
   *
   * @returns the string itself when nothing was found, else the redacted copy
   */
  redactString(text: string, onRedacted?: OnRedacted): string;
  /**
   * Redacts every string inside `value` (objects and arrays walked in place, to `maxDepth` = 64
   * levels; keys are left alone).
   *
   * @returns the value (a new string for a string that changed; containers are changed in place)
   */
  redactValue(value: unknown, onRedacted?: OnRedacted): unknown;
}

interface CustomDetector {
  readonly name: string;
  readonly re: RegExp;
  readonly replacement: string;
}

const MAX_DEPTH = 64;

/**
 * Compiles redaction entries, once.
 *
 * @throws Error for a custom pattern that {@link redactPatternProblem} refuses
 */
export function createRedactor(entries: readonly RedactEntry[]): Redactor {
  const sets = new Set(entries.filter((e): e is 'secrets' | 'pii' => typeof e === 'string'));
  const builtins = DETECTORS.filter((d) => sets.has(d.set));
  const combined =
    builtins.length === 0 ? undefined : new RegExp(builtins.map((d, i) => `(?<d${i}>${d.source})`).join('|'), 'g');
  const custom: CustomDetector[] = entries
    .filter((e): e is RedactPattern => typeof e !== 'string')
    .map((e) => {
      const problem = redactPatternProblem(e.pattern, e.flags ?? '');
      if (problem !== undefined) throw new Error(`redact pattern ${JSON.stringify(e.pattern)}: ${problem}`);
      const name = e.name ?? 'custom';
      return {
        name,
        re: new RegExp(e.pattern, `g${e.flags ?? ''}`),
        replacement: e.replacement ?? `[REDACTED:${name}]`,
      };
    });
  const names = builtins.map((d) => d.name);
  const replacements = names.map((n) => `[REDACTED:${n}]`);
  const validators = builtins.map((d) => d.valid);

  const redactString = (text: string, onRedacted?: OnRedacted): string => {
    let out = text;
    if (combined !== undefined) {
      out = out.replace(combined, (match: string, ...rest: unknown[]) => {
        const groups = rest[rest.length - 1] as Record<string, string | undefined>;
        for (let i = 0; i < names.length; i++) {
          if (groups[`d${i}`] === undefined) continue;
          const valid = validators[i];
          if (valid !== undefined && !valid(match)) return match;
          onRedacted?.(names[i]!);
          return replacements[i]!;
        }
        return match;
      });
    }
    for (const c of custom) {
      c.re.lastIndex = 0;
      if (!c.re.test(out)) continue;
      out = out.replace(c.re, c.replacement);
      onRedacted?.(c.name);
    }
    return out;
  };

  const walk = (value: unknown, onRedacted: OnRedacted | undefined, depth: number): unknown => {
    if (typeof value === 'string') return redactString(value, onRedacted);
    if (typeof value !== 'object' || value === null || depth >= MAX_DEPTH) return value;
    if (Array.isArray(value)) {
      for (let i = 0; i < value.length; i++) {
        const v: unknown = value[i];
        if (typeof v === 'string') {
          const r = redactString(v, onRedacted);
          if (r !== v) value[i] = r;
        } else if (typeof v === 'object' && v !== null) walk(v, onRedacted, depth + 1);
      }
      return value;
    }
    const obj = value as Record<string, unknown>;
    for (const key in obj) {
      const v = obj[key];
      if (typeof v === 'string') {
        const r = redactString(v, onRedacted);
        if (r !== v) obj[key] = r;
      } else if (typeof v === 'object' && v !== null) walk(v, onRedacted, depth + 1);
    }
    return value;
  };

  return {
    redactString,
    redactValue: (value, onRedacted) => walk(value, onRedacted, 0),
  };
}
