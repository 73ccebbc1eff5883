/**
 * Views: what one MCP endpoint shows. The aggregate (`/mcp`) and virtual servers
 * (`/mcp/{name}`) expose tool and prompt names by their {@link NamePrefixMode}: prefixed as
 * `{server}{separator}{name}` (`always`), prefixed only where two members expose one name
 * (`conditional`), or never; a single-server view (`/servers/{name}/mcp`) keeps the upstream's
 * names. Each view compiles its lists and lookup maps once per catalog change and serves list
 * methods from that cache.
 *
 * Size: over 500 lines: the lists, lookup tables and collision records of a view are compiled
 * together, once per catalog change, from one pass over its members.
 *
 * @module
 */
import type { JsonObject } from '../protocol/jsonrpc.js';
import type { Upstream } from '../upstream/upstream.js';
import { mergeCapabilities } from './capabilities.js';
import { filterResourceUri, type CompiledFilter } from './filters.js';
import { namespacedName } from './naming.js';

/** One upstream inside a view, with the filters that apply to it there. */
export interface ViewMember {
  readonly upstream: Upstream;
  readonly tools: CompiledFilter;
  readonly prompts: CompiledFilter;
  readonly resources: CompiledFilter;
}

/** Where an exposed name or URI leads. */
export interface Resolved {
  readonly member: ViewMember;
  /** The upstream's own name / URI. */
  readonly name: string;
}

interface TemplateRoute {
  readonly member: ViewMember;
  readonly uriTemplate: string;
  readonly pattern: RegExp;
}

interface Compiled {
  readonly stamp: number;
  /** owners[i] is the member/upstream name of tools[i] (same for the other lists). */
  readonly toolOwners: Resolved[];
  readonly promptOwners: Resolved[];
  readonly resourceOwners: Resolved[];
  readonly templateOwners: Resolved[];
  readonly tools: JsonObject[];
  readonly toolIndex: Map<string, Resolved>;
  readonly prompts: JsonObject[];
  readonly promptIndex: Map<string, Resolved>;
  readonly resources: JsonObject[];
  readonly resourceIndex: Map<string, Resolved>;
  readonly resourceTemplates: JsonObject[];
  readonly templateRoutes: TemplateRoute[];
}

/** The part of an RBAC scope that list filtering needs (see `auth/rbac.ts`). */
export interface ListScope {
  readonly unrestricted: boolean;
  server(name: string): boolean;
  tool(server: string, name: string, separator?: string): boolean;
}

/** The four lists of a view, possibly filtered for one principal. */
export interface ScopedLists {
  readonly tools: JsonObject[];
  readonly prompts: JsonObject[];
  readonly resources: JsonObject[];
  readonly resourceTemplates: JsonObject[];
}

/** Scheme used for resource URIs that collide between members of one view. */
export const COLLISION_SCHEME = 'switchboard';
const COLLISION_PREFIX = `${COLLISION_SCHEME}://`;

/**
 * Two items of a view that would be exposed under one name. The incumbent (the owner at the
 * previous compilation, else the earlier member) keeps the name; the other is withheld from the
 * lists and from routing until the conflict goes away.
 */
export interface NameCollision {
  /** The view's name. */
  readonly view: string;
  readonly kind: 'tool' | 'prompt';
  /** The exposed name both would take. */
  readonly exposed: string;
  /** Server and upstream name of the item that keeps the exposed name. */
  readonly kept: { readonly server: string; readonly name: string };
  /** Server and upstream name of the item withheld. */
  readonly withheld: { readonly server: string; readonly name: string };
}

/**
 * How an aggregating view names its members' tools and prompts:
 *
 * - `always`: every name is `{server}{separator}{name}`.
 * - `conditional`: a name only one member exposes stays as it is; of the members that expose
 *   the same name, the earliest in configuration order keeps it and the others are prefixed. The
 *   result depends only on the configuration and the catalogs, not on the order upstreams came
 *   up in; a member's names change only when a member configured before it starts exposing the
 *   same name (the lists change and `list_changed` is sent).
 * - `never`: names stay as they are; of two members exposing one name the incumbent (the owner at
 *   the previous compilation, else the earlier member) keeps it and the other's item is withheld,
 *   logged and counted ({@link NameCollision}), never silently shadowed.
 *
 * Resource URIs are never prefixed: colliding ones move to the `switchboard://` scheme.
 */
