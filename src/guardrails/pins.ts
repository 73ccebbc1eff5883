/**
 * Tool pinning (a defence against "rug pulls": a server that changes a tool's description or
 * schema after it was reviewed). Each tool's definition is hashed when first seen and the hash is
 * stored per (server, tool) in the database; a later catalog with a different definition marks
 * the tool `changed` until an operator approves it (`POST /api/v1/tools/pins/{server}/approve`,
 * `switchboard tools approve`).
 *
 * The hash is SHA-256 (FIPS 180-4) over the canonical JSON of `{name, description, inputSchema,
 * outputSchema}` (absent members omitted; object keys sorted by UTF-16 code units at every level,
 * as RFC 8785 §3.2.3 orders them; no whitespace), written as lowercase hex.
 *
 * The registry decides from memory, synchronously: catalogs update it as they arrive and the
 * database is written behind (first sight wins across replicas: the stored pin is read back).
 * While any tool is changed, the registry re-reads the pins every {@link PIN_REFRESH_MS} so an
 * approval made by another process (the CLI, another replica) applies without a restart.
 *
 * @module
 */
import { createHash } from 'node:crypto';
import type { Logger } from '../observability/logger.js';
import type { JsonObject } from '../protocol/jsonrpc.js';
import type { ToolPin, ToolPinStore } from '../store/types.js';

/** Interval of the re-read of pins while a tool is changed, ms (5 s). */
export const PIN_REFRESH_MS = 5000;

/**
 * JSON with object keys sorted at every level (RFC 8785 §3.2.3 order) and no whitespace. Numbers
 * and strings are serialised as `JSON.stringify` does (RFC 8785 §3.2.2 for the values tools use).
 */
export function canonicalJson(value: unknown): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value) ?? 'null';
  if (Array.isArray(value)) return `[${value.map((v) => (v === undefined ? 'null' : canonicalJson(v))).join(',')}]`;
  const obj = value as Record<string, unknown>;
  const keys = Object.keys(obj)
    .filter((k) => obj[k] !== undefined)
    .sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonicalJson(obj[k])}`).join(',')}}`;
}

/** The hex SHA-256 of a tool's pinned fields: name, description, inputSchema, outputSchema. */
export function toolHash(tool: JsonObject): string {
  const pinned: Record<string, unknown> = { name: tool.name };
  if (tool.description !== undefined) pinned.description = tool.description;
  if (tool.inputSchema !== undefined) pinned.inputSchema = tool.inputSchema;
  if (tool.outputSchema !== undefined) pinned.outputSchema = tool.outputSchema;
  return createHash('sha256').update(canonicalJson(pinned)).digest('hex');
}

/** The state of one tool: its pinned hash and the hash seen in the upstream's current catalog. */
interface PinState {
  pinned: string;
  current: string;
}

/** A pin as the admin API lists it. */
export interface PinStatus extends ToolPin {
  /** `changed` when the current definition differs from the pinned one. */
  status: 'pinned' | 'changed';
}

/** Options of {@link PinRegistry}. */
export interface PinRegistryOptions {
  store: ToolPinStore;
  logger: Logger;
  /** Called once per tool when a change is first detected (for a metric). */
  onChange?: (server: string, tool: string) => void;
  /**
   * Called with the servers whose set of changed tools grew or shrank through an approval or a
   * re-read of the pins (not through a catalog, which announces itself), after the decisions
   * changed: clients of those servers are told `notifications/tools/list_changed`, since a
   * changed tool under `block` is not listed. Default: nobody is told.
   */
  onChangedSet?: (servers: readonly string[]) => void;
  /** Epoch ms clock. Default `Date.now`. */
  clock?: () => number;
}

/**
 * The pins in memory, kept in step with the catalogs and the database. One per gateway, shared by
 * every `pinTools` guardrail and kept across reloads.
 */
export class PinRegistry {
  readonly #store: ToolPinStore;
  readonly #logger: Logger;
  readonly #onChange: ((server: string, tool: string) => void) | undefined;
  readonly #onChangedSet: ((servers: readonly string[]) => void) | undefined;
  readonly #clock: () => number;
  /** server → tool → state. */
  readonly #state = new Map<string, Map<string, PinState>>();
  /** server → tools currently changed; absent when none. */
  readonly #changed = new Map<string, Set<string>>();
  #timer: NodeJS.Timeout | undefined;
  #writes: Promise<unknown> = Promise.resolve();
  #closed = false;
  /** Bumped whenever the set of changed tools changes (list caches key on it). */
  version = 0;

  constructor(options: PinRegistryOptions) {
    this.#store = options.store;
    this.#logger = options.logger;
    this.#onChange = options.onChange;
    this.#onChangedSet = options.onChangedSet;
    this.#clock = options.clock ?? Date.now;
  }

