/** A `CliOutput` that records what a command prints: `out` (stdout lines) and `err` (stderr lines). */
export function captureOutput(): {
  out: string[];
  err: string[];
  output: { out(line: string): void; err(line: string): void };
} {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, output: { out: (l) => out.push(l), err: (l) => err.push(l) } };
}
