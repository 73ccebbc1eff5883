/**
 * Helpers for the upstream transport tests: an inbox that records what a transport delivers,
 * real server-everything processes on free ports, and a spec-strict SDK fixture server
 * (404 for unknown sessions, resumable streams) for what server-everything does not do.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type IncomingMessage, type Server } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { createRequire } from 'node:module';
import { Writable } from 'node:stream';
import { McpServer } from '@modelcontextprotocol/sdk/server/mcp.js';
import { StreamableHTTPServerTransport } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { EventStore } from '@modelcontextprotocol/sdk/server/streamableHttp.js';
import type { JSONRPCMessage } from '@modelcontextprotocol/sdk/types.js';
import { pino } from 'pino';
import { z } from 'zod';
import type { Logger } from '../../../src/observability/logger.js';
import type { JsonRpcId, JsonRpcMessage, JsonRpcResponse } from '../../../src/protocol/jsonrpc.js';
import type { IncomingMessageInfo, MessageTransport, TransportCloseInfo } from '../../../src/upstream/transport.js';

const require = createRequire(import.meta.url);

/** Absolute path of server-everything's entry point. */
export const EVERYTHING_ENTRY = require.resolve('@modelcontextprotocol/server-everything/dist/index.js');

/** Protocol version the tests negotiate. */
export const PROTOCOL_VERSION = '2025-11-25';

/** A hand-written initialize request (the transports know nothing of the handshake). */
export function initializeRequest(id: JsonRpcId = 0): JsonRpcMessage {
  return {
    jsonrpc: '2.0',
    id,
    method: 'initialize',
    params: {
      protocolVersion: PROTOCOL_VERSION,
      capabilities: {},
      clientInfo: { name: 'switchboard-transport-test', version: '0.0.0' },
    },
  };
}

/** The `result` of a success response (fails the test on an error response). */
export function resultOf<T>(response: JsonRpcMessage): T {
  if (!('result' in response)) throw new Error(`expected a result, got ${JSON.stringify(response)}`);
  return response.result as T;
}

/** The `params` of a request or notification. */
export function paramsOf<T>(message: JsonRpcMessage): T {
  if (!('method' in message)) throw new Error(`expected a request or notification, got ${JSON.stringify(message)}`);
  return message.params as T;
}

/** One delivery of `onmessage`. */
export interface Delivery {
  message: JsonRpcMessage;
  info: IncomingMessageInfo;
}

/** Records a transport's callbacks and lets tests wait for them. */
export interface Inbox {
  readonly deliveries: Delivery[];
  readonly errors: Error[];
  readonly closes: TransportCloseInfo[];
  /** Waits for the first delivery (already recorded or future) that matches. */
  waitFor(predicate: (d: Delivery) => boolean, timeoutMs?: number): Promise<Delivery>;
  /** Waits for the response with this id. */
  response(id: JsonRpcId, timeoutMs?: number): Promise<{ response: JsonRpcResponse; info: IncomingMessageInfo }>;
  /** Waits for onclose. */
  closed(timeoutMs?: number): Promise<TransportCloseInfo>;
  /** Waits until at least `count` errors were reported. */
  errorCount(count: number, timeoutMs?: number): Promise<void>;
}

/** Attaches an {@link Inbox} to a transport (sets onmessage/onerror/onclose). */
export function attachInbox(transport: MessageTransport): Inbox {
  const deliveries: Delivery[] = [];
  const errors: Error[] = [];
  const closes: TransportCloseInfo[] = [];
  const listeners = new Set<() => void>();
  const notify = () => {
    for (const l of [...listeners]) l();
  };
  transport.onmessage = (message, info) => {
    deliveries.push({ message, info });
    notify();
  };
  transport.onerror = (error) => {
    errors.push(error);
    notify();
  };
  transport.onclose = (info) => {
    closes.push(info);
    notify();
  };
  const until = <T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const first = check();
      if (first !== undefined) return resolve(first);
      const timer = setTimeout(() => {
        listeners.delete(listener);
        reject(new Error(`timed out after ${timeoutMs} ms waiting for ${what}`));
      }, timeoutMs);
      const listener = () => {
        const value = check();
        if (value === undefined) return;
        clearTimeout(timer);
        listeners.delete(listener);
        resolve(value);
      };
      listeners.add(listener);
    });
  return {
    deliveries,
    errors,
    closes,
    waitFor: (predicate, timeoutMs = 10_000) => until(() => deliveries.find(predicate), timeoutMs, 'a delivery'),
    response: async (id, timeoutMs = 10_000) => {
      const d = await until(
        () => deliveries.find((x) => !('method' in x.message) && x.message.id === id),
        timeoutMs,
        `the response to ${JSON.stringify(id)}`,
      );
      return { response: d.message as JsonRpcResponse, info: d.info };
    },
    closed: (timeoutMs = 10_000) => until(() => closes[0], timeoutMs, 'onclose'),
    errorCount: async (count, timeoutMs = 10_000) => {
      await until(() => (errors.length >= count ? true : undefined), timeoutMs, `${count} errors`);
    },
  };
}

/** A pino logger that keeps its records in memory. */
export function memoryLogger(bindings: Record<string, unknown> = {}): {
  logger: Logger;
  records: Record<string, unknown>[];
} {
  const records: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n'))
        if (line !== '') records.push(JSON.parse(line) as Record<string, unknown>);
      cb();
    },
  });
  return { logger: pino({ level: 'debug' }, sink).child(bindings), records };
}

