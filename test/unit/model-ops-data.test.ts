/**
 * read and write in the model: every submission path, EOF, the end of a
 * block device, O_DIRECT alignment, RWF_NOWAIT, and where buffer bytes come
 * from. Expectations follow read(2), write(2), preadv2(2)/pwritev2(2) and
 * open(2) (O_DIRECT), and the block layer's blkdev_read_iter/write_iter.
 */
import { describe, expect, it } from 'vitest';
import {
  type Built,
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
  withResult,
  write,
} from '../helpers/cases.ts';

function passes(b: Built): void {
  expect(judge(b, observe(b)).verdict).toBe('pass');
}

describe('write then read', () => {
  for (const via of ['psync', 'pvec', 'io_uring'] as const) {
    for (const direct of [false, true]) {
      it(`block device, ${via}${direct ? ', O_DIRECT' : ''}`, () => {
        const b = diskCase([write(1, 'd', 4096, 8192, { via, direct }), read(2, 'd', 0, 16384, { via, direct })]);
        const obs = observe(b);
        expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 8192 });
        expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 16384, data: runs(0, [4096, 'zero'], [8192, 1], [4096, 'zero']) });
        expect(allows(b, 2, ok(16384, runs(0, [16384, 'zero'])), obs)).toBe(false);
        passes(b);
      });
      it(`ext4 file, ${via}${direct ? ', O_DIRECT' : ''}`, () => {
        const b = fileCase('ext4', [write(1, 'f', 4096, 8192, { via, direct }), read(2, 'f', 0, 16384, { via, direct })]);
        const obs = observe(b);
        expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 8192 });
        // The file ends at 12288: the read stops there.
        expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 12288, data: runs(0, [4096, 'zero'], [8192, 1]) });
        expect(obs.final.f).toEqual({ size: 12288, extents: runs(0, [4096, 'zero'], [8192, 1]) });
        passes(b);
      });
    }
  }

  it('vectors: a write split into iovecs writes the same bytes as one buffer', () => {
    const b = diskCase([write(1, 'd', 0, 6000, { via: 'pvec', vectors: 7 }), read(2, 'd', 0, 6000, { via: 'io_uring', vectors: 3 })], { size: MiB });
    const obs = observe(b);
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 6000 });
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 6000, data: runs(0, [6000, 1]) });
  });

  it('overwrites: the later write wins, the earlier one is stale where overwritten', () => {
    const b = diskCase([write(1, 'd', 0, 8192), write(2, 'd', 4096, 8192), read(3, 'd', 0, 12288)]);
    const obs = observe(b);
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 12288, data: runs(0, [4096, 1], [8192, 2]) });
    const stale = opDivergences(b, withResult(obs, 3, ok(12288, runs(0, [8192, 1], [4096, 2]))), 3);
    expect(stale[0]).toMatchObject({ class: 'wrong-data', dataClass: 'stale', offset: 4096, observedWriter: 1, expectedWriters: [2] });
  });

  it('byte-granular file writes', () => {
    const b = fileCase('xfs', [write(1, 'f', 0, 100), write(2, 'f', 3, 1), write(3, 'f', 50, 7), read(4, 'f', 0, 200)]);
    const obs = observe(b);
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 100, data: runs(0, [3, 1], [1, 2], [46, 1], [7, 3], [43, 1]) });
    passes(b);
  });

  it('a read attributed to a different offset of the right op is "shifted"', () => {
    const b = diskCase([write(1, 'd', 0, 8192), read(2, 'd', 0, 8192)]);
    const d = opDivergences(b, withResult(observe(b), 2, ok(8192, runs(0, [512, 1], [7680, { op: 1, delta: 512 }]))), 2);
    expect(d[0]).toMatchObject({ class: 'wrong-data', dataClass: 'shifted', offset: 512 });
  });

  it('zeroes where data belongs, and bytes nobody wrote, are wrong data', () => {
    const b = diskCase([write(1, 'd', 0, 4096), read(2, 'd', 0, 4096)]);
    const obs = observe(b);
    expect(opDivergences(b, withResult(obs, 2, ok(4096, runs(0, [4096, 'zero']))), 2)[0]).toMatchObject({ dataClass: 'zeroes', offset: 0 });
    expect(opDivergences(b, withResult(obs, 2, ok(4096, runs(0, [2048, 1], [2048, 'unknown']))), 2)[0]).toMatchObject({ dataClass: 'garbage', offset: 2048 });
    // A target that reports fewer runs than bytes read leaves bytes nobody vouches for.
    expect(opDivergences(b, withResult(obs, 2, ok(4096, runs(0, [1024, 1]))), 2)[0]).toMatchObject({ class: 'wrong-data', offset: 1024 });
  });

  it('the final content is judged: a lost write is a final-content divergence', () => {
    const b = diskCase([write(1, 'd', 8192, 4096)]);
    const obs = observe(b);
    const lost = structuredClone(obs);
    lost.final.d = { size: MiB, extents: runs(0, [MiB, 'zero']) };
    const d = judge(b, lost);
    expect(d.verdict).toBe('divergence');
    if (d.verdict === 'divergence') expect(d.divergences[0]).toMatchObject({ class: 'final-content', object: 'd', offset: 8192, dataClass: 'zeroes' });
  });
});

