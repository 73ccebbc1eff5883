/**
 * Hot reload: watch the configuration file, re-load it after changes, and hand the new
 * configuration to the gateway only when it is valid and really different; an invalid file is
 * reported and the running configuration is kept.
 *
 * The directory is watched rather than the file, because editors and deployment tools replace
 * files by renaming a new one over them (and Kubernetes ConfigMap mounts swap a `..data` symlink),
 * which a watch on the old inode would miss. If the file is a symlink into another directory, that
 * directory is watched too.
 *
 * @module
 */
import { watch, type FSWatcher } from 'node:fs';
import { readFile, realpath } from 'node:fs/promises';
import { basename, dirname, resolve } from 'node:path';
import { isDeepStrictEqual } from 'node:util';
import { silentLogger, type Logger } from '../observability/logger.js';
import { ConfigError, formatFromPath, parseConfigText, type LoadConfigOptions } from './load.js';
import type { SwitchboardConfig } from './schema.js';

/** Options for {@link watchConfig}. */
export interface WatchConfigOptions extends LoadConfigOptions {
  /**
   * Called with the new configuration after the file changed, is valid, and differs (deep
   * equality) from the last good one. Exceptions thrown here are logged, not propagated.
   */
  onChange(config: SwitchboardConfig): void;
  /**
   * Called when the changed file is invalid or unreadable, with every problem. The last good
   * configuration stays in force; `onChange` is not called. Called once per distinct file content.
   */
  onError(err: ConfigError): void;
  /** Quiet period after the last file event before re-loading, in milliseconds. Default 200. */
  debounceMs?: number;
  /** Logger for watcher diagnostics. Default: silent. */
  logger?: Logger;
  /**
   * The configuration currently in force (what the caller loaded at startup). Default: the
   * watcher loads the file once when it starts and uses that as the baseline, without calling
   * `onChange` (an invalid file at that point is reported through `onError`).
   */
  initial?: SwitchboardConfig;
}

/** A running watcher. */
export interface ConfigWatcher {
  /** Stops watching; no callback is made after this returns. Idempotent. */
  close(): void;
}

/**
 * Watches a configuration file for changes (see the module comment).
 *
 * @param path - the configuration file; named in issues as given.
 * @returns a handle whose `close()` stops the watcher. Does not keep the process alive by itself.
 */
