/**
 * Loading configuration files: YAML (`.yaml`, `.yml`), JSON (`.json`, comments and trailing
 * commas allowed as VS Code writes them) and TOML (`.toml`), all validated by one schema.
 *
 * Pipeline: parse → drop client-only top-level keys → `${VAR}` interpolation → validation (zod)
 * → cross-reference checks → merge `servers` with `mcpServers` → drop disabled servers → resolve
 * relative `cwd`/`dataDir` against the file's directory. Every problem found on the way is
 * collected, and all of them are thrown together as one {@link ConfigError}.
 *
 * @module
 */
import { readFile } from 'node:fs/promises';
import { dirname, extname, isAbsolute, join, resolve } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { LineCounter, parseDocument } from 'yaml';
import { z } from 'zod';
import { GatewayError } from '../errors.js';
import { interpolateTree, type EnvSource, type PathSegment } from './interpolate.js';
import {
  Duration,
  ServerConfig,
  Size,
  SwitchboardConfigInput,
  type InterpolatedVariables,
  type SwitchboardConfig,
  type VirtualServer,
} from './schema.js';
import { packageRoot } from '../package-root.js';
import { overlappingNamespaces } from '../gateway/naming.js';

/** A configuration file format, chosen by file extension. */
export type ConfigFormat = 'yaml' | 'json' | 'toml';

/**
 * Which stage found a problem: the file could not be `read`, had a `syntax` error, an
 * `interpolation` failed, a value broke the `schema`, or a `reference` between entries is wrong
 * (unknown server in a virtual server, a name in both `servers` and `mcpServers`, …).
 */
export type ConfigIssueKind = 'read' | 'syntax' | 'interpolation' | 'schema' | 'reference';

/** One problem in a configuration file. */
export interface ConfigIssue {
  /** The file as the caller named it (`examples/bad.yaml`), or undefined for in-memory text. */
  file: string | undefined;
  /** Dotted path of the offending value, e.g. `servers.everything.command`; `""` for the whole file. */
  path: string;
  /** What was expected, e.g. `expected a string, got number`. */
  message: string;
  /** The stage that found the problem. */
  kind: ConfigIssueKind;
  /** 1-based line, for syntax errors. */
  line?: number;
  /** 1-based column, for syntax errors. */
  column?: number;
}

/**
 * The configuration could not be loaded. Carries every problem found, not just the first.
 * Code `SWB_ERR_CONFIG_READ` when the file could not be read, `SWB_ERR_CONFIG_INVALID` otherwise.
 * The message is {@link ConfigError.format}'s output, so logging the error shows every problem.
 */
export class ConfigError extends GatewayError {
  /** Every problem, in the order found (document order within a stage). Never empty. */
  readonly issues: readonly ConfigIssue[];

  constructor(
    issues: readonly ConfigIssue[],
    options: { code?: 'SWB_ERR_CONFIG_INVALID' | 'SWB_ERR_CONFIG_READ'; cause?: unknown } = {},
  ) {
    super(options.code ?? 'SWB_ERR_CONFIG_INVALID', issues.map(formatIssue).join('\n'), { cause: options.cause });
    this.name = 'ConfigError';
    this.issues = issues;
  }

  /**
   * One line per issue: `file: path: message` (for example
   * `examples/bad.yaml: servers.everything.command: expected a string, got number`), or
   * `file:line:column: message` for syntax errors.
   */
  format(): string {
    return this.issues.map(formatIssue).join('\n');
  }
}

/** Narrowing helper for {@link ConfigError}. */
export function isConfigError(e: unknown): e is ConfigError {
  return e instanceof ConfigError;
}

/** Formats one issue (or warning) the way {@link ConfigError.format} does. */
export function formatIssue(issue: Pick<ConfigIssue, 'file' | 'path' | 'message' | 'line' | 'column'>): string {
  let where = issue.file ?? '';
  if (issue.line !== undefined) where += `:${issue.line}${issue.column === undefined ? '' : `:${issue.column}`}`;
  return [where, issue.path, issue.message].filter((part) => part !== '').join(': ');
}

