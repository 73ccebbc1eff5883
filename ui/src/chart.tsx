/**
 * uPlot charts: a small sparkline for the overview and a time-series line chart for usage.
 *
 * @module
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { THEME_CHANGE_EVENT } from './theme.ts';

/** Colours of successive series, readable on both themes' backgrounds. */
export const SERIES_COLOURS = ['#2f7bd6', '#d9534f', '#2e9e5b', '#c98a10', '#8e5bd6', '#1aa3a3', '#c0508d', '#7a7a7a'];

function cssVar(name: string, fallback: string): string {
  const v = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
  return v === '' ? fallback : v;
}

/**
 * A number that changes whenever the theme does (the system preference or the toggle): canvas
 * colours are read from CSS variables when a chart is drawn, so charts are redrawn with it.
 */
export function useThemeVersion(): number {
  const [version, setVersion] = useState(0);
  useEffect(() => {
    const bump = () => setVersion((v) => v + 1);
    const media = matchMedia('(prefers-color-scheme: dark)');
    media.addEventListener('change', bump);
    window.addEventListener(THEME_CHANGE_EVENT, bump);
    return () => {
      media.removeEventListener('change', bump);
      window.removeEventListener(THEME_CHANGE_EVENT, bump);
    };
  }, []);
  return version;
}

/** Props of {@link Sparkline}. */
export interface SparklineProps {
  /** Epoch ms of each point. */
  times: number[];
  values: number[];
  /** Accessible description, e.g. "requests per 10 s over the last 5 minutes". */
  label: string;
  width?: number;
  height?: number;
}

/** A tiny line chart without axes (the numbers beside it carry the values). */
export function Sparkline({ times, values, label, width = 160, height = 36 }: SparklineProps) {
  const host = useRef<HTMLDivElement>(null);
  const plot = useRef<uPlot | null>(null);
  const theme = useThemeVersion();
  useEffect(() => {
    if (!host.current) return undefined;
    const opts: uPlot.Options = {
      width,
      height,
      pxAlign: false,
      cursor: { show: false },
      legend: { show: false },
      select: { show: false, left: 0, top: 0, width: 0, height: 0 },
      scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [{ show: false }, { show: false }],
      series: [
        {},
        { stroke: cssVar('--accent', '#2f7bd6'), width: 1.5, fill: cssVar('--accent-fill', 'rgba(47,123,214,0.15)') },
      ],
    };
    plot.current = new uPlot(opts, [times.map((t) => t / 1000), values], host.current);
    return () => {
      plot.current?.destroy();
      plot.current = null;
    };
    // Created once per size and theme; data updates go through setData below.
  }, [width, height, theme]);
  useEffect(() => {
    plot.current?.setData([times.map((t) => t / 1000), values]);
  }, [times, values]);
  return <div class="sparkline" ref={host} role="img" aria-label={label} />;
}

/** Props of {@link TimeChart}. */
export interface TimeChartProps {
  /** Epoch ms of each bucket. */
  times: number[];
  series: Array<{ label: string; values: Array<number | null> }>;
  /** The x range, epoch ms: the requested window, also where it has no data. */
  range: { from: number; to: number };
  /** Accessible description of the chart. */
  label: string;
  height?: number;
}

/** A time-series line chart with axes and a legend, as wide as its container. */
export function TimeChart({ times, series, range, label, height = 260 }: TimeChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const theme = useThemeVersion();
  useEffect(() => {
    const el = host.current;
    if (!el) return undefined;
    const axisColour = cssVar('--text-muted', '#555');
    const gridColour = cssVar('--border', '#ddd');
    const axis = {
      stroke: axisColour,
      grid: { stroke: gridColour, width: 1 },
      ticks: { stroke: gridColour, width: 1 },
    };
    const opts: uPlot.Options = {
      width: Math.max(300, el.clientWidth),
      height,
      axes: [axis, axis],
      scales: {
        x: { range: () => [range.from / 1000, range.to / 1000] },
        y: { range: (_u, _min, max) => [0, Math.max(1, max)] },
      },
      series: [
        {},
        ...series.map((s, i) => ({
          label: s.label,
          stroke: SERIES_COLOURS[i % SERIES_COLOURS.length],
          width: 2,
          points: { show: true, size: 6 },
        })),
      ],
    };
    const u = new uPlot(opts, [times.map((t) => t / 1000), ...series.map((s) => s.values)], el);
    const resize = new ResizeObserver(() => u.setSize({ width: Math.max(300, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      u.destroy();
    };
  }, [times, series, range.from, range.to, height, theme]);
  return <div class="chart" ref={host} role="img" aria-label={label} />;
}
