/**
 * Edge checks done before any JSON-RPC processing: DNS-rebinding protection (`Host` and
 * `Origin`, MCP transports §Security Warning), `Accept`/`Content-Type` media types, body size limits.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { parse as parseMediaType } from 'content-type';
import Negotiator from 'negotiator';
import { GatewayError, isGatewayError } from '../errors.js';

const LOOPBACK_HOSTS = new Set(['localhost', '127.0.0.1', '[::1]', '::1']);

/** Options for {@link createOriginGuard}. */
export interface OriginGuardOptions {
  /** The host the server is bound to. */
  bindHost: string;
  /** Extra allowed `Host` values (hostname or hostname:port). */
  allowedHosts: readonly string[];
  /** Extra allowed `Origin` values (scheme://host[:port]). */
  allowedOrigins: readonly string[];
}

/** True for loopback names and addresses (127.0.0.0/8, ::1, localhost). */
export function isLoopbackHost(host: string): boolean {
  return LOOPBACK_HOSTS.has(host) || /^127(?:\.\d{1,3}){3}$/.test(host) || host.endsWith('.localhost');
}

function hostnameOf(hostHeader: string): string {
  if (hostHeader.startsWith('[')) {
    const end = hostHeader.indexOf(']');
    return end > 0 ? hostHeader.slice(0, end + 1) : hostHeader;
  }
  const colon = hostHeader.lastIndexOf(':');
  return colon > 0 ? hostHeader.slice(0, colon) : hostHeader;
}

/**
 * Builds the DNS-rebinding guard. `Host` must be a loopback name, the bind host, or listed in
 * `allowedHosts` (when bound to a wildcard address with no `allowedHosts`, any Host is
 * accepted). `Origin`, when present, must be a loopback origin, listed in `allowedOrigins`, or —
 * when the Host was checked by name — the request's own origin (same `host[:port]` as `Host`).
 *
 * @returns a function that throws GatewayError `SWB_ERR_HTTP_FORBIDDEN_HOST` / `SWB_ERR_HTTP_FORBIDDEN_ORIGIN` (403)
 */
export function createOriginGuard(options: OriginGuardOptions): (req: IncomingMessage) => void {
  const allowedHosts = new Set(options.allowedHosts.map((h) => h.toLowerCase()));
  const allowedOrigins = new Set(options.allowedOrigins.map((o) => o.toLowerCase().replace(/\/$/, '')));
  const wildcard = options.bindHost === '0.0.0.0' || options.bindHost === '::' || options.bindHost === '';
  const bind = options.bindHost.toLowerCase();
  const anyHost = wildcard && allowedHosts.size === 0;
  return (req) => {
    const host = (req.headers.host ?? '').toLowerCase();
    if (!anyHost) {
      const name = hostnameOf(host);
      if (!(isLoopbackHost(name) || name === bind || allowedHosts.has(host) || allowedHosts.has(name))) {
        throw new GatewayError(
          'SWB_ERR_HTTP_FORBIDDEN_HOST',
          `Host "${host}" is not allowed (configure http.allowedHosts)`,
        );
      }
    }
    const origin = req.headers.origin;
    if (origin === undefined || origin === 'null') {
      if (origin === 'null') throw new GatewayError('SWB_ERR_HTTP_FORBIDDEN_ORIGIN', 'Origin "null" is not allowed');
      return;
    }
    const o = origin.toLowerCase();
    if (allowedOrigins.has(o)) return;
    let url: URL;
    try {
      url = new URL(o);
    } catch {
      throw new GatewayError('SWB_ERR_HTTP_FORBIDDEN_ORIGIN', `Origin "${origin}" is not a valid origin`);
    }
    // Same origin (a page the gateway served, such as the admin UI) on a Host that passed the
    // check by name: a rebinding page cannot present an allowed Host. With any Host accepted
    // (wildcard bind, no allowedHosts) it could, so there the Origin must be listed.
    if (!anyHost && url.host === host) return;
    if (!isLoopbackHost(url.hostname)) {
      throw new GatewayError(
        'SWB_ERR_HTTP_FORBIDDEN_ORIGIN',
        `Origin "${origin}" is not allowed (configure http.allowedOrigins)`,
      );
    }
  };
}

/** A media type an MCP endpoint answers with. */
export type McpMediaType = 'application/json' | 'text/event-stream';

/** What the MCP endpoints produce, as offered to negotiation: both are always UTF-8. */
const OFFERED = ['application/json; charset=utf-8', 'text/event-stream; charset=utf-8'];
const ACCEPTS_JSON = 1;
const ACCEPTS_SSE = 2;
/** Negotiation results by `Accept` value: clients repeat the same few values on every request. */
const acceptCache = new Map<string, number>();
const ACCEPT_CACHE_MAX = 256;
/** Longer `Accept` values are negotiated every time rather than kept. */
const ACCEPT_CACHE_KEY_MAX = 256;

function acceptedMask(header: string): number {
  let mask = acceptCache.get(header);
  if (mask !== undefined) return mask;
  mask = 0;
  for (const t of new Negotiator({ headers: { accept: header } }).mediaTypes(OFFERED))
    mask |= t === OFFERED[0] ? ACCEPTS_JSON : ACCEPTS_SSE;
  if (header.length <= ACCEPT_CACHE_KEY_MAX) {
    if (acceptCache.size >= ACCEPT_CACHE_MAX) acceptCache.clear();
    acceptCache.set(header, mask);
  }
  return mask;
}

