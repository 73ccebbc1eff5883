/**
 * Connections: the caller's upstream accounts on `auth.type: oauth2-user` servers. Each such
 * server is listed as connected (granted scopes, upstream subject, token expiry, last use) or not
 * connected. "Connect" asks the gateway for an authorization URL
 * (`POST /api/v1/me/connections/{server}`) and opens it in a new tab without an opener; the user
 * signs in there, the upstream redirects to the gateway's callback, and a refresh here shows the
 * connection. "Disconnect" (after a confirmation) drops the caller's tokens for the server
 * (`DELETE`). An admin (`admin.*`) also sees every principal's connections
 * (`GET /api/v1/connections`). No answer the page reads holds a token.
 *
 * Any signed-in principal sees the page; the servers not yet connected are listed only for a
 * principal with `servers.use` (which reads `GET /api/v1/servers`), the only ones that may call
 * them anyway.
 *
 * @module
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import { api, describeError, type ConnectionView, type ConnectStart, type Me, type ServerView } from '../api.ts';
import { Badge, Notice } from '../components.tsx';
import { formatTime } from '../format.ts';
import { usePoll } from '../poll.ts';

/** One row of the caller's table: an `oauth2-user` server and the caller's connection to it, if any. */
interface Row {
  server: string;
  description: string | null;
  connection: ConnectionView | undefined;
}

/** A message of the page: a sentence, and for a started connection the URL to open by hand. */
interface Message {
  kind: 'success' | 'error' | 'info';
  text: string;
  url?: string;
}

/**
 * The rows of the caller's table, in server order: every `oauth2-user` server, and every server
 * the caller holds a connection to (also one no longer configured, so it can be dropped).
 */
function rowsOf(servers: ServerView[] | undefined, connections: ConnectionView[]): Row[] {
  const byServer = new Map<string, Row>();
  for (const s of servers ?? []) {
    if (s.userConnection === true)
      byServer.set(s.name, { server: s.name, description: s.description, connection: undefined });
  }
  for (const c of connections) {
    const known = byServer.get(c.server);
    byServer.set(c.server, { server: c.server, description: known?.description ?? null, connection: c });
  }
  return [...byServer.values()].sort((a, b) => (a.server < b.server ? -1 : a.server > b.server ? 1 : 0));
}

const path = (server: string) => `me/connections/${encodeURIComponent(server)}`;