/** Options for {@link parseConfigText} and {@link loadConfigFile}. */
export interface LoadConfigOptions {
  /**
   * Variables for `${VAR}` interpolation. Default `process.env`.
   */
  env?: EnvSource;
  /**
   * Receives each non-fatal problem as one formatted line (`file: path: message`), e.g. a Claude
   * Desktop setting that is ignored, or VS Code `inputs`. Default: warnings are discarded.
   */
  onWarning?: (message: string) => void;
}

/** Options for {@link parseConfigText}. */
export interface ParseConfigOptions extends LoadConfigOptions {
  /**
   * The file the text came from: named in issues as given, and resolved to an absolute path for
   * `config.source` and for relative `cwd`/`dataDir` values. Optional for in-memory text.
   */
  path?: string;
  /** Format of the text. Default: from `path`'s extension, else `yaml`. */
  format?: ConfigFormat;
}

/** The format for a file name by extension (`.yaml`, `.yml`, `.json`, `.toml`), or undefined. */
export function formatFromPath(path: string): ConfigFormat | undefined {
  switch (extname(path).toLowerCase()) {
    case '.yaml':
    case '.yml':
      return 'yaml';
    case '.json':
      return 'json';
    case '.toml':
      return 'toml';
    default:
      return undefined;
  }
}

/**
 * Absolute path of the bundled example configuration (`examples/switchboard.yaml` of the installed
 * package), served when neither `--config` nor `SWITCHBOARD_CONFIG` is given.
 */
export function defaultConfigPath(): string {
  return join(packageRoot(), 'examples', 'switchboard.yaml');
}

/**
 * The configuration file to use, as an absolute path: `explicit` (the `--config` flag) if given,
 * else `SWITCHBOARD_CONFIG` from `env` if non-empty, else {@link defaultConfigPath}.
 *
 * @param explicit - the `--config` value, relative to the current directory.
 * @param env - where `SWITCHBOARD_CONFIG` is read; default `process.env`.
 */
export function resolveConfigPath(explicit?: string, env: EnvSource = process.env): string {
  if (explicit !== undefined && explicit !== '') return resolve(explicit);
  const fromEnv = env.SWITCHBOARD_CONFIG;
  if (fromEnv !== undefined && fromEnv !== '') return resolve(fromEnv);
  return defaultConfigPath();
}

/**
 * Reads, parses and validates a configuration file.
 *
 * @param path - the file; its extension picks the format. Named in issues as given.
 * @returns the validated config, `source` set to the file's absolute path.
 * @throws {@link ConfigError} with code `SWB_ERR_CONFIG_READ` if the file cannot be read or has an
 *   unknown extension, `SWB_ERR_CONFIG_INVALID` (carrying every problem) if it is invalid.
 */
export async function loadConfigFile(path: string, options: LoadConfigOptions = {}): Promise<SwitchboardConfig> {
  const format = formatFromPath(path);
  if (format === undefined) {
    throw new ConfigError(
      [
        {
          file: path,
          path: '',
          kind: 'read',
          message: `unsupported file extension ${JSON.stringify(extname(path))}: use .yaml, .yml, .json or .toml`,
        },
      ],
      { code: 'SWB_ERR_CONFIG_READ' },
    );
  }
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const code = (cause as NodeJS.ErrnoException).code;
    const reason =
      code === 'ENOENT'
        ? 'no such file'
        : code === 'EACCES'
          ? 'permission denied'
          : code === 'EISDIR'
            ? 'is a directory'
            : String((cause as Error).message);
    throw new ConfigError([{ file: path, path: '', kind: 'read', message: `cannot read the file: ${reason}` }], {
      code: 'SWB_ERR_CONFIG_READ',
      cause,
    });
  }
  return parseConfigText(text, { ...options, path, format });
}

/**
 * Parses and validates configuration text (see the module comment for the pipeline).
 *
 * Top-level keys that are not Switchboard settings are errors, except in a client file (one with
 * `mcpServers`, as Claude Desktop and Cursor write it), where they are ignored with a warning.
 * VS Code's `inputs` is always ignored with a warning; `$schema`, `x-…` extension keys (a home for
 * YAML anchors) and empty sections (`servers:` with nothing under it) silently.
 *
 * @returns the validated config with `servers` merged from `servers` and `mcpServers`, disabled
 *   servers (`disabled: true` or `enabled: false`) removed, and `source` set when `path` is given.
 * @throws {@link ConfigError} (`SWB_ERR_CONFIG_INVALID`) carrying every problem found.
 */
