/**
 * The admin API routes the web console (`/ui`) needs beside the REST collections of
 * `admin-api.ts`, called by it after authentication:
 *
 * - `GET /api/v1/me` (any authenticated principal): who the caller is and what it may do, with
 *   each `can` flag computed by the gateway's own permission check (`auth/rbac.ts`).
 * - `GET /api/v1/catalog?endpoint=mcp|virtual:NAME|server:NAME` (`servers.use`): the tools,
 *   prompts and resources a client of that endpoint sees, filtered by the caller's scope and by the
 *   pipeline's `tools/list` filters, and every endpoint the caller may open.
 * - `GET /api/v1/live[?server=&principal=&outcome=]` (`usage.read`): Server-Sent Events (HTML
 *   Living Standard §9.2): the recent finished MCP requests (`event: request`), then each new one;
 *   for `admin.*` also the recent log lines and each new one (`event: log`). A `: keep-alive`
 *   comment every {@link KEEP_ALIVE_MS}. At most {@link MAX_LIVE_STREAMS} streams at once (429
 *   `SWB_ERR_RATE_LIMITED` beyond); a stream whose unsent data exceeds
 *   {@link MAX_LIVE_BUFFERED_BYTES} is closed (`switchboard_stream_overflows_total{stream="admin-live"}`).
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { hasPermission, isAdmin, requirePermission, scopeOf } from '../auth/rbac.js';
import { GatewayError } from '../errors.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import type { LiveFeed, LiveRequest } from '../observability/live-feed.js';
import { requestJson } from '../observability/live-feed.js';
import type { RecentLogLine } from '../observability/recent-logs.js';
import type { JsonObject } from '../protocol/jsonrpc.js';
import type { RequestContext } from '../pipeline/stage.js';
import { reportOverflow, type StreamOverflowListener } from './stream-budget.js';
import type { UsageRoute } from './usage-api.js';

/** Live streams open at once per process, at most. */
export const MAX_LIVE_STREAMS = 16;
/** Unsent bytes a live stream may hold before it is closed (1 MiB). */
export const MAX_LIVE_BUFFERED_BYTES = 1024 * 1024;
/** Interval of the `: keep-alive` comment, ms (15 s). */
export const KEEP_ALIVE_MS = 15_000;
/** Longest value of a live filter (`server`, `principal`, `outcome`), characters. */
const MAX_FILTER_LENGTH = 256;

/** Options of {@link createConsoleApi}. */
export interface ConsoleApiOptions {
  readonly gateway: Gateway;
  /** Recent requests and log lines; without it `/api/v1/live` answers 404. */
  readonly live?: LiveFeed | undefined;
  /** Told of every live stream closed for not reading (metrics). */
  readonly onStreamOverflow?: StreamOverflowListener | undefined;
  /** Streams at once; default {@link MAX_LIVE_STREAMS}. */
  readonly maxLiveStreams?: number;
  /** Unsent bytes per stream; default {@link MAX_LIVE_BUFFERED_BYTES}. */
  readonly maxBufferedBytes?: number;
  /** Keep-alive interval, ms; default {@link KEEP_ALIVE_MS}. */
  readonly keepAliveMs?: number;
}

const PREFIX = '/api/v1/';

function send(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(body));
}

/** The `GET /api/v1/me` answer for a principal. */
export function meView(principal: Principal): Record<string, unknown> {
  return {
    id: principal.id,
    subject: principal.subject,
    kind: principal.kind,
    permissions: [...principal.permissions],
    // No list (or an empty one) means no restriction (`scopeOf` in auth/rbac.ts).
    servers: principal.servers && principal.servers.length > 0 ? [...principal.servers] : null,
    tools: principal.tools && principal.tools.length > 0 ? [...principal.tools] : null,
    can: {
      serversUse: hasPermission(principal, 'servers.use'),
      serversManage: hasPermission(principal, 'servers.manage'),
      toolsExecute: hasPermission(principal, 'tools.execute'),
      tokensManage: hasPermission(principal, 'tokens.manage'),
      usageRead: hasPermission(principal, 'usage.read'),
      metricsRead: hasPermission(principal, 'metrics.read'),
      admin: isAdmin(principal),
    },
  };
}

