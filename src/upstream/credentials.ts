/**
 * Outbound credentials: the `Authorization` header Switchboard sends to a remote upstream, one
 * object per server built at startup from its `auth` config.
 *
 * - `none` (or no `auth`): nothing;
 * - `bearer`: `Authorization: Bearer <token>` (RFC 6750 §2.1);
 * - `basic`: `Authorization: Basic base64(user:password)` (RFC 7617, UTF-8);
 * - `oauth2-client-credentials`: a token obtained with the client credentials grant
 *   (RFC 6749 §4.4), client authentication `client_secret_basic` (§2.3.1), optional `scope`,
 *   RFC 8707 `resource` and `audience`; cached until shortly before `expires_in`, refreshed by a
 *   single request however many callers are waiting;
 * - `forward`: the caller's own bearer token (`Principal.bearer`); nothing when the caller
 *   authenticated without one (e.g. a trusted proxy header);
 * - `token-exchange`: a token obtained per caller by exchanging the caller's OAuth access token
 *   (RFC 8693, `token-exchange.ts`), optionally with a gateway-signed actor token; the caller's
 *   own token is never sent upstream;
 * - `oauth2-user`: the caller's own upstream token, obtained by the gateway's OAuth broker and
 *   kept in the token vault (`user-credentials.ts`).
 *
 * The operator's credential is never replaced by a client header: the header
 * passthrough policy (`src/policy/passthrough.ts`) refuses client `Authorization` headers for
 * every credentialed type. Header names are lower-case, like the transports' static headers.
 *
 * @module
 */
