/**
 * The tunnel client: runs a local stdio MCP server and connects it to a gateway
 * through an outbound WebSocket, so a server behind NAT becomes an ordinary gateway server.
 *
 * Initialize: the client performs the MCP initialize handshake with the local server itself,
 * once, before the first registration (so a server that cannot start or speak MCP fails here,
 * with no sleeps), and answers every `initialize` the gateway sends through the tunnel from that
 * cached result (the gateway's `notifications/initialized` is not forwarded). The server thus sees
 * exactly one initialize in its life, however often the tunnel reconnects and the gateway
 * re-initializes. The client declares the same capabilities the gateway does (sampling,
 * elicitation, roots), so server→client requests flow as if the gateway were connected directly.
 *
 * Ids are forwarded unchanged: the gateway's ids are unique per gateway connection. Across a
 * reconnect a request still running in the server may share its id with a new request; only that
 * new request gets a private alias id, mapped back on its response, and late responses from the
 * old connection are dropped (the gateway already failed those calls; the server is sent
 * `notifications/cancelled` for them).
 *
 * @module
 */
import { WebSocket } from 'ws';
import { ERROR_CODES, GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import {
  isResponse,
  type JsonObject,
  type JsonRpcId,
  type JsonRpcMessage,
  type JsonRpcResponse,
} from '../protocol/jsonrpc.js';
import { createBackoff, type Backoff } from '../util/backoff.js';
import { UPSTREAM_PROTOCOL_VERSION } from '../upstream/connection.js';
import { childEnvironment } from '../upstream/child-env.js';
import { createStdioTransport, type StdioTransport } from '../upstream/stdio-transport.js';
import {
  DEFAULT_TUNNEL_MAX_BUFFERED_BYTES,
  DEFAULT_TUNNEL_MAX_BUFFERED_FRAMES,
  encodeTunnelMessage,
  parseTunnelMessage,
  type TunnelMessage,
} from './protocol.js';
import { tunnelWebSocketUrl, toServerName, type TunnelClient, type TunnelClientOptions } from './client-options.js';

export {
  TUNNEL_WS_PATH,
  toServerName,
  tunnelWebSocketUrl,
  type TunnelClient,
  type TunnelClientOptions,
} from './client-options.js';

const INIT_ID = 'swb-tunnel-initialize';
const ALIAS_PREFIX = 'swb-tunnel-';
/** Stale ids (requests of a previous connection still running in the server) remembered at most. */
const MAX_PENDING = 10_000;
const CLOSE_WAIT_MS = 1000;

interface Pending {
  /** Connection generation the request came in on. */
  readonly generation: number;
  /** The gateway's id when the server saw an alias. */
  readonly gatewayId: JsonRpcId;
}

interface Connection {
  readonly ws: WebSocket;
  readonly generation: number;
  registered: boolean;
  /** Set when retrying is pointless (auth refused, registration refused). */
  fatal: string | undefined;
  heartbeat: NodeJS.Timeout | undefined;
  /** Frames handed to `ws.send` whose callback has not run yet. */
  unsent: number;
  readonly sent: () => void;
}

function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err));
}

function idKey(id: JsonRpcId | null): string {
  return typeof id === 'number' ? `n:${id}` : `s:${String(id)}`;
}

class Client implements TunnelClient {
  readonly done: Promise<number>;
  readonly #options: TunnelClientOptions;
  readonly #logger: Logger;
  readonly #url: string;
  readonly #backoff: Backoff;
  readonly #maxRetries: number;
  readonly #child: StdioTransport;
  #resolveDone!: (code: number) => void;
  #initResult: JsonObject | undefined;
  #initWaiter: ((response: JsonRpcResponse) => void) | undefined;
  #name = 'tunnel';
  #conn: Connection | undefined;
  #generation = 0;
  #sessionId: string | undefined;
  #pending = new Map<string, Pending>();
  #aliasSeq = 0;
  #retryTimer: NodeJS.Timeout | undefined;
  #stopping: Promise<number> | undefined;

