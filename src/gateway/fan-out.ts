/**
 * Notifications the gateway sends to client sessions without a request: `list_changed` after a
 * catalog change or a reload, and an upstream's unrelated notifications (`resources/updated`,
 * logging), each to its audience only.
 *
 * Audiences: a shared connection speaks to every session of the views that include its upstream;
 * a connection held for one client session (`isolation: session`) or one principal (`user`, and
 * remote upstreams) speaks to that session or that principal's sessions only. `resources/updated`
 * goes to the sessions subscribed to the URI through the connection that announced it.
 *
 * @module
 */
import type { JsonRpcNotification } from '../protocol/jsonrpc.js';
import type { Audience, Catalog, Upstream } from '../upstream/upstream.js';
import type { ClientSession } from './client-session.js';

const LIST_CHANGED_METHOD = {
  tools: 'notifications/tools/list_changed',
  prompts: 'notifications/prompts/list_changed',
  resources: 'notifications/resources/list_changed',
  resourceTemplates: 'notifications/resources/list_changed',
} as const;

/** True when a notification for `audience` may go to session `s`. */
export function reaches(audience: Audience, s: ClientSession): boolean {
  return audience.kind === 'all' || (audience.kind === 'session' ? s.id : s.principal.id) === audience.id;
}

/** Tells the initialized sessions whose view includes `upstream` which of its lists changed. */
export function notifyCatalogChanged(
  sessions: Iterable<ClientSession>,
  upstream: Upstream,
  changed: ReadonlyArray<keyof Catalog>,
): void {
  const methods = new Set(changed.map((k) => LIST_CHANGED_METHOD[k]));
  for (const s of sessions) {
    if (!s.initialized || !s.view.includes(upstream)) continue;
    for (const method of methods) s.sendUnrelated({ jsonrpc: '2.0', method });
  }
}

/** Delivers an upstream's unrelated notification to the sessions of its audience. */
export function fanOut(
  sessions: ReadonlyMap<string, ClientSession>,
  upstream: Upstream,
  n: JsonRpcNotification,
  audience: Audience,
  forward?: (sessionId: string, n: JsonRpcNotification) => void,
): void {
  if (n.method === 'notifications/resources/updated') {
    const uri = n.params?.uri;
    if (typeof uri !== 'string') return;
    // Subscribers through the connection that announced it: an isolated connection's resource
    // is not another session's or principal's, even under the same URI.
    for (const id of upstream.subscribersOf(uri)) {
      const s = sessions.get(id);
      if (s === undefined) {
        // A session another replica serves subscribed through this replica's connection (its
        // calls were passed on here: an isolated child's, a tunnel's): the update goes to that
        // session's stream, wherever it is. No other replica's connection announces it.
        forward?.(id, n);
        continue;
      }
      if (!s.view.includes(upstream) || !reaches(audience, s)) continue;
      s.deliverResourceUpdated(upstream, n);
    }
    return;
  }
  if (audience.kind === 'session' && forward !== undefined && !sessions.has(audience.id)) {
    forward(audience.id, n);
    return;
  }
  for (const s of sessions.values()) {
    if (!s.initialized || !s.view.includes(upstream) || !reaches(audience, s)) continue;
    s.deliverNotification(n, audience.kind === 'session');
  }
}

/** Tells every initialized multi-server session that all its lists may have changed (a reload). */
export function notifyAllListChanged(sessions: Iterable<ClientSession>): void {
  for (const s of sessions) {
    if (!s.initialized || s.view.kind === 'single') continue;
    s.sendUnrelated({ jsonrpc: '2.0', method: 'notifications/tools/list_changed' });
    s.sendUnrelated({ jsonrpc: '2.0', method: 'notifications/prompts/list_changed' });
    s.sendUnrelated({ jsonrpc: '2.0', method: 'notifications/resources/list_changed' });
  }
}
