/**
 * Smoke test of the benchmark harness (`npm run bench`, bench/run.mjs): a `--quick` run of
 * scenarios 1 (tools/call through a stdio upstream: bare relay, Switchboard in both protocol
 * eras, supergateway, mcp-proxy), 3 (features with and without the usage log, which must store
 * one row per request served) and 4 (tools/list of a 1,000-tool aggregate) must finish, serve
 * every request without errors and print the result tables. It checks that the harness still works against the
 * current build, not performance (that is `npm run bench`'s job, on a quiet machine).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const BUILT = existsSync(join(ROOT, 'dist/bin/switchboard.js'));
const run = promisify(execFile);

interface Point {
  rps: number;
  p50: number;
  errors: number;
}
type Rows = Record<string, { error?: string } & Record<string, Point>>;

describe.skipIf(!BUILT)('bench harness (quick smoke; needs `npm run build`)', () => {
  it('runs scenarios 1, 3 and 4 end to end and reports every contender', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'swb-bench-smoke-'));
    try {
      const json = join(dir, 'out.json');
      const { stdout } = await run(process.execPath, ['bench/run.mjs', '--quick', '--only', '1,3,4', '--json', json], {
        cwd: ROOT,
        timeout: 115_000,
      });
      expect(stdout).toContain('### 1. tools/call echo through a stdio upstream');
      expect(stdout).toContain('### Targets');
      const results = JSON.parse(readFileSync(json, 'utf8')) as {
        s1: Rows;
        s3: Record<
          string,
          { error?: string; afterStop?: { usageRows: number; served: number } } & Record<string, Point>
        >;
        s4: Record<string, Point & { tools: number; error?: string }>;
      };
      for (const key of ['relay', 'switchboard', 'switchboard-modern', 'supergateway', 'mcp-proxy']) {
        const row = results.s1[key];
        expect(row?.error, `${key}: ${row?.error}`).toBeUndefined();
        for (const c of ['1', '16']) {
          expect(row![c]!.errors, `${key} c=${c}`).toBe(0);
          expect(row![c]!.rps, `${key} c=${c}`).toBeGreaterThan(0);
        }
      }
      // Scenario 3: features with and without the usage log; every request served became one row.
      for (const key of ['switchboard', 'usage-off']) {
        const row = results.s3[key];
        expect(row?.error, `${key}: ${row?.error}`).toBeUndefined();
        expect(row!['16']!.errors, key).toBe(0);
      }
      const rows = results.s3.switchboard!.afterStop!;
      expect(rows.served).toBeGreaterThan(0);
      expect(rows.usageRows).toBe(rows.served);
      expect(stdout).toContain('What the usage log costs');
      const s4 = (key: string) => JSON.stringify(results.s4[key]);
      expect(results.s4.switchboard?.tools, s4('switchboard')).toBe(1000);
      expect(results.s4.switchboard?.errors, s4('switchboard')).toBe(0);
      expect(results.s4.relay?.tools, s4('relay')).toBe(1000);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
