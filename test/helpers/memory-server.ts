/**
 * Test helper: a real MCP server (the official SDK's low-level `Server`) served in-process over
 * {@link createMemoryTransportPair}, one SDK server per upstream connection, with a catalog and
 * tool handlers the test controls. `createTransport` plugs it into `UpstreamOptions` /
 * `GatewayOptions`.
 */
import { Server } from '@modelcontextprotocol/sdk/server/index.js';
import {
  CallToolRequestSchema,
  CreateMessageResultSchema,
  GetPromptRequestSchema,
  ListPromptsRequestSchema,
  ListResourcesRequestSchema,
  ListResourceTemplatesRequestSchema,
  ListToolsRequestSchema,
  ListRootsResultSchema,
  ReadResourceRequestSchema,
  SetLevelRequestSchema,
  SubscribeRequestSchema,
  UnsubscribeRequestSchema,
  type CallToolResult,
  type ServerNotification,
  type ServerRequest,
} from '@modelcontextprotocol/sdk/types.js';
import type { RequestHandlerExtra } from '@modelcontextprotocol/sdk/shared/protocol.js';
import {
  createMemoryTransportPair,
  type MemoryTransportOptions,
  type MemoryTransportPair,
} from '../../src/upstream/memory-transport.js';
import type { MessageTransport } from '../../src/upstream/transport.js';
import type { JsonObject } from '../../src/protocol/jsonrpc.js';

export type Extra = RequestHandlerExtra<ServerRequest, ServerNotification>;
/** Handles `tools/call` of one tool: gets the arguments and the SDK's request extra. */
export type ToolHandler = (args: JsonObject, extra: Extra, server: Server) => CallToolResult | Promise<CallToolResult>;

/** Options of {@link MemoryUpstream}. */
export interface MemoryUpstreamOptions extends MemoryTransportOptions {
  tools?: JsonObject[];
  prompts?: JsonObject[];
  resources?: JsonObject[];
  resourceTemplates?: JsonObject[];
  /** The upstream pages its lists by this many items (with `nextCursor` = the next index). */
  pageSize?: number;
  /** Declare `logging` (default true). */
  logging?: boolean;
}

/** The answer of the default tool handler: names the tool and echoes the arguments as text. */
export function echoResult(tool: string, args: JsonObject): CallToolResult {
  return { content: [{ type: 'text', text: JSON.stringify({ tool, args }) }] };
}

/** A test upstream: SDK servers behind memory pairs, one per connection the gateway opens. */
export class MemoryUpstream {
  readonly options: MemoryUpstreamOptions;
  tools: JsonObject[];
  prompts: JsonObject[];
  resources: JsonObject[];
  resourceTemplates: JsonObject[];
  /** One entry per connection, in order. */
  readonly servers: Server[] = [];
  readonly pairs: MemoryTransportPair[] = [];
  /** Requests the servers handled (not initialize), in order: method and params. */
  readonly received: Array<{ method: string; params: JsonObject | undefined }> = [];
  /** Tool handlers by upstream tool name; others echo. */
  readonly handlers = new Map<string, ToolHandler>();
  /** When set, `createTransport` throws it (a child that cannot be spawned). */
  failConnect: Error | undefined;

  constructor(options: MemoryUpstreamOptions = {}) {
    this.options = options;
    this.tools = options.tools ?? [];
    this.prompts = options.prompts ?? [];
    this.resources = options.resources ?? [];
    this.resourceTemplates = options.resourceTemplates ?? [];
  }

  /** The factory for `UpstreamOptions.createTransport`: a new pair with a new SDK server. */
  readonly createTransport = (): MessageTransport => {
    if (this.failConnect) throw this.failConnect;
    const pair = createMemoryTransportPair(this.options);
    const server = this.#build();
    this.servers.push(server);
    this.pairs.push(pair);
    // The SDK connects asynchronously; the gateway end's first message is delivered after it.
    void server.connect(pair.server);
    return pair.upstream;
  };

  /** The latest connection's server. */
  get server(): Server {
    const s = this.servers.at(-1);
    if (!s) throw new Error('no connection yet');
    return s;
  }

  /** Replaces the tool list and tells every live server's client (`tools/list_changed`). */
  async setTools(tools: JsonObject[]): Promise<void> {
    this.tools = tools;
    await Promise.all(this.servers.map((s) => s.sendToolListChanged().catch(() => undefined)));
  }

