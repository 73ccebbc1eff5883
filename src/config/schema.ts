/**
 * The configuration schema: one zod schema for YAML, JSON and TOML files.
 *
 * Durations accept a number of milliseconds or a string such as `"500ms"`, `"30s"`, `"5m"`,
 * `"1h"`, `"1d"`. Sizes accept a number of bytes or a string such as `"512kb"`, `"4mb"`.
 * `servers` and its alias `mcpServers` (Claude Desktop / Cursor / VS Code shape) are merged;
 * a name present in both is an error.
 *
 * @module
 */
import ipaddr from 'ipaddr.js';
import { z } from 'zod';
import { celProblem } from '../guardrails/cel.js';
import { redactPatternProblem } from '../guardrails/redact.js';
import { ruleMatchProblems } from '../policy/rate-limit.js';

const DURATION_RE = /^(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?$/i;
const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** Parses `"30s"`-style durations to milliseconds; `undefined` when malformed. */
export function parseDuration(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? v : undefined;
  const m = DURATION_RE.exec(v.trim());
  if (!m) return undefined;
  return Math.round(Number(m[1]) * (DURATION_UNITS[(m[2] ?? 'ms').toLowerCase()] ?? 1));
}

const SIZE_RE = /^(\d+(?:\.\d+)?)\s*(b|kb|kib|mb|mib|gb|gib)?$/i;
const SIZE_UNITS: Record<string, number> = {
  b: 1,
  kb: 1024,
  kib: 1024,
  mb: 1024 ** 2,
  mib: 1024 ** 2,
  gb: 1024 ** 3,
  gib: 1024 ** 3,
};

/** Parses `"4mb"`-style sizes to bytes; `undefined` when malformed. */
export function parseSize(v: string | number): number | undefined {
  if (typeof v === 'number') return Number.isFinite(v) && v >= 0 ? Math.floor(v) : undefined;
  const m = SIZE_RE.exec(v.trim());
  if (!m) return undefined;
  return Math.floor(Number(m[1]) * (SIZE_UNITS[(m[2] ?? 'b').toLowerCase()] ?? 1));
}

/** A duration in milliseconds (input: ms number or `"30s"` string). */
export const Duration = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const ms = parseDuration(v);
  if (ms === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a duration such as 30s, 5m or a number of milliseconds, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return ms;
});

/** A size in bytes (input: number or `"4mb"` string). */
export const Size = z.union([z.number(), z.string()]).transform((v, ctx) => {
  const b = parseSize(v);
  if (b === undefined) {
    ctx.addIssue({
      code: 'custom',
      message: `expected a size such as 512kb, 4mb or a number of bytes, got ${JSON.stringify(v)}`,
    });
    return z.NEVER;
  }
  return b;
});

/**
 * A string value where YAML/TOML scalars are accepted too: `PORT: 3000` in `env` or `--port, 3000`
 * in `args` become `"3000"`, as a shell would pass them. Output is always a string.
 */
const StringLike = z.union([z.string(), z.number(), z.boolean()]).transform((v) => String(v));

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

/** Names of servers and virtual servers: used in URLs and as namespace prefixes. */
export const NAME_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$/;
const Name = z
  .string()
  .regex(NAME_RE, 'expected a name of 1-64 characters from [A-Za-z0-9_.-], starting with a letter or digit');

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
  tools: NameFilter.optional(),
  prompts: NameFilter.optional(),
  resources: NameFilter.optional(),
  /** Most requests in flight to this upstream at once; more wait in a bounded queue. Default unlimited. */
  maxInFlight: z.number().int().min(1).optional(),
  /** Requests that may wait for a slot when `maxInFlight` is reached; more are refused (503). Default 100. */
  maxQueue: z.number().int().min(0).default(100),
  /** Longest wait in that queue. Default 30s. */
  queueTimeout: Duration.default(30_000),
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
    ...CommonServerFields,
  })
  .strict();
export type StdioServer = z.infer<typeof StdioServer>;

/** HTTP header names: RFC 9110 §5.1 tokens restricted to letters, digits and `-`. */
export const HEADER_NAME_RE = /^[A-Za-z0-9-]+$/;
const HeaderName = z.string().regex(HEADER_NAME_RE, 'expected a header name of letters, digits and "-"');

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
    ...CommonServerFields,
  })
  .strict();
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

