/**
 * Property: collapse then insert of the same block-aligned range restores the
 * file, except that the inserted range reads as zeroes (fallocate(2):
 * collapse removes the range and moves the rest down; insert moves the rest
 * up and leaves a hole). Checked three ways: the model's prediction of a
 * read after both equals the byte-level reference; the observation computed
 * on bytes is judged a pass; and a file that still holds the collapsed
 * bytes, or whose tail did not move back, fails.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ByteSim } from '../helpers/bytesim.ts';
import { divergences, fallocate, fileCase, judge, observe, read, resultOf, withFinal, withResult, write } from '../helpers/cases.ts';
import { fcParams } from '../helpers/fc.ts';

const B = 4096;

describe('collapse then insert of the same range', () => {
  it('restores the content except the range, which reads as zeroes', () => {
    const prop = fc.property(
      fc.constantFrom('ext4', 'xfs') as fc.Arbitrary<'ext4' | 'xfs'>,
      fc.integer({ min: 1, max: 2 ** 32 - 1 }),
      fc.array(fc.record({ offset: fc.nat(12 * B), length: fc.integer({ min: 1, max: 5 * B }) }), { minLength: 1, maxLength: 5 }),
      fc.nat(100),
      fc.nat(100),
      (fsType, seed, writes, at, len) => {
        // Writes build a file of at least 2 blocks (one final write sets the size past them).
        let id = 0;
        const ops = writes.map((w) => write(++id, 'f', w.offset, w.length));
        const size = Math.max(...writes.map((w) => w.offset + w.length));
        const blocks = Math.floor(size / B);
        fc.pre(blocks >= 2);
        // Collapse [off, off+n) with off+n < size (fallocate(2): it must end before EOF).
        const maxBlocks = Math.floor((size - 1) / B);
        const offBlocks = at % maxBlocks;
        const nBlocks = 1 + (len % (maxBlocks - offBlocks));
        fc.pre((offBlocks + nBlocks) * B < size);
        const off = offBlocks * B;
        const n = nBlocks * B;
        const collapseId = ++id;
        const insertId = ++id;
        const readId = ++id;
        const b = fileCase(fsType, [...ops, fallocate(collapseId, 'f', 'collapse-range', off, n), fallocate(insertId, 'f', 'insert-range', off, n), read(readId, 'f', 0, size + B)], { seed });

        // The byte-level reference.
        const sim = new ByteSim(seed, size + 4 * B, 0, true);
        writes.forEach((w, i) => sim.write(i + 1, w.offset, w.length));
        const before = sim.read(0, size);
        sim.collapse(off, n);
        sim.insert(off, n);
        const after = sim.read(0, size + B);
        // The restore property itself, on bytes: same size, same bytes outside the range, zeroes in it.
        expect(after.length).toBe(size);
        expect(Buffer.compare(after.slice(0, off), before.slice(0, off))).toBe(0);
        expect(Buffer.compare(after.slice(off + n), before.slice(off + n))).toBe(0);
        expect(after.slice(off, off + n).every((x) => x === 0)).toBe(true);

        const obs = observe(b);
        expect(resultOf(obs, collapseId)).toEqual({ op: collapseId, ret: 0 });
        expect(resultOf(obs, insertId)).toEqual({ op: insertId, ret: 0 });
        const r = resultOf(obs, readId);
        expect(r.ret).toBe(size);
        expect(obs.final.f!.size).toBe(size);

        // The observation a correct kernel reports, decoded from bytes, passes.
        const data = sim.decode(after, 0);
        const truth = withFinal(withResult(obs, readId, { ret: size, data }), 'f', size, sim.finalRuns());
        const v = judge(b, truth);
        expect(v.verdict, JSON.stringify(v)).toBe('pass');

        // A kernel that kept the collapsed bytes in the hole fails.
        const old = before.slice(off, off + n);
        if (old.some((x) => x !== 0)) {
          const stale = after.slice();
          stale.set(old, off);
          const bad = withResult(obs, readId, { ret: size, data: sim.decode(stale, 0) });
          expect(divergences(b, bad).some((d) => d.op === readId)).toBe(true);
        }
      },
    );
    fc.assert(prop, fcParams('collapse then insert', 200));
  });
});
