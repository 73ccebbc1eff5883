/**
 * The two protocol eras of MCP and what tells them apart on the wire.
 *
 * - **Legacy** (2024-11-05 … 2025-11-25): a session opened by `initialize`, named by
 *   `Mcp-Session-Id` on Streamable HTTP.
 * - **Modern** (2026-07-28): stateless. Every request carries its protocol version and the
 *   client's capabilities in `params._meta` (basic §`_meta`, "Per-request protocol fields"), and
 *   on Streamable HTTP mirrors its version, method and name into the `MCP-Protocol-Version`,
 *   `Mcp-Method` and `Mcp-Name` headers (transports §Request Metadata).
 *
 * @module
 */

/** Protocol versions of the modern era the gateway serves, newest first. */
export const MODERN_PROTOCOL_VERSIONS = ['2026-07-28'] as const;

/** `_meta` key: the protocol version of one modern request (required). */
export const META_PROTOCOL_VERSION = 'io.modelcontextprotocol/protocolVersion';
/** `_meta` key: the client's capabilities relevant to one modern request (required). */
export const META_CLIENT_CAPABILITIES = 'io.modelcontextprotocol/clientCapabilities';
/** `_meta` key: the client's name and version (optional). */
export const META_CLIENT_INFO = 'io.modelcontextprotocol/clientInfo';
/** `_meta` key: the minimum log level the server should emit for one request (optional). */
export const META_LOG_LEVEL = 'io.modelcontextprotocol/logLevel';
/** `_meta` key of a result: the server's name and version. */
export const META_SERVER_INFO = 'io.modelcontextprotocol/serverInfo';
/**
 * `_meta` key of every message on a `subscriptions/listen` stream: the subscription, i.e. the
 * listen request's JSON-RPC id (basic/patterns/subscriptions §Receiving Notifications).
 */
export const META_SUBSCRIPTION_ID = 'io.modelcontextprotocol/subscriptionId';

/** MCP 2026-07-28 `HeaderMismatch` (transports §Server Validation). */
export const MCP_HEADER_MISMATCH = -32020;
/** MCP 2026-07-28 `MissingRequiredClientCapability` (basic §`_meta`). */
export const MCP_MISSING_CLIENT_CAPABILITY = -32021;
/** MCP 2026-07-28 `UnsupportedProtocolVersion` (versioning §Protocol Version Negotiation). */
export const MCP_UNSUPPORTED_PROTOCOL_VERSION = -32022;
/**
 * URL elicitation required (MCP 2025-11-25 client/elicitation §URL Elicitation Required Error,
 * kept in 2026-07-28): the request cannot be handled until the user completes the out-of-band
 * flows of `data.elicitations` (each `{mode: "url", elicitationId, url, message}`).
 */
export const MCP_URL_ELICITATION_REQUIRED = -32042;

/** Identifier of the tasks extension (MCP 2026-07-28 `capabilities.extensions`; SEP-2663). */
export const TASKS_EXTENSION = 'io.modelcontextprotocol/tasks';

/**
 * Methods a modern client may call that the gateway serves, each naming the body field
 * `Mcp-Name` mirrors (transports §Standard Request Headers; the tasks extension's Streamable HTTP
 * binding adds `params.taskId` for `tasks/get`, `tasks/update` and `tasks/cancel`), or
 * `undefined` when it has none.
 */
export const MODERN_METHODS: ReadonlyMap<string, 'name' | 'uri' | 'taskId' | undefined> = new Map([
  ['server/discover', undefined],
  ['tools/list', undefined],
  ['tools/call', 'name'],
  ['prompts/list', undefined],
  ['prompts/get', 'name'],
  ['resources/list', undefined],
  ['resources/templates/list', undefined],
  ['resources/read', 'uri'],
  ['completion/complete', undefined],
  ['subscriptions/listen', undefined],
  ['tasks/get', 'taskId'],
  ['tasks/update', 'taskId'],
  ['tasks/cancel', 'taskId'],
]);

