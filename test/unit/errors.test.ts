/**
 * The error table and its encoder: every code has a family, JSON-RPC codes mean one thing each
 * (or are one documented group), the HTTP family never borrows a JSON-RPC code that would mislead,
 * and `encodeError` — not the throw site — chooses between an HTTP status and a JSON-RPC error.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import {
  clientJsonRpcError,
  encodeError,
  ERROR_CODES,
  GatewayError,
  restErrorBody,
  toClientMessage,
  type ErrorCode,
  type ErrorSpec,
} from '../../src/errors.js';
import {
  JSONRPC_INTERNAL_ERROR,
  JSONRPC_INVALID_PARAMS,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_METHOD_NOT_FOUND,
  JSONRPC_PARSE_ERROR,
  JSONRPC_REQUEST_CANCELLED,
  MCP_RESOURCE_NOT_FOUND,
  type JsonRpcErrorObject,
  type JsonRpcResponse,
} from '../../src/protocol/jsonrpc.js';

const entries = Object.entries(ERROR_CODES) as Array<[ErrorCode, ErrorSpec]>;

/** JSON-RPC 2.0 §5.1's generic codes: several gateway codes may share one, `data.code` tells them apart. */
const STANDARD = new Set([
  JSONRPC_PARSE_ERROR,
  JSONRPC_INVALID_REQUEST,
  JSONRPC_METHOD_NOT_FOUND,
  JSONRPC_INVALID_PARAMS,
  JSONRPC_INTERNAL_ERROR,
]);

/**
 * Codes outside §5.1 that several gateway codes share on purpose, as one documented group:
 * token delegation (one JSON-RPC code, the SWB code names what was too wide).
 */
const SHARED_GROUPS: Record<number, RegExp> = {
  [ERROR_CODES.SWB_ERR_AUTH_DELEGATION_DEPTH.jsonRpcCode]: /^SWB_ERR_AUTH_DELEGATION_[A-Z]+$/,
};

/** MCP 2026-07-28's own codes (basic §Error codes), each used by exactly the gateway code of that meaning. */
const SPEC_CODES: Record<number, ErrorCode> = {
  [-32020]: 'SWB_ERR_HTTP_HEADER_MISMATCH',
  [-32021]: 'SWB_ERR_PROTOCOL_MISSING_CAPABILITY',
  [-32022]: 'SWB_ERR_PROTOCOL_UNSUPPORTED_VERSION',
};

/**
 * Refusals the 2026-07-28 front door answers with an HTTP status and a standard JSON-RPC code, as
 * that era prescribes: a missing `_meta` field or a bad `requestState` (400, -32602) and an unknown
 * method (404, -32601).
 */
const MODERN_HTTP_CODES = new Set<ErrorCode>([
  'SWB_ERR_PROTOCOL_MISSING_META',
  'SWB_ERR_PROTOCOL_INVALID_STATE',
  'SWB_ERR_PROTOCOL_METHOD_NOT_FOUND',
]);

/** Codes MCP itself gives a meaning: resource not found (server/resources) and URL elicitation required. */
const MCP_CLAIMED = new Set([MCP_RESOURCE_NOT_FOUND, -32042]);

