/**
 * The other ops: truncate, writeback and cache control, discard, remount,
 * and the control plane (loop ioctls, dm suspend/reload/resume, snapshots,
 * md member failure). Expectations from truncate(2), fsync(2),
 * sync_file_range(2), the BLKDISCARD/BLKZEROOUT/BLKSECDISCARD ioctls
 * (block/ioctl.c), loop(4), dm-snapshot.rst and md(4).
 */
import { describe, expect, it } from 'vitest';
import {
  type LayerInput,
  MiB,
  PAGE,
  allows,
  diskCase,
  err,
  fileCase,
  fileLayers,
  judge,
  observe,
  ok,
  op,
  opDivergences,
  read,
  resultOf,
  runs,
  stackCase,
  truncate,
  withResult,
  write,
} from '../helpers/cases.ts';

describe('truncate (truncate(2))', () => {
  it('down then up: the cut bytes read as zeroes', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 3 * PAGE), truncate(2, 'f', 5000), truncate(3, 'f', 3 * PAGE), read(4, 'f', 0, 3 * PAGE)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 0 });
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 3 * PAGE, data: runs(0, [5000, 1], [3 * PAGE - 5000, 'zero']) });
    expect(allows(b, 4, ok(3 * PAGE, runs(0, [3 * PAGE, 1])), obs)).toBe(false);
    expect(obs.final.f).toEqual({ size: 3 * PAGE, extents: runs(0, [5000, 1], [3 * PAGE - 5000, 'zero']) });
  });

  it('down: reads stop at the new size; the size is judged', () => {
    const b = fileCase('xfs', [write(1, 'f', 0, PAGE), truncate(2, 'f', 100), read(3, 'f', 0, PAGE)]);
    const obs = observe(b);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 100, data: runs(0, [100, 1]) });
    const bad = structuredClone(obs);
    bad.final.f = { size: PAGE, extents: runs(0, [PAGE, 1]) };
    const v = judge(b, bad);
    expect(v.verdict === 'divergence' && v.divergences[0]!.class).toBe('size-mismatch');
  });

  it('up from empty: a hole of zeroes', () => {
    const b = fileCase('btrfs', [truncate(1, 'f', 10000), read(2, 'f', 0, 20000)]);
    expect(resultOf(observe(b), 2)).toEqual({ op: 2, ret: 10000, data: runs(0, [10000, 'zero']) });
  });

  it('a healthy filesystem gives no error', () => {
    const b = fileCase('ext4', [truncate(1, 'f', 100)]);
    expect(allows(b, 1, err('EIO'))).toBe(false);
  });
});

describe('writeback and cache control', () => {
  const data = [write(1, 'f', 0, PAGE)];
  const ops = [
    op('fsync', 2, { target: 'f' }),
    op('fsync', 2, { target: 'f', dataOnly: true }),
    op('sync-file-range', 2, { target: 'f', offset: 0, length: 0 }),
    op('sync-file-range', 2, { target: 'f', offset: 0, length: PAGE, flags: 'write' }),
    op('drop-caches', 2),
  ];
  for (const o of ops)
    it(`${o.kind} ${JSON.stringify(o).slice(0, 60)}: succeeds, changes no data`, () => {
      const b = fileCase('ext4', [...data, o, read(3, 'f', 0, PAGE)]);
      const obs = observe(b);
      expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 0 });
      expect(allows(b, 2, err('EIO'), obs)).toBe(false);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: PAGE, data: runs(0, [PAGE, 1]) });
    });

  it('flush (BLKFLSBUF) and fsync on a block device', () => {
    const b = diskCase([write(1, 'd', 0, PAGE), op('flush', 2, { target: 'd' }), op('fsync', 3, { target: 'd' }), read(4, 'd', 0, PAGE)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 0 });
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 0 });
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: PAGE, data: runs(0, [PAGE, 1]) });
  });

  it('fsync may report EIO when a dm-flakey layer below fails writes', () => {
    const layers: LayerInput[] = [{ id: 'd', kind: 'disk', size: MiB }, { id: 'x', kind: 'dm-flakey', on: 'd', upSeconds: 1, downSeconds: 1, mode: 'error-writes' }];
    const b = stackCase(layers, [write(1, 'x', 0, PAGE), op('fsync', 2, { target: 'x' })]);
    expect(allows(b, 2, err('EIO'))).toBe(true);
  });
});

