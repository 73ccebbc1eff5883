/**
 * The admin REST API under `/api/v1`: API tokens and runtime servers.
 *
 * Every request is authenticated like an MCP request. Permissions (docs/security.md):
 * - tokens: `tokens.manage` — a principal sees and revokes its own tokens; `admin.*` all of
 *   them. A minted token never reaches further than its creator (`TokenService.mint`: permissions,
 *   servers, tools, expiry) and is revoked with it; revoking a token revokes every token minted
 *   from it.
 * - servers: reading needs `servers.use` (the view: `server-view.ts`; secrets of stored entries
 *   are redacted for callers without `admin.*`); writing and restarting
 *   (`POST /api/v1/servers/{name}/restart`) need `servers.manage`. A stdio server (an
 *   entry with `command`, `args`, `cwd`, `env` or `inheritEnv`) runs a program as the gateway's
 *   user, so creating, changing or deleting one also needs `admin.*`
 *   (`SWB_ERR_AUTH_ADMIN_REQUIRED`), as does a URL server that sends callers' credentials to its
 *   URL (`auth.type: forward`, `Authorization`/`Cookie` in `passthroughHeaders`); `servers.manage`
 *   alone covers other URL servers and tunnels. Servers
 *   declared in the configuration file are read-only here (409). A URL server's destination must
 *   pass the destination policy (`policy/destinations.ts`; 403 `SWB_ERR_UPSTREAM_FORBIDDEN_DESTINATION`).
 *
 * Errors are JSON `{ "error": { "code": "SWB_ERR_…", "message": "…" } }` with the code's status.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Authenticate } from '../auth/authenticator.js';
import type { Principal } from '../auth/principal.js';
import { isAdmin, requirePermission } from '../auth/rbac.js';
import type { TokenService } from '../auth/tokens.js';
import { isStdioServer, NAME_RE, parseDuration, ServerConfig } from '../config/schema.js';
import { refuseRuntimeUserAuth } from '../upstream/credentials.js';
import { GatewayError, isGatewayError, restErrorBody } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { ServerStore, TokenRecord, ToolPinStore } from '../store/types.js';
import type { PinRegistry } from '../guardrails/pins.js';
import type { RecentTraffic } from '../observability/recent-traffic.js';
import { readBody } from './guards.js';
import type { RouteHandler } from './server.js';
import { createServerViews, restoreRedacted, type ServerViewBody } from './server-view.js';
import type { UsageRoute } from './usage-api.js';

/** Options for {@link createAdminApi}. */
export interface AdminApiOptions {
  gateway: Gateway;
  authenticate: Authenticate;
  tokens: TokenService;
  servers: ServerStore;
  /** `WWW-Authenticate` for 401/403. */
  challenge: (path: string, err: GatewayError) => string;
  /** Usage analytics (`/api/v1/tokens/{id}/usage`, `/api/v1/usage`). */
  usageRoute?: UsageRoute;
  /** More authenticated routes under `/api/v1`, tried after the usage routes (`console-api.ts`). */
  consoleRoute?: UsageRoute;
  /** The connections routes (`/api/v1/me/connections`, `/api/v1/connections`; `connections-api.ts`). */
  connectionsRoute?: UsageRoute;
  /** Recent traffic per server, for the server view's `stats`. */
  traffic?: RecentTraffic;
  /** Records refused credentials in the usage log (revoked or expired API tokens, docs/usage.md). */
  onRefused?: (req: IncomingMessage, path: string, err: GatewayError) => void;
  clock?: () => number;
  /**
   * Tool pins (`/api/v1/tools/pins`): the store, and the running registry when a `pinTools`
   * guardrail is configured (approvals then apply at once). Absent: the routes answer 404.
   */
  toolPins?: { store: ToolPinStore; registry: () => PinRegistry | undefined };
  /**
   * Called after this API changed shared state in the database: `servers` after a runtime server
   * was written or deleted, `pins` after an approval (so other replicas re-read it at once).
   */
  onChange?: (kind: 'servers' | 'pins') => void;
}

const PREFIX = '/api/v1/';

/**
 * How long a `PUT`/`DELETE` of a runtime server waits for the server to start, ms (5 s): the
 * answer then shows its state, `starting` when it is slower.
 */
export const RUNTIME_START_WAIT_MS = 5000;
const MAX_BODY = 1024 * 1024;

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

