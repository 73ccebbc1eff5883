/**
 * Which protocol era an upstream speaks (basic/versioning §Backward Compatibility): the
 * `server/discover` probe's answer judged ({@link judgeDiscoverAnswer}), the modern per-request
 * `_meta` Switchboard stamps on what it sends ({@link modernRequestMeta}), and the
 * InitializeResult-shaped view of a `DiscoverResult` the rest of the gateway reads
 * ({@link initializeResultOfDiscover}).
 *
 * @module
 */
import {
  META_CLIENT_CAPABILITIES,
  META_CLIENT_INFO,
  META_PROTOCOL_VERSION,
  META_SERVER_INFO,
  MODERN_ERROR_CODES,
  UPSTREAM_MODERN_VERSION,
} from '../protocol/era.js';
import type { JsonObject, JsonRpcResponse } from '../protocol/jsonrpc.js';

/** The era an upstream was found to speak. */
export type UpstreamEra = 'legacy' | 'modern';

/**
 * The `protocol` server setting: `auto` probes with `server/discover` and falls back to
 * `initialize`; `legacy` opens with `initialize` only; `modern` probes and never falls back.
 */
export type UpstreamProtocol = 'auto' | 'legacy' | 'modern';

/** What the answer to a `server/discover` probe says about the upstream. */
export type ProbeVerdict =
  /** A `DiscoverResult` listing 2026-07-28: talk to it in the modern era. */
  | { readonly kind: 'modern'; readonly result: JsonObject }
  /** Anything a legacy server answers (an error, an HTTP 4xx, no answer in time): fall back to `initialize`. */
  | { readonly kind: 'legacy'; readonly reason: string }
  /** A modern server without a version Switchboard speaks: do not fall back (basic/versioning). */
  | { readonly kind: 'incompatible'; readonly reason: string }
  /** The probe never reached a server (refused, closed): the connection attempt fails as a whole. */
  | { readonly kind: 'unreachable'; readonly reason: string; readonly code: string };

/** `error.data` of the gateway's synthetic errors (see `src/errors.ts`, `http-common.ts`). */
interface ErrorData {
  code?: unknown;
  status?: unknown;
  modernError?: unknown;
  supported?: unknown;
}

/**
 * Judges the answer to a `server/discover` probe (transports/stdio and transports/streamable-http
 * §Backward Compatibility):
 * - a result whose `supportedVersions` includes 2026-07-28 → `modern`;
 * - a result with `supportedVersions` that does not → `incompatible` (a modern server);
 * - a modern JSON-RPC error (-32020, -32021, -32022), in the body of a JSON answer or of an HTTP
 *   4xx (`error.data.modernError` of `SWB_ERR_UPSTREAM_HTTP`) → `incompatible`;
 * - the transport never reached a server (`SWB_ERR_UPSTREAM_UNAVAILABLE`, `…_CLOSED`) →
 *   `unreachable`;
 * - anything else (any other JSON-RPC error, an HTTP status, a timeout, a malformed answer, a
 *   result without `supportedVersions`) → `legacy`.
 *
 * Pure; never throws.
 */
export function judgeDiscoverAnswer(response: JsonRpcResponse): ProbeVerdict {
  if ('result' in response) {
    const versions = response.result.supportedVersions;
    if (!Array.isArray(versions)) return { kind: 'legacy', reason: 'server/discover result has no supportedVersions' };
    if (versions.includes(UPSTREAM_MODERN_VERSION)) return { kind: 'modern', result: response.result };
    return {
      kind: 'incompatible',
      reason: `the upstream supports ${JSON.stringify(versions)}, not ${UPSTREAM_MODERN_VERSION}`,
    };
  }
  const error = response.error;
  if (MODERN_ERROR_CODES.has(error.code)) {
    return { kind: 'incompatible', reason: modernErrorReason(error.code, error.data) };
  }
  const data = error.data as ErrorData | undefined;
  const code = typeof data?.code === 'string' ? data.code : undefined;
  if (typeof data?.modernError === 'number') {
    return { kind: 'incompatible', reason: modernErrorReason(data.modernError, data) };
  }
  if (code === 'SWB_ERR_UPSTREAM_UNAVAILABLE' || code === 'SWB_ERR_UPSTREAM_CLOSED') {
    return { kind: 'unreachable', reason: error.message, code };
  }
  if (code === 'SWB_ERR_UPSTREAM_TIMEOUT')
    return { kind: 'legacy', reason: 'server/discover was not answered in time' };
  if (code === 'SWB_ERR_UPSTREAM_HTTP') {
    return { kind: 'legacy', reason: `server/discover answered HTTP ${String(data?.status)}` };
  }
  return { kind: 'legacy', reason: `server/discover answered error ${error.code}` };
}

function modernErrorReason(code: number, data: unknown): string {
  const supported = (data as ErrorData | undefined)?.supported;
  return Array.isArray(supported)
    ? `the upstream answered modern error ${code}; it supports ${JSON.stringify(supported)}, not ${UPSTREAM_MODERN_VERSION}`
    : `the upstream answered modern error ${code} to a ${UPSTREAM_MODERN_VERSION} request`;
}

/**
 * The per-request `_meta` fields of every request to a modern upstream (basic §`_meta`): the
 * protocol version, the client capabilities (`{}`: the gateway offers none to modern upstreams
 * yet) and the client's identity. Built once per upstream and frozen; merged over the caller's
 * `_meta` (its `progressToken` and trace context stay).
 */
export function modernRequestMeta(gatewayVersion: string): Readonly<JsonObject> {
  return Object.freeze({
    [META_PROTOCOL_VERSION]: UPSTREAM_MODERN_VERSION,
    [META_CLIENT_CAPABILITIES]: Object.freeze({}),
    [META_CLIENT_INFO]: Object.freeze({ name: 'switchboard', version: gatewayVersion }),
  });
}

/**
 * The InitializeResult-shaped view of a modern upstream's `DiscoverResult`, which views,
 * `server/discover` answers and the admin API read as they read a 2025 upstream's: the modern
 * version as `protocolVersion`, the capabilities (resource `subscribe` included: the gateway
 * serves subscriptions through the upstream's `subscriptions/listen`, `upstream-listen.ts`),
 * `serverInfo` from `_meta["io.modelcontextprotocol/serverInfo"]` (or a top-level `serverInfo`)
 * and the instructions.
 */
export function initializeResultOfDiscover(discover: JsonObject): JsonObject {
  const caps = isObject(discover.capabilities) ? { ...discover.capabilities } : {};
  const meta = isObject(discover._meta) ? (discover._meta as JsonObject) : undefined;
  const serverInfo = meta?.[META_SERVER_INFO] ?? discover.serverInfo;
  const out: JsonObject = { protocolVersion: UPSTREAM_MODERN_VERSION, capabilities: caps };
  if (isObject(serverInfo)) out.serverInfo = serverInfo;
  if (typeof discover.instructions === 'string') out.instructions = discover.instructions;
  return out;
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
