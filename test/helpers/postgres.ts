/**
 * PostgreSQL for tests: the shared server at 127.0.0.1:5432 (trust auth, database
 * `test`), or `SWITCHBOARD_TEST_POSTGRES_URL`. Each test file works in its own schema
 * ({@link uniqueSchema}) and drops it afterwards ({@link dropSchema}), so runs never see each
 * other's rows.
 *
 * Locally, when PostgreSQL is down, the PostgreSQL half of a suite is skipped with a loud
 * warning; in CI (`CI` set) {@link postgresGate} throws instead, failing the file.
 */
import { randomBytes } from 'node:crypto';
import pg from 'pg';

/** The PostgreSQL the tests use. */
export const POSTGRES_URL = process.env.SWITCHBOARD_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test';

/** The command that starts the shared PostgreSQL of the test machine again. */
export const POSTGRES_START_COMMAND = 'pg_ctlcluster --skip-systemctl-redirect $(ls /etc/postgresql) main start';

let available: Promise<boolean> | undefined;

/** True when {@link POSTGRES_URL} accepts a connection and `select 1` within 3 s (checked once per file). */
export function postgresAvailable(): Promise<boolean> {
  available ??= (async () => {
    const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3_000 });
    client.on('error', () => undefined);
    try {
      await client.connect();
      await client.query('select 1');
      return true;
    } catch {
      return false;
    } finally {
      await client.end().catch(() => undefined);
    }
  })();
  return available;
}

/**
 * Decides whether the PostgreSQL tests of a file run.
 *
 * @param what - what would be skipped, for the message (e.g. `store tests`).
 * @returns true when PostgreSQL is reachable; false (after a loud `console.warn`) when it is not
 *   and `CI` is unset.
 * @throws Error when PostgreSQL is unreachable and `CI` is set: CI must run these tests for real.
 */
export async function postgresGate(what: string): Promise<boolean> {
  if (await postgresAvailable()) return true;
  const why = `PostgreSQL is not reachable at ${POSTGRES_URL}`;
  if (process.env.CI !== undefined && process.env.CI !== '') {
    throw new Error(`${why}; CI must run the ${what} against PostgreSQL (start it: ${POSTGRES_START_COMMAND})`);
  }
  console.warn(
    `\n!!! SKIPPED: the ${what} on PostgreSQL: ${why}.\n!!! Start it with: ${POSTGRES_START_COMMAND}\n!!! (With CI set, this is a failure.)\n`,
  );
  return false;
}

/** A fresh schema name for one test file: `swb_test_<prefix>_<pid>_<random>`. */
export function uniqueSchema(prefix: string): string {
  const clean = prefix.toLowerCase().replace(/[^a-z0-9_]/g, '_');
  return `swb_test_${clean}_${process.pid}_${randomBytes(4).toString('hex')}`;
}

/** Drops `schema` and everything in it (if it exists). */
export async function dropSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`drop schema if exists "${schema.replace(/"/g, '""')}" cascade`);
  } finally {
    await client.end();
  }
}

/** Creates `schema` if missing (for tests that reach it through a URL's `search_path`). */
export async function createSchema(schema: string): Promise<void> {
  const client = new pg.Client({ connectionString: POSTGRES_URL, connectionTimeoutMillis: 3_000 });
  client.on('error', () => undefined);
  await client.connect();
  try {
    await client.query(`create schema if not exists "${schema.replace(/"/g, '""')}"`);
  } finally {
    await client.end();
  }
}
