/**
 * A permission that names nothing the gateway checks (a typo such as `tools.exec`) is refused
 * with the valid ones — by `switchboard token create`, by `POST /api/v1/tokens` and in
 * `auth.roles` — instead of silently granting nothing.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { runTokenCreate } from '../../../src/cli/token.js';
import { isKnownPermission, KNOWN_PERMISSIONS } from '../../../src/config/schema/auth.js';
import { parseConfigText } from '../../../src/config/load.js';
import { startTestGateway } from '../../helpers/gateway.js';

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  for (const c of cleanups.reverse()) await c();
  cleanups.length = 0;
});

describe('unknown permissions', () => {
  it('knows the permissions the gateway checks, and wildcards that cover one', () => {
    for (const p of [...KNOWN_PERMISSIONS, '*', 'tools.*', 'servers.*', '*.use', 'admin.*'])
      expect(isKnownPermission(p), p).toBe(true);
    for (const p of ['tools.exec', 'tool.execute', 'servers', 'admin', 'foo.*', '*.bar', 'servers.use.x'])
      expect(isKnownPermission(p), p).toBe(false);
  });

  it('are refused by switchboard token create, naming the valid ones', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'swb-permissions-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const config = join(dir, 'switchboard.yaml');
    await writeFile(config, 'servers: {}\n');
    const err: string[] = [];
    const output = { out: () => undefined, err: (l: string) => err.push(l) };
    expect(await runTokenCreate({ config, name: 'ci', permissions: 'servers.use,tools.exec' }, output)).toBe(1);
    expect(err.join('\n')).toContain('unknown permission "tools.exec"; valid: servers.use, tools.execute');
    expect(await runTokenCreate({ config, name: 'ci', permissions: 'tools.*', json: true }, output)).toBe(0);
  });

  it('are refused by POST /api/v1/tokens with 400', async () => {
    const gw: RunningGateway = await startTestGateway({ auth: { mode: 'tokens' } });
    cleanups.push(() => gw.close());
    const admin = (await gw.tokens.create({ name: 'root', subject: 'root', permissions: ['admin.*'] })).token;
    const post = (permissions: string[]) =>
      fetch(`${gw.url}/api/v1/tokens`, {
        method: 'POST',
        headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
        body: JSON.stringify({ name: 'x', permissions }),
      });
    const refused = await post(['tools.exec']);
    expect(refused.status).toBe(400);
    expect(((await refused.json()) as { error: { message: string } }).error.message).toContain(
      'unknown permission "tools.exec"; valid:',
    );
    const ok = await post(['tools.execute']);
    expect(ok.status).toBe(201);
  });

  it('are a configuration error in auth.roles', () => {
    expect(() => parseConfigText('auth:\n  roles:\n    ops: [servers.use, server.manage]\n')).toThrow(
      /unknown permission "server.manage"; valid:/,
    );
  });
});
