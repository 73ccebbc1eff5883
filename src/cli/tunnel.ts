/**
 * `switchboard tunnel --gateway URL --token T [--name N] [--max-retries N] -- <command args…>`
 * runs a local stdio MCP server and connects it to a gateway through a reverse
 * tunnel. See `docs/tunnel.md`.
 *
 * @module
 */
import { isGatewayError } from '../errors.js';
import { createLogger, type Logger } from '../observability/logger.js';
import { processOutput, type CliOutput } from './check.js';
import { packageVersion } from '../package-root.js';

/** Options of {@link runTunnel}. */
export interface TunnelCommandOptions {
  /** Gateway base URL (`http(s)://…`) or tunnel WebSocket URL (`ws(s)://…`). */
  gateway: string;
  /** API token; default the `SWITCHBOARD_TOKEN` environment variable (keeps it out of `ps`). */
  token?: string;
  /** Server name to register (default: the local server's `serverInfo.name`). */
  name?: string;
  /** Consecutive failed connection attempts before exiting 1. Default unlimited. */
  maxRetries?: number;
  /** The local server: program and arguments (everything after `--`). */
  command: readonly string[];
  /** Reconnect delays (ms), mainly for tests. Defaults 500 → 30 000. */
  initialRetryDelayMs?: number;
  maxRetryDelayMs?: number;
  /** Stops the tunnel (exit 0), like SIGINT/SIGTERM. */
  signal?: AbortSignal;
  /** Turn SIGINT/SIGTERM into a clean stop. Default true. */
  handleSignals?: boolean;
  /** Default: the process logger on stderr. */
  logger?: Logger;
}

/**
 * Runs the tunnel until SIGINT/SIGTERM (or `signal`), then unregisters, closes the socket and
 * stops the local server's process group. Returns the exit code: 0 after a requested stop, 1 on
 * a fatal error (local server failed or exited, gateway refused the token or the name, retries
 * exhausted), 2 on bad arguments.
 */
export async function runTunnel(options: TunnelCommandOptions, output: CliOutput = processOutput): Promise<number> {
  const token = options.token ?? process.env.SWITCHBOARD_TOKEN;
  const [command, ...args] = options.command;
  if (token === undefined || token === '') {
    output.err('error: --token (or SWITCHBOARD_TOKEN) is required');
    return 2;
  }
  if (command === undefined) {
    output.err('error: give the local server after "--", e.g. switchboard tunnel … -- npx -y my-server');
    return 2;
  }
  let client;
  try {
    const { startTunnelClient } = await import('../tunnel/client.js');
    client = startTunnelClient({
      gateway: options.gateway,
      token,
      name: options.name,
      command,
      args,
      maxRetries: options.maxRetries,
      initialRetryDelayMs: options.initialRetryDelayMs,
      maxRetryDelayMs: options.maxRetryDelayMs,
      version: packageVersion(),
      logger: options.logger ?? createLogger().child({ component: 'tunnel' }),
    });
  } catch (e) {
    output.err(`error: ${isGatewayError(e) ? `${e.code}: ${e.message}` : String(e)}`);
    return 2;
  }
  const stop = (): void => void client.stop();
  const handleSignals = options.handleSignals ?? true;
  if (handleSignals) {
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  }
  if (options.signal?.aborted) stop();
  options.signal?.addEventListener('abort', stop, { once: true });
  try {
    return await client.done;
  } finally {
    if (handleSignals) {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
    }
    options.signal?.removeEventListener('abort', stop);
  }
}