describe('EOF (read(2): a read at or past EOF returns 0; short counts only where EOF cuts)', () => {
  const prog = (...ops: ReturnType<typeof read>[]) => fileCase('ext4', [write(1, 'f', 0, 1000), ...ops]);

  it('a read across EOF returns the bytes up to EOF', () => {
    const b = prog(read(2, 'f', 500, 1000));
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 500, data: runs(0, [500, { op: 1, delta: 0 }]) });
    expect(allows(b, 2, ok(1000), obs)).toBe(false);
  });

  it('a read at EOF or past it returns 0', () => {
    const b = prog(read(2, 'f', 1000, 100), read(3, 'f', 5000, 100));
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 0 });
    expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 0 });
    expect(allows(b, 3, ok(100, runs(0, [100, 'zero'])), obs)).toBe(false);
  });

  it('a short read below EOF is a divergence of its own class', () => {
    const b = prog(read(2, 'f', 0, 1000));
    const d = opDivergences(b, withResult(observe(b), 2, ok(400, runs(0, [400, 1]))), 2);
    expect(d).toHaveLength(1);
    expect(d[0]).toMatchObject({ class: 'short-read', op: 2, offset: 400 });
  });

  it('io_uring and O_DIRECT get no licence for short reads below EOF (S2)', () => {
    const b = fileCase('btrfs', [write(1, 'f', 0, 8192, { direct: true }), read(2, 'f', 0, 8192, { via: 'io_uring', direct: true, buffer: { placement: 'anon', touchedPages: 1 } })]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 8192, data: runs(0, [8192, 1]) });
    expect(allows(b, 2, ok(4096, runs(0, [4096, 1])), obs)).toBe(false);
    expect(allows(b, 2, err('EAGAIN'), obs)).toBe(false);
  });

  it('a file grows to the end of the furthest write; a write past EOF leaves a hole of zeroes', () => {
    const b = fileCase('ext4', [write(1, 'f', 10000, 100), read(2, 'f', 0, 20000)]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 10100, data: runs(0, [10000, 'zero'], [100, 1]) });
    expect(obs.final.f!.size).toBe(10100);
    const wrongSize = structuredClone(obs);
    wrongSize.final.f = { size: 10000, extents: runs(0, [10000, 'zero']) };
    const d = judge(b, wrongSize);
    expect(d.verdict === 'divergence' && d.divergences.some((x) => x.class === 'size-mismatch')).toBe(true);
  });
});

describe('the end of a block device (blkdev_write_iter: ENOSPC at or past the end, truncated across it)', () => {
  const size = MiB;
  it('a write across the end is cut to what fits', () => {
    const b = diskCase([write(1, 'd', size - 512, 4096), read(2, 'd', size - 512, 4096)]);
    const obs = observe(b);
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 512 });
    expect(allows(b, 1, ok(4096), obs)).toBe(false);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 512, data: runs(0, [512, 1]) });
  });
  it('a write at or past the end fails with ENOSPC', () => {
    const b = diskCase([write(1, 'd', size, 512), write(2, 'd', size + 4096, 512)]);
    const obs = observe(b);
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: -1, errno: 'ENOSPC' });
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: -1, errno: 'ENOSPC' });
    expect(allows(b, 1, ok(512), obs)).toBe(false);
    expect(allows(b, 1, err('EIO'), obs)).toBe(false);
  });
  it('a read at the end returns 0, across it is cut', () => {
    const b = diskCase([read(1, 'd', size, 512), read(2, 'd', size - 1024, 4096)]);
    const obs = observe(b);
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 0 });
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 1024, data: runs(0, [1024, 'zero']) });
  });
});

