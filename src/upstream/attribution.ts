/**
 * Attribution of server→client requests (sampling, elicitation, roots) to the client call that
 * caused them: who a call is made for ({@link Caller}), which client capability each server
 * request needs, and, where nothing on the wire relates a server request to a call (stdio, legacy
 * SSE), exclusive admission ({@link ExclusiveAdmission}): calls from clients able to answer
 * server requests are let through one client session at a time, so any server request belongs
 * to the one admitted session.
 *
 * @module
 */
import type { JsonObject, JsonRpcErrorObject, JsonRpcNotification } from '../protocol/jsonrpc.js';

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
  /** Delivers a notification related to the call (progress, logging) to the client. */
  notify(notification: JsonRpcNotification): void;
  /**
   * Forwards a server→client request to the client and resolves with the client's answer
   * (`result` or `error`). Rejects with a GatewayError when the client cannot be reached.
   */
  request(method: string, params: JsonObject | undefined): Promise<{ result?: JsonObject; error?: JsonRpcErrorObject }>;
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
