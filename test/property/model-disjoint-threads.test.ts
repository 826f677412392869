/**
 * Property: two threads on disjoint ranges cannot race, so every
 * interleaving gives the serial result, and the model allows nothing else.
 * For random programs (writes and reads, each thread in its own half of a
 * disk or of a file) and random interleavings, a byte-level execution of the
 * interleaving is judged a pass and ends with exactly the serial result; and
 * a final content that differs from the serial result anywhere (zeroes, or
 * the other thread's data) is a divergence.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Observation, patternBytes } from '../../model/index.ts';
import { ByteSim } from '../helpers/bytesim.ts';
import { type Built, type Run, barrier, diskCase, divergences, fileCase, judge, observe, read, write } from '../helpers/cases.ts';
import { fcParams } from '../helpers/fc.ts';

type SimOp = { kind: 'write' | 'read'; id: number; offset: number; length: number };

const HALF = 32 * 1024;

const threadOps = (base: number, firstId: number) =>
  fc.array(fc.record({ read: fc.boolean(), offset: fc.nat(HALF - 1), length: fc.integer({ min: 1, max: 6000 }) }), { minLength: 1, maxLength: 5 }).map((xs) =>
    xs.map((x, i): SimOp => {
      const offset = base + x.offset;
      const length = Math.min(x.length, base + HALF - offset);
      return { kind: x.read ? 'read' : 'write', id: firstId + i, offset, length };
    }),
  );

/** Run `order` (ops of both threads, each thread's own order kept) on bytes and report it as a target would. */
function execute(b: Built, seed: number, isFile: boolean, order: SimOp[], obj: string): { obs: Observation; sim: ByteSim } {
  const sim = new ByteSim(seed, 2 * HALF + 8192, isFile ? 0 : 2 * HALF, isFile);
  const obs = structuredClone(observe(b));
  for (const o of order) {
    const r = obs.results.find((x) => x.op === o.id)!;
    if (o.kind === 'write') {
      r.ret = sim.write(o.id, o.offset, o.length);
    } else {
      // A read sees its own thread's writes exactly: nobody else writes its half.
      const bytes = sim.read(o.offset, o.length);
      r.ret = bytes.length;
      if (bytes.length) r.data = sim.decode(bytes, o.offset);
      else delete r.data;
    }
  }
  obs.final[obj] = { size: sim.size, extents: sim.finalRuns() };
  return { obs, sim };
}

function build(isFile: boolean, seed: number, t0: SimOp[], t1: SimOp[]): Built {
  const mk = (o: SimOp) => (o.kind === 'write' ? write : read)(o.id, isFile ? 'f' : 'd', o.offset, o.length);
  const threads = [
    [...t0.map(mk), barrier(900)],
    [...t1.map(mk), barrier(901)],
  ];
  return isFile ? fileCase('ext4', threads, { seed }) : diskCase(threads, { seed, size: 2 * HALF });
}

describe('two threads on disjoint ranges', () => {
  for (const isFile of [false, true])
    it(`${isFile ? 'a file' : 'a disk'}: every interleaving passes and equals the serial result; nothing else passes`, () => {
      // On a file, thread 1's writes move EOF under thread 0's reads: each interleaving is one
      // legitimate outcome, which the model must accept.
      const prop = fc.property(
        fc.integer({ min: 1, max: 2 ** 32 - 1 }),
        threadOps(0, 1),
        threadOps(HALF, 101),
        fc.array(fc.boolean(), { minLength: 10, maxLength: 10 }),
        fc.nat(2 * HALF - 1),
        (seed, t0, t1, picks, probe) => {
          const obj = isFile ? 'f' : 'd';
          const b = build(isFile, seed, t0, t1);
          // A random interleaving that keeps each thread's order.
          const order: SimOp[] = [];
          let i = 0;
          let j = 0;
          for (let k = 0; i < t0.length || j < t1.length; k++) {
            const take0 = j >= t1.length || (i < t0.length && picks[k % picks.length]);
            order.push(take0 ? t0[i++]! : t1[j++]!);
          }
          const { obs, sim } = execute(b, seed, isFile, order, obj);
          const serial = execute(b, seed, isFile, [...t0, ...t1], obj).sim;
          // The interleaving ends with the serial result, byte for byte.
          expect(sim.size).toBe(serial.size);
          expect(Buffer.compare(sim.read(0, sim.size), serial.read(0, serial.size))).toBe(0);
          const v = judge(b, obs);
          expect(v.verdict, JSON.stringify(v)).toBe('pass');

          // The model allows only that result: damage 16 bytes at `probe` in the final content.
          const size = serial.size;
          fc.pre(size > 0);
          const at = probe % size;
          const bytes = serial.read(0, size);
          const others = (at < HALF ? t1 : t0).filter((o) => o.kind === 'write');
          for (const wrong of ['zero', 'other'] as const) {
            const mutated = bytes.slice();
            const end = Math.min(size, at + 16);
            if (wrong === 'zero') mutated.fill(0, at, end);
            else if (others.length) mutated.set(patternBytes(seed, others[0]!.id, at, end - at), at);
            if (Buffer.compare(mutated, bytes) === 0) continue;
            const runs: Run[] = serial.decode(mutated, 0);
            const bad = structuredClone(obs);
            bad.final[obj] = { size, extents: runs };
            expect(divergences(b, bad).some((d) => d.class === 'final-content'), `${wrong} at ${at}`).toBe(true);
          }
        },
      );
      fc.assert(prop, fcParams(`disjoint threads on ${isFile ? 'a file' : 'a disk'}`, 150));
    });
});
