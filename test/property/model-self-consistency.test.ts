/**
 * Properties of the model as a whole, over random small programs (a disk or
 * an ext4 file; one or two threads; barriers; data ops on every path, mmap,
 * fallocate, truncate, discard, writeback):
 * - the model target reports its own prediction, and the oracle must pass
 *   it: a model whose prediction fails its own judge raises false alarms on
 *   a kernel that behaves exactly like it;
 * - the model is deterministic: the same case gives the same prediction and
 *   the same verdict, also after a JSON round trip of the case.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { judgeObservation, predictObservation, validateCase } from '../../model/index.ts';
import { smallCase, stackedCase } from '../helpers/arbitraries.ts';
import { fcParams } from '../helpers/fc.ts';

describe('the model on random small programs', () => {
  it('judging its own prediction always passes', () => {
    const prop = fc.property(smallCase(), ({ c, info }) => {
      const obs = predictObservation(c, info);
      const v = judgeObservation(c, info, obs);
      if (v.incomplete !== undefined) throw new Error(`incomplete: ${v.incomplete}`);
      expect(v.verdict === 'divergence' ? { program: c.program, divergences: v.divergences } : 'pass').toBe('pass');
    });
    fc.assert(prop, fcParams('self-judge', 400));
  });

  it('judging its own prediction passes on every kind of block stack too', () => {
    const prop = fc.property(stackedCase(), ({ c, info, stack }) => {
      const obs = predictObservation(c, info);
      const v = judgeObservation(c, info, obs);
      if (v.incomplete !== undefined) throw new Error(`incomplete: ${v.incomplete}`);
      expect(v.verdict === 'divergence' ? { stack, program: c.program, divergences: v.divergences } : 'pass').toBe('pass');
    });
    fc.assert(prop, fcParams('self-judge on stacks', 300));
  });

  it('is deterministic: same case, same prediction, same verdict', () => {
    const prop = fc.property(smallCase(), ({ c, info }) => {
      const a = predictObservation(c, info);
      const b = predictObservation(c, info);
      expect(b).toEqual(a);
      // The same case read back from JSON (as a worker receives it) predicts the same run.
      const again = validateCase(JSON.parse(JSON.stringify(c)));
      expect(again.ok).toBe(true);
      if (again.ok) expect(predictObservation(again.value, again.info)).toEqual(a);
      expect(judgeObservation(c, info, a)).toEqual(judgeObservation(c, info, structuredClone(a)));
    });
    fc.assert(prop, fcParams('determinism', 200));
  });
});
