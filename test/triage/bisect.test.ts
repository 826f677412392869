/**
 * Bisection and the cross-kernel view.
 *
 * The search itself over scripted series with a known change point (each
 * "kernel" an executor answering by its place in the series: deterministic,
 * flaky, fixed rather than introduced, kernels that give no verdict, a
 * series without a change), where only the algorithm is under test; then
 * over a series of real targets run through runCase and judged by the
 * oracle (the model target, then the TEST-ONLY planted-bug wrapper of the
 * model, helpers/planted-target.ts). The same over real QEMU kernels is in
 * qemu-e2e.test.ts; `blockfarm bisect` over fetched Debian kernels in the
 * report of the issue.
 */
import { describe, expect, it } from 'vitest';
import type { Case, RunOutcome } from '../../model/index.ts';
import { bisect, crossKernel } from '../../coordinator/triage/bisect.ts';
import type { Executor } from '../../coordinator/triage/executor.ts';
import { signatureOf } from '../../coordinator/triage/signature.ts';
import { TargetExecutor } from '../../coordinator/triage/executor.ts';
import { ModelTarget } from '../../worker/targets/model/model-target.ts';
import { targetFactories } from './helpers/planted-target.ts';
import { plantedCase } from './helpers/planted-bug.ts';
import { build, caseInput } from '../helpers/cases.ts';
import { mulberry32 as rng } from '../../infra/random.ts';

const theCase: Case = build(
  caseInput([{ id: 'd', kind: 'disk', size: 1 << 20 }], [
    { kind: 'write', id: 1, target: 'd', offset: 0, length: 4096 },
    { kind: 'read', id: 2, target: 'd', offset: 0, length: 4096, via: 'io_uring' },
  ]),
).c;

const KERNELS = Array.from({ length: 12 }, (_, i) => `6.1.0-${10 + i}-amd64`);

function divergence(target: string, dataClass: 'zeroes' | 'stale' = 'zeroes'): RunOutcome {
  return {
    kind: 'divergence',
    target,
    durationMs: 1,
    notes: [],
    divergences: [{ class: 'wrong-data', dataClass, op: 2, opKind: 'read', object: 'd', offset: 0, expected: 'op 1', observed: 'zeroes', expectedWriters: [1], message: 'op 2 read zeroes' }],
  };
}

interface Series {
  /** Index of the first kernel that behaves differently from the oldest. */
  change: number;
  /** The oldest kernels show the bug (and it goes away at `change`). */
  fixed?: boolean;
  /** Chance a run shows it where it exists. */
  p?: number;
  /** Kernels whose runs all fail as infrastructure errors. */
  broken?: number[];
  /** Kernels where another bug shows instead. */
  otherBug?: number[];
  seed?: number;
}

function fakeSeries(s: Series): { executorFor: (k: string) => Executor; runs: Map<string, number> } {
  const r = rng(s.seed ?? 3);
  const runs = new Map<string, number>();
  const executorFor = (k: string): Executor => ({
    name: `qemu:${k}`,
    async run(): Promise<RunOutcome> {
      runs.set(k, (runs.get(k) ?? 0) + 1);
      const i = KERNELS.indexOf(k);
      if (s.broken?.includes(i)) return { kind: 'infra-error', target: `qemu:${k}`, message: 'VM did not boot' };
      if (s.otherBug?.includes(i)) return divergence(`qemu:${k}`, 'stale');
      const has = s.fixed ? i < s.change : i >= s.change;
      return has && r() < (s.p ?? 1) ? divergence(`qemu:${k}`) : { kind: 'pass', target: `qemu:${k}`, notes: [], durationMs: 1 };
    },
  });
  return { executorFor, runs };
}

const signature = signatureOf(divergence('qemu:x') as Extract<RunOutcome, { kind: 'divergence' }>, theCase);

