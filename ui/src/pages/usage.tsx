/**
 * Usage: requests per token, server or tool over the last days from `GET /api/v1/usage`, as a
 * chart (one line per key, the busiest first) and a table of totals, with a CSV export of the
 * rows built in the browser.
 *
 * @module
 */
import { useMemo, useState } from 'preact/hooks';
import { api, type Me, type TokenView, type UsageRow, type UsageSeries } from '../api.ts';
import { TimeChart } from '../chart.tsx';
import { Notice } from '../components.tsx';
import { downloadText, formatMs, toCsv } from '../format.ts';
import { usePoll } from '../poll.ts';

/** Most keys drawn in the chart (the table lists all). */
export const MAX_CHART_SERIES = 8;

const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

interface Total {
  key: string;
  detail: string;
  count: number;
  success: number;
  blocked: number;
  errors: number;
  avgLatencyMs: number | null;
}

/** The row's key; requests that reached no server or tool (refused early, `initialize`) have none. */
/** The key of rows without one. */
const NO_KEY = '(none)';

function keyOf(r: UsageRow): string {
  return r.key ?? NO_KEY;
}

/** Totals per key over all buckets, busiest first; latency weighted by non-blocked requests. */
export function totals(rows: UsageRow[]): Total[] {
  const by = new Map<string, Total & { latencySum: number; latencyN: number }>();
  for (const r of rows) {
    const k = keyOf(r);
    const t = by.get(k) ?? {
      key: k,
      detail: r.subject ?? r.server ?? '',
      count: 0,
      success: 0,
      blocked: 0,
      errors: 0,
      avgLatencyMs: null,
      latencySum: 0,
      latencyN: 0,
    };
    t.count += r.count;
    t.success += r.success;
    t.blocked += r.blocked;
    t.errors += r.errors;
    if (r.avgLatencyMs !== null) {
      const n = r.count - r.blocked;
      t.latencySum += r.avgLatencyMs * n;
      t.latencyN += n;
    }
    by.set(k, t);
  }
  return [...by.values()]
    .map(({ latencySum, latencyN, ...t }) => ({ ...t, avgLatencyMs: latencyN > 0 ? latencySum / latencyN : null }))
    .sort((a, b) => b.count - a.count || a.key.localeCompare(b.key));
}

