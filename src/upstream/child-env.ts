/**
 * The environment of a stdio child: a short allowlist of the gateway's variables, the extra ones
 * the server's `inheritEnv` names, then the server's own `env`.
 *
 * A child does not inherit the gateway's whole environment: that would hand every stdio server
 * the gateway's secrets (`SWITCHBOARD_SECRET`, the database URL) and the credentials the
 * configuration interpolates for other servers (`Authorization: Bearer ${GITHUB_TOKEN}`), and a
 * server that prints its environment would show them to its callers. The allowlist is what a
 * program needs to start (`PATH` to find `node`/`npx`, `HOME` for the npm cache) and to format
 * text; it follows the MCP TypeScript SDK's `getDefaultEnvironment()` (stdio client transport)
 * plus locale, time zone and temporary directory.
 *
 * @module
 */
import picomatch from 'picomatch';

/** Variables every child inherits on POSIX systems (names or globs). */
export const BASE_ENV_POSIX: readonly string[] = Object.freeze([
  'PATH',
  'HOME',
  'USER',
  'LOGNAME',
  'SHELL',
  'TERM',
  'LANG',
  'LC_*',
  'TZ',
  'TMPDIR',
]);

/** Variables every child inherits on Windows (compared case-insensitively there). */
export const BASE_ENV_WINDOWS: readonly string[] = Object.freeze([
  'PATH',
  'PATHEXT',
  'SYSTEMROOT',
  'SYSTEMDRIVE',
  'WINDIR',
  'COMSPEC',
  'TEMP',
  'TMP',
  'USERNAME',
  'USERPROFILE',
  'HOMEDRIVE',
  'HOMEPATH',
  'APPDATA',
  'LOCALAPPDATA',
  'PROGRAMFILES',
  'PROCESSOR_ARCHITECTURE',
  'LANG',
  'TZ',
]);

/** Prefix of the gateway's own variables; never inherited, whatever `inheritEnv` says. */
const GATEWAY_PREFIX = 'SWITCHBOARD_';

/** Options for {@link childEnvironment}. */
export interface ChildEnvironmentOptions {
  /** The server's own variables, set last (they win over inherited ones). Default none. */
  env?: Readonly<Record<string, string>>;
  /**
   * Extra variables of `source` to pass, by name or glob (picomatch: `AWS_*`, `*`). Default none.
   * A name in `forbidden` or starting with `SWITCHBOARD_` is never passed this way.
   */
  inherit?: readonly string[];
  /**
   * Names that `inherit` must not pass: the variables the configuration interpolates outside the
   * server's own entry. The base allowlist is not affected. Default none.
   */
  forbidden?: Iterable<string>;
  /** Where inherited values come from. Default `process.env`. */
  source?: Readonly<Record<string, string | undefined>>;
  /** Picks the base allowlist and case sensitivity (`win32`: case-insensitive). Default `process.platform`. */
  platform?: NodeJS.Platform;
}

/**
 * Builds a stdio child's complete environment: the variables of `source` matching the base
 * allowlist ({@link BASE_ENV_POSIX} or {@link BASE_ENV_WINDOWS}), those matching `inherit` that
 * are neither `SWITCHBOARD_*` nor `forbidden`, and then `env`.
 *
 * @returns a new object; `source` and `env` are not modified.
 */
export function childEnvironment(options: ChildEnvironmentOptions = {}): Record<string, string> {
  const source = options.source ?? process.env;
  const windows = (options.platform ?? process.platform) === 'win32';
  const key = windows ? (name: string) => name.toUpperCase() : (name: string) => name;
  const base = picomatch(windows ? [...BASE_ENV_WINDOWS] : [...BASE_ENV_POSIX], { nocase: windows });
  const extra =
    options.inherit && options.inherit.length > 0 ? picomatch([...options.inherit], { nocase: windows }) : undefined;
  const forbidden = new Set<string>();
  for (const name of options.forbidden ?? []) forbidden.add(key(name));

  const out: Record<string, string> = {};
  for (const [name, value] of Object.entries(source)) {
    if (value === undefined) continue;
    const k = key(name);
    if (k.toUpperCase().startsWith(GATEWAY_PREFIX)) continue;
    if (base(name) || (extra !== undefined && extra(name) && !forbidden.has(k))) out[name] = value;
  }
  if (options.env) Object.assign(out, options.env);
  return out;
}