describe('the error table', () => {
  it('gives every code a family, a status and a JSON-RPC code, and names it SWB_ERR_<AREA>_<WHAT>', () => {
    for (const [code, spec] of entries) {
      expect(['http', 'jsonrpc', 'config'], code).toContain(spec.family);
      expect(Number.isInteger(spec.status) && spec.status >= 200 && spec.status < 600, code).toBe(true);
      expect(Number.isInteger(spec.jsonRpcCode), code).toBe(true);
      expect(code).toMatch(/^SWB_ERR_[A-Z]+(_[A-Z]+)*$/);
    }
  });

  it('gives no two codes of different meaning the same JSON-RPC code outside §5.1, except the documented groups', () => {
    const byJsonRpc = new Map<number, ErrorCode[]>();
    for (const [code, spec] of entries) {
      if (spec.family === 'config' || STANDARD.has(spec.jsonRpcCode)) continue;
      byJsonRpc.set(spec.jsonRpcCode, [...(byJsonRpc.get(spec.jsonRpcCode) ?? []), code]);
    }
    for (const [jsonRpcCode, codes] of byJsonRpc) {
      if (codes.length === 1) continue;
      const group = SHARED_GROUPS[jsonRpcCode];
      expect(group, `${jsonRpcCode} is shared by ${codes.join(', ')}`).toBeDefined();
      for (const code of codes) expect(code).toMatch(group!);
    }
  });

  it('keeps every code of its own out of the JSON-RPC reserved range -32768 … -32000 (MCP 2026-07-28 claims -32020 … -32099)', () => {
    for (const [code, spec] of entries) {
      const c = spec.jsonRpcCode;
      if (STANDARD.has(c) || c === MCP_RESOURCE_NOT_FOUND) continue; // meanings JSON-RPC and MCP define
      if (SPEC_CODES[c] !== undefined) continue; // checked below
      expect(c <= -32000 && c >= -32768, `${code} has ${c}`).toBe(false);
    }
    // The codes the 2026-07-28 era gives a meaning to are used for that meaning only.
    for (const claimed of [-32020, -32021, -32022]) {
      expect(
        entries.filter(([, spec]) => spec.jsonRpcCode === claimed).map(([code]) => code),
        String(claimed),
      ).toEqual(SPEC_CODES[claimed] === undefined ? [] : [SPEC_CODES[claimed]]);
    }
  });

  it('never gives an HTTP-family error a JSON-RPC code that names a method, params, cancellation or an MCP meaning', () => {
    for (const [code, spec] of entries) {
      if (spec.family !== 'http' || MODERN_HTTP_CODES.has(code)) continue;
      expect([JSONRPC_METHOD_NOT_FOUND, JSONRPC_INVALID_PARAMS, JSONRPC_REQUEST_CANCELLED], code).not.toContain(
        spec.jsonRpcCode,
      );
      expect(MCP_CLAIMED.has(spec.jsonRpcCode), code).toBe(false);
      if (spec.jsonRpcCode === JSONRPC_PARSE_ERROR) expect(code).toBe('SWB_ERR_HTTP_PARSE');
      if (spec.jsonRpcCode === JSONRPC_INTERNAL_ERROR) expect(code).toBe('SWB_ERR_INTERNAL');
    }
  });

  it('answers HTTP-family errors with an error status, and keeps the config family out of the wire', () => {
    for (const [code, spec] of entries) {
      if (spec.family === 'http') expect(spec.status, code).toBeGreaterThanOrEqual(400);
      if (spec.family === 'config') expect(spec.status, code).toBeGreaterThanOrEqual(500);
    }
  });

  it('hides the message of every 5xx upstream failure that can carry a command line or URL', () => {
    for (const code of [
      'SWB_ERR_UPSTREAM_UNAVAILABLE',
      'SWB_ERR_UPSTREAM_CLOSED',
      'SWB_ERR_UPSTREAM_TIMEOUT',
      'SWB_ERR_UPSTREAM_PROTOCOL',
      'SWB_ERR_UPSTREAM_HTTP',
      'SWB_ERR_UPSTREAM_AUTH',
      'SWB_ERR_UPSTREAM_SESSION_EXPIRED',
    ] as const) {
      const spec: ErrorSpec = ERROR_CODES[code];
      expect(spec.expose, code).toBe(false);
      expect(spec.publicMessage, code).toBeDefined();
    }
  });

  it('is listed in docs/errors.md, every code with its family, status and JSON-RPC code', () => {
    const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');
    const rows = new Map<string, string[]>();
    for (const line of doc.split('\n')) {
      const cells = line.split('|').map((c) => c.trim());
      const code = /^`(SWB_ERR_[A-Z_]+)`$/.exec(cells[1] ?? '')?.[1];
      if (code !== undefined) rows.set(code, cells.slice(2, 5));
    }
    expect([...rows.keys()].sort()).toEqual(entries.map(([code]) => code).sort());
    for (const [code, spec] of entries) {
      const expected =
        spec.family === 'config' ? ['config'] : [spec.family, String(spec.status), String(spec.jsonRpcCode)];
      expect(rows.get(code)?.slice(0, expected.length), code).toEqual(expected);
    }
  });

  it('has entries for the JSON-RPC codes the gateway answers with itself', () => {
    expect(ERROR_CODES.SWB_ERR_ROUTE_UNKNOWN_METHOD).toMatchObject({ family: 'jsonrpc', jsonRpcCode: -32601 });
    expect(ERROR_CODES.SWB_ERR_PROTOCOL_INVALID_PARAMS).toMatchObject({ family: 'jsonrpc', jsonRpcCode: -32602 });
    expect(ERROR_CODES.SWB_ERR_INTERNAL).toMatchObject({ jsonRpcCode: -32603, expose: false });
    expect(ERROR_CODES.SWB_ERR_CANCELLED).toMatchObject({ family: 'jsonrpc', jsonRpcCode: -32800 });
  });
});

