/**
 * Tokens: create API tokens (name, permissions, server and tool scopes, expiry; the secret is
 * shown once), list them, revoke one after a confirmation. Needs `tokens.manage`; a non-admin
 * sees and mints only tokens of its own subject, within its own permissions.
 *
 * @module
 */
import { useState } from 'preact/hooks';
import { api, describeError, type Me, type MintedToken, type TokenView } from '../api.ts';
import { Badge, Notice } from '../components.tsx';
import { formatTime, splitList } from '../format.ts';
import { usePoll } from '../poll.ts';
import { KNOWN_PERMISSIONS } from '../../../src/auth/permissions.ts';

const DEFAULT_PERMISSIONS = new Set(['servers.use', 'tools.execute']);

function tokenStatus(t: TokenView): string {
  if (t.revokedAt) return 'revoked';
  if (t.expiresAt && Date.parse(t.expiresAt) <= Date.now()) return 'expired';
  return 'active';
}

function Secret({ minted, onDismiss }: { minted: MintedToken; onDismiss: () => void }) {
  const [copied, setCopied] = useState<string | null>(null);
  const copy = async () => {
    try {
      await navigator.clipboard.writeText(minted.token);
      setCopied('Copied to the clipboard.');
    } catch {
      setCopied('The clipboard is not available: select the token and copy it.');
    }
  };
  return (
    <section class="panel secret" aria-labelledby="secret-title">
      <h2 id="secret-title">New token</h2>
      <p>
        <strong>Copy it now: it is shown only once.</strong> Token id <code>{minted.id}</code>
        {minted.expiresAt ? `, expires ${formatTime(minted.expiresAt)}` : ', does not expire'}.
      </p>
      <div class="field">
        <label for="secret-value">Token</label>
        <input id="secret-value" readOnly value={minted.token} onFocus={(e) => e.currentTarget.select()} />
      </div>
      <div class="actions">
        <button type="button" class="primary" onClick={() => void copy()}>
          Copy token
        </button>
        <button type="button" onClick={onDismiss}>
          Done
        </button>
        <span role="status">{copied}</span>
      </div>
    </section>
  );
}

