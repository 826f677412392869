/**
 * Racing threads. Between two barriers the threads of a phase run at the same
 * time: per byte, a read sees the previous value or what a concurrent write
 * puts there, and the phase ends with one of the concurrent writes (or the
 * previous value where none wrote) per byte; ops that move content hold the
 * inode lock, so where they race the model walks the serial orders.
 */
import { describe, expect, it } from 'vitest';
import type { Observation } from '../../model/index.ts';
import {
  type Built,
  type Run,
  MiB,
  barrier,
  diskCase,
  divergences,
  fallocate,
  fileCase,
  judge,
  observe,
  ok,
  opDivergences,
  read,
  resultOf,
  runs,
  truncate,
  withFinal,
  withResult,
  write,
} from '../helpers/cases.ts';

function finalDivergences(b: Built, obs: Observation, obj: string, size: number, extents: Run[]) {
  return divergences(b, withFinal(obs, obj, size, extents));
}

describe('two writers', () => {
  it('disjoint ranges: exactly the serial result, in content and in every read after the barrier', () => {
    const b = diskCase([
      [write(1, 'd', 0, 8192), barrier(10), read(3, 'd', 0, 16384)],
      [write(2, 'd', 8192, 8192), barrier(11)],
    ]);
    const obs = observe(b);
    const serial = runs(0, [8192, 1], [8192, 2]);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 16384, data: serial });
    expect(obs.final.d).toEqual({ size: MiB, extents: runs(0, [8192, 1], [8192, 2], [MiB - 16384, 'zero']) });
    expect(judge(b, obs).verdict).toBe('pass');
    for (const wrong of [runs(0, [8192, 1], [8192, 'zero']), runs(0, [16384, 1]), runs(0, [8192, 2], [8192, 2]), runs(0, [4096, 'zero'], [4096, 1], [8192, 2])])
      expect(opDivergences(b, withResult(obs, 3, ok(16384, wrong)), 3)).toHaveLength(1);
    expect(finalDivergences(b, obs, 'd', MiB, runs(0, [8192, 1], [MiB - 8192, 'zero']))).toHaveLength(1);
  });

  it('overlapping ranges: either writer per byte, never zeroes or a third op', () => {
    const b = diskCase([
      [write(1, 'd', 0, 8192), barrier(10), read(4, 'd', 0, 12288)],
      [write(2, 'd', 4096, 8192), barrier(11)],
      [write(3, 'd', 65536, 4096), barrier(12)],
    ]);
    const obs = observe(b);
    const allowed = [
      runs(0, [4096, 1], [8192, 2]),
      runs(0, [8192, 1], [4096, 2]),
      runs(0, [4096, 1], [2048, 2], [2048, 1], [4096, 2]),
      runs(0, [5000, 1], [7288, 2]),
    ];
    for (const r of allowed) expect(opDivergences(b, withResult(obs, 4, ok(12288, r)), 4)).toEqual([]);
    expect(opDivergences(b, withResult(obs, 4, ok(12288, runs(0, [4096, 2], [8192, 2]))), 4)[0]).toMatchObject({ offset: 0 });
    expect(opDivergences(b, withResult(obs, 4, ok(12288, runs(0, [4096, 1], [4096, 'zero'], [4096, 2]))), 4)[0]).toMatchObject({ dataClass: 'zeroes', offset: 4096 });
    expect(opDivergences(b, withResult(obs, 4, ok(12288, runs(0, [4096, 1], [4096, 3], [4096, 2]))), 4)[0]).toMatchObject({ dataClass: 'other-op', offset: 4096, observedWriter: 3 });
    // The final content follows the same rule (with the read after the barrier seeing the same bytes).
    const fin = (r: Run[]) => {
      const seen = withResult(obs, 4, ok(12288, r));
      return finalDivergences(b, seen, 'd', MiB, [...r, ...runs(12288, [65536 - 12288, 'zero'], [4096, 3], [MiB - 69632, 'zero'])]);
    };
    expect(fin(runs(0, [8192, 1], [4096, 2]))).toEqual([]);
    expect(fin(runs(0, [4096, 1], [8192, 2]))).toEqual([]);
    expect(fin(runs(0, [4096, 1], [4096, 'zero'], [4096, 2])).length).toBeGreaterThan(0);
    // What the read after the barrier saw is what is there: the final content must agree with it.
    expect(finalDivergences(b, withResult(obs, 4, ok(12288, runs(0, [4096, 1], [8192, 2]))), 'd', MiB, [
      ...runs(0, [8192, 1], [4096, 2]),
      ...runs(12288, [65536 - 12288, 'zero'], [4096, 3], [MiB - 69632, 'zero']),
    ])[0]).toMatchObject({ class: 'final-content', offset: 4096 });
  });

  it('a read racing a write sees old or new bytes, per byte; after the barrier only the new', () => {
    const b = diskCase([
      [write(1, 'd', 0, 8192), barrier(10, 'one'), write(3, 'd', 0, 8192), barrier(12, 'two')],
      [barrier(11, 'one'), read(2, 'd', 0, 8192), barrier(13, 'two'), read(4, 'd', 0, 8192)],
    ]);
    const obs = observe(b);
    for (const r of [runs(0, [8192, 1]), runs(0, [8192, 3]), runs(0, [4096, 3], [4096, 1]), runs(0, [1, 1], [8190, 3], [1, 1])])
      expect(opDivergences(b, withResult(obs, 2, ok(8192, r)), 2)).toEqual([]);
    expect(opDivergences(b, withResult(obs, 2, ok(8192, runs(0, [8192, 'zero']))), 2)).toHaveLength(1);
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 8192, data: runs(0, [8192, 3]) });
    expect(opDivergences(b, withResult(obs, 4, ok(8192, runs(0, [8192, 1]))), 4)[0]).toMatchObject({ dataClass: 'stale' });
  });

  it('a read racing a file-extending write: EOF is either side of the write, or in between', () => {
    const b = fileCase('ext4', [[write(1, 'f', 0, 4096), barrier(10, 'x'), write(3, 'f', 4096, 8192), barrier(12, 'y')], [barrier(11, 'x'), read(2, 'f', 0, 16384), barrier(13, 'y')]]);
    const obs = observe(b);
    expect(opDivergences(b, withResult(obs, 2, ok(4096, runs(0, [4096, 1]))), 2)).toEqual([]);
    expect(opDivergences(b, withResult(obs, 2, ok(12288, runs(0, [4096, 1], [8192, 3]))), 2)).toEqual([]);
    // A buffered write raises i_size folio by folio: a racing read may stop at any of them.
    expect(opDivergences(b, withResult(obs, 2, ok(8192, runs(0, [4096, 1], [4096, 3]))), 2)).toEqual([]);
    // But not before the EOF the file had before the write.
    expect(opDivergences(b, withResult(obs, 2, ok(2048, runs(0, [2048, 1]))), 2)[0]).toMatchObject({ class: 'short-read' });
  });

  it('a read racing a truncate may stop anywhere between the two EOFs; without the race it may not', () => {
    const raced = fileCase('ext4', [[write(1, 'f', 0, 8192), barrier(10, 'a'), truncate(3, 'f', 0), barrier(12, 'b')], [barrier(11, 'a'), read(2, 'f', 0, 8192), barrier(13, 'b')]]);
    const obs = observe(raced);
    for (const k of [0, 4096, 8192]) expect(opDivergences(raced, withResult(obs, 2, ok(k, k ? runs(0, [k, 1]) : undefined)), 2), `${k}`).toEqual([]);
    const serial = fileCase('ext4', [write(1, 'f', 0, 8192), read(2, 'f', 0, 8192)]);
    expect(opDivergences(serial, withResult(observe(serial), 2, ok(4096, runs(0, [4096, 1]))), 2)[0]).toMatchObject({ class: 'short-read' });
  });
});

