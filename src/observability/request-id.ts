/**
 * Request ids for the logs. The edge gives every HTTP request an id ({@link requestIdFrom}) and
 * carries it explicitly: in `RequestContext.reqId` for MCP requests, down to `SlotContext.reqId`,
 * the upstream connection's request options and the HTTP transports' pending requests, and as
 * the `reqId` argument of extra route handlers. Lines that concern one request write it as a
 * field: `logger.warn({ reqId, … }, msg)`.
 *
 * Why not `AsyncLocalStorage`: on Node 22 its first `run()` switches on promise hooks that every
 * promise in the process then pays (≈ +0.2 µs per promise; an A/B of the gateway's hot path
 * measured 111 against 92 µs of CPU per request, docs/benchmarks.md). Passing the id costs one
 * field per object the request already creates.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';

// A process-unique prefix (8 base36 characters from 40 random bits, drawn once) plus a counter:
// unique across replicas with overwhelming probability, sortable within one process, and one
// short string allocation per request instead of a crypto call.
const PREFIX = randomBytes(5).readUIntBE(0, 5).toString(36).padStart(8, '0') + '-';
let counter = 0;

/**
 * Returns a new request id, unique within this process and, with overwhelming probability,
 * across processes: `{8 random base36 chars}-{counter in base36}`, e.g. `k3x9q2ab-1f`.
 * Not a secret and not unpredictable: never use it for anything but correlation.
 */
export function nextRequestId(): string {
  return PREFIX + (++counter).toString(36);
}

/** Longest inbound request id {@link requestIdFrom} accepts. */
export const MAX_INBOUND_REQUEST_ID_LENGTH = 128;

const SAFE_ID = /^[\w.:@/+=-]+$/;

/**
 * Returns `inbound` (e.g. an `X-Request-Id` set by a trusted reverse proxy) when it is a
 * non-empty printable token of at most {@link MAX_INBOUND_REQUEST_ID_LENGTH} characters drawn
 * from `[A-Za-z0-9_.:@/+=-]`, else a fresh {@link nextRequestId}. The check keeps control
 * characters and log-forging input out of every log line.
 */
export function requestIdFrom(inbound: string | undefined): string {
  if (inbound !== undefined && inbound.length <= MAX_INBOUND_REQUEST_ID_LENGTH && SAFE_ID.test(inbound)) {
    return inbound;
  }
  return nextRequestId();
}
