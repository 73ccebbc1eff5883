/**
 * The Connections page of the admin web UI (docs/ui.md) in a real browser: Debian's Chromium
 * driven by `playwright-core` against a gateway started in-process (so the test can seed its
 * token vault) with `auth.mode: tokens`, the built app at `/ui/`, and two `oauth2-user` servers
 * whose authorization server is a real `oidc-provider`. Their upstream URL is a dead loopback
 * port: their starts fail, which the page does not need.
 *
 * A user sees its connection (scopes, upstream subject, expiry, last use) and the server it has
 * not connected, connects (the page asks the gateway for the authorization URL and opens it in a
 * new tab without an opener) and disconnects after a confirmation; an admin also sees every
 * principal's connections. No token appears on the page, no page logs a console error, axe-core
 * finds no `serious` or `critical` violation in either theme, and the page runs under the
 * gateway's Content-Security-Policy without a violation. The page is photographed into
 * `docs/ui/` with `SWB_UI_SCREENSHOTS=1` (`npm run ui:screenshots`). Skipped without Chromium.
 */
import { existsSync, mkdtempSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../src/app.js';
import { CHROMIUM, checkThemes, haveChromium, launchChromium, VIEWPORT } from '../helpers/browser.js';
import { startTestGateway } from '../helpers/gateway.js';
import { startAuthorizationServer, type RunningAuthorizationServer } from '../helpers/oidc.js';
import { ROOT } from '../helpers/serve.js';

if (!haveChromium) {
  console.warn(
    `\n!!! SKIPPED: Connections page browser tests (test/e2e/ui-connections.test.ts): ${CHROMIUM} is not installed.\n`,
  );
}

const SHOTS = mkdtempSync(join(tmpdir(), 'swb-ui-connections-shots-'));
const DOCS_SHOTS = process.env.SWB_UI_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'ui') : undefined;
/** Upstream tokens seeded into the vault: none of them may reach the page. */
const SECRETS = {
  aliceAccess: 'alice-notes-access-3f9a1c',
  aliceRefresh: 'alice-notes-refresh-8b2d4e',
  bobAccess: 'bob-notes-access-77c0de',
  rootAccess: 'root-wiki-access-51f00d',
};
const CLIENT_SECRET = 'notes-client-secret-0a1b2c3d4e5f60718293';

let gw: RunningGateway;
let as: RunningAuthorizationServer;
let browser: Browser;
/** API tokens of a user (`servers.use`, `tools.execute`) and an admin (`admin.*`). */
const tokens = { alice: '', root: '' };
let consoleErrors: string[] = [];
const contexts: BrowserContext[] = [];

