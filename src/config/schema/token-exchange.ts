/**
 * `auth.type: token-exchange` of a remote server: the RFC 8693 exchange of the caller's OAuth
 * access token for a token meant for the upstream (docs/upstream-identity.md#token-exchange).
 *
 * @module
 */
import { z } from 'zod';

/** RFC 8693 §3 token type identifiers (`urn:ietf:params:oauth:token-type:…`) or any absolute URI. */
const TokenTypeUri = z
  .string()
  .regex(
    /^[A-Za-z][A-Za-z0-9+.-]*:\S+$/,
    'expected a token type URI such as urn:ietf:params:oauth:token-type:access_token',
  );

/**
 * `token-exchange`: the caller's inbound OAuth access token is exchanged (RFC 8693 §2.1) for a
 * token meant for this upstream, per caller, at the inbound authorization server's token endpoint
 * (RFC 8414 discovery of `auth.oauth.issuer`) unless `tokenEndpoint` is set. The gateway
 * authenticates as its own client with `client_secret_basic` (RFC 6749 §2.3.1).
 */
export const TokenExchangeAuth = z
  .object({
    type: z.literal('token-exchange'),
    clientId: z.string().min(1, "expected the gateway's client id at the token endpoint"),
    clientSecret: z.string().min(1, "expected the gateway's client secret"),
    /** RFC 8693 §2.1 `audience`: the logical name of the upstream the token is for. */
    audience: z.string().min(1, "expected the upstream's audience (usually its URL)"),
    /** RFC 8693 §2.1 `scope`, space-separated. */
    scope: z.string().min(1).optional(),
    /** Token endpoint; default: `token_endpoint` of the inbound issuer's metadata. */
    tokenEndpoint: z.url({ protocol: /^https?$/, error: 'expected an http:// or https:// URL' }).optional(),
    /** RFC 8693 §2.1 / RFC 8707 `resource`: an absolute URI of the upstream. */
    resource: z.url({ error: 'expected an absolute URI' }).optional(),
    /** RFC 8693 §2.1 `requested_token_type`. Default: not sent (the server chooses). */
    requestedTokenType: TokenTypeUri.optional(),
    /**
     * `none` (default): no RFC 8693 `actor_token`. `client-assertion`: the request carries an
     * `actor_token` (§2.1) of type `urn:ietf:params:oauth:token-type:jwt`, a JWT the gateway signs
     * with its identity signing key (`iss` = the public URL, `sub` = `clientId`, `aud` = the token
     * endpoint), so the issued token can name the gateway in an `act` claim (§4.1).
     */
    actorToken: z.enum(['none', 'client-assertion']).optional(),
    /** RFC 8693 §2.1 `subject_token_type`. Default `urn:ietf:params:oauth:token-type:access_token`. */
    subjectTokenType: TokenTypeUri.optional(),
  })
  .strict();
export type TokenExchangeAuth = z.infer<typeof TokenExchangeAuth>;
