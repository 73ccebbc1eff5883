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
import { Pool, type Dispatcher } from 'undici';

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
    ask(question) {
      return new Promise<WebhookDecision>((resolve, reject) => {
        const exchange = new GuardExchange(timeoutMs, resolve, reject);
        try {
          pool.dispatch({ path, method: 'POST', headers, body: JSON.stringify(question) }, exchange);
        } catch (err) {
          exchange.onResponseError(undefined, err as Error);
        }
      });
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

/**
 * One question's exchange, as an undici dispatch handler: the answer's body is gathered in
 * chunks (at most {@link MAX_RESPONSE_BYTES}) and parsed at its end, without a body stream or a
 * promise per phase. Settles its promise exactly once.
 */
class GuardExchange implements Dispatcher.DispatchHandler {
  readonly #timeoutMs: number;
  readonly #resolve: (decision: WebhookDecision) => void;
  readonly #reject: (err: WebhookError) => void;
  #status = 0;
  #chunks: Buffer[] = [];
  #size = 0;
  #done = false;

  constructor(timeoutMs: number, resolve: (d: WebhookDecision) => void, reject: (err: WebhookError) => void) {
    this.#timeoutMs = timeoutMs;
    this.#resolve = resolve;
    this.#reject = reject;
  }

  onRequestStart(): void {
    // Nothing to keep: a question is never cancelled, undici's timers bound it.
  }

  onResponseStart(
    controller: Dispatcher.DispatchController,
    statusCode: number,
    headers: Record<string, string | string[] | undefined>,
  ): void {
    this.#status = statusCode;
    const length = Number(headers['content-length']);
    if (Number.isFinite(length) && length > MAX_RESPONSE_BYTES) {
      this.#fail(controller, new WebhookError('body', `answer larger than ${MAX_RESPONSE_BYTES} bytes`));
    }
  }

  onResponseData(controller: Dispatcher.DispatchController, chunk: Buffer): void {
    if (this.#done) return;
    this.#size += chunk.length;
    if (this.#size > MAX_RESPONSE_BYTES) {
      this.#fail(controller, new WebhookError('body', `answer larger than ${MAX_RESPONSE_BYTES} bytes`));
      return;
    }
    this.#chunks.push(chunk);
  }

  onResponseEnd(): void {
    if (this.#done) return;
    this.#done = true;
    if (this.#status < 200 || this.#status > 299) {
      this.#reject(new WebhookError('status', `answered HTTP ${this.#status}`));
      return;
    }
    const chunks = this.#chunks;
    const text = (chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, this.#size)).toString('utf8');
    this.#chunks = [];
    try {
      this.#resolve(parseDecision(text));
    } catch (err) {
      this.#reject(err as WebhookError);
    }
  }

  onResponseError(_controller: Dispatcher.DispatchController | undefined, err: Error): void {
    if (this.#done) return;
    this.#done = true;
    this.#chunks = [];
    if (isTimeout(err)) {
      this.#reject(new WebhookError('timeout', `no answer within ${this.#timeoutMs}ms`, { cause: err }));
    } else {
      this.#reject(new WebhookError('connection', `request failed: ${err.message}`, { cause: err }));
    }
  }

  /** Stops reading and rejects with `err` (a too-large answer). */
  #fail(controller: Dispatcher.DispatchController, err: WebhookError): void {
    this.#done = true;
    this.#chunks = [];
    this.#reject(err);
    controller.abort(err);
  }
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
