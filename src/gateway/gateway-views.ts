/**
 * The gateway's views, rebuilt in place from the upstreams and the configuration at start and at
 * each reload: the aggregate (`/mcp`), one per virtual server (`/mcp/{name}`) and one per
 * upstream (`/servers/{name}/mcp`). A view object outlives a reload whenever its endpoint still
 * exists, so the sessions on it keep working.
 *
 * @module
 */
import { exposureOf, namespacingOf, type SwitchboardConfig, type VirtualServer } from '../config/schema.js';
import type { Logger } from '../observability/logger.js';
import type { Upstream } from '../upstream/upstream.js';
import { compileFilter, composeFilters } from './filters.js';
import { overlappingNamespaces } from './naming.js';
import { View, type NameCollision, type ViewMember } from './view.js';

/** Options of {@link GatewayViews}. */
export interface GatewayViewsOptions {
  /** The namespace separator at start (`namespaceSeparator`; each rebuild passes the current one). */
  separator: string;
  /** Reported in the views' serverInfo. */
  gatewayVersion: string;
  /** Gets a warning per name collision and per pair of overlapping server names. */
  logger: Logger;
  /** Called for each name collision a view reports, after the warning. */
  onNameCollision?: (collision: NameCollision) => void;
}

/** The aggregate, virtual-server and single-server views of one gateway. */
export class GatewayViews {
  readonly aggregate: View;
  #virtuals = new Map<string, View>();
  #singles = new Map<string, View>();
  #version: string;
  #logger: Logger;
  #onNameCollision: (collision: NameCollision) => void;

  constructor(options: GatewayViewsOptions) {
    this.#version = options.gatewayVersion;
    this.#logger = options.logger;
    const report = options.onNameCollision;
    this.#onNameCollision = (c) => {
      this.#logger.warn(
        { view: c.view, kind: c.kind, exposed: c.exposed, kept: c.kept, withheld: c.withheld },
        `${c.kind} "${c.withheld.name}" of server "${c.withheld.server}" is withheld: its exposed name "${c.exposed}" belongs to "${c.kept.name}" of server "${c.kept.server}"`,
      );
      report?.(c);
    };
    this.aggregate = new View({
      name: 'default',
      kind: 'aggregate',
      members: [],
      separator: options.separator,
      gatewayVersion: this.#version,
      onCollision: this.#onNameCollision,
    });
  }

  /** A virtual server's view. */
  virtual(name: string): View | undefined {
    return this.#virtuals.get(name);
  }

  /** One upstream's view. */
  single(name: string): View | undefined {
    return this.#singles.get(name);
  }

  /**
   * Brings every view up to date with `upstreams` and `cfg`: members and filters are replaced in
   * place; a single-server view is kept while its upstream object is, a virtual one while its
   * name is configured.
   *
   * @returns the virtual views that were removed (their sessions must end)
   */
  rebuild(upstreams: ReadonlyMap<string, Upstream>, cfg: SwitchboardConfig): View[] {
    const sep = cfg.namespaceSeparator;
    const member = (u: Upstream, extra?: VirtualServer['servers']): ViewMember => {
      const sc = u.config;
      const m = extra && !Array.isArray(extra) ? extra[u.name] : undefined;
      return {
        upstream: u,
        tools: composeFilters(compileFilter(sc.tools), compileFilter(m?.tools)),
        prompts: composeFilters(compileFilter(sc.prompts), compileFilter(m?.prompts)),
        resources: composeFilters(compileFilter(sc.resources), compileFilter(m?.resources)),
      };
    };
    this.aggregate.setMembers(
      [...upstreams.values()].map((u) => member(u)),
      sep,
      namespacingOf(cfg),
    );
    this.aggregate.setExposure(exposureOf(cfg));
    // The loader, the admin API and tunnels refuse these; a reloaded file can still declare a
    // server beside a runtime one it overlaps (file servers take precedence).
    for (const [shorter, longer] of overlappingNamespaces([...upstreams.keys()], sep))
      this.#logger.warn(
        { servers: [shorter, longer], separator: sep },
        `servers "${shorter}" and "${longer}" can expose the same names; a colliding newcomer is withheld`,
      );
    // Single-server views: keep the object for unchanged upstreams so sessions stay valid.
    for (const [name, view] of this.#singles) {
      const u = upstreams.get(name);
      if (!u || view.members[0]?.upstream !== u) this.#singles.delete(name);
    }
    for (const u of upstreams.values()) {
      if (this.#singles.has(u.name)) {
        this.#singles.get(u.name)?.setMembers([member(u)], sep);
        continue;
      }
      this.#singles.set(
        u.name,
        new View({
          name: u.name,
          kind: 'single',
          members: [member(u)],
          separator: sep,
          gatewayVersion: this.#version,
          onCollision: this.#onNameCollision,
        }),
      );
    }
    const seen = new Set<string>();
    for (const [name, vs] of Object.entries(cfg.virtualServers)) {
      seen.add(name);
      const names = Array.isArray(vs.servers) ? vs.servers : Object.keys(vs.servers);
      const members = names.flatMap((n) => {
        const u = upstreams.get(n);
        return u ? [member(u, vs.servers)] : [];
      });
      const namePrefix = namespacingOf(cfg, vs);
      const existing = this.#virtuals.get(name);
      const exposure = exposureOf(cfg, vs);
      if (existing) {
        existing.setMembers(members, sep, namePrefix);
        existing.setExposure(exposure);
      } else {
        const opts = {
          name,
          kind: 'virtual' as const,
          members,
          separator: sep,
          namePrefix,
          exposure,
          gatewayVersion: this.#version,
          onCollision: this.#onNameCollision,
        };
        this.#virtuals.set(
          name,
          new View(vs.description === undefined ? opts : { ...opts, description: vs.description }),
        );
      }
    }
    const removed: View[] = [];
    for (const [name, view] of this.#virtuals) {
      if (seen.has(name)) continue;
      this.#virtuals.delete(name);
      removed.push(view);
    }
    return removed;
  }

  /** The views that include `upstream`. */
  viewsOf(upstream: Upstream): View[] {
    const out: View[] = [];
    if (this.aggregate.includes(upstream)) out.push(this.aggregate);
    for (const v of this.#virtuals.values()) if (v.includes(upstream)) out.push(v);
    const single = this.#singles.get(upstream.name);
    if (single?.includes(upstream)) out.push(single);
    return out;
  }
}
