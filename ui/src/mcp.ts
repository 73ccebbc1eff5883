/**
 * "Try it": calls one tool through the gateway's MCP endpoint as the logged-in principal, over
 * Streamable HTTP (MCP 2025-11-25, basic/transports): `initialize`, `notifications/initialized`,
 * `tools/call`, then `DELETE` of the session. Answers may be JSON or an SSE stream; the `message`
 * event whose JSON-RPC id matches is the answer.
 *
 * @module
 */
import { authHeaders, errorFrom, notifyUnauthorized } from './api.ts';
import { readEventStream } from './sse.ts';

/** The protocol version offered in `initialize`. */
export const PROTOCOL_VERSION = '2025-11-25';

/** Largest answer body read: 8 MiB (a tool result with images can be large, not unbounded). */
export const MAX_ANSWER_BYTES = 8 * 1024 * 1024;

/** One `content[]` item of a tool result (MCP server/tools, "Tool Result"). */
export interface ContentItem {
  type: string;
  text?: string;
  data?: string;
  mimeType?: string;
  uri?: string;
  name?: string;
  resource?: { uri?: string; text?: string; mimeType?: string };
}

/** A `tools/call` result. */
export interface ToolResult {
  content?: ContentItem[];
  structuredContent?: unknown;
  isError?: boolean;
}

/** A JSON-RPC 2.0 response (§5). */
export interface JsonRpcAnswer {
  jsonrpc: '2.0';
  id?: number | string;
  result?: unknown;
  error?: { code: number; message: string; data?: unknown };
}

/** A JSON-RPC error answer of the gateway or the upstream. */
export class JsonRpcError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.name = 'JsonRpcError';
    this.code = code;
  }
}

async function limitedText(res: Response): Promise<string> {
  if (!res.body) return '';
  const reader = res.body.getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > MAX_ANSWER_BYTES) {
      await reader.cancel();
      throw new Error(`the answer is larger than ${MAX_ANSWER_BYTES / 1024 / 1024} MiB`);
    }
    chunks.push(value);
  }
  return new TextDecoder().decode(await new Blob(chunks as BlobPart[]).arrayBuffer());
}

/**
 * Reads the JSON-RPC answer with `id` from a JSON or `text/event-stream` answer.
 *
 * @throws Error when the answer exceeds {@link MAX_ANSWER_BYTES}, or the stream ends without it.
 */
export async function answerOf(res: Response, id: number): Promise<JsonRpcAnswer> {
  const type = res.headers.get('content-type') ?? '';
  if (type.startsWith('text/event-stream')) {
    if (!res.body) throw new Error('empty event stream');
    let found: JsonRpcAnswer | undefined;
    let size = 0;
    await readEventStream(res.body, MAX_ANSWER_BYTES, (event) => {
      size += event.data.length;
      if (size > MAX_ANSWER_BYTES) throw new Error('the answer stream is too large');
      if (found || (event.event !== undefined && event.event !== 'message')) return;
      try {
        const msg = JSON.parse(event.data) as JsonRpcAnswer;
        if (msg.id === id && (msg.result !== undefined || msg.error !== undefined)) found = msg;
      } catch {
        // Not JSON: not an answer.
      }
    });
    if (!found) throw new Error('the stream ended without an answer');
    return found;
  }
  return JSON.parse(await limitedText(res)) as JsonRpcAnswer;
}

/**
 * Calls `tool` with `args` on the MCP endpoint at `path` (`/mcp`, `/mcp/NAME`,
 * `/servers/NAME/mcp`).
 *
 * @throws ApiError for an HTTP error answer, JsonRpcError for a JSON-RPC error.
 */
export async function callTool(path: string, tool: string, args: Record<string, unknown>): Promise<ToolResult> {
  const base = authHeaders({ 'content-type': 'application/json', accept: 'application/json, text/event-stream' });
  let nextId = 1;
  let headers = base;
  const post = async (message: Record<string, unknown>): Promise<Response> => {
    const res = await fetch(path, { method: 'POST', headers, body: JSON.stringify({ jsonrpc: '2.0', ...message }) });
    if (res.status === 401) notifyUnauthorized();
    if (!res.ok) throw await errorFrom(res);
    return res;
  };
  const request = async (method: string, params: unknown): Promise<unknown> => {
    const id = nextId++;
    const answer = await answerOf(await post({ id, method, params }), id);
    if (answer.error) throw new JsonRpcError(answer.error.code, answer.error.message);
    return answer.result;
  };

  const initRes = await post({
    id: nextId++,
    method: 'initialize',
    params: {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'switchboard-ui', version: '1' },
    },
  });
  const sessionId = initRes.headers.get('mcp-session-id');
  const init = await answerOf(initRes, 1);
  if (init.error) throw new JsonRpcError(init.error.code, init.error.message);
  const version = (init.result as { protocolVersion?: string } | undefined)?.protocolVersion ?? PROTOCOL_VERSION;
  headers = { ...base, 'mcp-protocol-version': version, ...(sessionId ? { 'mcp-session-id': sessionId } : {}) };
  try {
    const note = await post({ method: 'notifications/initialized' });
    await note.body?.cancel();
    return (await request('tools/call', { name: tool, arguments: args })) as ToolResult;
  } finally {
    if (sessionId) {
      await fetch(path, { method: 'DELETE', headers }).then(
        (r) => r.body?.cancel(),
        () => undefined,
      );
    }
  }
}
