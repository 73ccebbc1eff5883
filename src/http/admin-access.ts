/**
 * Access to the admin API (`/api/v1/…`) without credentials. With `auth.mode: none` every
 * caller is the anonymous principal, which holds every permission; the admin API can add stdio
 * servers — commands the gateway runs — so by default it refuses anonymous callers, and with
 * `admin.allowAnonymous: true` it admits them from loopback addresses only.
 *
 * @module
 */
import type { IncomingMessage } from 'node:http';
import type { Authenticate } from '../auth/authenticator.js';
import { GatewayError } from '../errors.js';

/** True for a loopback peer address: `127.0.0.0/8`, `::1`, or `127.x` mapped into IPv6 (`::ffff:127.0.0.1`). */
export function isLoopbackAddress(address: string | undefined): boolean {
  if (address === undefined) return false;
  const v4 = address.startsWith('::ffff:') ? address.slice(7) : address;
  return address === '::1' || /^127(?:\.\d{1,3}){3}$/.test(v4);
}

/**
 * Wraps `authenticate` for the admin API: an anonymous principal is refused with 403
 * `SWB_ERR_AUTH_ADMIN_REQUIRED` unless `allowAnonymous()` is true and the peer's address is a
 * loopback one. Credentialed principals (API tokens, OAuth, a trusted proxy's header) pass
 * unchanged. `allowAnonymous` is read per request, so a reload applies at once.
 *
 * @throws GatewayError `SWB_ERR_AUTH_ADMIN_REQUIRED` (403) as described; whatever `authenticate` throws
 */
export function adminAuthenticate(authenticate: Authenticate, allowAnonymous: () => boolean): Authenticate {
  return async (req: IncomingMessage) => {
    const principal = await authenticate(req);
    if (principal.kind !== 'anonymous') return principal;
    if (!allowAnonymous()) {
      throw new GatewayError(
        'SWB_ERR_AUTH_ADMIN_REQUIRED',
        'the admin API needs credentials: set auth.mode to tokens or oauth and send a bearer token, or set admin.allowAnonymous: true to let unauthenticated callers on this machine (loopback) in',
      );
    }
    if (!isLoopbackAddress(req.socket.remoteAddress)) {
      throw new GatewayError(
        'SWB_ERR_AUTH_ADMIN_REQUIRED',
        'admin.allowAnonymous admits unauthenticated callers from loopback addresses only: send a bearer token (auth.mode tokens or oauth)',
      );
    }
    return principal;
  };
}
