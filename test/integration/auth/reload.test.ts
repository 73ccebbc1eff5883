/**
 * Hot reload applies the `auth` section too: switching `auth.mode` on a running
 * gateway changes who is let in without a restart.
 */
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { buildConfig, startTestGateway } from '../../helpers/gateway.js';
import { post } from '../../helpers/raw.js';

const ODD = fileURLToPath(new URL('../../fixtures/odd-server.mjs', import.meta.url));
const servers = { odd: { command: process.execPath, args: [ODD] } };
const INIT = {
  jsonrpc: '2.0',
  id: 1,
  method: 'initialize',
  params: { protocolVersion: '2025-06-18', capabilities: {}, clientInfo: { name: 'x', version: '1' } },
};

describe('reloading auth', () => {
  it('requires a token after auth.mode changes from none to tokens, and not after it changes back', async () => {
    const gw = await startTestGateway({ servers });
    try {
      const open = await post(`${gw.url}/mcp`, INIT);
      expect(open.status).toBe(200);
      await open.text();
      await gw.reload(buildConfig({ auth: { mode: 'tokens' }, servers }));
      expect((await post(`${gw.url}/mcp`, INIT)).status).toBe(401);
      const { token } = await gw.tokens.create({ name: 'x', subject: 'x', permissions: ['servers.use'] });
      const ok = await post(`${gw.url}/mcp`, INIT, { authorization: `Bearer ${token}` });
      expect(ok.status).toBe(200);
      await ok.text();
      await gw.reload(buildConfig({ servers }));
      const again = await post(`${gw.url}/mcp`, INIT);
      expect(again.status).toBe(200);
      await again.text();
    } finally {
      await gw.close();
    }
  });
});