export function parseConfigText(text: string, options: ParseConfigOptions = {}): SwitchboardConfig {
  const file = options.path;
  const format = options.format ?? (file === undefined ? undefined : formatFromPath(file)) ?? 'yaml';
  const warn = (path: PathSegment[], message: string): void =>
    options.onWarning?.(formatIssue({ file, path: formatPath(path), message }));

  const raw = parseConfigSyntax(text, { ...options, format }) ?? {};
  if (!isPlainObject(raw)) {
    throw new ConfigError([
      {
        file,
        path: '',
        kind: 'schema',
        message: `expected an object of settings at the top level, got ${describe(raw)}`,
      },
    ]);
  }

  // Client-only top-level keys are removed before interpolation: they are not ours to interpret.
  const top: Record<string, unknown> = { ...raw };
  delete top.$schema;
  // `servers:` with every entry commented out parses as null: treat an empty section as absent.
  // `x-…` keys are extension fields (as in Docker Compose), a home for YAML anchors: ignored.
  for (const [key, value] of Object.entries(top)) if (value === null || key.startsWith('x-')) delete top[key];
  if ('inputs' in top) {
    warn(['inputs'], 'ignored: VS Code input prompts are not supported; use ${VAR} environment variables instead');
    delete top.inputs;
  }
  if ('mcpServers' in top) {
    const known = new Set(Object.keys(SwitchboardConfigInput.shape));
    for (const key of Object.keys(top)) {
      if (known.has(key)) continue;
      warn([key], 'ignored: not a Switchboard setting (allowed beside mcpServers in a client config file)');
      delete top[key];
    }
  }

  const env = options.env ?? process.env;
  const interpolated = interpolateTree(top, env);
  const doc = interpolated.value;
  for (const path of interpolated.substitutedPaths) coerceScalar(doc, path);

  const found: (RawIssue & { kind: ConfigIssueKind })[] = interpolated.issues.map((i) => ({
    ...i,
    kind: 'interpolation',
  }));

  const result = SwitchboardConfigInput.safeParse(doc);
  if (!result.success) {
    const schemaIssues: RawIssue[] = [];
    for (const issue of result.error.issues) flattenZodIssue(issue, [], SwitchboardConfigInput, doc, schemaIssues);
    for (const r of schemaIssues) {
      // A value whose interpolation failed is already reported; its schema error would be noise.
      if (interpolated.issues.some((i) => isPrefix(i.path, r.path))) continue;
      found.push({ ...r, kind: 'schema' });
    }
  }

  const refs = checkReferences(doc);
  for (const r of refs.issues) found.push({ ...r, kind: 'reference' });
  for (const w of refs.warnings) warn(w.path, w.message);

  // Report in the order of the file, whichever stage found the problem.
  const order = documentOrder(doc);
  const issues: ConfigIssue[] = found
    .map((r, i) => ({ r, i, at: orderOf(order, r.path) }))
    .sort((a, b) => a.at - b.at || a.i - b.i)
    .map(({ r }) => ({ file, path: formatPath(r.path), message: r.message, kind: r.kind }));

  if (!result.success && issues.length === 0) {
    issues.push({ file, path: '', kind: 'schema', message: result.error.message });
  }
  if (issues.length > 0 || !result.success) throw new ConfigError(issues);
  const config = buildConfig(result.data, file === undefined ? undefined : resolve(file));
  config.interpolated = interpolatedVariables(interpolated.references);
  return config;
}

