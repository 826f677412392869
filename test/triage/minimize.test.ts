/**
 * The minimizer against a deliberately wrong, TEST-ONLY target
 * (helpers/planted-bug.ts: an io_uring read after a covering write and an
 * fsync of its object returns garbage). The minimal case is known: that
 * write, fsync and read, one thread, a bare 1 MiB disk, one page each, at
 * offset 0. Also: the generic slice(), flaky findings (k of n), parallel
 * candidates, budgets, infrastructure errors, and a case that shows nothing.
 */
import { describe, expect, it } from 'vitest';
import { type Case, validateCase } from '../../model/index.ts';
import { keepOps, opGroups, serialize } from '../../coordinator/triage/case-edit.ts';
import type { Executor } from '../../coordinator/triage/executor.ts';
import { type MinimizeProgress, minimize, policyForRate } from '../../coordinator/triage/minimize.ts';
import { slice } from '../../coordinator/triage/slice.ts';
import { PlantedBugExecutor, plantedCase, triggeredReads } from './helpers/planted-bug.ts';

describe('slice', () => {
  it('finds the few items a predicate needs, 1-minimal, with few evaluations', async () => {
    const items = Array.from({ length: 200 }, (_, i) => i);
    let calls = 0;
    const need = [17, 133, 190];
    const out = await slice(async (xs) => (calls++, need.every((n) => xs.includes(n))), items);
    expect(out).toEqual(need);
    expect(calls).toBeLessThan(120);
  });

  it('gives the same answer evaluating many candidates at once', async () => {
    const items = Array.from({ length: 64 }, (_, i) => i);
    let inFlight = 0;
    let peak = 0;
    const pred = async (xs: number[]) => {
      inFlight++;
      peak = Math.max(peak, inFlight);
      await new Promise((r) => setTimeout(r, 1));
      inFlight--;
      return xs.includes(5) && xs.includes(40);
    };
    expect(await slice(pred, items, { concurrency: 8 })).toEqual([5, 40]);
    expect(peak).toBeGreaterThan(1);
  });

  it('stops when told, with the best list so far', async () => {
    let calls = 0;
    const out = await slice(async (xs) => (calls++, xs.includes(3)), Array.from({ length: 100 }, (_, i) => i), { shouldStop: () => calls >= 3 });
    expect(out.length).toBeLessThan(100);
    expect(out).toContain(3);
  });
});

describe('case edits', () => {
  it('remove barriers across threads and suspend/resume as one unit, and serialize phase by phase', () => {
    const { theCase } = plantedCase(60, 3);
    const groups = opGroups(theCase);
    const barriers = theCase.program.threads.flatMap((t) => t.ops.filter((o) => o.kind === 'barrier'));
    expect(groups.filter((g) => g.length === 3)).toHaveLength(barriers.length / 3);
    const kept = keepOps(theCase, new Set(groups.filter((g) => g.length === 1).flat()));
    expect(validateCase(kept).ok).toBe(true);
    const s = serialize(theCase);
    expect(s.program.threads).toHaveLength(1);
    expect(validateCase(s).ok).toBe(true);
  });
});

/** The known minimal case for the planted bug, given the ids of its three ops. */
function expectKnownMinimal(c: Case, planted: { write: number; fsync: number; read: number }): void {
  expect(c.stack.layers).toEqual([{ id: 'd0', kind: 'disk', size: 1024 * 1024, logicalBlockSize: 512 }]);
  expect(c.program.threads).toHaveLength(1);
  const ops = c.program.threads[0]!.ops;
  expect(ops.map((o) => o.id)).toEqual([planted.write, planted.fsync, planted.read]);
  expect(ops[0]).toMatchObject({ kind: 'write', target: 'd0', offset: 0, length: 4096, via: 'psync', direct: false, vectors: 1, buffer: { placement: 'heap', align: 0 } });
  expect(ops[1]).toMatchObject({ kind: 'fsync', target: 'd0' });
  // The bug needs io_uring: that part of the path stays.
  expect(ops[2]).toMatchObject({ kind: 'read', target: 'd0', offset: 0, length: 4096, via: 'io_uring', nowait: false, vectors: 1, direct: false });
  expect(validateCase(c).ok).toBe(true);
}

