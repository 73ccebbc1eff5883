import type { IncomingMessage } from 'node:http';
import { describe, expect, it } from 'vitest';
import { ANONYMOUS, type Principal } from '../../../src/auth/principal.js';
import { adminAuthenticate, isLoopbackAddress } from '../../../src/http/admin-access.js';

const from = (remoteAddress: string | undefined) => ({ socket: { remoteAddress } }) as unknown as IncomingMessage;
const TOKEN: Principal = { id: 'token:1', kind: 'token', subject: 'alice', permissions: ['*'] };

describe('isLoopbackAddress', () => {
  it('accepts 127.0.0.0/8, ::1 and IPv4-mapped loopback only', () => {
    for (const a of ['127.0.0.1', '127.1.2.3', '::1', '::ffff:127.0.0.1']) expect(isLoopbackAddress(a), a).toBe(true);
    for (const a of ['10.0.0.1', '::ffff:10.0.0.1', '0.0.0.0', '::', 'fe80::1', '128.0.0.1', undefined])
      expect(isLoopbackAddress(a), String(a)).toBe(false);
  });
});

describe('adminAuthenticate', () => {
  it('refuses the anonymous principal unless allowed, and then from loopback only', async () => {
    const closed = adminAuthenticate(
      () => ANONYMOUS,
      () => false,
    );
    await expect(closed(from('127.0.0.1'))).rejects.toMatchObject({ code: 'SWB_ERR_AUTH_ADMIN_REQUIRED', status: 403 });
    const open = adminAuthenticate(
      () => ANONYMOUS,
      () => true,
    );
    await expect(open(from('127.0.0.1'))).resolves.toBe(ANONYMOUS);
    await expect(open(from('::ffff:127.0.0.1'))).resolves.toBe(ANONYMOUS);
    await expect(open(from('192.168.1.20'))).rejects.toMatchObject({ code: 'SWB_ERR_AUTH_ADMIN_REQUIRED' });
  });

  it('passes credentialed principals from anywhere, and the errors of the wrapped authenticator', async () => {
    const auth = adminAuthenticate(
      () => TOKEN,
      () => false,
    );
    await expect(auth(from('192.168.1.20'))).resolves.toBe(TOKEN);
    const failing = adminAuthenticate(
      () => {
        throw new Error('bad token');
      },
      () => true,
    );
    await expect(failing(from('127.0.0.1'))).rejects.toThrow('bad token');
  });
});