/** A loopback port nothing listens on. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/** A page in a new browser context; `csp: true` keeps the gateway's policy enforced (no axe then). */
async function openPage(options: { csp?: boolean } = {}): Promise<{ page: Page; context: BrowserContext }> {
  const context = await browser.newContext({
    viewport: VIEWPORT,
    colorScheme: 'light',
    bypassCSP: options.csp !== true,
  });
  contexts.push(context);
  const page = await context.newPage();
  page.setDefaultTimeout(8000);
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: uncaught ${err.message}`));
  return { page, context };
}

/** Logs in with `token` and opens the Connections page from the navigation. */
async function openConnections(page: Page, token: string): Promise<void> {
  await page.goto(`${gw.url}/ui/`);
  const field = page.getByLabel('API token');
  await field.fill(token);
  await field.press('Enter');
  const nav = page.getByRole('navigation', { name: 'Pages' });
  await nav.getByRole('link', { name: 'Connections', exact: true }).click();
  await page.waitForURL(/#\/connections$/);
  await page.getByRole('heading', { level: 1, name: 'Connections' }).waitFor();
}

/** The caller's row for `server`. */
const row = (page: Page, server: string) => page.locator(`table.my-connections tr[data-server="${server}"]`);

describe.skipIf(!haveChromium)('Connections page in Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'ui', 'index.html')))
      throw new Error('the app is not built: run `npm run build` first');
    const dead = `http://127.0.0.1:${await deadPort()}/mcp`;
    [as, browser] = await Promise.all([startAuthorizationServer(), launchChromium()]);
    const userAuth = {
      type: 'oauth2-user',
      clientId: 'switchboard-notes',
      clientSecret: CLIENT_SECRET,
      authorizationServer: as.issuer,
      scopes: ['mcp:read'],
    };
    gw = await startTestGateway({
      auth: { mode: 'tokens' },
      servers: {
        notes: { url: dead, description: 'Team notes', auth: userAuth },
        wiki: { url: dead, auth: userAuth },
        plain: { url: dead },
      },
    });
    tokens.alice = (
      await gw.tokens.create({ name: 'alice', subject: 'alice', permissions: ['servers.use', 'tools.execute'] })
    ).token;
    tokens.root = (await gw.tokens.create({ name: 'root', subject: 'root', permissions: ['admin.*'] })).token;
  }, 60_000);

  beforeEach(async () => {
    const vault = gw.tokenVault!;
    for (const c of await vault.connections()) await vault.delete(c.principal, c.server);
    await vault.put('token:alice', 'notes', {
      accessToken: SECRETS.aliceAccess,
      refreshToken: SECRETS.aliceRefresh,
      expiresAt: Date.parse('2030-01-01T12:00:00Z'),
      scopes: ['mcp:read'],
      upstreamSubject: 'alice@notes.example',
    });
    await vault.put('token:bob', 'notes', { accessToken: SECRETS.bobAccess, upstreamSubject: 'bob@notes.example' });
    await vault.put('token:root', 'wiki', {
      accessToken: SECRETS.rootAccess,
      scopes: ['mcp:read'],
      upstreamSubject: 'root@wiki.example',
    });
  });

  afterEach(async () => {
    const errors = consoleErrors;
    consoleErrors = [];
    for (const c of contexts.splice(0)) await c.close();
    expect(errors, 'console errors').toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await gw?.close();
    await as?.stop();
  });

  it("lists a user's connected and not yet connected oauth2-user servers, and no other server or token", async () => {
    const { page } = await openPage();
    await openConnections(page, tokens.alice);
    const notes = row(page, 'notes');
    await expect.poll(() => notes.getAttribute('data-connected')).toBe('yes');
    const text = (await notes.textContent()) ?? '';
    expect(text).toContain('Team notes');
    expect(text).toContain('connected');
    expect(text).toContain('alice@notes.example');
    expect(text).toContain('mcp:read');
    expect(text).toContain('never');
    expect(text).toContain(new Date(Date.parse('2030-01-01T12:00:00Z')).getFullYear().toString());
    expect(await row(page, 'wiki').getAttribute('data-connected')).toBe('no');
    expect(await row(page, 'wiki').textContent()).toContain('not connected');
    expect(await page.locator('table.my-connections tbody tr').count()).toBe(2);
    // Bob's and root's connections are theirs; the admin table is for admins.
    expect(await page.getByRole('heading', { name: 'All connections' }).count()).toBe(0);
    const html = await page.content();
    for (const secret of Object.values(SECRETS)) expect(html).not.toContain(secret);
    expect(html).not.toContain('bob@notes.example');
    await checkThemes(page, 'connections-user', { shots: SHOTS });
  });

  it('connects: asks the gateway for the authorization URL and opens it in a new tab without an opener', async () => {
    const { page, context } = await openPage();
    await openConnections(page, tokens.alice);
    const connect = row(page, 'wiki').getByRole('button', { name: 'Connect wiki' });
    const [request, popup] = await Promise.all([
      page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/api/v1/me/connections/wiki')),
      context.waitForEvent('page'),
      connect.click(),
    ]);
    expect(request.headers().authorization).toBe(`Bearer ${tokens.alice}`);
    // The tab is the gateway's connect page for alice's connection; its button leads on to the
    // upstream's authorization server, asked for this gateway's client with PKCE.
    await popup.waitForLoadState('domcontentloaded');
    const connectPage = new URL(popup.url());
    expect(connectPage.origin).toBe(new URL(gw.url).origin);
    expect(connectPage.pathname).toBe('/oauth/connect');
    expect(await popup.evaluate('window.opener === null')).toBe(true);
    expect(await popup.textContent('body')).toContain('token:alice');
    const notice = page.getByRole('status').filter({ hasText: 'connect page of wiki' });
    await notice.waitFor();
    expect(await notice.textContent()).toContain('Refresh');
    const link = notice.getByRole('link', { name: 'open the connect page' });
    expect(await link.getAttribute('rel')).toBe('noopener noreferrer');
    expect(await link.getAttribute('href')).toBe(popup.url());
    const [authorizationRequest] = await Promise.all([
      popup.waitForRequest((r) => r.url().startsWith(`${as.issuer}/`)),
      popup.getByRole('button', { name: 'Connect as token:alice' }).click(),
    ]);
    const authorization = new URL(authorizationRequest.url());
    expect(authorization.searchParams.get('client_id')).toBe('switchboard-notes');
    expect(authorization.searchParams.get('code_challenge_method')).toBe('S256');
    expect(authorization.searchParams.get('state')).toBe(connectPage.searchParams.get('state'));
    await expect.poll(() => as.requests.includes(authorization.pathname)).toBe(true);
    // Nothing is stored until the authorization server sends the user back with a code.
    expect(await gw.tokenVault!.get('token:alice', 'wiki')).toBeUndefined();
    // The message took the focus (the pressed button may be gone), so it is read out.
    expect(await page.evaluate('document.activeElement?.contains(document.querySelector("[role=status]"))')).toBe(true);
  });

  it("disconnects after a confirmation, dropping only the caller's tokens for that server", async () => {
    const { page } = await openPage();
    await openConnections(page, tokens.alice);
    const notes = row(page, 'notes');
    await expect.poll(() => notes.getAttribute('data-connected')).toBe('yes');
    await notes.getByRole('button', { name: 'Disconnect notes' }).click();
    const confirm = notes.getByRole('button', { name: 'Confirm disconnect' });
    // The keyboard user lands on the confirmation.
    expect(await confirm.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    await notes.getByRole('button', { name: 'Cancel' }).click();
    expect(await gw.tokenVault!.get('token:alice', 'notes')).toBeDefined();

    await notes.getByRole('button', { name: 'Disconnect notes' }).click();
    await notes.getByRole('button', { name: 'Confirm disconnect' }).click();
    await expect.poll(() => notes.getAttribute('data-connected')).toBe('no');
    await page.getByRole('status').filter({ hasText: 'Disconnected from notes.' }).waitFor();
    expect(await notes.getByRole('button', { name: 'Connect notes' }).count()).toBe(1);
    expect(await gw.tokenVault!.get('token:alice', 'notes')).toBeUndefined();
    expect((await gw.tokenVault!.get('token:bob', 'notes'))?.accessToken).toBe(SECRETS.bobAccess);
  });

  it("shows an admin every principal's connections, without a token, in both themes", async () => {
    const { page } = await openPage();
    await openConnections(page, tokens.root);
    await expect.poll(() => row(page, 'wiki').getAttribute('data-connected')).toBe('yes');
    expect(await row(page, 'notes').getAttribute('data-connected')).toBe('no');
    const all = page.locator('table.all-connections tbody tr');
    await expect.poll(() => all.count()).toBe(3);
    const rows = await all.evaluateAll((trs) =>
      trs.map((tr) => [tr.getAttribute('data-principal'), tr.getAttribute('data-server')]),
    );
    expect(rows).toEqual([
      ['token:alice', 'notes'],
      ['token:bob', 'notes'],
      ['token:root', 'wiki'],
    ]);
    expect(await all.nth(1).textContent()).toContain('bob@notes.example');
    const html = await page.content();
    for (const secret of Object.values(SECRETS)) expect(html).not.toContain(secret);
    await checkThemes(page, 'connections', { shots: SHOTS, docs: DOCS_SHOTS });
  });

  it("runs under the gateway's Content-Security-Policy without a violation", async () => {
    const { page, context } = await openPage({ csp: true });
    const violations: string[] = [];
    await page.exposeFunction('reportCspViolation', (v: string) => violations.push(v));
    await page.addInitScript({
      content:
        "document.addEventListener('securitypolicyviolation', (e) => void reportCspViolation(e.violatedDirective + ' ' + e.blockedURI));",
    });
    await openConnections(page, tokens.root);
    await page.locator('table.all-connections tbody tr').first().waitFor();
    await Promise.all([context.waitForEvent('page'), page.getByRole('button', { name: 'Connect notes' }).click()]);
    await page.getByRole('status').filter({ hasText: 'connect page of notes' }).waitFor();
    expect(violations).toEqual([]);
  });
});