describe('truncate racing a write', () => {
  it('allows the sizes of both orders and no other', () => {
    const b = fileCase('ext4', [[write(1, 'f', 0, 8192), barrier(10)], [truncate(2, 'f', 4096), barrier(11)]]);
    const obs = observe(b);
    // write, then truncate: 4096 bytes of op 1. truncate, then write: 8192 bytes of op 1.
    expect(finalDivergences(b, obs, 'f', 4096, runs(0, [4096, 1]))).toEqual([]);
    expect(finalDivergences(b, obs, 'f', 8192, runs(0, [8192, 1]))).toEqual([]);
    const d = finalDivergences(b, obs, 'f', 6000, runs(0, [6000, 1]));
    expect(d.map((x) => x.class)).toContain('size-mismatch');
    expect(finalDivergences(b, obs, 'f', 4096, runs(0, [4096, 'zero']))).not.toEqual([]);
    // The larger size comes only from truncate-then-write, so the write is all there: no zeroes.
    expect(finalDivergences(b, obs, 'f', 8192, runs(0, [4096, 1], [4096, 'zero']))[0]).toMatchObject({ class: 'final-content', offset: 4096, dataClass: 'zeroes' });
  });

  it('a truncate up racing a write into the new range', () => {
    const b = fileCase('xfs', [[write(1, 'f', 0, 4096), barrier(10)], [truncate(2, 'f', 16384), barrier(11)]], { fileSize: 0 });
    const obs = observe(b);
    expect(finalDivergences(b, obs, 'f', 16384, runs(0, [4096, 1], [12288, 'zero']))).toEqual([]);
    expect(finalDivergences(b, obs, 'f', 4096, runs(0, [4096, 1]))).toHaveLength(1);
  });
});

