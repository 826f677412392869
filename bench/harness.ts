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

/**
 * - wall: elapsed time. Right for work that waits (processes, devices, IO).
 * - cpu: CPU time of this process (all its threads: JIT, GC). Right for pure
 *   computation on one core: "ops/s on one core" is ops per second of CPU, and
 *   it is not inflated when other processes share the machine.
 */
export type Clock = 'wall' | 'cpu';

export interface Timing {
  clock: Clock;
  /** Median seconds per run, on `clock`. */
  median: number;
  min: number;
  max: number;
  /** Median elapsed seconds per run (the same as median for the wall clock). */
  wallMedian: number;
  runs: number;
}

function medianOf(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

/**
 * Time `fn` `runs` times after `warmup` untimed calls; the median is the
 * figure (robust to a GC pause or a neighbour stealing the core once).
 */
export function time(fn: () => void, runs: number, warmup = 1, clock: Clock = 'wall'): Timing {
  for (let i = 0; i < warmup; i++) fn();
  const secs: number[] = [];
  const walls: number[] = [];
  for (let i = 0; i < runs; i++) {
    const c0 = process.cpuUsage();
    const t0 = process.hrtime.bigint();
    fn();
    const wall = Number(process.hrtime.bigint() - t0) / 1e9;
    const c = process.cpuUsage(c0);
    walls.push(wall);
    secs.push(clock === 'cpu' ? (c.user + c.system) / 1e6 : wall);
  }
  return { clock, median: medianOf(secs), min: Math.min(...secs), max: Math.max(...secs), wallMedian: medianOf(walls), runs };
}

export function spread(t: Timing): string {
  const wall = t.clock === 'cpu' ? ` (wall-clock median ${fmtSecs(t.wallMedian)})` : '';
  return `${t.clock === 'cpu' ? 'CPU time, ' : ''}median of ${t.runs}, ${fmtSecs(t.min)}..${fmtSecs(t.max)} per run${wall}`;
}

export function fmtSecs(s: number): string {
  return s >= 1 ? `${s.toFixed(2)} s` : s >= 1e-3 ? `${(s * 1e3).toFixed(1)} ms` : `${(s * 1e6).toFixed(0)} µs`;
}