export type NamePrefixMode = 'always' | 'conditional' | 'never';

/**
 * What an endpoint's `tools/list` shows: `all` its tools, or `search` only `search_tools` and
 * `call_tool` (`gateway/tool-search.ts`).
 */
export type ToolExposure = 'all' | 'search';

/** Kinds of view. */
export type ViewKind = 'aggregate' | 'virtual' | 'single';

/** Options for {@link View}. */
export interface ViewOptions {
  name: string;
  kind: ViewKind;
  members: ViewMember[];
  separator: string;
  /** How names are prefixed (aggregates and virtual servers). Default `always`; ignored by a single-server view. */
  namePrefix?: NamePrefixMode;
  /** What `tools/list` shows (aggregates and virtual servers). Default `all`; a single-server view is always `all`. */
  exposure?: ToolExposure;
  gatewayVersion: string;
  description?: string;
  /**
   * Called once for each collision that appears when the view compiles (not again while it
   * lasts). Default: collisions are only withheld.
   */
  onCollision?: (collision: NameCollision) => void;
}

/** One tool or prompt on its way into a view's lists. */
interface Candidate {
  readonly owner: Resolved;
  readonly exposed: string;
  readonly item: JsonObject;
}

/** The incumbent owner key of an exposed name: `server\0upstream name`. */
function ownerKey(owner: Resolved): string {
  return `${owner.member.upstream.name}\0${owner.name}`;
}

/**
 * The name `renamed` of `member` takes in a view with prefix `mode`. For `conditional`, `first`
 * records the first member to expose each name (members are visited in configuration order): that
 * member keeps it, any later one is prefixed.
 */
function exposedName(
  mode: NamePrefixMode,
  first: Map<string, ViewMember> | undefined,
  member: ViewMember,
  renamed: string,
  separator: string,
): string {
  if (mode === 'never') return renamed;
  if (mode === 'conditional' && first !== undefined) {
    const holder = first.get(renamed);
    if (holder === undefined) first.set(renamed, member);
    if (holder === undefined || holder === member) return renamed;
  }
  return namespacedName(member.upstream.name, renamed, separator);
}

/**
 * Converts an RFC 6570 URI template to a matching RegExp: `{var}` matches one path segment,
 * `{+var}`/`{#var}` anything, `{?…}`/`{&…}` an optional query part. Good enough for routing.
 */
export function templateToRegExp(template: string): RegExp {
  let out = '^';
  let last = 0;
  for (const m of template.matchAll(/\{([^}]*)\}/g)) {
    out += escapeRe(template.slice(last, m.index));
    const expr = m[1] ?? '';
    const op = expr[0];
    if (op === '+' || op === '#') out += '.*';
    else if (op === '?' || op === '&') out += '(?:[?&].*)?';
    else if (op === '/') out += '(?:/[^?#]*)?';
    else out += '[^/?#]*';
    last = (m.index ?? 0) + m[0].length;
  }
  out += escapeRe(template.slice(last)) + '$';
  return new RegExp(out);
}

