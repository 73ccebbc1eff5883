/**
 * The tool pins admin API without a running pin registry (no pinTools guardrail): it serves and
 * approves what the database holds; permissions and malformed requests.
 */
import { afterEach, describe, expect, it } from 'vitest';
import type { RunningGateway } from '../../../src/app.js';
import { startTestGateway } from '../../helpers/gateway.js';

let gw: RunningGateway | undefined;
afterEach(async () => {
  await gw?.close();
  gw = undefined;
});

async function token(g: RunningGateway, subject: string, permissions: string[]): Promise<string> {
  return (await g.tokens.create({ name: subject, subject, permissions, servers: [], tools: [] })).token;
}

describe('/api/v1/tools/pins', () => {
  it('lists and approves stored pins, admins only for approval, with 4xx for bad requests', async () => {
    gw = await startTestGateway({ auth: { mode: 'tokens' } });
    const pins = gw.database.toolPins!;
    await pins.pin('files', 'read', 'h1', 1);
    await pins.pin('files', 'write', 'w1', 1);
    await pins.pin('other', 'x', 'x1', 1);
    await pins.seen('files', 'read', 'h2', 2);
    const admin = { authorization: `Bearer ${await token(gw, 'root', ['admin.*'])}` };
    const user = { authorization: `Bearer ${await token(gw, 'alice', ['servers.use'])}` };
    const nobody = { authorization: `Bearer ${await token(gw, 'bob', ['tools.execute'])}` };
    const base = `${gw.url}/api/v1/tools/pins`;

    const listed = (await (await fetch(`${base}?server=files`, { headers: user })).json()) as {
      pins: Array<{ tool: string; status: string; changedHash?: string }>;
    };
    expect(listed.pins.map((p) => [p.tool, p.status, p.changedHash])).toEqual([
      ['read', 'changed', 'h2'],
      ['write', 'pinned', undefined],
    ]);
    expect((await fetch(base, { headers: nobody })).status).toBe(403);
    expect((await fetch(base)).status).toBe(401);
    expect((await fetch(base, { method: 'POST', headers: admin })).status).toBe(405);
    expect((await fetch(`${base}/files`, { method: 'POST', headers: admin })).status).toBe(404);
    expect((await fetch(`${base}/files/approve`, { headers: admin })).status).toBe(405);
    const badTool = await fetch(`${base}/files/approve`, {
      method: 'POST',
      headers: { ...admin, 'content-type': 'application/json' },
      body: JSON.stringify({ tool: 5 }),
    });
    expect(badTool.status).toBe(400);
    expect((await fetch(`${base}/files/approve`, { method: 'POST', headers: user })).status).toBe(403);

    const approved = await fetch(`${base}/files/approve?tool=read`, { method: 'POST', headers: admin });
    expect(await approved.json()).toEqual({ server: 'files', approved: ['read'] });
    const again = await fetch(`${base}/files/approve`, { method: 'POST', headers: admin });
    expect(await again.json()).toEqual({ server: 'files', approved: [] });
    expect((await pins.list('files')).map((p) => [p.tool, p.hash, p.approvedBy])).toEqual([
      ['read', 'h2', 'token:root'],
      ['write', 'w1', undefined],
    ]);
  });
});
