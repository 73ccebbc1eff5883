import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../../src/errors.js';
import type { JsonObject } from '../../../src/protocol/jsonrpc.js';
import { indexOf, searchArguments, searchResult, ToolIndex, unwrapCallTool } from '../../../src/gateway/tool-search.js';

const tool = (name: string, description: string, props: string[] = []): JsonObject => ({
  name,
  description,
  inputSchema: { type: 'object', properties: Object.fromEntries(props.map((p) => [p, { type: 'string' }])) },
});

const TOOLS = [
  tool('mail_send_message', 'Sends a message to someone.', ['to', 'subject', 'body']),
  tool('get-sum', 'Returns the sum of two numbers', ['a', 'b']),
  tool('listFiles', 'Lists the entries of a folder.', ['path']),
  tool('github__create_issue', 'Opens a ticket in a repository.', ['repo', 'title']),
  tool('notes_write', 'Writes a note; mentions files in passing.', ['text']),
  tool('calendar_add_event', 'Adds an event to the calendar.', ['start', 'end']),
];

const names = (index: ToolIndex, query: string, limit = 10): string[] => index.search(query, limit).map((m) => m.name);

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return isGatewayError(e) ? e.code : 'not a GatewayError';
  }
  return undefined;
}

describe('ToolIndex', () => {
  const index = new ToolIndex(TOOLS);

  it('splits names at separators and camelCase', () => {
    expect(names(index, 'files')[0]).toBe('listFiles');
    expect(names(index, 'issue')).toEqual(['github__create_issue']);
    expect(names(index, 'sum')[0]).toBe('get-sum');
  });

  it('weights a word in the name above the same word in a description', () => {
    expect(names(index, 'files')).toEqual(['listFiles', 'notes_write']);
  });

  it('finds tools by the names of their arguments', () => {
    expect(names(index, 'repo')).toEqual(['github__create_issue']);
  });

  it('tolerates one typo in a long word but none in a short one', () => {
    expect(names(index, 'calender')).toEqual(['calendar_add_event']);
    // "two" with a typo would be "to", an argument of mail_send_message.
    expect(names(index, 'two')).toEqual(['get-sum']);
  });

  it('returns matches best first, at most limit, with name, description, input schema and score', () => {
    const matches = index.search('add two numbers', 1);
    expect(matches).toEqual([
      {
        name: 'get-sum',
        description: 'Returns the sum of two numbers',
        inputSchema: TOOLS[1]!.inputSchema,
        score: expect.any(Number) as number,
      },
    ]);
    const all = index.search('a the of', 10).map((m) => m.score);
    expect([...all].sort((x, y) => y - x)).toEqual(all);
  });

  it('returns only the tools the filter allows', () => {
    const hidden = TOOLS[1]!;
    expect(index.search('sum', 10, (t) => t !== hidden).map((m) => m.name)).not.toContain('get-sum');
  });

  it('keeps one index per list array, so a rebuilt list gets a new one', () => {
    expect(indexOf(TOOLS)).toBe(indexOf(TOOLS));
    const next = [...TOOLS, tool('quantum_flux', 'Charges it.')];
    expect(indexOf(next)).not.toBe(indexOf(TOOLS));
    expect(names(indexOf(next), 'quantum')).toEqual(['quantum_flux']);
  });
});

describe('search_tools and call_tool arguments', () => {
  it('defaults limit to 10 and refuses bad queries and limits', () => {
    expect(searchArguments({ name: 'search_tools', arguments: { query: 'x' } })).toEqual({ query: 'x', limit: 10 });
    for (const args of [
      {},
      { query: '' },
      { query: 'x'.repeat(1001) },
      { query: 'x', limit: 0 },
      { query: 'x', limit: 1.5 },
    ])
      expect(codeOf(() => searchArguments({ arguments: args }))).toBe('SWB_ERR_PROTOCOL_INVALID_PARAMS');
  });

  it('gives the matches as JSON text and structured content', () => {
    const r = searchResult([{ name: 't', inputSchema: { type: 'object' }, score: 1 }]);
    expect(JSON.parse((r.content as Array<{ text: string }>)[0]!.text)).toEqual(r.structuredContent);
  });

  it('turns call_tool into the real tools/call, keeping id and _meta', () => {
    const req = {
      jsonrpc: '2.0' as const,
      id: 7,
      method: 'tools/call',
      params: { name: 'call_tool', arguments: { name: 'get-sum', arguments: { a: 1 } }, _meta: { progressToken: 3 } },
    };
    expect(unwrapCallTool(req)).toEqual({
      jsonrpc: '2.0',
      id: 7,
      method: 'tools/call',
      params: { name: 'get-sum', arguments: { a: 1 }, _meta: { progressToken: 3 } },
    });
    expect(unwrapCallTool({ ...req, params: { name: 'call_tool', arguments: { name: 'x' } } }).params).toEqual({
      name: 'x',
      arguments: {},
    });
    expect(codeOf(() => unwrapCallTool({ ...req, params: { name: 'call_tool', arguments: {} } }))).toBe(
      'SWB_ERR_PROTOCOL_INVALID_PARAMS',
    );
  });
});