/** Results of these methods carry caching hints (`ttlMs`, `cacheScope`; server/utilities/caching §Cacheable Results). */
export const CACHEABLE_METHODS: ReadonlySet<string> = new Set([
  'server/discover',
  'tools/list',
  'prompts/list',
  'resources/list',
  'resources/templates/list',
  'resources/read',
]);

/** True for a protocol version of the modern era the gateway serves. */
export function isModernVersion(version: unknown): boolean {
  return typeof version === 'string' && (MODERN_PROTOCOL_VERSIONS as readonly string[]).includes(version);
}

/**
 * True for a version string that names the modern era or later (`2026-07-28` and after, compared
 * as dates), served or not: a request carrying one is answered by the modern front door, which
 * refuses versions it does not serve with `UnsupportedProtocolVersion`.
 */
export function isModernOrLater(version: unknown): boolean {
  return typeof version === 'string' && /^\d{4}-\d{2}-\d{2}$/.test(version) && version >= '2026-07-28';
}

/** Base64 (RFC 4648 §4) with its padding: a length that is a multiple of 4. */
const BASE64 = /^(?:[A-Za-z0-9+/]{4})*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/;

/**
 * Decodes a mirrored header value (`Mcp-Name`, `Mcp-Param-*`; transports §Value Encoding): a value
 * with both the `=?base64?` prefix and the `?=` suffix is Base64 of UTF-8 and is decoded; any
 * other value is literal.
 *
 * @returns the value, or `undefined` when it is not valid: the sentinel form around something
 *   that is not padded Base64, or a literal with characters outside visible ASCII, space and tab
 *   (RFC 9110 §5.5)
 */
export function decodeHeaderValue(value: string): string | undefined {
  if (value.length >= 11 && value.startsWith('=?base64?') && value.endsWith('?=')) {
    const encoded = value.slice(9, -2);
    if (!BASE64.test(encoded)) return undefined;
    return Buffer.from(encoded, 'base64').toString('utf8');
  }
  return /^[\t\x20-\x7e]*$/.test(value) ? value : undefined;
}

/** The modern protocol version Switchboard speaks to a modern upstream (basic/versioning). */
export const UPSTREAM_MODERN_VERSION = '2026-07-28';

/**
 * JSON-RPC codes only the modern era defines (basic §Error codes): `HeaderMismatch`,
 * `MissingRequiredClientCapability`, `UnsupportedProtocolVersion`. A server answering a modern
 * request with one of them speaks the modern era (basic/versioning §Backward Compatibility).
 */
export const MODERN_ERROR_CODES: ReadonlySet<number> = new Set([
  MCP_HEADER_MISMATCH,
  MCP_MISSING_CLIENT_CAPABILITY,
  MCP_UNSUPPORTED_PROTOCOL_VERSION,
]);

/**
 * Methods of the 2025 era the modern era removed (changelog): never sent to a modern upstream.
 * `resources/subscribe` and `resources/unsubscribe` gave way to `subscriptions/listen`, `ping` to
 * `server/discover`, `logging/setLevel` to the per-request `_meta` log level.
 */
export const REMOVED_IN_MODERN: ReadonlySet<string> = new Set([
  'initialize',
  'notifications/initialized',
  'ping',
  'logging/setLevel',
  'resources/subscribe',
  'resources/unsubscribe',
  'notifications/roots/list_changed',
]);

/** Visible ASCII with inner spaces, no leading or trailing whitespace (the empty string too). */
const PLAIN_HEADER_VALUE = /^(?:[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?)?$/;

/**
 * Encodes a value mirrored into a header (`Mcp-Name`; transports §Value Encoding): as it is when
 * it is visible ASCII (inner spaces allowed) without leading or trailing whitespace and does not
 * start like the sentinel; otherwise as `=?base64?{Base64 of its UTF-8}?=`.
 * {@link decodeHeaderValue} reverses it.
 */
export function encodeHeaderValue(value: string): string {
  if (PLAIN_HEADER_VALUE.test(value) && !value.startsWith('=?')) return value;
  return `=?base64?${Buffer.from(value, 'utf8').toString('base64')}?=`;
}