/**
 * True when the request's `Accept` header admits `type` (RFC 9110 §12.5.1): media ranges with
 * wildcards (any type, or `application/*`), the most specific matching range decides, `q=0` refuses,
 * parameters must match (`charset=utf-8` does). Parsed by `negotiator`; each distinct header value
 * is negotiated once and remembered (a bounded cache), so the hot path does one `Map` lookup.
 *
 * A request without `Accept` is refused: MCP requires clients to list the types they accept
 * (transports §Sending Messages to the Server).
 */
export function accepts(req: IncomingMessage, type: McpMediaType): boolean {
  const header = req.headers.accept;
  if (header === undefined) return false;
  return (acceptedMask(header) & (type === 'application/json' ? ACCEPTS_JSON : ACCEPTS_SSE)) !== 0;
}

/**
 * True when a `Content-Type` value is exactly `application/json` (RFC 9110 §8.3: type and subtype
 * case-insensitive, parameters allowed) with no charset or `charset=utf-8` (RFC 8259 §8.1: JSON
 * exchanged between systems is UTF-8). Parsed by `content-type`, which refuses anything outside
 * the media-type grammar; `application/jsonx` or `text/plain; a=application/json` are not JSON.
 */
export function isJsonContentType(header: string | undefined): boolean {
  if (header === undefined) return false;
  if (header === 'application/json') return true;
  let parsed: { type: string; parameters: Record<string, string | undefined> };
  try {
    parsed = parseMediaType(header);
  } catch {
    return false; // not a media type at all (RFC 9110 §8.3.1 grammar)
  }
  if (parsed.type !== 'application/json') return false;
  const charset = parsed.parameters.charset;
  return charset === undefined || charset.toLowerCase() === 'utf-8';
}

/**
 * Where {@link receiveBody} delivers a body: exactly one of the two is called, once. Methods of
 * one object (not closures), so the MCP hot path allocates no function per request.
 */
export interface BodyReceiver {
  /** The whole body, decoded as UTF-8. */
  body(text: string): void;
  /**
   * The body could not be read: `GatewayError` `SWB_ERR_HTTP_BODY_TOO_LARGE` (413) past the limit
   * (declared or actual), or `SWB_ERR_HTTP_BODY_ABORTED` when the request stream failed (the
   * client aborted; the original error is its `cause`).
   */
  failed(err: unknown): void;
}

/** Reading state of one request body, kept on the request so the listeners can be shared. */
interface BodyState {
  readonly limit: number;
  readonly receiver: BodyReceiver;
  first: Buffer | undefined;
  more: Buffer[] | undefined;
  size: number;
  done: boolean;
}

const BODY = Symbol('switchboard.body');
type WithBody = IncomingMessage & { [BODY]?: BodyState };

function tooLarge(limit: number): GatewayError {
  return new GatewayError('SWB_ERR_HTTP_BODY_TOO_LARGE', `request body exceeds ${limit} bytes`);
}

function onBodyData(this: WithBody, chunk: Buffer): void {
  const s = this[BODY]!;
  if (s.done) return;
  s.size += chunk.length;
  if (s.size > s.limit) {
    s.done = true;
    s.first = s.more = undefined;
    this.resume(); // drain the rest without keeping it
    s.receiver.failed(tooLarge(s.limit));
    return;
  }
  if (s.first === undefined) s.first = chunk;
  else (s.more ??= [s.first]).push(chunk);
}

function onBodyEnd(this: WithBody): void {
  const s = this[BODY]!;
  if (s.done) return;
  s.done = true;
  const text =
    s.more !== undefined
      ? Buffer.concat(s.more).toString('utf8')
      : s.first === undefined
        ? ''
        : s.first.toString('utf8');
  s.first = s.more = undefined;
  s.receiver.body(text);
}

function onBodyError(this: WithBody, err: Error): void {
  const s = this[BODY]!;
  if (s.done) return;
  s.done = true;
  s.first = s.more = undefined;
  // The client went away mid-body (ECONNRESET "aborted", a request timeout): its doing, not ours.
  s.receiver.failed(
    isGatewayError(err)
      ? err
      : new GatewayError('SWB_ERR_HTTP_BODY_ABORTED', 'the request body was not received whole', { cause: err }),
  );
}

/**
 * Reads a request body of at most `limit` bytes and hands it to `receiver`. No promise and no
 * closure per request: the listeners are shared and the state lives on `req`. A receiver method
 * that throws is not caught here: receivers answer their own errors.
 */
export function receiveBody(req: IncomingMessage, limit: number, receiver: BodyReceiver): void {
  const declared = req.headers['content-length'];
  if (declared !== undefined && Number(declared) > limit) {
    receiver.failed(tooLarge(limit));
    return;
  }
  (req as WithBody)[BODY] = { limit, receiver, first: undefined, more: undefined, size: 0, done: false };
  req.on('data', onBodyData);
  req.on('end', onBodyEnd);
  req.on('error', onBodyError);
}

/**
 * {@link receiveBody} as a promise.
 *
 * @throws GatewayError `SWB_ERR_HTTP_BODY_TOO_LARGE` (413) when the declared or actual size exceeds the limit,
 *   `SWB_ERR_HTTP_BODY_ABORTED` when the client aborted the body
 */
export function readBody(req: IncomingMessage, limit: number): Promise<string> {
  return new Promise((resolve, reject) => receiveBody(req, limit, { body: resolve, failed: reject }));
}