function sendError(res: ServerResponse, err: GatewayError, headers: Record<string, string> = {}): void {
  res.writeHead(err.status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(JSON.stringify(restErrorBody(err)));
}

async function jsonBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const text = await readBody(req, MAX_BODY);
  let v: unknown;
  try {
    v = text === '' ? {} : JSON.parse(text);
  } catch {
    throw new GatewayError('SWB_ERR_HTTP_PARSE', 'request body is not valid JSON');
  }
  if (typeof v !== 'object' || v === null || Array.isArray(v))
    throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'request body must be a JSON object');
  return v as Record<string, unknown>;
}

function stringList(v: unknown, field: string): string[] | undefined {
  if (v === undefined) return undefined;
  if (typeof v === 'string')
    return v
      .split(',')
      .map((x) => x.trim())
      .filter(Boolean);
  if (Array.isArray(v) && v.every((x) => typeof x === 'string')) return v;
  throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `${field} must be a list of strings`);
}

/** Fields that make a server entry a stdio server (a program run by the gateway). */
const STDIO_FIELDS = ['command', 'args', 'cwd', 'env', 'inheritEnv'] as const;

/** Client credentials a `passthroughHeaders` entry would send to the upstream. */
const CREDENTIAL_HEADERS: ReadonlySet<string> = new Set(['authorization', 'x-upstream-authorization', 'cookie']);

/**
 * Why a raw server entry (valid or not) needs `admin.*`, or undefined: it is a stdio server (a
 * program run as the gateway's user), or it sends callers' credentials to its URL
 * (`auth.type: forward`, `token-exchange` with its own `tokenEndpoint`, or a credential header
 * in `passthroughHeaders`) — every user of the server would hand their token to whoever chose
 * the URL.
 */
function adminOnlyReason(entry: unknown): string | undefined {
  if (typeof entry !== 'object' || entry === null) return undefined;
  const e = entry as Record<string, unknown>;
  if (e.type === 'stdio' || STDIO_FIELDS.some((f) => Object.hasOwn(e, f))) return 'a stdio server';
  const auth = e.auth as { type?: unknown } | undefined;
  if (typeof auth === 'object' && auth !== null && auth.type === 'forward') return 'a server with auth.type forward';
  // The callers' access tokens go to the token endpoint: only the inbound issuer's is safe by default.
  if (
    typeof auth === 'object' &&
    auth !== null &&
    auth.type === 'token-exchange' &&
    (auth as { tokenEndpoint?: unknown }).tokenEndpoint !== undefined
  ) {
    return 'a server with auth.type token-exchange and its own tokenEndpoint';
  }
  if (
    Array.isArray(e.passthroughHeaders) &&
    e.passthroughHeaders.some((h) => typeof h === 'string' && CREDENTIAL_HEADERS.has(h.toLowerCase()))
  ) {
    return 'a server that passes client credentials through';
  }
  return undefined;
}

/**
 * Requires `admin.*` for a write that creates, changes or deletes a server entry that only an
 * admin may hold ({@link adminOnlyReason}): the new entry and the stored one are both checked.
 *
 * @throws GatewayError `SWB_ERR_AUTH_ADMIN_REQUIRED` (403)
 */
function requireAdminFor(principal: Principal, ...entries: unknown[]): void {
  if (isAdmin(principal)) return;
  for (const entry of entries) {
    const reason = adminOnlyReason(entry);
    if (reason === undefined) continue;
    throw new GatewayError(
      'SWB_ERR_AUTH_ADMIN_REQUIRED',
      `only an admin (admin.*) may create, change or delete ${reason}; servers.manage covers URL servers`,
      { data: { permission: 'admin.*' } },
    );
  }
}

/** The public view of a token record (never the hash). */
export function tokenView(r: TokenRecord): Record<string, unknown> {
  const iso = (t: number | undefined) => (t === undefined ? null : new Date(t).toISOString());
  return {
    id: r.id,
    name: r.name,
    subject: r.subject,
    jti: r.jti,
    permissions: r.permissions,
    servers: r.servers,
    tools: r.tools,
    createdAt: iso(r.createdAt),
    expiresAt: iso(r.expiresAt),
    revokedAt: iso(r.revokedAt),
    lastUsedAt: iso(r.lastUsedAt),
    createdBy: r.createdBy ?? null,
    parentId: r.parentId ?? null,
  };
}

