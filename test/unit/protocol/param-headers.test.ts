import { describe, expect, it } from 'vitest';
import { headerParamsOf, mirroredParamHeaders } from '../../../src/protocol/param-headers.js';

const tools = [
  {
    name: 'weather',
    inputSchema: {
      type: 'object',
      properties: {
        region: { type: 'string', 'x-mcp-header': 'Region' },
        days: { type: 'integer', 'x-mcp-header': 'Days' },
        metric: { type: 'boolean', 'x-mcp-header': 'Metric' },
        where: {
          type: 'object',
          properties: { city: { type: 'string', 'x-mcp-header': 'City' } },
        },
        tags: { type: 'array', 'x-mcp-header': 'Tags' },
        bad: { type: 'string', 'x-mcp-header': 'Not a token' },
      },
    },
  },
  { name: 'plain', inputSchema: { type: 'object', properties: { x: { type: 'string' } } } },
];

describe('Mcp-Param-* headers mirrored from tool arguments', () => {
  it('reads only allowed annotations: primitives through properties, token names', () => {
    expect(headerParamsOf(tools, 'weather').map((p) => p.header)).toEqual([
      'mcp-param-region',
      'mcp-param-days',
      'mcp-param-metric',
      'mcp-param-city',
    ]);
    expect(headerParamsOf(tools, 'plain')).toEqual([]);
    expect(headerParamsOf(tools, 'absent')).toEqual([]);
  });

  it('mirrors present arguments, encoding strings that are not plain ASCII', () => {
    expect(
      mirroredParamHeaders(tools, {
        name: 'weather',
        arguments: { region: 'Zürich', days: 3, metric: false, where: { city: 'Bern' } },
      }),
    ).toEqual({
      'mcp-param-region': `=?base64?${Buffer.from('Zürich').toString('base64')}?=`,
      'mcp-param-days': '3',
      'mcp-param-metric': 'false',
      'mcp-param-city': 'Bern',
    });
    expect(mirroredParamHeaders(tools, { name: 'weather', arguments: { region: '=?x' } })).toEqual({
      'mcp-param-region': `=?base64?${Buffer.from('=?x').toString('base64')}?=`,
    });
  });

  it('mirrors nothing for absent arguments, values of another type, or tools without annotations', () => {
    expect(mirroredParamHeaders(tools, { name: 'weather', arguments: { days: 1.5, metric: 'yes' } })).toBeUndefined();
    expect(mirroredParamHeaders(tools, { name: 'weather' })).toBeUndefined();
    expect(mirroredParamHeaders(tools, { name: 'plain', arguments: { x: 'a' } })).toBeUndefined();
    expect(mirroredParamHeaders(tools, undefined)).toBeUndefined();
  });
});
