/**
 * The usage analytics endpoints of the admin API (docs/usage.md):
 *
 * - `GET /api/v1/tokens/{id}/usage?days=N` — one token's totals, success rate, latency p50/p95
 *   and top endpoints, servers and tools over the last N days (default 7, at most 366). Allowed
 *   to the token's owner (same subject), administrators and holders of `usage.read`; anyone else
 *   gets 404, as for the token itself.
 * - `GET /api/v1/usage?groupBy=token|server|tool&from=&to=&bucket=minute|hour|day[&tokenId=]` —
 *   a time series (defaults: `server`, the last 24 hours, `hour`). `from`/`to` are epoch ms or
 *   ISO 8601; `to` is exclusive. Allowed to administrators and holders of `usage.read`.
 *
 * The caller (the admin API) has authenticated the request; this module authorizes it. Errors
 * are JSON `{ "error": { "code": "SWB_ERR_…", "message": "…" } }` with the code's status, like
 * the rest of `/api/v1`.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { hasPermission, isAdmin } from '../auth/rbac.js';
import type { TokenService } from '../auth/tokens.js';
import { GatewayError, isGatewayError, restErrorBody } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { BUCKET_MS } from '../store/usage-store.js';
import type {
  TokenUsage,
  UsageBucket,
  UsageGroupBy,
  UsageSeriesQuery,
  UsageSeriesRow,
  UsageStore,
} from '../store/types.js';

/** The permission that grants reading every token's usage and the series. */
export const USAGE_READ_PERMISSION = 'usage.read';

/** Default `days` of the token usage endpoint. */
export const DEFAULT_USAGE_DAYS = 7;

/** Largest `days` accepted. */
export const MAX_USAGE_DAYS = 366;

/** Most buckets one series request may span (e.g. 7 days of minutes is 10 080). */
export const MAX_SERIES_BUCKETS = 20_000;

/** Accepted `groupBy` values. */
export const GROUP_BYS: readonly UsageGroupBy[] = ['token', 'server', 'tool'];
/** Accepted `bucket` values. */
export const BUCKETS: readonly UsageBucket[] = ['minute', 'hour', 'day'];
const DEFAULT_SERIES_SPAN = 86_400_000;

/** Options for {@link createUsageApi}. */
export interface UsageApiOptions {
  /** The usage store (`database.usage`). */
  usage: UsageStore;
  /** For the token's owner (`tokens.get(id).subject`). */
  tokens: Pick<TokenService, 'get'>;
  /** Logs unexpected (non-GatewayError) failures. */
  logger?: Logger;
  /** Now, epoch ms. Default `Date.now`. */
  clock?: () => number;
}

/**
 * A usage route: answers and returns true when `path` is one of its endpoints, else returns
 * false without touching `res`. Never rejects: errors are answered as JSON.
 *
 * @param path - the request path without the query.
 * @param query - the raw query string (without `?`) or parsed parameters.
 * @param principal - the authenticated caller.
 */
export type UsageRoute = (
  req: IncomingMessage,
  res: ServerResponse,
  path: string,
  query: string | URLSearchParams,
  principal: Principal,
  /** The request's id, for log lines. */
  reqId?: string,
) => Promise<boolean>;

/** The JSON body of `GET /api/v1/tokens/{id}/usage` (times as ISO 8601). */
export interface TokenUsageView extends Omit<TokenUsage, 'from' | 'to'> {
  days: number;
  from: string;
  to: string;
}

/** The JSON body of `GET /api/v1/usage` (times as ISO 8601). */
export interface UsageSeriesView {
  groupBy: UsageGroupBy;
  bucket: UsageBucket;
  from: string;
  to: string;
  tokenId: string | null;
  series: Array<Omit<UsageSeriesRow, 'bucket'> & { bucket: string }>;
}

/** The JSON view of a token summary (also printed by `switchboard usage --token ID --json`). */
export function tokenUsageView(summary: TokenUsage, days: number): TokenUsageView {
  const { tokenId, from, to, ...rest } = summary;
  return { tokenId, days, from: iso(from), to: iso(to), ...rest };
}

/** The JSON view of a series (also printed by `switchboard usage --json`). */
export function usageSeriesView(query: UsageSeriesQuery, rows: readonly UsageSeriesRow[]): UsageSeriesView {
  return {
    groupBy: query.groupBy,
    bucket: query.bucket,
    from: iso(query.from),
    to: iso(query.to),
    tokenId: query.tokenId ?? null,
    series: rows.map((r) => ({ ...r, bucket: iso(r.bucket) })),
  };
}

const TOKEN_USAGE = /^\/api\/v1\/tokens\/([^/]+)\/usage$/;
const SERIES_PATH = '/api/v1/usage';