describe('discard (block/ioctl.c)', () => {
  it('discard: the range may then read as anything (old data, zeroes, garbage), but not fail', () => {
    const b = diskCase([write(1, 'd', 0, 8192), op('discard', 2, { target: 'd', offset: 0, length: 4096 }), read(3, 'd', 0, 8192)]);
    const obs = observe(b);
    for (const first of [1, 'zero', 'unknown'] as const)
      expect(allows(b, 3, ok(8192, runs(0, [4096, first], [4096, 1])), obs), String(first)).toBe(true);
    // Outside the range the data is exact.
    expect(allows(b, 3, ok(8192, runs(0, [4096, 1], [4096, 'zero'])), obs)).toBe(false);
    expect(allows(b, 3, err('EIO'), obs)).toBe(false);
    // A device need not support discard; then nothing changed.
    const unsupported = withResult(obs, 2, err('EOPNOTSUPP'));
    expect(opDivergences(b, withResult(unsupported, 3, ok(8192, runs(0, [8192, 1]))), 3)).toEqual([]);
    expect(opDivergences(b, withResult(unsupported, 3, ok(8192, runs(0, [4096, 'zero'], [4096, 1]))), 3)).toHaveLength(1);
  });

  it('zeroout: zeroes, and it must work (it falls back to writing zeroes)', () => {
    const b = diskCase([write(1, 'd', 0, 8192), op('discard', 2, { target: 'd', offset: 0, length: 4096, mode: 'zeroout' }), read(3, 'd', 0, 8192)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 0 });
    expect(allows(b, 2, err('EOPNOTSUPP'), obs)).toBe(false);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 8192, data: runs(0, [4096, 'zero'], [4096, 1]) });
    expect(allows(b, 3, ok(8192, runs(0, [8192, 1])), obs)).toBe(false);
  });

  it('ranges not in 512-byte units: EINVAL, or EOPNOTSUPP first where discard is unsupported', () => {
    for (const mode of ['discard', 'secure', 'zeroout'] as const) {
      const b = diskCase([op('discard', 1, { target: 'd', offset: 100, length: 4096, mode })]);
      const obs = observe(b);
      expect(resultOf(obs, 1), mode).toMatchObject({ ret: -1 });
      expect(allows(b, 1, err('EINVAL'), obs), mode).toBe(true);
      expect(allows(b, 1, err('EOPNOTSUPP'), obs), mode).toBe(mode !== 'zeroout');
      expect(allows(b, 1, ok(0), obs), mode).toBe(false);
    }
  });

  it('misaligned to a 4 KiB logical block, or past the end: EINVAL', () => {
    const m = diskCase([op('discard', 1, { target: 'd', offset: 512, length: 4096, mode: 'zeroout' })], { lbs: 4096 });
    expect(resultOf(observe(m), 1)).toEqual({ op: 1, ret: -1, errno: 'EINVAL' });
    const p = diskCase([op('discard', 1, { target: 'd', offset: MiB - 512, length: 1024, mode: 'zeroout' })]);
    expect(resultOf(observe(p), 1)).toEqual({ op: 1, ret: -1, errno: 'EINVAL' });
    expect(allows(p, 1, ok(0))).toBe(false);
  });
});

describe('remount', () => {
  for (const mode of ['cycle', 'ro-rw'] as const)
    it(`${mode}: what was written stays written`, () => {
      const b = stackCase(fileLayers('xfs', { extraFiles: 1 }), [
        write(1, 'f', 0, 10000),
        write(2, 'g', 500, 500),
        op('remount', 3, { target: 'fs', mode }),
        read(4, 'f', 0, 20000),
        read(5, 'g', 0, 2000),
      ]);
      const obs = observe(b);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 0 });
      expect(allows(b, 3, err('EIO'), obs)).toBe(false);
      expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 10000, data: runs(0, [10000, 1]) });
      expect(resultOf(obs, 5)).toEqual({ op: 5, ret: 1000, data: runs(0, [500, 'zero'], [500, 2]) });
      expect(allows(b, 4, ok(10000, runs(0, [10000, 'zero'])), obs)).toBe(false);
    });
});

