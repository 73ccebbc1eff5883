/**
 * The Streamable HTTP front door, MCP transports §Streamable HTTP (2025-03-26 … 2025-11-25):
 * POST answered as JSON (when nothing precedes the response) or SSE, GET standalone stream,
 * DELETE, `Mcp-Session-Id`, `MCP-Protocol-Version` checks and resumability with `Last-Event-ID`
 * from a bounded per-session event store.
 *
 * This module checks each request and routes it; a POSTed message is received and answered by
 * `./streamable-post.ts`, the session's SSE streams, the event store and resumption are
 * `./streamable-sse.ts`'s.
 *
 * @module
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Principal } from '../auth/principal.js';
import { GatewayError, isGatewayError } from '../errors.js';
import { sendHttpError } from './error-response.js';
import type { ClientSession } from '../gateway/client-session.js';
import type { RequestContext } from '../pipeline/stage.js';
import { SUPPORTED_PROTOCOL_VERSIONS } from '../gateway/client-session.js';
import type { Gateway } from '../gateway/gateway.js';
import type { View } from '../gateway/view.js';
import type { JsonRpcId, JsonRpcMessage } from '../protocol/jsonrpc.js';
import { accepts, isJsonContentType, receiveBody } from './guards.js';
import type { StreamOverflowListener } from './stream-budget.js';
import { PostBody, PostChannel, type PostEdge } from './streamable-post.js';
import { createSessionStreams } from './streamable-sse.js';
import { createModernHandler } from './modern.js';
import { isModernOrLater } from '../protocol/era.js';

/** Options for {@link createStreamableHandler}. */
export interface StreamableOptions {
  gateway: Gateway;
  /** Largest accepted body (bytes). */
  maxBodyBytes: number;
  /** Events kept per session for resumption (0 disables resumability). */
  eventStoreSize: number;
  /** Interval of SSE keep-alive comments on GET streams (ms). Default 25 000. */
  keepAliveMs?: number;
  /**
   * Told of every SSE stream closed because its client did not read it fast enough
   * (`http.maxStreamBytes` / `http.maxStreamEvents`, see `stream-budget.ts`).
   */
  onStreamOverflow?: StreamOverflowListener | undefined;
}

const SUPPORTED = new Set<string>(SUPPORTED_PROTOCOL_VERSIONS);

/**
 * Creates the handler for one MCP endpoint family. `handle(req, res, view)` serves POST/GET/DELETE
 * on the endpoint whose view the router resolved.
 */
