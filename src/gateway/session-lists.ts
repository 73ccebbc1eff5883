/**
 * The list methods of a client session (`tools/list`, `prompts/list`, `resources/list`,
 * `resources/templates/list`) answered from a view's lists: a whole list is serialised once per
 * list array and shared by every request, a longer one is paged with opaque cursors
 * (`gateway/cursor.ts`; MCP server utilities §Pagination).
 *
 * @module
 */
import type { JsonObject, JsonRpcId } from '../protocol/jsonrpc.js';
import type { OutboundChannel } from './session-host.js';
import { decodeCursor, encodeCursor } from './cursor.js';

/** `{"<field>":[…]}` of whole lists by list array (see {@link sendList}). */
const SERIALIZED_LISTS = new WeakMap<JsonObject[], string>();
/** UTF-8 byte length of {@link SERIALIZED_LISTS}' entries. */
const LIST_BYTES = new WeakMap<JsonObject[], number>();

/** `{"<field>":[…]}` of a whole list, serialised once per list array. */
function serializedList(items: JsonObject[], field: string): string {
  let json = SERIALIZED_LISTS.get(items);
  if (json === undefined) {
    json = JSON.stringify({ [field]: items });
    SERIALIZED_LISTS.set(items, json);
  }
  return json;
}

/**
 * The UTF-8 size of `{"<field>":[…]}` for a whole list, computed once per list array (the view's
 * arrays are rebuilt, never changed, when a catalog changes).
 */
export function listBytes(items: JsonObject[], field: string): number {
  let n = LIST_BYTES.get(items);
  if (n === undefined) {
    n = Buffer.byteLength(serializedList(items, field));
    LIST_BYTES.set(items, n);
  }
  return n;
}

/**
 * Answers a list request. A whole list (no cursor, and it fits one page) is serialised once per
 * list: the view's arrays are rebuilt, never changed, when a catalog changes, so the array is
 * the cache key.
 *
 * @param size - items per page (0 = no pagination)
 * @throws GatewayError `SWB_ERR_ROUTE_INVALID_CURSOR` for a cursor this gateway did not issue
 */
export function sendList(
  id: JsonRpcId,
  out: OutboundChannel,
  items: JsonObject[],
  field: string,
  params: JsonObject | undefined,
  size: number,
): void {
  if (out.sendResult !== undefined && params?.cursor === undefined && (size <= 0 || items.length <= size)) {
    out.sendResult(id, serializedList(items, field));
    return;
  }
  out.send({ jsonrpc: '2.0', id, result: listPage(items, field, params, size) });
}

/**
 * One page of a list: the items from the cursor's position (the start without one), and a
 * `nextCursor` when more follow.
 *
 * @param size - items per page (0 = the whole list)
 * @throws GatewayError `SWB_ERR_ROUTE_INVALID_CURSOR` for a cursor this gateway did not issue
 */
export function listPage(items: JsonObject[], field: string, params: JsonObject | undefined, size: number): JsonObject {
  const start = params?.cursor === undefined ? 0 : decodeCursor(params.cursor);
  if (size <= 0 || (start === 0 && items.length <= size)) return { [field]: items };
  const end = start + size;
  const result: JsonObject = { [field]: items.slice(start, end) };
  if (end < items.length) result.nextCursor = encodeCursor(end);
  return result;
}
