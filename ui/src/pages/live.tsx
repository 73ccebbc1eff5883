/**
 * Live: the gateway's recent requests and (for admins) its log tail from `GET /api/v1/live`, an
 * event stream read with `fetch()` (reconnecting after a drop), filterable. Blocked, rate-limited
 * and failed requests stand out by colour and by their outcome word.
 *
 * @module
 */
import { useEffect, useState } from 'preact/hooks';
import { ApiError, authHeaders, describeError, notifyUnauthorized, type Me } from '../api.ts';
import { Badge, Notice } from '../components.tsx';
import { formatClock, formatMs } from '../format.ts';
import { streamEvents } from '../sse.ts';

/** Most requests and log lines kept in the page (older ones are dropped). */
export const MAX_LIVE_ENTRIES = 500;

/** Delay before reconnecting after the stream ended or failed, ms. */
export const RECONNECT_MS = 3000;

/** A `request` event. */
export interface LiveRequest {
  time: string;
  reqId: string | null;
  endpoint: string;
  method: string | null;
  server: string | null;
  tool: string | null;
  /** Null when the request was refused before authentication ended. */
  principal: string | null;
  outcome: string;
  status: number;
  code: string | null;
  durationMs: number;
}

/** A `log` event. */
export interface LiveLog {
  time: string;
  level: string;
  msg: string;
  component?: string;
  server?: string;
  reqId?: string;
}

type Connection = 'connecting' | 'connected' | 'reconnecting';

/** `list` with `item` at its end, the oldest entries dropped beyond {@link MAX_LIVE_ENTRIES}. */
export function append<T>(list: T[], item: T): T[] {
  const next = list.length >= MAX_LIVE_ENTRIES ? list.slice(list.length - MAX_LIVE_ENTRIES + 1) : list.slice();
  next.push(item);
  return next;
}

function includes(text: string | null | undefined, query: string): boolean {
  return (text ?? '').toLowerCase().includes(query);
}

