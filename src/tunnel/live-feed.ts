/**
 * The live feed of a tunnel session (`GET /reverse-proxy/sse/{id}`): numbered, timestamped
 * events fanned out to subscribers, each with its own bounded buffer that drops the oldest
 * events when the subscriber does not keep up.
 *
 * @module
 */
import type { TunnelEvent, TunnelEventBody, TunnelSubscription } from './hub-types.js';

/** One subscriber's bounded buffer. */
export class Subscription implements TunnelSubscription {
  #buffer: TunnelEvent[] = [];
  #dropped = 0;
  #droppedTotal = 0;
  #closed = false;
  readonly #max: number;
  readonly #onReadable: () => void;
  readonly #remove: () => void;

  constructor(max: number, onReadable: () => void, remove: () => void) {
    this.#max = Math.max(1, max);
    this.#onReadable = onReadable;
    this.#remove = remove;
  }

  push(event: TunnelEvent): void {
    if (this.#closed) return;
    if (this.#buffer.length >= this.#max) {
      this.#buffer.shift();
      this.#dropped++;
      this.#droppedTotal++;
    }
    this.#buffer.push(event);
    if (event.type === 'closed') {
      this.#closed = true;
      this.#remove();
    }
    this.#onReadable();
  }

  drain(): { events: TunnelEvent[]; dropped: number } {
    const out = { events: this.#buffer, dropped: this.#dropped };
    this.#buffer = [];
    this.#dropped = 0;
    return out;
  }

  get closed(): boolean {
    return this.#closed;
  }

  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#remove();
  }
}

/** The subscribers of one session and the sequence numbers of its events. */
export class LiveFeed {
  readonly #subscribers = new Set<Subscription>();
  #eventSeq = 0;
  readonly #now: () => number;

  /** @param now - the clock events are stamped with, in epoch ms. */
  constructor(now: () => number) {
    this.#now = now;
  }

  /**
   * Adds a subscriber holding up to `max` events, handed the `replay` events (the session so
   * far) before any new one. `onReadable` is called whenever events are buffered.
   */
  subscribe(max: number, onReadable: () => void, replay: readonly TunnelEvent[]): Subscription {
    const sub = new Subscription(max, onReadable, () => this.#subscribers.delete(sub));
    this.#subscribers.add(sub);
    for (const event of replay) sub.push(event);
    return sub;
  }

  /** Stamps an event with the next sequence number and the time, and hands it to every subscriber. */
  publish(body: TunnelEventBody): void {
    if (this.#subscribers.size === 0) return;
    const event = { seq: ++this.#eventSeq, time: this.#now(), ...body };
    for (const sub of [...this.#subscribers]) sub.push(event);
  }
}