describe('encodeError', () => {
  it('answers an HTTP-family error with its status before the response started, with Retry-After from data.retryAfterMs', () => {
    const err = new GatewayError('SWB_ERR_RATE_LIMITED', 'slow down', { data: { retryAfterMs: 1_200, rule: '0' } });
    const encoded = encodeError(err, { responseStarted: false, id: 7 });
    expect(encoded).toMatchObject({ kind: 'http', status: 429, headers: { 'retry-after': '2' } });
    expect(encoded.response).toEqual({
      jsonrpc: '2.0',
      id: 7,
      error: {
        code: ERROR_CODES.SWB_ERR_RATE_LIMITED.jsonRpcCode,
        message: 'slow down',
        data: { code: 'SWB_ERR_RATE_LIMITED', retryAfterMs: 1_200, rule: '0' },
      },
    });
  });

  it('sends the same HTTP-family error as a JSON-RPC error once the response started', () => {
    const err = new GatewayError('SWB_ERR_AUTH_FORBIDDEN', 'permission tools.execute is required');
    const encoded = encodeError(err, { responseStarted: true, id: 'a' });
    expect(encoded.kind).toBe('jsonrpc');
    expect(encoded.response.id).toBe('a');
    expect(encoded.response.error.data).toEqual({ code: 'SWB_ERR_AUTH_FORBIDDEN' });
  });

  it('always sends a JSON-RPC-family error as a JSON-RPC error, whatever its status', () => {
    for (const code of [
      'SWB_ERR_ROUTE_UNKNOWN_TOOL',
      'SWB_ERR_SESSION_DUPLICATE_ID',
      'SWB_ERR_UPSTREAM_BUSY',
    ] as const) {
      const encoded = encodeError(new GatewayError(code, 'x'), { responseStarted: false, id: 1 });
      expect(encoded.kind, code).toBe('jsonrpc');
      expect(encoded.response.error.code, code).toBe(ERROR_CODES[code].jsonRpcCode);
    }
  });

  it('answers anything that is not a GatewayError, and config errors, as SWB_ERR_INTERNAL without their text', () => {
    for (const err of [
      new TypeError('/etc/secret exploded'),
      new GatewayError('SWB_ERR_CONFIG_INVALID', '/etc/switchboard.yaml: bad'),
    ]) {
      const encoded = encodeError(err, { responseStarted: false });
      expect(encoded).toMatchObject({ kind: 'http', status: 500 });
      expect(encoded.response).toEqual({
        jsonrpc: '2.0',
        id: null,
        error: { code: JSONRPC_INTERNAL_ERROR, message: 'Internal error', data: { code: 'SWB_ERR_INTERNAL' } },
      });
      expect(encoded.error.cause).toBe(err);
    }
  });

  it('replaces the message and data of a code that is not exposed by its public message and public data', () => {
    const err = new GatewayError('SWB_ERR_UPSTREAM_HTTP', 'http://10.0.0.5/mcp?key=s3cret: POST answered HTTP 500', {
      data: { status: 500, url: 'http://10.0.0.5/mcp?key=s3cret' },
    });
    expect(clientJsonRpcError(err)).toEqual({
      code: ERROR_CODES.SWB_ERR_UPSTREAM_HTTP.jsonRpcCode,
      message: 'Upstream answered with an HTTP error',
      data: { code: 'SWB_ERR_UPSTREAM_HTTP', status: 500 },
    });
  });
});

describe('restErrorBody', () => {
  it('gives the REST APIs the same message and data a JSON-RPC client would get', () => {
    const limited = new GatewayError('SWB_ERR_RATE_LIMITED', 'slow down', { data: { retryAfterMs: 5 } });
    expect(restErrorBody(limited)).toEqual({
      error: { code: 'SWB_ERR_RATE_LIMITED', message: 'slow down', retryAfterMs: 5 },
    });
    const down = new GatewayError('SWB_ERR_STORE_UNAVAILABLE', 'connect ECONNREFUSED 10.0.0.9:5432', {
      data: { host: '10.0.0.9' },
    });
    expect(restErrorBody(down)).toEqual({ error: { code: 'SWB_ERR_STORE_UNAVAILABLE', message: 'Internal error' } });
  });
});

describe('toClientMessage', () => {
  const spawnFailure = new GatewayError(
    'SWB_ERR_UPSTREAM_UNAVAILABLE',
    'failed to start "/opt/private/bin/server": spawn /opt/private/bin/server ENOENT',
    { data: { upstreamError: { message: '/opt/private/bin/server' } } },
  );

  it("withholds a synthetic upstream failure's detail from the client and hands it to the logger", () => {
    const withheld: JsonRpcErrorObject[] = [];
    const message: JsonRpcResponse = { jsonrpc: '2.0', id: 3, error: spawnFailure.toJsonRpcError() };
    const safe = toClientMessage(message, (e) => withheld.push(e));
    expect(safe).toEqual({
      jsonrpc: '2.0',
      id: 3,
      error: {
        code: ERROR_CODES.SWB_ERR_UPSTREAM_UNAVAILABLE.jsonRpcCode,
        message: 'Upstream unavailable',
        data: { code: 'SWB_ERR_UPSTREAM_UNAVAILABLE' },
      },
    });
    expect(JSON.stringify(safe)).not.toContain('/opt/private');
    expect(withheld.map((e) => e.message)).toEqual([spawnFailure.message]);
  });

  it("passes results, exposed gateway errors and the upstream server's own errors through as the same object", () => {
    const messages: JsonRpcResponse[] = [
      { jsonrpc: '2.0', id: 1, result: { content: [] } },
      { jsonrpc: '2.0', id: 2, error: new GatewayError('SWB_ERR_UPSTREAM_BUSY', 'queue full').toJsonRpcError() },
      { jsonrpc: '2.0', id: 3, error: { code: -32601, message: 'Method not found: /opt/x', data: { code: 7 } } },
    ];
    for (const m of messages) expect(toClientMessage(m, () => expect.fail('nothing is withheld'))).toBe(m);
  });
});