/** The live page. */
export function LivePage({ me }: { me: Me }) {
  const [requests, setRequests] = useState<LiveRequest[]>([]);
  const [logs, setLogs] = useState<LiveLog[]>([]);
  const [connection, setConnection] = useState<Connection>('connecting');
  const [error, setError] = useState<string | null>(null);
  const [text, setText] = useState('');
  const [outcome, setOutcome] = useState('');
  const [paused, setPaused] = useState(false);

  useEffect(() => {
    const controller = new AbortController();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const connect = async () => {
      setConnection((c) => (c === 'connected' ? 'reconnecting' : c));
      // The server replays its recent entries on each connection: start from them.
      let first = true;
      try {
        await streamEvents(
          '/api/v1/live',
          authHeaders(),
          controller.signal,
          (event) => {
            if (first) {
              first = false;
              setRequests([]);
              setLogs([]);
            }
            try {
              if (event.event === 'request') setRequests((l) => append(l, JSON.parse(event.data) as LiveRequest));
              else if (event.event === 'log') setLogs((l) => append(l, JSON.parse(event.data) as LiveLog));
            } catch {
              // A malformed event: skipped.
            }
          },
          () => {
            setConnection('connected');
            setError(null);
          },
        );
        if (!controller.signal.aborted) setError('The live stream ended; reconnecting…');
      } catch (err) {
        if (controller.signal.aborted) return;
        // A refused token or permission does not change by retrying.
        if (err instanceof ApiError && (err.status === 401 || err.status === 403)) {
          setError(describeError(err));
          if (err.status === 401) notifyUnauthorized();
          return;
        }
        setError(`${describeError(err)} Reconnecting in ${RECONNECT_MS / 1000} s…`);
      }
      if (controller.signal.aborted) return;
      setConnection('reconnecting');
      timer = setTimeout(() => void connect(), RECONNECT_MS);
    };
    void connect();
    return () => {
      controller.abort();
      clearTimeout(timer);
    };
  }, []);

  const [frozen, setFrozen] = useState<{ requests: LiveRequest[]; logs: LiveLog[] } | null>(null);
  useEffect(() => setFrozen(paused ? { requests, logs } : null), [paused]);
  const shownRequests = frozen?.requests ?? requests;
  const shownLogs = frozen?.logs ?? logs;

  const q = text.trim().toLowerCase();
  const rows = shownRequests
    .filter((r) => (outcome === '' ? true : outcome === 'problems' ? r.outcome !== 'ok' : r.outcome === outcome))
    .filter(
      (r) => q === '' || [r.method, r.server, r.tool, r.principal, r.code, r.endpoint].some((t) => includes(t, q)),
    )
    .slice()
    .reverse();
  const logRows = shownLogs
    .filter((l) => q === '' || [l.msg, l.component, l.server, l.level].some((t) => includes(t, q)))
    .slice()
    .reverse();

  return (
    <>
      <div class="toolbar">
        <div class="field">
          <label for="live-filter">Filter (server, tool, principal, method, code)</label>
          <input id="live-filter" type="search" value={text} onInput={(e) => setText(e.currentTarget.value)} />
        </div>
        <div class="field">
          <label for="live-outcome">Outcome</label>
          <select id="live-outcome" value={outcome} onChange={(e) => setOutcome(e.currentTarget.value)}>
            <option value="">All</option>
            <option value="problems">Not ok</option>
            <option value="ok">ok</option>
            <option value="error">error</option>
            <option value="blocked">blocked</option>
            <option value="rate_limited">rate_limited</option>
          </select>
        </div>
        <div class="toolbar-actions">
          <button type="button" aria-pressed={paused} onClick={() => setPaused(!paused)}>
            {paused ? 'Resume' : 'Pause'}
          </button>
          <span class="muted" role="status">
            Stream: {connection}
            {paused ? ' (paused)' : ''}
          </span>
        </div>
      </div>
      <div aria-live="polite">{error && <Notice kind="error">{error}</Notice>}</div>
      <section aria-labelledby="live-requests-title">
        <h2 id="live-requests-title">Requests ({rows.length})</h2>
        <div class="scroll">
          <table class="data live-requests">
            <thead>
              <tr>
                <th scope="col">Time</th>
                <th scope="col">Method</th>
                <th scope="col">Server</th>
                <th scope="col">Tool</th>
                <th scope="col">Principal</th>
                <th scope="col">Outcome</th>
                <th scope="col" class="num">
                  Duration
                </th>
              </tr>
            </thead>
            <tbody>
              {rows.map((r, i) => (
                <tr
                  key={`${r.reqId ?? i}-${r.time}`}
                  class={r.outcome === 'ok' ? '' : `row-${r.outcome}`}
                  data-outcome={r.outcome}
                >
                  <td>
                    <time dateTime={r.time}>{formatClock(r.time)}</time>
                  </td>
                  <td>{r.method ? <code>{r.method}</code> : '–'}</td>
                  <td>{r.server ?? '–'}</td>
                  <td>{r.tool ?? '–'}</td>
                  <td>{r.principal ?? <span class="muted">unauthenticated</span>}</td>
                  <td>
                    <Badge word={r.outcome} />
                    {r.outcome !== 'ok' && (
                      <span class="small">
                        {' '}
                        {r.status}
                        {r.code ? ` ${r.code}` : ''}
                      </span>
                    )}
                  </td>
                  <td class="num">{formatMs(r.durationMs)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </section>
      {me.can.admin && (
        <section aria-labelledby="live-log-title">
          <h2 id="live-log-title">Log ({logRows.length})</h2>
          <ol class="log-tail">
            {logRows.map((l, i) => (
              <li key={`${l.time}-${i}`} class={`log-${l.level}`}>
                <time dateTime={l.time}>{formatClock(l.time)}</time> <span class="log-level">{l.level}</span>{' '}
                {l.component && <span class="muted">[{l.component}]</span>} {l.msg}
                {l.server && <span class="muted"> server={l.server}</span>}
              </li>
            ))}
          </ol>
        </section>
      )}
    </>
  );
}
