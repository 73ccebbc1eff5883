/**
 * What the usage log records, and the port it writes to: one {@link UsageRow} per request made
 * with a Switchboard API token, handed in batches to a {@link UsageSink} (the usage store of
 * `src/store/` implements it). Kept here, with the usage log that decides what a row is, so
 * that observability does not depend on the store.
 *
 * @module
 */

/**
 * One request recorded in the usage log, a row of the `usage_log` table.
 * Only requests made with a Switchboard API token are recorded, so the token fields are always
 * set. Optional fields are stored as `NULL` when absent.
 */
export interface UsageRow {
  /** When the request arrived, epoch ms. */
  ts: number;
  /** The API token's public id (`TokenRecord.id` in the store). */
  tokenId: string;
  /** The token's JWT ID (RFC 7519 §4.1.7). */
  jti: string;
  /** The token's stored owner (`TokenRecord.subject`), never an unverified claim. */
  subject: string;
  /** The request path without its query, e.g. `/mcp` or `/servers/echo/mcp`. */
  endpoint: string;
  /** The HTTP method (`POST`, `GET`, `DELETE`). */
  httpMethod: string;
  /** The JSON-RPC method of the request body (`tools/call`, `initialize`, …), when there was one. */
  mcpMethod?: string | undefined;
  /** The upstream server the request reached (its configured name), when one was resolved. */
  server?: string | undefined;
  /** The upstream's own tool name for `tools/call`. */
  tool?: string | undefined;
  /**
   * The identity the upstream knows the caller by, when a per-user credential was used
   * (`oauth2-user`: the upstream `sub`). Never a token.
   */
  upstreamSubject?: string | undefined;
  /** The HTTP status of the response. */
  httpStatus: number;
  /** The JSON-RPC `error.code` of the response, when it was an error response. */
  jsonrpcError?: number | undefined;
  /** Time from arrival to the end of the response, ms (fractions allowed). */
  latencyMs: number;
  /** Request body bytes. */
  bytesIn: number;
  /** Response body bytes. */
  bytesOut: number;
  /** The client address (socket peer). */
  ip?: string | undefined;
  /** The `User-Agent` header; stored cut to 512 characters. */
  userAgent?: string | undefined;
  /** True when the gateway refused the request (4xx denials, revoked or expired tokens). */
  blocked: boolean;
  /** Why it was blocked: a `SWB_ERR_…` code, or `http_<status>` when no code is known. */
  blockReason?: string | undefined;
}

/**
 * Where the usage-log writer puts its rows: batches in, old rows purged. The usage store
 * (`UsageStore` in `src/store/types.ts`) implements it.
 */
export interface UsageSink {
  /**
   * Stores rows with multi-row `INSERT`s, all or nothing (one transaction).
   *
   * @throws GatewayError `SWB_ERR_STORE_UNAVAILABLE` when the write fails (nothing was stored).
   */
  insert(rows: readonly UsageRow[]): Promise<void>;
  /** Deletes rows older than `before` (epoch ms, exclusive); returns how many. */
  purge(before: number): Promise<number>;
}
