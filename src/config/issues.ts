/**
 * Problems found in a configuration file: {@link ConfigIssue}, the {@link ConfigError} that
 * carries every one of them, and their one-line formatting.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { PathSegment } from './interpolate.js';

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

/** A problem before it is placed in a file and given its stage: where, and what is wrong. */
export interface RawIssue {
  path: PathSegment[];
  message: string;
}