describe('O_DIRECT alignment (open(2): aligned to the logical block size must work; misaligned may EINVAL or work)', () => {
  it('block device with 4 KiB sectors: aligned must succeed', () => {
    const b = diskCase([write(1, 'd', 8192, 4096, { direct: true }), read(2, 'd', 8192, 4096, { direct: true })], { lbs: 4096 });
    const obs = observe(b);
    expect(allows(b, 1, err('EINVAL'), obs)).toBe(false);
    expect(allows(b, 2, err('EINVAL'), obs)).toBe(false);
  });

  it('block device with 4 KiB sectors: offset, length or buffer misaligned may fail with EINVAL or succeed', () => {
    for (const w of [
      write(1, 'd', 512, 4096, { direct: true }),
      write(1, 'd', 0, 512, { direct: true }),
      write(1, 'd', 0, 4096, { direct: true, buffer: { placement: 'heap', align: 512 } }),
      write(1, 'd', 0, 8192, { direct: true, via: 'pvec', vectors: 3 }),
    ]) {
      const b = diskCase([w, read(2, 'd', 0, 8192)], { lbs: 4096 });
      const obs = observe(b);
      expect(allows(b, 1, err('EINVAL'), obs)).toBe(true);
      expect(allows(b, 1, ok((w as { length: number }).length), obs)).toBe(true);
      // EINVAL writes nothing: the read then finds zeroes, and must.
      const failed = withResult(obs, 1, err('EINVAL'));
      expect(opDivergences(b, withResult(failed, 2, ok(8192, runs(0, [8192, 'zero']))), 2)).toEqual([]);
      expect(opDivergences(b, withResult(failed, 2, ok(8192, runs(0, [8192, 1]))), 2)).toHaveLength(1);
    }
  });

  it('512-byte sectors: 512-aligned direct IO must succeed', () => {
    const b = diskCase([write(1, 'd', 512, 1536, { direct: true, buffer: { placement: 'heap', align: 512 } })]);
    expect(allows(b, 1, err('EINVAL'))).toBe(false);
  });

  it('a file: aligned to the filesystem block must succeed, misaligned may fail', () => {
    const b = fileCase('xfs', [write(1, 'f', 0, 8192, { direct: true }), write(2, 'f', 100, 4096, { direct: true })]);
    const obs = observe(b);
    expect(allows(b, 1, err('EINVAL'), obs)).toBe(false);
    expect(allows(b, 2, err('EINVAL'), obs)).toBe(true);
    expect(allows(b, 2, ok(4096), obs)).toBe(true);
  });

  it('loop: the rule follows the block size loop-set-block-size sets', () => {
    const layers = [...fileLayers('ext4', { fileSize: 4 * MiB }), { id: 'l', kind: 'loop' as const, on: 'f', directIo: true, logicalBlockSize: 512 as const }];
    const b = stackCase(layers, [
      write(1, 'l', 512, 512, { direct: true }),
      op('loop-set-block-size', 2, { target: 'l', size: 4096 }),
      write(3, 'l', 512, 512, { direct: true }),
      write(4, 'l', 4096, 4096, { direct: true }),
    ]);
    const obs = observe(b);
    expect(allows(b, 1, err('EINVAL'), obs)).toBe(false);
    expect(allows(b, 3, err('EINVAL'), obs)).toBe(true);
    expect(allows(b, 4, err('EINVAL'), obs)).toBe(false);
    // When the change was refused (EBUSY), the old 512-byte rule still holds.
    const refused = withResult(obs, 2, err('EBUSY'));
    expect(opDivergences(b, withResult(refused, 3, err('EINVAL')), 3)).toHaveLength(1);
  });
});

describe('RWF_NOWAIT (preadv2(2): EAGAIN when it would block; a short count when some data was ready)', () => {
  it('a read may return EAGAIN or fewer bytes, but not 0 bytes below EOF and not the wrong data', () => {
    const b = diskCase([write(1, 'd', 0, 8192), read(2, 'd', 0, 8192, { via: 'pvec', nowait: true })]);
    const obs = observe(b);
    expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 8192, data: runs(0, [8192, 1]) });
    expect(allows(b, 2, err('EAGAIN'), obs)).toBe(true);
    expect(allows(b, 2, ok(4096, runs(0, [4096, 1])), obs)).toBe(true);
    expect(allows(b, 2, ok(0), obs)).toBe(false);
    expect(allows(b, 2, ok(4096, runs(0, [4096, 'zero'])), obs)).toBe(false);
    expect(allows(b, 2, err('EIO'), obs)).toBe(false);
  });

  it('io_uring with nowait: the same', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 8192), read(2, 'f', 0, 8192, { via: 'io_uring', nowait: true })]);
    expect(allows(b, 2, err('EAGAIN'))).toBe(true);
    expect(allows(b, 2, ok(100, runs(0, [100, 1])))).toBe(true);
  });

  it('without nowait there is no EAGAIN', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 8192), read(2, 'f', 0, 8192, { via: 'io_uring' })]);
    expect(allows(b, 2, err('EAGAIN'))).toBe(false);
  });

  it('a write that answered EAGAIN wrote nothing', () => {
    const b = diskCase([write(1, 'd', 0, 4096, { via: 'pvec', nowait: true }), read(2, 'd', 0, 4096)]);
    const obs = withResult(observe(b), 1, err('EAGAIN'));
    expect(opDivergences(b, withResult(obs, 2, ok(4096, runs(0, [4096, 'zero']))), 2)).toEqual([]);
    expect(opDivergences(b, withResult(obs, 2, ok(4096, runs(0, [4096, 1]))), 2)).toHaveLength(1);
  });
});

