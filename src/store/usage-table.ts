/**
 * The `usage_log` table (migration `0002_usage`) as the usage store writes it: its row shape for
 * Kysely, and each {@link UsageRow} turned into `INSERT` parameters — cut to size, made finite,
 * and, for the SQLite writer thread, packed into one transferable array.
 *
 * @module
 */
import type { ColumnType, Generated } from 'kysely';
import type { EncodedParams } from './sqlite-usage-writer.js';
import type { UsageRow } from './types.js';

/** A `bigint` column: pg reads int8 as a string, better-sqlite3 as a number. */
type Int8 = ColumnType<number | string, number, number>;

/** Row shape of the `usage_log` table. */
export interface UsageLogTable {
  id: Generated<number | string>;
  ts: Int8;
  token_id: string;
  jti: string;
  subject: string;
  endpoint: string;
  http_method: string;
  mcp_method: string | null;
  server: string | null;
  tool: string | null;
  http_status: number;
  jsonrpc_error: number | null;
  latency_ms: number;
  bytes_in: Int8;
  bytes_out: Int8;
  ip: string | null;
  user_agent: string | null;
  /** 0 or 1 (an integer on both databases). */
  blocked: number;
  block_reason: string | null;
  upstream_subject: string | null;
}

/** The tables this store reads and writes, as Kysely sees them (a type alias: `withTables` needs one). */
export type UsageTables = {
  usage_log: UsageLogTable;
};

/** Longest stored `user_agent`, characters. */
export const MAX_USER_AGENT_LENGTH = 512;

/** Other free-text columns are cut too, so a hostile client cannot store megabytes per row. */
const MAX_TEXT_LENGTH = 1_024;

/** The columns of `usage_log` an insert sets, in {@link pushColumns} order, with their kind. */
const COLUMNS = [
  ['ts', 'number'],
  ['token_id', 'text'],
  ['jti', 'text'],
  ['subject', 'text'],
  ['endpoint', 'text'],
  ['http_method', 'text'],
  ['mcp_method', 'text'],
  ['server', 'text'],
  ['tool', 'text'],
  ['http_status', 'number'],
  ['jsonrpc_error', 'number'],
  ['latency_ms', 'number'],
  ['bytes_in', 'number'],
  ['bytes_out', 'number'],
  ['ip', 'text'],
  ['user_agent', 'text'],
  ['blocked', 'number'],
  ['block_reason', 'text'],
  ['upstream_subject', 'text'],
] as const satisfies ReadonlyArray<readonly [keyof UsageLogTable, 'text' | 'number']>;

const INSERT_COLUMNS: readonly (keyof UsageLogTable)[] = COLUMNS.map(([name]) => name);

/** `insert into "usage_log" (…) values (…), …` for `count` rows: `?` on SQLite, `$n` on PostgreSQL. */
export function insertText(postgres: boolean, count: number): string {
  const width = INSERT_COLUMNS.length;
  const tuples: string[] = [];
  for (let r = 0; r < count; r++) {
    const marks: string[] = [];
    for (let c = 1; c <= width; c++) marks.push(postgres ? `$${r * width + c}` : '?');
    tuples.push(`(${marks.join(', ')})`);
  }
  const columns = INSERT_COLUMNS.map((c) => `"${c}"`).join(', ');
  return `insert into "usage_log" (${columns}) values ${tuples.join(', ')}`;
}

/**
 * Appends one row's values in {@link INSERT_COLUMNS} order, cut to size. Optional fields also
 * accept `null`, and numbers are made finite, so one sloppy row cannot make a whole batch fail.
 */
export function pushColumns(params: unknown[], row: UsageRow): void {
  params.push(
    Number.isFinite(row.ts) ? Math.floor(row.ts) : Date.now(),
    row.tokenId,
    row.jti,
    cut(row.subject, MAX_TEXT_LENGTH),
    cut(row.endpoint, MAX_TEXT_LENGTH),
    cut(row.httpMethod, 16),
    optional(row.mcpMethod, MAX_TEXT_LENGTH),
    optional(row.server, MAX_TEXT_LENGTH),
    optional(row.tool, MAX_TEXT_LENGTH),
    Number.isFinite(row.httpStatus) ? Math.trunc(row.httpStatus) : 0,
    typeof row.jsonrpcError === 'number' && Number.isFinite(row.jsonrpcError) ? Math.trunc(row.jsonrpcError) : null,
    Number.isFinite(row.latencyMs) ? Math.max(0, row.latencyMs) : 0,
    count(row.bytesIn),
    count(row.bytesOut),
    optional(row.ip, 64),
    optional(row.userAgent, MAX_USER_AGENT_LENGTH),
    row.blocked ? 1 : 0,
    optional(row.blockReason, 256),
    optional(row.upstreamSubject, MAX_TEXT_LENGTH),
  );
}

/** Which {@link INSERT_COLUMNS} hold text (the rest hold numbers). */
const TEXT_COLUMNS: readonly boolean[] = COLUMNS.map(([, kind]) => kind === 'text');

/**
 * The rows' parameters for the writer thread as one `Float64Array` (transferred, not copied) and a
 * table of the distinct strings, which repeat from row to row (token, subject, endpoint, method,
 * server, tool, address, user agent): posting that costs a fraction of cloning ~18 values per row.
 * Text cells hold an index into `strings` (−1 for NULL); number cells the value (NaN for NULL).
 */
export function encodeRows(rows: readonly UsageRow[]): EncodedParams {
  const width = INSERT_COLUMNS.length;
  const values = new Float64Array(rows.length * width);
  const strings: string[] = [];
  const index = new Map<string, number>();
  const scratch: unknown[] = [];
  let at = 0;
  for (const row of rows) {
    scratch.length = 0;
    pushColumns(scratch, row);
    for (let c = 0; c < width; c++) {
      const v = scratch[c];
      if (typeof v === 'number') values[at++] = v;
      else if (typeof v === 'string') {
        let i = index.get(v);
        if (i === undefined) {
          i = strings.push(v) - 1;
          index.set(v, i);
        }
        values[at++] = i;
      } else values[at++] = TEXT_COLUMNS[c] ? -1 : Number.NaN;
    }
  }
  return { values, strings, text: TEXT_COLUMNS };
}

function cut(text: string, max: number): string {
  const value = typeof text === 'string' ? text : String(text);
  return value.length > max ? value.slice(0, max) : value;
}

function optional(text: string | null | undefined, max: number): string | null {
  return text === undefined || text === null ? null : cut(text, max);
}

function count(n: number): number {
  return Number.isFinite(n) && n > 0 ? Math.floor(n) : 0;
}
