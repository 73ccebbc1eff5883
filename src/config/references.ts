/**
 * Checks between configuration entries, run on the raw tree so they are reported even beside
 * schema errors: unknown or disabled servers in virtual servers, names defined twice or that
 * can collide once namespaced, conflicting renames, `token-exchange` upstreams without inbound
 * OAuth; and which `${VAR}` variables each server
 * entry read.
 *
 * @module
 */
import { overlappingNamespaces } from '../gateway/naming.js';
import type { PathSegment } from './interpolate.js';
import type { RawIssue } from './issues.js';
import { isPlainObject } from './paths.js';
import type { InterpolatedVariables } from './schema.js';
import { closest } from './schema-issues.js';

/** What {@link checkReferences} found: errors, and problems that only warrant a warning. */
interface ReferenceCheck {
  issues: RawIssue[];
  warnings: RawIssue[];
}

/** Whether a server entry is switched off (`disabled: true` or `enabled: false`). */
function isDisabled(entry: unknown): boolean {
  return isPlainObject(entry) && (entry.disabled === true || entry.enabled === false);
}

/** Checks the references between entries of the raw (interpolated, unvalidated) tree. */
export function checkReferences(doc: Record<string, unknown>): ReferenceCheck {
  const issues: RawIssue[] = [];
  const warnings: RawIssue[] = [];
  const servers = isPlainObject(doc.servers) ? doc.servers : {};
  const mcpServers = isPlainObject(doc.mcpServers) ? doc.mcpServers : {};

  for (const name of Object.keys(mcpServers)) {
    if (name in servers) {
      issues.push({
        path: ['mcpServers', name],
        message: `server ${JSON.stringify(name)} is defined in both servers and mcpServers; rename one of them`,
      });
    }
  }

  for (const [section, entries] of [
    ['servers', servers],
    ['mcpServers', mcpServers],
  ] as const) {
    for (const [name, entry] of Object.entries(entries)) {
      if (!isPlainObject(entry) || typeof entry.transport !== 'string' || typeof entry.type !== 'string') continue;
      const fromType = entry.type === 'sse' ? 'sse' : entry.type === 'stdio' ? undefined : 'streamable-http';
      if (fromType !== undefined && fromType !== entry.transport) {
        issues.push({
          path: [section, name, 'transport'],
          message: `${JSON.stringify(entry.transport)} conflicts with type ${JSON.stringify(entry.type)}; keep one of them`,
        });
      }
    }
  }

  const all = { ...servers, ...mcpServers };
  const names = Object.keys(all);

  // Credentials that depend on who calls, refused under an auth.mode that cannot give them:
  // RFC 8693 exchanges the caller's OAuth access token (without inbound OAuth there is none), and
  // per-user upstream tokens belong to principals (under auth.mode none every caller is the same
  // anonymous principal, so one user's connection would serve everyone).
  const mode = isPlainObject(doc.auth) && typeof doc.auth.mode === 'string' ? doc.auth.mode : 'none';
  const refusal = (type: unknown): string | undefined => {
    if (type === 'token-exchange' && mode !== 'oauth' && mode !== 'tokens+oauth')
      return `token-exchange exchanges the caller's OAuth access token, but auth.mode is ${JSON.stringify(mode)}; set auth.mode to oauth or tokens+oauth`;
    if (type === 'oauth2-user' && mode === 'none')
      return 'oauth2-user keeps upstream tokens per user, but auth.mode is "none" (every caller is anonymous); set auth.mode to tokens, oauth or tokens+oauth';
    return undefined;
  };
  for (const name of names) {
    const entry = all[name];
    if (isDisabled(entry) || !isPlainObject(entry) || !isPlainObject(entry.auth)) continue;
    const message = refusal(entry.auth.type);
    if (message !== undefined)
      issues.push({ path: [name in mcpServers ? 'mcpServers' : 'servers', name, 'auth', 'type'], message });
  }

  // Exposed names must be unique: refuse what can be known to collide before any upstream runs.
  const separator =
    typeof doc.namespaceSeparator === 'string' && /^[A-Za-z0-9_-]{1,8}$/.test(doc.namespaceSeparator)
      ? doc.namespaceSeparator
      : '__';
  const enabled = names.filter((n) => !isDisabled(all[n]));
  for (const [shorter, longer] of overlappingNamespaces(enabled, separator)) {
    issues.push({
      path: [longer in servers ? 'servers' : 'mcpServers', longer],
      message:
        `servers ${JSON.stringify(shorter)} and ${JSON.stringify(longer)} can expose the same name in the aggregate ` +
        `(${JSON.stringify(`${longer}${separator}x`)} is also ${JSON.stringify(shorter)}'s ` +
        `${JSON.stringify(`${longer.slice(shorter.length + separator.length)}${separator}x`)}); ` +
        `rename one of them or choose another namespaceSeparator`,
    });
  }
  for (const [section, entries] of [
    ['servers', servers],
    ['mcpServers', mcpServers],
  ] as const) {
    for (const [name, entry] of Object.entries(entries)) {
      if (isPlainObject(entry)) checkRenames(entry, [section, name], issues);
    }
  }
  checkNamespacingAlias(doc, [], issues, warnings);
  const virtualServers = isPlainObject(doc.virtualServers) ? doc.virtualServers : {};
  for (const [vname, vs] of Object.entries(virtualServers)) {
    if (!isPlainObject(vs)) continue;
    checkNamespacingAlias(vs, ['virtualServers', vname], issues, warnings);
    const members: [PathSegment, unknown][] = Array.isArray(vs.servers)
      ? vs.servers.map((m, i) => [i, m])
      : isPlainObject(vs.servers)
        ? Object.keys(vs.servers).map((k) => [k, k])
        : [];
    for (const [seg, member] of members) {
      if (typeof member !== 'string') continue;
      const path = ['virtualServers', vname, 'servers', seg];
      if (isPlainObject(vs.servers) && isPlainObject(vs.servers[member]))
        checkRenames(vs.servers[member], path, issues);
      if (!(member in all)) {
        const known = names.length > 0 ? `; known servers: ${names.join(', ')}` : '; no servers are defined';
        const guess = closest(member, names);
        issues.push({
          path,
          message: `unknown server ${JSON.stringify(member)}${guess === undefined ? '' : ` (did you mean "${guess}"?)`}${known}`,
        });
      } else if (isDisabled(all[member])) {
        warnings.push({
          path,
          message: `server ${JSON.stringify(member)} is disabled; left out of this virtual server`,
        });
      }
    }
  }
  return { issues, warnings };
}