/** The usage page. */
export function UsagePage({ me }: { me: Me }) {
  const [groupBy, setGroupBy] = useState<'token' | 'server' | 'tool'>('tool');
  const [days, setDays] = useState(7);
  const [bucket, setBucket] = useState<'hour' | 'day'>('day');
  const { data, error, reload } = usePoll(
    (signal) => {
      const to = Date.now();
      const from = bucket === 'day' ? Math.floor((to - days * DAY_MS) / DAY_MS + 1) * DAY_MS : to - days * DAY_MS;
      return api<UsageSeries>(`usage?groupBy=${groupBy}&bucket=${bucket}&from=${from}&to=${to}`, { signal });
    },
    30_000,
    [groupBy, days, bucket],
  );

  // Token names for the token grouping, when this token may list tokens.
  const names = usePoll(
    async (signal) =>
      groupBy === 'token' && me.can.tokensManage
        ? new Map((await api<{ tokens: TokenView[] }>('tokens', { signal })).tokens.map((t) => [t.id, t.name]))
        : new Map<string, string>(),
    0,
    [groupBy],
  ).data;

  /** Requests that reached no server or tool (refused early, `initialize`) are `(no tool)` etc. */
  const labelOf = (key: string) => (key === NO_KEY ? `(no ${groupBy})` : key);
  const rows = data?.series ?? [];
  const table = useMemo(() => totals(rows), [rows]);
  const chart = useMemo(() => {
    const from = data ? Date.parse(data.from) : Date.now();
    const to = data ? Date.parse(data.to) : Date.now();
    // Every bucket of the window (UTC-aligned, like the API's), so quiet ones are drawn as 0.
    const step = bucket === 'day' ? DAY_MS : HOUR_MS;
    const times: number[] = [];
    for (let t = Math.floor(from / step) * step; t < to; t += step) times.push(t);
    const index = new Map(times.map((t, i) => [t, i]));
    const series = table.slice(0, MAX_CHART_SERIES).map((t) => {
      const values: Array<number | null> = times.map(() => 0);
      for (const r of rows) {
        const i = index.get(Date.parse(r.bucket));
        if (keyOf(r) === t.key && i !== undefined) values[i] = r.count;
      }
      return { label: labelOf(t.key), values };
    });
    return { times, series, range: { from: times[0] ?? from, to: Math.max(to, (times.at(-1) ?? to) + step / 2) } };
  }, [rows, table, data, bucket, groupBy]);

  const detailHeader = groupBy === 'token' ? 'Subject' : groupBy === 'tool' ? 'Server' : null;
  const exportCsv = () => {
    const csv = toCsv(
      ['bucket', groupBy, 'server_or_subject', 'count', 'success', 'blocked', 'errors', 'avg_latency_ms'],
      rows.map((r) => [
        r.bucket,
        r.key,
        r.subject ?? r.server ?? '',
        r.count,
        r.success,
        r.blocked,
        r.errors,
        r.avgLatencyMs,
      ]),
    );
    downloadText(`switchboard-usage-${groupBy}-${new Date().toISOString().slice(0, 10)}.csv`, csv);
  };

  return (
    <>
      <div class="toolbar">
        <div class="field">
          <label for="usage-group">Group by</label>
          <select
            id="usage-group"
            value={groupBy}
            onChange={(e) => setGroupBy(e.currentTarget.value as typeof groupBy)}
          >
            <option value="token">Token</option>
            <option value="server">Server</option>
            <option value="tool">Tool</option>
          </select>
        </div>
        <div class="field">
          <label for="usage-days">Period</label>
          <select id="usage-days" value={String(days)} onChange={(e) => setDays(Number(e.currentTarget.value))}>
            <option value="1">Last day</option>
            <option value="7">Last 7 days</option>
            <option value="30">Last 30 days</option>
            <option value="90">Last 90 days</option>
          </select>
        </div>
        <div class="field">
          <label for="usage-bucket">Buckets</label>
          <select id="usage-bucket" value={bucket} onChange={(e) => setBucket(e.currentTarget.value as typeof bucket)}>
            <option value="hour">Hours</option>
            <option value="day">Days</option>
          </select>
        </div>
        <div class="toolbar-actions">
          <button type="button" onClick={() => void reload()}>
            Refresh
          </button>
          <button type="button" onClick={exportCsv} disabled={rows.length === 0}>
            Export CSV
          </button>
        </div>
      </div>
      <div aria-live="polite">
        {error && <Notice kind="error">{error}</Notice>}
        {data && (
          <p class="muted">
            {table.reduce((n, t) => n + t.count, 0)} requests by {table.length} {groupBy}s from{' '}
            {new Date(data.from).toLocaleDateString()} to {new Date(data.to).toLocaleDateString()} (usage is written in
            batches: the latest requests can take a few seconds to appear).
          </p>
        )}
      </div>
      {chart.times.length > 0 && rows.length > 0 && (
        <TimeChart
          times={chart.times}
          series={chart.series}
          range={chart.range}
          label={`Requests per ${bucket} by ${groupBy}; the table below has the numbers`}
        />
      )}
      <table class="data">
        <caption class="visually-hidden">Totals by {groupBy}</caption>
        <thead>
          <tr>
            <th scope="col">{groupBy === 'token' ? 'Token id' : groupBy === 'server' ? 'Server' : 'Tool'}</th>
            {detailHeader && <th scope="col">{detailHeader}</th>}
            <th scope="col" class="num">
              Requests
            </th>
            <th scope="col" class="num">
              Succeeded
            </th>
            <th scope="col" class="num">
              Blocked
            </th>
            <th scope="col" class="num">
              Errors
            </th>
            <th scope="col" class="num">
              Mean latency
            </th>
          </tr>
        </thead>
        <tbody>
          {table.map((t) => (
            <tr key={t.key} data-key={t.key}>
              <th scope="row">
                {names?.get(t.key) && <span>{names.get(t.key)} </span>}
                <code>{labelOf(t.key)}</code>
              </th>
              {detailHeader && <td>{t.detail}</td>}
              <td class="num">{t.count}</td>
              <td class="num">{t.success}</td>
              <td class="num">{t.blocked}</td>
              <td class="num">{t.errors}</td>
              <td class="num">{formatMs(t.avgLatencyMs)}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {data && table.length === 0 && <p>No requests in this period.</p>}
    </>
  );
}