export function createStreamableHandler(options: StreamableOptions) {
  const { gateway } = options;
  // The sessions' SSE streams; a PostChannel takes them as its PostStreams.
  const streams = createSessionStreams(options);
  // Requests of the modern era (MCP 2026-07-28, stateless) on the same endpoints.
  const modern = createModernHandler({ gateway, onStreamOverflow: options.onStreamOverflow });
  const postChannel = (res: ServerResponse, session: ClientSession, requestId: JsonRpcId, meta: RequestContext) =>
    new PostChannel(streams, res, session, requestId, meta);

  function checkProtocolVersion(req: IncomingMessage): void {
    const v = req.headers['mcp-protocol-version'];
    if (v !== undefined && !SUPPORTED.has(v as string)) {
      throw new GatewayError(
        'SWB_ERR_HTTP_BAD_PROTOCOL_VERSION',
        `Unsupported MCP-Protocol-Version: ${String(v)} (supported: ${[...SUPPORTED].join(', ')})`,
      );
    }
  }

  function sessionFor(req: IncomingMessage, view: View, principal: Principal): ClientSession {
    const id = req.headers['mcp-session-id'];
    if (typeof id !== 'string' || id === '')
      throw new GatewayError('SWB_ERR_SESSION_REQUIRED', 'Bad Request: Mcp-Session-Id header is required');
    // A session is bound to its endpoint (view) and principal; presented by anyone else, or on
    // another endpoint, it does not exist (a session id is never a credential). A sealed id
    // opened on another replica is restored here (gateway.findSession).
    const session = gateway.findSession(id, view, principal);
    if (!session) throw new GatewayError('SWB_ERR_SESSION_NOT_FOUND', 'Session not found');
    return session;
  }

  /** POST: checks the headers, then reads the body; {@link received} goes on from there. */
  function post(req: IncomingMessage, res: ServerResponse, view: View, meta: RequestContext): void {
    if (!accepts(req, 'application/json') || !accepts(req, 'text/event-stream')) {
      throw new GatewayError(
        'SWB_ERR_HTTP_NOT_ACCEPTABLE',
        'Not Acceptable: Accept must list application/json and text/event-stream',
      );
    }
    if (!isJsonContentType(req.headers['content-type'])) {
      throw new GatewayError(
        'SWB_ERR_HTTP_UNSUPPORTED_MEDIA_TYPE',
        'Unsupported Media Type: Content-Type must be application/json',
      );
    }
    // Read per use so a hot reload of `http.maxBodyBytes` / `http.maxJsonDepth` applies at once.
    const http = gateway.config.http;
    receiveBody(req, http.maxBodyBytes, new PostBody(edgeHandler, req, res, view, meta, http.maxJsonDepth));
  }

  /** The POSTed message, read and valid: routes it to its session (or opens one). */
  function received(
    req: IncomingMessage,
    res: ServerResponse,
    view: View,
    meta: RequestContext,
    message: JsonRpcMessage,
  ): void {
    const principal = meta.principal;
    if (req.headers['mcp-session-id'] === undefined && modern.claims(req, message)) {
      modern.serve(req, res, view, meta, message);
      return;
    }
    if ('method' in message && message.method === 'initialize' && 'id' in message) {
      if (req.headers['mcp-session-id'] !== undefined) {
        throw new GatewayError(
          'SWB_ERR_HTTP_INVALID_REQUEST',
          'Invalid Request: initialize must not carry Mcp-Session-Id',
        );
      }
      const session = gateway.createSession(view, principal, 'streamable-http');
      meta.method = 'initialize';
      session.handleRequest(message, postChannel(res, session, message.id, meta), meta);
      return;
    }
    const session = sessionFor(req, view, principal);
    checkProtocolVersion(req);
    if (!('method' in message)) {
      meta.method = 'response';
      session.handleResponse(message);
      res.writeHead(202, { 'content-length': 0 }).end();
    } else if (!('id' in message) || message.id === undefined) {
      meta.method = message.method;
      session.handleNotification(message, meta.reqId);
      res.writeHead(202, { 'content-length': 0 }).end();
    } else {
      meta.method = message.method;
      session.handleRequest(message, postChannel(res, session, message.id, meta), meta);
    }
  }

  /** Answers a failed exchange; an error that is not a GatewayError is logged with the request's id. */
  function answerError(res: ServerResponse, err: unknown, reqId: string | undefined): void {
    // A refused request is the client's doing: debug, never error (a client cannot flood the error log).
    if (!isGatewayError(err) || err.family === 'config')
      gateway.logger.error({ reqId, err }, 'unhandled error on the MCP endpoint');
    else gateway.logger.debug({ reqId, code: err.code, status: err.status }, 'request refused');
    const allow = isGatewayError(err) && err.code === 'SWB_ERR_HTTP_METHOD_NOT_ALLOWED';
    sendHttpError(res, err, null, allow ? { allow: 'GET, POST, DELETE' } : {});
  }

  const edgeHandler: PostEdge = { received, answerError };

  function get(req: IncomingMessage, res: ServerResponse, view: View, principal: Principal): void {
    if (!accepts(req, 'text/event-stream')) {
      throw new GatewayError('SWB_ERR_HTTP_NOT_ACCEPTABLE', 'Not Acceptable: Accept must list text/event-stream');
    }
    const session = sessionFor(req, view, principal);
    checkProtocolVersion(req);
    session.touch(); // opening or resuming the stream is the client's activity; the stream itself is not
    const e = streams.edgeOf(session);
    const lastEventId = req.headers['last-event-id'];
    if (typeof lastEventId === 'string' && lastEventId !== '') {
      streams.resume(res, session, e, lastEventId, (err) => answerError(res, err, undefined));
      return;
    }
    streams.openStandalone(res, session, e);
  }

  function del(req: IncomingMessage, res: ServerResponse, view: View, principal: Principal): void {
    const session = sessionFor(req, view, principal);
    gateway.closeSession(session, 'deleted by client');
    res.writeHead(200).end();
  }

  /**
   * Serves one request on an MCP endpoint. Answers every failure itself (a JSON-RPC error body
   * with the HTTP status of its GatewayError; 500 and an `error` log line for anything else), now
   * or, for a POST, when its body has been read: no promise.
   */
  return function handle(req: IncomingMessage, res: ServerResponse, view: View, meta: RequestContext): void {
    try {
      // The modern era has no GET stream and no session to DELETE (transports §Backward
      // Compatibility: 405); a 2025-era client always names its session on both.
      if ((req.method === 'GET' || req.method === 'DELETE') && isStatelessProbe(req)) {
        const err = new GatewayError(
          'SWB_ERR_HTTP_METHOD_NOT_ALLOWED',
          `Method ${req.method} not allowed without Mcp-Session-Id (a 2025-era session)`,
        );
        sendHttpError(res, err, null, { allow: 'POST' });
        return;
      }
      switch (req.method) {
        case 'POST':
          post(req, res, view, meta);
          return;
        case 'GET':
          get(req, res, view, meta.principal);
          return;
        case 'DELETE':
          del(req, res, view, meta.principal);
          return;
        default:
          throw new GatewayError('SWB_ERR_HTTP_METHOD_NOT_ALLOWED', `Method ${req.method ?? '?'} not allowed`);
      }
    } catch (err) {
      answerError(res, err, meta.reqId);
    }
  };
}

/**
 * A GET or DELETE a 2025-era session cannot have sent: no `Mcp-Session-Id`, and no
 * `MCP-Protocol-Version` or a modern one.
 */
function isStatelessProbe(req: IncomingMessage): boolean {
  if (req.headers['mcp-session-id'] !== undefined) return false;
  const v = req.headers['mcp-protocol-version'];
  return v === undefined || isModernOrLater(v);
}