/** Groups the variables interpolation read by server entry (`servers.X…`, `mcpServers.X…`) and elsewhere. */
function interpolatedVariables(
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

// ---------------------------------------------------------------------------------------------
// Syntax

/**
 * Parses configuration text without validating it: YAML, JSON (with comments and trailing
 * commas) or TOML. A leading byte-order mark is ignored.
 *
 * @returns the parsed tree; `undefined` for an empty document.
 * @throws {@link ConfigError} (`SWB_ERR_CONFIG_INVALID`) with one `syntax` issue per error, each
 *   with its line and column.
 */
export function parseConfigSyntax(text: string, options: ParseConfigOptions = {}): unknown {
  const file = options.path;
  const format = options.format ?? (file === undefined ? undefined : formatFromPath(file)) ?? 'yaml';
  const parsed = parseSyntax(text.startsWith('\uFEFF') ? text.slice(1) : text, format, file);
  if (parsed.issues.length > 0) throw new ConfigError(parsed.issues);
  for (const w of parsed.warnings) options.onWarning?.(w);
  return parsed.value;
}

interface SyntaxResult {
  value: unknown;
  issues: ConfigIssue[];
  warnings: string[];
}

function parseSyntax(text: string, format: ConfigFormat, file: string | undefined): SyntaxResult {
  const syntax = (message: string, line?: number, column?: number): ConfigIssue => ({
    file,
    path: '',
    kind: 'syntax',
    message,
    ...(line === undefined ? {} : { line, column }),
  });

  if (format === 'json') {
    const source = stripJsonComments(text);
    if (source.trim() === '') return { value: undefined, issues: [], warnings: [] };
    try {
      return { value: JSON.parse(source) as unknown, issues: [], warnings: [] };
    } catch (e) {
      const message = (e as Error).message;
      const at = /at position (\d+)/.exec(message);
      const clean = message.replace(/\s*in JSON at position \d+.*$/s, '').replace(/^JSON\.parse: /, '');
      if (at?.[1] === undefined) return { value: undefined, issues: [syntax(`invalid JSON: ${clean}`)], warnings: [] };
      const pos = lineColumn(source, Number(at[1]));
      return { value: undefined, issues: [syntax(`invalid JSON: ${clean}`, pos.line, pos.column)], warnings: [] };
    }
  }

  if (format === 'toml') {
    try {
      return { value: parseToml(text), issues: [], warnings: [] };
    } catch (e) {
      if (e instanceof TomlError) {
        const first = (e.message.split('\n')[0] ?? '').replace(/^Invalid TOML document:\s*/, '');
        return { value: undefined, issues: [syntax(`invalid TOML: ${first}`, e.line, e.column)], warnings: [] };
      }
      return { value: undefined, issues: [syntax(`invalid TOML: ${(e as Error).message}`)], warnings: [] };
    }
  }

  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, merge: true, uniqueKeys: true });
  const at = (pos: readonly [number, number]): { line: number; column: number } => {
    const lc = lineCounter.linePos(pos[0]);
    return { line: lc.line, column: lc.col };
  };
  if (doc.errors.length > 0) {
    const issues = doc.errors.map((e) => {
      const p = at(e.pos);
      return syntax(`invalid YAML: ${e.message.split('\n')[0] ?? e.message}`, p.line, p.column);
    });
    return { value: undefined, issues, warnings: [] };
  }
  const warnings = doc.warnings.map((w) => {
    const p = at(w.pos);
    return formatIssue({ file, path: '', message: `YAML: ${w.message.split('\n')[0] ?? w.message}`, ...p });
  });
  try {
    return { value: doc.toJS({ maxAliasCount: 100 }) as unknown, issues: [], warnings };
  } catch (e) {
    return { value: undefined, issues: [syntax(`invalid YAML: ${(e as Error).message}`)], warnings };
  }
}

/**
 * Blanks out `//` and `/* *\/` comments and trailing commas in JSON text (JSONC, as VS Code's
 * `mcp.json` and Cursor's settings allow), keeping every other character at its offset so error
 * positions still point into the original text.
 */
export function stripJsonComments(text: string): string {
  const out = text.split('');
  let inString = false;
  for (let i = 0; i < out.length; i++) {
    const ch = out[i];
    if (inString) {
      if (ch === '\\') i += 1;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') {
      inString = true;
    } else if (ch === '/' && out[i + 1] === '/') {
      while (i < out.length && out[i] !== '\n') out[i++] = ' ';
    } else if (ch === '/' && out[i + 1] === '*') {
      out[i] = ' ';
      out[i + 1] = ' ';
      i += 2;
      while (i < out.length && !(out[i] === '*' && out[i + 1] === '/')) {
        if (out[i] !== '\n') out[i] = ' ';
        i += 1;
      }
      if (i < out.length) {
        out[i] = ' ';
        out[i + 1] = ' ';
        i += 1;
      }
    }
  }
  // Trailing commas: a comma followed only by whitespace up to `}` or `]`.
  inString = false;
  for (let i = 0; i < out.length; i++) {
    const ch = out[i];
    if (inString) {
      if (ch === '\\') i += 1;
      else if (ch === '"') inString = false;
      continue;
    }
    if (ch === '"') inString = true;
    else if (ch === ',') {
      let j = i + 1;
      while (j < out.length && /\s/.test(out[j] ?? '')) j += 1;
      if (out[j] === '}' || out[j] === ']') out[i] = ' ';
    }
  }
  return out.join('');
}

