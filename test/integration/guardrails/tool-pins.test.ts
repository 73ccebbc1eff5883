/**
 * Tool pins: hashing, the `tool_pins` store on SQLite and PostgreSQL (a schema of its own,
 * dropped afterwards), and the in-memory registry over a real store.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runToolsApprove, runToolsPins } from '../../../src/cli/tools.js';
import { canonicalJson, PinRegistry, toolHash } from '../../../src/guardrails/pins.js';
import { silentLogger } from '../../../src/observability/logger.js';
import { openDatabase } from '../../../src/store/database.js';
import type { Database } from '../../../src/store/types.js';
import { dropSchema, POSTGRES_URL, postgresGate, uniqueSchema } from '../../helpers/postgres.js';

const postgresUp = await postgresGate('tool pin store tests');
const schemas: string[] = [];
const open: Database[] = [];

afterEach(async () => {
  for (const db of open.splice(0)) await db.close();
});
afterAll(async () => {
  for (const s of schemas) await dropSchema(s);
});

describe('canonicalJson / toolHash', () => {
  it('sorts keys at every level and omits undefined members', () => {
    expect(canonicalJson({ b: 1, a: { d: [1, { z: 0, y: null }], c: 'x' }, u: undefined })).toBe(
      '{"a":{"c":"x","d":[1,{"y":null,"z":0}]},"b":1}',
    );
  });

  it('hashes name, description, inputSchema and outputSchema only, independent of key order', () => {
    const a = toolHash({ name: 'echo', description: 'd', inputSchema: { type: 'object', properties: {} } });
    const b = toolHash({ inputSchema: { properties: {}, type: 'object' }, description: 'd', name: 'echo' });
    expect(a).toBe(b);
    expect(a).toMatch(/^[0-9a-f]{64}$/);
    expect(
      toolHash({
        name: 'echo',
        description: 'd',
        inputSchema: { type: 'object', properties: {} },
        title: 'T',
        _meta: { x: 1 },
      }),
    ).toBe(a);
    expect(toolHash({ name: 'echo', description: 'd2', inputSchema: { type: 'object', properties: {} } })).not.toBe(a);
    expect(toolHash({ name: 'echo', description: 'd', inputSchema: { type: 'object' } })).not.toBe(a);
    expect(
      toolHash({
        name: 'echo',
        description: 'd',
        inputSchema: { type: 'object', properties: {} },
        outputSchema: { type: 'object' },
      }),
    ).not.toBe(a);
    expect(toolHash({ name: 'echo2', description: 'd', inputSchema: { type: 'object', properties: {} } })).not.toBe(a);
  });
});

const targets = [
  {
    name: 'sqlite',
    available: true,
    open: () => openDatabase({ url: ':memory:', dataDir: '.', logger: silentLogger(), env: {} }),
  },
  {
    name: 'postgres',
    available: postgresUp,
    open: () => {
      const schema = uniqueSchema('pins');
      schemas.push(schema);
      return openDatabase({ url: POSTGRES_URL, schema, dataDir: '.', logger: silentLogger(), env: {} });
    },
  },
];

for (const target of targets) {
  describe.skipIf(!target.available)(`tool pin store on ${target.name}`, () => {
    async function fresh(): Promise<Database> {
      const db = await target.open();
      open.push(db);
      await db.migrate();
      return db;
    }

    it('keeps the first pin, records a changed definition, clears it when it reverts, and approves', async () => {
      const store = (await fresh()).toolPins!;
      expect(await store.pin('echo', 'echo', 'h1', 1000)).toEqual({
        server: 'echo',
        tool: 'echo',
        hash: 'h1',
        pinnedAt: 1000,
      });
      // First sight wins: a second pin does not replace it.
      expect((await store.pin('echo', 'echo', 'h2', 2000)).hash).toBe('h1');
      await store.seen('echo', 'echo', 'h2', 3000);
      await store.seen('echo', 'echo', 'h2', 4000);
      expect(await store.list()).toEqual([
        { server: 'echo', tool: 'echo', hash: 'h1', changedHash: 'h2', pinnedAt: 1000, changedAt: 3000 },
      ]);
      await store.seen('echo', 'echo', 'h1', 5000);
      expect((await store.list())[0]).toEqual({ server: 'echo', tool: 'echo', hash: 'h1', pinnedAt: 1000 });
      expect(await store.approve('echo', undefined, 'root', 6000)).toEqual([]);

      await store.pin('echo', 'ping', 'p1', 1000);
      await store.pin('other', 'x', 'x1', 1000);
      await store.seen('echo', 'echo', 'h3', 7000);
      await store.seen('echo', 'ping', 'p2', 7000);
      await store.seen('other', 'x', 'x2', 7000);
      expect(await store.approve('echo', 'ping', 'root', 8000)).toEqual(['ping']);
      expect(await store.approve('echo', undefined, 'cli', 9000)).toEqual(['echo']);
      expect(await store.list('echo')).toEqual([
        { server: 'echo', tool: 'echo', hash: 'h3', pinnedAt: 9000, approvedBy: 'cli' },
        { server: 'echo', tool: 'ping', hash: 'p2', pinnedAt: 8000, approvedBy: 'root' },
      ]);
      // Another server's change is untouched.
      expect(await store.list('other')).toEqual([
        { server: 'other', tool: 'x', hash: 'x1', changedHash: 'x2', pinnedAt: 1000, changedAt: 7000 },
      ]);
    });

    it('drives the registry: first sight pins, a change is reported and blocks until approved, state survives a reload', async () => {
      const db = await fresh();
      const changes: string[] = [];
      const announced: string[][] = [];
      const registry = new PinRegistry({
        store: db.toolPins!,
        logger: silentLogger(),
        onChange: (s, t) => changes.push(`${s}/${t}`),
        onChangedSet: (servers) => announced.push([...servers]),
      });
      await registry.load();
      const v1 = { name: 'echo', description: 'one', inputSchema: { type: 'object' } };
      registry.observe('echo', [v1, { name: 'ping', inputSchema: { type: 'object' } }]);
      expect(registry.isChanged('echo', 'echo')).toBe(false);
      await registry.settled();
      expect((await db.toolPins!.list()).map((p) => p.tool)).toEqual(['echo', 'ping']);

      const version = registry.version;
      registry.observe('echo', [{ ...v1, description: 'two' }]);
      expect(registry.isChanged('echo', 'echo')).toBe(true);
      expect(registry.isChanged('echo', 'ping')).toBe(false);
      expect(registry.anyChanged).toBe(true);
      expect(registry.version).toBe(version + 1);
      expect(changes).toEqual(['echo/echo']);
      // A change seen in a catalog is announced by that catalog's own list_changed.
      expect(announced).toEqual([]);
      expect((await registry.list()).map((p) => [p.tool, p.status])).toEqual([
        ['echo', 'changed'],
        ['ping', 'pinned'],
      ]);

      // A second registry on the same database (a restart) starts blocked.
      const restarted = new PinRegistry({ store: db.toolPins!, logger: silentLogger() });
      await restarted.load();
      expect(restarted.isChanged('echo', 'echo')).toBe(true);
      await restarted.close();

      expect(await registry.approve('echo', undefined, 'root')).toEqual(['echo']);
      expect(registry.isChanged('echo', 'echo')).toBe(false);
      expect(registry.anyChanged).toBe(false);
      // The approval shows the tool again: its server's clients are to re-list.
      expect(announced).toEqual([['echo']]);
      await registry.close();
    });

    it('lets a pin taken elsewhere first win over the definition seen here', async () => {
      const db = await fresh();
      await db.toolPins!.pin('echo', 'echo', 'elsewhere', 1);
      // This registry loaded before the other replica pinned: it sees the tool for the first time.
      const registry = new PinRegistry({ store: db.toolPins!, logger: silentLogger() });
      registry.observe('echo', [{ name: 'echo', description: 'here' }]);
      await registry.settled();
      expect(registry.isChanged('echo', 'echo')).toBe(true);
      expect((await db.toolPins!.list())[0]?.changedHash).toBe(toolHash({ name: 'echo', description: 'here' }));
      await registry.close();
    });
  });
}

describe('switchboard tools approve | pins', () => {
  it('approves recorded changes, lists pins, and exits 1 when there is nothing to approve', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swb-tools-cli-'));
    try {
      const config = join(dir, 'switchboard.yaml');
      await writeFile(config, `dataDir: ${JSON.stringify(dir)}\n`);
      const db = await openDatabase({ dataDir: dir, logger: silentLogger(), env: {} });
      await db.migrate();
      await db.toolPins!.pin('echo', 'echo', 'a'.repeat(64), 1);
      await db.toolPins!.seen('echo', 'echo', 'b'.repeat(64), 2);
      await db.close();

      const lines: string[] = [];
      const output = { out: (l: string) => lines.push(`out ${l}`), err: (l: string) => lines.push(`err ${l}`) };
      expect(await runToolsPins({ config }, output)).toBe(0);
      expect(await runToolsApprove({ config, server: 'echo', tool: 'other' }, output)).toBe(1);
      expect(await runToolsApprove({ config, server: 'echo' }, output)).toBe(0);
      expect(await runToolsApprove({ config, server: 'echo' }, output)).toBe(1);
      expect(await runToolsPins({ config, json: true }, output)).toBe(0);
      expect(lines.slice(0, 4)).toEqual([
        `out echo/echo\tchanged\t${'a'.repeat(12)}`,
        'err nothing to approve for echo --tool other: no changed tool definition is recorded',
        'out approved echo/echo',
        'err nothing to approve for echo: no changed tool definition is recorded',
      ]);
      expect(lines[4]?.startsWith('out ')).toBe(true);
      expect(JSON.parse(lines[4]!.slice(4))).toEqual({
        pins: [
          {
            server: 'echo',
            tool: 'echo',
            hash: 'b'.repeat(64),
            pinnedAt: expect.any(Number),
            approvedBy: 'cli',
            status: 'pinned',
          },
        ],
      });
      expect(lines).toHaveLength(5);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