function AllConnections() {
  const { data, error } = usePoll((signal) => api<{ connections: ConnectionView[] }>('connections', { signal }), 0);
  const rows = data?.connections ?? [];
  return (
    <section aria-labelledby="all-connections-title">
      <h2 id="all-connections-title">All connections</h2>
      <div aria-live="polite">{error && <Notice kind="error">{error}</Notice>}</div>
      {data && rows.length === 0 ? (
        <p class="muted">No principal has connected an upstream account.</p>
      ) : (
        <table class="data all-connections">
          <thead>
            <tr>
              <th scope="col">Principal</th>
              <th scope="col">Server</th>
              <th scope="col">Upstream subject</th>
              <th scope="col">Scopes</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((c) => (
              <tr key={`${c.principal ?? ''}\u0000${c.server}`} data-principal={c.principal} data-server={c.server}>
                <th scope="row">{c.principal}</th>
                <td>{c.server}</td>
                <td>{c.upstreamSubject ?? '–'}</td>
                <td class="small">{c.scopes.length ? c.scopes.join(' ') : '–'}</td>
                <td class="small">{formatTime(c.expiresAt)}</td>
                <td class="small">{c.lastUsedAt ? formatTime(c.lastUsedAt) : 'never'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </section>
  );
}

/** The connections page. */
export function ConnectionsPage({ me }: { me: Me }) {
  const { data, error, reload } = usePoll(async (signal) => {
    const [own, servers] = await Promise.all([
      api<{ connections: ConnectionView[] }>('me/connections', { signal }),
      me.can.serversUse ? api<{ servers: ServerView[] }>('servers', { signal }) : Promise.resolve(undefined),
    ]);
    return rowsOf(servers?.servers, own.connections);
  }, 0);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const [message, setMessage] = useState<Message | null>(null);
  const confirmButton = useRef<HTMLButtonElement>(null);
  const messageBox = useRef<HTMLDivElement>(null);

  // A keyboard user who asked to disconnect lands on the confirmation.
  useEffect(() => {
    if (confirming !== null) confirmButton.current?.focus();
  }, [confirming]);

  const say = (m: Message) => {
    setMessage(m);
    // The button that was pressed may be gone: focus the message, which also reads it out.
    requestAnimationFrame(() => messageBox.current?.focus());
  };

  const connect = async (server: string) => {
    setBusy(server);
    try {
      const started = await api<ConnectStart>(path(server), { method: 'POST' });
      // `noopener`: the connect page (and the upstream's sign-in after it) gets no handle on this
      // window, nor this one on it.
      window.open(started.authorizationUrl, '_blank', 'noopener');
      say({
        kind: 'info',
        text: `The connect page of ${server} opened in a new tab: confirm there and sign in to ${server}, then come back and press Refresh. If no tab opened, use this link:`,
        url: started.authorizationUrl,
      });
    } catch (err) {
      say({ kind: 'error', text: describeError(err) });
    } finally {
      setBusy(null);
    }
  };

  const disconnect = async (server: string) => {
    setBusy(server);
    try {
      await api(path(server), { method: 'DELETE' });
      say({ kind: 'success', text: `Disconnected from ${server}.` });
    } catch (err) {
      say({ kind: 'error', text: describeError(err) });
    } finally {
      setBusy(null);
      setConfirming(null);
      await reload();
    }
  };

  const rows = data ?? [];
  return (
    <>
      <p class="muted">
        Servers that call the upstream as you, with your own account there. Connect once per server; the gateway keeps
        the tokens sealed and refreshes them.
      </p>
      <div class="toolbar">
        <div class="toolbar-actions">
          <button type="button" onClick={() => void reload()}>
            Refresh
          </button>
        </div>
      </div>
      <div aria-live="polite" ref={messageBox} tabIndex={-1}>
        {message && (
          <Notice kind={message.kind}>
            {message.text}
            {message.url !== undefined && (
              <>
                {' '}
                <a href={message.url} target="_blank" rel="noopener noreferrer">
                  open the connect page
                </a>
                .
              </>
            )}
          </Notice>
        )}
        {error && <Notice kind="error">{error}</Notice>}
      </div>
      <section aria-labelledby="my-connections-title">
        <h2 id="my-connections-title">Your connections</h2>
        {data && rows.length === 0 ? (
          <p class="muted">
            {me.can.serversUse
              ? 'No server asks for your own upstream account (none has auth.type oauth2-user).'
              : 'You have no upstream connections.'}
          </p>
        ) : (
          <table class="data my-connections">
            <thead>
              <tr>
                <th scope="col">Server</th>
                <th scope="col">State</th>
                <th scope="col">Upstream subject</th>
                <th scope="col">Scopes</th>
                <th scope="col">Expires</th>
                <th scope="col">Last used</th>
                <th scope="col">Actions</th>
              </tr>
            </thead>
            <tbody>
              {rows.map(({ server, description, connection: c }) => (
                <tr key={server} data-server={server} data-connected={c ? 'yes' : 'no'}>
                  <th scope="row">
                    {server}
                    {description && <div class="small muted">{description}</div>}
                  </th>
                  <td>
                    <Badge word={c ? 'ok' : 'idle'} label={c ? 'connected' : 'not connected'} />
                  </td>
                  <td>{c?.upstreamSubject ?? '–'}</td>
                  <td class="small">{c && c.scopes.length ? c.scopes.join(' ') : '–'}</td>
                  <td class="small">{c ? formatTime(c.expiresAt) : '–'}</td>
                  <td class="small">{c ? (c.lastUsedAt ? formatTime(c.lastUsedAt) : 'never') : '–'}</td>
                  <td>
                    <div class="row-actions">
                      {c === undefined ? (
                        <button
                          type="button"
                          class="primary"
                          aria-label={`Connect ${server}`}
                          disabled={busy === server}
                          onClick={() => void connect(server)}
                        >
                          {busy === server ? 'Connecting…' : 'Connect'}
                        </button>
                      ) : confirming === server ? (
                        <>
                          <span>Disconnect from {server}?</span>
                          <button
                            type="button"
                            class="danger"
                            ref={confirmButton}
                            disabled={busy === server}
                            onClick={() => void disconnect(server)}
                          >
                            Confirm disconnect
                          </button>
                          <button type="button" onClick={() => setConfirming(null)}>
                            Cancel
                          </button>
                        </>
                      ) : (
                        <button
                          type="button"
                          class="danger"
                          aria-label={`Disconnect ${server}`}
                          onClick={() => setConfirming(server)}
                        >
                          Disconnect
                        </button>
                      )}
                    </div>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      {me.can.admin && <AllConnections />}
    </>
  );
}