describe('loop ioctls (loop(4))', () => {
  const layers: LayerInput[] = [...fileLayers('ext4', { fileSize: 4 * MiB }), { id: 'l', kind: 'loop', on: 'f', logicalBlockSize: 512 }];
  it('LOOP_SET_DIRECT_IO on may be refused (EINVAL); off must work; data is untouched either way', () => {
    const b = stackCase(layers, [
      write(1, 'l', 0, 8192, { direct: true }),
      op('loop-set-direct-io', 2, { target: 'l', on: true }),
      read(3, 'l', 0, 8192, { direct: true }),
      op('loop-set-direct-io', 4, { target: 'l', on: false }),
      read(5, 'l', 0, 8192),
    ]);
    const obs = observe(b);
    expect(allows(b, 2, err('EINVAL'), obs)).toBe(true);
    expect(allows(b, 4, err('EINVAL'), obs)).toBe(false);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 8192, data: runs(0, [8192, 1]) });
    expect(resultOf(obs, 5)).toEqual({ op: 5, ret: 8192, data: runs(0, [8192, 1]) });
    // IO legal for the device's block size must keep working whatever direct IO does (S1).
    expect(allows(b, 3, err('EINVAL'), obs)).toBe(false);
    expect(allows(b, 3, err('EIO'), obs)).toBe(false);
  });

  it('LOOP_SET_BLOCK_SIZE may be refused while busy (EBUSY/EAGAIN); data is untouched', () => {
    const b = stackCase(layers, [write(1, 'l', 0, 8192), op('loop-set-block-size', 2, { target: 'l', size: 4096 }), read(3, 'l', 0, 8192)]);
    const obs = observe(b);
    expect(allows(b, 2, err('EBUSY'), obs)).toBe(true);
    expect(allows(b, 2, err('EAGAIN'), obs)).toBe(true);
    expect(allows(b, 2, err('EIO'), obs)).toBe(false);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 8192, data: runs(0, [8192, 1]) });
  });
});

describe('dm suspend / reload / resume', () => {
  it('a live table swap keeps every acknowledged write (S4)', () => {
    const b = stackCase([{ id: 'd', kind: 'disk', size: 8 * MiB }, { id: 'x', kind: 'dm-linear', on: 'd' }], [
      write(1, 'x', 0, 8192),
      op('dm-suspend', 2, { target: 'x' }),
      op('dm-reload', 3, { target: 'x', as: 'snapshot-origin' }),
      op('dm-resume', 4, { target: 'x' }),
      write(5, 'x', 4096, 8192),
      op('dm-suspend', 6, { target: 'x', noflush: true }),
      op('dm-reload', 7, { target: 'x', as: 'linear' }),
      op('dm-resume', 8, { target: 'x' }),
      read(9, 'x', 0, 16384),
    ]);
    const obs = observe(b);
    for (const id of [2, 3, 4, 6, 7, 8]) {
      expect(resultOf(obs, id)).toEqual({ op: id, ret: 0 });
      expect(allows(b, id, err('EIO'), obs)).toBe(false);
    }
    expect(resultOf(obs, 9)).toEqual({ op: 9, ret: 16384, data: runs(0, [4096, 1], [8192, 5], [4096, 'zero']) });
    expect(allows(b, 9, ok(16384, runs(0, [8192, 1], [8192, 'zero'])), obs)).toBe(false);
  });
});

