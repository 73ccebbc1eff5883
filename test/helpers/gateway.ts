/**
 * Test helpers: start a real gateway in-process on 127.0.0.1:0 and connect official SDK clients.
 */
import { createRequire } from 'node:module';
import { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { StreamableHTTPClientTransport } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import { SSEClientTransport } from '@modelcontextprotocol/sdk/client/sse.js';
import { SwitchboardConfigInput, type SwitchboardConfig } from '../../src/config/schema.js';
import { startGateway, type RunningGateway, type StartGatewayOptions } from '../../src/app.js';
import { createLogger, silentLogger } from '../../src/observability/logger.js';
import { openDatabase } from '../../src/store/database.js';
import type { Database } from '../../src/store/types.js';

const require = createRequire(import.meta.url);

/** Absolute path of server-everything's entry point. */
export const EVERYTHING_ENTRY = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');

/** A stdio server entry running server-everything. */
export function everythingStdio(extra: Record<string, unknown> = {}): Record<string, unknown> {
  return { command: process.execPath, args: [EVERYTHING_ENTRY, 'stdio'], ...extra };
}

/** Validates a config object (input shape) into the runtime shape, merging mcpServers. */
export function buildConfig(input: Record<string, unknown>): SwitchboardConfig {
  const parsed = SwitchboardConfigInput.parse({ listen: { host: '127.0.0.1', port: 0 }, ...input });
  const { mcpServers, servers, ...rest } = parsed;
  return { ...rest, servers: { ...servers, ...mcpServers } };
}

/**
 * Starts a gateway on an ephemeral port with its own in-memory SQLite database (unless
 * `options.database` is given); remember to `close()` it.
 */
export async function startTestGateway(
  input: Record<string, unknown>,
  options: Partial<Omit<StartGatewayOptions, 'config' | 'logger'>> = {},
): Promise<RunningGateway> {
  return startTestGatewayWith(buildConfig(input), options);
}

/**
 * Like {@link startTestGateway} for a configuration already built, e.g. by `parseConfigText`
 * (which also records the variables `${VAR}` interpolation read).
 */
export async function startTestGatewayWith(
  config: SwitchboardConfig,
  options: Partial<Omit<StartGatewayOptions, 'config' | 'logger'>> = {},
): Promise<RunningGateway> {
  const logger = process.env.SWITCHBOARD_TEST_LOG ? createLogger({ level: 'debug' }) : silentLogger();
  const own: Database | undefined = options.database
    ? undefined
    : await openDatabase({ url: ':memory:', dataDir: '.', logger });
  let running: RunningGateway;
  try {
    running = await startGateway({
      config,
      logger,
      sweepIntervalMs: 0,
      ...(own ? { database: own } : {}),
      ...options,
    });
  } catch (err) {
    await own?.close();
    throw err;
  }
  if (!own) return running;
  return {
    ...running,
    gateway: running.gateway,
    close: async () => {
      await running.close();
      await own.close();
    },
  };
}

/** Client capabilities an SDK client declares to receive sampling, elicitation and roots. */
export const BIDI_CAPABILITIES = { sampling: {}, elicitation: {}, roots: { listChanged: true } };

/** Connects an SDK v1 client over Streamable HTTP. */
export async function connectClient(
  url: string,
  capabilities: Record<string, unknown> = {},
  name = 'test-client',
  headers: Record<string, string> = {},
): Promise<{ client: Client; transport: StreamableHTTPClientTransport }> {
  const client = new Client({ name, version: '1.0.0' }, { capabilities });
  const transport = new StreamableHTTPClientTransport(new URL(url), { requestInit: { headers } });
  await client.connect(transport);
  return { client, transport };
}

/** Connects an SDK v1 client over the legacy HTTP+SSE transport. */
export async function connectSseClient(url: string, capabilities: Record<string, unknown> = {}): Promise<Client> {
  const client = new Client({ name: 'sse-client', version: '1.0.0' }, { capabilities });
  await client.connect(new SSEClientTransport(new URL(url)));
  return client;
}

/** Polls `fn` until it returns a truthy value (bounded). */
export async function waitFor<T>(fn: () => T | Promise<T>, timeoutMs = 10_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
