/**
 * Attribution of server→client requests (sampling, elicitation, roots) to the client call that
 * caused them: who a call is made for ({@link Caller}), which client capability each server
 * request needs, and, where nothing on the wire relates a server request to a call (stdio, legacy
 * SSE), exclusive admission ({@link ExclusiveAdmission}): calls from clients able to answer
 * server requests are let through one client session at a time, so any server request belongs
 * to the one admitted session. A server request is then forwarded to the client of its call
 * ({@link forwardServerRequest}).
 *
 * @module
 */
import { ERROR_CODES, GatewayError } from '../errors.js';
import type { Logger } from '../observability/logger.js';
import type {
  JsonObject,
  JsonRpcErrorObject,
  JsonRpcId,
  JsonRpcNotification,
  JsonRpcRequest,
} from '../protocol/jsonrpc.js';

/** Client capabilities relevant to server→client requests (MCP client/* features). */
export interface ClientCapabilities {
  sampling?: JsonObject;
  elicitation?: JsonObject;
  roots?: JsonObject;
  [key: string]: unknown;
}

/** Which client capability each server→client request method needs. */
export const SERVER_REQUEST_CAPABILITY: Readonly<Record<string, 'sampling' | 'elicitation' | 'roots'>> = {
  'sampling/createMessage': 'sampling',
  'elicitation/create': 'elicitation',
  'roots/list': 'roots',
};

/** True when a client declared any capability that lets a server send it requests. */
export function declaresServerRequests(caps: ClientCapabilities | undefined): boolean {
  return (
    caps !== undefined && (caps.sampling !== undefined || caps.elicitation !== undefined || caps.roots !== undefined)
  );
}

/**
 * The client call on whose behalf a request is sent upstream. Server→client requests and related
 * notifications from the upstream are delivered here.
 */
export interface Caller {
  /** Client session id (logs, attribution). */
  readonly sessionId: string;
  /** Capabilities that client declared at initialize. */
  readonly clientCapabilities: ClientCapabilities | undefined;
  /**
   * The client speaks the modern era (MCP 2026-07-28): results a modern upstream marks
   * `resultType: "input_required"` reach it unchanged. Default false (a 2025-era client).
   */
  readonly modern?: boolean;
  /** Delivers a notification related to the call (progress, logging) to the client. */
  notify(notification: JsonRpcNotification): void;
  /**
   * Forwards a server→client request to the client and resolves with the client's answer
   * (`result` or `error`). Rejects with a GatewayError when the client cannot be reached.
   */
  request(method: string, params: JsonObject | undefined): Promise<{ result?: JsonObject; error?: JsonRpcErrorObject }>;
  /**
   * Told when the upstream sent a request needing a capability this caller did not declare
   * (the upstream is refused with `SWB_ERR_ROUTE_CLIENT_CAPABILITY` either way). Optional.
   */
  missingCapability?(method: string, capability: 'sampling' | 'elicitation' | 'roots'): void;
}

interface Waiter {
  readonly sessionId: string;
  readonly admit: () => void;
  readonly timer: NodeJS.Timeout;
}

/**
 * Admits the calls of one client session at a time; calls of other sessions wait, first come
 * first served, for at most `waitMs`. When the admitted session's last call ends, every waiting
 * call of the next session is admitted together.
 */
export class ExclusiveAdmission {
  readonly #waitMs: number;
  readonly #closed: () => boolean;
  /** The session whose calls are in flight, and how many. */
  #session: string | undefined;
  #inFlight = 0;
  #waiters: Waiter[] = [];

  /**
   * @param waitMs - longest wait for admission
   * @param closed - whether the connection closed (a call admitted then is refused instead)
   */
  constructor(waitMs: number, closed: () => boolean) {
    this.#waitMs = waitMs;
    this.#closed = closed;
  }

  /** The session whose calls are admitted, if any. */
  get session(): string | undefined {
    return this.#session;
  }

