/**
 * Resumption of a portable session's SSE stream on another replica (Streamable HTTP transports
 * §Resumability and Redelivery). The events a replica sends on a portable session's streams are
 * kept in that replica's event store, and their ids name the replica: `{stream}.{seq}.{replica}`.
 * A `GET` with a `Last-Event-ID` of another replica asks that replica, over the application's
 * shared channel, for the stored events after it. For the standalone (GET) stream the owner also
 * lets go of it, so the session's later notifications are passed on to the new holder; a
 * request's stream is replayed as far as it has been stored, and the client resumes it again
 * for the rest.
 *
 * The link is wired by the two sides that know the parts: the streamable handler provides
 * {@link StreamHandoverLink.source} (its event stores), the application's Redis feed provides
 * {@link StreamHandoverLink.request} (the channel). Without a feed, a foreign id cannot be
 * resumed.
 *
 * @module
 */
import { randomBytes } from 'node:crypto';
import type { ClientSession } from './client-session.js';

/** One stored SSE event handed over: its sequence number on the owner and its `data`. */
export type HandedOverEvent = readonly [seq: number, data: string];

/** What the owner of a stream hands over; see {@link StreamHandoverLink.source}. */
export interface StreamHandover {
  /** The stored events after the requested one, oldest first. */
  readonly events: readonly HandedOverEvent[];
  /**
   * True when the stream is still open on the owner: a request's stream whose answer has not
   * been sent yet, or (always) the standalone stream, which the owner has now released.
   */
  readonly live: boolean;
  /** True when events were left out to keep the answer within its size bound. */
  readonly truncated?: boolean;
}

/** How long a replica waits for the owner of a stream to hand it over, ms (1 s). */
export const HANDOVER_TIMEOUT_MS = 1000;

/**
 * The per-process link between the streamable handler's event stores and the replicas' shared
 * channel. One per gateway.
 */
export class StreamHandoverLink {
  /** This process's tag in event ids: 8 hex digits, random per start. */
  readonly replica = randomBytes(4).toString('hex');

  /**
   * Set by the streamable handler: hands over the stored events of `session`'s stream `stream`
   * after sequence number `after` (and releases the standalone stream, so that later
   * notifications are passed on). Undefined when this process has no state for the session.
   */
  source: ((session: ClientSession, stream: number, after: number) => StreamHandover | undefined) | undefined =
    undefined;

  /**
   * Set by the application's shared channel (Redis): asks replica `replica` for its events of
   * session `sessionId`'s stream `stream` after `after`. `done` is called exactly once, with the
   * owner's answer, or undefined when none came within {@link HANDOVER_TIMEOUT_MS} (the owner is
   * gone) or the owner has no state for the session. `done` runs synchronously from the channel's
   * message handler, before any later message of the channel is handled, so a holder attached in
   * it sees the notifications the owner passes on after letting go.
   */
  request:
    | ((
        sessionId: string,
        replica: string,
        stream: number,
        after: number,
        done: (handover: StreamHandover | undefined) => void,
      ) => void)
    | undefined = undefined;
}

/** A parsed SSE event id: `{stream}.{seq}` or, on a portable session, `{stream}.{seq}.{replica}`. */
export interface EventId {
  readonly stream: number;
  readonly seq: number;
  /** The replica that sent the event; undefined for an id without one. */
  readonly replica: string | undefined;
}

const EVENT_ID_RE = /^(\d{1,15})\.(\d{1,15})(?:\.([0-9a-f]{8}))?$/;

/** Parses a `Last-Event-ID`; undefined when it is not one this gateway sent. */
export function parseEventId(id: string): EventId | undefined {
  const m = EVENT_ID_RE.exec(id);
  if (!m) return undefined;
  return { stream: Number(m[1]), seq: Number(m[2]), replica: m[3] };
}
