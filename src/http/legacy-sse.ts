/**
 * The legacy HTTP+SSE front door (MCP 2024-11-05 transports §HTTP with SSE): `GET …/sse` opens
 * the stream and announces the message endpoint in an `endpoint` event; the client POSTs every
 * message to `…/message?sessionId=…` (202) and receives every response on the stream.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { GatewayError, isGatewayError } from '../errors.js';
import type { OutboundChannel } from '../gateway/client-session.js';
import type { RequestContext } from '../pipeline/stage.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import { accepts, isJsonContentType } from './guards.js';
import { readJsonRpcMessage } from './jsonrpc-body.js';
import { reportOverflow, writeWithin, type StreamMeter, type StreamOverflowListener } from './stream-budget.js';
import { sendHttpError } from './error-response.js';

/** Options for {@link createLegacySseHandler}. */
export interface LegacySseOptions {
  gateway: Gateway;
  maxBodyBytes: number;
  /** Keep-alive comment interval (ms). Default 25 000. */
  keepAliveMs?: number;
  /**
   * Told of every stream closed because its client did not read it fast enough
   * (`http.maxStreamBytes` / `http.maxStreamEvents`, see `stream-budget.ts`).
   */
  onStreamOverflow?: StreamOverflowListener | undefined;
}

/** Creates the `{ stream, message }` handlers of the legacy transport. */
export function createLegacySseHandler(options: LegacySseOptions) {
  const { gateway } = options;
  const channels = new Map<string, OutboundChannel>();
  const keepAliveMs = options.keepAliveMs ?? 25_000;

  /** `GET …/sse`: opens a session and its stream; `messagePath` is announced to the client. */
  function stream(
    req: IncomingMessage,
    res: ServerResponse,
    view: View,
    messagePath: string,
    principal: Principal,
  ): void {
    try {
      if (req.method !== 'GET')
        throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use GET to open the SSE stream');
      if (!accepts(req, 'text/event-stream'))
        throw new GatewayError('SWB_ERR_HTTP_NOT_ACCEPTABLE', 'Accept must list text/event-stream');
      const session = gateway.createSession(view, principal, 'sse');
      res.writeHead(200, {
        'content-type': 'text/event-stream',
        'cache-control': 'no-cache, no-transform',
        connection: 'keep-alive',
      });
      res.flushHeaders();
      res.write(`event: endpoint\ndata: ${messagePath}?sessionId=${session.id}\n\n`);
      let open = true;
      // This transport has no resumption: a client that does not read loses its stream (and its
      // session) once the stream is over its budget, rather than the gateway buffering for it.
      const meter: StreamMeter = { stalled: 0, overflowBytes: 0 };
      const write = (chunk: string): void => {
        if (writeWithin(res, chunk, meter, gateway.config.http)) return;
        open = false;
        reportOverflow(gateway.logger, options.onStreamOverflow, {
          stream: 'legacy-sse',
          sessionId: session.id,
          queuedBytes: meter.overflowBytes,
          queuedEvents: meter.stalled,
        });
      };
      const channel: OutboundChannel = {
        get closed() {
          return !open;
        },
        send(message) {
          if (open) write(`event: message\ndata: ${JSON.stringify(message)}\n\n`);
        },
        // A cancelled request simply gets no response; the stream stays open.
        end() {},
      };
      channels.set(session.id, channel);
      session.attachStandalone({
        get closed() {
          return !open;
        },
        send: (m) => channel.send(m),
        end: () => res.end(),
      });
      const keepAlive = setInterval(() => write(': keepalive\n\n'), keepAliveMs);
      keepAlive.unref();
      res.on('close', () => {
        open = false;
        clearInterval(keepAlive);
        channels.delete(session.id);
        session.close('SSE stream closed');
      });
    } catch (err) {
      // Anything unexpected goes to the edge, which logs it with the request's id and answers 500.
      if (!isGatewayError(err)) throw err;
      sendHttpError(res, err);
    }
  }

  /** `POST …/message?sessionId=…`: one JSON-RPC message; answers 202, replies go to the stream. */
  async function message(
    req: IncomingMessage,
    res: ServerResponse,
    view: View,
    query: URLSearchParams,
    meta: RequestContext,
  ): Promise<void> {
    const principal = meta.principal;
    try {
      if (req.method !== 'POST') throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', 'use POST to send messages');
      const id = query.get('sessionId') ?? '';
      const session = id === '' ? undefined : gateway.getSession(id);
      const channel = channels.get(id);
      if (!session || !channel || session.view !== view || session.principal.id !== principal.id)
        throw new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'Session not found');
      if (!isJsonContentType(req.headers['content-type']))
        throw new GatewayError('SWB_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE', 'Content-Type must be application/json');
      const http = gateway.config.http;
      const m = await readJsonRpcMessage(req, res, http.maxBodyBytes, http.maxJsonDepth);
      if (!m) return;
      res.writeHead(202, { 'content-type': 'text/plain', 'content-length': 8 }).end('Accepted');
      meta.method = 'method' in m ? m.method : 'response';
      if (!('method' in m)) session.handleResponse(m);
      else if ('id' in m && m.id !== undefined) session.handleRequest(m, channel, meta);
      else session.handleNotification(m, meta.reqId);
    } catch (err) {
      // Anything unexpected goes to the edge, which logs it with the request's id and answers 500.
      if (!isGatewayError(err)) throw err;
      sendHttpError(res, err);
    }
  }

  return { stream, message };
}
