/**
 * The benchmark contract. A bench module (bench/*.bench.ts) exports
 * `benchmarks: Benchmark[]`; bench/run.ts runs them all and prints one table.
 *
 * Speed is judged by ratios against a peer measured in the same run (so a
 * slow or busy machine moves both), and by absolute goals from the issues,
 * which are reported as met or missed and never loosened.
 */

export interface Goal {
  /** The figure must be at least this. */
  min: number;
  /** How the goal reads in the table, e.g. '>= 500,000 simple ops/s'. */
  text: string;
}

export interface Row {
  name: string;
  figure: number;
  unit: string;
  /** The same work done by the peer in the same run. */
  peer?: { name: string; figure: number };
  goal?: Goal;
  /** Anything a reader needs to trust the figure (repetitions, spread, sanity checks). */
  note?: string;
}

export interface Benchmark {
  name: string;
  /** One line on what is measured. */
  description: string;
  run(): Row[] | Promise<Row[]>;
}

export interface Timing {
  /** Median seconds per run. */
  median: number;
  min: number;
  max: number;
  runs: number;
}

/**
 * Time `fn` `runs` times after `warmup` untimed calls; the median is the
 * figure (robust to a GC pause or a neighbour stealing the core once).
 */
export function time(fn: () => void, runs: number, warmup = 1): Timing {
  for (let i = 0; i < warmup; i++) fn();
  const secs: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = process.hrtime.bigint();
    fn();
    secs.push(Number(process.hrtime.bigint() - t0) / 1e9);
  }
  secs.sort((a, b) => a - b);
  const mid = secs.length >> 1;
  const median = secs.length % 2 ? secs[mid]! : (secs[mid - 1]! + secs[mid]!) / 2;
  return { median, min: secs[0]!, max: secs[secs.length - 1]!, runs };
}

export function spread(t: Timing): string {
  return `median of ${t.runs}, ${fmtSecs(t.min)}..${fmtSecs(t.max)} per run`;
}

export function fmtSecs(s: number): string {
  return s >= 1 ? `${s.toFixed(2)} s` : s >= 1e-3 ? `${(s * 1e3).toFixed(1)} ms` : `${(s * 1e6).toFixed(0)} µs`;
}
