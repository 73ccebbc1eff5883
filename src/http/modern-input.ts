/**
 * Multi round-trip requests (MCP 2026-07-28, basic/patterns/mrtr) for modern clients in front of
 * 2025-era upstreams: while an upstream call waits for the client's answer to its server→client
 * requests (sampling, elicitation, roots), the call stays in flight in the gateway, parked, and
 * the client is told `resultType: "input_required"` with a `requestState` that names the parked
 * call. The client's retry, carrying `inputResponses` and that `requestState`, answers the
 * upstream's requests and picks up the call's outcome.
 *
 * `requestState` is `sw1.{key}.{mac}`, or `sw1.{key}.{mac}.{replica}` when replicas share a
 * channel: `key` is 144 random bits naming the parked call, `mac` an HMAC-SHA256 under a
 * per-process secret over the key, the principal's id, the method, the request's name (tool or
 * prompt name, resource URI) and the expiry, and `replica` names the replica that parked it (a
 * routing hint: a retry elsewhere is passed there, `gateway/retry-relay.ts`; the MAC decides). A state is accepted once,
 * before it expires, from the same principal, on the same method and name; anything else is
 * refused (mrtr §Server Requirements: integrity, principal, expiry and request binding). The
 * parked call is cancelled upstream when no retry comes before the expiry.
 *
 * @module
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { GatewayError } from '../errors.js';

/** What a `requestState` is bound to. */
export interface InputBinding {
  readonly principalId: string;
  readonly method: string;
  /** `params.name` (tools/call, prompts/get) or `params.uri` (resources/read). */
  readonly name: string;
}

/** A parked call, as the parking sees it. */
export interface Parkable {
  /** The retry came too late or never: end the parked call (cancel it upstream). */
  expire(): void;
}

interface Parked<T extends Parkable> {
  readonly call: T;
  readonly binding: InputBinding;
  readonly expiresAt: number;
  readonly timer: NodeJS.Timeout;
}

const PREFIX = 'sw1';

/** The parked calls of one front door, by key. */
export class InputParking<T extends Parkable> {
  readonly #secret = randomBytes(32);
  readonly #ttlMs: number;
  readonly #now: () => number;
  readonly #parked = new Map<string, Parked<T>>();

  readonly #replica: string | undefined;

  /**
   * @param ttlMs - how long a parked call waits for the client's retry, ms
   * @param now - the clock (epoch ms); default `Date.now`
   * @param replica - this replica's tag, appended to every state (replicas sharing a channel)
   */
  constructor(ttlMs: number, now: () => number = Date.now, replica?: string) {
    this.#ttlMs = ttlMs;
    this.#now = now;
    this.#replica = replica;
  }

  /** The replica that parked the call `state` names, when it is another one (else undefined). */
  ownerOf(state: string): string | undefined {
    const parts = state.split('.');
    const replica = parts.length === 4 && parts[0] === PREFIX ? parts[3] : undefined;
    return replica !== undefined && replica !== '' && replica !== this.#replica ? replica : undefined;
  }

  /** Parked calls right now. */
  get size(): number {
    return this.#parked.size;
  }

  /** Parks `call` and returns the `requestState` that claims it. */
  park(call: T, binding: InputBinding): string {
    const key = randomBytes(18).toString('base64url');
    const expiresAt = this.#now() + this.#ttlMs;
    const timer = setTimeout(() => {
      if (this.#parked.get(key)?.call !== call) return;
      this.#parked.delete(key);
      call.expire();
    }, this.#ttlMs);
    timer.unref();
    this.#parked.set(key, { call, binding, expiresAt, timer });
    const state = `${PREFIX}.${key}.${this.#mac(key, binding, expiresAt)}`;
    return this.#replica === undefined ? state : `${state}.${this.#replica}`;
  }

  /**
   * Takes the parked call a `requestState` names, for the retry of `binding`'s request. The state
   * is spent: a second claim fails.
   *
   * @throws GatewayError `SWB_ERR_PROTOCOL_INVALID_STATE` when the state is malformed, unknown,
   *   spent, expired, forged, or presented by another principal or on another request
   */
  claim(state: string, binding: InputBinding): T {
    const parts = state.split('.');
    const refuse = (why: string): never => {
      throw new GatewayError('SWB_ERR_PROTOCOL_INVALID_STATE', `Invalid params: requestState ${why}`);
    };
    if ((parts.length !== 3 && parts.length !== 4) || parts[0] !== PREFIX) return refuse('is malformed');
    const key = parts[1]!;
    const parked = this.#parked.get(key);
    if (parked === undefined) return refuse('is unknown, already used or expired');
    const expected = Buffer.from(this.#mac(key, binding, parked.expiresAt));
    const given = Buffer.from(parts[2]!);
    if (given.length !== expected.length || !timingSafeEqual(given, expected)) {
      return refuse('does not belong to this principal and request');
    }
    if (this.#now() >= parked.expiresAt) return refuse('has expired');
    clearTimeout(parked.timer);
    this.#parked.delete(key);
    return parked.call;
  }

  /** Forgets every parked call without expiring them (shutdown). */
  clear(): void {
    for (const p of this.#parked.values()) clearTimeout(p.timer);
    this.#parked.clear();
  }

  #mac(key: string, binding: InputBinding, expiresAt: number): string {
    return createHmac('sha256', this.#secret)
      .update(`${key}\n${binding.principalId}\n${binding.method}\n${binding.name}\n${expiresAt}`)
      .digest('base64url');
  }
}
