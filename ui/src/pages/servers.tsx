/**
 * Servers: the list of upstream servers; with `servers.manage`, runtime servers (`source: api`)
 * can be added, edited as JSON, disabled, enabled, restarted and removed. Servers declared in the
 * configuration file are read-only here (their file is named) but can be restarted. Validation
 * errors of the API (`error.data.issues`) are shown next to the form.
 *
 * @module
 */
import { useState } from 'preact/hooks';
import { api, ApiError, describeError, type Issue, type Me, type ServerView } from '../api.ts';
import { Badge, Notice } from '../components.tsx';
import { splitList } from '../format.ts';
import { usePoll } from '../poll.ts';

type Mode = 'url' | 'command' | 'json';

function IssueList({ issues, id }: { issues: Issue[]; id: string }) {
  if (issues.length === 0) return null;
  return (
    <ul class="issues" id={id}>
      {issues.map((i) => (
        <li key={`${i.path}:${i.message}`}>
          <code>{i.path || '(entry)'}</code>: {i.message}
        </li>
      ))}
    </ul>
  );
}

interface FormState {
  error: string | null;
  issues: Issue[];
}

function formStateOf(err: unknown): FormState {
  return { error: describeError(err), issues: err instanceof ApiError ? err.issues : [] };
}

/** The "add server" form. */
function AddServer({ me, onDone }: { me: Me; onDone: (message: string) => void }) {
  const [mode, setMode] = useState<Mode>('url');
  const [name, setName] = useState('');
  const [url, setUrl] = useState('');
  const [transport, setTransport] = useState('streamable-http');
  const [command, setCommand] = useState('');
  const [args, setArgs] = useState('');
  const [description, setDescription] = useState('');
  const [json, setJson] = useState('{\n  "url": "https://example.com/mcp"\n}');
  const [busy, setBusy] = useState(false);
  const [state, setState] = useState<FormState>({ error: null, issues: [] });

  const issueFor = (field: string) => state.issues.filter((i) => i.path === field || i.path.startsWith(`${field}.`));

  const submit = async (e: Event) => {
    e.preventDefault();
    let entry: Record<string, unknown>;
    if (mode === 'json') {
      try {
        const parsed: unknown = JSON.parse(json);
        if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new Error('not an object');
        entry = parsed as Record<string, unknown>;
      } catch {
        setState({ error: 'The entry must be a JSON object.', issues: [] });
        return;
      }
    } else if (mode === 'url') {
      entry = { url, ...(transport === 'sse' ? { transport: 'sse' } : {}) };
    } else {
      entry = { command, ...(args.trim() ? { args: splitList(args) } : {}) };
    }
    if (description.trim()) entry.description = description.trim();
    setBusy(true);
    try {
      await api('servers', { method: 'POST', body: { name, ...entry } });
      setState({ error: null, issues: [] });
      onDone(`Server "${name}" added.`);
      setName('');
    } catch (err) {
      setState(formStateOf(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section aria-labelledby="add-server-title" class="panel">
      <h2 id="add-server-title">Add a server</h2>
      <div class="form-with-issues">
        <form onSubmit={(e) => void submit(e)} aria-describedby={state.issues.length ? 'add-issues' : undefined}>
          <fieldset class="inline-choices">
            <legend>Entry</legend>
            {(['url', 'command', 'json'] as const).map((m) => (
              <label key={m}>
                <input type="radio" name="mode" value={m} checked={mode === m} onChange={() => setMode(m)} />{' '}
                {m === 'url' ? 'URL' : m === 'command' ? 'Command (stdio)' : 'JSON entry'}
              </label>
            ))}
          </fieldset>
          <div class="field">
            <label for="add-name">Name</label>
            <input id="add-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
          </div>
          {mode === 'url' && (
            <>
              <div class="field">
                <label for="add-url">URL</label>
                <input
                  id="add-url"
                  type="text"
                  inputMode="url"
                  value={url}
                  onInput={(e) => setUrl(e.currentTarget.value)}
                  aria-invalid={issueFor('url').length > 0 ? true : undefined}
                  aria-describedby={issueFor('url').length > 0 ? 'add-url-issues' : undefined}
                />
                <IssueList id="add-url-issues" issues={issueFor('url')} />
              </div>
              <div class="field">
                <label for="add-transport">Transport</label>
                <select id="add-transport" value={transport} onChange={(e) => setTransport(e.currentTarget.value)}>
                  <option value="streamable-http">Streamable HTTP</option>
                  <option value="sse">HTTP+SSE (legacy)</option>
                </select>
              </div>
            </>
          )}
          {mode === 'command' && (
            <>
              {!me.can.admin && <p class="muted">Only an admin (admin.*) may add a stdio server.</p>}
              <div class="field">
                <label for="add-command">Command</label>
                <input id="add-command" value={command} onInput={(e) => setCommand(e.currentTarget.value)} />
                <IssueList id="add-command-issues" issues={issueFor('command')} />
              </div>
              <div class="field">
                <label for="add-args">Arguments (comma-separated)</label>
                <input id="add-args" value={args} onInput={(e) => setArgs(e.currentTarget.value)} />
              </div>
            </>
          )}
          {mode === 'json' && (
            <div class="field">
              <label for="add-json">Entry (JSON, as under servers: in the configuration file)</label>
              <textarea
                id="add-json"
                rows={8}
                spellcheck={false}
                value={json}
                onInput={(e) => setJson(e.currentTarget.value)}
              />
            </div>
          )}
          <div class="field">
            <label for="add-description">Description (optional)</label>
            <input id="add-description" value={description} onInput={(e) => setDescription(e.currentTarget.value)} />
          </div>
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>
              {busy ? 'Adding…' : 'Add server'}
            </button>
          </div>
        </form>
        <div class="form-issues" aria-live="polite">
          {state.error && <Notice kind="error">{state.error}</Notice>}
          {state.issues.length > 0 && (
            <>
              <h3>Problems in the entry</h3>
              <IssueList id="add-issues" issues={state.issues} />
            </>
          )}
        </div>
      </div>
    </section>
  );
}

/** The JSON editor of a runtime server's stored entry. */
function EditServer({
  server,
  onDone,
  onCancel,
}: {
  server: ServerView;
  onDone: (m: string) => void;
  onCancel: () => void;
}) {
  const [text, setText] = useState(JSON.stringify(server.config ?? {}, null, 2));
  const [busy, setBusy] = useState(false);
  const [state, setState] = useState<FormState>({ error: null, issues: [] });
  const save = async (e: Event) => {
    e.preventDefault();
    let entry: unknown;
    try {
      entry = JSON.parse(text);
    } catch {
      setState({ error: 'The entry must be valid JSON.', issues: [] });
      return;
    }
    setBusy(true);
    try {
      await api(`servers/${encodeURIComponent(server.name)}`, { method: 'PUT', body: entry });
      onDone(`Server "${server.name}" saved.`);
    } catch (err) {
      setState(formStateOf(err));
    } finally {
      setBusy(false);
    }
  };
  const redacted = text.includes('[redacted]');
  return (
    <section class="panel" aria-labelledby="edit-title">
      <h2 id="edit-title">Edit {server.name}</h2>
      <div class="form-with-issues">
        <form onSubmit={(e) => void save(e)}>
          <div class="field">
            <label for="edit-json">Entry (JSON)</label>
            <textarea
              id="edit-json"
              rows={12}
              spellcheck={false}
              value={text}
              onInput={(e) => setText(e.currentTarget.value)}
              aria-describedby={redacted ? 'edit-redacted' : undefined}
            />
            {redacted && (
              <small id="edit-redacted" class="muted">
                Values shown as "[redacted]" are secrets: left as they are, the stored values are kept.
              </small>
            )}
          </div>
          <div class="actions">
            <button type="submit" class="primary" disabled={busy}>
              {busy ? 'Saving…' : 'Save'}
            </button>
            <button type="button" onClick={onCancel}>
              Cancel
            </button>
          </div>
        </form>
        <div class="form-issues" aria-live="polite">
          {state.error && <Notice kind="error">{state.error}</Notice>}
          <IssueList id="edit-issues" issues={state.issues} />
        </div>
      </div>
    </section>
  );
}

/** The servers page. */
export function ServersPage({ me }: { me: Me }) {
  const { data, error, reload } = usePoll((signal) => api<{ servers: ServerView[] }>('servers', { signal }), 10_000);
  const [message, setMessage] = useState<{ kind: 'success' | 'error'; text: string } | null>(null);
  const [editing, setEditing] = useState<string | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [busy, setBusy] = useState<string | null>(null);
  const manage = me.can.serversManage;

  const run = async (name: string, action: () => Promise<unknown>, done: string) => {
    setBusy(name);
    try {
      await action();
      setMessage({ kind: 'success', text: done });
    } catch (err) {
      setMessage({ kind: 'error', text: describeError(err) });
    } finally {
      setBusy(null);
      setConfirming(null);
      await reload();
    }
  };
  const path = (s: ServerView) => `servers/${encodeURIComponent(s.name)}`;
  const setEnabled = (s: ServerView, enabled: boolean) => {
    const { enabled: _e, disabled: _d, ...rest } = s.config ?? {};
    return run(
      s.name,
      () => api(path(s), { method: 'PUT', body: enabled ? rest : { ...rest, enabled: false } }),
      `Server "${s.name}" ${enabled ? 'enabled' : 'disabled'}.`,
    );
  };

  const servers = data?.servers ?? [];
  const editServer = servers.find((s) => s.name === editing);
  return (
    <>
      <div aria-live="polite">
        {message && <Notice kind={message.kind}>{message.text}</Notice>}
        {error && <Notice kind="error">{error}</Notice>}
      </div>
      <table class="data">
        <caption class="visually-hidden">Upstream servers</caption>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">State</th>
            <th scope="col">Source</th>
            <th scope="col">Transport</th>
            <th scope="col">Tools</th>
            {manage && <th scope="col">Actions</th>}
          </tr>
        </thead>
        <tbody>
          {servers.map((s) => {
            const runtime = s.source === 'api';
            const disabled = s.enabled === false || s.state === 'disabled';
            return (
              <tr key={s.name} data-server={s.name}>
                <th scope="row">
                  {s.name}
                  {s.description && <div class="muted small">{s.description}</div>}
                </th>
                <td>
                  <Badge word={s.state} />
                  {s.error && <div class="small last-error">{s.error}</div>}
                </td>
                <td>
                  {s.source === 'file' ? (
                    <>
                      file, read-only
                      {s.sourceFile && (
                        <div class="small muted">
                          <code>{s.sourceFile}</code>
                        </div>
                      )}
                    </>
                  ) : s.source === 'api' ? (
                    'runtime (API)'
                  ) : (
                    'tunnel'
                  )}
                </td>
                <td>{s.transport ?? '–'}</td>
                <td>{s.tools}</td>
                {manage && (
                  <td>
                    <div class="row-actions">
                      {confirming === s.name ? (
                        <>
                          <span>Remove {s.name}?</span>
                          <button
                            type="button"
                            class="danger"
                            disabled={busy === s.name}
                            onClick={() =>
                              void run(s.name, () => api(path(s), { method: 'DELETE' }), `Server "${s.name}" removed.`)
                            }
                          >
                            Confirm remove
                          </button>
                          <button type="button" onClick={() => setConfirming(null)}>
                            Cancel
                          </button>
                        </>
                      ) : (
                        <>
                          <button
                            type="button"
                            disabled={busy === s.name}
                            aria-label={`Restart ${s.name}`}
                            onClick={() =>
                              void run(
                                s.name,
                                () => api(`${path(s)}/restart`, { method: 'POST' }),
                                `Server "${s.name}" restarted.`,
                              )
                            }
                          >
                            Restart
                          </button>
                          {runtime && s.config && (
                            <>
                              <button type="button" aria-label={`Edit ${s.name}`} onClick={() => setEditing(s.name)}>
                                Edit
                              </button>
                              <button
                                type="button"
                                disabled={busy === s.name}
                                aria-label={`${disabled ? 'Enable' : 'Disable'} ${s.name}`}
                                onClick={() => void setEnabled(s, disabled)}
                              >
                                {disabled ? 'Enable' : 'Disable'}
                              </button>
                            </>
                          )}
                          {runtime && (
                            <button
                              type="button"
                              class="danger"
                              aria-label={`Remove ${s.name}`}
                              onClick={() => setConfirming(s.name)}
                            >
                              Remove
                            </button>
                          )}
                        </>
                      )}
                    </div>
                  </td>
                )}
              </tr>
            );
          })}
        </tbody>
      </table>
      {manage && editServer && (
        <EditServer
          key={editServer.name}
          server={editServer}
          onCancel={() => setEditing(null)}
          onDone={(m) => {
            setEditing(null);
            setMessage({ kind: 'success', text: m });
            void reload();
          }}
        />
      )}
      {manage && (
        <AddServer
          me={me}
          onDone={(m) => {
            setMessage({ kind: 'success', text: m });
            void reload();
          }}
        />
      )}
    </>
  );
}