export const VirtualServer = z
  .object({
    description: z.string().optional(),
    /** Either a list of server names, or server name → filters applied on top of the server's own. */
    servers: z.union([z.array(Name), z.record(Name, VirtualMember)]),
  })
  .strict();
export type VirtualServer = z.infer<typeof VirtualServer>;

/** `resource.action` permission strings, `*` wildcards per segment (docs/security.md). */
export const PERMISSION_RE = /^(\*|[a-z][a-zA-Z0-9-]*)(\.(\*|[a-z][a-zA-Z0-9-]*))?$/;
const Permission = z
  .string()
  .regex(PERMISSION_RE, 'expected a permission such as servers.use, tools.execute or admin.*');

/** Inbound authentication and authorization: API tokens, OAuth 2.1 resource server, trusted proxy header, roles. */
export const AuthConfig = z
  .object({
    /** none: anonymous (loopback only unless --insecure); tokens: Switchboard API tokens; oauth: OAuth 2.1 resource server; tokens+oauth: either. */
    mode: z.enum(['none', 'tokens', 'oauth', 'tokens+oauth']).default('none'),
    oauth: z
      .object({
        /** Authorization server issuer (RFC 8414 / OIDC discovery base). */
        issuer: z.url(),
        /** Accepted `aud` value(s); the check fails closed. Default: the public MCP URL. */
        audience: z.union([z.string(), z.array(z.string()).min(1)]).optional(),
        /** jwt: verify locally with JWKS; introspection: RFC 7662; both: JWT first, introspection fallback. */
        validation: z.enum(['jwt', 'introspection', 'both']).default('jwt'),
        clientId: z.string().optional(),
        clientSecret: z.string().optional(),
        requiredScopes: z.array(z.string()).default([]),
        jwksUri: z.url().optional(),
        introspectionEndpoint: z.url().optional(),
        /** Claim holding role names mapped through `roles`. Default `roles`. */
        rolesClaim: z.string().default('roles'),
        /** OAuth scope → role name (e.g. `mcp:admin: admin`). */
        scopeRoles: z.record(z.string(), z.string()).default({}),
        /** Role given to every valid OAuth principal. Default `user`. */
        defaultRole: z.string().default('user'),
      })
      .strict()
      .optional(),
    /** Identity taken from a header set by a trusted reverse proxy, only from these networks (§D). */
    trustedProxy: z
      .object({
        header: HeaderName.default('X-Authenticated-User'),
        /** CIDRs (IPv4/IPv6) the proxy connects from; the header is stripped from anyone else. */
        cidrs: z.array(z.string()).min(1),
        /** Role given to principals authenticated this way. Default `user`. */
        role: z.string().default('user'),
      })
      .strict()
      .optional(),
    /** Role name → permissions. Built-ins (`admin`, `user`) may be overridden. */
    roles: z.record(z.string(), z.array(Permission)).default({}),
    /**
     * Redis pub/sub channel on which replicas announce revoked API tokens (used when
     * `SWITCHBOARD_REDIS_URL` is set; read at start). Default `swb:tokens:revoked`.
     */
    revocationChannel: z.string().min(1).default('swb:tokens:revoked'),
  })
  .strict()
  .superRefine((a, ctx) => {
    if ((a.mode === 'oauth' || a.mode === 'tokens+oauth') && !a.oauth) {
      ctx.addIssue({
        code: 'custom',
        path: ['oauth'],
        message: `auth.mode ${a.mode} needs an auth.oauth section (issuer, audience)`,
      });
    }
  });
export type AuthConfig = z.infer<typeof AuthConfig>;

/**
 * One rate-limit rule (docs/rate-limits.md). A rule applies to a request when every
 * field of `match` matches (globs); requests are counted per `key`.
 */
/**
 * Which requests a rule applies to (rate limits and guardrails): every given field must match;
 * no field matches every request.
 */