function CreateToken({ onCreated }: { onCreated: (m: MintedToken) => void }) {
  const [name, setName] = useState('');
  const [permissions, setPermissions] = useState<Set<string>>(new Set(DEFAULT_PERMISSIONS));
  const [servers, setServers] = useState('');
  const [tools, setTools] = useState('');
  const [expires, setExpires] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);

  const toggle = (p: string, on: boolean) =>
    setPermissions((s) => {
      const next = new Set(s);
      if (on) next.add(p);
      else next.delete(p);
      return next;
    });

  const submit = async (e: Event) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const minted = await api<MintedToken>('tokens', {
        method: 'POST',
        body: {
          name,
          permissions: [...permissions],
          ...(servers.trim() ? { servers: splitList(servers) } : {}),
          ...(tools.trim() ? { tools: splitList(tools) } : {}),
          ...(expires.trim() ? { expires: expires.trim() } : {}),
        },
      });
      setName('');
      onCreated(minted);
    } catch (err) {
      setError(describeError(err));
    } finally {
      setBusy(false);
    }
  };

  return (
    <section class="panel" aria-labelledby="create-token-title">
      <h2 id="create-token-title">Create a token</h2>
      <form onSubmit={(e) => void submit(e)}>
        <div class="field">
          <label for="token-name">Name</label>
          <input id="token-name" required value={name} onInput={(e) => setName(e.currentTarget.value)} />
        </div>
        <fieldset class="inline-choices">
          <legend>Permissions</legend>
          {KNOWN_PERMISSIONS.map((p) => (
            <label key={p}>
              <input
                type="checkbox"
                name="permissions"
                value={p}
                checked={permissions.has(p)}
                onChange={(e) => toggle(p, e.currentTarget.checked)}
              />{' '}
              {p}
            </label>
          ))}
        </fieldset>
        <div class="field-row">
          <div class="field">
            <label for="token-servers">Servers (comma-separated; empty: all)</label>
            <input id="token-servers" value={servers} onInput={(e) => setServers(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="token-tools">Tools (globs, comma-separated; empty: all)</label>
            <input id="token-tools" value={tools} onInput={(e) => setTools(e.currentTarget.value)} />
          </div>
          <div class="field">
            <label for="token-expires">Expires in (e.g. 30d; empty: never)</label>
            <input id="token-expires" value={expires} onInput={(e) => setExpires(e.currentTarget.value)} />
          </div>
        </div>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Creating…' : 'Create token'}
          </button>
        </div>
      </form>
      <div aria-live="polite">{error && <Notice kind="error">{error}</Notice>}</div>
    </section>
  );
}

/** The tokens page. */
export function TokensPage({ me }: { me: Me }) {
  const { data, error, reload } = usePoll((signal) => api<{ tokens: TokenView[] }>('tokens', { signal }), 0);
  const [minted, setMinted] = useState<MintedToken | null>(null);
  const [confirming, setConfirming] = useState<string | null>(null);
  const [message, setMessage] = useState<{ kind: 'success' | 'error'; text: string } | null>(null);

  const revoke = async (t: TokenView) => {
    try {
      await api(`tokens/${encodeURIComponent(t.id)}`, { method: 'DELETE' });
      setMessage({ kind: 'success', text: `Token "${t.name}" revoked.` });
    } catch (err) {
      setMessage({ kind: 'error', text: describeError(err) });
    } finally {
      setConfirming(null);
      await reload();
    }
  };

  const tokens = data?.tokens ?? [];
  return (
    <>
      {minted && <Secret minted={minted} onDismiss={() => setMinted(null)} />}
      <CreateToken
        onCreated={(m) => {
          setMinted(m);
          setMessage({ kind: 'success', text: 'Token created.' });
          void reload();
        }}
      />
      <div aria-live="polite">
        {message && <Notice kind={message.kind}>{message.text}</Notice>}
        {error && <Notice kind="error">{error}</Notice>}
      </div>
      <section aria-labelledby="token-list-title">
        <h2 id="token-list-title">{me.can.admin ? 'All tokens' : `Tokens of ${me.subject}`}</h2>
        <table class="data">
          <thead>
            <tr>
              <th scope="col">Name</th>
              <th scope="col">Status</th>
              <th scope="col">Subject</th>
              <th scope="col">Permissions</th>
              <th scope="col">Scopes</th>
              <th scope="col">Created</th>
              <th scope="col">Expires</th>
              <th scope="col">Last used</th>
              <th scope="col">Actions</th>
            </tr>
          </thead>
          <tbody>
            {tokens.map((t) => {
              const status = tokenStatus(t);
              return (
                <tr key={t.id} data-token={t.name}>
                  <th scope="row">
                    {t.name}
                    <div class="small muted">
                      <code>{t.id}</code>
                    </div>
                  </th>
                  <td>
                    <Badge
                      word={status === 'active' ? 'ok' : status === 'revoked' ? 'disabled' : 'stopped'}
                      label={status}
                    />
                  </td>
                  <td>{t.subject}</td>
                  <td class="small">{t.permissions.join(', ')}</td>
                  <td class="small">
                    {t.servers.length ? `servers: ${t.servers.join(', ')}` : 'all servers'}
                    <br />
                    {t.tools.length ? `tools: ${t.tools.join(', ')}` : 'all tools'}
                  </td>
                  <td class="small">{formatTime(t.createdAt)}</td>
                  <td class="small">{t.expiresAt ? formatTime(t.expiresAt) : 'never'}</td>
                  <td class="small">{formatTime(t.lastUsedAt)}</td>
                  <td>
                    <div class="row-actions">
                      {status === 'active' &&
                        (confirming === t.id ? (
                          <>
                            <span>Revoke {t.name}?</span>
                            <button type="button" class="danger" onClick={() => void revoke(t)}>
                              Confirm revoke
                            </button>
                            <button type="button" onClick={() => setConfirming(null)}>
                              Cancel
                            </button>
                          </>
                        ) : (
                          <button
                            type="button"
                            class="danger"
                            aria-label={`Revoke ${t.name}`}
                            onClick={() => setConfirming(t.id)}
                          >
                            Revoke
                          </button>
                        ))}
                    </div>
                  </td>
                </tr>
              );
            })}
          </tbody>
        </table>
      </section>
    </>
  );
}
