/**
 * The "connect your account first" answer of an `oauth2-user` upstream, the MCP way.
 *
 * A call fails with `SWB_ERR_UPSTREAM_NOT_CONNECTED` (`data.authorizationUrl`) when the caller has
 * no upstream connection yet (`upstream/user-credentials.ts`). A client that declared URL-mode
 * elicitation (`capabilities.elicitation.url`, MCP 2025-11-25 client/elicitation §Capabilities;
 * in a 2026-07-28 request's `_meta` client capabilities alike) gets the URL elicitation required
 * error instead (§URL Elicitation Required Error, code -32042): `data.elicitations` holds one
 * `{mode: "url", elicitationId, url, message}`; the client shows the URL, the user connects in
 * a browser, and the client retries the call. Other clients keep the gateway's error, whose
 * `data.authorizationUrl` carries the same URL.
 *
 * @module
 */
import { randomUUID } from 'node:crypto';
import { MCP_URL_ELICITATION_REQUIRED } from '../protocol/era.js';
import type { JsonRpcResponse } from '../protocol/jsonrpc.js';
import type { ClientCapabilities } from '../upstream/attribution.js';

/** Whether the client declared URL-mode elicitation (MCP 2025-11-25: `elicitation.url` present). */
export function acceptsUrlElicitation(caps: ClientCapabilities | undefined): boolean {
  const elicitation = caps?.elicitation;
  return elicitation !== undefined && elicitation !== null && elicitation.url !== undefined;
}

/**
 * Rewrites, in place, a `SWB_ERR_UPSTREAM_NOT_CONNECTED` error response into the MCP URL
 * elicitation required error when the client accepts URL-mode elicitation. Any other response is
 * left as it is.
 *
 * @returns whether the response was rewritten
 */
export function offerUrlElicitation(response: JsonRpcResponse, caps: ClientCapabilities | undefined): boolean {
  if (!('error' in response)) return false;
  const data = response.error.data as { code?: unknown; server?: unknown; authorizationUrl?: unknown } | undefined;
  if (data?.code !== 'SWB_ERR_UPSTREAM_NOT_CONNECTED' || typeof data.authorizationUrl !== 'string') return false;
  if (!acceptsUrlElicitation(caps)) return false;
  const server = typeof data.server === 'string' ? data.server : 'the upstream';
  const message = `Connect your ${server} account to Switchboard, then retry.`;
  response.error = {
    code: MCP_URL_ELICITATION_REQUIRED,
    message: 'URL elicitation required',
    data: {
      elicitations: [{ mode: 'url', elicitationId: randomUUID(), url: data.authorizationUrl, message }],
      code: data.code,
      server,
    },
  };
  return true;
}