import { request, type Dispatcher } from 'undici';
import type { IdentityPropagator } from '../auth/identity.js';
import type { Principal } from '../auth/principal.js';
import type { AuthorizationServerMetadata } from '../auth/oauth-common.js';
import type { UpstreamAuth } from '../config/schema.js';
import { GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import { createTokenExchangeCredentials } from './token-exchange.js';
import { UserTokenCredentials, type UpstreamIdentitySink, type UserTokenSource } from './user-credentials.js';
import {
  MAX_TOKEN_RESPONSE_BYTES,
  OAUTH_ERROR_RE,
  TOKEN_CHARS_RE,
  clientSecretBasic,
  parseJsonObject,
  readCapped,
} from './token-response.js';

/** Options for {@link createUpstreamCredentials}. */
export interface UpstreamCredentialsOptions {
  /** The server's name, for logs and error messages. */
  serverName: string;
  logger: Logger;
  /** undici dispatcher for token requests. Default: undici's global dispatcher. */
  dispatcher?: Dispatcher;
  /** Epoch milliseconds. Default `Date.now`. */
  clock?: () => number;
  /** A token is refreshed this long before it expires (capped at half its lifetime). Default 30 000 ms. */
  expirySkewMs?: number;
  /** Lifetime assumed when the token response has no `expires_in` (RFC 6749 §5.1 makes it optional). Default 300 s. */
  defaultLifetimeSeconds?: number;
  /** Time allowed for the token endpoint's response headers, and for its body. Default 10 000 ms. */
  tokenTimeoutMs?: number;
  /**
   * The inbound authorization server's metadata (RFC 8414 §3), whose `token_endpoint` a
   * `token-exchange` credential uses when it configures none. Undefined when inbound OAuth is off.
   */
  authorizationServer?: (() => Promise<AuthorizationServerMetadata>) | undefined;
  /** The broker of `oauth2-user` upstreams; undefined without a token vault. */
  userTokens?: UserTokenSource | undefined;
  /** The upstream's URL (an `oauth2-user` credential discovers its authorization server from it). */
  serverUrl?: string | undefined;
  /**
   * Signs the actor token of a `token-exchange` credential with `actorToken: client-assertion`
   * (the gateway's identity propagator); such a credential is refused without it.
   */
  identity?: Pick<IdentityPropagator, 'signJwt'> | undefined;
}

/** The credential of one upstream. */
export interface UpstreamCredentials {
  /** The configured `auth.type` (`none` when the server has no `auth`). */
  readonly type: UpstreamAuth['type'];
  /**
   * Headers to add to every request sent for `principal` (lower-case names; do not mutate).
   * Synchronous for `none`, `bearer`, `basic`, `forward` and for a cached client-credentials
   * token; a promise only while a token is being fetched.
   *
   * @throws GatewayError `SWB_ERR_UPSTREAM_AUTH` (502) when a client-credentials token cannot be
   *   obtained; the next call tries again. The message never contains the client secret.
   * @throws GatewayError `SWB_ERR_UPSTREAM_TOKEN_EXCHANGE` (502) or
   *   `SWB_ERR_UPSTREAM_NO_SUBJECT_TOKEN` (403) for `token-exchange` (`token-exchange.ts`).
   * @throws GatewayError `SWB_ERR_UPSTREAM_NOT_CONNECTED` for `oauth2-user` when the caller has not
   *   connected (`user-credentials.ts`), which also reports the upstream subject to `sink`.
   */
  headersFor(
    principal: Principal,
    sink?: UpstreamIdentitySink,
  ): Promise<Readonly<Record<string, string>>> | Readonly<Record<string, string>>;
  /**
   * Forgets a cached token so the next call fetches a new one: the outbound-headers step calls it
   * when the upstream answers HTTP 401. `oauth2-client-credentials` drops its one token;
   * `token-exchange` drops `principal`'s exchanged token (every one when no principal is given).
   * A no-op for the other types.
   */
  invalidate(principal?: Principal): void;
}

const EMPTY: Readonly<Record<string, string>> = Object.freeze({});

/** A credential that does not depend on the caller: one frozen object, returned synchronously. */
class StaticCredentials implements UpstreamCredentials {
  readonly type: UpstreamAuth['type'];
  readonly #headers: Readonly<Record<string, string>>;

  constructor(type: UpstreamAuth['type'], headers: Readonly<Record<string, string>>) {
    this.type = type;
    this.#headers = headers;
  }

  headersFor(): Readonly<Record<string, string>> {
    return this.#headers;
  }

  invalidate(): void {}
}

/** `forward`: the caller's own bearer token (RFC 6750 §2.1), chosen explicitly by the operator. */
class ForwardCredentials implements UpstreamCredentials {
  readonly type = 'forward' as const;

  headersFor(principal: Principal): Readonly<Record<string, string>> {
    const bearer = principal.bearer;
    return bearer === undefined || bearer === '' ? EMPTY : { authorization: `Bearer ${bearer}` };
  }

  invalidate(): void {}
}

type ClientCredentialsAuth = Extract<UpstreamAuth, { type: 'oauth2-client-credentials' }>;

/** RFC 6749 §4.4 client credentials grant with a cached, single-flight token. */
class ClientCredentials implements UpstreamCredentials {
  readonly type = 'oauth2-client-credentials' as const;
  readonly #auth: ClientCredentialsAuth;
  readonly #server: string;
  readonly #logger: Logger;
  readonly #dispatcher: Dispatcher | undefined;
  readonly #clock: () => number;
  readonly #skewMs: number;
  readonly #defaultLifetimeMs: number;
  readonly #timeoutMs: number;
  readonly #clientAuthorization: string;
  #cached: { headers: Readonly<Record<string, string>>; refreshAt: number } | undefined;
  #inflight: Promise<Readonly<Record<string, string>>> | undefined;

  constructor(auth: ClientCredentialsAuth, options: UpstreamCredentialsOptions) {
    this.#auth = auth;
    this.#server = options.serverName;
    this.#logger = options.logger;
    this.#dispatcher = options.dispatcher;
    this.#clock = options.clock ?? Date.now;
    this.#skewMs = options.expirySkewMs ?? 30_000;
    this.#defaultLifetimeMs = (options.defaultLifetimeSeconds ?? 300) * 1000;
    this.#timeoutMs = options.tokenTimeoutMs ?? 10_000;
    this.#clientAuthorization = clientSecretBasic(auth.clientId, auth.clientSecret);
  }

  headersFor(): Promise<Readonly<Record<string, string>>> | Readonly<Record<string, string>> {
    const cached = this.#cached;
    if (cached !== undefined && this.#clock() < cached.refreshAt) return cached.headers;
    if (this.#inflight === undefined) {
      const flight = this.#fetchToken().finally(() => {
        if (this.#inflight === flight) this.#inflight = undefined;
      });
      this.#inflight = flight;
    }
    return this.#inflight;
  }

  invalidate(): void {
    this.#cached = undefined;
    this.#inflight = undefined;
  }

  #fail(detail: string, cause?: unknown): GatewayError {
    this.#logger.warn({ server: this.#server, tokenUrl: this.#auth.tokenUrl, detail }, 'upstream token request failed');
    return new GatewayError(
      'SWB_ERR_UPSTREAM_AUTH',
      `upstream "${this.#server}": could not obtain an access token: ${detail}`,
      {
        cause,
        data: { server: this.#server },
      },
    );
  }

  async #fetchToken(): Promise<Readonly<Record<string, string>>> {
    const form = new URLSearchParams({ grant_type: 'client_credentials' });
    if (this.#auth.scope !== undefined) form.set('scope', this.#auth.scope);
    if (this.#auth.resource !== undefined) form.set('resource', this.#auth.resource);
    if (this.#auth.audience !== undefined) form.set('audience', this.#auth.audience);
    const startedAt = this.#clock();
    let res: Dispatcher.ResponseData;
    try {
      res = await request(this.#auth.tokenUrl, {
        method: 'POST',
        headers: {
          authorization: this.#clientAuthorization,
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: form.toString(),
        headersTimeout: this.#timeoutMs,
        bodyTimeout: this.#timeoutMs,
        ...(this.#dispatcher === undefined ? {} : { dispatcher: this.#dispatcher }),
      });
    } catch (err) {
      const code = (err as { code?: unknown }).code;
      throw this.#fail(`token endpoint unreachable${typeof code === 'string' ? ` (${code})` : ''}`, err);
    }
    let text: string | undefined;
    try {
      text = await readCapped(res.body, MAX_TOKEN_RESPONSE_BYTES);
    } catch (err) {
      throw this.#fail('token response could not be read', err);
    }
    const json = parseJsonObject(text);
    if (res.statusCode !== 200) {
      // RFC 6749 §5.2: only the registered `error` code is repeated, never `error_description`.
      const error = json?.error;
      const suffix = typeof error === 'string' && OAUTH_ERROR_RE.test(error) ? ` (${error})` : '';
      throw this.#fail(`token endpoint answered HTTP ${res.statusCode}${suffix}`);
    }
    if (json === undefined) throw this.#fail('token response is not a JSON object');
    const token = json.access_token;
    if (typeof token !== 'string' || !TOKEN_CHARS_RE.test(token)) {
      throw this.#fail('token response has no usable access_token');
    }
    const tokenType = json.token_type;
    if (tokenType !== undefined && (typeof tokenType !== 'string' || tokenType.toLowerCase() !== 'bearer')) {
      throw this.#fail(`token_type ${JSON.stringify(tokenType)} is not supported (expected Bearer)`);
    }
    const expiresIn = Number(json.expires_in);
    const lifetimeMs =
      json.expires_in !== undefined && Number.isFinite(expiresIn) && expiresIn > 0
        ? expiresIn * 1000
        : this.#defaultLifetimeMs;
    const skew = Math.min(this.#skewMs, lifetimeMs / 2);
    const headers = Object.freeze({ authorization: `Bearer ${token}` });
    // Measured from when the request was sent, so a slow endpoint cannot make us overshoot.
    this.#cached = { headers, refreshAt: startedAt + lifetimeMs - skew };
    this.#logger.debug({ server: this.#server, expiresInSeconds: lifetimeMs / 1000 }, 'upstream token obtained');
    return headers;
  }
}

function configError(serverName: string, detail: string): GatewayError {
  return new GatewayError('SWB_ERR_CONFIG_INVALID', `servers.${serverName}.auth: ${detail}`);
}

/**
 * Refuses an `oauth2-user` server added or changed through the admin API: its users' browsers
 * and its client secret would go where the runtime entry says, and the broker's callback serves
 * the configuration file's servers only.
 *
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` naming the first such server
 */
export function refuseRuntimeUserAuth(servers: Readonly<Record<string, object>>): void {
  for (const [name, cfg] of Object.entries(servers)) {
    const type = 'auth' in cfg ? (cfg.auth as { type?: unknown } | undefined)?.type : undefined;
    if (type === 'oauth2-user') {
      throw configError(name, 'auth.type "oauth2-user" is configured in the configuration file, not at runtime');
    }
  }
}

/**
 * Builds the outbound credential of one upstream from its `auth` config.
 * Call once per server at startup/reload; `headersFor` is the hot path.
 *
 * @param auth - the server's `auth`; `undefined` means `{type: none}`.
 * @throws GatewayError `SWB_ERR_CONFIG_INVALID` when a bearer token or basic credential contains
 *   characters that cannot appear in a header (CR, LF, controls…), or a basic username contains
 *   `:` (RFC 7617 §2), for `oauth2-user` without a token vault, and for `token-exchange` with
 *   `actorToken: client-assertion` without `options.identity` (the gateway's identity signing
 *   key). The message never contains the secret.
 */
export function createUpstreamCredentials(
  auth: UpstreamAuth | undefined,
  options: UpstreamCredentialsOptions,
): UpstreamCredentials {
  if (auth === undefined) return new StaticCredentials('none', EMPTY);
  switch (auth.type) {
    case 'none':
      return new StaticCredentials('none', EMPTY);
    case 'bearer':
      if (!TOKEN_CHARS_RE.test(auth.token)) {
        throw configError(options.serverName, 'the bearer token contains spaces, line breaks or control characters');
      }
      return new StaticCredentials('bearer', Object.freeze({ authorization: `Bearer ${auth.token}` }));
    case 'basic': {
      if (auth.username.includes(':'))
        throw configError(options.serverName, 'a basic-auth username cannot contain ":"');

      if (/[\x00-\x1f\x7f]/.test(auth.username + auth.password)) {
        throw configError(options.serverName, 'the basic-auth credential contains control characters');
      }
      const encoded = Buffer.from(`${auth.username}:${auth.password}`, 'utf8').toString('base64');
      return new StaticCredentials('basic', Object.freeze({ authorization: `Basic ${encoded}` }));
    }
    case 'oauth2-client-credentials':
      return new ClientCredentials(auth, options);
    case 'forward':
      return new ForwardCredentials();
    case 'token-exchange':
      return createTokenExchangeCredentials(auth, options);
    case 'oauth2-user':
      // Refused rather than run without a credential: calling the upstream anonymously on the
      // user's behalf would be wrong in both directions.
      if (options.userTokens === undefined || options.serverUrl === undefined) {
        throw configError(options.serverName, 'oauth2-user needs the token vault, which needs a database');
      }
      return new UserTokenCredentials(
        options.userTokens,
        { name: options.serverName, url: options.serverUrl, auth },
        options.logger,
      );
  }
}