export const RuleMatch = z
  .object({
    /** Principal id glob, e.g. `token:alice`, `oauth:*`. */
    principal: z.string().optional(),
    /** API token id. */
    token: z.string().optional(),
    /** Server name glob. */
    server: z.string().optional(),
    /** The upstream's own tool name glob (tools/call only). */
    tool: z.string().optional(),
    /** MCP method glob, e.g. `tools/call`, `resources/*`. */
    method: z.string().optional(),
    /** Client IP or CIDR. */
    ip: z.string().optional(),
  })
  .strict();
export type RuleMatch = z.infer<typeof RuleMatch>;

export const RateLimitRule = z
  .object({
    match: RuleMatch.default({}),
    /** What is counted: per principal (IP when anonymous), per IP, per token, or one global bucket. Default principal. */
    key: z.enum(['principal', 'ip', 'token', 'global']).default('principal'),
    limit: z.number().int().min(1),
    window: Duration,
    /** Extra requests allowed in a burst on top of `limit` (token bucket). Default 0. */
    burst: z.number().int().min(0).default(0),
    /** Optional label for logs and metrics. */
    name: z.string().optional(),
  })
  .strict();
export type RateLimitRule = z.infer<typeof RateLimitRule>;

// ---- guardrails (src/guardrails; docs/guardrails.md) ----
/** A custom redaction: a regular expression (JavaScript syntax, `g` implied) and its replacement. */
export const RedactPattern = z
  .object({
    pattern: z.string().min(1),
    /** Replacement text (`$1` … refer to groups). Default `[REDACTED:<name>]`. */
    replacement: z.string().optional(),
    /** Detector name in metrics and the default replacement. Default `custom`. */
    name: z
      .string()
      .regex(/^[a-z0-9-]{1,32}$/)
      .optional(),
    /** Extra flags: `i`, `m`, `s`, `u` (`g` is always set). Default none. */
    flags: z
      .string()
      .regex(/^[imsu]*$/, 'expected flags from i, m, s, u')
      .optional(),
  })
  .strict()
  .superRefine((p, ctx) => {
    // Bad flags are reported on `flags` alone.
    if (p.flags !== undefined && !/^[imsu]*$/.test(p.flags)) return;
    const problem = redactPatternProblem(p.pattern, p.flags ?? '');
    if (problem !== undefined) ctx.addIssue({ code: 'custom', path: ['pattern'], message: problem });
  });
export type RedactPattern = z.infer<typeof RedactPattern>;

/**
 * One guardrail. Exactly one kind of check: `deny`/`denyResult` (CEL), `redact`, `webhook` or
 * `pinTools`. Applies to the requests its `match` selects (all when absent).
 */
export const Guardrail = z
  .object({
    /** Unique name, shown in errors (`data.guardrail`), metrics and the usage log. */
    name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'expected 1-64 characters from [A-Za-z0-9_.-]'),
    match: RuleMatch.default({}),
    /** CEL expression over `mcp` and `principal`; true refuses the request. */
    deny: z.string().optional(),
    /** CEL expression over `mcp` (with `mcp.result`) and `principal`; true refuses the result. */
    denyResult: z.string().optional(),
    /** Built-in detector sets (`secrets`, `pii`) and custom patterns, redacted in arguments and results. */
    redact: z
      .array(z.union([z.enum(['secrets', 'pii']), RedactPattern]))
      .min(1)
      .optional(),
    /** An external guard asked for every matching request and result. */
    webhook: z
      .object({
        url: z.url({ protocol: /^https?$/ }),
        /** Longest wait for the guard's answer. Default 1s. */
        timeout: Duration.pipe(z.number().min(1).max(60_000)).default(1000),
        /** When the guard fails (timeout, refused, non-2xx, bad JSON): refuse or let through. Default deny. */
        onError: z.enum(['deny', 'allow']).default('deny'),
        /** Extra request headers, e.g. an authorization header for the guard. */
        headers: z.record(z.string(), z.string()).default({}),
      })
      .strict()
      .optional(),
    /** Tool pinning: a tool whose definition changed since first seen is blocked or warned about. */
    pinTools: z.enum(['block', 'warn']).optional(),
  })
  .strict()
  .superRefine((g, ctx) => {
    const kinds = [
      g.deny !== undefined || g.denyResult !== undefined ? 'deny' : undefined,
      g.redact !== undefined ? 'redact' : undefined,
      g.webhook !== undefined ? 'webhook' : undefined,
      g.pinTools !== undefined ? 'pinTools' : undefined,
    ].filter((k) => k !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message:
          kinds.length === 0
            ? 'a guardrail needs one of deny/denyResult, redact, webhook or pinTools'
            : `a guardrail has one kind of check; found ${kinds.join(', ')} (split it into several guardrails)`,
      });
    }
    for (const field of ['deny', 'denyResult'] as const) {
      const text = g[field];
      if (text === undefined) continue;
      const problem = celProblem(text);
      if (problem !== undefined) ctx.addIssue({ code: 'custom', path: [field], message: problem });
    }
    for (const p of ruleMatchProblems(g.match)) ctx.addIssue({ code: 'custom', path: p.path, message: p.message });
  });
