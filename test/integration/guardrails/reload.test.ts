/**
 * Guardrails and hot reload: no guardrails means no stage at all; a reload adds, changes and
 * removes guardrails on a running gateway, and a reload that adds pinTools pins the catalogs
 * already loaded.
 */
import { resolve } from 'node:path';
import { McpError } from '@modelcontextprotocol/sdk/types.js';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { EMPTY_PIPELINE } from '../../../src/pipeline/stage.js';
import { buildConfig, connectClient, startTestGateway } from '../../helpers/gateway.js';

const ECHO_FIXTURE = resolve(import.meta.dirname, '../../fixtures/echo-server.mjs');
const SERVERS = { echo: { command: process.execPath, args: [ECHO_FIXTURE] } };

let gw: RunningGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function echo(url: string, message: string): Promise<string | McpError> {
  const { client } = await connectClient(`${url}/mcp`);
  try {
    const r = (await client.callTool({ name: 'echo__echo', arguments: { message } })) as {
      content: Array<{ text: string }>;
    };
    return r.content[0]!.text;
  } catch (err) {
    if (err instanceof McpError) return err;
    throw err;
  } finally {
    await client.close();
  }
}

describe('guardrails and reload', () => {
  it('adds no stage without guardrails, and applies added, changed and removed guardrails on reload', async () => {
    gw = await startTestGateway({ servers: SERVERS });
    expect(gw.gateway.pipeline).toBe(EMPTY_PIPELINE);
    expect(await echo(gw.url, 'stop')).toBe('Echo: stop');

    await gw.reload(
      buildConfig({ servers: SERVERS, guardrails: [{ name: 'no-stop', deny: 'mcp.arguments.message == "stop"' }] }),
    );
    expect(gw.gateway.pipeline.stages.map((s) => s.name)).toEqual(['guardrail:no-stop']);
    const refused = await echo(gw.url, 'stop');
    expect(refused).toBeInstanceOf(McpError);
    expect((refused as McpError).data).toMatchObject({ guardrail: 'no-stop' });

    await gw.reload(
      buildConfig({ servers: SERVERS, guardrails: [{ name: 'no-go', deny: 'mcp.arguments.message == "go"' }] }),
    );
    expect(await echo(gw.url, 'stop')).toBe('Echo: stop');
    expect(((await echo(gw.url, 'go')) as McpError).data).toMatchObject({ guardrail: 'no-go' });

    await gw.reload(buildConfig({ servers: SERVERS }));
    expect(gw.gateway.pipeline).toBe(EMPTY_PIPELINE);
    expect(gw.gateway.onToolCatalog).toBeUndefined();
    expect(await echo(gw.url, 'go')).toBe('Echo: go');
  });

  it('pins the catalogs already loaded when a reload adds pinTools', async () => {
    gw = await startTestGateway({ servers: SERVERS });
    expect(gw.toolPins()).toBeUndefined();
    await gw.reload(buildConfig({ servers: SERVERS, guardrails: [{ name: 'pins', pinTools: 'block' }] }));
    const pins = gw.toolPins();
    await pins?.settled();
    expect((await gw.database.toolPins!.list()).map((p) => `${p.server}/${p.tool}`)).toEqual([
      'echo/echo',
      'echo/ping',
    ]);
    expect(await echo(gw.url, 'hi')).toBe('Echo: hi');
  });
});