function lineColumn(text: string, offset: number): { line: number; column: number } {
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < offset && i < text.length; i++) {
    if (text[i] === '\n') {
      line += 1;
      lineStart = i + 1;
    }
  }
  return { line, column: offset - lineStart + 1 };
}

// ---------------------------------------------------------------------------------------------
// Paths

/**
 * Formats a path as users read it: `servers.everything.args[0]`; keys that are not plain
 * identifiers (server names may contain dots) are quoted: `servers["my.server"].url`.
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** Position of every node of the tree in document (depth-first) order, by formatted path. */
function documentOrder(tree: unknown): Map<string, number> {
  const order = new Map<string, number>();
  const walk = (node: unknown, path: PathSegment[]): void => {
    order.set(formatPath(path), order.size);
    if (Array.isArray(node)) node.forEach((item, i) => walk(item, [...path, i]));
    else if (isPlainObject(node)) for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
  };
  walk(tree, []);
  return order;
}

/** Document position of `path`, or of its deepest existing ancestor for a missing key. */
function orderOf(order: Map<string, number>, path: readonly PathSegment[]): number {
  for (let n = path.length; n >= 0; n--) {
    const at = order.get(formatPath(path.slice(0, n)));
    if (at !== undefined) return at;
  }
  return 0;
}

function isPrefix(prefix: readonly PathSegment[], path: readonly PathSegment[]): boolean {
  return prefix.length <= path.length && prefix.every((seg, i) => seg === path[i]);
}

function valueAt(tree: unknown, path: readonly PathSegment[]): unknown {
  let node = tree;
  for (const seg of path) {
    if (Array.isArray(node) && typeof seg === 'number') node = node[seg];
    else if (isPlainObject(node)) node = node[String(seg)];
    else return undefined;
  }
  return node;
}

// ---------------------------------------------------------------------------------------------
// Schema walking: used to name known keys ("did you mean") and to coerce interpolated scalars.

type AnySchema = z.ZodType;

/** Removes optional/default wrappers (keeps pipes, so `Duration`/`Size` stay recognisable). */
function peel(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    if (s instanceof z.ZodOptional || s instanceof z.ZodDefault || s instanceof z.ZodNullable) {
      s = s.def.innerType as AnySchema;
    } else {
      return s;
    }
  }
}

/** Removes optional/default wrappers and pipes (to the input side). */
function unwrap(schema: AnySchema): AnySchema {
  let s = schema;
  for (;;) {
    s = peel(s);
    if (s instanceof z.ZodPipe) s = s.def.in as AnySchema;
    else return s;
  }
}

/** Picks the union member that fits `node` best: same kind, then most keys in common. */
function pickOption(union: z.ZodUnion, node: unknown): AnySchema | undefined {
  const options = union.options as readonly AnySchema[];
  let best: AnySchema | undefined;
  let bestScore = -1;
  for (const option of options) {
    const u = unwrap(option);
    let score = -1;
    if (Array.isArray(node)) score = u instanceof z.ZodArray ? 1 : -1;
    else if (isPlainObject(node)) {
      if (u instanceof z.ZodRecord) score = 0;
      else if (u instanceof z.ZodObject) {
        const keys = Object.keys(u.shape);
        score = Object.keys(node).filter((k) => keys.includes(k)).length;
      }
    }
    if (score > bestScore) {
      best = option;
      bestScore = score;
    }
  }
  return best;
}

/** The schema that validates the value at `path` below `schema` (whose value is `node`). */
function schemaAt(schema: AnySchema, path: readonly PathSegment[], node: unknown): AnySchema | undefined {
  let s: AnySchema | undefined = schema;
  let n = node;
  for (const seg of path) {
    if (s === undefined) return undefined;
    let u = unwrap(s);
    if (u instanceof z.ZodUnion) {
      const picked = pickOption(u, n);
      if (picked === undefined) return undefined;
      u = unwrap(picked);
    }
    if (u instanceof z.ZodObject) s = (u.shape as Record<string, AnySchema>)[String(seg)];
    else if (u instanceof z.ZodRecord) s = u.def.valueType as AnySchema;
    else if (u instanceof z.ZodArray) s = u.def.element as AnySchema;
    else return undefined;
    n = valueAt(n, [seg]);
  }
  return s;
}

