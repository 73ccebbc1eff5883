/**
 * `GET /oauth/client-metadata.json`: the gateway's OAuth client ID metadata document
 * (draft-ietf-oauth-client-id-metadata-document §3; MCP authorization 2025-11-25 "Client ID
 * Metadata Documents"). With `registration: metadata-document`, the URL of this document is the
 * gateway's `client_id` at an upstream's authorization server, which fetches it to learn the
 * client's name and redirect URI. Public, like the callback: it holds nothing secret.
 *
 * @module
 */
import { GatewayError } from '../errors.js';
import type { RouteHandler } from './server.js';

/** The path of the document. */
export const CLIENT_METADATA_PATH = '/oauth/client-metadata.json';

/**
 * The document's route.
 *
 * @param document - the document (`UpstreamOAuthBroker.clientMetadataDocument`), built once
 * @param maxAgeSec - how long authorization servers may cache it (`Cache-Control: max-age`). Default 3600.
 */
export function createClientMetadataRoute(document: Record<string, unknown>, maxAgeSec = 3600): RouteHandler {
  const body = JSON.stringify(document);
  return function clientMetadata(req, res, path) {
    if (path !== CLIENT_METADATA_PATH) return false;
    if (req.method !== 'GET' && req.method !== 'HEAD')
      throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET');
    res.writeHead(200, {
      'content-type': 'application/json',
      'cache-control': `public, max-age=${maxAgeSec}`,
      'content-length': Buffer.byteLength(body),
    });
    res.end(req.method === 'HEAD' ? undefined : body);
    return true;
  };
}