describe('an op after a race that left the size open', () => {
  it('a collapse that succeeded rules out the sizes for which it is EINVAL', () => {
    // Two truncates race: the file ends 0 or 8193 bytes long. Then a 4 KiB write and a collapse
    // of [4096, 8192): the collapse is valid only if the file was 8193 bytes long.
    const b = fileCase('ext4', [
      [truncate(1, 'f', 0), barrier(2, 'p1'), write(3, 'f', 0, 4096), fallocate(4, 'f', 'collapse-range', 4096, 4096)],
      [truncate(5, 'f', 8193), barrier(6, 'p1')],
    ]);
    const obs = observe(b);
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 0 });
    // 8193 - 4096 = 4097 bytes: op 3's page and one zero byte.
    expect(finalDivergences(b, obs, 'f', 4097, runs(0, [4096, 3], [1, 'zero']))).toEqual([]);
    expect(judge(b, obs).verdict).toBe('pass');
    // Had the file been 4096 bytes long, the collapse would have failed, leaving op 3's page.
    const einval = withResult(obs, 4, { ret: -1, errno: 'EINVAL' });
    expect(finalDivergences(b, einval, 'f', 4096, runs(0, [4096, 3]))).toEqual([]);
    // After a successful collapse, an empty file is not possible.
    expect(finalDivergences(b, obs, 'f', 0, []).map((d) => d.class)).toContain('size-mismatch');
  });
});

describe('collapse-range racing a write (serial orders explored)', () => {
  // Thread 0 fills 16 KiB, then (after barrier b1) collapses the first 4 KiB while thread 1
  // writes the last 4 KiB; after barrier b2 thread 0 reads everything.
  const prog = () =>
    fileCase('ext4', [
      [write(1, 'f', 0, 16384), barrier(10, 'b1'), fallocate(3, 'f', 'collapse-range', 0, 4096), barrier(12, 'b2'), read(5, 'f', 0, 16384)],
      [barrier(11, 'b1'), write(4, 'f', 12288, 4096), barrier(13, 'b2')],
    ]);
  // collapse, then write: op 1's bytes 4096.. move down; op 4 lands at 12288; 16 KiB.
  const collapseFirst = runs(0, [12288, { op: 1, delta: 4096 }], [4096, 4]);
  // write, then collapse: op 4 overwrote op 1's last 4 KiB, then everything moved down; 12 KiB.
  const writeFirst = runs(0, [8192, { op: 1, delta: 4096 }], [4096, { op: 4, delta: 4096 }]);

  function observed(size: number, content: Run[]): Observation {
    const obs = withResult(observe(prog()), 5, ok(size, content));
    return withFinal(obs, 'f', size, content);
  }

  it('the observation of each serial order passes', () => {
    const b = prog();
    expect(judge(b, observed(16384, collapseFirst)).verdict).toBe('pass');
    expect(judge(b, observed(12288, writeFirst)).verdict).toBe('pass');
  });

  it('an observation no serial order explains fails', () => {
    const b = prog();
    // 12 KiB with op 1 everywhere: the write vanished.
    expect(judge(b, observed(12288, runs(0, [12288, { op: 1, delta: 4096 }]))).verdict).toBe('divergence');
    // The write landed where it was aimed but the data before it did not move.
    expect(judge(b, observed(16384, runs(0, [12288, 1], [4096, 4]))).verdict).toBe('divergence');
    // Collapse first, but op 4's data then shifted too.
    expect(judge(b, observed(16384, runs(0, [12288, { op: 1, delta: 4096 }], [4096, { op: 4, delta: 4096 }]))).verdict).toBe('divergence');
  });

  it('with a collapse in the phase, a read racing a write still sees old or new bytes per byte', () => {
    // The collapse (far from the bytes read) makes the model walk serial orders; the read and the
    // write do not exclude each other, so a mix is legitimate - but not zeroes or another op.
    const b = fileCase('ext4', [
      [write(1, 'f', 0, 65536), barrier(10, 'a'), fallocate(2, 'f', 'collapse-range', 32768, 4096), barrier(11, 'b')],
      [barrier(12, 'a'), write(3, 'f', 0, 8192), barrier(13, 'b')],
      [barrier(14, 'a'), read(4, 'f', 0, 8192), barrier(15, 'b')],
    ]);
    const obs = observe(b);
    for (const r of [runs(0, [8192, 1]), runs(0, [8192, 3]), runs(0, [4096, 3], [4096, 1]), runs(0, [100, 1], [8092, 3])])
      expect(opDivergences(b, withResult(obs, 4, ok(8192, r)), 4)).toEqual([]);
    expect(opDivergences(b, withResult(obs, 4, ok(8192, runs(0, [4096, 3], [4096, 'zero']))), 4)).toHaveLength(1);
    expect(opDivergences(b, withResult(obs, 4, ok(8192, runs(0, [4096, 3], [4096, { op: 1, delta: 4096 }]))), 4)).toHaveLength(1);
  });

  it('an EINVAL from the collapse is explained by no order here (the range is always inside EOF)', () => {
    const b = prog();
    const obs = withResult(observe(b), 3, { ret: -1, errno: 'EINVAL' });
    expect(opDivergences(b, obs, 3).length + divergences(b, obs).filter((d) => d.op === 3).length).toBeGreaterThan(0);
  });
});
