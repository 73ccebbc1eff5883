/**
 * The admin web UI (docs/ui.md) in a real browser: Debian's Chromium driven by `playwright-core`
 * against `switchboard serve` (the built CLI and the built app at `/ui/`) with token auth, fronting
 * the MCP reference server. Logs in by typing tokens, checks what each page shows and that a
 * read-only token sees no write actions, and runs axe-core on every page in the light and dark
 * themes (no `serious` or `critical` violations). No page may log a console error.
 *
 * Each page is photographed at 1280×800 into a temporary directory, and into `docs/ui/` when
 * `SWB_UI_SCREENSHOTS=1` (`npm run ui:screenshots`). Skipped, loudly, without `/usr/bin/chromium`.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { CHROMIUM, checkThemes, haveChromium, launchChromium, VIEWPORT } from '../helpers/browser.js';
import { startEverythingHttp, type EverythingHttp } from '../helpers/everything.js';
import { CLI, ROOT, startServe, type ServeProcess } from '../helpers/serve.js';

const run = promisify(execFile);
const require = createRequire(import.meta.url);
const EVERYTHING_ENTRY = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');

if (!haveChromium) {
  console.warn(
    `\n!!! SKIPPED: admin web UI browser tests (test/e2e/ui.test.ts): ${CHROMIUM} is not installed.\n!!! Install it (Debian/Ubuntu: apt-get install -y chromium) to run them.\n`,
  );
}

const SHOTS = mkdtempSync(join(tmpdir(), 'swb-ui-shots-'));
const DOCS_SHOTS = process.env.SWB_UI_SCREENSHOTS === '1' ? join(ROOT, 'docs', 'ui') : undefined;
/** Words of every control that changes something; a read-only token must see none of them. */
const WRITE_ACTIONS =
  /^(add server|restart|edit|disable|enable|remove|confirm|create token|revoke|try it|call tool|save)\b/i;

interface Token {
  id: string;
  token: string;
}

let serve: ServeProcess;
/** The reference server over Streamable HTTP, added at run time as a URL server. */
let remote: EverythingHttp;
let browser: Browser;
let admin: Token;
let readOnly: Token;
let dir: string;
/** Console errors and uncaught exceptions of the current test's pages. */
let consoleErrors: string[] = [];
const contexts: BrowserContext[] = [];

async function cli(...args: string[]): Promise<string> {
  const env = { ...process.env, SWITCHBOARD_DATABASE_URL: join(dir, 'switchboard.db') };
  const { stdout } = await run(process.execPath, [...CLI, ...args, '--config', join(dir, 'switchboard.yaml')], {
    cwd: dir,
    env,
  });
  return stdout;
}

/**
 * A page in a new browser context. `bypassCSP` lets axe-core be injected as an inline script;
 * the app itself is checked under the gateway's Content-Security-Policy by a test of its own.
 */
async function openPage(options: { csp?: boolean } = {}): Promise<Page> {
  const context = await browser.newContext({
    viewport: VIEWPORT,
    colorScheme: 'light',
    acceptDownloads: true,
    bypassCSP: options.csp !== true,
  });
  contexts.push(context);
  const page = await context.newPage();
  // Fail within a test's time with the locator that was awaited, not with the test's timeout.
  page.setDefaultTimeout(8000);
  page.on('console', (msg) => {
    if (msg.type() === 'error') consoleErrors.push(`${page.url()}: ${msg.text()}`);
  });
  page.on('pageerror', (err) => consoleErrors.push(`${page.url()}: uncaught ${err.message}`));
  return page;
}

async function login(page: Page, token: string): Promise<void> {
  await page.goto(`${serve.url}/ui/`);
  const field = page.getByLabel('API token');
  await field.fill(token);
  await field.press('Enter');
  await page.getByRole('navigation', { name: 'Pages' }).waitFor();
}

async function goTo(page: Page, route: string, heading: string): Promise<void> {
  await page.getByRole('navigation', { name: 'Pages' }).getByRole('link', { name: heading, exact: true }).click();
  await page.waitForURL(new RegExp(`#/${route}$`));
  await page.getByRole('heading', { level: 1, name: heading }).waitFor();
}

