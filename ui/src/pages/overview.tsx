/**
 * Overview: every server with its state, last error, restarts, transport, isolation, live
 * sessions and its traffic over the last minutes (rate, p50/p95 latency, error rate, sparkline),
 * refreshed every 5 s.
 *
 * @module
 */
import { api, type ServerView } from '../api.ts';
import { Sparkline } from '../chart.tsx';
import { Badge, Notice } from '../components.tsx';
import { formatMs, formatPercent } from '../format.ts';
import { usePoll } from '../poll.ts';

/** Refresh interval of the overview, ms. */
export const OVERVIEW_REFRESH_MS = 5000;

/** `12 / 40 ms`, or each value with its own unit when they differ (`800 ms / 1.20 s`). */
function latencyPair(p50: number | null | undefined, p95: number | null | undefined): string {
  const a = formatMs(p50);
  const b = formatMs(p95);
  return a.endsWith(' ms') && b.endsWith(' ms') ? `${a.slice(0, -3)} / ${b}` : `${a} / ${b}`;
}

function ServerCard({ s }: { s: ServerView }) {
  const stats = s.stats;
  const series = stats?.series ?? [];
  return (
    <article class="card server-card" aria-labelledby={`server-${s.name}`} data-server={s.name}>
      <header class="card-head">
        <h2 id={`server-${s.name}`}>{s.name}</h2>
        <Badge word={s.state} />
      </header>
      {s.description && <p class="muted">{s.description}</p>}
      <dl class="facts">
        <div>
          <dt>Transport</dt>
          <dd>{s.transport ?? '–'}</dd>
        </div>
        <div>
          <dt>Isolation</dt>
          <dd>{s.isolation ?? '–'}</dd>
        </div>
        <div>
          <dt>Sessions</dt>
          <dd>{s.sessions ?? 0}</dd>
        </div>
        <div>
          <dt>Restarts</dt>
          <dd>{s.restarts}</dd>
        </div>
        <div>
          <dt>Requests/min</dt>
          <dd>{stats ? stats.ratePerMinute.toFixed(stats.ratePerMinute < 10 ? 1 : 0) : '–'}</dd>
        </div>
        <div>
          <dt>p50 / p95</dt>
          <dd>{latencyPair(stats?.p50Ms, stats?.p95Ms)}</dd>
        </div>
        <div>
          <dt>Error rate</dt>
          <dd>{formatPercent(stats?.errorRate)}</dd>
        </div>
        <div>
          <dt>Tools</dt>
          <dd>{s.tools}</dd>
        </div>
      </dl>
      {series.length > 0 && (
        <Sparkline
          width={300}
          height={40}
          times={series.map((p) => p.t)}
          values={series.map((p) => p.requests)}
          label={`${s.name}: ${stats?.requests ?? 0} requests in the last ${Math.round((stats?.windowSeconds ?? 300) / 60)} minutes`}
        />
      )}
      {s.error && (
        <p class="last-error">
          <strong>Last error:</strong> {s.error}
        </p>
      )}
    </article>
  );
}

/** The overview page. */
export function OverviewPage() {
  const { data, error } = usePoll(
    (signal) => api<{ servers: ServerView[] }>('servers', { signal }),
    OVERVIEW_REFRESH_MS,
  );
  const servers = data?.servers ?? [];
  const counts = servers.reduce<Record<string, number>>(
    (acc, s) => ({ ...acc, [s.state]: (acc[s.state] ?? 0) + 1 }),
    {},
  );
  return (
    <>
      <p class="muted" aria-live="polite">
        {data
          ? `${servers.length} server${servers.length === 1 ? '' : 's'}: ${Object.entries(counts)
              .map(([k, n]) => `${n} ${k}`)
              .join(', ')}. Refreshed every ${OVERVIEW_REFRESH_MS / 1000} s.`
          : 'Loading…'}
      </p>
      <div aria-live="polite">{error && <Notice kind="error">{error}</Notice>}</div>
      <div class="card-grid">
        {servers.map((s) => (
          <ServerCard key={s.name} s={s} />
        ))}
      </div>
      {data && servers.length === 0 && <p>No servers are configured.</p>}
    </>
  );
}
