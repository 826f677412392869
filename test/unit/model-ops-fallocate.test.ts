/**
 * fallocate(2) in every mode, on ext4, xfs, btrfs and gfs2 files and on
 * block devices. The rules are those of fallocate(2) and of each
 * filesystem's fallocate entry point (the modes it accepts), and of
 * blkdev_fallocate for block devices.
 */
import { describe, expect, it } from 'vitest';
import {
  type FsType,
  MiB,
  allows,
  diskCase,
  err,
  fallocate,
  fileCase,
  judge,
  observe,
  ok,
  read,
  resultOf,
  runs,
  write,
} from '../helpers/cases.ts';

const MODES = ['allocate', 'keep-size', 'punch-hole', 'zero-range', 'zero-range-keep-size', 'collapse-range', 'insert-range', 'unshare-range'] as const;
type Mode = (typeof MODES)[number];

/** What each filesystem's fallocate accepts; 'maybe' where kernels differ. */
const SUPPORT: Record<FsType, Record<Mode, 'yes' | 'no' | 'maybe'>> = {
  // ext4_fallocate: KEEP_SIZE | PUNCH_HOLE | COLLAPSE_RANGE | ZERO_RANGE | INSERT_RANGE.
  ext4: { allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'yes', 'zero-range': 'yes', 'zero-range-keep-size': 'yes', 'collapse-range': 'yes', 'insert-range': 'yes', 'unshare-range': 'no' },
  // xfs_file_fallocate: all of them (unshare is a no-op without reflinked extents).
  xfs: { allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'yes', 'zero-range': 'yes', 'zero-range-keep-size': 'yes', 'collapse-range': 'yes', 'insert-range': 'yes', 'unshare-range': 'yes' },
  // btrfs_fallocate: KEEP_SIZE | PUNCH_HOLE | ZERO_RANGE.
  btrfs: { allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'yes', 'zero-range': 'yes', 'zero-range-keep-size': 'yes', 'collapse-range': 'no', 'insert-range': 'no', 'unshare-range': 'no' },
  // gfs2_fallocate: KEEP_SIZE | PUNCH_HOLE (punch hole since 4.x).
  gfs2: { allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'maybe', 'zero-range': 'no', 'zero-range-keep-size': 'no', 'collapse-range': 'no', 'insert-range': 'no', 'unshare-range': 'no' },
};

const B = 4096;

describe('support per filesystem', () => {
  for (const fsType of ['ext4', 'xfs', 'btrfs', 'gfs2'] as const)
    for (const mode of MODES) {
      const support = SUPPORT[fsType][mode];
      it(`${fsType} ${mode}: ${support === 'yes' ? 'must work' : support === 'no' ? 'EOPNOTSUPP' : 'works or EOPNOTSUPP'}`, () => {
        // A file of 4 blocks; the range is block 1, well inside EOF and aligned.
        const b = fileCase(fsType, [write(1, 'f', 0, 4 * B), fallocate(2, 'f', mode, B, B)]);
        const obs = observe(b);
        expect(allows(b, 2, ok(0), obs)).toBe(support !== 'no');
        expect(allows(b, 2, err('EOPNOTSUPP'), obs)).toBe(support !== 'yes');
        expect(allows(b, 2, err('EINVAL'), obs)).toBe(false);
        expect(judge(b, obs).verdict).toBe('pass');
      });
    }
});

