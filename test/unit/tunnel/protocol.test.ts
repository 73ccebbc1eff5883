import { describe, expect, it } from 'vitest';
import { encodeTunnelMessage, parseTunnelMessage } from '../../../src/tunnel/protocol.js';

describe('parseTunnelMessage', () => {
  it('parses register and keeps unknown server fields', () => {
    const r = parseTunnelMessage(JSON.stringify({ type: 'register', server: { name: 'a', description: 'd', x: 1 } }));
    expect(r).toEqual({ ok: true, message: { type: 'register', server: { name: 'a', description: 'd', x: 1 } } });
  });

  it('normalises every JSON-RPC envelope to type "message"', () => {
    const req = { jsonrpc: '2.0', id: 1, method: 'tools/list' };
    expect(parseTunnelMessage(JSON.stringify({ type: 'message', message: req }))).toEqual({
      ok: true,
      message: { type: 'message', message: req },
    });
    // the seed's alias with its `payload` field
    expect(parseTunnelMessage(JSON.stringify({ type: 'request', payload: req }))).toEqual({
      ok: true,
      message: { type: 'message', message: req },
    });
    const res = { jsonrpc: '2.0', id: 1, result: {} };
    expect(parseTunnelMessage(JSON.stringify({ type: 'response', message: res })).ok).toBe(true);
    const note = { jsonrpc: '2.0', method: 'notifications/progress' };
    expect(parseTunnelMessage(JSON.stringify({ type: 'notification', message: note })).ok).toBe(true);
  });

  it('refuses an alias whose label does not match the JSON-RPC message', () => {
    const res = { jsonrpc: '2.0', id: 1, result: {} };
    expect(parseTunnelMessage(JSON.stringify({ type: 'request', message: res })).ok).toBe(false);
    expect(
      parseTunnelMessage(JSON.stringify({ type: 'notification', message: { jsonrpc: '2.0', id: 1, method: 'x' } })).ok,
    ).toBe(false);
  });

  it('rejects invalid JSON, non-objects, unknown types and bad shapes without throwing', () => {
    for (const text of [
      '{',
      '[]',
      '"x"',
      'null',
      '{}',
      '{"type":1}',
      '{"type":"nope"}',
      '{"type":"register"}',
      '{"type":"register","server":{"name":""}}',
      '{"type":"register","server":{"name":"a","description":3}}',
      '{"type":"message","message":{"jsonrpc":"1.0","id":1,"method":"x"}}',
      '{"type":"message"}',
      '{"type":"register_ack","sessionId":"s","status":"nope"}',
      '{"type":"register_ack","sessionId":"s","status":"success","heartbeatIntervalMs":-1}',
      '{"type":"error"}',
    ]) {
      const r = parseTunnelMessage(text);
      expect(r.ok, text).toBe(false);
      if (!r.ok) expect(typeof r.error).toBe('string');
    }
  });

  it('rejects frames over the size bound, counting UTF-8 bytes', () => {
    const big = JSON.stringify({ type: 'heartbeat', pad: 'x'.repeat(100) });
    expect(parseTunnelMessage(big, { maxBytes: 50 }).ok).toBe(false);
    const multi = JSON.stringify({ type: 'heartbeat', pad: 'é'.repeat(30) }); // 60 bytes of é
    expect(multi.length).toBeLessThan(80);
    expect(parseTunnelMessage(multi, { maxBytes: 80 }).ok).toBe(false);
    expect(parseTunnelMessage(multi, { maxBytes: 200 }).ok).toBe(true);
  });

  it('round-trips control messages through encodeTunnelMessage', () => {
    for (const m of [
      { type: 'register_ack', sessionId: 's1', status: 'success', heartbeatIntervalMs: 1000 },
      { type: 'heartbeat' },
      { type: 'heartbeat_ack', timestamp: '2026-01-01T00:00:00.000Z' },
      { type: 'unregister', reason: 'bye' },
      { type: 'error', code: 'SWB_ERR_TUNNEL_INVALID_MESSAGE', message: 'bad' },
    ] as const) {
      expect(parseTunnelMessage(encodeTunnelMessage(m))).toEqual({ ok: true, message: m });
    }
  });
});
