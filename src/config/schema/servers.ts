/**
 * Upstream servers: stdio children and remote Streamable HTTP/SSE servers (with their outbound
 * credentials, health and name filters), virtual servers, the global header passthrough and the
 * destinations runtime servers may reach.
 *
 * @module
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { Duration, HeaderName, Name, StringLike } from './common.js';
import { TokenExchangeAuth } from './token-exchange.js';

/** allow/deny globs plus renames, applied to one kind of primitive (tools, prompts or resources). */
export const NameFilter = z
  .object({
    /** Globs (picomatch) of upstream names to expose; default: all. */
    allow: z.array(z.string()).optional(),
    /** Globs of upstream names to hide; applied after `allow`. */
    deny: z.array(z.string()).optional(),
    /** upstream name → exposed name (before namespacing). */
    rename: z.record(z.string(), z.string()).optional(),
  })
  .strict();
export type NameFilter = z.infer<typeof NameFilter>;

const Isolation = z.enum(['shared', 'session', 'user']);

/** The `protocol` setting of a server: `auto`, `legacy` or `modern` (see the field). */
export const UpstreamProtocolSetting = z.enum(['auto', 'legacy', 'modern']);

const RestartPolicy = z
  .object({
    /** First backoff delay after a crash. Default 250ms. */
    initialDelay: Duration.default(250),
    /** Backoff cap. Default 30s. */
    maxDelay: Duration.default(30_000),
    /** Give up after this many consecutive failed starts (0 = never give up). Default 0. */
    maxRetries: z.number().int().min(0).default(0),
  })
  .strict();

const CommonServerFields = {
  /** Free text shown in the admin API/UI. */
  description: z.string().optional(),
  /** Claude Desktop's `disabled: true` / ours `enabled: false` skip the server. */
  disabled: z.boolean().optional(),
  enabled: z.boolean().optional(),
  /** Per-request timeout towards this upstream. Default 60s. */
  timeout: Duration.optional(),
  /**
   * How long the upstream may take to answer `initialize` (or `server/discover`) when a
   * connection opens; slower, the start fails and is retried with backoff. Other servers are
   * served meanwhile. Default 30s.
   */
  initializeTimeout: Duration.default(30_000),
  tools: NameFilter.optional(),
  prompts: NameFilter.optional(),
  resources: NameFilter.optional(),
  /** Most requests in flight to this upstream at once; more wait in a bounded queue. Default unlimited. */
  maxInFlight: z.number().int().min(1).optional(),
  /** Requests that may wait for a slot when `maxInFlight` is reached; more are refused (503). Default 100. */
  maxQueue: z.number().int().min(0).default(100),
  /** Longest wait in that queue. Default 30s. */
  queueTimeout: Duration.default(30_000),
  /**
   * The protocol era Switchboard speaks to this upstream (MCP 2026-07-28 basic/versioning
   * §Backward Compatibility): `auto` probes with `server/discover` and talks MCP 2026-07-28 when
   * the upstream lists it, else opens a 2025 session with `initialize`; `legacy` opens with
   * `initialize` only; `modern` requires 2026-07-28 and never falls back. Default `auto`.
   */
  protocol: UpstreamProtocolSetting.default('auto'),
};

/** A variable name or a glob of names (`*`, `?`, `[…]`) in `inheritEnv`. */
const ENV_GLOB_RE = /^[A-Za-z0-9_*?[\]!-]+$/;
/**
 * Health of a remote upstream: consecutive transport failures (network error, timeout, HTTP 5xx)
 * mark it down; while down, an MCP `ping` probes it with exponential backoff until it answers.
 */
export const RemoteHealth = z
  .object({
    /** Consecutive transport failures that mark the upstream down. Default 3. */
    failureThreshold: z.number().int().min(1).default(3),
    /** First delay between probes while down; doubles per failed probe. Default 5s. */
    probeInterval: Duration.pipe(z.number().min(10)).default(5000),
    /** Cap of the delay between probes. Default 60s. */
    maxProbeInterval: Duration.pipe(z.number().min(10)).default(60_000),
  })
  .strict();
export type RemoteHealth = z.infer<typeof RemoteHealth>;

