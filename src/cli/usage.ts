/**
 * `switchboard usage [--config FILE] [--token-id ID] [--days N] [--group-by server|tool|token]
 * [--bucket minute|hour|day] [--json]` (docs/usage.md): prints the usage analytics
 * of the admin API as a table, read from the configured database (`SWITCHBOARD_DATABASE_URL`,
 * else the SQLite file in the data directory — the one `switchboard serve` writes).
 *
 * - `--token-id ID` alone: that token's summary (as `GET /api/v1/tokens/{id}/usage`).
 * - otherwise: a time series grouped by `--group-by` (default `server`), restricted to `--token-id`
 *   when given (as `GET /api/v1/usage`).
 *
 * Like `switchboard token`, it applies pending migrations first.
 *
 * @module
 */
import type { EnvSource } from '../config/interpolate.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { BUCKETS, GROUP_BYS, parseDays, tokenUsageView, usageSeriesView } from '../http/usage-api.js';
import { silentLogger, type Logger } from '../observability/logger.js';
import type { TokenUsage, UsageBucket, UsageGroupBy, UsageSeriesRow } from '../store/types.js';
import { processOutput, type CliOutput } from './check.js';
import { withConfiguredDatabase } from './database.js';

/** Options of `switchboard usage`. */
export interface UsageOptions {
  /** Configuration file (finds the database). Default `SWITCHBOARD_CONFIG`, else the bundled example. */
  config?: string;
  /** A token id: its summary, or (with `groupBy`) its series only. */
  token?: string;
  /** The window: the last N days (fractions allowed, at most 366). Default 7. */
  days?: string | number;
  /** Series grouping: `server` (default), `tool` or `token`. */
  groupBy?: string;
  /** Series bucket: `minute`, `hour` or `day`. Default `hour` for windows up to 2 days, else `day`. */
  bucket?: string;
  /** Print the admin API's JSON instead of a table. */
  json?: boolean;
  /** Database URL. Default `SWITCHBOARD_DATABASE_URL`, else the SQLite file in the data directory. */
  databaseUrl?: string;
  /** Environment for the config, `SWITCHBOARD_CONFIG` and `SWITCHBOARD_DATABASE_URL`. Default `process.env`. */
  env?: EnvSource;
  /** Logger for database diagnostics. Default: silent. */
  logger?: Logger;
  /** Now, epoch ms (tests). Default `Date.now`. */
  clock?: () => number;
}

/**
 * Prints usage analytics (see the module comment).
 *
 * @returns the exit code: 0 on success, 1 for invalid options or config, an unknown token or a
 *   database that cannot be read.
 */
export async function runUsage(opts: UsageOptions = {}, output: CliOutput = processOutput): Promise<number> {
  const env = opts.env ?? process.env;
  const clock = opts.clock ?? Date.now;
  let days: number;
  let groupBy: UsageGroupBy | undefined;
  let bucket: UsageBucket | undefined;
  try {
    days = parseDays(opts.days === undefined ? undefined : String(opts.days));
    groupBy = choice(opts.groupBy, GROUP_BYS, '--group-by');
    bucket = choice(opts.bucket, BUCKETS, '--bucket');
  } catch (err) {
    if (!isGatewayError(err)) throw err;
    output.err(err.message.replace(/^days/, '--days'));
    return 1;
  }

  return withConfiguredDatabase(
    { config: opts.config, databaseUrl: opts.databaseUrl, env, logger: opts.logger ?? silentLogger() },
    output,
    async (db) => {
      await db.migrate();
      const usage = db.usage;
      if (usage === undefined) {
        output.err('this database has no usage log');
        return 1;
      }
      const now = clock();
      if (opts.token !== undefined && groupBy === undefined) {
        const record = await db.tokens.get(opts.token);
        if (record === undefined) {
          output.err(`no token with id ${opts.token}`);
          return 1;
        }
        const summary = await usage.tokenUsage(opts.token, { days, now });
        if (opts.json) output.out(JSON.stringify(tokenUsageView(summary, days)));
        else printSummary(output, summary, days, `${record.name}, owner ${record.subject}`);
        return 0;
      }
      const query = {
        groupBy: groupBy ?? 'server',
        bucket: bucket ?? (days <= 2 ? 'hour' : 'day'),
        from: now - days * 86_400_000,
        to: now,
        ...(opts.token === undefined ? {} : { tokenId: opts.token }),
      } as const;
      const rows = await usage.usageSeries(query);
      if (opts.json) output.out(JSON.stringify(usageSeriesView(query, rows)));
      else printSeries(output, query.groupBy, rows);
      return 0;
    },
  );
}