/**
 * `port: ${PORT:-8080}` interpolates to the string `"8080"`; where the schema wants a number or a
 * boolean, a string made by interpolation is converted, as a shell user would expect.
 */
function coerceScalar(doc: Record<string, unknown>, path: readonly PathSegment[]): void {
  const value = valueAt(doc, path);
  const parentPath = path.slice(0, -1);
  const key = path[path.length - 1];
  const parent = valueAt(doc, parentPath);
  if (typeof value !== 'string' || key === undefined) return;
  const schema = schemaAt(SwitchboardConfigInput, path, doc);
  if (schema === undefined) return;
  const target = unwrap(schema);
  let coerced: unknown;
  if (target instanceof z.ZodNumber && /^-?\d+(\.\d+)?$/.test(value.trim())) coerced = Number(value.trim());
  else if (target instanceof z.ZodBoolean && /^(true|false)$/i.test(value.trim()))
    coerced = value.trim().toLowerCase() === 'true';
  else return;
  if (Array.isArray(parent) && typeof key === 'number') parent[key] = coerced;
  else if (isPlainObject(parent)) parent[String(key)] = coerced;
}

function knownKeys(schema: AnySchema | undefined): string[] {
  if (schema === undefined) return [];
  const u = unwrap(schema);
  return u instanceof z.ZodObject ? Object.keys(u.shape) : [];
}

// ---------------------------------------------------------------------------------------------
// zod issues → one readable message per offending value

interface RawIssue {
  path: PathSegment[];
  message: string;
}

type ZodIssue = z.core.$ZodIssue;

function toSegments(path: readonly PropertyKey[]): PathSegment[] {
  return path.map((seg) => (typeof seg === 'number' ? seg : String(seg)));
}

const EXPECTED: Record<string, string> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  object: 'an object',
  record: 'an object',
  array: 'an array',
  null: 'null',
};

function describe(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'object') return value instanceof Date ? 'date' : 'object';
  return typeof value;
}

/** The value itself for scalars (`"abc"`, `-1`, `true`), its kind otherwise. */
function show(value: unknown): string {
  const s =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'number' || typeof value === 'boolean'
        ? String(value)
        : describe(value);
  return s.length > 60 ? `${s.slice(0, 57)}...` : s;
}

function flattenZodIssue(
  issue: ZodIssue,
  base: PathSegment[],
  baseSchema: AnySchema,
  doc: unknown,
  out: RawIssue[],
): void {
  const rel = toSegments(issue.path);
  const path = [...base, ...rel];
  const value = valueAt(doc, path);
  const here = (): AnySchema | undefined => schemaAt(baseSchema, rel, valueAt(doc, base));

  switch (issue.code) {
    case 'invalid_union': {
      unionIssue(issue, path, here(), doc, out);
      return;
    }
    case 'unrecognized_keys': {
      const known = knownKeys(here());
      for (const key of issue.keys) {
        out.push({ path: [...path, key], message: unknownKeyMessage(key, known) });
      }
      return;
    }
    case 'invalid_type': {
      const expected = EXPECTED[issue.expected] ?? issue.expected;
      out.push({
        path,
        message:
          value === undefined ? `missing (expected ${expected})` : `expected ${expected}, got ${describe(value)}`,
      });
      return;
    }
    case 'invalid_value': {
      const values = issue.values.map((v) => JSON.stringify(v));
      const expected = values.length === 1 ? values[0] : `one of ${values.join(', ')}`;
      out.push({ path, message: `expected ${expected}, got ${show(value)}` });
      return;
    }
    case 'invalid_key': {
      const name = path[path.length - 1];
      const inner = issue.issues.map((i) => i.message).join('; ');
      out.push({ path, message: `invalid name ${JSON.stringify(name)}: ${inner}` });
      return;
    }
    case 'too_small':
    case 'too_big': {
      const small = issue.code === 'too_small';
      const limit = small
        ? (issue as { minimum: number | bigint }).minimum
        : (issue as { maximum: number | bigint }).maximum;
      const inclusive = issue.inclusive !== false;
      let expected: string;
      if (issue.origin === 'string')
        expected =
          small && Number(limit) === 1 ? 'a non-empty string' : `${small ? 'at least' : 'at most'} ${limit} characters`;
      else if (issue.origin === 'array') expected = `${small ? 'at least' : 'at most'} ${limit} items`;
      else expected = `a number ${small ? '>' : '<'}${inclusive ? '=' : ''} ${limit}`;
      out.push({ path, message: `expected ${expected}, got ${show(value)}` });
      return;
    }
    case 'invalid_format': {
      const what = issue.format === 'url' ? 'expected an http:// or https:// URL' : issue.message;
      out.push({ path, message: `${what}, got ${show(value)}` });
      return;
    }
    default:
      out.push({ path, message: issue.message });
  }
}

