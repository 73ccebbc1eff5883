import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfigFile, parseConfigText } from '../../../src/config/load.js';
import type { SwitchboardConfig } from '../../../src/config/schema.js';
import {
  changedSections,
  diffServers,
  diffVirtualServers,
  watchConfig,
  type ConfigWatcher,
} from '../../../src/config/watch.js';

/** Polls `cond` every 10 ms until it holds (or fails after `timeoutMs`). */
async function waitFor(cond: () => boolean, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

const V1 = 'servers:\n  a: { command: x }\n  b: { command: y }\n';
const V2 = 'servers:\n  a: { command: x, args: [--verbose] }\n  c: { url: "https://c.example/mcp" }\n';

describe('watchConfig', () => {
  let dir: string;
  let file: string;
  let watcher: ConfigWatcher | undefined;
  let changes: SwitchboardConfig[];
  let errors: ConfigError[];

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'swb-watch-'));
    file = join(dir, 'switchboard.yaml');
    await writeFile(file, V1);
    changes = [];
    errors = [];
  });
  afterEach(async () => {
    watcher?.close();
    watcher = undefined;
    await rm(dir, { recursive: true, force: true });
  });

  const start = async (extra: { logger?: pino.Logger } = {}): Promise<void> => {
    watcher = watchConfig(file, {
      initial: await loadConfigFile(file),
      debounceMs: 20,
      onChange: (c) => changes.push(c),
      onError: (e) => errors.push(e),
      ...extra,
    });
  };

  it('calls onChange with the new config when a valid file is written', async () => {
    await start();
    await writeFile(file, V2);
    await waitFor(() => changes.length === 1, 'onChange');
    expect(Object.keys(changes[0]?.servers ?? {})).toEqual(['a', 'c']);
    expect(changes[0]?.source).toBe(file);
    expect(errors).toEqual([]);
  });

  it('sees a file replaced by rename, as editors save', async () => {
    await start();
    const tmp = join(dir, '.switchboard.yaml.tmp');
    await writeFile(tmp, V2);
    await rename(tmp, file);
    await waitFor(() => changes.length === 1, 'onChange');
    expect(Object.keys(changes[0]?.servers ?? {})).toEqual(['a', 'c']);
  });

  it('calls onError with every problem for an invalid file, keeps the old config, then recovers', async () => {
    await start();
    await writeFile(file, 'servers:\n  a: { command: 1 }\n  b: { url: nope }\n');
    await waitFor(() => errors.length === 1, 'onError');
    expect(errors[0]?.issues.map((i) => i.path)).toEqual(['servers.a.command', 'servers.b.url']);
    expect(changes).toEqual([]);

    await writeFile(file, V2);
    await waitFor(() => changes.length === 1, 'onChange after the fix');
    expect(errors).toHaveLength(1);
  });

  it('does not call onChange when the file changes without changing the config', async () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _enc, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    await start({ logger: pino({ level: 'debug' }, sink) });
    await writeFile(file, `# just a comment\n${V1}`);
    await waitFor(() => lines.some((l) => l.includes('without effect')), 'the no-op reload');
    expect(changes).toEqual([]);
    await writeFile(file, V2);
    await waitFor(() => changes.length === 1, 'onChange');
  });

  it('uses the file as it is at start as the baseline when no initial config is given', async () => {
    await writeFile(file, 'servers: { a: { command: 1 } }\n');
    watcher = watchConfig(file, { debounceMs: 20, onChange: (c) => changes.push(c), onError: (e) => errors.push(e) });
    await waitFor(() => errors.length === 1, 'onError for the invalid baseline');
    await writeFile(file, V1);
    await waitFor(() => changes.length === 1, 'onChange');
    expect(Object.keys(changes[0]?.servers ?? {})).toEqual(['a', 'b']);
  });

  it('makes no call after close()', async () => {
    await start();
    watcher?.close();
    await writeFile(file, V2);
    await new Promise((r) => setTimeout(r, 50));
    expect(changes).toEqual([]);
  });
});

describe('diffServers', () => {
  it('lists added, removed and deep-changed servers', () => {
    const before = parseConfigText(V1);
    const after = parseConfigText(V2);
    expect(diffServers(before, after)).toEqual({ added: ['c'], removed: ['b'], changed: ['a'] });
    expect(diffServers(before, parseConfigText(`# same\n${V1}`))).toEqual({ added: [], removed: [], changed: [] });
  });

  it('counts a change in env, filters or timeouts as a change', () => {
    const base = 'servers:\n  a:\n    command: x\n';
    const before = parseConfigText(base);
    for (const extra of ['    env: { A: "1" }\n', '    tools: { deny: [x] }\n', '    timeout: 5s\n']) {
      expect(diffServers(before, parseConfigText(base + extra)).changed).toEqual(['a']);
    }
  });

  it('diffs virtual servers and other sections', () => {
    const before = parseConfigText('servers: { a: { command: x } }\nvirtualServers: { v: { servers: [a] } }\n');
    const after = parseConfigText(
      'servers: { a: { command: x } }\nvirtualServers: { w: { servers: [a] } }\nlogging: { level: debug }\n',
    );
    expect(diffVirtualServers(before, after)).toEqual({ added: ['w'], removed: ['v'], changed: [] });
    expect(changedSections(before, after)).toEqual(['logging']);
  });
});