  /**
   * Runs `dispatch` now when no other session is admitted, else when this session's turn comes.
   * `refuse(true)` when the wait timed out, `refuse(false)` when the connection closed meanwhile.
   * Each dispatched call must be followed by one {@link release}.
   */
  admit(sessionId: string, dispatch: () => void, refuse: (timedOut: boolean) => void): void {
    if (this.#session === undefined || this.#session === sessionId) {
      this.#session = sessionId;
      this.#inFlight++;
      dispatch();
      return;
    }
    const timer = setTimeout(() => {
      const i = this.#waiters.indexOf(waiter);
      if (i >= 0) this.#waiters.splice(i, 1);
      refuse(true);
    }, this.#waitMs);
    const waiter: Waiter = {
      sessionId,
      timer,
      admit: () => {
        clearTimeout(timer);
        if (this.#closed()) {
          refuse(false);
          return;
        }
        this.#inFlight++;
        dispatch();
      },
    };
    this.#waiters.push(waiter);
  }

  /** An admitted call ended. */
  release(): void {
    if (--this.#inFlight > 0) return;
    this.#session = undefined;
    const first = this.#waiters[0];
    if (!first) return;
    // Admit every waiting call of the next session together.
    this.#session = first.sessionId;
    const admitted = this.#waiters.filter((w) => w.sessionId === first.sessionId);
    this.#waiters = this.#waiters.filter((w) => w.sessionId !== first.sessionId);
    for (const w of admitted) w.admit();
  }

  /** Admits every waiting call (on close: each is refused, the connection being closed). */
  admitAll(): void {
    for (const w of this.#waiters) w.admit();
    this.#waiters = [];
  }
}

/** A client's answer to a server→client request, as sent back upstream. */
export interface ServerRequestAnswer {
  result?: JsonObject;
  error?: JsonRpcErrorObject;
}

/**
 * Forwards a server→client request to the client call it is attributed to and sends the
 * client's answer back upstream with `reply`. Without a caller the upstream gets
 * `SWB_ERR_ROUTE_NO_CALLER` (the gateway never guesses and never broadcasts); a caller that did
 * not declare the capability the method needs gets it refused with
 * `SWB_ERR_ROUTE_CLIENT_CAPABILITY`. `forwarded` holds an abort per request in flight (the
 * upstream's `notifications/cancelled` aborts it: no answer is sent then).
 */
export function forwardServerRequest(
  req: JsonRpcRequest,
  caller: Caller | undefined,
  forwarded: Map<JsonRpcId, AbortController>,
  reply: (id: JsonRpcId, answer: ServerRequestAnswer) => void,
  logger: Logger,
): void {
  const capability = SERVER_REQUEST_CAPABILITY[req.method];
  if (!caller) {
    logger.info({ method: req.method }, 'server-to-client request with no client call in flight to attribute it to');
    reply(req.id, {
      error: {
        code: ERROR_CODES.SWB_ERR_ROUTE_NO_CALLER.jsonRpcCode,
        message: `switchboard: no client request of this upstream is in flight, so ${req.method} cannot be attributed to a client`,
        data: { code: 'SWB_ERR_ROUTE_NO_CALLER' },
      },
    });
    return;
  }
  if (capability !== undefined && caller.clientCapabilities?.[capability] === undefined) {
    reply(req.id, {
      error: {
        code: ERROR_CODES.SWB_ERR_ROUTE_CLIENT_CAPABILITY.jsonRpcCode,
        message: `switchboard: the calling client did not declare the ${capability} capability`,
        data: { code: 'SWB_ERR_ROUTE_CLIENT_CAPABILITY' },
      },
    });
    caller.missingCapability?.(req.method, capability);
    return;
  }
  const ac = new AbortController();
  forwarded.set(req.id, ac);
  caller.request(req.method, req.params).then(
    (answer) => {
      forwarded.delete(req.id);
      if (!ac.signal.aborted) reply(req.id, answer);
    },
    (err: unknown) => {
      forwarded.delete(req.id);
      const ge = err instanceof GatewayError ? err : undefined;
      reply(req.id, {
        error: {
          code: ge?.jsonRpcCode ?? ERROR_CODES.SWB_ERR_INTERNAL.jsonRpcCode,
          message: ge?.message ?? 'switchboard: the client did not answer',
          data: { code: ge?.code ?? 'SWB_ERR_INTERNAL' },
        },
      });
    },
  );
}
