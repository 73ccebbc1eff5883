/**
 * Light/dark theme: follows `prefers-color-scheme` unless the user picked one with the toggle
 * (kept in `localStorage`), applied as `data-theme` on the root element.
 *
 * @module
 */

/** `system` follows the operating system's preference. */
export type ThemeChoice = 'system' | 'light' | 'dark';

const KEY = 'switchboard.theme';

/** The stored choice, `system` when none. */
export function storedTheme(): ThemeChoice {
  try {
    const v = localStorage.getItem(KEY);
    return v === 'light' || v === 'dark' ? v : 'system';
  } catch {
    return 'system';
  }
}

/** Event dispatched on `window` after the applied theme changed (charts redraw their canvas colours). */
export const THEME_CHANGE_EVENT = 'switchboard:themechange';

/** Applies and stores a choice. */
export function applyTheme(choice: ThemeChoice): void {
  if (choice === 'system') delete document.documentElement.dataset.theme;
  else document.documentElement.dataset.theme = choice;
  window.dispatchEvent(new Event(THEME_CHANGE_EVENT));
  try {
    if (choice === 'system') localStorage.removeItem(KEY);
    else localStorage.setItem(KEY, choice);
  } catch {
    // Storage disabled: the choice lasts until reload.
  }
}

/** The next choice of the toggle: system → light → dark → system. */
export function nextTheme(choice: ThemeChoice): ThemeChoice {
  return choice === 'system' ? 'light' : choice === 'light' ? 'dark' : 'system';
}
