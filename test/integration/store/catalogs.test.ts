/**
 * The stored catalogs of lazy upstreams over real databases (a SQLite file and the shared
 * PostgreSQL, one schema per run): a catalog round-trips, a second write replaces the first,
 * a missing server reads as undefined and a delete removes the row.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { CatalogStore, Database, StoredCatalog } from '../../../src/store/types.js';
import { dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';

const postgresUp = await postgresGate('stored catalog tests');
const tmp = await mkdtemp(join(tmpdir(), 'swb-catalogs-'));
const schema = uniqueSchema('catalogs');

const targets = [
  {
    name: 'sqlite',
    available: true,
    open: () => openDatabase({ url: join(tmp, 'catalogs.db'), dataDir: tmp, logger: silentLogger(), env: {} }),
  },
  {
    name: 'postgres',
    available: postgresUp,
    open: () => openDatabase({ url: POSTGRES_URL, schema, dataDir: tmp, logger: silentLogger(), env: {} }),
  },
];

afterAll(async () => {
  await rm(tmp, { recursive: true, force: true });
  if (postgresUp) await dropSchema(schema);
});

function catalog(server: string, tools: string[], updatedAt: number): StoredCatalog {
  return {
    server,
    fingerprint: `fp-${server}`,
    initializeResult: {
      protocolVersion: '2025-06-18',
      capabilities: { tools: { listChanged: true } },
      serverInfo: { name: server, version: '1.0.0' },
    },
    tools: tools.map((name) => ({ name, description: `${name} ✓`, inputSchema: { type: 'object' } })),
    prompts: [{ name: 'greet' }],
    resources: [],
    resourceTemplates: [{ uriTemplate: 'file:///{path}', name: 'file' }],
    updatedAt,
  };
}

describe.each(targets)('stored catalogs on $name', (target) => {
  describe.skipIf(!target.available)(target.name, () => {
    let db: Database;
    let store: CatalogStore;

    beforeAll(async () => {
      db = await target.open();
      await db.migrate();
      store = db.catalogs!;
    });

    afterAll(async () => {
      await db?.close();
    });

    it('reads back what was stored, and undefined for a server never stored', async () => {
      const stored = catalog('big', ['echo', 'add'], 1_800_000_000_000);
      await store.put(stored);
      expect(await store.get('big')).toEqual(stored);
      expect(await store.get('other')).toBeUndefined();
    });

    it('replaces the stored catalog of a server on the next write', async () => {
      await store.put(catalog('twice', ['a'], 1));
      const next = { ...catalog('twice', ['b', 'c'], 2), fingerprint: 'changed' };
      await store.put(next);
      expect(await store.get('twice')).toEqual(next);
    });

    it('deletes the stored catalog of a server', async () => {
      await store.put(catalog('gone', ['a'], 1));
      await store.delete('gone');
      expect(await store.get('gone')).toBeUndefined();
    });
  });
});
