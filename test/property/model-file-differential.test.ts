/**
 * Property: on one thread, an ext4 file behaves as plain byte arithmetic
 * says (read(2), write(2), truncate(2), fallocate(2) in every mode ext4
 * supports, with its EINVAL and EOPNOTSUPP rules). Random programs run on
 * the byte-level reference; the model must predict the same result for every
 * op and the same final file, and must pass the reference's observation.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Observation, OpResult } from '../../model/index.ts';
import { ByteSim } from '../helpers/bytesim.ts';
import { type OpInput, fileCase, judge, observe } from '../helpers/cases.ts';
import { fcParams } from '../helpers/fc.ts';

const B = 4096;
const SPAN = 40000;

type Step =
  | { kind: 'write' | 'read'; offset: number; length: number }
  | { kind: 'truncate'; size: number }
  | { kind: 'fallocate'; mode: string; offset: number; length: number };

const step: fc.Arbitrary<Step> = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constantFrom('write', 'read') as fc.Arbitrary<'write' | 'read'>, offset: fc.nat(SPAN), length: fc.integer({ min: 1, max: 12000 }) }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('truncate' as const), size: fc.nat(SPAN) }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('fallocate' as const),
      mode: fc.constantFrom('allocate', 'keep-size', 'punch-hole', 'zero-range', 'zero-range-keep-size', 'collapse-range', 'insert-range', 'unshare-range'),
      offset: fc.oneof(fc.nat(10).map((n) => n * B), fc.nat(SPAN)),
      length: fc.oneof(fc.integer({ min: 1, max: 3 }).map((n) => n * B), fc.integer({ min: 1, max: 9000 })),
    }),
  },
);

/** Run a step on bytes: the result ext4 gives, by the man pages. */
function run(sim: ByteSim, id: number, s: Step): OpResult {
  switch (s.kind) {
    case 'write':
      return { op: id, ret: sim.write(id, s.offset, s.length) };
    case 'read': {
      const bytes = sim.read(s.offset, s.length);
      return bytes.length ? { op: id, ret: bytes.length, data: sim.decode(bytes, s.offset) } : { op: id, ret: 0 };
    }
    case 'truncate':
      sim.truncate(s.size);
      return { op: id, ret: 0 };
    case 'fallocate': {
      const end = s.offset + s.length;
      const einval = { op: id, ret: -1, errno: 'EINVAL' };
      switch (s.mode) {
        case 'unshare-range':
          return { op: id, ret: -1, errno: 'EOPNOTSUPP' }; // ext4 has no FALLOC_FL_UNSHARE_RANGE
        case 'allocate':
          if (end > sim.size) sim.truncate(end);
          break;
        case 'keep-size':
          break;
        case 'punch-hole':
        case 'zero-range-keep-size':
          sim.zero(s.offset, s.length);
          break;
        case 'zero-range':
          if (end > sim.size) sim.truncate(end);
          sim.zero(s.offset, s.length);
          break;
        case 'collapse-range':
          // Whole blocks, and the range must end before EOF.
          if (s.offset % B || s.length % B || end >= sim.size) return einval;
          sim.collapse(s.offset, s.length);
          break;
        case 'insert-range':
          // Whole blocks, and it must start before EOF.
          if (s.offset % B || s.length % B || s.offset >= sim.size) return einval;
          sim.insert(s.offset, s.length);
          break;
      }
      return { op: id, ret: 0 };
    }
  }
}

function toOp(id: number, s: Step): OpInput {
  if (s.kind === 'truncate') return { kind: 'truncate', id, target: 'f', size: s.size };
  return { ...s, id, target: 'f' } as OpInput;
}

describe('an ext4 file on one thread', () => {
  it('matches byte arithmetic op for op, and the reference run passes', () => {
    const prop = fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.array(step, { minLength: 1, maxLength: 12 }), (seed, steps) => {
      const b = fileCase('ext4', steps.map((s, i) => toOp(i + 1, s)), { seed });
      const sim = new ByteSim(seed, 4 * SPAN, 0, true);
      const results = steps.map((s, i) => run(sim, i + 1, s));
      const predicted = observe(b);
      steps.forEach((s, i) => {
        const want = results[i]!;
        const got = predicted.results.find((r) => r.op === i + 1)!;
        // Same outcome; for reads the data is compared by the judge below.
        expect({ ret: got.ret, errno: got.errno }, `op ${i + 1} ${JSON.stringify(s)}`).toEqual({ ret: want.ret, errno: want.errno });
      });
      expect(predicted.final.f!.size).toBe(sim.size);
      const truth: Observation = { ...structuredClone(predicted), results: results.map((r) => structuredClone(r)), final: { f: { size: sim.size, extents: sim.finalRuns() } } };
      const v = judge(b, truth);
      expect(v.verdict, JSON.stringify(v)).toBe('pass');
    });
    fc.assert(prop, fcParams('ext4 file differential', 400));
  });
});