/** A local MCP server run as a child process speaking newline-delimited JSON on stdio. */
export const StdioServer = z
  .object({
    type: z.literal('stdio').optional(),
    command: z.string().min(1),
    args: z.array(StringLike).default([]),
    /** The child's own variables, set over the inherited ones (`${VAR}` interpolation applies). */
    env: z.record(z.string(), StringLike).default({}),
    /**
     * Extra variables of the gateway's environment passed to the child, by name or glob
     * (`AWS_*`; `*` for all), on top of the minimal allowlist (`upstream/child-env.ts`). Never
     * `SWITCHBOARD_*`, nor a variable the configuration interpolates outside this entry. Default none.
     */
    inheritEnv: z.array(z.string().regex(ENV_GLOB_RE, 'expected a variable name or a glob such as AWS_*')).default([]),
    cwd: z.string().optional(),
    /** shared: one child multiplexed; session: a child per client session; user: a child per principal. */
    isolation: Isolation.default('shared'),
    /** Maximum concurrent children for `session`/`user` isolation. Default 32. */
    maxProcesses: z.number().int().min(1).default(32),
    /** Idle children (no session attached, no call in flight) are stopped after this. Default 10m. */
    idleTimeout: Duration.default(600_000),
    /** Lines of stderr kept per child (also logged). Default 200. */
    stderrLines: z.number().int().min(0).default(200),
    restart: RestartPolicy.default({ initialDelay: 250, maxDelay: 30_000, maxRetries: 0 }),
    /**
     * `eager`: the child is started with the gateway. `lazy` (`isolation: shared` only): it is
     * started by the first request that needs it and stopped after `idleStop` without use; its
     * lists are served meanwhile from the catalog stored when it last ran. Default `eager`.
     */
    start: z.enum(['eager', 'lazy']).default('eager'),
    /** A `lazy` child unused (no call in flight, no subscription) this long is stopped. Default 10m. */
    idleStop: Duration.pipe(z.number().min(1)).optional(),
    ...CommonServerFields,
  })
  .strict()
  .superRefine((server, ctx) => {
    if (server.start === 'lazy' && server.isolation !== 'shared') {
      ctx.addIssue({
        code: 'custom',
        path: ['start'],
        message: `start: lazy needs isolation: shared (isolation: ${server.isolation} already starts a child per ${server.isolation === 'session' ? 'session' : 'principal'} on demand)`,
      });
    }
    if (server.idleStop !== undefined && server.start !== 'lazy') {
      ctx.addIssue({ code: 'custom', path: ['idleStop'], message: 'idleStop applies to start: lazy servers only' });
    }
  });
export type StdioServer = z.infer<typeof StdioServer>;

/** How long a `start: lazy` child may stay unused before it is stopped (ms): 10 minutes. */
export const DEFAULT_IDLE_STOP = 600_000;

/**
 * `auth.type: oauth2-user`: each principal reaches the upstream with its own upstream OAuth
 * tokens, obtained by the gateway through the authorization code grant with PKCE (RFC 6749
 * §4.1, RFC 7636) and kept in the token vault (docs/upstream-identity.md).
 */
