/**
 * The environment of stdio children, end to end: server-everything's `get-env` tool prints its
 * whole environment, called through the gateway by an MCP client. The gateway's own secrets and
 * the credentials interpolated for other servers must not be in it.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import type { RunningGateway } from '../../../src/app.js';
import { parseConfigText } from '../../../src/config/load.js';
import { connectClient, EVERYTHING_ENTRY, startTestGatewayWith } from '../../helpers/gateway.js';

const SECRET = 'gateway-signing-secret-0123456789abcdef';
const PAT = 'ghp_pat-of-another-server-0123456789';
const OWN = 'own-token-of-everything';
const UNRELATED = 'a-variable-nobody-asked-for';
const VARS = {
  SWITCHBOARD_SECRET: SECRET,
  SWB_TEST_GITHUB_PAT: PAT,
  SWB_TEST_OWN: OWN,
  SWB_TEST_UNRELATED: UNRELATED,
};

/** YAML for server-everything (with `extra` lines) beside a remote server whose header reads the PAT. */
function configText(extra: string): string {
  return `
listen: { host: 127.0.0.1, port: 0 }
servers:
  everything:
    command: ${JSON.stringify(process.execPath)}
    args: [${JSON.stringify(EVERYTHING_ENTRY)}, stdio]
    env:
      OWN_TOKEN: \${SWB_TEST_OWN}
${extra}
  github:
    url: http://127.0.0.1:9/mcp
    headers:
      Authorization: Bearer \${SWB_TEST_GITHUB_PAT}
`;
}

describe('stdio child environment', () => {
  const saved: Record<string, string | undefined> = {};
  let gw: RunningGateway | undefined;
  let client: Client | undefined;

  beforeAll(() => {
    for (const [k, v] of Object.entries(VARS)) {
      saved[k] = process.env[k];
      process.env[k] = v;
    }
  });
  afterAll(() => {
    for (const [k, v] of Object.entries(saved)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
  });
  afterEach(async () => {
    await client?.close();
    await gw?.close();
    client = undefined;
    gw = undefined;
  });

  /** Starts the gateway from YAML text and returns the environment `get-env` reports. */
  async function childEnv(extra: string): Promise<Record<string, string>> {
    gw = await startTestGatewayWith(parseConfigText(configText(extra)));
    ({ client } = await connectClient(`${gw.url}/mcp`));
    const result = await client.callTool({ name: 'everything__get-env', arguments: {} });
    const content = result.content as Array<{ type: string; text: string }>;
    expect(content[0]?.type).toBe('text');
    return JSON.parse(content[0]!.text) as Record<string, string>;
  }

  function expectNoSecrets(env: Record<string, string>): void {
    expect(env.SWITCHBOARD_SECRET).toBeUndefined();
    expect(env.SWB_TEST_GITHUB_PAT).toBeUndefined();
    const values = Object.values(env);
    expect(values).not.toContain(SECRET);
    expect(values.filter((v) => v.includes(PAT))).toEqual([]);
  }

  it('passes the minimal allowlist and the server’s own interpolated env, nothing else', async () => {
    const env = await childEnv('');
    expectNoSecrets(env);
    expect(env.OWN_TOKEN).toBe(OWN);
    expect(env.PATH).toBe(process.env.PATH);
    expect(env.SWB_TEST_UNRELATED).toBeUndefined();
  });

  it('never passes SWITCHBOARD_* or another server’s interpolated variable, even with inheritEnv: ["*"]', async () => {
    const env = await childEnv(`    inheritEnv: ['*', SWITCHBOARD_SECRET, SWB_TEST_GITHUB_PAT]`);
    expectNoSecrets(env);
    expect(env.OWN_TOKEN).toBe(OWN);
    expect(env.SWB_TEST_UNRELATED).toBe(UNRELATED);
  });
});