/** Creates the `/api/v1` route handler. */
export function createAdminApi(options: AdminApiOptions): RouteHandler {
  const { gateway, tokens, servers } = options;
  const clock = options.clock ?? Date.now;
  const views = createServerViews({ gateway, servers, traffic: options.traffic });

  async function serverView(name: string, principal: Principal): Promise<ServerViewBody> {
    const view = await views.get(name, principal);
    if (view === undefined) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `server "${name}" not found`);
    return view;
  }

  async function tokensRoute(req: IncomingMessage, res: ServerResponse, principal: Principal, id: string | undefined) {
    requirePermission(principal, 'tokens.manage');
    const admin = isAdmin(principal);
    if (id === undefined && req.method === 'GET') {
      const list = await tokens.list(admin ? {} : { subject: principal.subject });
      return send(res, 200, { tokens: list.map(tokenView) });
    }
    if (id === undefined && req.method === 'POST') {
      const body = await jsonBody(req);
      if (typeof body.name !== 'string') throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'name is required');
      if (body.subject !== undefined && body.subject !== null && typeof body.subject !== 'string')
        throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'subject must be a string');
      let expiresInMs: number | undefined;
      if (body.expires !== undefined && body.expires !== null) {
        expiresInMs =
          typeof body.expires === 'string' || typeof body.expires === 'number'
            ? parseDuration(body.expires)
            : undefined;
        if (expiresInMs === undefined || expiresInMs <= 0)
          throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'expires must be a duration such as 30d');
      }
      const permissions = stringList(body.permissions, 'permissions');
      const serverScope = stringList(body.servers, 'servers');
      const toolScope = stringList(body.tools, 'tools');
      const created = await tokens.mint(principal, {
        name: body.name,
        ...(typeof body.subject === 'string' && body.subject !== '' ? { subject: body.subject } : {}),
        ...(permissions === undefined ? {} : { permissions }),
        ...(serverScope === undefined ? {} : { servers: serverScope }),
        ...(toolScope === undefined ? {} : { tools: toolScope }),
        ...(expiresInMs === undefined ? {} : { expiresInMs }),
      });
      return send(res, 201, created);
    }
    if (id === undefined) throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET or POST');
    const record = await tokens.get(id);
    if (!record || (!admin && record.subject !== principal.subject))
      throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', 'token not found');
    if (req.method === 'GET') return send(res, 200, tokenView(record));
    if (req.method === 'DELETE') {
      await tokens.revoke(id);
      const after = await tokens.get(id);
      return send(res, 200, after ? tokenView(after) : { id, revoked: true });
    }
    throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET or DELETE');
  }

  async function applyRuntime(): Promise<void> {
    // A server that hangs in its start holds the API call no longer than this.
    await applyRuntimeServers(gateway, servers, RUNTIME_START_WAIT_MS);
    options.onChange?.('servers');
  }

  async function serversRoute(
    req: IncomingMessage,
    res: ServerResponse,
    principal: Principal,
    name: string | undefined,
  ) {
    if (req.method === 'GET') {
      requirePermission(principal, 'servers.use');
      if (name === undefined) return send(res, 200, { servers: await views.list(principal) });
      return send(res, 200, await serverView(name, principal));
    }
    requirePermission(principal, 'servers.manage');
    if (req.method === 'POST' && name === undefined) {
      const body = await jsonBody(req);
      const n = body.name;
      if (typeof n !== 'string' || !NAME_RE.test(n))
        throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'name must be 1-64 characters from [A-Za-z0-9_.-]');
      if (gateway.config.servers[n]) throw new GatewayError('SWB_ERR_HTTP_CONFLICT', `server "${n}" already exists`);
      const { name: _n, ...entry } = body;
      requireAdminFor(principal, entry, (await servers.get(n))?.config);
      return putServer(res, n, entry, principal, 201);
    }
    if (name === undefined) throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET or POST');
    if (gateway.isFileServer(name))
      throw new GatewayError(
        'SWB_ERR_HTTP_CONFLICT',
        `server "${name}" is declared in the configuration file and is read-only here`,
      );
    if (req.method === 'PUT') {
      const { name: _n, ...body } = await jsonBody(req);
      const existing = await servers.get(name);
      // An entry edited from a redacted view keeps the secrets it left as "[redacted]".
      const entry = restoreRedacted(body, existing?.config);
      requireAdminFor(principal, entry, existing?.config);
      return putServer(res, name, entry, principal, existing ? 200 : 201);
    }
    if (req.method === 'DELETE') {
      requireAdminFor(principal, (await servers.get(name))?.config);
      if (!(await servers.delete(name))) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `server "${name}" not found`);
      await applyRuntime();
      return send(res, 200, { name, deleted: true });
    }
    throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET, PUT or DELETE');
  }

  async function putServer(
    res: ServerResponse,
    name: string,
    entry: Record<string, unknown>,
    principal: Principal,
    status: number,
  ) {
    const overlap = gateway.namespaceConflict(name);
    if (overlap !== undefined) {
      throw new GatewayError(
        'SWB_ERR_HTTP_CONFLICT',
        `servers "${name}" and "${overlap}" could expose the same names; choose another name`,
        { data: { server: overlap } },
      );
    }
    const parsed = ServerConfig.safeParse(entry);
    if (!parsed.success) {
      const issues = parsed.error.issues.map((i) => ({ path: i.path.join('.'), message: i.message }));
      throw new GatewayError(
        'SWB_ERR_HTTP_INVALID_REQUEST',
        `invalid server entry: ${issues.map((i) => `${i.path || '(root)'}: ${i.message}`).join('; ')}`,
        { data: { issues } },
      );
    }
    const cfg = parsed.data;
    try {
      refuseRuntimeUserAuth({ [name]: cfg });
    } catch (err) {
      throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', (err as Error).message, {
        data: {
          issues: [{ path: 'auth.type', message: 'oauth2-user servers are configured in the configuration file' }],
        },
      });
    }
    const destinations = gateway.destinations;
    if (destinations !== undefined && !isStdioServer(cfg)) {
      await destinations.check(cfg.url);
      if (cfg.auth?.type === 'oauth2-client-credentials') await destinations.check(cfg.auth.tokenUrl);
      if (cfg.auth?.type === 'token-exchange' && cfg.auth.tokenEndpoint !== undefined)
        await destinations.check(cfg.auth.tokenEndpoint);
    }
    const now = clock();
    const existing = await servers.get(name);
    await servers.put({
      name,
      config: entry,
      createdAt: existing?.createdAt ?? now,
      updatedAt: now,
      createdBy: existing?.createdBy ?? principal.id,
    });
    await applyRuntime();
    return send(res, status, await serverView(name, principal));
  }

  /**
   * `POST /api/v1/servers/{name}/restart` (`servers.manage`; `admin.*` for a server only an admin
   * may manage, such as a stdio one): restarts a running upstream, file-declared ones too, with its
   * configuration unchanged, waits up to {@link RUNTIME_START_WAIT_MS} for it, and answers its view.
   */
  async function restartRoute(req: IncomingMessage, res: ServerResponse, principal: Principal, name: string) {
    if (req.method !== 'POST') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use POST');
    requirePermission(principal, 'servers.manage');
    const cfg = gateway.config.servers[name];
    if (!gateway.upstreams.has(name)) {
      const stored = await servers.get(name);
      if (stored !== undefined && !gateway.isFileServer(name))
        throw new GatewayError('SWB_ERR_HTTP_CONFLICT', `server "${name}" is disabled; enable it to start it`);
      throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `server "${name}" not found`);
    }
    requireAdminFor(principal, cfg);
    await gateway.restartUpstream(name, RUNTIME_START_WAIT_MS);
    return send(res, 200, await serverView(name, principal));
  }

  return async function adminApi(req, res, path, query, reqId) {
    if (!path.startsWith(PREFIX)) return false;
    const [collection, id, extra] = path.slice(PREFIX.length).split('/').map(decodeURIComponent);
    try {
      let principal: Principal;
      try {
        principal = await options.authenticate(req);
      } catch (err) {
        if (isGatewayError(err) && (err.status === 401 || err.status === 403)) {
          options.onRefused?.(req, path, err);
          sendError(res, err, { 'www-authenticate': options.challenge(path, err) });
          return true;
        }
        throw err;
      }
      if (options.usageRoute && (await options.usageRoute(req, res, path, query, principal, reqId))) return true;
      if (options.consoleRoute && (await options.consoleRoute(req, res, path, query, principal, reqId))) return true;
      if (options.connectionsRoute && (await options.connectionsRoute(req, res, path, query, principal, reqId)))
        return true;
      if (collection === 'tools' && id === 'pins' && options.toolPins) {
        await toolPinsRoute(
          req,
          res,
          principal,
          path.slice(PREFIX.length).split('/').slice(2),
          options.toolPins,
          options.onChange,
        );
        return true;
      }
      const segments = path.slice(PREFIX.length).split('/').length;
      if (collection === 'servers' && id && extra === 'restart' && segments === 3) {
        await restartRoute(req, res, principal, id);
        return true;
      }
      if (extra !== undefined) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `Not found: ${path}`);
      const key = id === '' ? undefined : id;
      if (collection === 'tokens') await tokensRoute(req, res, principal, key);
      else if (collection === 'servers') await serversRoute(req, res, principal, key);
      else throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `Not found: ${path}`);
    } catch (err) {
      const ge = isGatewayError(err) ? err : new GatewayError('SWB_ERR_INTERNAL', 'Internal error', { cause: err });
      if (!isGatewayError(err)) gateway.logger.error({ reqId, err }, 'admin API error');
      // A credential refused after authentication (minting from a token revoked meanwhile) is
      // answered and recorded like one refused at the door (RFC 6750 §3).
      if (ge.status === 401) {
        options.onRefused?.(req, path, ge);
        sendError(res, ge, { 'www-authenticate': options.challenge(path, ge) });
      } else sendError(res, ge);
    }
    return true;
  };
}