  constructor(options: TunnelClientOptions, url: string) {
    this.#options = options;
    this.#logger = options.logger;
    this.#url = url;
    this.#maxRetries = options.maxRetries ?? Number.POSITIVE_INFINITY;
    const initialDelayMs = options.initialRetryDelayMs ?? 500;
    this.#backoff = createBackoff({
      initialDelayMs,
      maxDelayMs: Math.max(initialDelayMs, options.maxRetryDelayMs ?? 30_000),
    });
    this.done = new Promise<number>((resolve) => (this.#resolveDone = resolve));
    this.#child = createStdioTransport({
      command: options.command,
      args: options.args,
      // The local server sees this shell's environment, less SWITCHBOARD_* (the tunnel token).
      env: childEnvironment({ ...(options.env ? { env: options.env } : {}), inherit: ['*'] }),
      cwd: options.cwd,
      logger: options.logger,
    });
  }

  get registered(): boolean {
    return this.#conn?.registered ?? false;
  }

  get sessionId(): string | undefined {
    return this.#sessionId;
  }

  async run(): Promise<void> {
    const child = this.#child;
    child.onmessage = (message) => this.#fromServer(message);
    child.onclose = (info) => {
      if (this.#stopping) return;
      this.#logger.error({ exitCode: info.exitCode, signal: info.signal }, 'local MCP server exited');
      void this.#shutdown(1);
    };
    try {
      await child.start();
      await this.#initialize();
    } catch (err) {
      this.#logger.error({ err }, `local MCP server failed: ${(err as Error).message}`);
      void this.#shutdown(1);
      return;
    }
    if (this.#stopping) return;
    this.#connect();
  }

  stop(): Promise<number> {
    return this.#shutdown(0);
  }

  // -- local server ------------------------------------------------------------------------------

  async #initialize(): Promise<void> {
    const timeoutMs = this.#options.initializeTimeoutMs ?? 30_000;
    const response = await new Promise<JsonRpcResponse>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new GatewayError('SWB_ERR_UPSTREAM_TIMEOUT', `no initialize response in ${timeoutMs} ms`)),
        timeoutMs,
      );
      this.#initWaiter = (r) => {
        clearTimeout(timer);
        resolve(r);
      };
      this.#child
        .send({
          jsonrpc: '2.0',
          id: INIT_ID,
          method: 'initialize',
          params: {
            protocolVersion: UPSTREAM_PROTOCOL_VERSION,
            capabilities: { sampling: {}, elicitation: {}, roots: { listChanged: true } },
            clientInfo: { name: 'switchboard-tunnel', version: this.#options.version ?? '0.0.0' },
          },
        })
        .catch((err: unknown) => {
          clearTimeout(timer);
          reject(toError(err));
        });
    });
    this.#initWaiter = undefined;
    if ('error' in response) {
      throw new GatewayError('SWB_ERR_UPSTREAM_PROTOCOL', `initialize failed: ${response.error.message}`);
    }
    this.#initResult = response.result;
    await this.#child.send({ jsonrpc: '2.0', method: 'notifications/initialized' });
    const serverInfo = (response.result.serverInfo ?? {}) as { name?: unknown; title?: unknown };
    this.#name = this.#options.name ?? toServerName(typeof serverInfo.name === 'string' ? serverInfo.name : 'tunnel');
    this.#logger.info({ serverInfo, server: this.#name }, 'local MCP server initialized');
  }

  #fromServer(message: JsonRpcMessage): void {
    const conn = this.#conn;
    if (isResponse(message)) {
      if (message.id === INIT_ID && this.#initWaiter) {
        this.#initWaiter(message);
        return;
      }
      const key = idKey(message.id);
      const pending = this.#pending.get(key);
      if (pending !== undefined) {
        this.#pending.delete(key);
        if (pending.generation !== conn?.generation || !conn.registered) {
          this.#logger.debug({ id: message.id }, 'dropping a response for a previous gateway connection');
          return;
        }
        if (pending.gatewayId !== message.id) message = { ...message, id: pending.gatewayId };
      }
    }
    if (conn === undefined || !conn.registered || conn.ws.readyState !== WebSocket.OPEN) {
      if ('method' in message && 'id' in message) {
        // A server→client request with nobody to answer it: fail it rather than leave it hanging.
        void this.#child
          .send({
            jsonrpc: '2.0',
            id: message.id,
            error: {
              code: ERROR_CODES.SWB_ERR_TUNNEL_CLOSED.jsonRpcCode,
              message: 'gateway not connected',
              data: { code: 'SWB_ERR_TUNNEL_CLOSED' },
            },
          })
          .catch(() => undefined);
      }
      this.#logger.debug('gateway not connected; message from the local server dropped');
      return;
    }
    this.#write(conn, { type: 'message', message });
  }

  #toServer(conn: Connection, message: JsonRpcMessage): void {
    if ('method' in message) {
      if ('id' in message) {
        if (message.method === 'initialize') {
          // Answered from the handshake this client made; see the module comment.
          this.#write(conn, {
            type: 'message',
            message: { jsonrpc: '2.0', id: message.id, result: this.#initResult! },
          });
          return;
        }
        let id: JsonRpcId = message.id;
        if (this.#pending.has(idKey(id))) id = `${ALIAS_PREFIX}${++this.#aliasSeq}`;
        if (this.#pending.size >= MAX_PENDING) {
          const oldest = this.#pending.keys().next().value;
          if (oldest !== undefined) this.#pending.delete(oldest);
        }
        this.#pending.set(idKey(id), { generation: conn.generation, gatewayId: message.id });
        this.#sendToServer(id === message.id ? message : { ...message, id });
        return;
      }
      if (message.method === 'notifications/initialized') return;
      if (message.method === 'notifications/cancelled' && this.#aliasSeq > 0) {
        const requestId = message.params?.requestId as JsonRpcId | undefined;
        const alias = this.#aliasOf(conn.generation, requestId);
        if (alias !== undefined) {
          this.#sendToServer({ ...message, params: { ...message.params, requestId: alias } });
          return;
        }
      }
    }
    this.#sendToServer(message);
  }

  #aliasOf(generation: number, gatewayId: JsonRpcId | undefined): string | undefined {
    for (const [key, p] of this.#pending) {
      if (p.generation === generation && p.gatewayId === gatewayId && key.startsWith(`s:${ALIAS_PREFIX}`)) {
        return key.slice(2);
      }
    }
    return undefined;
  }

  #sendToServer(message: JsonRpcMessage): void {
    this.#child
      .send(message)
      .catch((err: unknown) => this.#logger.warn({ err }, 'could not write to the local server'));
  }

  // -- gateway -----------------------------------------------------------------------------------

  #connect(): void {
    const generation = ++this.#generation;
    const ws = new WebSocket(this.#url, { headers: { authorization: `Bearer ${this.#options.token}` } });
    const conn: Connection = {
      ws,
      generation,
      registered: false,
      fatal: undefined,
      heartbeat: undefined,
      unsent: 0,
      sent: () => {
        conn.unsent--;
      },
    };
    this.#conn = conn;
    let lastError: Error | undefined;
    ws.on('open', () => {
      const server: Record<string, unknown> = { name: this.#name };
      const info = this.#initResult?.serverInfo;
      const title = typeof info === 'object' && info !== null && 'title' in info ? info.title : undefined;
      const description = this.#options.description ?? (typeof title === 'string' ? title : undefined);
      if (description !== undefined) server.description = description;
      if (info !== undefined) server.serverInfo = info;
      this.#write(conn, { type: 'register', server: server as { name: string } });
    });
    ws.on('message', (data: Buffer) => this.#fromGateway(conn, data.toString('utf8')));
    ws.on('error', (err) => {
      lastError = err;
      const status = /Unexpected server response: (\d+)/.exec(err.message)?.[1];
      if (status === '401' || status === '403') conn.fatal = `gateway refused the connection: HTTP ${status}`;
    });
    ws.on('close', (code, reason) => this.#onClose(conn, code, reason.toString(), lastError));
  }

  #fromGateway(conn: Connection, text: string): void {
    const parsed = parseTunnelMessage(text);
    if (!parsed.ok) {
      this.#logger.warn({ error: parsed.error }, 'invalid frame from the gateway');
      return;
    }
    const frame = parsed.message;
    switch (frame.type) {
      case 'register_ack': {
        conn.registered = true;
        this.#sessionId = frame.sessionId;
        this.#backoff.reset();
        const interval = frame.heartbeatIntervalMs ?? this.#options.heartbeatIntervalMs ?? 10_000;
        conn.heartbeat = setInterval(() => this.#write(conn, { type: 'heartbeat' }), interval);
        this.#logger.info({ sessionId: frame.sessionId, server: this.#name, url: this.#url }, 'tunnel registered');
        return;
      }
      case 'message':
        if (conn.registered) this.#toServer(conn, frame.message);
        return;
      case 'heartbeat':
        this.#write(conn, { type: 'heartbeat_ack', timestamp: new Date().toISOString() });
        return;
      case 'heartbeat_ack':
        return;
      case 'error':
        if (!conn.registered && frame.code === 'SWB_ERR_TUNNEL_REGISTER_REFUSED') {
          conn.fatal = `registration refused: ${frame.message}`;
          conn.ws.close(1000, 'registration refused');
          return;
        }
        this.#logger.warn({ code: frame.code, error: frame.message }, 'gateway reported an error');
        return;
      default:
        this.#logger.debug({ type: frame.type }, 'ignoring frame from the gateway');
    }
  }

  #write(conn: Connection, frame: TunnelMessage): void {
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    // Checked before the frame is queued, so one large frame always passes a gateway that reads.
    const queued = ws.bufferedAmount;
    if (
      queued > (this.#options.maxBufferedBytes ?? DEFAULT_TUNNEL_MAX_BUFFERED_BYTES) ||
      conn.unsent >= (this.#options.maxBufferedFrames ?? DEFAULT_TUNNEL_MAX_BUFFERED_FRAMES)
    ) {
      this.#logger.warn(
        { sessionId: this.#sessionId, queuedBytes: queued, queuedFrames: conn.unsent },
        'the gateway is not reading fast enough (over the buffer budget); reconnecting',
      );
      // A closing handshake cannot pass a full buffer; `close` follows and reconnects.
      ws.terminate();
      return;
    }
    conn.unsent++;
    ws.send(encodeTunnelMessage(frame), conn.sent);
  }

  #onClose(conn: Connection, code: number, reason: string, error: Error | undefined): void {
    if (conn.heartbeat !== undefined) clearInterval(conn.heartbeat);
    const wasRegistered = conn.registered;
    conn.registered = false;
    if (this.#conn === conn) this.#sessionId = undefined;
    // The gateway failed the calls of this connection: let the server stop working on them.
    for (const [key, p] of this.#pending) {
      if (p.generation !== conn.generation) continue;
      const id: JsonRpcId = key.startsWith('n:') ? Number(key.slice(2)) : key.slice(2);
      this.#sendToServer({
        jsonrpc: '2.0',
        method: 'notifications/cancelled',
        params: { requestId: id, reason: 'tunnel disconnected' },
      });
    }
    if (this.#stopping) return;
    if (code === 1008) conn.fatal ??= `gateway refused the tunnel: ${reason || 'policy violation'}`;
    if (conn.fatal !== undefined) {
      this.#logger.error(conn.fatal);
      void this.#shutdown(1);
      return;
    }
    if (this.#backoff.attempts >= this.#maxRetries) {
      this.#logger.error({ attempts: this.#backoff.attempts }, 'gateway unreachable; giving up');
      void this.#shutdown(1);
      return;
    }
    const delay = this.#backoff.next();
    this.#logger.warn(
      { code, reason, err: error?.message, wasRegistered, retryInMs: delay, attempt: this.#backoff.attempts },
      'tunnel disconnected; reconnecting',
    );
    this.#retryTimer = setTimeout(() => this.#connect(), delay);
  }

  #shutdown(code: number): Promise<number> {
    this.#stopping ??= (async () => {
      if (this.#retryTimer !== undefined) clearTimeout(this.#retryTimer);
      const conn = this.#conn;
      if (conn !== undefined) {
        if (conn.heartbeat !== undefined) clearInterval(conn.heartbeat);
        const ws = conn.ws;
        if (ws.readyState === WebSocket.OPEN) {
          if (conn.registered) this.#write(conn, { type: 'unregister', reason: 'client shutting down' });
          const closed = new Promise<void>((resolve) => ws.once('close', () => resolve()));
          ws.close(1000, 'client shutting down');
          const timer = setTimeout(() => ws.terminate(), CLOSE_WAIT_MS);
          await closed;
          clearTimeout(timer);
        } else if (ws.readyState === WebSocket.CONNECTING) {
          ws.terminate();
        }
      }
      await this.#child.close();
      this.#resolveDone(code);
      return code;
    })();
    return this.#stopping;
  }
}

/**
 * Starts a tunnel client: spawns the local server, initializes it, then connects, registers and
 * forwards until stopped or a fatal error (see {@link TunnelClient.done}). Reconnects with
 * exponential backoff and jitter; a successful registration resets the retry count. Fatal, with
 * no retry: the local server cannot start, fails initialize or exits; the gateway refuses the
 * upgrade (HTTP 401/403) or closes with 1008; the registration is refused; retries run out.
 *
 * @throws GatewayError `SWB_ERR_TUNNEL_CONNECT` when the gateway URL is invalid
 */
export function startTunnelClient(options: TunnelClientOptions): TunnelClient {
  const client = new Client(options, tunnelWebSocketUrl(options.gateway));
  void client.run();
  return client;
}
