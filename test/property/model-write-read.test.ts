/**
 * Property: write then read returns the pattern. For random block sizes,
 * offsets and lengths, on a block device (O_DIRECT aligned to the logical
 * block size, and buffered at any sector) and on a file (any byte offset),
 * the model predicts exactly what a byte-level reference computes, and the
 * observation a correct kernel reports (real pattern bytes, decoded as the
 * executor decodes them) is judged a pass.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { Observation } from '../../model/index.ts';
import { ByteSim } from '../helpers/bytesim.ts';
import { type Built, diskCase, fileCase, judge, observe, read, resultOf, write } from '../helpers/cases.ts';
import { fcParams } from '../helpers/fc.ts';

const KiB = 1024;

/** The observation a correct kernel reports for a case of writes then reads, computed on bytes. */
function correctRun(b: Built, sim: ByteSim, ops: Array<{ kind: 'write' | 'read'; id: number; offset: number; length: number }>, obj: string): Observation {
  const obs = structuredClone(observe(b));
  for (const o of ops) {
    const r = obs.results.find((x) => x.op === o.id)!;
    if (o.kind === 'write') {
      const n = sim.write(o.id, o.offset, o.length);
      Object.assign(r, n < 0 ? { ret: -1, errno: 'ENOSPC' } : { ret: n });
    } else {
      const bytes = sim.read(o.offset, o.length);
      r.ret = bytes.length;
      if (bytes.length) r.data = sim.decode(bytes, o.offset);
      else delete r.data;
    }
  }
  obs.final[obj] = { size: sim.size, extents: sim.finalRuns() };
  return obs;
}

describe('write then read returns the pattern', () => {
  it('block devices: O_DIRECT aligned to a random logical block size', () => {
    const lbsArb = fc.constantFrom(512, 1024, 2048, 4096) as fc.Arbitrary<512 | 1024 | 2048 | 4096>;
    const prop = fc.property(
      lbsArb,
      fc.integer({ min: 1 << 30, max: 2 ** 32 - 1 }),
      fc.array(fc.record({ block: fc.nat(62), blocks: fc.integer({ min: 1, max: 16 }) }), { minLength: 1, maxLength: 4 }),
      (lbs, seed, writes) => {
        const size = 64 * lbs;
        const ops = writes.flatMap((w, i) => {
          const offset = w.block * lbs;
          const length = w.blocks * lbs;
          return [
            { kind: 'write' as const, id: 2 * i + 1, offset, length },
            { kind: 'read' as const, id: 2 * i + 2, offset, length },
          ];
        });
        const b = diskCase(ops.map((o) => (o.kind === 'write' ? write : read)(o.id, 'd', o.offset, o.length, { direct: true, via: 'pvec' })), { size, lbs, seed });
        const obs = observe(b);
        const sim = new ByteSim(seed, size, size, false);
        const truth = correctRun(b, sim, ops, 'd');
        for (const o of ops) {
          // Each read right after its write returns that write's bytes (up to the end of the device): one run of its op.
          const n = Math.min(o.length, size - o.offset);
          if (o.kind === 'read') expect(resultOf(obs, o.id)).toEqual({ op: o.id, ret: n, data: [{ offset: 0, length: n, src: { op: o.id - 1, delta: 0 } }] });
          expect(resultOf(obs, o.id).ret).toBe(resultOf(truth, o.id).ret);
        }
        expect(judge(b, truth).verdict).toBe('pass');
      },
    );
    fc.assert(prop, fcParams('block O_DIRECT write/read', 150));
  });

  it('block devices: buffered IO at any sector, including across the end of the device', () => {
    const prop = fc.property(
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.array(fc.record({ sector: fc.nat(300), sectors: fc.integer({ min: 1, max: 40 }), readBack: fc.boolean() }), { minLength: 1, maxLength: 6 }),
      (seed, writes) => {
        const size = 256 * 512;
        let id = 0;
        const ops = writes.flatMap((w) => {
          const offset = w.sector * 512;
          const length = w.sectors * 512;
          const out: Array<{ kind: 'write' | 'read'; id: number; offset: number; length: number }> = [{ kind: 'write', id: ++id, offset, length }];
          if (w.readBack) out.push({ kind: 'read', id: ++id, offset: Math.max(0, offset - 512), length: length + 1024 });
          return out;
        });
        const b = diskCase(ops.map((o) => (o.kind === 'write' ? write : read)(o.id, 'd', o.offset, o.length)), { size, seed });
        const sim = new ByteSim(seed, size + 64 * KiB, size, false);
        const truth = correctRun(b, sim, ops, 'd');
        const v = judge(b, truth);
        expect(v.verdict, JSON.stringify(v)).toBe('pass');
        // And the model's own prediction is that same run, op for op.
        const obs = observe(b);
        for (const o of ops) expect(resultOf(obs, o.id).ret).toBe(resultOf(truth, o.id).ret);
      },
    );
    fc.assert(prop, fcParams('block buffered write/read', 150));
  });

  it('files: any byte offset and length, on ext4, xfs and btrfs', () => {
    const prop = fc.property(
      fc.constantFrom('ext4', 'xfs', 'btrfs') as fc.Arbitrary<'ext4' | 'xfs' | 'btrfs'>,
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.array(fc.record({ offset: fc.nat(20000), length: fc.integer({ min: 1, max: 9000 }), readBack: fc.boolean() }), { minLength: 1, maxLength: 6 }),
      (fsType, seed, writes) => {
        let id = 0;
        const ops = writes.flatMap((w) => {
          const out: Array<{ kind: 'write' | 'read'; id: number; offset: number; length: number }> = [{ kind: 'write', id: ++id, offset: w.offset, length: w.length }];
          if (w.readBack) out.push({ kind: 'read', id: ++id, offset: Math.max(0, w.offset - 7), length: w.length + 20 });
          return out;
        });
        ops.push({ kind: 'read', id: ++id, offset: 0, length: 40000 });
        const b = fileCase(fsType, ops.map((o) => (o.kind === 'write' ? write : read)(o.id, 'f', o.offset, o.length, { via: 'io_uring' })), { seed });
        const sim = new ByteSim(seed, 64 * KiB, 0, true);
        const truth = correctRun(b, sim, ops, 'f');
        const v = judge(b, truth);
        expect(v.verdict, JSON.stringify(v)).toBe('pass');
        const obs = observe(b);
        expect(obs.final.f!.size).toBe(sim.size);
        for (const o of ops) expect(resultOf(obs, o.id).ret).toBe(resultOf(truth, o.id).ret);
      },
    );
    fc.assert(prop, fcParams('file write/read', 150));
  });
});
