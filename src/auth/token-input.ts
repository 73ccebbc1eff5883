/**
 * The shape of a token request, checked the same way for the admin API and the CLI, and the
 * rounding of expiries to what a JWT can carry.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import { NAME_RE, PERMISSION_RE } from '../config/schema.js';
import { isKnownPermission, unknownPermissionMessage } from '../config/schema/auth.js';

const CONTROL_CHARS = /[\u0000-\u001f\u007f]/;

/**
 * Checks the shape of a token request (the admin API and the CLI share it): a non-empty name and
 * subject without control characters, `resource.action` permissions, server names as in the
 * configuration, non-empty tool globs, a positive whole number of milliseconds as lifetime.
 *
 * @returns one line per problem; empty when the input is valid
 */
export function tokenInputProblems(input: {
  name?: string;
  subject?: string;
  permissions?: readonly string[];
  servers?: readonly string[];
  tools?: readonly string[];
  expiresInMs?: number;
}): string[] {
  const problems: string[] = [];
  const text = (v: string | undefined, field: string) => {
    if (v === undefined) return;
    if (v.trim() === '' || v.length > 256 || CONTROL_CHARS.test(v))
      problems.push(`${field} must be 1-256 characters without control characters`);
  };
  text(input.name, 'name');
  text(input.subject, 'subject');
  for (const p of input.permissions ?? []) {
    if (!PERMISSION_RE.test(p)) problems.push(`invalid permission "${p}" (expected resource.action)`);
    else if (!isKnownPermission(p)) problems.push(unknownPermissionMessage(p));
  }
  for (const s of input.servers ?? []) if (!NAME_RE.test(s)) problems.push(`invalid server name "${s}"`);
  for (const t of input.tools ?? [])
    if (t.trim() === '' || t.length > 256 || CONTROL_CHARS.test(t)) problems.push(`invalid tool pattern "${t}"`);
  const ms = input.expiresInMs;
  if (ms !== undefined && !(Number.isSafeInteger(ms) && ms > 0))
    problems.push('the lifetime must be a positive duration such as 12h or 30d');
  return problems;
}

/** Throws the problems {@link tokenInputProblems} finds as one `SWB_ERR_HTTP_INVALID_REQUEST` (400). */
export function assertValidInput(input: Parameters<typeof tokenInputProblems>[0]): void {
  const problems = tokenInputProblems(input);
  if (problems.length > 0)
    throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', problems.join('; '), { data: { problems } });
}

/** `ms` cut down to a whole second: a JWT `exp` (RFC 7519 §2 NumericDate) holds whole seconds. */
export function wholeSecond(ms: number): number {
  return Math.floor(ms / 1000) * 1000;
}