describe('buffers', () => {
  it('anon with k touched pages: a write sends the pattern from touched pages and zeroes from the rest', () => {
    const b = diskCase([write(1, 'd', 0, 3 * PAGE, { buffer: { placement: 'anon', touchedPages: 1 } }), read(2, 'd', 0, 3 * PAGE)]);
    expect(resultOf(observe(b), 2)).toEqual({ op: 2, ret: 3 * PAGE, data: runs(0, [PAGE, 1], [2 * PAGE, 'zero']) });
  });

  it('anon with an offset into the first page: only the rest of that page carries the pattern', () => {
    const b = diskCase([write(1, 'd', 0, 2 * PAGE, { buffer: { placement: 'anon', touchedPages: 1, align: 512 } }), read(2, 'd', 0, 2 * PAGE)]);
    expect(resultOf(observe(b), 2)).toEqual({ op: 2, ret: 2 * PAGE, data: runs(0, [PAGE - 512, 1], [PAGE + 512, 'zero']) });
  });

  it('anon with no touched page writes zeroes; all touched writes the pattern', () => {
    let b = diskCase([write(1, 'd', 0, PAGE, { buffer: { placement: 'anon', touchedPages: 0 } }), read(2, 'd', 0, PAGE)]);
    expect(resultOf(observe(b), 2).data).toEqual(runs(0, [PAGE, 'zero']));
    b = diskCase([write(1, 'd', 0, 2 * PAGE, { buffer: { placement: 'anon', touchedPages: 2 } }), read(2, 'd', 0, 2 * PAGE)]);
    expect(resultOf(observe(b), 2).data).toEqual(runs(0, [2 * PAGE, 1]));
  });

  it('a read into untouched anon pages returns the data like any read (S2)', () => {
    const b = fileCase('ext4', [write(1, 'f', 0, 4 * PAGE), read(2, 'f', 0, 4 * PAGE, { direct: true, via: 'io_uring', buffer: { placement: 'anon', touchedPages: 1 } })]);
    expect(resultOf(observe(b), 2)).toEqual({ op: 2, ret: 4 * PAGE, data: runs(0, [4 * PAGE, 1]) });
  });

  it('mmap of a file: a write sends that file\'s bytes (moved to where they land)', () => {
    const b = fileCase('ext4', [
      write(1, 'g', 0, 2 * PAGE),
      write(2, 'f', 8192, 2 * PAGE, { buffer: { placement: 'mmap', file: 'g', offset: 0 } }),
      read(3, 'f', 8192, 2 * PAGE),
    ], { extraFiles: 1 });
    // Byte i of f at 8192+i is g's byte i, which op 1 wrote at address i: delta -8192.
    expect(resultOf(observe(b), 3)).toEqual({ op: 3, ret: 2 * PAGE, data: runs(0, [2 * PAGE, { op: 1, delta: -8192 }]) });
    passes(b);
  });

  it('mmap of a file: a read lands in the mapped file', () => {
    const b = fileCase('ext4', [
      write(1, 'g', 0, 2 * PAGE),
      write(2, 'f', 0, 2 * PAGE),
      read(3, 'f', 0, 2 * PAGE, { buffer: { placement: 'mmap', file: 'g', offset: 0 } }),
      read(4, 'g', 0, 2 * PAGE),
    ], { extraFiles: 1 });
    const obs = observe(b);
    expect(resultOf(obs, 4)).toEqual({ op: 4, ret: 2 * PAGE, data: runs(0, [2 * PAGE, 2]) });
    expect(obs.final.g).toEqual({ size: 2 * PAGE, extents: runs(0, [2 * PAGE, 2]) });
    // The old content of g is gone.
    expect(allows(b, 4, ok(2 * PAGE, runs(0, [2 * PAGE, 1])), obs)).toBe(false);
    passes(b);
  });

  it('mmap buffer past the mapped file\'s EOF: EFAULT is allowed', () => {
    const b = fileCase('ext4', [write(1, 'g', 0, PAGE), write(2, 'f', 0, 3 * PAGE, { buffer: { placement: 'mmap', file: 'g', offset: 0 } })], { extraFiles: 1 });
    expect(allows(b, 2, err('EFAULT'))).toBe(true);
    const inside = fileCase('ext4', [write(1, 'g', 0, 2 * PAGE), write(2, 'f', 0, PAGE, { buffer: { placement: 'mmap', file: 'g', offset: 0 } })], { extraFiles: 1 });
    expect(allows(inside, 2, err('EFAULT'))).toBe(false);
  });
});