function unionIssue(
  issue: Extract<ZodIssue, { code: 'invalid_union' }>,
  path: PathSegment[],
  schema: AnySchema | undefined,
  doc: unknown,
  out: RawIssue[],
): void {
  const value = valueAt(doc, path);
  const peeled = schema === undefined ? undefined : peel(schema);

  if (peeled === Duration || peeled === Size) {
    const what =
      peeled === Duration
        ? 'a duration such as 30s, 5m or a number of milliseconds'
        : 'a size such as 512kb, 4mb or a number of bytes';
    out.push({ path, message: `expected ${what}, got ${show(value)}` });
    return;
  }

  const branches = issue.errors;
  const options = peeled instanceof z.ZodUnion ? (peeled.options as readonly AnySchema[]) : [];

  if (peeled === ServerConfig) {
    serverUnionIssue(branches, options, path, value, doc, out);
    return;
  }

  // number | string | … all failing on the type itself: one message naming the accepted types.
  const rootTypes = branches.map((b) =>
    b.length === 1 && b[0]?.code === 'invalid_type' && b[0].path.length === 0 ? b[0] : undefined,
  );
  if (rootTypes.every((t) => t !== undefined)) {
    const expected = rootTypes.map((t) => t.expected);
    const text = expected.includes('string') ? 'a string' : expected.map((e) => EXPECTED[e] ?? e).join(' or ');
    out.push({
      path,
      message: value === undefined ? `missing (expected ${text})` : `expected ${text}, got ${describe(value)}`,
    });
    return;
  }

  // Otherwise report the branch that got furthest: no type error on the value itself, fewest issues.
  let bestIndex = 0;
  let bestScore = Number.POSITIVE_INFINITY;
  branches.forEach((b, i) => {
    const rootType = b.some((x) => x.code === 'invalid_type' && x.path.length === 0);
    const score = (rootType ? 1000 : 0) + b.length;
    if (score < bestScore) {
      bestScore = score;
      bestIndex = i;
    }
  });
  const option = options[bestIndex];
  for (const inner of branches[bestIndex] ?? []) {
    if (option === undefined) out.push({ path, message: inner.message });
    else flattenZodIssue(inner, path, option, doc, out);
  }
}

