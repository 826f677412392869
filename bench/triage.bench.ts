/**
 * Minimization cost (issue 6): "executions and seconds to minimize a 200-op
 * case with one planted divergent op to <= 3 ops (goal <= 200 executions)".
 *
 * The divergence is planted by a TEST-ONLY wrong target
 * (test/triage/helpers/planted-bug.ts): it answers like the model except that
 * an io_uring read after a covering write and an fsync of its object returns
 * garbage. The case: 200 ops in 3 threads with barriers over a loop device on
 * a file on ext4 plus two more files; the minimal case is 3 ops on a bare disk.
 *
 * Figures (the goal is on executions, so the figure is 200 / executions, >= 1
 * when met):
 * - executions until the case first had <= 3 ops, with the full pipeline
 *   (confirm 3 runs, then extract, slicing, ...);
 * - the same with the generic slicer alone (no extract stage): what the
 *   pipeline costs without the hint the divergence gives;
 * - total executions of the whole pipeline (stack, paths and numbers too), and
 *   seconds (model-judged runs take about a millisecond each here; on a kernel
 *   target each execution costs one case run, seconds to minutes).
 * PEER: none (no other minimizer in the repository); the goal is absolute.
 */
import { type MinimizeOptions, minimize } from '../coordinator/triage/minimize.ts';
import { PlantedBugExecutor, plantedCase } from '../test/triage/helpers/planted-bug.ts';
import type { Benchmark, Row } from './harness.ts';

const GOAL = { min: 1, text: '<= 200 executions (figure = 200 / executions)' };

async function measure(skip: MinimizeOptions['skip']): Promise<{ toThree: number; total: number; secs: number; ops: number; layers: number }> {
  const { theCase, planted } = plantedCase(200, 7);
  const ex = new PlantedBugExecutor();
  let toThree = Number.POSITIVE_INFINITY;
  const t0 = performance.now();
  const r = await minimize(ex, theCase, {
    confirmRuns: 3,
    skip,
    onProgress: (p) => {
      if (p.size.ops <= 3 && p.executions < toThree) toThree = p.executions;
    },
  });
  const secs = (performance.now() - t0) / 1000;
  const ids = r.minimized.program.threads.flatMap((t) => t.ops.map((o) => o.id)).sort((a, b) => a - b);
  const want = [planted.write, planted.fsync, planted.read].sort((a, b) => a - b);
  if (JSON.stringify(ids) !== JSON.stringify(want)) throw new Error(`minimized to ops ${ids.join(',')}, expected ${want.join(',')}`);
  if (ex.executions !== r.executions) throw new Error(`executor saw ${ex.executions} runs, minimizer counted ${r.executions}`);
  return { toThree, total: r.executions, secs, ops: ids.length, layers: r.minimized.stack.layers.length };
}

export const benchmarks: Benchmark[] = [
  {
    name: 'triage minimize',
    description: '200-op case with one planted divergent op (test-only wrong target) down to <= 3 ops',
    async run(): Promise<Row[]> {
      const full = await measure([]);
      const plain = await measure(['extract']);
      return [
        {
          name: 'executions to <= 3 ops (pipeline)',
          figure: 200 / full.toThree,
          unit: '200/executions',
          goal: GOAL,
          note: `${full.toThree} executions to <= 3 ops; whole pipeline ${full.total} executions in ${full.secs.toFixed(2)} s, ending at ${full.ops} ops on ${full.layers} layer(s)`,
        },
        {
          name: 'executions to <= 3 ops (slice only)',
          figure: 200 / plain.toThree,
          unit: '200/executions',
          goal: GOAL,
          note: `${plain.toThree} executions to <= 3 ops without the extract stage; whole pipeline ${plain.total} executions in ${plain.secs.toFixed(2)} s`,
        },
        { name: 'seconds, whole pipeline', figure: full.secs, unit: 's', note: 'wall time with the in-process test-only target (about 1 ms per run)' },
      ];
    },
  },
];
