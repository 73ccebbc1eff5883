/**
 * The `start` and `idleStop` keys of server entries: `start: lazy` with an optional `idleStop`
 * on a shared stdio server loads; on a URL server, with `session`/`user` isolation, or an
 * `idleStop` without `start: lazy`, the configuration is refused with an issue at that key.
 */
import { describe, expect, it } from 'vitest';
import { ConfigError, parseConfigText } from '../../../src/config/load.js';
import { isStdioServer, type ServerConfig } from '../../../src/config/schema.js';

function issuesOf(text: string): Array<{ path: string; message: string }> {
  try {
    parseConfigText(text);
  } catch (e) {
    if (e instanceof ConfigError) return e.issues.map((i) => ({ path: i.path, message: i.message }));
    throw e;
  }
  throw new Error('expected a ConfigError');
}

function stdio(server: ServerConfig | undefined) {
  if (server === undefined || !isStdioServer(server)) throw new Error('expected a stdio server');
  return server;
}

describe('start: eager | lazy', () => {
  it('loads the servers of a configuration with start: lazy, idleStop optional, eager by default', () => {
    const config = parseConfigText(`
servers:
  echo: {command: node, args: [echo.mjs]}
  everything: {command: npx, args: ["-y", "@modelcontextprotocol/server-everything"]}
  many: {command: node, args: [many-tools.mjs]}
  big: {command: node, args: [big.mjs], start: lazy}     # eager (default) | lazy; idleStop: 10m optional
  bigger: {command: node, args: [big.mjs], start: lazy, idleStop: 90s}
`);
    expect(stdio(config.servers.echo).start).toBe('eager');
    expect(stdio(config.servers.big).start).toBe('lazy');
    expect(stdio(config.servers.big).idleStop).toBeUndefined();
    expect(stdio(config.servers.bigger).idleStop).toBe(90_000);
  });

  it('refuses start: lazy on a URL server, naming the key', () => {
    const issues = issuesOf(`
servers:
  remote: {url: "https://mcp.example.com/mcp", start: lazy}
`);
    expect(issues).toEqual([{ path: 'servers.remote.start', message: expect.stringMatching(/stdio/) as string }]);
  });

  it('refuses start: lazy with session isolation', () => {
    expect(
      issuesOf(`
servers:
  big: {command: node, start: lazy, isolation: session}
`),
    ).toEqual([expect.objectContaining({ path: 'servers.big.start' })]);
  });

  it('refuses idleStop on an eager server and a start word it does not know', () => {
    expect(
      issuesOf(`
servers:
  big: {command: node, idleStop: 5m}
`),
    ).toEqual([expect.objectContaining({ path: 'servers.big.idleStop' })]);
    expect(
      issuesOf(`
servers:
  big: {command: node, start: later}
`)[0]?.path,
    ).toBe('servers.big.start');
  });
});