/**
 * Runs axe in the light and the dark theme and photographs the page in both (the dark one only
 * into the temporary directory, except for `overview`).
 */
async function checkPage(page: Page, name: string): Promise<void> {
  await checkThemes(page, name, { shots: SHOTS, docs: DOCS_SHOTS, docsDark: ['overview'] });
}

async function apiGet<T>(path: string, token: string): Promise<T> {
  const res = await fetch(`${serve.url}/api/v1/${path}`, { headers: { authorization: `Bearer ${token}` } });
  expect(res.status).toBe(200);
  return (await res.json()) as T;
}

describe.skipIf(!haveChromium)('admin web UI in Chromium', () => {
  beforeAll(async () => {
    if (!existsSync(join(ROOT, 'dist', 'ui', 'index.html')) || !existsSync(join(ROOT, 'dist', 'bin', 'switchboard.js')))
      throw new Error('the app is not built: run `npm run build` first');
    dir = mkdtempSync(join(tmpdir(), 'swb-ui-'));
    writeFileSync(
      join(dir, 'switchboard.yaml'),
      [
        'auth: { mode: tokens }',
        'listen: { port: 0 }',
        'usage: { flushInterval: 200ms }',
        // The runtime URL server of the servers test listens on loopback.
        "runtimeServers: { allowDestinations: ['127.0.0.1/32'] }",
        'servers:',
        '  everything:',
        `    command: ${JSON.stringify(process.execPath)}`,
        `    args: [${JSON.stringify(EVERYTHING_ENTRY)}, stdio]`,
        '',
      ].join('\n'),
    );
    admin = JSON.parse(
      await cli('token', 'create', '--name', 'ui-admin', '--permissions', 'admin.*', '--json'),
    ) as Token;
    readOnly = JSON.parse(
      await cli('token', 'create', '--name', 'ui-viewer', '--permissions', 'servers.use,usage.read', '--json'),
    ) as Token;
    const env = { ...process.env, SWITCHBOARD_DATABASE_URL: join(dir, 'switchboard.db') };
    [serve, remote, browser] = await Promise.all([
      startServe(['--config', join(dir, 'switchboard.yaml')], { cwd: dir, env }),
      startEverythingHttp('streamableHttp'),
      launchChromium(),
    ]);
  }, 60_000);

  afterEach(async () => {
    const errors = consoleErrors;
    consoleErrors = [];
    for (const c of contexts.splice(0)) await c.close();
    expect(errors, 'console errors').toEqual([]);
  });

  afterAll(async () => {
    await browser?.close();
    await remote?.stop();
    if (serve) {
      serve.child.kill('SIGTERM');
      await serve.exited;
    }
  });

  it('refuses an unknown token on the login page with a message saying 401, and shows no page', async () => {
    const page = await openPage();
    await page.goto(`${serve.url}/ui/`);
    await checkPage(page, 'login');
    const field = page.getByLabel('API token');
    expect(await field.getAttribute('type')).toBe('password');
    // Keyboard: Tab reaches the field (after the theme button), with a visible focus outline.
    await page.keyboard.press('Tab');
    await page.keyboard.press('Tab');
    expect(await field.evaluate((el) => el === el.ownerDocument.activeElement)).toBe(true);
    const outline = await page.evaluate<string>(
      "(() => { const s = getComputedStyle(document.activeElement); return s.outlineStyle + ' ' + s.outlineWidth; })()",
    );
    expect(outline).toMatch(/^solid [2-9]/);
    await field.fill('swb_not-a-token');
    await field.press('Enter');
    await expect.poll(() => page.getByRole('alert').textContent()).toContain('401');
    expect(await page.getByRole('navigation', { name: 'Pages' }).count()).toBe(0);
    // The browser reports the refused request itself as a console error: expected here, and only that.
    expect(consoleErrors.every((e) => /status of 401/.test(e))).toBe(true);
    consoleErrors = [];
  });

  it('logs in with the admin token and shows every configured server with its state word ready', async () => {
    const page = await openPage();
    await login(page, admin.token);
    const { servers } = await apiGet<{ servers: Array<{ name: string }> }>('servers', admin.token);
    expect(servers.map((s) => s.name)).toEqual(['everything']);
    for (const s of servers) {
      await expect
        .poll(() => page.locator(`article[data-server="${s.name}"] .badge`).textContent(), { timeout: 20_000 })
        .toBe('ready');
    }
    const card = page.locator('article[data-server="everything"]');
    expect(await card.textContent()).toMatch(/Transport\s*stdio/);
    await checkPage(page, 'overview');
  });

  it('calls echo from the catalog with a form generated from its schema and shows the answer', async () => {
    const page = await openPage();
    await login(page, admin.token);
    await goTo(page, 'catalog', 'Catalog');
    await page.getByRole('searchbox', { name: 'Search' }).fill('echo');
    await page.getByRole('button', { name: 'Try it: everything__echo' }).click();
    const message = page.getByLabel(/^message/);
    expect(await message.getAttribute('aria-required')).toBe('true');
    await message.fill('hello from the UI');
    await page.getByRole('button', { name: 'Call tool' }).click();
    await expect.poll(() => page.getByTestId('tool-result').textContent()).toContain('Echo: hello from the UI');
    await checkPage(page, 'catalog');
  });

  it('creates a token, shows its secret once, and revokes it after a confirmation', async () => {
    const page = await openPage();
    await login(page, admin.token);
    await goTo(page, 'tokens', 'Tokens');
    await page.getByLabel('Name', { exact: true }).fill('ui-temp');
    await page.getByRole('checkbox', { name: 'usage.read' }).check();
    await page.getByLabel(/^Expires in/).fill('1d');
    await page.getByRole('button', { name: 'Create token' }).click();
    const secret = page.getByLabel('Token', { exact: true });
    await secret.waitFor();
    const value = await secret.inputValue();
    expect(value.length).toBeGreaterThan(20);
    // The secret works: the gateway knows the new token and its permissions.
    const me = await apiGet<{ permissions: string[] }>('me', value);
    expect(me.permissions).toEqual(expect.arrayContaining(['servers.use', 'tools.execute', 'usage.read']));
    const row = page.locator('tr[data-token="ui-temp"]');
    await row.waitFor();
    await checkPage(page, 'tokens');

    await page.getByRole('button', { name: 'Revoke ui-temp' }).click();
    await row.getByRole('button', { name: 'Confirm revoke' }).click();
    await expect.poll(() => row.locator('.badge').textContent()).toBe('revoked');
    const refused = await fetch(`${serve.url}/api/v1/me`, { headers: { authorization: `Bearer ${value}` } });
    expect(refused.status).toBe(401);
    await refused.text();
  });

  it('shows the echo call in Live and a refused request as blocked, and in Usage with a CSV export', async () => {
    const page = await openPage();
    await login(page, admin.token);
    await goTo(page, 'live', 'Live');
    const echoRow = page.locator('table.live-requests tbody tr', { hasText: 'echo' }).filter({ hasText: 'tools/call' });
    await expect.poll(() => echoRow.count(), { timeout: 10_000 }).toBeGreaterThan(0);
    // A request with a bad token arrives while the page streams: it is listed, marked as refused.
    const bad = await fetch(`${serve.url}/mcp`, {
      method: 'POST',
      headers: { authorization: 'Bearer swb_bad', 'content-type': 'application/json', accept: 'application/json' },
      body: '{"jsonrpc":"2.0","id":1,"method":"ping"}',
    });
    expect(bad.status).toBe(401);
    await bad.text();
    const refusedRow = page.locator('table.live-requests tbody tr[data-outcome]:not([data-outcome="ok"])').first();
    await refusedRow.waitFor({ timeout: 10_000 });
    expect(await refusedRow.locator('.badge').textContent()).toMatch(/blocked|error/);
    // Filters: by text, and by outcome (only the refused request is "not ok").
    const rows = page.locator('table.live-requests tbody tr');
    await page.getByLabel('Outcome').selectOption('problems');
    await expect.poll(() => rows.count()).toBe(1);
    expect(await rows.first().getAttribute('data-outcome')).not.toBe('ok');
    await page.getByLabel('Outcome').selectOption('');
    await page.getByRole('searchbox', { name: /^Filter/ }).fill('echo');
    await expect.poll(async () => (await rows.allTextContents()).every((t) => t.includes('echo'))).toBe(true);
    expect(await rows.count()).toBeGreaterThan(0);
    await page.getByRole('searchbox', { name: /^Filter/ }).fill('');
    await checkPage(page, 'live');

    await goTo(page, 'usage', 'Usage');
    await page.getByLabel('Group by').selectOption('tool');
    const usageRow = page.locator('table.data tbody tr', { hasText: 'echo' });
    await expect
      .poll(
        async () => {
          if ((await usageRow.count()) > 0) return true;
          await page.getByRole('button', { name: 'Refresh' }).click();
          return false;
        },
        { timeout: 10_000, interval: 250 },
      )
      .toBe(true);
    await page.locator('.chart canvas').first().waitFor();
    const [download] = await Promise.all([
      page.waitForEvent('download'),
      page.getByRole('button', { name: 'Export CSV' }).click(),
    ]);
    const csv = readFileSync(await download.path(), 'utf8');
    expect(csv.split('\r\n')[0]).toBe('bucket,tool,server_or_subject,count,success,blocked,errors,avg_latency_ms');
    expect(csv).toMatch(/echo/);
    await checkPage(page, 'usage');

    // The overview now has traffic to draw: the echo call and the refused request.
    await goTo(page, 'overview', 'Overview');
    const card = page.locator('article[data-server="everything"]');
    await expect
      .poll(async () => (await card.textContent()) ?? '', { timeout: 10_000 })
      .not.toMatch(/Requests\/min\s*0\.0/);
    await checkPage(page, 'overview');
  });

  it('shows a refused server entry with its validation issues next to the form', async () => {
    const page = await openPage();
    await login(page, admin.token);
    await goTo(page, 'servers', 'Servers');
    await page.locator('tr[data-server="everything"]').waitFor();
    expect(await page.locator('tr[data-server="everything"]').textContent()).toContain('file, read-only');
    await page.getByLabel('Name', { exact: true }).fill('broken');
    await page.getByRole('textbox', { name: 'URL', exact: true }).fill('not a url');
    await page.getByRole('button', { name: 'Add server' }).click();
    const issues = page.locator('#add-issues');
    await issues.waitFor();
    expect(await issues.textContent()).toContain('url');
    // The browser reports the refused request itself as a console error: expected here, and only that.
    expect(consoleErrors.every((e) => /status of 400/.test(e))).toBe(true);
    consoleErrors = [];
    await checkPage(page, 'servers');
  });

  it('adds a runtime URL server, disables, enables, restarts, edits and removes it', async () => {
    const page = await openPage();
    await login(page, admin.token);
    await goTo(page, 'servers', 'Servers');
    await page.getByLabel('Name', { exact: true }).fill('remote');
    await page.getByRole('textbox', { name: 'URL', exact: true }).fill(remote.url);
    await page.getByRole('button', { name: 'Add server' }).click();
    const row = page.locator('tr[data-server="remote"]');
    const state = () => row.locator('.badge').textContent();
    await expect.poll(state, { timeout: 10_000 }).toBe('ready');
    expect(await row.textContent()).toContain('runtime (API)');

    await row.getByRole('button', { name: 'Disable remote' }).click();
    await expect.poll(state).toBe('disabled');
    expect((await apiGet<{ state: string }>('servers/remote', admin.token)).state).toBe('disabled');
    await row.getByRole('button', { name: 'Enable remote' }).click();
    await expect.poll(state, { timeout: 10_000 }).toBe('ready');

    await row.getByRole('button', { name: 'Restart remote' }).click();
    await expect.poll(() => page.getByRole('status').allTextContents()).toContain('Server "remote" restarted.');
    expect((await apiGet<{ state: string }>('servers/remote', admin.token)).state).toBe('ready');

    await row.getByRole('button', { name: 'Edit remote' }).click();
    const editor = page.getByLabel('Entry (JSON)');
    const entry = JSON.parse(await editor.inputValue()) as Record<string, unknown>;
    expect(entry.url).toBe(remote.url);
    await editor.fill(JSON.stringify({ ...entry, description: 'edited in the UI' }));
    await page.getByRole('button', { name: 'Save' }).click();
    await expect.poll(() => row.textContent()).toContain('edited in the UI');

    await row.getByRole('button', { name: 'Remove remote' }).click();
    await row.getByRole('button', { name: 'Confirm remove' }).click();
    await expect.poll(() => row.count()).toBe(0);
    const gone = await fetch(`${serve.url}/api/v1/servers/remote`, {
      headers: { authorization: `Bearer ${admin.token}` },
    });
    expect(gone.status).toBe(404);
    await gone.text();
  });

  it('shows a read-only token no write action on any page', async () => {
    const page = await openPage();
    await login(page, readOnly.token);
    const nav = page.getByRole('navigation', { name: 'Pages' });
    expect(await nav.getByRole('link').allTextContents()).toEqual([
      'Overview',
      'Servers',
      'Catalog',
      'Connections',
      'Usage',
      'Live',
    ]);
    // Each page with what shows that its data arrived.
    for (const [route, heading, loaded] of [
      ['overview', 'Overview', 'article[data-server="everything"]'],
      ['servers', 'Servers', 'tr[data-server="everything"]'],
      ['catalog', 'Catalog', 'li[data-tool="everything__echo"]'],
      ['usage', 'Usage', 'table.data tbody tr'],
      ['live', 'Live', 'table.live-requests tbody tr'],
    ] as const) {
      await goTo(page, route, heading);
      await page.locator(loaded).first().waitFor();
      const buttons = await page.getByRole('button').allTextContents();
      expect(
        buttons.filter((b) => WRITE_ACTIONS.test(b.trim())),
        route,
      ).toEqual([]);
    }
  });

  it("runs every page, and try-it image and structured results, under the gateway's Content-Security-Policy without a violation", async () => {
    const res = await fetch(`${serve.url}/ui/`);
    expect(res.headers.get('content-security-policy')).toContain("script-src 'self'");
    await res.text();
    const page = await openPage({ csp: true });
    const violations: string[] = [];
    await page.exposeFunction('reportCspViolation', (v: string) => violations.push(v));
    await page.addInitScript({
      content:
        "document.addEventListener('securitypolicyviolation', (e) => void reportCspViolation(e.violatedDirective + ' ' + e.blockedURI));",
    });
    await login(page, admin.token);
    await page
      .locator('article[data-server="everything"] .sparkline canvas, article[data-server="everything"]')
      .first()
      .waitFor();
    // Try it with an image result (a data: URL, which the policy allows) and an enum argument
    // whose answer has structured content.
    await goTo(page, 'catalog', 'Catalog');
    const search = page.getByRole('searchbox', { name: 'Search' });
    await search.fill('tiny-image');
    await page.getByRole('button', { name: 'Try it: everything__get-tiny-image' }).click();
    await page.getByRole('button', { name: 'Call tool' }).click();
    const image = page.getByTestId('tool-result').getByRole('img');
    await image.waitFor();
    expect(await image.evaluate((img) => (img as unknown as { naturalWidth: number }).naturalWidth)).toBeGreaterThan(0);
    await search.fill('structured');
    await page.getByRole('button', { name: 'Try it: everything__get-structured-content' }).click();
    await page.getByLabel(/^location/).selectOption('Chicago');
    await page.getByRole('button', { name: 'Call tool' }).click();
    await expect
      .poll(() => page.getByTestId('tool-result').textContent())
      .toMatch(/Structured content[\s\S]*"temperature"/);

    for (const [route, heading, loaded] of [
      ['servers', 'Servers', 'tr[data-server="everything"]'],
      ['catalog', 'Catalog', 'li[data-tool="everything__echo"]'],
      ['tokens', 'Tokens', 'tr[data-token="ui-admin"]'],
      ['usage', 'Usage', 'table.data'],
      ['live', 'Live', 'table.live-requests tbody tr'],
    ] as const) {
      await goTo(page, route, heading);
      await page.locator(loaded).first().waitFor();
    }
    expect(violations).toEqual([]);
  });
});