/**
 * `GET /api/v1/tools/pins[?server=NAME]` (`servers.use`): every pin with `status` `pinned` or
 * `changed`. `POST /api/v1/tools/pins/{server}/approve` (`admin.*`; body or query `tool` for one
 * tool): accepts the current definitions; answers `{server, approved: [tool, …]}`.
 */
async function toolPinsRoute(
  req: IncomingMessage,
  res: ServerResponse,
  principal: Principal,
  rest: string[],
  pins: NonNullable<AdminApiOptions['toolPins']>,
  onChange: AdminApiOptions['onChange'],
): Promise<void> {
  const segments = rest.map((s) => decodeURIComponent(s));
  if (segments.length === 0 || (segments.length === 1 && segments[0] === '')) {
    if (req.method !== 'GET') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
    requirePermission(principal, 'servers.use');
    const server = new URL(req.url ?? '/', 'http://x').searchParams.get('server') ?? undefined;
    const registry = pins.registry();
    const list = registry
      ? await registry.list(server)
      : (await pins.store.list(server)).map((p) => ({
          ...p,
          status: p.changedHash === undefined ? 'pinned' : 'changed',
        }));
    return send(res, 200, { pins: list });
  }
  const [server, action] = segments;
  if (segments.length !== 2 || action !== 'approve' || server === undefined || server === '') {
    throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `Not found: ${req.url ?? ''}`);
  }
  if (req.method !== 'POST') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use POST');
  if (!isAdmin(principal)) {
    throw new GatewayError('SWB_ERR_AUTH_ADMIN_REQUIRED', 'approving tool definitions needs admin.*');
  }
  const body = await jsonBody(req);
  const fromQuery = new URL(req.url ?? '/', 'http://x').searchParams.get('tool') ?? undefined;
  const tool = body.tool ?? fromQuery;
  if (tool !== undefined && (typeof tool !== 'string' || tool === '')) {
    throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'tool must be a non-empty string');
  }
  const registry = pins.registry();
  const approved = registry
    ? await registry.approve(server, tool, principal.id)
    : await pins.store.approve(server, tool, principal.id, Date.now());
  if (approved.length > 0) onChange?.('pins');
  send(res, 200, { server, approved });
}

