/**
 * Test helpers for MCP 2026-07-28: official SDK v2 clients (`@modelcontextprotocol/client`
 * 2.4.0) over Streamable HTTP or stdio, and the stdio command line of the v2 fixture
 * (`test/fixtures/v2-stdio-server.ts`).
 */
import { fileURLToPath } from 'node:url';
import { Client, StreamableHTTPClientTransport, type VersionNegotiationMode } from '@modelcontextprotocol/client';
import { StdioClientTransport } from '@modelcontextprotocol/client/stdio';
import type { V2LegacyMode } from '../fixtures/v2-server.js';

/** Absolute path of the stdio fixture entry. */
export const V2_STDIO_ENTRY = fileURLToPath(new URL('../fixtures/v2-stdio-server.ts', import.meta.url));

/**
 * `command`/`args` that start the stdio fixture with the current Node (through tsx), usable both
 * as a gateway `servers:` entry and as SDK stdio parameters.
 *
 * @param legacy - `serve` (dual-era, default) or `reject` (modern-only).
 */
export function v2StdioCommand(legacy: V2LegacyMode = 'serve'): { command: string; args: string[] } {
  return { command: process.execPath, args: ['--import', 'tsx', V2_STDIO_ENTRY, '--legacy', legacy] };
}

/** The pinned 2026-07-28 negotiation mode. */
export const PIN_2026: VersionNegotiationMode = { pin: '2026-07-28' };

/** What a v2 test client answers when the server asks for input. */
export interface V2ClientHandlers {
  /** Answer to `elicitation/create` (declares the `elicitation` capability). */
  elicit?: (params: { message: string; requestedSchema?: unknown }) => {
    action: 'accept' | 'decline' | 'cancel';
    content?: Record<string, string | number | boolean | string[]>;
  };
  /** Text the "LLM" answers to `sampling/createMessage` (declares the `sampling` capability). */
  sample?: (params: { messages: Array<{ content: unknown }> }) => string;
}

/**
 * A v2 `Client` with the given negotiation mode and, when handlers are given, the matching
 * capabilities and request handlers (used both for 2025-era server→client requests and for
 * 2026-07-28 `input_required` auto-fulfilment).
 *
 * @param mode - `legacy`, `auto` or `{ pin: '2026-07-28' }`.
 * @param handlers - Optional elicitation / sampling answers.
 */
export function v2Client(mode: VersionNegotiationMode, handlers: V2ClientHandlers = {}): Client {
  const capabilities: Record<string, object> = {};
  if (handlers.elicit) capabilities['elicitation'] = {};
  if (handlers.sample) capabilities['sampling'] = {};
  const client = new Client(
    { name: 'switchboard-v2-test-client', version: '1.0.0' },
    { capabilities, versionNegotiation: { mode } },
  );
  const { elicit, sample } = handlers;
  if (elicit) client.setRequestHandler('elicitation/create', (request) => elicit(request.params as never));
  if (sample) {
    client.setRequestHandler('sampling/createMessage', (request) => ({
      role: 'assistant',
      content: { type: 'text', text: sample(request.params) },
      model: 'switchboard-test-model',
    }));
  }
  return client;
}

/** Connects a v2 client to a Streamable HTTP endpoint; see {@link v2Client}. */
export async function connectV2Http(
  url: string,
  mode: VersionNegotiationMode,
  handlers: V2ClientHandlers = {},
): Promise<Client> {
  const client = v2Client(mode, handlers);
  await client.connect(new StreamableHTTPClientTransport(new URL(url)));
  return client;
}

/** Spawns the stdio fixture and connects a v2 client to it; see {@link v2Client}. */
export async function connectV2Stdio(
  legacy: V2LegacyMode,
  mode: VersionNegotiationMode,
  handlers: V2ClientHandlers = {},
): Promise<Client> {
  const client = v2Client(mode, handlers);
  await client.connect(new StdioClientTransport({ ...v2StdioCommand(legacy), stderr: 'ignore' }));
  return client;
}