describe('snapshots (dm-snapshot.rst)', () => {
  const snap = (createdAt: 'setup' | 'op'): LayerInput[] => [
    { id: 'd', kind: 'disk', size: 8 * MiB },
    { id: 'o', kind: 'dm-snapshot-origin', on: 'd' },
    { id: 'c', kind: 'disk', size: 10 * MiB },
    { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'c', createdAt },
  ];

  it('a snapshot made at set-up holds the origin as it was then; writes to the origin copy out first', () => {
    const b = stackCase(snap('setup'), [write(1, 'o', 0, 8192), read(2, 's', 0, 8192), read(3, 'o', 0, 8192)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 8192, data: runs(0, [8192, 'zero']) });
    expect(allows(b, 2, ok(8192, runs(0, [8192, 1])), obs)).toBe(false);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 8192, data: runs(0, [8192, 1]) });
  });

  it('snapshot-create holds exactly what was acknowledged before it (S4)', () => {
    const b = stackCase(snap('op'), [
      write(1, 'o', 0, 4096),
      op('snapshot-create', 2, { target: 's' }),
      write(3, 'o', 0, 8192),
      read(4, 's', 0, 8192),
      read(5, 'o', 0, 8192),
    ]);
    const obs = observe(b);
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 8192, data: runs(0, [4096, 1], [4096, 'zero']) });
    expect(allows(b, 4, ok(8192, runs(0, [8192, 3])), obs)).toBe(false);
    expect(allows(b, 4, ok(8192, runs(0, [8192, 'zero'])), obs)).toBe(false);
    expect(resultOf(obs, 5)).toEqual({ op: 5, ret: 8192, data: runs(0, [8192, 3]) });
  });

  it('writes to the snapshot stay in the snapshot; merge makes the origin read as the snapshot did', () => {
    const b = stackCase(snap('setup'), [
      write(1, 'o', 0, 8192),
      write(2, 's', 4096, 4096),
      read(3, 'o', 0, 8192),
      read(4, 's', 0, 8192),
      op('snapshot-merge', 5, { target: 's' }),
      read(6, 'o', 0, 8192),
    ]);
    const obs = observe(b);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 8192, data: runs(0, [8192, 1]) });
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 8192, data: runs(0, [4096, 'zero'], [4096, 2]) });
    expect(resultOf(obs, 6)).toEqual({ op: 6, ret: 8192, data: runs(0, [4096, 'zero'], [4096, 2]) });
    expect(allows(b, 6, ok(8192, runs(0, [8192, 1])), obs)).toBe(false);
    expect(obs.final.o).toEqual({ size: 8 * MiB, extents: runs(0, [4096, 'zero'], [4096, 2], [8 * MiB - 8192, 'zero']) });
  });

  it('snapshot-remove leaves the origin as it is', () => {
    const b = stackCase(snap('setup'), [write(1, 'o', 0, 4096), op('snapshot-remove', 2, { target: 's' }), read(3, 'o', 0, 4096)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 0 });
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 4096, data: runs(0, [4096, 1]) });
  });

  it('snapshot-remove of a snapshot that layers sit on fails (they hold it open), and the snapshot stays', () => {
    const b = stackCase([...snap('setup'), { id: 'lin', kind: 'dm-linear', on: 's' }], [op('snapshot-remove', 1, { target: 's' }), read(2, 'lin', 0, 4096)]);
    const obs = observe(b);
    expect(resultOf(obs, 1)).toMatchObject({ op: 1, ret: -1, errno: 'EEXEC' });
    expect(allows(b, 1, ok(0), obs)).toBe(false);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 4096, data: runs(0, [4096, 'zero']) });
  });
});

describe('md-fail (md(4))', () => {
  const raid1: LayerInput[] = [
    { id: 'a', kind: 'disk', size: 8 * MiB },
    { id: 'b', kind: 'disk', size: 8 * MiB },
    { id: 'm', kind: 'md', level: 1, members: ['a', 'b'] },
  ];
  it('failing one member of a raid1 is transparent', () => {
    const b = stackCase(raid1, [write(1, 'm', 0, 8192), op('md-fail', 2, { target: 'm', member: 0 }), read(3, 'm', 0, 8192), write(4, 'm', 8192, 4096), read(5, 'm', 0, 12288)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 0 });
    expect(allows(b, 2, err('EBUSY'), obs)).toBe(false);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 8192, data: runs(0, [8192, 1]) });
    expect(allows(b, 3, err('EIO'), obs)).toBe(false);
    expect(resultOf(obs, 5)).toEqual({ op: 5, ret: 12288, data: runs(0, [8192, 1], [4096, 4]) });
  });
  it('md will not fail the last working member (EBUSY), and IO goes on', () => {
    const b = stackCase(raid1, [write(1, 'm', 0, 8192), op('md-fail', 2, { target: 'm', member: 0 }), op('md-fail', 3, { target: 'm', member: 1 }), read(4, 'm', 0, 8192)]);
    const obs = observe(b);
    expect(allows(b, 3, err('EBUSY'), obs)).toBe(true);
    const refused = withResult(obs, 3, err('EBUSY'));
    expect(judge(b, refused).verdict).toBe('pass');
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 8192, data: runs(0, [8192, 1]) });
  });
});
