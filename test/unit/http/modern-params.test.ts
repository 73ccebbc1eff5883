import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { isGatewayError } from '../../../src/errors.js';
import { checkParamHeaders, headerParamsOf } from '../../../src/http/modern-params.js';
import { decodeHeaderValue } from '../../../src/protocol/era.js';

const b64 = (s: string) => `=?base64?${Buffer.from(s).toString('base64')}?=`;

describe('decodeHeaderValue (transports §Value Encoding)', () => {
  it('decodes the sentinel form and keeps plain values', () => {
    expect(decodeHeaderValue('us-west1')).toBe('us-west1');
    expect(decodeHeaderValue(b64('Hello, 世界'))).toBe('Hello, 世界');
    expect(decodeHeaderValue(b64(' padded '))).toBe(' padded ');
    expect(decodeHeaderValue(b64('=?base64?literal?='))).toBe('=?base64?literal?=');
  });

  it('reads a value without the suffix or the prefix as literal', () => {
    expect(decodeHeaderValue('=?base64?SGVsbG8=')).toBe('=?base64?SGVsbG8=');
    expect(decodeHeaderValue('SGVsbG8=?=')).toBe('SGVsbG8=?=');
  });

  it('refuses unpadded or non-Base64 sentinel content and control characters', () => {
    expect(decodeHeaderValue('=?base64?SGVsbG8?=')).toBeUndefined();
    expect(decodeHeaderValue('=?base64?not base64?=')).toBeUndefined();
    expect(decodeHeaderValue('a\u0000b')).toBeUndefined();
    expect(decodeHeaderValue('caf\u00e9')).toBeUndefined();
  });
});

describe('Mcp-Param-* headers against the arguments', () => {
  const tools = [
    {
      name: 'sql',
      inputSchema: {
        type: 'object',
        properties: {
          region: { type: 'string', 'x-mcp-header': 'Region' },
          limit: { type: 'integer', 'x-mcp-header': 'Limit' },
          dry: { type: 'boolean', 'x-mcp-header': 'Dry' },
          ratio: { type: 'number', 'x-mcp-header': 'Ratio' }, // numbers may not be mirrored
          opts: { type: 'object', properties: { tenant: { type: 'string', 'x-mcp-header': 'Tenant' } } },
          list: { type: 'array', items: { type: 'string', 'x-mcp-header': 'Item' } }, // not through items
        },
      },
    },
    { name: 'plain', inputSchema: { type: 'object', properties: { q: { type: 'string' } } } },
  ];
  const req = (headers: Record<string, string>) => ({ headers }) as unknown as IncomingMessage;
  const refusal = (headers: Record<string, string>, args: unknown): string => {
    try {
      checkParamHeaders(req(headers), headerParamsOf(tools, 'sql'), args);
      return 'ok';
    } catch (err) {
      if (isGatewayError(err)) return `${err.code}: ${err.message}`;
      throw err;
    }
  };

  it('reads the allowed annotations only, through properties keys', () => {
    expect(headerParamsOf(tools, 'sql').map((p) => [p.header, p.path.join('.')])).toEqual([
      ['mcp-param-region', 'region'],
      ['mcp-param-limit', 'limit'],
      ['mcp-param-dry', 'dry'],
      ['mcp-param-tenant', 'opts.tenant'],
    ]);
    expect(headerParamsOf(tools, 'plain')).toEqual([]);
  });

  it('accepts matching headers (integers by value, Base64 decoded) and absent arguments', () => {
    const args = { region: 'us-west1', limit: 42, dry: false, opts: { tenant: 'Zürich' } };
    const headers = {
      'mcp-param-region': 'us-west1',
      'mcp-param-limit': '42.0',
      'mcp-param-dry': 'false',
      'mcp-param-tenant': b64('Zürich'),
    };
    expect(refusal(headers, args)).toBe('ok');
    expect(refusal({}, { region: null })).toBe('ok');
  });

  it('refuses a missing header, a different value and invalid characters with HeaderMismatch', () => {
    expect(refusal({}, { region: 'eu' })).toMatch(/^SWB_ERR_HTTP_HEADER_MISMATCH: .*mcp-param-region is required/);
    expect(refusal({ 'mcp-param-region': 'us' }, { region: 'eu' })).toMatch(/does not match/);
    expect(refusal({ 'mcp-param-limit': '41' }, { limit: 42 })).toMatch(/mcp-param-limit value does not match/);
    expect(refusal({ 'mcp-param-dry': 'TRUE' }, { dry: true })).toMatch(/does not match/);
    expect(refusal({ 'mcp-param-region': '=?base64?SGVsbG8?=' }, { region: 'Hello' })).toMatch(/invalid characters/);
  });
});
