/**
 * The admin API client of the web UI: every call carries `Authorization: Bearer <token>` (the
 * token typed on the login page, kept in memory and in `sessionStorage`, never in a cookie), and
 * every error answer `{ "error": { "code", "message", "data"? } }` becomes an {@link ApiError}.
 *
 * @module
 */

const STORAGE_KEY = 'switchboard.token';

let token: string | null = readStoredToken();

function readStoredToken(): string | null {
  try {
    return sessionStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The bearer token in use, or null when logged out. */
export function currentToken(): string | null {
  return token;
}

/** Sets (or, with null, forgets) the bearer token, in memory and in this tab's `sessionStorage`. */
export function setToken(value: string | null): void {
  token = value;
  try {
    if (value === null) sessionStorage.removeItem(STORAGE_KEY);
    else sessionStorage.setItem(STORAGE_KEY, value);
  } catch {
    // Storage disabled: the token lives in memory only, until the tab is reloaded.
  }
}

/** One field error of a refused server entry (`error.data.issues`). */
export interface Issue {
  /** Dotted path into the entry (`url`, `auth.tokenUrl`); empty for the entry itself. */
  path: string;
  message: string;
}

/** An error answer of the gateway, or a network failure (`status` 0, `code` `NETWORK`). */
export class ApiError extends Error {
  readonly status: number;
  /** `SWB_ERR_…`, or `NETWORK`. */
  readonly code: string;
  readonly data: Record<string, unknown> | undefined;

  constructor(status: number, code: string, message: string, data?: Record<string, unknown>) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.data = data;
  }

  /** The validation issues of a 400 answer (`issues`), or an empty list. */
  get issues(): Issue[] {
    const raw = this.data?.issues;
    if (!Array.isArray(raw)) return [];
    return raw.filter(
      (i): i is Issue => typeof i === 'object' && i !== null && typeof (i as Issue).message === 'string',
    );
  }
}

/** Called on every 401 answer (the token was revoked or expired meanwhile): the app logs out. */
let onUnauthorized: (() => void) | undefined;

/** Registers the handler of 401 answers. */
export function setUnauthorizedHandler(handler: (() => void) | undefined): void {
  onUnauthorized = handler;
}

/** Reports a 401 answer read outside {@link api} (event streams, MCP calls): the app logs out. */
export function notifyUnauthorized(): void {
  onUnauthorized?.();
}

/** Request headers with the bearer token. */
export function authHeaders(extra: Record<string, string> = {}): Record<string, string> {
  return token === null ? { ...extra } : { ...extra, authorization: `Bearer ${token}` };
}

/** Turns a non-2xx answer into an {@link ApiError}. */
export async function errorFrom(res: Response): Promise<ApiError> {
  let code = `HTTP_${res.status}`;
  let message = res.statusText || `HTTP ${res.status}`;
  let data: Record<string, unknown> | undefined;
  try {
    const body = (await res.json()) as { error?: Record<string, unknown> };
    const { code: c, message: m, data: d, ...rest } = body.error ?? {};
    if (typeof c === 'string') code = c;
    if (typeof m === 'string') message = m;
    // The details are in `error.data`, or (as the gateway writes them) beside code and message.
    data = typeof d === 'object' && d !== null ? (d as Record<string, unknown>) : rest;
  } catch {
    // Not JSON (a proxy's error page): keep the status line.
  }
  return new ApiError(res.status, code, message, data);
}

/**
 * Calls `/api/v1/<path>` and returns the parsed JSON answer.
 *
 * @param path - relative to `/api/v1/`, with its query (`servers`, `usage?groupBy=tool`).
 * @param body - sent as JSON when given.
 * @returns the parsed answer; undefined for 204 No Content.
 * @throws ApiError on a non-2xx answer or a network failure.
 */
export async function api<T>(path: string, init: { method?: string; body?: unknown; signal?: AbortSignal } = {}) {
  const headers = authHeaders(init.body === undefined ? {} : { 'content-type': 'application/json' });
  let res: Response;
  try {
    res = await fetch(`/api/v1/${path}`, {
      method: init.method ?? 'GET',
      headers,
      ...(init.body === undefined ? {} : { body: JSON.stringify(init.body) }),
      ...(init.signal ? { signal: init.signal } : {}),
    });
  } catch (err) {
    if (err instanceof DOMException && err.name === 'AbortError') throw err;
    throw new ApiError(0, 'NETWORK', 'The gateway could not be reached.');
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    if (res.status === 401) onUnauthorized?.();
    throw err;
  }
  // 204 No Content (a DELETE that answers nothing) has no body to parse.
  if (res.status === 204) return undefined as T;
  return (await res.json()) as T;
}

/** A readable sentence for an error thrown by {@link api}. */
export function describeError(err: unknown): string {
  if (err instanceof ApiError) {
    if (err.status === 401) return 'The API token was refused (401): it is unknown, revoked or expired.';
    if (err.status === 403) return `Not allowed (403): ${err.message}`;
    return err.status === 0 ? err.message : `${err.message} (${err.code}, HTTP ${err.status})`;
  }
  return err instanceof Error ? err.message : String(err);
}

/** `GET /api/v1/me`: the caller and what it may do. */
export interface Me {
  id: string;
  subject: string;
  kind: string;
  permissions: string[];
  servers: string[] | null;
  tools: string[] | null;
  can: {
    serversUse: boolean;
    serversManage: boolean;
    toolsExecute: boolean;
    tokensManage: boolean;
    usageRead: boolean;
    metricsRead: boolean;
    admin: boolean;
  };
}

/** Traffic of one server over the last few minutes. */
export interface ServerStats {
  windowSeconds: number;
  requests: number;
  errors: number;
  errorRate: number;
  ratePerMinute: number;
  p50Ms: number | null;
  p95Ms: number | null;
  series: Array<{ t: number; requests: number; errors: number }>;
}

/** One server of `GET /api/v1/servers`. */
export interface ServerView {
  name: string;
  source: 'file' | 'api' | 'tunnel';
  readOnly: boolean;
  transport: string | null;
  state: string;
  error: string | null;
  restarts: number;
  tools: number;
  prompts: number;
  resources: number;
  description: string | null;
  isolation?: string | null;
  sessions?: number;
  sourceFile?: string | null;
  enabled?: boolean;
  /** True for an `auth.type: oauth2-user` server: each user connects its own upstream account. */
  userConnection?: boolean;
  config?: Record<string, unknown> | null;
  stats?: ServerStats;
}

/**
 * One upstream connection of `GET /api/v1/me/connections` (and, with `principal`, of the admin
 * listing `GET /api/v1/connections`): times ISO 8601, unknown values null. Never a token.
 */
export interface ConnectionView {
  /** Only in the admin listing, e.g. `token:alice`. */
  principal?: string;
  server: string;
  scopes: string[];
  /** When the upstream access token expires (the gateway refreshes it when it can). */
  expiresAt: string | null;
  /** The upstream's name for the user. */
  upstreamSubject: string | null;
  createdAt: string;
  updatedAt: string;
  lastUsedAt: string | null;
}

/** `POST /api/v1/me/connections/{server}` answer: where the user signs in to the upstream. */
export interface ConnectStart {
  server: string;
  authorizationUrl: string;
}

/** One token of `GET /api/v1/tokens`. */
export interface TokenView {
  id: string;
  name: string;
  subject: string;
  permissions: string[];
  servers: string[];
  tools: string[];
  createdAt: string | null;
  expiresAt: string | null;
  revokedAt: string | null;
  lastUsedAt: string | null;
}

/** `POST /api/v1/tokens` answer: the secret, shown once. */
export interface MintedToken {
  id: string;
  token: string;
  expiresAt: string | null;
}

/** A catalog endpoint (`/mcp`, `/mcp/NAME`, `/servers/NAME/mcp`). */
export interface CatalogEndpoint {
  id: string;
  path: string;
  label: string;
}

/** A JSON Schema, as far as the try-it form reads it. */
export interface JsonSchema {
  type?: string | string[];
  title?: string;
  description?: string;
  enum?: unknown[];
  default?: unknown;
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  minimum?: number;
  maximum?: number;
}

/** A tool of the catalog: `name` as clients of the endpoint see it, `upstreamName` the server's own. */
export interface CatalogTool {
  name: string;
  server: string;
  upstreamName: string;
  title?: string;
  description?: string;
  inputSchema?: JsonSchema;
}

/** A prompt of the catalog. */
export interface CatalogPrompt {
  name: string;
  server: string;
  description?: string;
  arguments?: Array<{ name: string; description?: string; required?: boolean }>;
}

/** A resource of the catalog. */
export interface CatalogResource {
  uri: string;
  name: string;
  server: string;
  mimeType?: string;
  description?: string;
}

/** `GET /api/v1/catalog`. */
export interface Catalog {
  endpoint: string;
  path: string;
  endpoints: CatalogEndpoint[];
  tools: CatalogTool[];
  prompts: CatalogPrompt[];
  resources: CatalogResource[];
}

/** One row of `GET /api/v1/usage` (`bucket` ISO 8601). */
export interface UsageRow {
  bucket: string;
  key: string | null;
  server?: string | null;
  subject?: string;
  count: number;
  success: number;
  blocked: number;
  errors: number;
  avgLatencyMs: number | null;
}

/** `GET /api/v1/usage`. */
export interface UsageSeries {
  groupBy: string;
  bucket: string;
  from: string;
  to: string;
  series: UsageRow[];
}
