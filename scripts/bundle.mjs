#!/usr/bin/env node
// Bundles the compiled CLI (`dist/cli/main.js`, from `tsc`) into `dist/bin/`, which is what the
// `switchboard` command and `npm start` run. One file instead of ~500 modules cuts Node's module
// resolution and linking at start by ~40 % (startup target: ready in ≤ 500 ms; docs/benchmarks.md).
//
//   node scripts/bundle.mjs        (part of `npm run build`, after `tsc`)
//
// - Lazily imported parts stay separate chunks (code splitting), loaded when used: tracing, Redis,
//   the tunnel, each CLI command.
// - External, loaded from node_modules at run time: native addons (better-sqlite3), drivers and
//   SDKs only some deployments load (pg, ioredis, ws, OpenTelemetry), and pino with its
//   worker-thread transports (which load modules by name).
// - The usage writer's worker module is an entry of its own, next to the chunks, where
//   `store/sqlite-usage-writer.ts` looks for it.
import { build } from 'esbuild';
import { rmSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const outdir = join(root, 'dist', 'bin');
rmSync(outdir, { recursive: true, force: true });
await build({
  absWorkingDir: root,
  entryPoints: {
    switchboard: 'dist/cli/main.js',
    'sqlite-usage-worker': 'dist/store/sqlite-usage-worker.js',
  },
  outdir,
  chunkNames: 'chunk-[hash]',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node22',
  sourcemap: 'linked',
  external: ['better-sqlite3', 'pg', 'ioredis', 'ws', '@opentelemetry/*', 'pino', 'pino-pretty', 'thread-stream'],
  // Bundled CommonJS dependencies call require() for Node built-ins.
  banner: {
    js: "import { createRequire as __swbRequire } from 'node:module'; const require = __swbRequire(import.meta.url);",
  },
  logLevel: 'warning',
});
