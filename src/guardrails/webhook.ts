/**
 * The external guard client of `webhook` guardrails: one keep-alive undici `Pool` per guard
 * origin, one JSON POST per decision.
 *
 * Protocol (docs/guardrails.md): the request body is
 * `{phase: "request"|"result", method, server, tool, arguments | result, principal: {id, name, kind}}`;
 * a 2xx answer with a JSON body `{allow: boolean, reason?: string, redacted?: object}` decides.
 * Anything else — a timeout, a refused connection, a non-2xx status, a body that is not such an
 * object, a body larger than {@link MAX_RESPONSE_BYTES} — is an error, for the guardrail's
 * `onError` to settle.
 *
 * @module
 */
import { Pool } from 'undici';

/** Largest guard answer read, in bytes (1 MiB); larger is an error. */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

/** What the guard is asked about. */
export interface WebhookQuestion {
  phase: 'request' | 'result';
  method: string;
  server: string | undefined;
  tool: string | undefined;
  /** Request phase: the call's arguments (or params for other methods). */
  arguments?: unknown;
  /** Result phase: the upstream's result. */
  result?: unknown;
  principal: { id: string; name: string; kind: string };
}

/** The guard's decision. */
export interface WebhookDecision {
  allow: boolean;
  reason?: string | undefined;
  /** Replaces the arguments (request phase) or the result (result phase) when allowed. */
  redacted?: Record<string, unknown> | undefined;
}

/** Options of {@link createWebhookClient}. */
export interface WebhookClientOptions {
  /** The guard's URL (`http:` or `https:`). */
  url: string;
  /**
   * Longest wait, in ms, for each phase of one decision: connecting, the answer's headers, and
   * each part of its body.
   */
  timeoutMs: number;
  /** Extra request headers. Default none. */
  headers?: Readonly<Record<string, string>>;
  /** Keep-alive connections to the guard at most. Default 16. */
  connections?: number;
}

/** A guard client. */
export interface WebhookClient {
  /**
   * Asks the guard.
   *
   * @throws (rejects with) `WebhookError` on a timeout, a connection failure, a non-2xx status or
   *   an answer that is not a decision
   */
  ask(question: WebhookQuestion): Promise<WebhookDecision>;
  /** Closes the pool's connections. Idempotent. */
  close(): Promise<void>;
}

/** Why the guard gave no decision; `kind` is stable, the message is for logs. */
export class WebhookError extends Error {
  readonly kind: 'timeout' | 'connection' | 'status' | 'body';
  constructor(kind: WebhookError['kind'], message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'WebhookError';
    this.kind = kind;
  }
}

/**
 * Creates a guard client with its own keep-alive pool.
 *
 * @throws TypeError for a URL that does not parse
 */
export function createWebhookClient(options: WebhookClientOptions): WebhookClient {
  const url = new URL(options.url);
  const path = url.pathname + url.search;
  const timeoutMs = options.timeoutMs;
  // Each phase of a decision — connecting, waiting for the answer's headers, each wait for its
  // body — is bounded by the timeout through undici's own timers: no AbortSignal and no timer of
  // ours per request (they cost more than the request itself on a loopback guard).
  const pool = new Pool(url.origin, {
    connections: options.connections ?? 16,
    pipelining: 1,
    connect: { timeout: timeoutMs },
    headersTimeout: timeoutMs,
    bodyTimeout: timeoutMs,
  });
  const headers: Record<string, string> = {
    ...options.headers,
    'content-type': 'application/json',
    accept: 'application/json',
  };
  let closed: Promise<void> | undefined;

  return {
    async ask(question) {
      const body = JSON.stringify(question);
      let res;
      try {
        res = await pool.request({ path, method: 'POST', headers, body });
      } catch (err) {
        if (isTimeout(err)) throw new WebhookError('timeout', `no answer within ${timeoutMs}ms`, { cause: err });
        throw new WebhookError('connection', `request failed: ${(err as Error).message}`, { cause: err });
      }
      let text: string;
      try {
        const length = Number(res.headers['content-length']);
        if (Number.isFinite(length) && length > MAX_RESPONSE_BYTES) {
          throw new WebhookError('body', `answer larger than ${MAX_RESPONSE_BYTES} bytes`);
        }
        text = Number.isFinite(length) ? await res.body.text() : await readCapped(res.body);
      } catch (err) {
        res.body.destroy();
        if (isTimeout(err)) throw new WebhookError('timeout', `no answer within ${timeoutMs}ms`, { cause: err });
        if (err instanceof WebhookError) throw err;
        throw new WebhookError('connection', `reading the answer failed: ${(err as Error).message}`, { cause: err });
      }
      if (res.statusCode < 200 || res.statusCode > 299) {
        throw new WebhookError('status', `answered HTTP ${res.statusCode}`);
      }
      return parseDecision(text);
    },
    close() {
      closed ??= pool.close().catch(() => undefined);
      return closed;
    },
  };
}

/** undici's connect, headers and body timeouts. */
function isTimeout(err: unknown): boolean {
  const code = (err as { code?: unknown } | undefined)?.code;
  return code === 'UND_ERR_CONNECT_TIMEOUT' || code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT';
}

async function readCapped(body: AsyncIterable<Buffer>): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of body) {
    size += chunk.length;
    if (size > MAX_RESPONSE_BYTES) throw new WebhookError('body', `answer larger than ${MAX_RESPONSE_BYTES} bytes`);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/**
 * Parses a guard answer.
 *
 * @throws WebhookError `body` when it is not JSON or not `{allow: boolean, reason?: string, redacted?: object}`
 */
export function parseDecision(text: string): WebhookDecision {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new WebhookError('body', 'the answer is not JSON', { cause: err });
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new WebhookError('body', 'the answer is not a JSON object');
  }
  const { allow, reason, redacted } = value as Record<string, unknown>;
  if (typeof allow !== 'boolean') throw new WebhookError('body', 'the answer has no boolean "allow"');
  if (reason !== undefined && typeof reason !== 'string') throw new WebhookError('body', '"reason" is not a string');
  if (redacted !== undefined && (typeof redacted !== 'object' || redacted === null || Array.isArray(redacted))) {
    throw new WebhookError('body', '"redacted" is not an object');
  }
  return { allow, reason, redacted: redacted as Record<string, unknown> | undefined };
}
