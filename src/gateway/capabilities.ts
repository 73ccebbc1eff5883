/**
 * The server capabilities a view of several upstreams advertises (aggregate `/mcp`, virtual
 * `/mcp/{name}`), in its `initialize` result and its `server/discover` result alike (MCP
 * 2025-11-25 lifecycle §Capability Negotiation; 2026-07-28 server/discover). A single server's
 * view mirrors its upstream's capabilities instead.
 *
 * @module
 */
import { TASKS_EXTENSION } from '../protocol/era.js';
import type { JsonObject } from '../protocol/jsonrpc.js';

/**
 * Extensions (`capabilities.extensions`, MCP 2026-07-28) the gateway can serve across the
 * members of a view: the tasks extension, whose `tasks/*` requests it routes to the member that
 * created the task (`./tasks.ts`). An extension the gateway does not know may bring methods or
 * parameters it cannot route between members, so it is not advertised there.
 */
const ROUTABLE_EXTENSIONS: readonly string[] = [TASKS_EXTENSION];

/**
 * Merges members' capabilities into what a view of several upstreams advertises. A capability is
 * advertised only when the gateway can honour it for every member, whether because each member
 * supports it or because the gateway provides it itself:
 *
 * - `tools`, `prompts`, `resources`: present when any member has them (the gateway serves the
 *   union of the catalogs; `tools` always, so clients ask for tools while upstreams start), each
 *   with `listChanged: true`: the gateway sends those notifications itself, from catalog
 *   changes, for every member (also for members that send none, whose lists it refetches).
 * - `resources.subscribe`: only when every member that has resources can subscribe: a
 *   `resources/subscribe` goes to the member owning the URI, and one that cannot subscribe would
 *   fail it (modern upstreams never can: their `subscribe` is dropped, the gateway does not use
 *   `subscriptions/listen` towards them).
 * - `logging`: when any member has it. `logging/setLevel` is answered by the gateway, which
 *   filters log messages per session and per request; members without it send none.
 * - `completions`: when any member has it. A `completion/complete` for a prompt or template of a
 *   member without it is answered by the gateway with an empty completion (`ClientSession`).
 * - `extensions`: each of the {@link ROUTABLE_EXTENSIONS} that any member declares (`{}`: the
 *   members' settings are theirs); a member without it simply never uses it (e.g. never answers
 *   with a task).
 * - Anything else (`experimental`, 2025 `tasks`, unknown extensions): not advertised.
 *
 * @param members - Each member's capabilities (an `InitializeResult`'s, or a `DiscoverResult`'s)
 * @returns A new object.
 */
export function mergeCapabilities(members: readonly JsonObject[]): JsonObject {
  let prompts = false;
  let resources = false;
  let subscribeAll = true;
  let logging = false;
  let completions = false;
  const extensions: JsonObject = {};
  for (const c of members) {
    if (c.prompts !== undefined) prompts = true;
    if (c.resources !== undefined) {
      resources = true;
      if ((c.resources as JsonObject | null)?.subscribe !== true) subscribeAll = false;
    }
    if (c.logging !== undefined) logging = true;
    if (c.completions !== undefined) completions = true;
    const ext = c.extensions;
    if (typeof ext === 'object' && ext !== null && !Array.isArray(ext)) {
      for (const id of ROUTABLE_EXTENSIONS) if ((ext as JsonObject)[id] !== undefined) extensions[id] = {};
    }
  }
  const caps: JsonObject = { tools: { listChanged: true } };
  if (prompts) caps.prompts = { listChanged: true };
  if (resources) caps.resources = subscribeAll ? { listChanged: true, subscribe: true } : { listChanged: true };
  if (logging) caps.logging = {};
  if (completions) caps.completions = {};
  if (Object.keys(extensions).length > 0) caps.extensions = extensions;
  return caps;
}