/** Copies the named fields of `item` that are present. */
function pick(item: JsonObject, fields: readonly string[]): JsonObject {
  const out: JsonObject = {};
  for (const f of fields) if (item[f] !== undefined) out[f] = item[f];
  return out;
}

/** Creates the console routes (a {@link UsageRoute}: called by the admin API after authentication). */
export function createConsoleApi(options: ConsoleApiOptions): UsageRoute {
  const { gateway, live } = options;
  const maxStreams = options.maxLiveStreams ?? MAX_LIVE_STREAMS;
  const maxBuffered = options.maxBufferedBytes ?? MAX_LIVE_BUFFERED_BYTES;
  const keepAliveMs = options.keepAliveMs ?? KEEP_ALIVE_MS;
  let streams = 0;

  /** The endpoints the principal may open: `/mcp`, each virtual server, each server in scope. */
  function endpoints(principal: Principal): Array<{ id: string; path: string; label: string }> {
    const scope = scopeOf(principal);
    const out = [{ id: 'mcp', path: '/mcp', label: 'All servers' }];
    for (const name of Object.keys(gateway.config.virtualServers))
      if (gateway.virtualView(name)) out.push({ id: `virtual:${name}`, path: `/mcp/${name}`, label: name });
    for (const name of gateway.upstreams.keys())
      if (scope.server(name) && gateway.serverView(name))
        out.push({ id: `server:${name}`, path: `/servers/${name}/mcp`, label: name });
    return out;
  }

  /** Resolves `?endpoint=` to its view and path. */
  function endpointView(id: string, principal: Principal): { view: View; path: string } {
    if (id === 'mcp') return { view: gateway.aggregate, path: '/mcp' };
    const colon = id.indexOf(':');
    const kind = colon < 0 ? id : id.slice(0, colon);
    const name = colon < 0 ? '' : id.slice(colon + 1);
    if ((kind !== 'virtual' && kind !== 'server') || name === '') {
      throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', 'endpoint must be mcp, virtual:NAME or server:NAME');
    }
    if (kind === 'virtual') {
      const view = gateway.virtualView(name);
      if (!view) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `virtual server "${name}" not found`);
      return { view, path: `/mcp/${name}` };
    }
    const view = gateway.serverView(name);
    if (!view) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', `server "${name}" not found`);
    if (!scopeOf(principal).server(name))
      throw new GatewayError('SWB_ERR_AUTH_OUT_OF_SCOPE', `this credential does not reach server "${name}"`);
    return { view, path: `/servers/${name}/mcp` };
  }

  function catalog(principal: Principal, query: URLSearchParams): Record<string, unknown> {
    requirePermission(principal, 'servers.use');
    const id = query.get('endpoint') ?? 'mcp';
    const { view, path } = endpointView(id, principal);
    const lists = view.listsFor(scopeOf(principal));
    // The same tools/list filters a session of this principal runs (guardrails).
    const filter = gateway.pipeline.listTools;
    const ctx: RequestContext = { principal, method: 'tools/list' };
    const toolList =
      filter === undefined
        ? lists.tools
        : filter(ctx, lists.tools, (tool) => {
            const hit = typeof tool.name === 'string' ? view.resolveTool(tool.name) : undefined;
            return hit === undefined ? undefined : { server: hit.member.upstream.name, name: hit.name };
          });
    const tools = toolList.flatMap((t) => {
      const hit = typeof t.name === 'string' ? view.resolveTool(t.name) : undefined;
      if (hit === undefined) return [];
      return [
        {
          name: t.name,
          server: hit.member.upstream.name,
          upstreamName: hit.name,
          ...pick(t, ['title', 'description', 'inputSchema', 'outputSchema', 'annotations']),
        },
      ];
    });
    const prompts = lists.prompts.flatMap((p) => {
      const hit = typeof p.name === 'string' ? view.resolvePrompt(p.name) : undefined;
      if (hit === undefined) return [];
      return [{ name: p.name, server: hit.member.upstream.name, ...pick(p, ['description', 'arguments']) }];
    });
    const resources = lists.resources.flatMap((r) => {
      const hit = typeof r.uri === 'string' ? view.resolveResource(r.uri) : undefined;
      if (hit === undefined) return [];
      return [
        {
          uri: r.uri,
          name: r.name,
          server: hit.member.upstream.name,
          ...pick(r, ['mimeType', 'description']),
        },
      ];
    });
    return { endpoint: id, path, endpoints: endpoints(principal), tools, prompts, resources };
  }

  function filterParam(query: URLSearchParams, name: string): string | undefined {
    const v = query.get(name);
    if (v === null || v === '') return undefined;
    if (v.length > MAX_FILTER_LENGTH)
      throw new GatewayError('SWB_ERR_HTTP_INVALID_REQUEST', `${name} is longer than ${MAX_FILTER_LENGTH} characters`);
    return v;
  }

  function liveStream(req: IncomingMessage, res: ServerResponse, principal: Principal, query: URLSearchParams): void {
    if (live === undefined) throw new GatewayError('SWB_ERR_HTTP_NOT_FOUND', 'Not found: /api/v1/live');
    if (req.method !== 'GET') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
    requirePermission(principal, 'usage.read');
    const server = filterParam(query, 'server');
    const who = filterParam(query, 'principal');
    const outcome = filterParam(query, 'outcome');
    if (streams >= maxStreams) {
      throw new GatewayError(
        'SWB_ERR_RATE_LIMITED',
        `at most ${maxStreams} live streams may be open at once; close one and retry`,
        { data: { retryAfterMs: 5000 } },
      );
    }
    const logs = isAdmin(principal);
    const wants = (r: Readonly<LiveRequest>): boolean =>
      (server === undefined || r.server === server || (r.server === null && r.endpoint === server)) &&
      (who === undefined || r.principal === who) &&
      (outcome === undefined || r.outcome === outcome);
    const wantsLog = (l: RecentLogLine): boolean => logs && (server === undefined || l.server === server);

    streams++;
    res.writeHead(200, {
      'content-type': 'text/event-stream',
      'cache-control': 'no-store',
      'x-accel-buffering': 'no',
    });
    let open = true;
    let unsubscribe: (() => void) | undefined = undefined;
    const timer = setInterval(() => write(': keep-alive\n\n'), keepAliveMs);
    timer.unref();
    const close = (): void => {
      if (!open) return;
      open = false;
      streams--;
      clearInterval(timer);
      unsubscribe?.();
    };
    res.on('close', close);
    /** Writes within the bound; a stream over it is destroyed and reported. */
    function write(chunk: string): void {
      if (!open || res.writableEnded || res.destroyed) return;
      const queued = res.writableLength;
      if (queued > maxBuffered) {
        close();
        res.destroy();
        reportOverflow(gateway.logger, options.onStreamOverflow, {
          stream: 'admin-live',
          sessionId: principal.id,
          queuedBytes: queued,
          queuedEvents: 0,
        });
        return;
      }
      res.write(chunk);
    }
    // Replay: the kept requests and log lines in time order, then the live ones.
    const replay: Array<{ time: number; chunk: string }> = [];
    for (const r of live.recentRequests())
      if (wants(r)) replay.push({ time: r.time, chunk: `event: request\ndata: ${requestJson(r)}\n\n` });
    if (logs)
      for (const l of live.recentLogs())
        if (wantsLog(l)) replay.push({ time: l.time, chunk: `event: log\ndata: ${l.json}\n\n` });
    replay.sort((a, b) => a.time - b.time);
    write(replay.map((e) => e.chunk).join('') || ': connected\n\n');
    if (!open) return;
    unsubscribe = live.subscribe({
      request(record, json) {
        if (wants(record)) write(`event: request\ndata: ${json}\n\n`);
      },
      log(line) {
        if (wantsLog(line)) write(`event: log\ndata: ${line.json}\n\n`);
      },
      end() {
        close();
        res.end();
      },
    });
  }

  return async function consoleApi(req, res, path, query, principal) {
    if (!path.startsWith(PREFIX)) return false;
    const rest = path.slice(PREFIX.length);
    if (rest !== 'me' && rest !== 'catalog' && rest !== 'live') return false;
    const params = typeof query === 'string' ? new URLSearchParams(query) : query;
    if (rest === 'live') {
      liveStream(req, res, principal, params);
      return true;
    }
    if (req.method !== 'GET') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
    send(res, 200, rest === 'me' ? meView(principal) : catalog(principal, params));
    return true;
  };
}