export type Guardrail = z.infer<typeof Guardrail>;

/** The `guardrails` list: names must be unique. */
export const Guardrails = z
  .array(Guardrail)
  .default([])
  .superRefine((list, ctx) => {
    const seen = new Map<string, number>();
    list.forEach((g, i) => {
      const first = seen.get(g.name);
      if (first === undefined) seen.set(g.name, i);
      else
        ctx.addIssue({
          code: 'custom',
          path: [i, 'name'],
          message: `guardrail name "${g.name}" is also used by guardrails[${first}]`,
        });
    });
  });
// ---- end guardrails ----

export const SwitchboardConfigInput = z
  .object({
    rateLimits: z.array(RateLimitRule).default([]),
    /** Guardrails, applied in order after the rate limits (docs/guardrails.md). Default none. */
    guardrails: Guardrails,
    rateLimiting: z
      .object({
        /** auto: Redis when SWITCHBOARD_REDIS_URL is set, else memory. */
        store: z.enum(['auto', 'memory', 'redis']).default('auto'),
        /** When Redis fails: true lets requests through (logged, counted); false refuses them (503). Default true. */
        failOpen: z.boolean().default(true),
        /** Redis key prefix. Default `swb:rl`. */
        keyPrefix: z.string().default('swb:rl'),
      })
      .strict()
      .default({ store: 'auto', failOpen: true, keyPrefix: 'swb:rl' }),
    usage: z
      .object({
        /** Record requests made with API tokens (docs/usage.md). Default true. */
        enabled: z.boolean().default(true),
        /** Rows per batched write. Default 500. */
        batchSize: z.number().int().min(1).default(500),
        /** Longest time a row waits before it is written. Default 1s. */
        flushInterval: Duration.default(1000),
        /** Rows held in memory at most; beyond, rows are dropped and counted. Default 50000. */
        maxQueue: z.number().int().min(1).default(50_000),
        /** Rows older than this are deleted. Default 30d. */
        retention: Duration.default(30 * 86_400_000),
      })
      .strict()
      .default({ enabled: true, batchSize: 500, flushInterval: 1000, maxQueue: 50_000, retention: 30 * 86_400_000 }),
    tunnels: z
      .object({
        /** Allow servers behind NAT to dial in at /reverse-proxy/ws. Default true. */
        enabled: z.boolean().default(true),
        /** A tunnel with no message for this long is evicted. Default 90s. */
        heartbeatTimeout: Duration.default(90_000),
        /** Timeout of POST /reverse-proxy/sessions/{id}/request. Default 30s. */
        requestTimeout: Duration.default(30_000),
        /** Events buffered per live-feed subscriber (GET /reverse-proxy/sse/{id}); oldest dropped beyond. Default 1000. */
        feedBuffer: z.number().int().min(1).default(1000),
        /** Bytes a tunnel WebSocket may hold unsent for a peer that reads too slowly; beyond, it is closed. Default 16mb. */
        maxBufferedBytes: Size.default(16 * 1024 * 1024),
        /** Frames sent to a tunnel WebSocket and not yet written to its socket; beyond, it is closed. Default 10000. */
        maxBufferedFrames: z.number().int().min(1).default(10_000),
      })
      .strict()
      .default({
        enabled: true,
        heartbeatTimeout: 90_000,
        requestTimeout: 30_000,
        feedBuffer: 1000,
        maxBufferedBytes: 16 * 1024 * 1024,
        maxBufferedFrames: 10_000,
      }),
    shutdown: z
      .object({
        /**
         * Longest time from SIGTERM/SIGINT to process exit. Steps still open then (upstreams, usage
         * log flush, stores) are abandoned, listed in a warning, and the exit code is 1. Default 10s.
         */
        gracePeriod: Duration.pipe(z.number().min(100).max(600_000)).default(10_000),
      })
      .strict()
      .default({ gracePeriod: 10_000 }),
    metrics: z
      .object({
        /** Serve Prometheus metrics. Default true. */
        enabled: z.boolean().default(true),
        /** Require `admin.*`/`metrics.read` to scrape. Default false (protect it at the network instead). */
        protected: z.boolean().default(false),
      })
      .strict()
      .default({ enabled: true, protected: false }),
    auth: AuthConfig.default({ mode: 'none', roles: {}, revocationChannel: 'swb:tokens:revoked' }),
    /** Global header passthrough: where the allowlist comes from and whether it may override base headers. */
    headers: z
      .object({
        /** env: SWITCHBOARD_PASSTHROUGH_HEADERS; db: stored global config; merge: both. Default env. */
        source: z.enum(['env', 'db', 'merge']).default('env'),
        /** Let passed-through client headers replace the upstream's configured (non-auth) headers. Default false. */
        overwriteBase: z.boolean().default(false),
      })
      .strict()
      .default({ source: 'env', overwriteBase: false }),
    /** Servers added through the admin API (`/api/v1/servers`), not this file. */
    runtimeServers: z
      .object({
        /**
         * Destinations a runtime URL server may reach although the default policy refuses them
         * (loopback, link-local, unspecified, multicast, the gateway's own addresses): CIDRs
         * (`10.0.0.0/8`), IP addresses or host names (exact, case-insensitive). Default none.
         */
        allowDestinations: z
          .array(z.string().refine(isDestination, 'expected a CIDR, an IP address or a host name'))
          .default([]),
      })
      .strict()
      .default({ allowDestinations: [] }),
    listen: z
      .object({
        host: z.string().default('127.0.0.1'),
        port: z.number().int().min(0).max(65535).default(8080),
      })
      .strict()
      .default({ host: '127.0.0.1', port: 8080 }),
    http: z
      .object({
        /**
         * Largest accepted request body; larger gets 413. A body carries exactly one JSON-RPC
         * message (batches are refused), so this is also the per-message limit. Default 4mb.
         */
        maxBodyBytes: Size.default(4 * 1024 * 1024),
        /** Deepest nesting of objects/arrays in a request body (2…1000); deeper gets 400 / -32600. Default 64. */
        maxJsonDepth: z.number().int().min(2).max(1000).default(64),
        /** Extra allowed `Origin` values (exact, e.g. https://app.example.com). Loopback origins are always allowed. */
        allowedOrigins: z.array(z.string()).default([]),
        /** Extra allowed `Host` header values (hostname[:port]). Loopback hosts and the bind host are always allowed. */
        allowedHosts: z.array(z.string()).default([]),
        /** Open client connections accepted at once; further connections are closed at accept. Default 20000. */
        maxConnections: z.number().int().min(1).default(20_000),
        /** Time a client has to send the request headers (slowloris bound). Default 15s. */
        headersTimeout: Duration.default(15_000),
        /** Time a client has to send the whole request, headers and body; then 408. Default 30s. */
        requestTimeout: Duration.default(30_000),
        /** An idle keep-alive connection is closed after this long. Default 65s (above common load-balancer idle timeouts of 60s). */
        keepAliveTimeout: Duration.default(65_000),
        /**
         * Bytes an SSE stream (Streamable HTTP GET/POST stream, legacy SSE) may hold unsent for a
         * client that reads too slowly; beyond, the stream is closed. Default 4mb.
         */
        maxStreamBytes: Size.default(4 * 1024 * 1024),
        /** Events written to an SSE stream while it waits for its client to read; beyond, it is closed. Default 4096. */
        maxStreamEvents: z.number().int().min(1).default(4096),
      })
      .strict()
      .refine((h) => h.requestTimeout === 0 || h.headersTimeout <= h.requestTimeout, {
        message: 'http.headersTimeout must not exceed http.requestTimeout',
        path: ['headersTimeout'],
      })
      .default({
        maxBodyBytes: 4 * 1024 * 1024,
        maxJsonDepth: 64,
        allowedOrigins: [],
        allowedHosts: [],
        maxConnections: 20_000,
        headersTimeout: 15_000,
        requestTimeout: 30_000,
        keepAliveTimeout: 65_000,
        maxStreamBytes: 4 * 1024 * 1024,
        maxStreamEvents: 4096,
      }),
    sessions: z
      .object({
        /**
         * A client session with no message from its client (request, notification, response, or a
         * GET opening its stream) for this long is closed, open stream or not; its next request
         * gets 404. A request still in flight keeps it. Default 30m.
         */
        idleTimeout: Duration.default(1_800_000),
        /** A client session is closed this long after `initialize`, however busy; 0 = no limit. Default 24h. */
        maxLifetime: Duration.default(86_400_000),
        /** Events kept per session for `Last-Event-ID` resumption. Default 1000. */
        eventStoreSize: z.number().int().min(0).default(1000),
        /** Maximum concurrent client sessions; more gets 503. Default 10000. */
        maxSessions: z.number().int().min(1).default(10_000),
        /** How long a call from a client declaring sampling/elicitation/roots may wait for a shared stdio child. Default 30s. */
        attributionWait: Duration.default(30_000),
        /** Concurrent sessions one principal may hold; more gets 429. `0` or `null` = no limit. Default 100. */
        maxPerPrincipal: z.number().int().min(0).nullable().default(100),
      })
      .strict()
      .default({
        idleTimeout: 1_800_000,
        maxLifetime: 86_400_000,
        eventStoreSize: 1000,
        maxSessions: 10_000,
        attributionWait: 30_000,
        maxPerPrincipal: 100,
      }),
    /** Separator between server name and tool/prompt name in aggregates; from [A-Za-z0-9_-]. Default `__`. */
    namespaceSeparator: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,8}$/, 'expected 1-8 characters from [A-Za-z0-9_-]')
      .default('__'),
    logging: z
      .object({ level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']).default('info') })
      .strict()
      .default({ level: 'info' }),
    /** Directory for the embedded database and other state. Default `.switchboard` next to the config file. */
    dataDir: z.string().optional(),
    servers: z.record(Name, ServerConfig).default({}),
    mcpServers: z.record(Name, ServerConfig).default({}),
    virtualServers: z.record(Name, VirtualServer).default({}),
  })
  .strict();

