/**
 * The outbound-headers step of a remote upstream: the HTTP headers of each call, merged in the
 * documented order of `policy/passthrough.ts`:
 *
 *   operator credential (`upstream/credentials.ts`) → allowlisted client headers
 *   (`policy/passthrough.ts`) → identity headers with a signed assertion (`auth/identity.ts`)
 *   → headers an outer step set (`traceparent`)
 *
 * Synchronous when no part needs I/O (a static bearer, `none`, `forward`, no identity
 * assertion): the call goes on in the same step, with no extra promise. The credential headers
 * and principal of each call are remembered on the connection's binding, so the connection's own
 * traffic (the GET stream, notifications) carries the latest credential. When the upstream
 * answers HTTP 401, a token the gateway obtained (client credentials, or the caller's exchanged
 * token) is dropped so the next call fetches a new one, and a user's upstream token (`oauth2-user`)
 * is refreshed before that user's next call.
 *
 * @module
 */
import type { IdentityPropagator } from '../../auth/identity.js';
import type { AuthorizationServerMetadata } from '../../auth/oauth-common.js';
import { ANONYMOUS, type Principal } from '../../auth/principal.js';
import type { PassthroughPolicy } from '../../policy/passthrough.js';
import type { JsonRpcResponse } from '../../protocol/jsonrpc.js';
import type { UpstreamCredentials } from '../credentials.js';
import type { UserTokenSource } from '../user-credentials.js';
import {
  errorResponseOf,
  type ConnectionBinding,
  type Dispatch,
  type OutboundHeaders,
  type UpstreamInterceptor,
  type UpstreamRequest,
} from '../dispatch.js';

/** Gateway-wide settings for outbound requests to remote upstreams. */
export interface OutboundOptions {
  /** The resolved global passthrough allowlist (env / stored / merged). */
  globalAllowlist: readonly string[];
  /** `headers.overwriteBase`. */
  overwriteBase: boolean;
  /** Header names never forwarded (the trusted-proxy identity header). */
  reservedHeaders: readonly string[];
  /**
   * Signs identity assertions for servers with `identityHeaders: true`, and the actor tokens of
   * `token-exchange` upstreams with `actorToken: client-assertion`.
   */
  identity?: IdentityPropagator;
  /**
   * The inbound OAuth authorization server's metadata (RFC 8414 §3), for the token endpoint of
   * `token-exchange` upstreams. Undefined when inbound OAuth is off.
   */
  authorizationServer?: () => Promise<AuthorizationServerMetadata>;
  /** The OAuth broker that holds the users' tokens of `oauth2-user` upstreams; undefined without a token vault. */
  userTokens?: UserTokenSource;
}

/** Options for {@link createOutboundHeadersInterceptor}. */
export interface OutboundHeadersOptions {
  /** The upstream server's configured name (identity assertion audience). */
  serverName: string;
  /** The operator credential. */
  credentials: UpstreamCredentials;
  /** The compiled passthrough policy, when the server has one. */
  passthrough?: PassthroughPolicy | undefined;
  /** Signs identity headers, for servers with `identityHeaders: true`. */
  identity?: IdentityPropagator | undefined;
}

const EMPTY_HEADERS: OutboundHeaders = Object.freeze({});

/** Creates the outbound-headers step of one remote upstream. */
export function createOutboundHeadersInterceptor(options: OutboundHeadersOptions): UpstreamInterceptor {
  const { serverName, credentials, passthrough, identity } = options;

  const withAuth = (
    call: UpstreamRequest,
    binding: ConnectionBinding | undefined,
    principal: Principal,
    auth: OutboundHeaders,
  ): OutboundHeaders | Promise<OutboundHeaders> => {
    if (binding) {
      binding.authHeaders = auth;
      binding.principal = principal;
    }
    const ctx = call.ctx;
    const passed = ctx.httpHeaders && passthrough ? passthrough(ctx.httpHeaders) : EMPTY_HEADERS;
    if (identity) {
      return identity
        .headersFor({ serverName, principal, sessionId: ctx.sessionId })
        .then((assertion) => ({ ...auth, ...passed, ...assertion }));
    }
    // Nothing to merge: the (frozen) credential headers as they are, no copy.
    if (passed === EMPTY_HEADERS) return auth;
    return { ...auth, ...passed };
  };

  const headersOf = (call: UpstreamRequest): OutboundHeaders | Promise<OutboundHeaders> => {
    const binding = call.binding();
    const principal = call.ctx.principal ?? binding?.principal ?? ANONYMOUS;
    const auth = credentials.headersFor(principal, call.ctx.identity);
    return auth instanceof Promise
      ? auth.then((a) => withAuth(call, binding, principal, a))
      : withAuth(call, binding, principal, auth);
  };

  /** Puts the headers on the call, under those an outer step set (`traceparent`). */
  const put = (call: UpstreamRequest, headers: OutboundHeaders): void => {
    call.headers = call.headers === undefined ? headers : { ...headers, ...call.headers };
  };

  // A token the gateway obtained may be revoked or rejected before it expires: after an HTTP 401
  // the next call of that caller fetches a fresh one (RFC 6750 §3.1 `invalid_token`).
  const refreshable =
    credentials.type === 'oauth2-client-credentials' ||
    credentials.type === 'token-exchange' ||
    credentials.type === 'oauth2-user';
  const send = (next: Dispatch, call: UpstreamRequest): Promise<JsonRpcResponse> => {
    if (!refreshable) return next(call);
    return next(call).then((res) => {
      if (isUnauthorized(res)) credentials.invalidate(call.ctx.principal ?? call.binding()?.principal ?? ANONYMOUS);
      return res;
    });
  };

  return (next: Dispatch): Dispatch =>
    (call: UpstreamRequest): Promise<JsonRpcResponse> => {
      let pending: OutboundHeaders | Promise<OutboundHeaders>;
      try {
        pending = headersOf(call);
      } catch (err) {
        return Promise.resolve(errorResponseOf(err));
      }
      if (pending instanceof Promise) {
        return pending.then(
          (headers) => {
            put(call, headers);
            return send(next, call);
          },
          (err: unknown) => errorResponseOf(err),
        );
      }
      put(call, pending);
      return send(next, call);
    };
}

/** True for the answer to a request the upstream refused with HTTP 401 (as such, or wrapped by a failed connect). */
function isUnauthorized(res: JsonRpcResponse): boolean {
  if (!('error' in res)) return false;
  const data = res.error.data as
    { code?: unknown; status?: unknown; upstreamError?: { data?: { code?: unknown; status?: unknown } } } | undefined;
  if (data?.code === 'SWB_ERR_UPSTREAM_HTTP') return data.status === 401;
  const inner = data?.upstreamError?.data;
  return (
    data?.code === 'SWB_ERR_UPSTREAM_UNAVAILABLE' && inner?.code === 'SWB_ERR_UPSTREAM_HTTP' && inner.status === 401
  );
}

/**
 * The credential headers a new connection is made with, for the principal of its slot (the
 * anonymous principal when the slot has none).
 */
export function connectHeadersOf(
  credentials: UpstreamCredentials,
): (principal: Principal | undefined) => OutboundHeaders | Promise<OutboundHeaders> {
  return (principal) => credentials.headersFor(principal ?? ANONYMOUS);
}