export function watchConfig(path: string, options: WatchConfigOptions): ConfigWatcher {
  const absolute = resolve(path);
  const debounceMs = options.debounceMs ?? 200;
  const logger = (options.logger ?? silentLogger()).child({ component: 'config-watch', file: path });
  const watchers: FSWatcher[] = [];
  let closed = false;
  let timer: NodeJS.Timeout | undefined;
  let lastGood = options.initial;
  // Content of the file at the last load attempt (null: missing). Identical content is skipped,
  // so unrelated events in the directory and repeated saves cost one read, and an invalid file is
  // reported once, not on every event.
  let lastSeen: string | null | undefined;
  let queue = Promise.resolve();

  const safely = (what: string, fn: () => void): void => {
    try {
      fn();
    } catch (err) {
      logger.error({ err }, `${what} callback failed`);
    }
  };

  const load = async (baseline: boolean): Promise<void> => {
    let text: string | null;
    let readError: unknown;
    try {
      text = await readFile(absolute, 'utf8');
    } catch (err) {
      text = null;
      readError = err;
    }
    if (closed || text === lastSeen) return;
    lastSeen = text;

    let next: SwitchboardConfig;
    try {
      if (text === null) {
        const code = (readError as NodeJS.ErrnoException).code;
        throw new ConfigError(
          [
            {
              file: path,
              path: '',
              kind: 'read',
              message: `cannot read the file: ${code === 'ENOENT' ? 'no such file' : String(readError)}`,
            },
          ],
          { code: 'SWB_ERR_CONFIG_READ', cause: readError },
        );
      }
      next = parseConfigText(text, {
        path,
        format: formatFromPath(path) ?? 'yaml',
        ...(options.env === undefined ? {} : { env: options.env }),
        ...(options.onWarning === undefined ? {} : { onWarning: options.onWarning }),
      });
    } catch (err) {
      if (closed) return;
      if (err instanceof ConfigError) {
        logger.warn(
          { problems: err.issues.length },
          'configuration file is invalid; keeping the running configuration',
        );
        safely('onError', () => options.onError(err));
        return;
      }
      throw err;
    }
    if (closed) return;
    if (baseline && lastGood === undefined) {
      lastGood = next;
      return;
    }
    if (lastGood !== undefined && isDeepStrictEqual(lastGood, next)) {
      logger.debug('configuration file changed without effect');
      return;
    }
    lastGood = next;
    logger.info('configuration file changed; applying');
    safely('onChange', () => options.onChange(next));
  };

  const enqueue = (baseline: boolean): void => {
    queue = queue
      .then(() => load(baseline))
      .catch((err: unknown) => logger.error({ err }, 'configuration reload failed'));
  };

  const schedule = (): void => {
    if (closed) return;
    if (timer !== undefined) clearTimeout(timer);
    timer = setTimeout(() => {
      timer = undefined;
      enqueue(false);
    }, debounceMs);
    timer.unref();
  };

  const watchDir = (dir: string, name: string): void => {
    try {
      const w = watch(dir, { persistent: false }, (_event, filename) => {
        // null: the platform did not say which entry changed. `..data`: a Kubernetes ConfigMap swap.
        if (filename === null || filename === name || filename.startsWith('..')) schedule();
      });
      w.on('error', (err) => {
        logger.warn({ err, dir }, 'stopped watching a configuration directory');
        w.close();
      });
      watchers.push(w);
    } catch (err) {
      logger.warn({ err, dir }, 'cannot watch the configuration directory; hot reload is off');
    }
  };

  watchDir(dirname(absolute), basename(absolute));
  // Follow a symlinked file into its target's directory (changes there raise no event here).
  realpath(absolute).then(
    (real) => {
      if (!closed && dirname(real) !== dirname(absolute)) watchDir(dirname(real), basename(real));
    },
    () => undefined,
  );
  if (lastGood === undefined) enqueue(true);

  return {
    close() {
      if (closed) return;
      closed = true;
      if (timer !== undefined) clearTimeout(timer);
      for (const w of watchers) w.close();
    },
  };
}

/** Names of entries added, removed and changed between two versions of a record. */
export interface RecordDiff {
  /** In the new version only. */
  added: string[];
  /** In the old version only. */
  removed: string[];
  /** In both, with deep-unequal values. */
  changed: string[];
}

function diffRecords(before: Readonly<Record<string, unknown>>, after: Readonly<Record<string, unknown>>): RecordDiff {
  const added: string[] = [];
  const removed: string[] = [];
  const changed: string[] = [];
  for (const name of Object.keys(before)) if (!Object.hasOwn(after, name)) removed.push(name);
  for (const [name, value] of Object.entries(after)) {
    if (!Object.hasOwn(before, name)) added.push(name);
    else if (!isDeepStrictEqual(before[name], value)) changed.push(name);
  }
  return { added, removed, changed };
}

/**
 * Which servers a reload adds, removes and changes (deep inequality of the entry, so a changed
 * `args`, `env` or filter counts). Only these need their upstreams restarted; sessions on the
 * others are left alone.
 */
export function diffServers(
  before: Pick<SwitchboardConfig, 'servers'>,
  after: Pick<SwitchboardConfig, 'servers'>,
): RecordDiff {
  return diffRecords(before.servers, after.servers);
}

/** Which virtual servers a reload adds, removes and changes (deep inequality of the entry). */
export function diffVirtualServers(
  before: Pick<SwitchboardConfig, 'virtualServers'>,
  after: Pick<SwitchboardConfig, 'virtualServers'>,
): RecordDiff {
  return diffRecords(before.virtualServers, after.virtualServers);
}

/**
 * Top-level settings other than `servers` and `virtualServers` whose value differs, e.g.
 * `['sessions', 'logging']`; `source` is ignored.
 */
export function changedSections(before: SwitchboardConfig, after: SwitchboardConfig): string[] {
  const skip = new Set(['servers', 'virtualServers', 'source']);
  const keys = new Set([...Object.keys(before), ...Object.keys(after)]);
  return [...keys].filter(
    (k) =>
      !skip.has(k) &&
      !isDeepStrictEqual(
        (before as unknown as Record<string, unknown>)[k],
        (after as unknown as Record<string, unknown>)[k],
      ),
  );
}