export type SwitchboardConfigInput = z.input<typeof SwitchboardConfigInput>;
type Parsed = z.output<typeof SwitchboardConfigInput>;

/**
 * The environment variables `${VAR}` interpolation read while loading a file: per server (the
 * entry's name in `servers`/`mcpServers`) and everywhere else. A stdio child never inherits a
 * variable read outside its own entry (`upstream/child-env.ts`).
 */
export interface InterpolatedVariables {
  /** Server name → the variables read inside that server's entry. */
  servers: Record<string, readonly string[]>;
  /** Variables read outside every server entry (auth, listen, …). */
  other: readonly string[];
}

/** The validated configuration used at runtime (`servers` merged with `mcpServers`, disabled ones removed). */
export interface SwitchboardConfig extends Omit<Parsed, 'servers' | 'mcpServers'> {
  servers: Record<string, ServerConfig>;
  /** Absolute path of the file this came from, if any (used in error messages and for `dataDir`). */
  source?: string;
  /** Variables interpolated while loading, when loaded from text; absent for configs built in code. */
  interpolated?: InterpolatedVariables;
}

/** True for a stdio server entry. */
export function isStdioServer(s: ServerConfig): s is StdioServer {
  return 'command' in s;
}

/** The transport used to reach a remote server (`type`/`transport` normalised). */
export function remoteTransport(s: RemoteServer): 'streamable-http' | 'sse' {
  if (s.transport) return s.transport;
  return s.type === 'sse' ? 'sse' : 'streamable-http';
}