/** Creates the usage routes; mount it in the admin API after authentication. */
export function createUsageApi(options: UsageApiOptions): UsageRoute {
  const { usage, tokens, logger } = options;
  const clock = options.clock ?? Date.now;

  async function tokenUsage(principal: Principal, id: string, params: URLSearchParams): Promise<TokenUsageView> {
    const days = parseDays(params.get('days'));
    const record = await tokens.get(id);
    const allowed =
      record !== undefined &&
      (record.subject === principal.subject || isAdmin(principal) || hasPermission(principal, USAGE_READ_PERMISSION));
    if (!allowed) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', 'token not found');
    return tokenUsageView(await usage.tokenUsage(id, { days, now: clock() }), days);
  }

  async function series(principal: Principal, params: URLSearchParams): Promise<UsageSeriesView> {
    if (!isAdmin(principal) && !hasPermission(principal, USAGE_READ_PERMISSION)) {
      throw new GatewayError('SWB_ERR_AUTH_FORBIDDEN', `permission ${USAGE_READ_PERMISSION} is required`, {
        data: { permission: USAGE_READ_PERMISSION },
      });
    }
    const groupBy = oneOf(params.get('groupBy'), GROUP_BYS, 'server', 'groupBy');
    const bucket = oneOf(params.get('bucket'), BUCKETS, 'hour', 'bucket');
    const to = parseTime(params.get('to'), 'to') ?? clock();
    const from = parseTime(params.get('from'), 'from') ?? to - DEFAULT_SERIES_SPAN;
    if (from >= to) throw invalid('from must be before to');
    if ((to - from) / BUCKET_MS[bucket] > MAX_SERIES_BUCKETS) {
      throw invalid(`the range spans more than ${MAX_SERIES_BUCKETS} ${bucket} buckets; use a larger bucket`);
    }
    const tokenId = params.get('tokenId') ?? undefined;
    const query = { groupBy, bucket, from, to, ...(tokenId ? { tokenId } : {}) };
    return usageSeriesView(query, await usage.usageSeries(query));
  }

  return async function usageApi(req, res, path, query, principal, reqId) {
    const tokenMatch = TOKEN_USAGE.exec(path);
    if (tokenMatch === null && path !== SERIES_PATH) return false;
    try {
      if (req.method !== 'GET') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
      const params = typeof query === 'string' ? new URLSearchParams(query) : query;
      const body =
        tokenMatch === null
          ? await series(principal, params)
          : await tokenUsage(principal, decodeSegment(tokenMatch[1] ?? ''), params);
      send(res, 200, body);
    } catch (err) {
      const ge = isGatewayError(err) ? err : new GatewayError('SWB_ERR_INTERNAL', 'Internal error', { cause: err });
      if (!isGatewayError(err)) logger?.error({ reqId, err }, 'usage API error');
      else if (ge.status >= 500) logger?.warn({ reqId, err }, 'usage API failed');
      sendError(res, ge);
    }
    return true;
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: GatewayError): void {
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: Record<string, string> = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (err.status === 405) headers.allow = 'GET';
  res.writeHead(err.status, headers);
  res.end(JSON.stringify(restErrorBody(err)));
}

function invalid(message: string): GatewayError {
  return new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', message);
}

function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw invalid('malformed token id');
  }
}

/** `days`: a positive number (fractions allowed) up to {@link MAX_USAGE_DAYS}; default 7. */
export function parseDays(value: string | null | undefined): number {
  if (value === null || value === undefined || value === '') return DEFAULT_USAGE_DAYS;
  const days = Number(value);
  if (!Number.isFinite(days) || days <= 0 || days > MAX_USAGE_DAYS) {
    throw invalid(`days must be a positive number of days, at most ${MAX_USAGE_DAYS}`);
  }
  return days;
}

/**
 * A time parameter: epoch milliseconds (digits) or an ISO 8601 date/time; `undefined` when
 * absent.
 *
 * @throws GatewayError `SWB_ERR_HTTP_INVALID_REQUEST` for anything else.
 */
export function parseTime(value: string | null | undefined, name: string): number | undefined {
  if (value === null || value === undefined || value === '') return undefined;
  const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value);
  if (!Number.isFinite(ms)) throw invalid(`${name} must be epoch milliseconds or an ISO 8601 date`);
  return ms;
}

function oneOf<T extends string>(value: string | null, allowed: readonly T[], fallback: T, name: string): T {
  if (value === null || value === '') return fallback;
  if ((allowed as readonly string[]).includes(value)) return value as T;
  throw invalid(`${name} must be one of ${allowed.join(', ')}`);
}

function iso(ms: number): string {
  return new Date(ms).toISOString();
}
