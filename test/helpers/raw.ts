/**
 * Raw HTTP helpers for edge tests: exact status codes and bodies, no SDK in between.
 */

export const MCP_HEADERS = {
  'content-type': 'application/json',
  accept: 'application/json, text/event-stream',
};

/** POSTs a body (string sent verbatim, otherwise JSON-encoded). */
export async function post(url: string, body: unknown, headers: Record<string, string> = {}): Promise<Response> {
  return fetch(url, {
    method: 'POST',
    headers: { ...MCP_HEADERS, ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
  });
}

/** Initializes a session and returns its id (after sending notifications/initialized). */
export async function initSession(
  url: string,
  capabilities: Record<string, unknown> = {},
  protocolVersion = '2025-06-18',
): Promise<string> {
  const res = await post(url, {
    jsonrpc: '2.0',
    id: 1,
    method: 'initialize',
    params: { protocolVersion, capabilities, clientInfo: { name: 'raw', version: '1' } },
  });
  if (res.status !== 200) throw new Error(`initialize failed: ${res.status} ${await res.text()}`);
  const id = res.headers.get('mcp-session-id');
  await res.text();
  if (!id) throw new Error('no Mcp-Session-Id');
  const n = await post(url, { jsonrpc: '2.0', method: 'notifications/initialized' }, { 'mcp-session-id': id });
  await n.text();
  return id;
}

/** Parses an SSE body into its events. */
export function parseSse(body: string): Array<{ id?: string; event?: string; data: string }> {
  const out: Array<{ id?: string; event?: string; data: string }> = [];
  for (const block of body.split('\n\n')) {
    if (!block.trim()) continue;
    const ev: { id?: string; event?: string; data: string } = { data: '' };
    for (const line of block.split('\n')) {
      if (line.startsWith('id: ')) ev.id = line.slice(4);
      else if (line.startsWith('event: ')) ev.event = line.slice(7);
      else if (line.startsWith('data: ')) ev.data += line.slice(6);
    }
    if (ev.data || ev.event || ev.id) out.push(ev);
  }
  return out;
}

/** Reads a JSON or SSE response body and returns the JSON-RPC messages in it. */
export async function messages(res: Response): Promise<Array<Record<string, unknown>>> {
  const text = await res.text();
  if ((res.headers.get('content-type') ?? '').includes('text/event-stream')) {
    return parseSse(text)
      .filter((e) => e.data.trim() !== '')
      .map((e) => JSON.parse(e.data) as Record<string, unknown>);
  }
  return text ? [JSON.parse(text) as Record<string, unknown>] : [];
}