function serverUnionIssue(
  branches: ZodIssue[][],
  options: readonly AnySchema[],
  path: PathSegment[],
  value: unknown,
  doc: unknown,
  out: RawIssue[],
): void {
  if (!isPlainObject(value)) {
    out.push({
      path,
      message: `expected an object with "command" (a stdio server) or "url" (a remote server), got ${describe(value)}`,
    });
    return;
  }
  const hasCommand = 'command' in value;
  const hasUrl = 'url' in value;
  if (hasCommand && hasUrl) {
    out.push({
      path,
      message: 'has both "command" and "url": a server is either stdio ("command") or remote ("url")',
    });
    return;
  }
  if (!hasCommand && !hasUrl) {
    out.push({ path, message: 'missing "command" (a stdio server) or "url" (a remote server)' });
    const known = [...new Set(options.flatMap((o) => knownKeys(o)))];
    for (const key of Object.keys(value)) {
      if (!known.includes(key)) out.push({ path: [...path, key], message: unknownKeyMessage(key, known) });
    }
    // Still check the other fields, against the member the entry looks most like (remote-only
    // keys make it remote), without repeating the missing key or the unknown keys.
    const remoteOnly = knownKeys(options[1]).filter((k) => !knownKeys(options[0]).includes(k));
    const index = Object.keys(value).some((k) => remoteOnly.includes(k)) ? 1 : 0;
    const option = options[index];
    for (const inner of branches[index] ?? []) {
      if (inner.code === 'unrecognized_keys') continue;
      if (
        inner.code === 'invalid_type' &&
        inner.path.length === 1 &&
        valueAt(value, toSegments(inner.path)) === undefined
      ) {
        continue;
      }
      if (option === undefined) out.push({ path, message: inner.message });
      else flattenZodIssue(inner, path, option, doc, out);
    }
    return;
  }
  // Stdio is the first member of ServerConfig, remote the second.
  const index = hasCommand ? 0 : 1;
  const option = options[index];
  for (const inner of branches[index] ?? []) {
    if (option === undefined) out.push({ path, message: inner.message });
    else flattenZodIssue(inner, path, option, doc, out);
  }
}

function unknownKeyMessage(key: string, known: readonly string[]): string {
  const guess = closest(key, known);
  return guess === undefined ? 'unknown key' : `unknown key (did you mean "${guess}"?)`;
}

function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const c of candidates) {
    const d = c.toLowerCase() === word.toLowerCase() ? 0 : levenshtein(word.toLowerCase(), c.toLowerCase());
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const limit = Math.max(1, Math.floor(word.length / 3));
  return best !== undefined && bestDistance <= limit && bestDistance < word.length ? best : undefined;
}

function levenshtein(a: string, b: string): number {
  let prev = Array.from({ length: b.length + 1 }, (_, i) => i);
  for (let i = 1; i <= a.length; i++) {
    const row = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      row.push(Math.min((prev[j] ?? 0) + 1, (row[j - 1] ?? 0) + 1, (prev[j - 1] ?? 0) + cost));
    }
    prev = row;
  }
  return prev[b.length] ?? 0;
}

// ---------------------------------------------------------------------------------------------
// Cross-references (checked on the raw tree, so they are reported even beside schema errors)

interface ReferenceCheck {
  issues: RawIssue[];
  warnings: RawIssue[];
}

function isDisabled(entry: unknown): boolean {
  return isPlainObject(entry) && (entry.disabled === true || entry.enabled === false);
}

function checkReferences(doc: Record<string, unknown>): ReferenceCheck {
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
  const virtualServers = isPlainObject(doc.virtualServers) ? doc.virtualServers : {};
  for (const [vname, vs] of Object.entries(virtualServers)) {
    if (!isPlainObject(vs)) continue;
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

// ---------------------------------------------------------------------------------------------
// Assembly

function buildConfig(parsed: z.output<typeof SwitchboardConfigInput>, source: string | undefined): SwitchboardConfig {
  const { servers, mcpServers, ...rest } = parsed;
  const baseDir = source === undefined ? undefined : dirname(source);
  const merged: SwitchboardConfig['servers'] = {};
  for (const [name, server] of [...Object.entries(servers), ...Object.entries(mcpServers)]) {
    if (server.disabled === true || server.enabled === false) continue;
    merged[name] =
      baseDir !== undefined && 'command' in server && server.cwd !== undefined && !isAbsolute(server.cwd)
        ? { ...server, cwd: resolve(baseDir, server.cwd) }
        : server;
  }

  const virtualServers: Record<string, VirtualServer> = {};
  for (const [name, vs] of Object.entries(rest.virtualServers)) {
    virtualServers[name] = Array.isArray(vs.servers)
      ? { ...vs, servers: vs.servers.filter((m) => m in merged) }
      : { ...vs, servers: Object.fromEntries(Object.entries(vs.servers).filter(([m]) => m in merged)) };
  }

  const config: SwitchboardConfig = { ...rest, servers: merged, virtualServers };
  if (baseDir !== undefined && config.dataDir !== undefined && !isAbsolute(config.dataDir)) {
    config.dataDir = resolve(baseDir, config.dataDir);
  }
  if (source !== undefined) config.source = source;
  return config;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (v === null || typeof v !== 'object' || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v) as unknown;
  return proto === Object.prototype || proto === null;
}
