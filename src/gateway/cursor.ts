/**
 * Opaque pagination cursors for aggregated lists (MCP server/utilities/pagination).
 *
 * A cursor encodes an offset into the view's merged list. Clients must treat it as opaque; a
 * cursor that does not decode gets JSON-RPC -32602 (the spec's "Invalid params").
 *
 * @module
 */
import { GatewayError } from '../errors.js';

const PREFIX = 'swb1:';

/** Encodes an offset as an opaque cursor string. */
export function encodeCursor(offset: number): string {
  return Buffer.from(PREFIX + offset.toString(36)).toString('base64url');
}

/**
 * Decodes a cursor made by {@link encodeCursor}.
 *
 * @throws GatewayError `SWB_ERR_ROUTE_INVALID_CURSOR` when the value is not one of ours
 */
export function decodeCursor(cursor: unknown): number {
  if (typeof cursor !== 'string') throw new GatewayError('SWB_ERR_ROUTE_INVALID_CURSOR', 'cursor must be a string');
  const text = Buffer.from(cursor, 'base64url').toString('utf8');
  if (!text.startsWith(PREFIX)) throw new GatewayError('SWB_ERR_ROUTE_INVALID_CURSOR', 'invalid cursor');
  const digits = text.slice(PREFIX.length);
  const offset = /^[0-9a-z]{1,11}$/.test(digits) ? parseInt(digits, 36) : NaN;
  if (!Number.isSafeInteger(offset) || offset < 0)
    throw new GatewayError('SWB_ERR_ROUTE_INVALID_CURSOR', 'invalid cursor');
  return offset;
}