describe('content and size after each mode (ext4 and xfs)', () => {
  for (const fsType of ['ext4', 'xfs'] as const) {
    const run = (mode: Mode, offset: number, length: number, readLen = 8 * B) =>
      observe(fileCase(fsType, [write(1, 'f', 0, 4 * B), fallocate(2, 'f', mode, offset, length), read(3, 'f', 0, readLen)]));

    it(`${fsType}: allocate past EOF grows the file with zeroes`, () => {
      const obs = run('allocate', 3 * B, 3 * B);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 6 * B, data: runs(0, [4 * B, 1], [2 * B, 'zero']) });
      expect(obs.final.f!.size).toBe(6 * B);
    });
    it(`${fsType}: keep-size past EOF keeps the size`, () => {
      const obs = run('keep-size', 3 * B, 3 * B);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 4 * B, data: runs(0, [4 * B, 1]) });
      expect(obs.final.f!.size).toBe(4 * B);
    });
    it(`${fsType}: punch-hole zeroes the range, keeps the size`, () => {
      const obs = run('punch-hole', B, B);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 4 * B, data: runs(0, [B, 1], [B, 'zero'], [2 * B, 1]) });
    });
    it(`${fsType}: punch-hole across EOF does not grow the file`, () => {
      const obs = run('punch-hole', 3 * B, 4 * B);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 4 * B, data: runs(0, [3 * B, 1], [B, 'zero']) });
      expect(obs.final.f!.size).toBe(4 * B);
    });
    it(`${fsType}: zero-range zeroes and grows past EOF`, () => {
      const obs = run('zero-range', 3 * B, 2 * B);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 5 * B, data: runs(0, [3 * B, 1], [2 * B, 'zero']) });
    });
    it(`${fsType}: zero-range-keep-size zeroes up to EOF only`, () => {
      const obs = run('zero-range-keep-size', 3 * B, 2 * B);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 4 * B, data: runs(0, [3 * B, 1], [B, 'zero']) });
    });
    it(`${fsType}: collapse-range removes the range and shifts the rest down`, () => {
      const obs = run('collapse-range', B, B);
      // Bytes [2B, 4B) of op 1 now sit at [B, 3B): delta +B.
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 3 * B, data: runs(0, [B, 1], [2 * B, { op: 1, delta: B }]) });
      expect(obs.final.f!.size).toBe(3 * B);
    });
    it(`${fsType}: insert-range opens a hole of zeroes and shifts the rest up`, () => {
      const obs = run('insert-range', B, 2 * B);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 6 * B, data: runs(0, [B, 1], [2 * B, 'zero'], [3 * B, { op: 1, delta: -2 * B }]) });
      expect(obs.final.f!.size).toBe(6 * B);
    });
  }
  it('xfs: unshare-range changes nothing visible', () => {
    const obs = observe(fileCase('xfs', [write(1, 'f', 0, 4 * B), fallocate(2, 'f', 'unshare-range', 0, 4 * B), read(3, 'f', 0, 4 * B)]));
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 4 * B, data: runs(0, [4 * B, 1]) });
  });
});

describe('EINVAL for collapse and insert (fallocate(2))', () => {
  for (const fsType of ['ext4', 'xfs'] as const) {
    const only = (mode: Mode, offset: number, length: number, support: 'EINVAL' | 'ok') => {
      const b = fileCase(fsType, [write(1, 'f', 0, 4 * B), fallocate(2, 'f', mode, offset, length)]);
      const obs = observe(b);
      expect(resultOf(obs, 2)).toEqual(support === 'EINVAL' ? { op: 2, ret: -1, errno: 'EINVAL' } : { op: 2, ret: 0 });
      expect(allows(b, 2, ok(0), obs)).toBe(support === 'ok');
      expect(allows(b, 2, err('EINVAL'), obs)).toBe(support === 'EINVAL');
    };
    it(`${fsType}: collapse not in whole blocks`, () => {
      only('collapse-range', 512, B, 'EINVAL');
      only('collapse-range', B, 1000, 'EINVAL');
    });
    it(`${fsType}: collapse that reaches or passes EOF ("use ftruncate instead")`, () => {
      only('collapse-range', 3 * B, B, 'EINVAL');
      only('collapse-range', 2 * B, 4 * B, 'EINVAL');
      only('collapse-range', 2 * B, B, 'ok');
    });
    it(`${fsType}: insert at or past EOF`, () => {
      only('insert-range', 4 * B, B, 'EINVAL');
      only('insert-range', 8 * B, B, 'EINVAL');
      only('insert-range', 3 * B, B, 'ok');
    });
    it(`${fsType}: insert not in whole blocks`, () => {
      only('insert-range', B, 512, 'EINVAL');
    });
    it(`${fsType}: a failed collapse changes nothing`, () => {
      const b = fileCase(fsType, [write(1, 'f', 0, 4 * B), fallocate(2, 'f', 'collapse-range', 3 * B, B), read(3, 'f', 0, 8 * B)]);
      expect(resultOf(observe(b), 3)).toEqual({ op: 3, ret: 4 * B, data: runs(0, [4 * B, 1]) });
    });
  }
  it('with 1 KiB blocks, 1 KiB-aligned collapse is fine', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 4 * B), fallocate(2, 'f', 'collapse-range', 1024, 1024)], { fsBlockSize: 1024 });
    expect(resultOf(observe(b), 2)).toEqual({ op: 2, ret: 0 });
  });
});

