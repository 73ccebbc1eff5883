/**
 * `switchboard migrate` (runMigrate) against a real SQLite file and the shared PostgreSQL.
 */
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { CliOutput } from '../../../src/cli/check.js';
import { runMigrate, type MigrateOptions } from '../../../src/cli/migrate.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { MIGRATIONS } from '../../../src/store/migrations.js';
import { createSchema, dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';

const postgresUp = await postgresGate('`switchboard migrate` tests');
const MIGRATION_NAMES = Object.keys(MIGRATIONS).sort();

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'swb-migrate-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function migrate(options: MigrateOptions): Promise<{ code: number; out: string[]; err: string[] }> {
  const out: string[] = [];
  const err: string[] = [];
  const output: CliOutput = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = await runMigrate({ env: {}, logger: silentLogger(), ...options }, output);
  return { code, out, err };
}

async function writeConfig(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

describe('switchboard migrate on SQLite', () => {
  it('creates .switchboard/switchboard.db next to the config, applies the migrations, then says up to date', async () => {
    const config = await writeConfig('switchboard.yaml', 'mcpServers: {}\n');
    const path = join(dir, '.switchboard', 'switchboard.db');

    const first = await migrate({ config });
    expect(first.code).toBe(0);
    expect(first.err).toEqual([]);
    expect(first.out).toEqual([
      ...MIGRATION_NAMES.map((n) => `applied ${n}`),
      `${MIGRATION_NAMES.length} migration${MIGRATION_NAMES.length === 1 ? '' : 's'} applied (sqlite ${path})`,
    ]);
    expect(existsSync(path)).toBe(true);

    const second = await migrate({ config });
    expect(second).toEqual({ code: 0, out: [`database up to date (sqlite ${path})`], err: [] });
  });

  it('puts the database of the bundled example config in ./.switchboard, as serve does', async () => {
    const cwd = process.cwd();
    process.chdir(dir);
    try {
      const run = await migrate({});
      expect(run.code).toBe(0);
      expect(run.out.at(-1)).toContain(join(dir, '.switchboard', 'switchboard.db'));
    } finally {
      process.chdir(cwd);
    }
  });

  it("uses the config's dataDir, relative to the config file", async () => {
    const config = await writeConfig('sb.json', '{"dataDir": "state", "mcpServers": {}}');
    expect((await migrate({ config })).code).toBe(0);
    expect(existsSync(join(dir, 'state', 'switchboard.db'))).toBe(true);
  });

  it('prefers --database-url, then SWITCHBOARD_DATABASE_URL, over the data directory', async () => {
    const config = await writeConfig('switchboard.yaml', 'mcpServers: {}\n');
    const fromEnv = join(dir, 'env.db');
    const explicit = join(dir, 'explicit.db');
    expect((await migrate({ config, env: { SWITCHBOARD_DATABASE_URL: fromEnv } })).code).toBe(0);
    expect(existsSync(fromEnv)).toBe(true);
    const run = await migrate({
      config,
      databaseUrl: `sqlite:${explicit}`,
      env: { SWITCHBOARD_DATABASE_URL: fromEnv },
    });
    expect(run.code).toBe(0);
    expect(run.out.at(-1)).toContain(explicit);
    expect(existsSync(join(dir, '.switchboard'))).toBe(false);
  });

  it('exits 1 with every config problem when the config is invalid, touching no database', async () => {
    const config = await writeConfig('bad.yaml', 'mcpServers:\n  x:\n    command: 42\n');
    const run = await migrate({ config });
    expect(run.code).toBe(1);
    expect(run.out).toEqual([]);
    expect(run.err.join('\n')).toContain('mcpServers.x.command');
    expect(existsSync(join(dir, '.switchboard'))).toBe(false);
  });

  it('exits 1 with the error code for an unsupported database URL', async () => {
    const config = await writeConfig('switchboard.yaml', 'mcpServers: {}\n');
    const run = await migrate({ config, databaseUrl: 'mysql://root@localhost/db' });
    expect(run.code).toBe(1);
    expect(run.err).toEqual([expect.stringMatching(/^SWB_ERR_CONFIG_INVALID: /)]);
  });
});

describe.skipIf(!postgresUp)('switchboard migrate on PostgreSQL', () => {
  const schema = uniqueSchema('cli');

  afterAll(async () => {
    await dropSchema(schema);
  });

  it('migrates the schema named by the URL search_path, then says up to date', async () => {
    await createSchema(schema);
    const config = await writeConfig('switchboard.yaml', 'mcpServers: {}\n');
    const url = `${POSTGRES_URL}?options=${encodeURIComponent(`-c search_path=${schema}`)}`;
    const first = await migrate({ config, env: { SWITCHBOARD_DATABASE_URL: url } });
    expect(first.err).toEqual([]);
    expect(first.code).toBe(0);
    expect(first.out.slice(0, -1)).toEqual(MIGRATION_NAMES.map((n) => `applied ${n}`));
    expect(first.out.at(-1)).toMatch(/^\d+ migrations? applied \(postgres postgres:\/\//);

    const second = await migrate({ config, databaseUrl: url });
    expect(second.code).toBe(0);
    expect(second.out).toEqual([expect.stringMatching(/^database up to date \(postgres /)]);
    expect(existsSync(join(dir, '.switchboard'))).toBe(false);
  });
});