/**
 * `namePrefix` is the deprecated alias of `namespacing`: alone it is used with a warning; given
 * beside `namespacing` with another value it is an error, as either choice would surprise.
 */
function checkNamespacingAlias(
  entry: Record<string, unknown>,
  path: PathSegment[],
  issues: RawIssue[],
  warnings: RawIssue[],
): void {
  if (!('namePrefix' in entry)) return;
  if ('namespacing' in entry && entry.namespacing !== entry.namePrefix) {
    issues.push({
      path: [...path, 'namePrefix'],
      message: `namePrefix ${JSON.stringify(entry.namePrefix)} conflicts with namespacing ${JSON.stringify(entry.namespacing)}; namePrefix is a deprecated alias of namespacing: keep namespacing only`,
    });
    return;
  }
  warnings.push({ path: [...path, 'namePrefix'], message: 'deprecated: rename namePrefix to namespacing' });
}

/** Two names of one server renamed to the same name would be exposed under one name: refused. */
function checkRenames(entry: Record<string, unknown>, path: PathSegment[], issues: RawIssue[]): void {
  for (const kind of ['tools', 'prompts'] as const) {
    const filter = entry[kind];
    const rename = isPlainObject(filter) && isPlainObject(filter.rename) ? filter.rename : undefined;
    if (rename === undefined) continue;
    const firstFrom = new Map<unknown, string>();
    for (const [from, to] of Object.entries(rename)) {
      const earlier = firstFrom.get(to);
      if (earlier === undefined) firstFrom.set(to, from);
      else
        issues.push({
          path: [...path, kind, 'rename', from],
          message: `${JSON.stringify(earlier)} and ${JSON.stringify(from)} are both renamed to ${JSON.stringify(to)}; exposed names must be unique`,
        });
    }
  }
}

/** Groups the variables interpolation read by server entry (`servers.X…`, `mcpServers.X…`) and elsewhere. */
export function interpolatedVariables(
  references: ReadonlyArray<{ path: PathSegment[]; names: string[] }>,
): InterpolatedVariables {
  const servers: Record<string, string[]> = {};
  const other = new Set<string>();
  for (const { path, names } of references) {
    const [section, server] = path;
    if ((section === 'servers' || section === 'mcpServers') && typeof server === 'string') {
      const list = (servers[server] ??= []);
      for (const n of names) if (!list.includes(n)) list.push(n);
    } else {
      for (const n of names) other.add(n);
    }
  }
  return { servers, other: [...other] };
}
