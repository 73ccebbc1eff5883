/**
 * Where the installed package lives, for the files it ships next to its code (`package.json`,
 * `examples/`). Found by walking up from this module to the nearest `package.json`, so it is
 * right from `src/` (tests), `dist/` (the compiled modules) and `dist/bin/` (the bundle the
 * `switchboard` command runs) alike.
 *
 * @module
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

let root: string | undefined;

/**
 * The package's root directory (the one holding its `package.json`).
 *
 * @throws Error when no `package.json` is found above this module (a broken installation).
 */
export function packageRoot(): string {
  if (root !== undefined) return root;
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, 'package.json'))) return (root = dir);
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

/** The package version from its `package.json`; `0.0.0` when it cannot be read. */
export function packageVersion(): string {
  try {
    const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version?: string };
    return pkg.version ?? '0.0.0';
  } catch {
    return '0.0.0';
  }
}
