/**
 * Test helpers for the admin web UI in a real browser: Debian's Chromium launched through
 * `playwright-core`, axe-core scans, and the screenshots of each page in the light and dark
 * themes (docs/ui.md). Used by the browser tests in `test/e2e/ui*.test.ts`.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { expect } from 'vitest';

const require = createRequire(import.meta.url);

/** Where the browser tests expect Chromium (Debian's package). */
export const CHROMIUM = '/usr/bin/chromium';
/** False when Chromium is not installed: the browser tests are skipped, with a warning. */
export const haveChromium = existsSync(CHROMIUM);
/** The size of every page and screenshot: a 1280×800 laptop screen. */
export const VIEWPORT = { width: 1280, height: 800 };

/** Launches headless Chromium with the flags of a quiet, sandbox-less CI machine. */
export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--no-first-run',
    ],
  });
}

const axeSource = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');

interface AxeViolation {
  id: string;
  impact: string | null;
  help: string;
  nodes: Array<{ target: string[] }>;
}

/**
 * axe-core's serious and critical violations on the page as it is now, one line each. axe-core
 * is injected as an inline script: the page's context must bypass the Content-Security-Policy.
 */
export async function axeViolations(page: Page): Promise<string[]> {
  // Browser-side code is given as text: the test's own TypeScript program has no DOM types.
  if (!(await page.evaluate<boolean>("'axe' in window"))) await page.addScriptTag({ content: axeSource });
  const violations = await page.evaluate<AxeViolation[]>('axe.run().then((r) => r.violations)');
  return violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Where {@link checkThemes} writes its screenshots. */
export interface ShotDirs {
  /** Every picture (`<name>.png`, `<name>-dark.png`), e.g. a temporary directory. */
  readonly shots: string;
  /** Also the light picture (and the dark one of the names in `docsDark`) here, e.g. `docs/ui`. */
  readonly docs?: string | undefined;
  /** Pages whose dark picture goes into `docs` too. */
  readonly docsDark?: readonly string[];
}

/**
 * Runs axe in the light and the dark theme (failing the test on a serious or critical violation)
 * and photographs the page in both; leaves the page in the light theme. A new token's secret
 * (`#secret-value`) is masked: the pictures go into the repository.
 */
export async function checkThemes(page: Page, name: string, dirs: ShotDirs): Promise<void> {
  for (const scheme of ['light', 'dark'] as const) {
    await page.emulateMedia({ colorScheme: scheme });
    // Let the theme's colours apply before measuring contrast.
    await page.evaluate('new Promise((resolve) => requestAnimationFrame(() => resolve(null)))');
    expect(await axeViolations(page), `${name} (${scheme})`).toEqual([]);
    const file = `${name}${scheme === 'dark' ? '-dark' : ''}.png`;
    const png = await page.screenshot({ mask: [page.locator('#secret-value')], maskColor: '#9aa1ab' });
    writeFileSync(join(dirs.shots, file), png);
    if (dirs.docs !== undefined && (scheme === 'light' || dirs.docsDark?.includes(name) === true)) {
      mkdirSync(dirs.docs, { recursive: true });
      writeFileSync(join(dirs.docs, file), png);
    }
  }
  await page.emulateMedia({ colorScheme: 'light' });
}