  #page(items: JsonObject[], field: string, cursor: string | undefined): JsonObject {
    const size = this.options.pageSize ?? 0;
    if (size <= 0) return { [field]: items };
    const start = cursor === undefined ? 0 : Number(cursor);
    const end = start + size;
    return end < items.length
      ? { [field]: items.slice(start, end), nextCursor: String(end) }
      : { [field]: items.slice(start, end) };
  }

  #build(): Server {
    const server = new Server(
      { name: this.options.name ?? 'memory', version: '1.0.0' },
      {
        capabilities: {
          tools: { listChanged: true },
          prompts: { listChanged: true },
          resources: { subscribe: true, listChanged: true },
          ...(this.options.logging === false ? {} : { logging: {} }),
        },
      },
    );
    const seen = (method: string, params: unknown): void => {
      this.received.push({ method, params: params as JsonObject | undefined });
    };
    server.setRequestHandler(ListToolsRequestSchema, (req) => {
      seen(req.method, req.params);
      return this.#page(this.tools, 'tools', req.params?.cursor);
    });
    server.setRequestHandler(ListPromptsRequestSchema, (req) => {
      seen(req.method, req.params);
      return this.#page(this.prompts, 'prompts', req.params?.cursor);
    });
    server.setRequestHandler(ListResourcesRequestSchema, (req) => {
      seen(req.method, req.params);
      return this.#page(this.resources, 'resources', req.params?.cursor);
    });
    server.setRequestHandler(ListResourceTemplatesRequestSchema, (req) => {
      seen(req.method, req.params);
      return this.#page(this.resourceTemplates, 'resourceTemplates', req.params?.cursor);
    });
    server.setRequestHandler(CallToolRequestSchema, async (req, extra) => {
      seen(req.method, req.params);
      const args = (req.params.arguments ?? {}) as JsonObject;
      const handler = this.handlers.get(req.params.name);
      return handler ? handler(args, extra, server) : echoResult(req.params.name, args);
    });
    server.setRequestHandler(GetPromptRequestSchema, (req) => {
      seen(req.method, req.params);
      return { messages: [{ role: 'user', content: { type: 'text', text: `prompt ${req.params.name}` } }] };
    });
    server.setRequestHandler(ReadResourceRequestSchema, (req) => {
      seen(req.method, req.params);
      return { contents: [{ uri: req.params.uri, text: `contents of ${req.params.uri}` }] };
    });
    server.setRequestHandler(SubscribeRequestSchema, (req) => {
      seen(req.method, req.params);
      return {};
    });
    server.setRequestHandler(UnsubscribeRequestSchema, (req) => {
      seen(req.method, req.params);
      return {};
    });
    if (this.options.logging !== false) {
      server.setRequestHandler(SetLevelRequestSchema, (req) => {
        seen(req.method, req.params);
        return {};
      });
    }
    return server;
  }
}

/** A tool handler asking the client for a sampling answer and returning its text. */
export const samplingTool: ToolHandler = async (_args, extra) => {
  const answer = await extra.sendRequest(
    {
      method: 'sampling/createMessage',
      params: { messages: [{ role: 'user', content: { type: 'text', text: 'hi' } }], maxTokens: 5 },
    },
    CreateMessageResultSchema,
  );
  const content = answer.content as { text?: string };
  return { content: [{ type: 'text', text: `sampled: ${content.text ?? ''}` }] };
};

/** A tool handler asking the client for its roots and returning how many it has. */
export const rootsTool: ToolHandler = async (_args, extra) => {
  const answer = await extra.sendRequest({ method: 'roots/list' }, ListRootsResultSchema);
  return { content: [{ type: 'text', text: `roots: ${answer.roots.map((r) => r.uri).join(',')}` }] };
};

/** A deferred promise, for tool handlers a test releases. */
export function deferred<T = void>(): { promise: Promise<T>; resolve: (v: T) => void } {
  let resolve!: (v: T) => void;
  const promise = new Promise<T>((r) => (resolve = r));
  return { promise, resolve };
}

/** Waits until `check()` is true, turning the event loop (microtasks and immediates) meanwhile. */
export async function until(check: () => boolean, turns = 200): Promise<void> {
  for (let i = 0; i < turns; i++) {
    if (check()) return;
    await new Promise((r) => setImmediate(r));
  }
  throw new Error('condition not reached');
}
