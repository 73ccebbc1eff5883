/**
 * The MCP protocol versions of the 2025 era the front door speaks, and the version negotiation
 * of `initialize` (MCP lifecycle §Version Negotiation). Re-exported by `client-session.ts`.
 *
 * @module
 */

/** Protocol versions of the 2025 era the front door accepts, newest first. */
export const SUPPORTED_PROTOCOL_VERSIONS = ['2025-11-25', '2025-06-18', '2025-03-26', '2024-11-05'] as const;
/** Version assumed when a client sends no `MCP-Protocol-Version` header (transports §Protocol Version Header). */
export const DEFAULT_NEGOTIATED_VERSION = '2025-03-26';

/** The version to answer `initialize` with: the client's when supported, else the newest. */
export function negotiateVersion(requested: unknown): string {
  return typeof requested === 'string' && (SUPPORTED_PROTOCOL_VERSIONS as readonly string[]).includes(requested)
    ? requested
    : SUPPORTED_PROTOCOL_VERSIONS[0];
}
