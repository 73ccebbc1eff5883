/**
 * The app shell: login, navigation (hash routes such as `#/servers`), theme toggle and the page
 * for the current route. What is shown follows `GET /api/v1/me`'s `can` flags.
 *
 * @module
 */
import { useEffect, useState } from 'preact/hooks';
import { api, ApiError, currentToken, describeError, setToken, setUnauthorizedHandler, type Me } from './api.ts';
import { Notice } from './components.tsx';
import { CatalogPage } from './pages/catalog.tsx';
import { ConnectionsPage } from './pages/connections.tsx';
import { LivePage } from './pages/live.tsx';
import { LoginPage } from './pages/login.tsx';
import { OverviewPage } from './pages/overview.tsx';
import { ServersPage } from './pages/servers.tsx';
import { TokensPage } from './pages/tokens.tsx';
import { UsagePage } from './pages/usage.tsx';
import { applyTheme, nextTheme, storedTheme, type ThemeChoice } from './theme.ts';

/** A page of the app: its route, its title and who may see it. */
interface Route {
  path: string;
  title: string;
  allowed: (me: Me) => boolean;
  render: (me: Me) => preact.JSX.Element;
}

const ROUTES: Route[] = [
  { path: 'overview', title: 'Overview', allowed: (me) => me.can.serversUse, render: () => <OverviewPage /> },
  { path: 'servers', title: 'Servers', allowed: (me) => me.can.serversUse, render: (me) => <ServersPage me={me} /> },
  { path: 'catalog', title: 'Catalog', allowed: (me) => me.can.serversUse, render: (me) => <CatalogPage me={me} /> },
  // Every principal may hold its own upstream connections (`GET /api/v1/me/connections`).
  { path: 'connections', title: 'Connections', allowed: () => true, render: (me) => <ConnectionsPage me={me} /> },
  { path: 'tokens', title: 'Tokens', allowed: (me) => me.can.tokensManage, render: (me) => <TokensPage me={me} /> },
  { path: 'usage', title: 'Usage', allowed: (me) => me.can.usageRead, render: (me) => <UsagePage me={me} /> },
  { path: 'live', title: 'Live', allowed: (me) => me.can.usageRead, render: (me) => <LivePage me={me} /> },
];

function currentPath(): string {
  return location.hash.replace(/^#\/?/, '').split('?')[0] ?? '';
}

/** The whole app. */
export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(currentToken() !== null);
  const [loginError, setLoginError] = useState<string | null>(null);
  const [path, setPath] = useState(currentPath());
  const [theme, setTheme] = useState<ThemeChoice>(storedTheme());

  useEffect(() => applyTheme(theme), [theme]);
  useEffect(() => {
    const onHash = () => setPath(currentPath());
    window.addEventListener('hashchange', onHash);
    return () => window.removeEventListener('hashchange', onHash);
  }, []);
  useEffect(() => {
    setUnauthorizedHandler(() => {
      setToken(null);
      setMe(null);
      setLoginError('The API token was refused (401): it is unknown, revoked or expired. Log in again.');
    });
    return () => setUnauthorizedHandler(undefined);
  }, []);

  const login = async (token: string): Promise<void> => {
    setToken(token);
    setChecking(true);
    setLoginError(null);
    try {
      setMe(await api<Me>('me'));
    } catch (err) {
      setToken(null);
      setMe(null);
      setLoginError(
        err instanceof ApiError && err.status === 401
          ? 'The API token was refused (401): it is unknown, revoked or expired.'
          : describeError(err),
      );
    } finally {
      setChecking(false);
    }
  };

  // A token kept in sessionStorage from before a reload: check it again.
  useEffect(() => {
    const stored = currentToken();
    if (stored !== null) void login(stored);
  }, []);

  useEffect(() => {
    const route = ROUTES.find((r) => r.path === path);
    document.title = me && route ? `${route.title} · Switchboard` : 'Switchboard';
    // A new page: move focus to its content, as a page load would, so screen readers announce it
    // and the next Tab starts there.
    if (me) document.getElementById('main')?.focus();
  }, [me, path]);

  const logout = () => {
    setToken(null);
    setMe(null);
    setLoginError(null);
  };

  const themeButton = (
    <button
      type="button"
      class="theme-toggle"
      onClick={() => setTheme(nextTheme(theme))}
      title="Switch between the system theme, light and dark"
    >
      Theme: {theme}
    </button>
  );

  if (me === null) {
    return (
      <>
        <header class="topbar">
          <span class="brand">Switchboard</span>
          <span class="spacer" />
          {themeButton}
        </header>
        <LoginPage busy={checking} error={loginError} onLogin={(t) => void login(t)} />
      </>
    );
  }

  const visible = ROUTES.filter((r) => r.allowed(me));
  const route = visible.find((r) => r.path === path) ?? visible[0];

  return (
    <>
      <a class="skip-link" href="#main">
        Skip to content
      </a>
      <header class="topbar">
        <span class="brand">Switchboard</span>
        <nav aria-label="Pages">
          <ul>
            {visible.map((r) => (
              <li key={r.path}>
                <a href={`#/${r.path}`} aria-current={r === route ? 'page' : undefined}>
                  {r.title}
                </a>
              </li>
            ))}
          </ul>
        </nav>
        <span class="spacer" />
        <span class="whoami" title={me.permissions.join(', ')}>
          {me.subject} <span class="muted">({me.id})</span>
        </span>
        {themeButton}
        <button type="button" onClick={logout}>
          Log out
        </button>
      </header>
      <main id="main" tabIndex={-1}>
        {route ? (
          <>
            <h1>{route.title}</h1>
            {route.render(me)}
          </>
        ) : (
          <Notice kind="info">
            This token may not read anything the admin UI shows (its permissions: {me.permissions.join(', ') || 'none'}
            ).
          </Notice>
        )}
      </main>
    </>
  );
}