describe('bisect', () => {
  it('finds where a deterministic bug came in, in about log2(n) versions', async () => {
    for (const change of [1, 5, 11]) {
      const { executorFor, runs } = fakeSeries({ change });
      const r = await bisect(theCase, KERNELS, executorFor, { runsPerVersion: 2, signature });
      expect(r, `change at ${change}`).toMatchObject({ found: true, direction: 'introduced', first: KERNELS[change], last: KERNELS[change - 1] });
      expect(r.rate).toBe(1);
      expect(r.confidence).toBeCloseTo(1, 6);
      expect(r.tested.length).toBeLessThanOrEqual(2 + Math.ceil(Math.log2(KERNELS.length)));
      expect([...runs.values()].reduce((a, b) => a + b, 0)).toBe(r.executions);
    }
  });

  it('finds where it went away', async () => {
    const { executorFor } = fakeSeries({ change: 7, fixed: true });
    const r = await bisect(theCase, KERNELS, executorFor, { signature });
    expect(r).toMatchObject({ found: true, direction: 'fixed', first: KERNELS[7], last: KERNELS[6] });
    expect(r.message).toMatch(/first clean: 6\.1\.0-17-amd64/);
  });

  it('bisects a flaky bug (the rate the minimizer measured given) with repeated runs and gives a confidence below 1', async () => {
    let right = 0;
    const confidences: number[] = [];
    for (let seed = 1; seed <= 10; seed++) {
      const { executorFor } = fakeSeries({ change: 6, p: 0.4, seed });
      const r = await bisect(theCase, KERNELS, executorFor, { runsPerVersion: 4, maxRunsPerVersion: 12, signature, rate: 0.4 });
      if (r.found && r.first === KERNELS[6]) right++;
      confidences.push(r.confidence);
      expect(r.rate).toBeGreaterThan(0);
      expect(r.rate, JSON.stringify(r.tested)).toBeLessThan(1);
      expect(r.confidence).toBeLessThan(1);
      // Clean verdicts got more runs than the minimum.
      expect(r.tested.filter((v) => v.verdict === 'clean').every((v) => v.runs >= 4)).toBe(true);
    }
    expect(right).toBeGreaterThanOrEqual(9);
    expect(Math.min(...confidences)).toBeGreaterThan(0.5);
  });

  it('skips kernels that give no verdict', async () => {
    const { executorFor } = fakeSeries({ change: 6, broken: [0, 5, 6] });
    const r = await bisect(theCase, KERNELS, executorFor, { signature });
    expect(r).toMatchObject({ found: true, first: KERNELS[7], last: KERNELS[4] });
    expect(r.message).toMatch(/no verdict: .*6\.1\.0-15-amd64/);
    expect(r.tested.find((v) => v.kernel === KERNELS[0])?.verdict).toBe('unknown');
  });

  it('another bug is not this one', async () => {
    const { executorFor } = fakeSeries({ change: 8, otherBug: [3, 4, 5] });
    const r = await bisect(theCase, KERNELS, executorFor, { signature });
    expect(r).toMatchObject({ found: true, first: KERNELS[8] });
  });

  it('says so when the series has no change', async () => {
    const { executorFor } = fakeSeries({ change: 99 });
    const r = await bisect(theCase, KERNELS, executorFor, { signature });
    expect(r.found).toBe(false);
    expect(r.message).toMatch(/agree \(both clean\)/);
    expect(r.tested).toHaveLength(2);
  });
});

describe('crossKernel', () => {
  it('runs the case on every kernel and says where it shows', async () => {
    const { executorFor } = fakeSeries({ change: 3, broken: [1] });
    const v = await crossKernel(theCase, KERNELS.slice(0, 5).map((k) => [k, executorFor(k)] as [string, Executor]), { runs: 2, signature, concurrency: 3 });
    expect(v.map((x) => x.verdict)).toEqual(['clean', 'unknown', 'clean', 'shows', 'shows']);
    expect(v[3]).toMatchObject({ runs: 2, reproduced: 2 });
    expect(v[1]).toMatchObject({ runs: 0, infraErrors: 2 });
  });
});

describe('bisect over real targets', () => {
  it('finds where a series of targets (model, then the planted bug) starts to diverge, judged by the oracle', async () => {
    const planted = targetFactories.find((f) => f.matches('testonly_planted:model'))!;
    const buggy = new TargetExecutor(await planted.create('testonly_planted:model', { allowHost: false }));
    const clean = new TargetExecutor(new ModelTarget());
    const { theCase: c } = plantedCase(30, 5);
    const series = ['k0', 'k1', 'k2', 'k3', 'k4', 'k5', 'k6'];
    const executed: string[] = [];
    const r = await bisect(c, series, (k) => {
      const ex = series.indexOf(k) >= 4 ? buggy : clean;
      return { name: k, run: (x: Case) => (executed.push(k), ex.run(x)) };
    }, { runsPerVersion: 2 });
    expect(r).toMatchObject({ found: true, direction: 'introduced', first: 'k4', last: 'k3' });
    expect(r.confidence).toBeCloseTo(1, 6);
    expect(new Set(executed).size).toBeLessThan(series.length);
    const views = await crossKernel(c, series.slice(2, 6).map((k) => [k, series.indexOf(k) >= 4 ? buggy : clean] as [string, Executor]), { runs: 1 });
    expect(views.map((v) => v.verdict)).toEqual(['clean', 'clean', 'shows', 'shows']);
  });
});
