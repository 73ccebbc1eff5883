import { describe, expect, it } from 'vitest';
import { ANONYMOUS } from '../../../src/auth/principal.js';
import { View, type ViewKind, type ViewMember } from '../../../src/gateway/view.js';
import { discoverResult } from '../../../src/http/modern.js';
import type { JsonObject } from '../../../src/protocol/jsonrpc.js';
import type { Upstream } from '../../../src/upstream/upstream.js';

const TASKS = 'io.modelcontextprotocol/tasks';

function member(name: string, capabilities: JsonObject): ViewMember {
  const upstream = {
    name,
    catalogVersion: 0,
    capabilities,
    initializeResult: { capabilities, serverInfo: { name: `up-${name}`, version: '2' } },
    catalog: { tools: [], prompts: [], resources: [], resourceTemplates: [] },
  } as unknown as Upstream;
  const pass = (n: string) => n;
  return { upstream, tools: pass, prompts: pass, resources: pass };
}

function view(kind: ViewKind, ...members: ViewMember[]): View {
  return new View({ name: 'default', kind, members, separator: '__', gatewayVersion: '1' });
}

describe('server/discover on a view', () => {
  it('lists 2026-07-28 first, then every 2025-era version, whatever era the members speak', () => {
    const result = discoverResult(view('aggregate', member('a', { tools: {} })), ANONYMOUS);
    expect(result.supportedVersions).toEqual(['2026-07-28', '2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05']);
  });

  it('gives an aggregate the merged capabilities: the tasks extension when a member declares it', () => {
    const agg = view(
      'aggregate',
      member('a', { tools: {}, resources: { subscribe: true }, extensions: { [TASKS]: {} } }),
      member('b', { tools: {}, resources: {}, completions: {} }),
    );
    expect(discoverResult(agg, ANONYMOUS).capabilities).toEqual({
      tools: { listChanged: true },
      resources: { listChanged: true },
      completions: {},
      extensions: { [TASKS]: {} },
    });
    // The same capabilities as initialize gives.
    expect(discoverResult(agg, ANONYMOUS).capabilities).toEqual(agg.initializeResult().capabilities);
  });

  it('mirrors a single server’s capabilities, its extensions included', () => {
    const caps = { tools: {}, extensions: { [TASKS]: {}, 'example.com/other': { x: 1 } } };
    expect(discoverResult(view('single', member('a', caps)), ANONYMOUS).capabilities).toEqual(caps);
  });
});
