/**
 * The login page: one password field for an API token. Nothing is sent until the form is
 * submitted (Enter or the button); the token then goes, as `Authorization: Bearer`, to
 * `GET /api/v1/me`.
 *
 * @module
 */
import { useState } from 'preact/hooks';
import { Notice } from '../components.tsx';

/** Props of {@link LoginPage}. */
export interface LoginPageProps {
  busy: boolean;
  /** The last refusal, shown above the form. */
  error: string | null;
  onLogin: (token: string) => void;
}

/** The login form. */
export function LoginPage({ busy, error, onLogin }: LoginPageProps) {
  const [value, setValue] = useState('');
  return (
    <main id="main" class="login">
      <h1>Log in</h1>
      <p>
        Paste an API token (<code>switchboard token create</code>). It is kept in this tab only and sent with every
        request; closing the tab forgets it.
      </p>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          const token = value.trim();
          if (token !== '') onLogin(token);
        }}
      >
        <div class="field">
          <label for="token">API token</label>
          <input
            id="token"
            name="token"
            type="password"
            autoComplete="off"
            spellcheck={false}
            required
            value={value}
            onInput={(e) => setValue(e.currentTarget.value)}
            aria-describedby={error ? 'login-error' : undefined}
          />
        </div>
        <div class="actions">
          <button type="submit" class="primary" disabled={busy}>
            {busy ? 'Checking…' : 'Log in'}
          </button>
        </div>
      </form>
      <div aria-live="polite" id="login-error">
        {error && <Notice kind="error">{error}</Notice>}
      </div>
    </main>
  );
}