/** Finds a free TCP port on 127.0.0.1. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createNetServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const { port } = srv.address() as AddressInfo;
      srv.close(() => resolve(port));
    });
  });
}

// server-everything over HTTP: one helper for every suite (`test/helpers/everything.ts`).
export { startEverythingHttp, type EverythingHttp } from '../../helpers/everything.js';

/** An event store that replays only the asked stream (the one in server-everything replays all). */
class StreamEventStore implements EventStore {
  readonly #events: { id: string; streamId: string; message: JSONRPCMessage }[] = [];
  #seq = 0;

  async storeEvent(streamId: string, message: JSONRPCMessage): Promise<string> {
    const id = `${streamId}:${++this.#seq}`;
    this.#events.push({ id, streamId, message });
    return id;
  }

  async getStreamIdForEventId(eventId: string): Promise<string | undefined> {
    return this.#events.find((e) => e.id === eventId)?.streamId;
  }

  async replayEventsAfter(
    lastEventId: string,
    { send }: { send: (eventId: string, message: JSONRPCMessage) => Promise<void> },
  ): Promise<string> {
    const index = this.#events.findIndex((e) => e.id === lastEventId);
    const streamId = this.#events[index]?.streamId ?? '';
    for (const e of this.#events.slice(index + 1)) {
      // Priming events are stored as `{}`: nothing to replay.
      if (e.streamId === streamId && Object.keys(e.message).length > 0) await send(e.id, e.message);
    }
    return streamId;
  }
}

/** A spec-strict Streamable HTTP fixture built from the official SDK. */
export interface FixtureServer {
  readonly url: string;
  /** Every HTTP request received: method, session id header, Last-Event-ID header. */
  readonly requests: { method: string; sessionId?: string; lastEventId?: string; protocolVersion?: string }[];
  /** Forgets a session as a restarted server would (no DELETE): later requests get 404. */
  forgetSession(sessionId: string): void;
  /** Sends a notification with no related request (standalone GET stream) on every session. */
  broadcast(text: string): Promise<void>;
  /** Closes the standalone GET stream of every session (the client should reconnect). */
  closeStandaloneStreams(): void;
  close(): Promise<void>;
}

interface FixtureSession {
  transport: StreamableHTTPServerTransport;
  server: McpServer;
}

function header(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/**
 * Starts an SDK `McpServer` behind `StreamableHTTPServerTransport` on 127.0.0.1:0 with:
 * sessions (unknown ones get 404, as the spec says), a per-stream event store and
 * `retryInterval` 50 ms (2025-11-25 polling). Tools: `echo {message}`, and
 * `poll-then-answer {steps}` which sends progress, closes its SSE stream early after the first
 * step (the client must resume with GET + Last-Event-ID), and answers after `steps` steps.
 */
export async function startFixtureServer(options: { jsonResponse?: boolean } = {}): Promise<FixtureServer> {
  const sessions = new Map<string, FixtureSession>();
  const requests: FixtureServer['requests'] = [];

  const buildServer = (): McpServer => {
    const server = new McpServer({ name: 'transport-fixture', version: '1.0.0' }, { capabilities: { logging: {} } });
    server.registerTool('echo', { inputSchema: { message: z.string() } }, async ({ message }) => ({
      content: [{ type: 'text', text: `Echo: ${message}` }],
    }));
    server.registerTool('poll-then-answer', { inputSchema: { steps: z.number() } }, async ({ steps }, extra) => {
      const token = extra._meta?.progressToken;
      for (let i = 1; i <= steps; i++) {
        if (token !== undefined) {
          await extra.sendNotification({
            method: 'notifications/progress',
            params: { progressToken: token, progress: i, total: steps },
          });
        }
        if (i === 1) extra.closeSSEStream?.();
        await new Promise((r) => setTimeout(r, 30));
      }
      return { content: [{ type: 'text', text: `done after ${steps} steps` }] };
    });
    return server;
  };

  const http: Server = createHttpServer((req, res) => {
    const sessionId = header(req, 'mcp-session-id');
    requests.push({
      method: req.method ?? '',
      sessionId,
      lastEventId: header(req, 'last-event-id'),
      protocolVersion: header(req, 'mcp-protocol-version'),
    });
    void (async () => {
      if (sessionId !== undefined) {
        const session = sessions.get(sessionId);
        if (session === undefined) {
          res.writeHead(404, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ jsonrpc: '2.0', error: { code: -32001, message: 'Session not found' }, id: null }));
          return;
        }
        await session.transport.handleRequest(req, res);
        return;
      }
      if (req.method !== 'POST') {
        res.writeHead(400).end();
        return;
      }
      const server = buildServer();
      const transport: StreamableHTTPServerTransport = new StreamableHTTPServerTransport({
        sessionIdGenerator: randomUUID,
        eventStore: new StreamEventStore(),
        retryInterval: 50,
        enableJsonResponse: options.jsonResponse ?? false,
        onsessioninitialized: (id) => {
          sessions.set(id, { transport, server });
        },
        onsessionclosed: (id) => {
          sessions.delete(id);
        },
      });
      await server.connect(transport);
      await transport.handleRequest(req, res);
    })().catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(500).end(String(err));
    });
  });
  await new Promise<void>((resolve) => http.listen(0, '127.0.0.1', resolve));
  const { port } = http.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/mcp`,
    requests,
    forgetSession: (id) => {
      sessions.delete(id);
    },
    broadcast: async (text) => {
      for (const { server } of sessions.values()) {
        await server.server.notification({ method: 'notifications/message', params: { level: 'info', data: text } });
      }
    },
    closeStandaloneStreams: () => {
      for (const { transport } of sessions.values()) transport.closeStandaloneSSEStream();
    },
    close: async () => {
      for (const { server } of sessions.values()) await server.close().catch(() => undefined);
      sessions.clear();
      http.closeAllConnections();
      await new Promise<void>((resolve) => http.close(() => resolve()));
    },
  };
}

/** Polls `check` every 20 ms until it returns true. */
export async function eventually(check: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}
