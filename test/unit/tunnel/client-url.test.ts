import { describe, expect, it } from 'vitest';
import { toServerName, tunnelWebSocketUrl } from '../../../src/tunnel/client.js';

describe('tunnelWebSocketUrl', () => {
  it('derives ws(s) URLs from the gateway base URL', () => {
    expect(tunnelWebSocketUrl('http://127.0.0.1:8080')).toBe('ws://127.0.0.1:8080/reverse-proxy/ws');
    expect(tunnelWebSocketUrl('https://gw.example.com/')).toBe('wss://gw.example.com/reverse-proxy/ws');
    expect(tunnelWebSocketUrl('https://gw.example.com/switchboard/?x=1')).toBe(
      'wss://gw.example.com/switchboard/reverse-proxy/ws',
    );
  });

  it('takes ws:// and wss:// URLs as given', () => {
    expect(tunnelWebSocketUrl('ws://h:1/custom/path')).toBe('ws://h:1/custom/path');
    expect(tunnelWebSocketUrl('wss://h/reverse-proxy/ws')).toBe('wss://h/reverse-proxy/ws');
  });

  it('refuses other schemes and garbage with SWB_ERR_TUNNEL_CONNECT', () => {
    expect(() => tunnelWebSocketUrl('ftp://h')).toThrow(expect.objectContaining({ code: 'SWB_ERR_TUNNEL_CONNECT' }));
    expect(() => tunnelWebSocketUrl('not a url')).toThrow(expect.objectContaining({ code: 'SWB_ERR_TUNNEL_CONNECT' }));
  });
});

describe('toServerName', () => {
  it('turns serverInfo names into valid server names', () => {
    expect(toServerName('odd-server')).toBe('odd-server');
    expect(toServerName('@scope/my server!')).toBe('scope-my-server-');
    expect(toServerName('x'.repeat(100))).toHaveLength(64);
    expect(toServerName('---')).toBe('tunnel');
  });
});
