/**
 * Pieces shared by the gateway's own OAuth token requests to upstream authorization servers
 * (client credentials, RFC 6749 §4.4; token exchange, RFC 8693): client authentication, a
 * bounded read of the answer, and the checks applied to it.
 *
 * @module
 */
import type { Dispatcher } from 'undici';

/** Visible ASCII only: a credential with CR/LF or controls would be refused by undici on every request. */
export const TOKEN_CHARS_RE = /^[\x21-\x7e]+$/;
/** RFC 6749 §5.2 `error` values: NQSCHAR (%x20-21 / %x23-5B / %x5D-7E), at most 64 characters here. */
export const OAUTH_ERROR_RE = /^[\x20\x21\x23-\x5b\x5d-\x7e]{1,64}$/;
/** Longest token endpoint answer read, in bytes; a longer one counts as unreadable. */
export const MAX_TOKEN_RESPONSE_BYTES = 64 * 1024;

/** RFC 6749 §2.3.1: client id and secret are form-urlencoded before the Basic encoding. */
function formEncode(v: string): string {
  return new URLSearchParams({ v }).toString().slice(2);
}

/** The `Authorization` header value of `client_secret_basic` (RFC 6749 §2.3.1). */
export function clientSecretBasic(clientId: string, clientSecret: string): string {
  const pair = `${formEncode(clientId)}:${formEncode(clientSecret)}`;
  return `Basic ${Buffer.from(pair, 'utf8').toString('base64')}`;
}

/** The body as UTF-8, or `undefined` (body destroyed) once it exceeds `max` bytes. */
export async function readCapped(body: Dispatcher.ResponseData['body'], max: number): Promise<string | undefined> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > max) {
      body.destroy();
      return undefined;
    }
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** `text` parsed as a JSON object, or `undefined` when it is absent, not JSON or not an object. */
export function parseJsonObject(text: string | undefined): Record<string, unknown> | undefined {
  if (text === undefined) return undefined;
  try {
    const v: unknown = JSON.parse(text);
    return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}