function escapeRe(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** One MCP endpoint's view over one or more upstreams. */
export class View {
  readonly name: string;
  readonly kind: ViewKind;
  readonly description: string | undefined;
  #members: ViewMember[];
  #separator: string;
  #namePrefix: NamePrefixMode;
  #exposure: ToolExposure;
  #gatewayVersion: string;
  /** {@link serverInfo} of a view that is not a single server's (built once). */
  #ownServerInfo: JsonObject | undefined;
  #compiled: Compiled | undefined;
  #membersVersion = 0;
  #scoped = new WeakMap<ListScope, ScopedLists & { stamp: number }>();
  #onCollision: ((collision: NameCollision) => void) | undefined;
  /** Collisions reported at the last compilation (`kind\0exposed\0withheld owner`). */
  #collisions = new Set<string>();

  constructor(options: ViewOptions) {
    this.name = options.name;
    this.kind = options.kind;
    this.description = options.description;
    this.#members = options.members;
    this.#separator = options.separator;
    this.#namePrefix = options.kind === 'single' ? 'never' : (options.namePrefix ?? 'always');
    this.#exposure = options.kind === 'single' ? 'all' : (options.exposure ?? 'all');
    this.#gatewayVersion = options.gatewayVersion;
    this.#onCollision = options.onCollision;
  }

  /** Members (upstreams with their filters). */
  get members(): readonly ViewMember[] {
    return this.#members;
  }

  /** The namespace separator between server and item names (`namespaceSeparator`). */
  get separator(): string {
    return this.#separator;
  }

  /** How names are prefixed with the server name (`never` for a single-server view). */
  get namePrefix(): NamePrefixMode {
    return this.#namePrefix;
  }

  /** What `tools/list` shows (`all` for a single-server view). */
  get exposure(): ToolExposure {
    return this.#exposure;
  }

  /** Changes what `tools/list` shows (hot reload); ignored by a single-server view. */
  setExposure(exposure: ToolExposure): void {
    if (this.kind !== 'single') this.#exposure = exposure;
  }

  /**
   * Replaces the members (hot reload); the lists are recompiled on next use, and exposed names
   * keep their owners where those are still members.
   *
   * @param separator - default: unchanged
   * @param namePrefix - default: unchanged; ignored by a single-server view
   */
  setMembers(members: ViewMember[], separator = this.#separator, namePrefix = this.#namePrefix): void {
    this.#members = members;
    this.#separator = separator;
    if (this.kind !== 'single') this.#namePrefix = namePrefix;
    this.#membersVersion++;
  }

  /** Compiles the lists now when a catalog changed, so name collisions are reported as they appear. */
  prepare(): void {
    this.#compile();
  }

  /** True when `upstream` is one of this view's members. */
  includes(upstream: Upstream): boolean {
    return this.#members.some((m) => m.upstream === upstream);
  }

  /** The member for an upstream, if any. */
  memberOf(upstream: Upstream): ViewMember | undefined {
    return this.#members.find((m) => m.upstream === upstream);
  }

  /** A number that changes whenever any member's catalog or the member list changes. */
  get stamp(): number {
    let s = this.#membersVersion * 1_000_003;
    for (const m of this.#members) s += m.upstream.catalogVersion;
    return s;
  }

  /** Tools, namespaced for aggregates. */
  get tools(): JsonObject[] {
    return this.#compile().tools;
  }
  get prompts(): JsonObject[] {
    return this.#compile().prompts;
  }
  get resources(): JsonObject[] {
    return this.#compile().resources;
  }
  get resourceTemplates(): JsonObject[] {
    return this.#compile().resourceTemplates;
  }

  /**
   * The lists as seen by a restricted principal: items of servers outside its scope, and tools
   * whose upstream name it may not call, are absent. Cached per scope and catalog change.
   */
  listsFor(scope: ListScope): ScopedLists {
    const c = this.#compile();
    if (scope.unrestricted) return c;
    const hit = this.#scoped.get(scope);
    if (hit && hit.stamp === c.stamp) return hit;
    const keep = (owners: Resolved[], tool: boolean) => (_: unknown, i: number) => {
      const o = owners[i]!;
      return tool ? scope.tool(o.member.upstream.name, o.name, this.#separator) : scope.server(o.member.upstream.name);
    };
    const lists = {
      stamp: c.stamp,
      tools: c.tools.filter(keep(c.toolOwners, true)),
      prompts: c.prompts.filter(keep(c.promptOwners, false)),
      resources: c.resources.filter(keep(c.resourceOwners, false)),
      resourceTemplates: c.resourceTemplates.filter(keep(c.templateOwners, false)),
    };
    this.#scoped.set(scope, lists);
    return lists;
  }

  /** Exposed tool name → member and upstream name. */
  resolveTool(name: string): Resolved | undefined {
    return this.#compile().toolIndex.get(name);
  }

  /** Exposed prompt name → member and upstream name. */
  resolvePrompt(name: string): Resolved | undefined {
    return this.#compile().promptIndex.get(name);
  }

  /**
   * Exposed resource URI → member and upstream URI: listed resources first, then the
   * `switchboard://{server}/…` collision form, then resource templates, then — when exactly one
   * member serves resources — that member.
   */
  resolveResource(uri: string): Resolved | undefined {
    const c = this.#compile();
    const hit = c.resourceIndex.get(uri);
    if (hit) return hit;
    // Schemes are case-insensitive (RFC 3986 §3.1): `SwitchBoard://` is the collision form too.
    if (
      uri.length > COLLISION_PREFIX.length &&
      uri.slice(0, COLLISION_PREFIX.length).toLowerCase() === COLLISION_PREFIX
    ) {
      const rest = uri.slice(COLLISION_SCHEME.length + 3);
      const slash = rest.indexOf('/');
      if (slash > 0) {
        const server = rest.slice(0, slash);
        const member = this.#members.find((m) => m.upstream.name === server);
        let name: string | undefined;
        try {
          name = decodeURIComponent(rest.slice(slash + 1));
        } catch {
          return undefined;
        }
        // The member's filter applies to the URI inside, in every spelling, as to a plain URI.
        if (member && filterResourceUri(member.resources, name) !== undefined) return { member, name };
      }
      return undefined;
    }
    for (const t of c.templateRoutes)
      if (t.pattern.test(uri) && filterResourceUri(t.member.resources, uri) !== undefined)
        return { member: t.member, name: uri };
    const withResources = this.#members.filter((m) => m.upstream.capabilities.resources !== undefined);
    if (withResources.length === 1 && filterResourceUri(withResources[0]!.resources, uri) !== undefined)
      return { member: withResources[0]!, name: uri };
    return undefined;
  }

  /** The member owning a resource template (for completion/complete with ref/resource). */
  resolveTemplate(uriTemplate: string): ViewMember | undefined {
    const c = this.#compile();
    const route = c.templateRoutes.find((t) => t.uriTemplate === uriTemplate);
    return route?.member ?? this.resolveResource(uriTemplate)?.member;
  }

  /**
   * The identity this endpoint gives: the upstream's `serverInfo` for a single server's view,
   * else Switchboard's name (with the virtual server's). Cheap: no object is built per call
   * (results of modern requests carry it).
   */
  serverInfo(): JsonObject {
    if (this.kind === 'single') {
      const info = this.#members[0]?.upstream.initializeResult?.serverInfo;
      if (typeof info === 'object' && info !== null) return info as JsonObject;
    }
    return (this.#ownServerInfo ??= {
      name:
        this.kind === 'aggregate' ? 'switchboard' : this.kind === 'virtual' ? `switchboard/${this.name}` : this.name,
      version: this.kind === 'single' ? 'unknown' : this.#gatewayVersion,
    });
  }

  /**
   * The InitializeResult body (without protocolVersion) this view answers with, and whose
   * capabilities `server/discover` gives. A single-server view mirrors its upstream's
   * capabilities (extensions included), serverInfo and instructions; a view of several members
   * advertises what the gateway can honour for every member ({@link mergeCapabilities}) and their
   * instructions under a heading per server.
   */
  initializeResult(): JsonObject {
    if (this.kind === 'single') {
      const up = this.#members[0]?.upstream;
      const init = up?.initializeResult ?? {};
      const out: JsonObject = {
        capabilities: init.capabilities ?? {},
        serverInfo: this.serverInfo(),
      };
      if (init.instructions !== undefined) out.instructions = init.instructions;
      return out;
    }
    const caps = mergeCapabilities(this.#members.map((m) => m.upstream.capabilities));
    const instructions: string[] = [];
    for (const m of this.#members) {
      const ins = m.upstream.initializeResult?.instructions;
      if (typeof ins === 'string' && ins.length > 0) instructions.push(`## ${m.upstream.name}\n${ins}`);
    }
    const out: JsonObject = { capabilities: caps, serverInfo: this.serverInfo() };
    if (instructions.length > 0) out.instructions = instructions.join('\n\n');
    return out;
  }

  /**
   * Gives each exposed name to one candidate: first to the owner it had at the previous
   * compilation, then in member order. Every other candidate for a taken name is withheld and,
   * when that collision is new, reported. Fills `index`, `owners` and `items` in member order.
   */
  #claim(
    kind: 'tool' | 'prompt',
    candidates: Candidate[],
    previous: Map<string, Resolved> | undefined,
    index: Map<string, Resolved>,
    owners: Resolved[],
    items: JsonObject[],
    collisions: Set<string>,
  ): void {
    const winners = new Map<string, Candidate>();
    if (previous !== undefined) {
      for (const c of candidates) {
        const before = previous.get(c.exposed);
        if (before !== undefined && !winners.has(c.exposed) && ownerKey(before) === ownerKey(c.owner))
          winners.set(c.exposed, c);
      }
    }
    for (const c of candidates) if (!winners.has(c.exposed)) winners.set(c.exposed, c);
    for (const c of candidates) {
      const winner = winners.get(c.exposed)!;
      if (winner !== c) {
        const key = `${kind}\0${c.exposed}\0${ownerKey(c.owner)}`;
        collisions.add(key);
        if (!this.#collisions.has(key))
          this.#onCollision?.({
            view: this.name,
            kind,
            exposed: c.exposed,
            kept: { server: winner.owner.member.upstream.name, name: winner.owner.name },
            withheld: { server: c.owner.member.upstream.name, name: c.owner.name },
          });
        continue;
      }
      index.set(c.exposed, c.owner);
      owners.push(c.owner);
      items.push(c.exposed === c.owner.name ? c.item : { ...c.item, name: c.exposed });
    }
  }

  #compile(): Compiled {
    const stamp = this.stamp;
    if (this.#compiled && this.#compiled.stamp === stamp) return this.#compiled;
    const sep = this.#separator;
    const mode = this.#namePrefix;
    const tools: JsonObject[] = [];
    const toolIndex = new Map<string, Resolved>();
    const prompts: JsonObject[] = [];
    const promptIndex = new Map<string, Resolved>();
    const resources: JsonObject[] = [];
    const resourceIndex = new Map<string, Resolved>();
    const resourceTemplates: JsonObject[] = [];
    const templateRoutes: TemplateRoute[] = [];
    const toolOwners: Resolved[] = [];
    const promptOwners: Resolved[] = [];
    const resourceOwners: Resolved[] = [];
    const templateOwners: Resolved[] = [];
    const toolCandidates: Candidate[] = [];
    const promptCandidates: Candidate[] = [];
    // `conditional`: the first member (configuration order) exposing a name keeps it bare.
    const firstTool = mode === 'conditional' ? new Map<string, ViewMember>() : undefined;
    const firstPrompt = mode === 'conditional' ? new Map<string, ViewMember>() : undefined;
    for (const member of this.#members) {
      const up = member.upstream;
      for (const tool of up.catalog.tools) {
        const original = tool.name as string;
        const renamed = member.tools(original);
        if (renamed === undefined) continue;
        const exposed = exposedName(mode, firstTool, member, renamed, sep);
        toolCandidates.push({ owner: { member, name: original }, exposed, item: tool });
      }
      for (const prompt of up.catalog.prompts) {
        const original = prompt.name as string;
        const renamed = member.prompts(original);
        if (renamed === undefined) continue;
        const exposed = exposedName(mode, firstPrompt, member, renamed, sep);
        promptCandidates.push({ owner: { member, name: original }, exposed, item: prompt });
      }
    }
    const collisions = new Set<string>();
    this.#claim('tool', toolCandidates, this.#compiled?.toolIndex, toolIndex, toolOwners, tools, collisions);
    this.#claim(
      'prompt',
      promptCandidates,
      this.#compiled?.promptIndex,
      promptIndex,
      promptOwners,
      prompts,
      collisions,
    );
    this.#collisions = collisions;
    for (const member of this.#members) {
      const up = member.upstream;
      const catalog = up.catalog;
      for (const resource of catalog.resources) {
        const uri = resource.uri as string;
        if (filterResourceUri(member.resources, uri) === undefined) continue;
        let exposed = uri;
        if (resourceIndex.has(uri)) exposed = `${COLLISION_SCHEME}://${up.name}/${encodeURIComponent(uri)}`;
        const owner = { member, name: uri };
        resourceIndex.set(exposed, owner);
        resourceOwners.push(owner);
        resources.push(exposed === uri ? resource : { ...resource, uri: exposed });
      }
      for (const template of catalog.resourceTemplates) {
        const uriTemplate = template.uriTemplate as string;
        if (filterResourceUri(member.resources, uriTemplate) === undefined) continue;
        resourceTemplates.push(template);
        templateOwners.push({ member, name: uriTemplate });
        templateRoutes.push({ member, uriTemplate, pattern: templateToRegExp(uriTemplate) });
      }
    }
    this.#compiled = {
      stamp,
      toolOwners,
      promptOwners,
      resourceOwners,
      templateOwners,
      tools,
      toolIndex,
      prompts,
      promptIndex,
      resources,
      resourceIndex,
      resourceTemplates,
      templateRoutes,
    };
    return this.#compiled;
  }
}