function choice<T extends string>(value: string | undefined, allowed: readonly T[], flag: string): T | undefined {
  if (value === undefined) return undefined;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `${flag} must be one of ${allowed.join(', ')}`);
}

function printSummary(output: CliOutput, s: TokenUsage, days: number, label: string): void {
  output.out(`token ${s.tokenId} (${label})`);
  output.out(`last ${days} day${days === 1 ? '' : 's'}: ${iso(s.from)} .. ${iso(s.to)}`);
  output.out('');
  table(output, [
    ['requests', String(s.total)],
    ['success', String(s.success)],
    ['blocked', String(s.blocked)],
    ['errors', String(s.errors)],
    ['success rate', s.successRate === null ? '-' : `${(s.successRate * 100).toFixed(1)}%`],
    ['latency p50', ms(s.latencyMs.p50)],
    ['latency p95', ms(s.latencyMs.p95)],
    ['latency avg', ms(s.latencyMs.avg)],
    ['bytes in', String(s.bytesIn)],
    ['bytes out', String(s.bytesOut)],
  ]);
  const tops: Array<[string, string[][]]> = [
    ['ENDPOINT', s.topEndpoints.map((e) => [e.name, String(e.count)])],
    ['SERVER', s.topServers.map((e) => [e.name, String(e.count)])],
    ['TOOL', s.topTools.map((e) => [e.server === undefined ? e.name : `${e.server}/${e.name}`, String(e.count)])],
  ];
  for (const [title, rows] of tops) {
    output.out('');
    table(output, [[title, 'REQUESTS'], ...(rows.length === 0 ? [['-', '0']] : rows)], [false, true]);
  }
}

function printSeries(output: CliOutput, groupBy: UsageGroupBy, rows: readonly UsageSeriesRow[]): void {
  const head = groupBy === 'token' ? ['TOKEN', 'OWNER'] : groupBy === 'tool' ? ['SERVER', 'TOOL'] : ['SERVER'];
  const numeric = ['REQUESTS', 'SUCCESS', 'BLOCKED', 'ERRORS', 'AVG MS', 'BYTES IN', 'BYTES OUT'];
  const body = rows.map((r) => {
    const keys =
      groupBy === 'token'
        ? [r.key ?? '-', r.subject ?? '-']
        : groupBy === 'tool'
          ? [r.server ?? '-', r.key ?? '-']
          : [r.key ?? '-'];
    return [
      iso(r.bucket),
      ...keys,
      String(r.count),
      String(r.success),
      String(r.blocked),
      String(r.errors),
      r.avgLatencyMs === null ? '-' : r.avgLatencyMs.toFixed(1),
      String(r.bytesIn),
      String(r.bytesOut),
    ];
  });
  if (body.length === 0) {
    output.out('no requests recorded in this window');
    return;
  }
  table(
    output,
    [['BUCKET', ...head, ...numeric], ...body],
    [false, ...head.map(() => false), ...numeric.map(() => true)],
  );
}

/** Prints rows as columns separated by two spaces; `right[i]` right-aligns column i. */
function table(output: CliOutput, rows: readonly string[][], right: readonly boolean[] = []): void {
  const widths: number[] = [];
  for (const row of rows) row.forEach((cell, i) => (widths[i] = Math.max(widths[i] ?? 0, cell.length)));
  for (const row of rows) {
    const cells = row.map((cell, i) => {
      const width = widths[i] ?? 0;
      return right[i] === true ? cell.padStart(width) : i === row.length - 1 ? cell : cell.padEnd(width);
    });
    output.out(cells.join('  ').trimEnd());
  }
}

function ms(value: number | null): string {
  if (value === null) return '-';
  return `${Number.isInteger(value) ? value : value.toFixed(1)} ms`;
}

function iso(t: number): string {
  return new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z');
}