export const OAuth2UserAuth = z
  .object({
    type: z.literal('oauth2-user'),
    /** The gateway's client id at the upstream's authorization server; required with `registration: static`. */
    clientId: z.string().min(1).optional(),
    /** The client secret (confidential client, `client_secret_basic`); absent for a public client. */
    clientSecret: z.string().min(1).optional(),
    /**
     * How the gateway is a client of the authorization server. `static`: the configured
     * `clientId`/`clientSecret`; `dynamic`: the gateway registers itself (RFC 7591) at the
     * server's `registration_endpoint` and keeps the registration in the database;
     * `metadata-document`: the client id is the URL of the gateway's client ID metadata document
     * (`<public URL>/oauth/client-metadata.json`, draft-ietf-oauth-client-id-metadata-document),
     * for servers with `client_id_metadata_document_supported`. Default `static`.
     */
    registration: z.enum(['static', 'dynamic', 'metadata-document']).default('static'),
    /** Scopes requested (RFC 6749 §3.3). Default: those the protected-resource metadata lists, else none. */
    scopes: z
      .array(z.string().regex(/^[\x21\x23-\x5b\x5d-\x7e]+$/, 'a scope is printable ASCII without spaces, " or \\'))
      .optional(),
    /**
     * Issuer URL of the upstream's authorization server (RFC 8414 §2). Default: found from the
     * upstream's 401 `WWW-Authenticate` `resource_metadata` (RFC 9728 §5.1).
     */
    authorizationServer: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
  })
  .strict()
  .superRefine((auth, ctx) => {
    if (auth.registration === 'static' && auth.clientId === undefined) {
      ctx.addIssue({
        code: 'custom',
        path: ['clientId'],
        message: 'oauth2-user needs a clientId (or registration: dynamic or metadata-document)',
      });
    }
    if (auth.registration !== 'static' && (auth.clientId !== undefined || auth.clientSecret !== undefined)) {
      ctx.addIssue({
        code: 'custom',
        path: ['registration'],
        message: `registration: ${auth.registration} obtains its own client id: remove clientId and clientSecret`,
      });
    }
    if (auth.clientSecret !== undefined && auth.clientId === undefined) {
      ctx.addIssue({ code: 'custom', path: ['clientSecret'], message: 'a clientSecret needs its clientId' });
    }
  });
export type OAuth2UserAuth = z.infer<typeof OAuth2UserAuth>;

/**
 * How Switchboard authenticates to a remote upstream (docs/upstream-identity.md). A configured
 * credential is never replaced by a client header.
 */
export const UpstreamAuth = z.discriminatedUnion('type', [
  z.object({ type: z.literal('none') }).strict(),
  z.object({ type: z.literal('bearer'), token: z.string().min(1) }).strict(),
  z.object({ type: z.literal('basic'), username: z.string(), password: z.string() }).strict(),
  z
    .object({
      type: z.literal('oauth2-client-credentials'),
      /** RFC 6749 §4.4 token endpoint. */
      tokenUrl: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
      clientId: z.string().min(1),
      clientSecret: z.string().min(1),
      scope: z.string().optional(),
      /** RFC 8707 resource indicator sent with the token request. */
      resource: z.string().optional(),
      audience: z.string().optional(),
    })
    .strict(),
  /** Passes the caller's own bearer token to the upstream; must be chosen explicitly. */
  z.object({ type: z.literal('forward') }).strict(),
  TokenExchangeAuth,
  OAuth2UserAuth,
]);
export type UpstreamAuth = z.infer<typeof UpstreamAuth>;

/** A remote MCP server reached over Streamable HTTP (default) or legacy HTTP+SSE. */
export const RemoteServer = z
  .object({
    /** VS Code writes `type: http`; Cursor/Claude may write `sse`/`streamable-http`. */
    type: z.enum(['http', 'streamable-http', 'streamableHttp', 'sse']).optional(),
    url: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }),
    transport: z.enum(['streamable-http', 'sse']).optional(),
    headers: z.record(z.string(), StringLike).default({}),
    /** Outbound credential. Default `{type: none}`. */
    auth: UpstreamAuth.optional(),
    /** Client headers forwarded to this upstream; replaces the global allowlist for it (docs/upstream-identity.md). */
    passthroughHeaders: z.array(HeaderName).optional(),
    /** Send the caller's identity headers and a signed assertion (docs/upstream-identity.md). Default false. */
    identityHeaders: z.boolean().default(false),
    /** When the upstream counts as down (`/readyz`, `switchboard_upstream_up`) and how it is probed back up. */
    health: RemoteHealth.default({ failureThreshold: 3, probeInterval: 5000, maxProbeInterval: 60_000 }),
    /** Remote servers are connected at start: `lazy` is refused (it applies to stdio servers only). */
    start: z.enum(['eager', 'lazy']).optional(),
    ...CommonServerFields,
  })
  .strict()
  .superRefine((server, ctx) => {
    if (server.start === 'lazy') {
      ctx.addIssue({
        code: 'custom',
        path: ['start'],
        message: 'start: lazy applies to stdio (command) servers only; a URL server is connected at start',
      });
    }
  });