describe('block devices (blkdev_fallocate)', () => {
  const size = MiB;
  it('zero-range and zero-range-keep-size zero the range; punch-hole zeroes or is unsupported', () => {
    for (const mode of ['zero-range', 'zero-range-keep-size', 'punch-hole'] as const) {
      const b = diskCase([write(1, 'd', 0, 16384), fallocate(2, 'd', mode, 4096, 4096), read(3, 'd', 0, 16384)]);
      const obs = observe(b);
      expect(resultOf(obs, 2), mode).toEqual({ op: 2, ret: 0 });
      expect(resultOf(obs, 3), mode).toEqual({ op: 3, ret: 16384, data: runs(0, [4096, 1], [4096, 'zero'], [8192, 1]) });
      expect(allows(b, 2, err('EOPNOTSUPP'), obs), mode).toBe(mode === 'punch-hole');
    }
  });
  it('modes that do not zero are EOPNOTSUPP', () => {
    for (const mode of ['allocate', 'keep-size', 'collapse-range', 'insert-range', 'unshare-range'] as const) {
      const b = diskCase([fallocate(1, 'd', mode, 0, 4096)]);
      const obs = observe(b);
      expect(resultOf(obs, 1), mode).toEqual({ op: 1, ret: -1, errno: 'EOPNOTSUPP' });
      expect(allows(b, 1, ok(0), obs), mode).toBe(false);
    }
  });
  it('a range misaligned to the logical block size is EINVAL', () => {
    const b = diskCase([fallocate(1, 'd', 'zero-range', 512, 4096)], { lbs: 4096 });
    expect(resultOf(observe(b), 1)).toEqual({ op: 1, ret: -1, errno: 'EINVAL' });
    // allocate and keep-size are only refused after the range checks: EINVAL first.
    for (const mode of ['allocate', 'keep-size'] as const) {
      const m = diskCase([fallocate(1, 'd', mode, 512, 4096)], { lbs: 4096 });
      expect(allows(m, 1, err('EINVAL')), mode).toBe(true);
      expect(allows(m, 1, ok(0)), mode).toBe(false);
    }
  });
  it('past the end: EINVAL without KEEP_SIZE; with it the range is cut at the end', () => {
    const z = diskCase([fallocate(1, 'd', 'zero-range', size - 4096, 8192)]);
    expect(resultOf(observe(z), 1)).toEqual({ op: 1, ret: -1, errno: 'EINVAL' });
    const k = diskCase([write(1, 'd', size - 8192, 8192), fallocate(2, 'd', 'zero-range-keep-size', size - 4096, 8192), read(3, 'd', size - 8192, 8192)]);
    const obs = observe(k);
    expect(allows(k, 2, ok(0), obs)).toBe(true);
    expect(allows(k, 2, err('EINVAL'), obs)).toBe(false);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 8192, data: runs(0, [4096, 1], [4096, 'zero']) });
    const p = diskCase([fallocate(1, 'd', 'punch-hole', size - 4096, 8192)]);
    expect(allows(p, 1, ok(0))).toBe(true);
    // Starting at or past the end is EINVAL in every mode.
    const e = diskCase([fallocate(1, 'd', 'zero-range-keep-size', size, 4096)]);
    expect(resultOf(observe(e), 1)).toEqual({ op: 1, ret: -1, errno: 'EINVAL' });
    expect(allows(e, 1, ok(0))).toBe(false);
  });
});
