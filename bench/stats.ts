/**
 * Latency histograms that load workers fill and the orchestrator merges. Values are kept in
 * 10 µs buckets: fine enough to tell loopback latencies apart, and a histogram of millions of
 * samples stays a few thousand entries, cheap to send over IPC.
 */

/** Bucket width in milliseconds. */
const BUCKET_MS = 0.01;

/** bucket index → count. Serialisable as `[index, count][]`. */
export type Histogram = Map<number, number>;
export type HistogramEntries = [bucket: number, count: number][];

export function record(histogram: Histogram, valueMs: number): void {
  // Clocks of two processes can disagree by a few µs; a negative latency is recorded as 0.
  const bucket = Math.max(0, Math.round(valueMs / BUCKET_MS));
  histogram.set(bucket, (histogram.get(bucket) ?? 0) + 1);
}

export function merge(into: Histogram, entries: HistogramEntries): Histogram {
  for (const [bucket, count] of entries) into.set(bucket, (into.get(bucket) ?? 0) + count);
  return into;
}

export function countOf(histogram: Histogram): number {
  let total = 0;
  for (const count of histogram.values()) total += count;
  return total;
}

export interface Summary {
  count: number;
  p50: number;
  p90: number;
  p99: number;
  max: number;
}

/**
 * Nearest-rank percentiles (the smallest value with at least p % of samples at or below it),
 * in milliseconds. NaN for an empty histogram, so a missing figure cannot pass for zero.
 */
export function summarize(histogram: Histogram): Summary {
  const buckets = [...histogram.entries()].sort((a, b) => a[0] - b[0]);
  const count = buckets.reduce((sum, [, n]) => sum + n, 0);
  const at = (p: number): number => {
    if (count === 0) return Number.NaN;
    const rank = Math.max(1, Math.ceil((p / 100) * count));
    let seen = 0;
    for (const [bucket, n] of buckets) {
      seen += n;
      if (seen >= rank) return bucket * BUCKET_MS;
    }
    return Number.NaN;
  };
  const last = buckets.at(-1);
  return {
    count,
    p50: at(50),
    p90: at(90),
    p99: at(99),
    max: last ? last[0] * BUCKET_MS : Number.NaN,
  };
}

/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}

export const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2
    ? (sorted[mid] ?? Number.NaN)
    : ((sorted[mid - 1] ?? 0) + (sorted[mid] ?? 0)) / 2;
};