describe('minimize on the test-only planted bug', () => {
  it('shrinks a 200-op, 3-thread, 6-layer case to the known 3-op case on a bare disk', async () => {
    const { theCase, planted } = plantedCase(200, 7);
    expect(triggeredReads(theCase)).toEqual([planted.read]);
    const ex = new PlantedBugExecutor();
    const progress: MinimizeProgress[] = [];
    const r = await minimize(ex, theCase, { confirmRuns: 3, onProgress: (p) => progress.push(p) });
    expect(r.reproduced).toBe(true);
    expectKnownMinimal(r.minimized, planted);
    expect(r.minimized.meta).toMatchObject({ origin: 'minimized' });
    expect(r.minimized.seed).toBe(theCase.seed);
    expect(r.originalRate).toEqual({ runs: 3, reproduced: 3 });
    expect(r.finalRate).toEqual({ runs: 3, reproduced: 3 });
    expect(r.policy).toEqual({ runs: 1, need: 1 });
    expect(r.executions).toBe(ex.executions);
    expect(r.executions).toBeLessThanOrEqual(200);
    expect(r.budgetExhausted).toBe(false);
    expect(r.signature.parts).toMatchObject({ class: 'wrong-data', dataClass: 'garbage', op: 'read', path: 'io_uring+direct', top: 'loop', fs: 'ext4' });
    // The minimized case shows the same bug on a simpler path and stack.
    expect(r.minimizedSignature?.parts).toMatchObject({ class: 'wrong-data', dataClass: 'garbage', op: 'read', path: 'io_uring+buffered', top: 'disk', fs: '-' });
    expect(r.outcome?.kind).toBe('divergence');
    // Stages are timed and counted; progress was reported as the case shrank.
    expect(r.stages.map((s) => s.stage)).toEqual(expect.arrayContaining(['confirm', 'extract', 'ops', 'threads', 'stack', 'simplify', 'numbers', 'measure']));
    expect(r.stages.reduce((n, s) => n + s.executions, 0)).toBe(r.executions);
    expect(progress.some((p) => p.size.ops === 3)).toBe(true);
  });

  it('without the extract stage the generic slicer gets there too', async () => {
    const { theCase, planted } = plantedCase(120, 11);
    const r = await minimize(new PlantedBugExecutor(), theCase, { confirmRuns: 1, skip: ['extract'] });
    expectKnownMinimal(r.minimized, planted);
  });

  it('a flaky finding (shows in half the runs): k of n per candidate, the rate is reported', async () => {
    const { theCase, planted } = plantedCase(80, 5);
    const ex = new PlantedBugExecutor({ probability: 0.5, seed: 99 });
    const r = await minimize(ex, theCase, { confirmRuns: 10 });
    expect(r.originalRate.runs).toBe(10);
    expect(r.originalRate.reproduced).toBeGreaterThan(1);
    expect(r.originalRate.reproduced).toBeLessThan(10);
    expect(r.policy.need).toBe(1);
    expect(r.policy.runs).toBeGreaterThanOrEqual(4);
    expect(r.finalRate.runs).toBe(10);
    expect(r.finalRate.reproduced).toBeGreaterThan(0);
    // A candidate that never shows it is dropped, one that shows it half the time is kept: the planted ops survive.
    const ids = r.minimized.program.threads.flatMap((t) => t.ops.map((o) => o.id));
    expect(ids).toEqual(expect.arrayContaining([planted.write, planted.fsync, planted.read]));
    expect(ids.length).toBeLessThanOrEqual(4);
  });

  it('the policy follows the measured rate', () => {
    expect(policyForRate({ runs: 5, reproduced: 5 })).toEqual({ runs: 1, need: 1 });
    expect(policyForRate({ runs: 10, reproduced: 5 })).toEqual({ runs: 5, need: 1 });
    expect(policyForRate({ runs: 10, reproduced: 1 })).toEqual({ runs: 10, need: 1 });
  });

  it('runs candidates in parallel when the executor can take them, with the same result', async () => {
    const { theCase, planted } = plantedCase(100, 13);
    let inFlight = 0;
    let peak = 0;
    const inner = new PlantedBugExecutor({ delayMs: 2 });
    const ex: Executor = {
      name: inner.name,
      async run(c) {
        inFlight++;
        peak = Math.max(peak, inFlight);
        try {
          return await inner.run(c);
        } finally {
          inFlight--;
        }
      },
    };
    const r = await minimize(ex, theCase, { confirmRuns: 1, concurrency: 6 });
    expect(peak).toBeGreaterThan(1);
    expect(peak).toBeLessThanOrEqual(6);
    expectKnownMinimal(r.minimized, planted);
  });

  it('stops at the execution budget with the best case so far', async () => {
    const { theCase } = plantedCase(200, 7);
    const r = await minimize(new PlantedBugExecutor(), theCase, { confirmRuns: 1, maxExecutions: 20 });
    expect(r.budgetExhausted).toBe(true);
    expect(r.executions).toBeLessThanOrEqual(20 + 1);
    expect(r.minimized.program.threads.flatMap((t) => t.ops).length).toBeLessThan(200);
    expect(validateCase(r.minimized).ok).toBe(true);
  });

  it('survives infrastructure errors (counted, never taken for the finding)', async () => {
    const { theCase, planted } = plantedCase(60, 17);
    const r = await minimize(new PlantedBugExecutor({ infraErrorRate: 0.1, seed: 5 }), theCase, { confirmRuns: 5 });
    expect(r.infraErrors).toBeGreaterThan(0);
    const ids = r.minimized.program.threads.flatMap((t) => t.ops.map((o) => o.id));
    expect(ids).toEqual(expect.arrayContaining([planted.write, planted.fsync, planted.read]));
  });

  it('a case that shows nothing is left as it is', async () => {
    const { theCase, planted } = plantedCase(40, 19);
    const quiet = keepOps(theCase, new Set(theCase.program.threads.flatMap((t) => t.ops.map((o) => o.id)).filter((id) => id !== planted.fsync)));
    const r = await minimize(new PlantedBugExecutor(), quiet, { confirmRuns: 2 });
    expect(r.reproduced).toBe(false);
    expect(r.executions).toBe(2);
    expect(r.minimized).toEqual(quiet);
  });
});