export type RemoteServer = z.infer<typeof RemoteServer>;

export const ServerConfig = z.union([StdioServer, RemoteServer]);
export type ServerConfig = StdioServer | RemoteServer;

/** One member of a virtual server: which upstream, and which of its names. */
const VirtualMember = z
  .object({
    tools: NameFilter.optional(),
    prompts: NameFilter.optional(),
    resources: NameFilter.optional(),
  })
  .strict();

/**
 * How an aggregating endpoint names its members' tools and prompts (`gateway/view.ts`
 * `NamePrefixMode`): `always` `{server}{separator}{name}`, `conditional` only names two members
 * share, `never` the upstream's own names (a colliding newcomer is withheld).
 */
export const NamePrefix = z.enum(['always', 'conditional', 'never']);

/**
 * What `tools/list` shows at an endpoint: `all` its tools, or `search` only the gateway's
 * `search_tools` and `call_tool`, through which the client finds and calls the others
 * (`gateway/tool-search.ts`).
 */
export const ToolExposure = z.enum(['all', 'search']);

export const VirtualServer = z
  .object({
    description: z.string().optional(),
    /** Name prefixes at `/mcp/{name}`. Default: the top-level `namespacing`. */
    namespacing: NamePrefix.optional(),
    /** Deprecated alias of `namespacing`; both given with different values is an error. */
    namePrefix: NamePrefix.optional(),
    /** What `tools/list` shows at `/mcp/{name}`. Default: the top-level `exposure`. */
    exposure: ToolExposure.optional(),
    /** Either a list of server names, or server name → filters applied on top of the server's own. */
    servers: z.union([z.array(Name), z.record(Name, VirtualMember)]),
  })
  .strict();
export type VirtualServer = z.infer<typeof VirtualServer>;

/** A host name as in a URL (RFC 1123 labels). */
const HOSTNAME_RE =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

/** True for a CIDR (`10.0.0.0/8`, `fd00::/8`), an IP address or a host name. */
export function isDestination(v: string): boolean {
  if (v.includes('/')) {
    try {
      ipaddr.parseCIDR(v);
      return true;
    } catch {
      return false;
    }
  }
  return ipaddr.isValid(v) || HOSTNAME_RE.test(v);
}

/** The `headers` section: where the passthrough allowlist comes from. */
export const HeadersConfig = z
  .object({
    /** env: SWITCHBOARD_PASSTHROUGH_HEADERS; db: stored global config; merge: both. Default env. */
    source: z.enum(['env', 'db', 'merge']).default('env'),
    /** Let passed-through client headers replace the upstream's configured (non-auth) headers. Default false. */
    overwriteBase: z.boolean().default(false),
  })
  .strict()
  .default({ source: 'env', overwriteBase: false });

/** The `runtimeServers` section: servers added through the admin API. */
export const RuntimeServersConfig = z
  .object({
    /**
     * Destinations a runtime URL server may reach although the default policy refuses them
     * (loopback, link-local, unspecified, multicast, the gateway's own addresses): CIDRs
     * (`10.0.0.0/8`), IP addresses or host names (exact, case-insensitive). Default none.
     */
    allowDestinations: z
      .array(z.string().refine(isDestination, 'expected a CIDR, an IP address or a host name'))
      .default([]),
    /**
     * Redis pub/sub channel on which replicas announce runtime server changes and tool approvals,
     * so every other replica re-reads them from the shared database within a second, when
     * `SWITCHBOARD_REDIS_URL` is set. Default `swb:changes`.
     */
    changesChannel: z.string().min(1).default('swb:changes'),
  })
  .strict()
  .default({ allowDestinations: [], changesChannel: 'swb:changes' });

/** True for a stdio server entry. */
export function isStdioServer(s: ServerConfig): s is StdioServer {
  return 'command' in s;
}

/** The transport used to reach a remote server (`type`/`transport` normalised). */
export function remoteTransport(s: RemoteServer): 'streamable-http' | 'sse' {
  if (s.transport) return s.transport;
  return s.type === 'sse' ? 'sse' : 'streamable-http';
}
