/**
 * Property-based testing with fast-check, seeded and bounded so a fuzz suite runs inside
 * `npm test`.
 *
 * - `FUZZ_SEED` (integer, default {@link DEFAULT_FUZZ_SEED}) fixes the random stream, so a run is
 *   reproducible; a failure names the seed and fast-check's counterexample path.
 * - `FUZZ_RUNS` (integer, default 1) multiplies every property's `numRuns` for a longer local
 *   campaign, e.g. `FUZZ_RUNS=20 FUZZ_SEED=$RANDOM npx vitest run test/integration/gateway/edge-fuzz.test.ts`.
 */
import fc from 'fast-check';

/** The seed used when `FUZZ_SEED` is not set. */
export const DEFAULT_FUZZ_SEED = 20_260_728;

function intFromEnv(name: string, fallback: number): number {
  const raw = process.env[name];
  if (raw === undefined || raw === '') return fallback;
  const n = Number(raw);
  if (!Number.isSafeInteger(n)) throw new Error(`${name} must be an integer, got "${raw}"`);
  return n;
}

/** The seed of this run (`FUZZ_SEED`, else {@link DEFAULT_FUZZ_SEED}). */
export const FUZZ_SEED = intFromEnv('FUZZ_SEED', DEFAULT_FUZZ_SEED);

/** The `numRuns` multiplier of this run (`FUZZ_RUNS`, default 1). */
export const FUZZ_RUNS = Math.max(1, intFromEnv('FUZZ_RUNS', 1));

/**
 * Checks `property` with the run's seed and `numRuns × FUZZ_RUNS` runs. On failure the error
 * starts with the command line that reproduces it (`FUZZ_SEED=…`), followed by fast-check's report
 * (counterexample, shrink path).
 */
export async function checkProperty<Ts>(
  property: fc.IAsyncProperty<Ts> | fc.IProperty<Ts>,
  numRuns: number,
  extra: Partial<fc.Parameters<Ts>> = {},
): Promise<void> {
  try {
    await fc.assert(property, { seed: FUZZ_SEED, numRuns: numRuns * FUZZ_RUNS, ...extra });
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new Error(`property failed; reproduce with FUZZ_SEED=${FUZZ_SEED}\n${message}`, { cause: err });
  }
}
