/**
 * Allocation-free counter and histogram families for the metrics registry. Each series is a
 * pre-bound cell (a number, or a `Float64Array` of bucket counts plus a sum) that the recorders
 * keep and update directly; the families implement the part of prom-client's collector contract
 * its `Registry` uses (`get()` returning the same value objects prom-client's Counter and
 * Histogram produce), so they are formatted with every other metric. See `metrics.ts` for why.
 *
 * @module
 */
import type { Metric, Registry } from 'prom-client';

/** The label values of one series. */
export type Labels = Readonly<Record<string, string>>;

/** One counter series. */
export interface CounterCell {
  readonly labels: Labels;
  value: number;
}

/** One histogram series: per-bucket (non-cumulative) counts, the last slot is `+Inf`. */
export interface HistogramCell {
  readonly labels: Labels;
  readonly counts: Float64Array;
  sum: number;
  count: number;
}

/** The value objects prom-client's `Registry` formats (same shape its own metrics return). */
interface ExportedValue {
  labels: Record<string, string | number>;
  value: number;
  metricName?: string;
}

/** One family as `Registry` formats it. */
interface ExportedMetric {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  aggregator: 'sum';
  values: ExportedValue[];
}

/**
 * A counter family whose series are {@link CounterCell}s. Implements the part of prom-client's
 * metric contract that `Registry` uses: `name`, `help`, `type`, `aggregator`, `get()`, `reset()`.
 */
export class CounterFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'counter';
  readonly aggregator = 'sum';
  readonly #cells = new Set<CounterCell>();

  constructor(name: string, help: string) {
    this.name = name;
    this.help = help;
  }

  /** Creates the series for `labels` (once per label combination; the caller keeps the cell). */
  cell(labels: Labels): CounterCell {
    const cell: CounterCell = { labels, value: 0 };
    this.#cells.add(cell);
    return cell;
  }

  /** Drops the series whose labels match `predicate` (they are no longer exported). */
  removeWhere(predicate: (labels: Labels) => boolean): void {
    for (const cell of this.#cells) if (predicate(cell.labels)) this.#cells.delete(cell);
  }

  /** The family's current values, as prom-client's own metrics return them. */
  get(): ExportedMetric {
    const values: ExportedValue[] = [];
    for (const cell of this.#cells) values.push({ labels: { ...cell.labels }, value: cell.value });
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Sets every series back to zero (they stay exported). */
  reset(): void {
    for (const cell of this.#cells) cell.value = 0;
  }
}

/** A histogram family whose series are {@link HistogramCell}s; see {@link CounterFamily}. */
export class HistogramFamily {
  readonly name: string;
  readonly help: string;
  readonly type = 'histogram';
  readonly aggregator = 'sum';
  readonly #bounds: Float64Array;
  readonly #cells = new Set<HistogramCell>();

  constructor(name: string, help: string, bounds: readonly number[]) {
    this.name = name;
    this.help = help;
    this.#bounds = Float64Array.from(bounds);
  }

  /** Creates the series for `labels` (once per label combination; the caller keeps the cell). */
  cell(labels: Labels): HistogramCell {
    const cell: HistogramCell = { labels, counts: new Float64Array(this.#bounds.length + 1), sum: 0, count: 0 };
    this.#cells.add(cell);
    return cell;
  }

  /** Counts `value` in `cell`'s bucket and sum; ignores NaN and negative values. */
  observe(cell: HistogramCell, value: number): void {
    // NaN or a negative duration (never produced by a monotonic clock) would corrupt the sum.
    if (!(value >= 0)) return;
    const bounds = this.#bounds;
    let i = 0;
    while (i < bounds.length && value > bounds[i]!) i++;
    cell.counts[i]!++;
    cell.sum += value;
    cell.count++;
  }

  /** Drops the series whose labels match `predicate` (they are no longer exported). */
  removeWhere(predicate: (labels: Labels) => boolean): void {
    for (const cell of this.#cells) if (predicate(cell.labels)) this.#cells.delete(cell);
  }

  /** The family's current values, as prom-client's own metrics return them. */
  get(): ExportedMetric {
    const values: ExportedValue[] = [];
    const bucket = `${this.name}_bucket`;
    const bounds = this.#bounds;
    for (const cell of this.#cells) {
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += cell.counts[i]!;
        values.push({ labels: { ...cell.labels, le: bounds[i]! }, value: cumulative, metricName: bucket });
      }
      values.push({ labels: { ...cell.labels, le: '+Inf' }, value: cell.count, metricName: bucket });
      values.push({ labels: { ...cell.labels }, value: cell.sum, metricName: `${this.name}_sum` });
      values.push({ labels: { ...cell.labels }, value: cell.count, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: this.type, aggregator: this.aggregator, values };
  }

  /** Sets every series back to zero (they stay exported). */
  reset(): void {
    for (const cell of this.#cells) {
      cell.counts.fill(0);
      cell.sum = 0;
      cell.count = 0;
    }
  }
}

/**
 * Registers a family with `registry`, which formats it like its own metrics.
 *
 * @throws Error from prom-client when `registry` already holds a metric of the same name
 */
export function registerFamily(registry: Registry, family: CounterFamily | HistogramFamily): void {
  // prom-client types `registerMetric` as taking its own classes; the Registry only calls
  // the collector contract these families implement (see the module comment).
  registry.registerMetric(family as unknown as Metric);
}
