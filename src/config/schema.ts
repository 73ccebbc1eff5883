/**
 * The configuration schema: one zod schema for YAML, JSON and TOML files.
 *
 * Durations accept a number of milliseconds or a string such as `"500ms"`, `"30s"`, `"5m"`,
 * `"1h"`, `"1d"`. Sizes accept a number of bytes or a string such as `"512kb"`, `"4mb"`.
 * `servers` and its alias `mcpServers` (Claude Desktop / Cursor / VS Code shape) are merged;
 * a name present in both is an error.
 *
 * This module composes the root object from the section modules in `./schema/` (shared building
 * blocks in `./schema/common.ts`) and re-exports their public names; import from here. Issues are
 * reported in the order of the root's keys.
 *
 * @module
 */
import { z } from 'zod';
import { AdminConfig } from './schema/admin.js';
import { AuthConfig } from './schema/auth.js';
import { Name } from './schema/common.js';
import { Guardrails } from './schema/guardrails.js';
import { HttpConfig, ListenConfig, ShutdownConfig, TunnelsConfig } from './schema/http.js';
import { LoggingConfig, MetricsConfig, UsageConfig } from './schema/observability.js';
import {
  HeadersConfig,
  NamePrefix,
  RuntimeServersConfig,
  ServerConfig,
  ToolExposure,
  VirtualServer,
} from './schema/servers.js';
import { SessionsConfig } from './schema/sessions.js';
import { TokenVaultConfig } from './schema/token-vault.js';
import { RateLimitingConfig, RateLimitRule } from './schema/traffic.js';

export { AdminConfig } from './schema/admin.js';
export { AuthConfig, PERMISSION_RE } from './schema/auth.js';
export { Duration, HEADER_NAME_RE, NAME_RE, parseDuration, parseSize, Size } from './schema/common.js';
export { Guardrail, Guardrails, RedactPattern } from './schema/guardrails.js';
export {
  DEFAULT_IDLE_STOP,
  isDestination,
  isStdioServer,
  NameFilter,
  OAuth2UserAuth,
  RemoteHealth,
  RemoteServer,
  remoteTransport,
  ServerConfig,
  StdioServer,
  ToolExposure,
  UpstreamAuth,
  VirtualServer,
} from './schema/servers.js';
export { TokenExchangeAuth } from './schema/token-exchange.js';
export { RateLimitRule, RuleMatch } from './schema/traffic.js';

export const SwitchboardConfigInput = z
  .object({
    rateLimits: z.array(RateLimitRule).default([]),
    /** Guardrails, applied in order after the rate limits (docs/guardrails.md). Default none. */
    guardrails: Guardrails,
    rateLimiting: RateLimitingConfig,
    usage: UsageConfig,
    tunnels: TunnelsConfig,
    shutdown: ShutdownConfig,
    metrics: MetricsConfig,
    auth: AuthConfig.default({ mode: 'none', roles: {}, revocationChannel: 'swb:tokens:revoked' }),
    /** Global header passthrough: where the allowlist comes from and whether it may override base headers. */
    headers: HeadersConfig,
    /** Servers added through the admin API (`/api/v1/servers`), not this file. */
    runtimeServers: RuntimeServersConfig,
    /** Who may use the admin API (`/api/v1/…`) without credentials. */
    admin: AdminConfig,
    listen: ListenConfig,
    http: HttpConfig,
    sessions: SessionsConfig,
    /** Keys sealing per-user upstream tokens at rest (docs/upstream-identity.md). Default: derived from the signing secret. */
    tokenVault: TokenVaultConfig,
    /** Separator between server name and tool/prompt name in aggregates; from [A-Za-z0-9_-]. Default `__`. */
    namespaceSeparator: z
      .string()
      .regex(/^[A-Za-z0-9_-]{1,8}$/, 'expected 1-8 characters from [A-Za-z0-9_-]')
      .default('__'),
    /** Name prefixes at `/mcp`, and the default for virtual servers. Default `always`. */
    namespacing: NamePrefix.optional(),
    /** Deprecated alias of `namespacing`; both given with different values is an error. */
    namePrefix: NamePrefix.optional(),
    /** What `tools/list` shows at `/mcp`, and the default for virtual servers. Default `all`. */
    exposure: ToolExposure.optional(),
    logging: LoggingConfig,
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

/**
 * The validated configuration used at runtime (`servers` merged with `mcpServers`, disabled ones
 * removed). A loaded file has `namespacing` resolved from `namespacing` or its alias
 * `namePrefix`; read it through {@link namespacingOf}, which also covers configs built in code.
 */
export interface SwitchboardConfig extends Omit<Parsed, 'servers' | 'mcpServers'> {
  servers: Record<string, ServerConfig>;
  /** Absolute path of the file this came from, if any (used in error messages and for `dataDir`). */
  source?: string;
  /** Variables interpolated while loading, when loaded from text; absent for configs built in code. */
  interpolated?: InterpolatedVariables;
}

/**
 * The name prefix mode of an endpoint: the virtual server's `namespacing` (or its deprecated
 * alias `namePrefix`), else the top level's, else `always`.
 */
export function namespacingOf(
  cfg: Pick<SwitchboardConfig, 'namespacing' | 'namePrefix'>,
  vs?: Pick<VirtualServer, 'namespacing' | 'namePrefix'>,
): z.infer<typeof NamePrefix> {
  return vs?.namespacing ?? vs?.namePrefix ?? cfg.namespacing ?? cfg.namePrefix ?? 'always';
}

/** What `tools/list` shows at an endpoint: the virtual server's `exposure`, else the top level's, else `all`. */
export function exposureOf(
  cfg: Pick<SwitchboardConfig, 'exposure'>,
  vs?: Pick<VirtualServer, 'exposure'>,
): z.infer<typeof ToolExposure> {
  return vs?.exposure ?? cfg.exposure ?? 'all';
}