  /** Loads every stored pin (before the first catalog). */
  async load(): Promise<void> {
    for (const pin of await this.#store.list())
      this.#stateOf(pin.server).set(pin.tool, { pinned: pin.hash, current: pin.changedHash ?? pin.hash });
    this.#recount();
  }

  /** True when `tool` of `server` has a definition other than its pin. */
  isChanged(server: string | undefined, tool: string | undefined): boolean {
    if (server === undefined || tool === undefined) return false;
    const set = this.#changed.get(server);
    return set !== undefined && set.has(tool);
  }

  /** How many tools are changed (the `switchboard_tool_pins_changed` gauge). */
  get changedCount(): number {
    let n = 0;
    for (const set of this.#changed.values()) n += set.size;
    return n;
  }

  /** True when any tool of any server is changed. */
  get anyChanged(): boolean {
    return this.#changed.size > 0;
  }

  /**
   * Takes a server's current tool list: pins tools seen for the first time and records changes.
   * Decisions change at once; the database is written behind (failures are logged).
   */
  observe(server: string, tools: readonly JsonObject[]): void {
    const state = this.#stateOf(server);
    const now = this.#clock();
    for (const tool of tools) {
      const name = tool.name;
      if (typeof name !== 'string') continue;
      const hash = toolHash(tool);
      const known = state.get(name);
      if (known === undefined) {
        state.set(name, { pinned: hash, current: hash });
        this.#write(async () => {
          const stored = await this.#store.pin(server, name, hash, now);
          if (stored.hash !== hash) {
            // Another replica (or an earlier run) pinned another definition first: it wins.
            const s = this.#stateOf(server).get(name);
            if (s !== undefined) s.pinned = stored.hash;
            this.#recount();
            await this.#store.seen(server, name, hash, now);
          }
        });
        continue;
      }
      if (known.current === hash) continue;
      known.current = hash;
      if (hash !== known.pinned) {
        this.#logger.warn(
          { server, tool: name, pinned: known.pinned, current: hash },
          `tool "${name}" of server "${server}" changed its definition since it was pinned; approve it with switchboard tools approve ${server} --tool ${name}`,
        );
        this.#onChange?.(server, name);
      }
      this.#write(() => this.#store.seen(server, name, hash, now));
    }
    // The catalog change that brought these tools is announced to clients by its own list_changed.
    this.#recount(false);
  }

  /**
   * Accepts the current definitions of `server` (every changed tool, or only `tool`) in the
   * database and in memory.
   *
   * @returns the approved tool names
   */
  async approve(server: string, tool: string | undefined, by: string): Promise<string[]> {
    await this.#writes;
    const approved = await this.#store.approve(server, tool, by, this.#clock());
    await this.refresh();
    return approved;
  }

  /** Re-reads every pin from the database (approvals made elsewhere). */
  async refresh(): Promise<void> {
    const pins = await this.#store.list();
    for (const pin of pins) {
      const s = this.#stateOf(pin.server).get(pin.tool);
      if (s === undefined)
        this.#stateOf(pin.server).set(pin.tool, { pinned: pin.hash, current: pin.changedHash ?? pin.hash });
      else s.pinned = pin.hash;
    }
    this.#recount();
  }

  /** Every stored pin with its status (the admin API's listing). */
  async list(server?: string): Promise<PinStatus[]> {
    await this.#writes;
    const pins = await this.#store.list(server);
    return pins.map((p) => ({
      ...p,
      status: this.isChanged(p.server, p.tool) || p.changedHash !== undefined ? 'changed' : 'pinned',
    }));
  }

  /** Waits for the writes under way (tests, shutdown). */
  async settled(): Promise<void> {
    await this.#writes;
  }

  /** Stops the refresh timer and waits for the writes under way. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    await this.#writes;
  }

  #stateOf(server: string): Map<string, PinState> {
    let s = this.#state.get(server);
    if (s === undefined) this.#state.set(server, (s = new Map()));
    return s;
  }

  #write(work: () => Promise<unknown>): void {
    this.#writes = this.#writes
      .then(work)
      .catch((err: unknown) => this.#logger.warn({ err }, 'tool pin could not be stored'));
  }

  /**
   * Rebuilds the changed sets; bumps {@link version} and, unless `announce` is false, calls
   * `onChangedSet` when they differ; (un)arms the refresh.
   */
  #recount(announce = true): void {
    let differs = false;
    const servers: string[] = [];
    for (const [server, tools] of this.#state) {
      let set = this.#changed.get(server);
      for (const [tool, s] of tools) {
        const changed = s.current !== s.pinned;
        if (changed === (set?.has(tool) ?? false)) continue;
        differs = true;
        if (servers[servers.length - 1] !== server) servers.push(server);
        if (changed) {
          if (set === undefined) this.#changed.set(server, (set = new Set()));
          set.add(tool);
        } else set?.delete(tool);
      }
      if (set !== undefined && set.size === 0) this.#changed.delete(server);
    }
    if (differs) {
      this.version++;
      if (announce) this.#onChangedSet?.(servers);
    }
    if (this.#changed.size > 0 && this.#timer === undefined && !this.#closed) {
      this.#timer = setInterval(() => {
        this.refresh().catch((err: unknown) => this.#logger.debug({ err }, 'tool pin refresh failed'));
      }, PIN_REFRESH_MS);
      this.#timer.unref();
    } else if (this.#changed.size === 0 && this.#timer !== undefined) {
      clearInterval(this.#timer);
      this.#timer = undefined;
    }
  }
}
