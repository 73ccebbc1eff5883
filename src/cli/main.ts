#!/usr/bin/env node
/**
 * The `switchboard` command line: `serve`, `check`, `import`, `stdio` and the store, token,
 * tunnel and usage commands.
 *
 * The CLI is the only layer that prints or sets the process exit code; commands return their
 * exit code and the library code below them throws {@link GatewayError}s.
 *
 * @module
 */
import { Argument, Command, InvalidArgumentError, Option } from 'commander';
import { LOG_LEVELS } from '../observability/logger.js';
import type { ServeOptions } from './serve.js';
import { isGatewayError } from '../errors.js';
import type { TokenCreateOptions } from './token.js';
import { packageVersion } from '../package-root.js';
// Command modules are imported when their command runs, so `serve` starts without loading the
// others' dependencies (startup time is measured: docs/benchmarks.md).

function parsePort(value: string): number {
  const port = Number(value);
  if (!/^\d+$/.test(value) || port > 65535) throw new InvalidArgumentError('expected a port number from 0 to 65535');
  return port;
}

/** Builds the commander program (exported for tests; `main` runs it). */
export function createProgram(): Command {
  const program = new Command('switchboard')
    .description('An MCP gateway: one URL for many MCP servers, secured, metered and observed.')
    .version(packageVersion(), '-v, --version', 'print the version')
    .showHelpAfterError('(run "switchboard help" for usage)');

  program
    .command('serve')
    .description('run the gateway (default config: SWITCHBOARD_CONFIG, else the bundled examples/switchboard.yaml)')
    .option('-c, --config <file>', 'configuration file (.yaml, .yml, .json or .toml)')
    .option('--host <host>', 'bind address, overrides listen.host (default 127.0.0.1)')
    .option('--port <port>', 'TCP port, overrides listen.port (default 8080)', parsePort)
    .option('--insecure', 'allow binding beyond loopback without inbound authentication')
    .addOption(
      new Option(
        '--log-level <level>',
        'log level (default SWITCHBOARD_LOG_LEVEL, else logging.level, else info)',
      ).choices(LOG_LEVELS),
    )
    .addOption(
      new Option(
        '--log-format <format>',
        'json lines, or readable lines (default: pretty on a terminal, else json)',
      ).choices(['json', 'pretty']),
    )
    .addHelpText(
      'after',
      `
Examples:
  $ switchboard serve                                  # the bundled example config on 127.0.0.1:8080
  $ switchboard serve -c switchboard.yaml --port 9000
  $ switchboard serve -c switchboard.yaml --log-level debug --log-format pretty
  $ SWITCHBOARD_SECRET=… SWITCHBOARD_DATABASE_URL=postgres://… switchboard serve -c prod.yaml --host 0.0.0.0`,
    )
    .action(async (opts: ServeOptions) => {
      const { runServe } = await import('./serve.js');
      process.exitCode = await runServe(opts);
    });

  program
    .command('status')
    .description("show a running gateway's state: each server's state and last error, and the stores (GET /readyz)")
    .option('--url <url>', `gateway base URL (default SWITCHBOARD_URL, else http://127.0.0.1:8080)`)
    .option('--json', 'print the /readyz report as JSON')
    .addHelpText(
      'after',
      `
Exit code: 0 ready, 1 not ready (starting, draining, a server or store down), 2 unreachable.

Examples:
  $ switchboard status
  $ switchboard status --url http://gateway.internal:8080 --json`,
    )
    .action(async (opts: { url?: string; json?: boolean }) => {
      process.exitCode = await (await import('./status.js')).runStatus(opts);
    });

  program
    .command('connect')
    .description("add the gateway to an MCP client's configuration file (dry run unless --write)")
    .addArgument(new Argument('<client>', 'the client').choices(['claude-desktop', 'claude-code', 'cursor', 'vscode']))
    .option('--url <url>', "the gateway's MCP URL (default http://127.0.0.1:8080/mcp)")
    .option('--name <name>', 'the entry name in the client file (default switchboard)')
    .option('--token <token>', 'API token sent as Authorization: Bearer (written into the file in clear)')
    .option('--file <path>', "the client's configuration file (default: its usual location)")
    .option('--write', 'write the file (a backup of the old one is kept next to it)')
    .option('-f, --force', 'replace an existing entry of that name')
    .addHelpText(
      'after',
      `
Files: claude-desktop: claude_desktop_config.json in the app's folder (runs "switchboard stdio");
       claude-code: ./.mcp.json; cursor: ~/.cursor/mcp.json; vscode: ./.vscode/mcp.json.

Examples:
  $ switchboard connect cursor                                   # print what would be written
  $ switchboard connect vscode --url http://127.0.0.1:8080/mcp --write
  $ switchboard connect claude-desktop --token "$SWITCHBOARD_TOKEN" --write`,
    )
    .action(async (client: string, opts: Record<string, unknown>) => {
      const { runConnect } = await import('./connect.js');
      process.exitCode = await runConnect({
        client: client as 'claude-desktop',
        url: opts.url as string | undefined,
        name: opts.name as string | undefined,
        token: opts.token as string | undefined,
        file: opts.file as string | undefined,
        write: opts.write as boolean | undefined,
        force: opts.force as boolean | undefined,
      });
    });

  program
    .command('check')
    .addHelpText('after', `\nExamples:\n  $ switchboard check\n  $ switchboard check -c switchboard.yaml`)
    .description('validate a configuration file and print every problem with its path; exit 1 on any')
    .option('-c, --config <file>', 'configuration file (default SWITCHBOARD_CONFIG, else the bundled example)')
    .action(async (opts: { config?: string }) => {
      process.exitCode = await (await import('./check.js')).runCheck(opts);
    });

  program
    .command('import')
    .addHelpText(
      'after',
      `\nExamples:\n  $ switchboard import ~/.cursor/mcp.json\n  $ switchboard import claude_desktop_config.json -o switchboard.yaml`,
    )
    .description('convert a Claude Desktop / Cursor / VS Code MCP config (JSON) to Switchboard YAML')
    .argument('<file>', 'client configuration, e.g. claude_desktop_config.json or .vscode/mcp.json')
    .option('-o, --output <file>', 'write the YAML to this .yaml/.yml file instead of stdout')
    .option('-f, --force', 'overwrite --output if it exists')
    .action(async (file: string, opts: { output?: string; force?: boolean }) => {
      process.exitCode = await (await import('./import.js')).runImport({ file, ...opts });
    });

  program
    .command('migrate')
    .addHelpText(
      'after',
      `\nExamples:\n  $ switchboard migrate -c switchboard.yaml\n  $ SWITCHBOARD_DATABASE_URL=postgres://… switchboard migrate`,
    )
    .description('apply pending database migrations (serve also does this on start)')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .option('--database-url <url>', 'database to migrate (default SWITCHBOARD_DATABASE_URL, else the data directory)')
    .action(async (opts: { config?: string; databaseUrl?: string }) => {
      process.exitCode = await (await import('./migrate.js')).runMigrate(opts);
    });

  program
    .command('usage')
    .description('print API-token usage: a summary for one token, or a time series')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .option('--token-id <id>', 'one token, by id: its summary (or filter the series with --group-by)')
    .addOption(new Option('--token <id>', 'former name of --token-id').hideHelp())
    .option('--days <n>', 'look back this many days (default 7)')
    .option('--group-by <what>', 'server, tool or token')
    .option('--bucket <size>', 'minute, hour or day')
    .option('--json', 'print JSON')
    .addHelpText(
      'after',
      `
Examples:
  $ switchboard usage --days 30 --group-by tool
  $ switchboard usage --token-id 3f0c2a9e-5b1d-4c8e-9a7f-2d6b1e4c8a10
  $ switchboard usage --group-by token --bucket day --json`,
    )
    .action(async (opts: Record<string, string | boolean | undefined>) => {
      const { runUsage } = await import('./usage.js');
      // --token means a token secret elsewhere (tunnel); here it was an id: --token-id.
      if (opts.token !== undefined) process.stderr.write('switchboard usage: --token is now --token-id\n');
      const { tokenId, ...rest } = opts;
      process.exitCode = await runUsage({ ...rest, ...(typeof tokenId === 'string' ? { token: tokenId } : {}) });
    });

  const token = program.command('token').description('manage API tokens in the configured database');
  token
    .command('create')
    .addHelpText(
      'after',
      `\nExamples:\n  $ switchboard token create --name ci --permissions servers.use,tools.execute --expires 30d\n  $ switchboard token create --name alice --servers github --tools 'github__*' --json\n  $ switchboard token create --name ops --permissions 'admin.*'`,
    )
    .description('create an API token and print it once')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .requiredOption('--name <name>', 'label of the token')
    .option('--subject <subject>', 'principal the token acts as (default: the name)')
    .option('--servers <list>', 'comma-separated server names it may reach (default: all)')
    .option('--tools <globs>', 'comma-separated tool-name globs it may call (default: all)')
    .option('--permissions <list>', 'comma-separated permissions (default servers.use,tools.execute; e.g. admin.*)')
    .option('--expires <duration>', 'lifetime such as 12h or 30d (default: never)')
    .option('--json', 'print {"id","token","jti","expiresAt"} as JSON')
    .action(async (opts: TokenCreateOptions) => {
      process.exitCode = await (await import('./token.js')).runTokenCreate(opts);
    });
  token
    .command('list')
    .addHelpText('after', `\nExamples:\n  $ switchboard token list\n  $ switchboard token list --json`)
    .description('list API tokens (never the token strings)')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      process.exitCode = await (await import('./token.js')).runTokenList(opts);
    });
  token
    .command('revoke')
    .addHelpText('after', `\nExamples:\n  $ switchboard token revoke 3f0c2a9e-5b1d-4c8e-9a7f-2d6b1e4c8a10`)
    .description('revoke an API token by id and every token minted from it (takes effect at once)')
    .argument('<id>', 'token id')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .action(async (id: string, opts: { config?: string }) => {
      process.exitCode = await (await import('./token.js')).runTokenRevoke({ ...opts, id });
    });

  const server = program
    .command('server')
    .description('runtime servers in the configured database (what PUT /api/v1/servers writes)');
  const collect = (value: string, previous: string[] = []) => [...previous, value];
  server
    .command('add')
    .description('add a runtime server: a stdio command or a remote URL')
    .argument('<name>', 'server name')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .option('--command <cmd>', 'stdio server: the program to run')
    .option('--arg <value>', 'an argument of --command (repeat for several)', collect)
    .option('--url <url>', 'remote server: its Streamable HTTP URL')
    .addOption(new Option('--transport <kind>', 'remote transport').choices(['streamable-http', 'sse']))
    .option('--description <text>', 'free text shown in the admin API')
    .option('--json <entry>', 'the whole entry as JSON, as under servers: in the file (flags are merged over it)')
    .option('-f, --force', 'replace a runtime server of the same name')
    .addHelpText(
      'after',
      `
Examples:
  $ switchboard server add files --command npx --arg -y --arg @modelcontextprotocol/server-filesystem --arg /srv/data
  $ switchboard server add search --url https://mcp.example.com/mcp --description "web search"
  $ switchboard server add gh --json '{"url":"https://api.githubcopilot.com/mcp/","auth":{"type":"bearer","token":"\${GH_TOKEN}"}}'`,
    )
    .action(async (name: string, opts: Record<string, unknown>) => {
      const { runServerAdd } = await import('./server.js');
      process.exitCode = await runServerAdd({
        name,
        config: opts.config as string | undefined,
        command: opts.command as string | undefined,
        args: opts.arg as string[] | undefined,
        url: opts.url as string | undefined,
        transport: opts.transport as 'streamable-http' | 'sse' | undefined,
        description: opts.description as string | undefined,
        json: opts.json as string | undefined,
        force: opts.force as boolean | undefined,
      });
    });
  server
    .command('list')
    .addHelpText('after', `\nExamples:\n  $ switchboard server list\n  $ switchboard server list --json`)
    .description('list the runtime servers (name, enabled, target, description)')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      process.exitCode = await (await import('./server.js')).runServerList(opts);
    });
  server
    .command('remove')
    .addHelpText('after', `\nExamples:\n  $ switchboard server remove files`)
    .description('remove a runtime server')
    .argument('<name>', 'server name')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .action(async (name: string, opts: { config?: string }) => {
      process.exitCode = await (await import('./server.js')).runServerRemove({ ...opts, name });
    });
  for (const [verb, enabled] of [
    ['enable', true],
    ['disable', false],
  ] as const) {
    server
      .command(verb)
      .description(`${verb} a runtime server (a disabled one stays stored but is not started)`)
      .addHelpText('after', `\nExamples:\n  $ switchboard server ${verb} files -c switchboard.yaml`)
      .argument('<name>', 'server name')
      .option('-c, --config <file>', 'configuration file (finds the database)')
      .action(async (name: string, opts: { config?: string }) => {
        process.exitCode = await (await import('./server.js')).runServerSetEnabled({ ...opts, name, enabled });
      });
  }

  const tools = program.command('tools').description('tool definition pins of pinTools guardrails');
  tools
    .command('approve')
    .addHelpText(
      'after',
      `\nExamples:\n  $ switchboard tools approve github\n  $ switchboard tools approve github --tool create_issue`,
    )
    .description("accept the current definitions of a server's changed tools (pinTools guardrails)")
    .argument('<server>', 'server name')
    .option('--tool <name>', "only this tool (the upstream's own name)")
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .action(async (server: string, opts: { tool?: string; config?: string }) => {
      process.exitCode = await (await import('./tools.js')).runToolsApprove({ ...opts, server });
    });
  tools
    .command('pins')
    .addHelpText('after', `\nExamples:\n  $ switchboard tools pins\n  $ switchboard tools pins --server github --json`)
    .description('list tool pins and whether each definition changed since pinned')
    .option('--server <name>', "only this server's pins")
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .option('--json', 'print JSON')
    .action(async (opts: { server?: string; config?: string; json?: boolean }) => {
      process.exitCode = await (await import('./tools.js')).runToolsPins(opts);
    });

  const identity = program
    .command('identity')
    .description('the signing key of identity assertions sent to upstreams (identityHeaders)');
  identity
    .command('rotate')
    .addHelpText('after', `\nExamples:\n  $ switchboard identity rotate\n  $ switchboard identity rotate --keep 2h`)
    .description('replace the signing key; the old one stays in the JWKS for --keep')
    .option('--keep <duration>', 'how long the old public key stays published (default 1d)')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .action(async (opts: { keep?: string; config?: string }) => {
      process.exitCode = await (await import('./identity.js')).runIdentityRotate(opts);
    });
  identity
    .command('show')
    .addHelpText('after', `\nExamples:\n  $ switchboard identity show\n  $ switchboard identity show --json`)
    .description('print the signing key id and the retired keys still published')
    .option('-c, --config <file>', 'configuration file (finds the database)')
    .option('--json', 'print JSON')
    .action(async (opts: { config?: string; json?: boolean }) => {
      process.exitCode = await (await import('./identity.js')).runIdentityShow(opts);
    });

  program
    .command('tunnel')
    .addHelpText(
      'after',
      `\nExamples:\n  $ SWITCHBOARD_TOKEN=swb_… switchboard tunnel --gateway https://gw.example.com -- npx -y @modelcontextprotocol/server-everything\n  $ switchboard tunnel --gateway http://127.0.0.1:8080 --name files -- node files-server.js`,
    )
    .description('connect a local stdio MCP server to a gateway through a reverse tunnel (docs/tunnel.md)')
    .requiredOption('--gateway <url>', 'gateway base URL, e.g. http://127.0.0.1:8080 (ws:// and wss:// also accepted)')
    .option('--token <token>', 'API token with servers.manage (default SWITCHBOARD_TOKEN)')
    .option('--name <name>', "server name in the gateway (default: the server's serverInfo.name)")
    .option(
      '--max-retries <n>',
      'consecutive failed connection attempts before exiting (default unlimited)',
      (v: string) => {
        if (!/^\d+$/.test(v)) throw new InvalidArgumentError('expected a whole number');
        return Number(v);
      },
    )
    .argument('<command...>', 'the local MCP server and its arguments, after --')
    .action(
      async (command: string[], opts: { gateway: string; token?: string; name?: string; maxRetries?: number }) => {
        process.exitCode = await (await import('./tunnel.js')).runTunnel({ ...opts, command });
      },
    );

  program
    .command('stdio')
    .description('bridge an MCP client that launches local commands (stdio) to a gateway URL (docs/clients.md)')
    .requiredOption('--url <url>', 'gateway MCP endpoint, e.g. http://127.0.0.1:8080/mcp or …/mcp/{virtual}')
    .option(
      '--token <token>',
      'API token sent as Authorization: Bearer (default SWITCHBOARD_TOKEN; on the command line it shows in ps)',
    )
    .addHelpText(
      'after',
      [
        '',
        'Examples:',
        '  $ SWITCHBOARD_TOKEN=swb_… switchboard stdio --url http://127.0.0.1:8080/mcp',
        '  $ switchboard stdio --url https://gateway.example.com/mcp/dev-tools',
        '  $ switchboard stdio --url http://127.0.0.1:8080/servers/github/mcp',
        '',
        'stdin/stdout carry JSON-RPC only; messages about the gateway (401, 404, unreachable) go to',
        'stderr. The command exits 0 when stdin ends, after ending the gateway session.',
      ].join('\n'),
    )
    .action(async (opts: { url: string; token?: string }) => {
      const code = await (await import('./stdio-bridge.js')).runStdioBridge(opts);
      process.exitCode = code;
      // Idle keep-alive sockets must not hold the process open once stdin has ended.
      setTimeout(() => process.exit(code), 1000).unref();
    });

  return program;
}

/** Runs the CLI with `argv` (default `process.argv`); unexpected errors print and exit 1. */
export async function main(argv: readonly string[] = process.argv): Promise<void> {
  try {
    await createProgram().parseAsync([...argv]);
  } catch (e) {
    const message = isGatewayError(e)
      ? `${e.code}: ${e.message}`
      : e instanceof Error
        ? (e.stack ?? e.message)
        : String(e);
    process.stderr.write(`error: ${message}\n`);
    process.exitCode = 1;
  }
}

await main();
