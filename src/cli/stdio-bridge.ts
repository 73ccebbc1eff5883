/**
 * `switchboard stdio --url URL [--token TOKEN]`: a stdio ↔ Streamable HTTP bridge. MCP clients
 * that can only launch local commands run it as their "server"; it forwards every JSON-RPC
 * message from its stdin to a gateway endpoint (`/mcp`, `/mcp/{virtual}`,
 * `/servers/{name}/mcp`) and every message from the gateway to its stdout, unchanged. See
 * `docs/clients.md`.
 *
 * stdout carries JSON-RPC only; diagnostics go to stderr.
 *
 * @module
 */
import { StdioServerTransport } from '@modelcontextprotocol/sdk/server/stdio.js';
import { StreamableHTTPClientTransport, StreamableHTTPError } from '@modelcontextprotocol/sdk/client/streamableHttp.js';
import {
  isJSONRPCRequest,
  isJSONRPCResultResponse,
  type JSONRPCMessage,
  type RequestId,
} from '@modelcontextprotocol/sdk/types.js';
import type { Readable, Writable } from 'node:stream';
import { processOutput, type CliOutput } from './check.js';

/** Options of {@link runStdioBridge}. */
export interface StdioBridgeOptions {
  /** Gateway MCP endpoint, e.g. `http://127.0.0.1:8080/mcp` (required, `http:` or `https:`). */
  url: string;
  /**
   * API token sent as `Authorization: Bearer <token>`. Default: the `SWITCHBOARD_TOKEN`
   * environment variable (a token on the command line is visible to other users in `ps`). No
   * token: no `Authorization` header.
   */
  token?: string;
  /** Environment consulted for `SWITCHBOARD_TOKEN`. Default `process.env`. */
  env?: NodeJS.ProcessEnv;
  /** Where JSON-RPC messages come from. Default `process.stdin`. */
  stdin?: Readable;
  /** Where JSON-RPC messages go. Default `process.stdout`. */
  stdout?: Writable;
}

/** JSON-RPC error code the bridge answers a request with when the gateway could not be reached. */
export const BRIDGE_ERROR_CODE = -32000;

/**
 * One line describing an HTTP-side failure for stderr: the status and what to check for 401,
 * 403 and 404, the cause (e.g. `ECONNREFUSED`) for network errors.
 */
export function describeHttpError(error: unknown, url: string): string {
  if (error instanceof StreamableHTTPError) {
    const status = error.code ?? -1;
    if (status === 401) return `the gateway at ${url} refused the token (HTTP 401): check --token or SWITCHBOARD_TOKEN`;
    if (status === 403) return `the gateway at ${url} denied access (HTTP 403): the token lacks a permission`;
    if (status === 404)
      return `not found at ${url} (HTTP 404): check the endpoint path, or the session ended on the gateway`;
    const detail = oneLine(error.message);
    return status > 0 ? `the gateway at ${url} answered HTTP ${status}: ${detail}` : `${url}: ${detail}`;
  }
  if (error instanceof Error) {
    const cause = (error as { cause?: unknown }).cause;
    const causeText =
      cause instanceof Error
        ? ((cause as { code?: string }).code ?? cause.message)
        : typeof cause === 'string'
          ? cause
          : '';
    return `cannot reach the gateway at ${url}: ${oneLine(error.message)}${causeText ? ` (${oneLine(causeText)})` : ''}`;
  }
  return `gateway error at ${url}: ${oneLine(String(error))}`;
}

function oneLine(text: string): string {
  return text.replace(/\s+/g, ' ').trim();
}

/**
 * Runs the bridge until stdin ends, then ends the gateway session (HTTP DELETE, MCP
 * Streamable HTTP "Session Management") and resolves with the exit code: 0 after stdin EOF, 2
 * on a bad `url`.
 *
 * Every message is forwarded unchanged in both directions, including server→client requests
 * (sampling, elicitation, roots) and the client's answers. When the response to the client's
 * `initialize` passes, later HTTP requests carry `MCP-Protocol-Version` with the negotiated
 * version. A request the gateway could not take (HTTP error, network down) is answered on
 * stdout with a JSON-RPC error ({@link BRIDGE_ERROR_CODE}) for its id, and a one-line
 * explanation goes to `output.err`. Never throws.
 */
export async function runStdioBridge(options: StdioBridgeOptions, output: CliOutput = processOutput): Promise<number> {
  let url: URL;
  try {
    url = new URL(options.url);
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
  } catch {
    output.err(`switchboard stdio: --url must be an http:// or https:// URL, got ${JSON.stringify(options.url)}`);
    return 2;
  }
  const env = options.env ?? process.env;
  const token = options.token ?? (env.SWITCHBOARD_TOKEN || undefined);
  const stdin = options.stdin ?? process.stdin;
  const stdio = new StdioServerTransport(stdin, options.stdout ?? process.stdout);
  const http = new StreamableHTTPClientTransport(url, {
    requestInit: token === undefined ? undefined : { headers: { Authorization: `Bearer ${token}` } },
  });
  const report = (line: string): void => output.err(`switchboard stdio: ${line}`);
  const shown = url.href;
  let lastReported: unknown;
  let initializeId: RequestId | undefined;

  http.onerror = (error) => {
    lastReported = error;
    report(describeHttpError(error, shown));
  };
  stdio.onerror = (error) => report(`bad input on stdin: ${oneLine(error.message)}`);

  http.onmessage = (message: JSONRPCMessage) => {
    if (initializeId !== undefined && isJSONRPCResultResponse(message) && message.id === initializeId) {
      initializeId = undefined;
      const version = (message.result as { protocolVersion?: unknown }).protocolVersion;
      if (typeof version === 'string') http.setProtocolVersion(version);
    }
    stdio.send(message).catch((e: unknown) => report(`cannot write to stdout: ${String(e)}`));
  };

  stdio.onmessage = (message: JSONRPCMessage) => {
    if (isJSONRPCRequest(message) && message.method === 'initialize') initializeId = message.id;
    http.send(message).catch((error: unknown) => {
      if (error !== lastReported) report(describeHttpError(error, shown));
      if (!isJSONRPCRequest(message)) return;
      if (message.id === initializeId) initializeId = undefined;
      const reply: JSONRPCMessage = {
        jsonrpc: '2.0',
        id: message.id,
        error: {
          code: BRIDGE_ERROR_CODE,
          message: `switchboard stdio: ${describeHttpError(error, shown)}`,
          ...(error instanceof StreamableHTTPError && (error.code ?? 0) > 0
            ? { data: { httpStatus: error.code } }
            : {}),
        },
      };
      stdio.send(reply).catch(() => undefined);
    });
  };

  const ended = new Promise<void>((resolve) => {
    stdin.once('end', resolve);
    stdin.once('close', resolve);
  });
  await http.start();
  await stdio.start();
  await ended;
  try {
    await http.terminateSession();
  } catch {
    // Reported through onerror; the session expires on the gateway anyway.
  }
  await http.close().catch(() => undefined);
  await stdio.close().catch(() => undefined);
  return 0;
}
