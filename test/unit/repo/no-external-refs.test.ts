/**
 * Comments and docs stand on their own: nothing in the repository may point a reader at a
 * document the repository does not contain — a product brief ("PRODUCT §4.4"), a predecessor
 * project ("seed 001"), a style guide kept elsewhere, a tracker issue ("issue 'Identity' §G"),
 * or a working session ("session 2"). Such a comment states the rule itself, or cites an RFC or
 * an MCP spec section; benchmark history names the run by its date.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
const SELF = relative(ROOT, fileURLToPath(import.meta.url));

/** Where comments and docs live. */
const SCANNED = ['src', 'docs', 'test', 'bench', 'scripts', 'examples', 'deploy', 'README.md'];
const TEXT = /\.(ts|mts|mjs|cjs|js|md|ya?ml|json|toml|sh)$/;

/** References to documents outside the repository. */
const PATTERNS: ReadonlyArray<readonly [string, RegExp]> = [
  ['product brief', /\bPRODUCT\b/],
  ['predecessor project', /\b[Ss]eed 0\d\d\b/],
  ['style guide kept elsewhere', /\bSTYLE\.md\b/],
  ['tracker issue', /\b[Ii]ssues? (["'“#]|\d)|\bthe issue's\b/],
  ['working session', /\b[Ss]ession [1-9]\b/],
  ['the brief', /\bthe brief\b/i],
];

function* files(path: string): Generator<string> {
  const full = join(ROOT, path);
  let entries;
  try {
    entries = readdirSync(full, { withFileTypes: true });
  } catch {
    if (TEXT.test(path)) yield path; // a file, or missing (then reading it fails loudly below)
    return;
  }
  for (const e of entries) {
    if (e.name === 'node_modules' || e.name.startsWith('.')) continue;
    const child = `${path}/${e.name}`;
    if (e.isDirectory()) yield* files(child);
    else if (TEXT.test(e.name)) yield child;
  }
}

/** `file:line: text` for every line that cites an outside document. */
function findReferences(paths: Iterable<string>): string[] {
  const found: string[] = [];
  for (const path of paths) {
    if (path === SELF) continue;
    const lines = readFileSync(join(ROOT, path), 'utf8').split('\n');
    lines.forEach((line, i) => {
      for (const [what, re] of PATTERNS) {
        if (re.test(line)) found.push(`${path}:${i + 1}: (${what}) ${line.trim()}`);
      }
    });
  }
  return found;
}

describe('comments and docs', () => {
  it('cite no document outside the repository (product brief, predecessor, issue, session)', () => {
    const paths = SCANNED.flatMap((p) => [...files(p)]);
    expect(paths.length).toBeGreaterThan(100);
    expect(findReferences(paths)).toEqual([]);
  });

  it('recognises each kind of outside reference', () => {
    const samples = [
      'Routes (PRODUCT §3)',
      'as seed 001 does',
      'Storage ports (STYLE.md: stores)',
      'issue "Identity" §G',
      'issue 5 §B',
      "the issue's rule shape",
      'measured in session 2',
      'as the brief says',
    ];
    for (const sample of samples)
      expect(
        PATTERNS.some(([, re]) => re.test(sample)),
        sample,
      ).toBe(true);
    for (const fine of ['issue API tokens', 'FUZZ_SEED=42', "'session-1'", 'the issuer URL']) {
      expect(
        PATTERNS.some(([, re]) => re.test(fine)),
        fine,
      ).toBe(false);
    }
  });
});
