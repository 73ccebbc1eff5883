import { describe, expect, it } from 'vitest';
import {
  mediaTypeOf,
  networkFailure,
  safeUrl,
  staticHeaders,
  upstreamErrorResponse,
} from '../../../src/upstream/http-common.js';

describe('HTTP transport helpers', () => {
  it('builds synthetic error responses from the error table', () => {
    expect(upstreamErrorResponse(3, 'SWB_ERR_UPSTREAM_SESSION_EXPIRED', 'gone', { status: 404 })).toEqual({
      jsonrpc: '2.0',
      id: 3,
      error: { code: -33025, message: 'gone', data: { code: 'SWB_ERR_UPSTREAM_SESSION_EXPIRED', status: 404 } },
    });
  });

  it('classifies timeouts and other network failures', () => {
    const timeout = Object.assign(new Error('Headers Timeout Error'), { code: 'UND_ERR_HEADERS_TIMEOUT' });
    expect(networkFailure('http x', timeout).code).toBe('SWB_ERR_UPSTREAM_TIMEOUT');
    const refused = Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:1'), { code: 'ECONNREFUSED' });
    const failure = networkFailure('http x', new AggregateError([refused], ''));
    expect(failure.code).toBe('SWB_ERR_UPSTREAM_UNAVAILABLE');
    expect(failure.message).toBe('http x: ECONNREFUSED connect ECONNREFUSED 127.0.0.1:1');
  });

  it('reads media types without parameters', () => {
    expect(mediaTypeOf('Text/Event-Stream; charset=utf-8')).toBe('text/event-stream');
    expect(mediaTypeOf(['application/json'])).toBe('application/json');
    expect(mediaTypeOf(undefined)).toBe('');
  });

  it('lower-cases static headers and drops the ones the transport owns', () => {
    expect(
      staticHeaders({ Authorization: 'Bearer t', Accept: 'x', 'Mcp-Session-Id': 's', 'Content-Type': 'y', 'X-A': '1' }),
    ).toEqual({ authorization: 'Bearer t', 'x-a': '1' });
  });

  it('shows URLs without credentials or query', () => {
    expect(safeUrl(new URL('https://user:pw@host.example:8443/mcp?api_key=secret'))).toBe(
      'https://host.example:8443/mcp',
    );
  });
});
