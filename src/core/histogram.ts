/** A Prometheus histogram's state: cumulative counts per upper bound, the sum and the count. */
export interface Histogram {
  /** Upper bounds, ascending, in the histogram's unit; +Inf is implied. */
  readonly bounds: readonly number[];
  /** counts[i]: observations ≤ bounds[i] (cumulative, as Prometheus exposes them). */
  counts: number[];
  sum: number;
  count: number;
}

export function histogram(bounds: readonly number[]): Histogram {
  return { bounds, counts: bounds.map(() => 0), sum: 0, count: 0 };
}

/** Adds one observation (in place: histograms are counters, only ever growing). */
export function observe(h: Histogram, value: number): void {
  for (let i = 0; i < h.bounds.length; i++) if (value <= h.bounds[i]) h.counts[i]++;
  h.sum += value;
  h.count++;
}

/** Seconds, from 1 ms to 10 s: probe latency and backend connect time. */
export const LATENCY_BUCKETS = [
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];
/** Seconds, from 50 ms to 2 min: a failover from detection to the first session on the new node. */
export const FAILOVER_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2, 5, 10, 20, 30, 60, 120];

/** The text exposition lines of one labelled histogram (`_bucket`, `_sum`, `_count`). */
export function histogramLines(
  name: string,
  labels: Record<string, string>,
  h: Histogram,
  label: (labels: Record<string, string>) => string,
): string[] {
  const lines = h.bounds.map((b, i) =>
    `${name}_bucket${label({ ...labels, le: String(b) })} ${h.counts[i]}`
  );
  lines.push(`${name}_bucket${label({ ...labels, le: "+Inf" })} ${h.count}`);
  lines.push(`${name}_sum${label(labels)} ${h.sum}`);
  lines.push(`${name}_count${label(labels)} ${h.count}`);
  return lines;
}
