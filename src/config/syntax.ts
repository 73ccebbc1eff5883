/**
 * Configuration syntax: YAML, JSON (with comments and trailing commas, as VS Code writes it) and
 * TOML parsed into a plain tree, each syntax error reported with its line and column. Also the
 * options shared by every loading entry point, and the format chosen by file extension.
 *
 * @module
 */
import { extname } from 'node:path';
import { parse as parseToml, TomlError } from 'smol-toml';
import { LineCounter, parseDocument } from 'yaml';
import type { EnvSource } from './interpolate.js';
import { ConfigError, formatIssue, type ConfigIssue } from './issues.js';

/** A configuration file format, chosen by file extension. */
export type ConfigFormat = 'yaml' | 'json' | 'toml';

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
