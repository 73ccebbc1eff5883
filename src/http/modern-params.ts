/**
 * `Mcp-Param-{Name}` headers of modern `tools/call` requests (MCP 2026-07-28, transports
 * §Custom Headers from Tool Parameters): a tool's `inputSchema` may mark a parameter with
 * `x-mcp-header: Name`, and the client then mirrors the argument's value in `Mcp-Param-Name`.
 * A server that processes the body must check each mirrored value against the body: a value in
 * the arguments needs its header, the header (Base64 sentinel decoded) must equal it — integers
 * compared as numbers, booleans as `true`/`false` — and a header value must be valid; anything
 * else is 400 `HeaderMismatch` (-32020, §Server Behavior for Custom Headers).
 *
 * Annotations are read from the tool as the endpoint lists it, once per catalog
 * (`protocol/param-headers.ts`).
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import { GatewayError } from '../errors.js';
import { decodeHeaderValue } from '../protocol/era.js';
import type { JsonObject } from '../protocol/jsonrpc.js';
import type { HeaderParam } from '../protocol/param-headers.js';

export { headerParamsOf } from '../protocol/param-headers.js';

/**
 * Checks the `Mcp-Param-*` headers of a `tools/call` against its arguments.
 *
 * @throws GatewayError `SWB_ERR_HTTP_HEADER_MISMATCH` when a mirrored value's header is missing,
 *   malformed, or does not match the body
 */
export function checkParamHeaders(req: IncomingMessage, params: readonly HeaderParam[], args: unknown): void {
  for (const p of params) {
    let value: unknown = args;
    for (const key of p.path) {
      value = typeof value === 'object' && value !== null ? (value as JsonObject)[key] : undefined;
    }
    const raw = req.headers[p.header];
    if (value === undefined || value === null) continue; // the client omits it; nothing to compare
    const mismatch = (why: string): never => {
      throw new GatewayError('SWB_ERR_HTTP_HEADER_MISMATCH', `Header mismatch: ${p.header} ${why}`);
    };
    if (typeof raw !== 'string') return mismatch('is required: the argument is in the body');
    const decoded = decodeHeaderValue(raw);
    if (decoded === undefined) return mismatch('has invalid characters');
    const matches =
      p.type === 'integer'
        ? decoded.trim() !== '' && Number(decoded) === value
        : p.type === 'boolean'
          ? (value === true && decoded === 'true') || (value === false && decoded === 'false')
          : decoded === value;
    if (!matches) return mismatch(`value does not match the body`);
  }
}