/**
 * Makes the gateway's runtime servers those of the store: the ones added, changed or deleted
 * since the last call start, restart or stop (at startup, after an admin API write, and when
 * another replica announces one). A stored server named like a file-declared one, or one that no
 * longer validates, is skipped with a log line.
 *
 * @param waitMs - how long to wait for the started servers to settle (see
 *   `Gateway.setRuntimeServers`); default until they have.
 * @returns the names added, removed and changed
 */
export async function applyRuntimeServers(
  gateway: Gateway,
  store: ServerStore,
  waitMs = Number.POSITIVE_INFINITY,
): Promise<{ added: string[]; removed: string[]; changed: string[] }> {
  const map: Record<string, ServerConfig> = {};
  for (const s of await store.list()) {
    if (gateway.isFileServer(s.name)) {
      gateway.logger.warn(
        { server: s.name },
        'a runtime server has the same name as a file-declared one; the file wins',
      );
      continue;
    }
    // Stored but switched off (`switchboard server disable`, or `enabled: false` in the entry).
    if (s.config.enabled === false || s.config.disabled === true) continue;
    const parsed = ServerConfig.safeParse(s.config);
    if (parsed.success) map[s.name] = parsed.data;
    else
      gateway.logger.error(
        { server: s.name, issues: parsed.error.issues },
        'stored runtime server is invalid; skipped',
      );
  }
  return gateway.setRuntimeServers(map, waitMs);
}
