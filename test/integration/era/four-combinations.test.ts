/**
 * Elicitation in all four era combinations, with two clients calling at the same time: each
 * answer must reach exactly the client whose call caused the request, and come back to that
 * call. Upstreams: the SDK v2 fixture, modern-only (talked to in 2026-07-28) and dual-era pinned
 * to `protocol: legacy` (talked to in the 2025 era). Clients: SDK v1 (2025 era) and SDK v2 pinned
 * to 2026-07-28.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Client as ClientV2, StreamableHTTPClientTransport as V2Transport } from '@modelcontextprotocol/client';
import { ElicitRequestSchema } from '@modelcontextprotocol/sdk/types.js';
import type { RunningGateway } from '../../../src/app.js';
import { startV2HttpServer } from '../../fixtures/v2-server.js';
import { connectClient, startTestGateway } from '../../helpers/gateway.js';

type Fixture = Awaited<ReturnType<typeof startV2HttpServer>>;

function text(result: unknown): string {
  const content = (result as { content?: Array<{ type: string; text?: string }> }).content ?? [];
  return content.map((c) => c.text ?? '').join('\n');
}

describe('elicitation in the four era combinations, two concurrent clients each', () => {
  let modernOnly: Fixture;
  let dual: Fixture;
  let gw: RunningGateway;
  const closers: Array<() => Promise<void>> = [];

  beforeAll(async () => {
    modernOnly = await startV2HttpServer({ legacy: 'reject' });
    dual = await startV2HttpServer({ legacy: 'serve' });
    gw = await startTestGateway({
      servers: {
        modern: { url: modernOnly.url, transport: 'streamable-http', protocol: 'modern' },
        legacy: { url: dual.url, transport: 'streamable-http', protocol: 'legacy' },
      },
    });
  });

  afterAll(async () => {
    await Promise.allSettled(closers.map((c) => c()));
    await gw?.close();
    await modernOnly?.close();
    await dual?.close();
  });

  /** A client of the given era whose elicitation handler answers with `who` as the username. */
  async function client(era: 'legacy' | 'modern', server: string, who: string) {
    const url = `${gw.url}/servers/${server}/mcp`;
    const answer = () => ({ action: 'accept' as const, content: { username: who, email: `${who}@example.com` } });
    const seen: string[] = [];
    if (era === 'legacy') {
      const { client: c } = await connectClient(url, { elicitation: {} }, `v1-${who}`);
      c.setRequestHandler(ElicitRequestSchema, async () => {
        seen.push(who);
        await new Promise((r) => setTimeout(r, 30));
        return answer();
      });
      closers.push(() => c.close());
      return {
        call: (args: Record<string, unknown>) => c.callTool({ name: 'test_elicitation', arguments: args }),
        seen,
      };
    }
    const c = new ClientV2(
      { name: `v2-${who}`, version: '1.0.0' },
      { capabilities: { elicitation: {} }, versionNegotiation: { mode: { pin: '2026-07-28' } } },
    );
    c.setRequestHandler('elicitation/create', async () => {
      seen.push(who);
      await new Promise((r) => setTimeout(r, 30));
      return answer();
    });
    await c.connect(new V2Transport(new URL(url)));
    closers.push(() => c.close());
    return { call: (args: Record<string, unknown>) => c.callTool({ name: 'test_elicitation', arguments: args }), seen };
  }

  it.each<['legacy' | 'modern', string]>([
    ['legacy', 'legacy'],
    ['legacy', 'modern'],
    ['modern', 'legacy'],
    ['modern', 'modern'],
  ])('a %s-era client in front of a %s-era upstream', async (clientEra, server) => {
    const [a, b] = await Promise.all([client(clientEra, server, 'ada'), client(clientEra, server, 'bob')]);
    const [ra, rb] = await Promise.all([a.call({ message: 'who are you?' }), b.call({ message: 'who are you?' })]);
    expect(text(ra)).toContain('"username":"ada"');
    expect(text(ra)).not.toContain('bob');
    expect(text(rb)).toContain('"username":"bob"');
    expect(text(rb)).not.toContain('ada');
    expect([a.seen, b.seen]).toEqual([['ada'], ['bob']]);
    // The era each upstream is talked to in.
    expect(gw.gateway.upstreams.get(server)!.era).toBe(server);
  });
});
