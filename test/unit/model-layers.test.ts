/**
 * Each layer kind in the model: the geometry it states (exact where the
 * kernel's rule is fixed, bounds where the kernel decides), what a fresh
 * device reads as, and the faults it injects. Expectations come from the
 * kernel's documentation of each target (Documentation/admin-guide/
 * device-mapper/*.rst, md(4), loop(4), losetup(8), scsi_debug), not from
 * what the model happens to return.
 */
import { describe, expect, it } from 'vitest';
import type { Observation } from '../../model/index.ts';
import {
  type Built,
  type LayerInput,
  MiB,
  allows,
  divergences,
  err,
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

const nop = [op('sleep', 99, { ms: 0 })];

function geometry(layers: LayerInput[], id: string) {
  return stackCase(layers, nop).info.geometry(id)!;
}

/** Judge a run in which the kernel chose this geometry for `id`. */
function geometryVerdict(layers: LayerInput[], id: string, g: { size: number; logicalBlockSize: number; physicalBlockSize: number }) {
  const b = stackCase(layers, nop);
  const obs: Observation = { ...observe(b), geometry: { [id]: g } };
  return divergences(b, obs).filter((d) => d.class === 'geometry');
}

const disk = (id: string, size: number, lbs: 512 | 4096 = 512): LayerInput => ({ id, kind: 'disk', size, logicalBlockSize: lbs });

describe('geometry', () => {
  it('disk: the size and sector sizes the case gives', () => {
    expect(geometry([disk('d', 8 * MiB)], 'd')).toEqual({ sizeMin: 8 * MiB, sizeMax: 8 * MiB, logicalBlockSizes: [512], physicalBlockSize: 512 });
    expect(geometry([{ id: 'd', kind: 'disk', size: 8 * MiB, logicalBlockSize: 512, physicalBlockSize: 4096 }], 'd')).toEqual({
      sizeMin: 8 * MiB, sizeMax: 8 * MiB, logicalBlockSizes: [512], physicalBlockSize: 4096,
    });
    expect(geometry([disk('d', 8 * MiB, 4096)], 'd').logicalBlockSizes).toEqual([4096]);
  });

  it('scsi-debug: whole MiB, 512 or 4096 sectors', () => {
    expect(geometry([{ id: 's', kind: 'scsi-debug', size: 16 * MiB, logicalBlockSize: 4096, dif: 1, dix: true }], 's')).toEqual({
      sizeMin: 16 * MiB, sizeMax: 16 * MiB, logicalBlockSizes: [4096], physicalBlockSize: 4096,
    });
  });

  it('file: its initial size; fs: no block geometry of its own', () => {
    const layers = fileLayers('ext4', { fileSize: 12345 });
    expect(geometry(layers, 'f').sizeMin).toBe(12345);
    expect(geometry(layers, 'f').sizeMax).toBe(12345);
    expect(stackCase(layers, nop).info.geometry('fs')).toBeUndefined();
  });

  describe('loop (loop(4): size = backing size - offset, capped by sizelimit, in 512-byte sectors)', () => {
    const base = fileLayers('ext4', { fileSize: 4 * MiB });
    it('over a whole file', () => {
      const g = geometry([...base, { id: 'l', kind: 'loop', on: 'f', directIo: true }], 'l');
      expect([g.sizeMin, g.sizeMax]).toEqual([4 * MiB, 4 * MiB]);
    });
    it('with an offset', () => {
      const g = geometry([...base, { id: 'l', kind: 'loop', on: 'f', offset: MiB }], 'l');
      expect([g.sizeMin, g.sizeMax]).toEqual([3 * MiB, 3 * MiB]);
    });
    it('with an offset and a size limit', () => {
      const g = geometry([...base, { id: 'l', kind: 'loop', on: 'f', offset: 4096, sizeLimit: MiB, logicalBlockSize: 4096 }], 'l');
      expect([g.sizeMin, g.sizeMax]).toEqual([MiB, MiB]);
      expect(g.logicalBlockSizes).toEqual([4096]);
    });
    it('with the block size left to the kernel: 512 or what the backing store wants for direct IO', () => {
      const layers = [...base, { id: 'l', kind: 'loop', on: 'f', directIo: true } as LayerInput];
      const g = geometry(layers, 'l');
      expect(g.logicalBlockSizes).toContain(512);
      expect(g.logicalBlockSizes).toContain(4096);
      // Either choice is plausible; a block size no backing store asks for is not.
      expect(geometryVerdict(layers, 'l', { size: 4 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toEqual([]);
      expect(geometryVerdict(layers, 'l', { size: 4 * MiB, logicalBlockSize: 4096, physicalBlockSize: 4096 })).toEqual([]);
      expect(geometryVerdict(layers, 'l', { size: 4 * MiB, logicalBlockSize: 2048, physicalBlockSize: 2048 })).toHaveLength(1);
      expect(geometryVerdict(layers, 'l', { size: 4 * MiB - 512, logicalBlockSize: 512, physicalBlockSize: 512 })).toHaveLength(1);
    });
    it('a block size the case sets is the only one allowed', () => {
      const layers = [...base, { id: 'l', kind: 'loop', on: 'f', logicalBlockSize: 1024 } as LayerInput];
      expect(geometry(layers, 'l').logicalBlockSizes).toEqual([1024]);
      expect(geometryVerdict(layers, 'l', { size: 4 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toHaveLength(1);
    });
    it('over a block device', () => {
      const g = geometry([disk('d', 8 * MiB, 4096), { id: 'l', kind: 'loop', on: 'd' }], 'l');
      expect([g.sizeMin, g.sizeMax]).toEqual([8 * MiB, 8 * MiB]);
    });
  });

  describe('md (md(4); the data offset mdadm picks is read back)', () => {
    it('raid0 of equal members: at most n x member rounded down to the chunk', () => {
      const layers: LayerInput[] = [disk('a', 8 * MiB), disk('b', 8 * MiB), { id: 'm', kind: 'md', level: 0, members: ['a', 'b'], chunk: 65536 }];
      const g = geometry(layers, 'm');
      expect(g.sizeMax).toBe(16 * MiB);
      expect(g.sizeMin).toBeLessThanOrEqual(14 * MiB);
      expect(geometryVerdict(layers, 'm', { size: 14 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toEqual([]);
      expect(geometryVerdict(layers, 'm', { size: 16 * MiB + 65536, logicalBlockSize: 512, physicalBlockSize: 512 })).toHaveLength(1);
    });
    it('raid0 of unequal members uses the larger member\'s extra space in a further zone', () => {
      // md(4): "once the smallest device has been exhausted, the RAID0 driver starts collecting
      // chunks into smaller stripes that only span the drives which still have remaining space."
      const layers: LayerInput[] = [disk('a', 8 * MiB), disk('b', 12 * MiB), { id: 'm', kind: 'md', level: 0, members: ['a', 'b'], chunk: 65536 }];
      expect(geometry(layers, 'm').sizeMax).toBe(20 * MiB);
      // 1 MiB data offset on each member: 7 + 11 MiB.
      expect(geometryVerdict(layers, 'm', { size: 18 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toEqual([]);
    });
    it('raid1: at most the smallest member', () => {
      const layers: LayerInput[] = [disk('a', 8 * MiB), disk('b', 12 * MiB), { id: 'm', kind: 'md', level: 1, members: ['a', 'b'] }];
      expect(geometry(layers, 'm').sizeMax).toBe(8 * MiB);
      expect(geometryVerdict(layers, 'm', { size: 7 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toEqual([]);
      expect(geometryVerdict(layers, 'm', { size: 9 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toHaveLength(1);
    });
    it('takes the largest logical block size of its members', () => {
      const g = geometry([disk('a', 8 * MiB, 4096), disk('b', 8 * MiB), { id: 'm', kind: 'md', level: 1, members: ['a', 'b'] }], 'm');
      expect(g.logicalBlockSizes).toEqual([4096]);
    });
  });

  it('dm-linear: the window <offset, length> of its device (dm-linear.rst)', () => {
    expect(geometry([disk('d', 8 * MiB), { id: 'x', kind: 'dm-linear', on: 'd', offset: MiB, length: 2 * MiB }], 'x')).toMatchObject({ sizeMin: 2 * MiB, sizeMax: 2 * MiB });
    expect(geometry([disk('d', 8 * MiB), { id: 'x', kind: 'dm-linear', on: 'd', offset: MiB }], 'x')).toMatchObject({ sizeMin: 7 * MiB, sizeMax: 7 * MiB });
  });

  it('dm-stripe: n x the smallest member rounded down to the chunk (dm-stripe needs equal parts)', () => {
    const g = geometry([disk('a', 8 * MiB), disk('b', 12 * MiB + 512), { id: 'x', kind: 'dm-stripe', members: ['a', 'b'], chunk: 65536 }], 'x');
    expect([g.sizeMin, g.sizeMax]).toEqual([16 * MiB, 16 * MiB]);
  });

  it('dm-crypt: the device, in whole crypt sectors, whose size is the logical block size (dm-crypt.rst sector_size)', () => {
    const g = geometry([disk('d', 8 * MiB), { id: 'x', kind: 'dm-crypt', on: 'd', sectorSize: 4096 }], 'x');
    expect(g).toEqual({ sizeMin: 8 * MiB, sizeMax: 8 * MiB, logicalBlockSizes: [4096], physicalBlockSize: 4096 });
  });

  it('dm-integrity and AEAD dm-crypt on it: the kernel sizes the tag area, the size is read back within bounds', () => {
    const layers: LayerInput[] = [
      disk('d', 16 * MiB),
      { id: 'i', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28 },
      { id: 'x', kind: 'dm-crypt', on: 'i', integrity: 'gcm' },
    ];
    const gi = geometry(layers, 'i');
    expect(gi.sizeMax).toBe(16 * MiB);
    expect(gi.sizeMin).toBeGreaterThan(0);
    expect(gi.sizeMin).toBeLessThan(16 * MiB);
    expect(geometryVerdict(layers, 'i', { size: 15 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toEqual([]);
    expect(geometryVerdict(layers, 'i', { size: 17 * MiB, logicalBlockSize: 512, physicalBlockSize: 512 })).toHaveLength(1);
  });

  it('dm-flakey, dm-dust, snapshot origin and snapshot: the geometry of the device below', () => {
    const below = { sizeMin: 8 * MiB, sizeMax: 8 * MiB, logicalBlockSizes: [4096], physicalBlockSize: 4096 };
    expect(geometry([disk('d', 8 * MiB, 4096), { id: 'x', kind: 'dm-flakey', on: 'd', upSeconds: 1, downSeconds: 1 }], 'x')).toEqual(below);
    expect(geometry([disk('d', 8 * MiB, 4096), { id: 'x', kind: 'dm-dust', on: 'd', blockSize: 4096, badBlocks: [1] }], 'x')).toEqual(below);
    const snap: LayerInput[] = [
      disk('d', 8 * MiB, 4096),
      { id: 'o', kind: 'dm-snapshot-origin', on: 'd' },
      disk('c', 10 * MiB, 4096),
      { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'c' },
    ];
    expect(geometry(snap, 'o')).toEqual(below);
    expect(geometry(snap, 's')).toEqual(below);
  });
});

/** Read the first 4 KiB and 64 KiB..68 KiB of `top` before anything is written, as the model predicts. */
function freshReads(layers: LayerInput[], top: string): { b: Built; obs: Observation } {
  const b = stackCase(layers, [read(1, top, 0, 4096), read(2, top, 65536, 4096)]);
  return { b, obs: observe(b) };
}

describe('initial content', () => {
  it('a disk reads as zeroes, and only zeroes', () => {
    const { b, obs } = freshReads([disk('d', 8 * MiB)], 'd');
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 4096, data: runs(0, [4096, 'zero']) });
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(false);
    expect(allows(b, 1, err('EIO'), obs)).toBe(false);
  });

  it('a file (a hole) reads as zeroes', () => {
    const b = stackCase(fileLayers('xfs', { fileSize: 8192 }), [read(1, 'f', 0, 8192)]);
    expect(resultOf(observe(b), 1)).toEqual({ op: 1, ret: 8192, data: runs(0, [8192, 'zero']) });
  });

  it('unwiped plain dm-crypt reads as noise (any bytes, no error)', () => {
    const { b, obs } = freshReads([disk('d', 8 * MiB), { id: 'x', kind: 'dm-crypt', on: 'd' }], 'x');
    expect(resultOf(obs, 1).ret).toBe(4096);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(true);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'zero'])), obs)).toBe(true);
    expect(allows(b, 1, err('EIO'), obs)).toBe(false);
  });

  it('wiped dm-crypt reads as zeroes', () => {
    const { b, obs } = freshReads([disk('d', 8 * MiB), { id: 'x', kind: 'dm-crypt', on: 'd', wipe: true }], 'x');
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 4096, data: runs(0, [4096, 'zero']) });
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(false);
  });

  const aead = (wipe: boolean): LayerInput[] => [
    disk('d', 16 * MiB),
    { id: 'i', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28 },
    { id: 'x', kind: 'dm-crypt', on: 'i', integrity: 'gcm', wipe },
  ];

  it('unwiped AEAD dm-crypt: never-written sectors fail their tag check, and must (no data)', () => {
    const { b, obs } = freshReads(aead(false), 'x');
    expect(resultOf(obs, 1).ret).toBe(-1);
    expect(allows(b, 1, err('EIO'), obs)).toBe(true);
    expect(allows(b, 1, err('EILSEQ'), obs)).toBe(true);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'zero'])), obs)).toBe(false);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(false);
  });

  it('unwiped plain dm-crypt over unwiped AEAD dm-crypt: the failing read below fails here too, never noise', () => {
    const { b, obs } = freshReads([...aead(false), { id: 'p', kind: 'dm-crypt', on: 'x' }], 'p');
    expect(resultOf(obs, 1).ret).toBe(-1);
    expect(allows(b, 1, err('EIO'), obs)).toBe(true);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(false);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'zero'])), obs)).toBe(false);
  });

  it('unwiped plain dm-crypt over a raid0 of wiped and unwiped AEAD members: noise or an error', () => {
    const { b, obs } = freshReads(
      [
        disk('d1', 16 * MiB), disk('d2', 16 * MiB),
        { id: 'i1', kind: 'dm-integrity', on: 'd1', internalHash: 'none', tagSize: 28 },
        { id: 'i2', kind: 'dm-integrity', on: 'd2', internalHash: 'none', tagSize: 28 },
        { id: 'x1', kind: 'dm-crypt', on: 'i1', integrity: 'gcm', wipe: true },
        { id: 'x2', kind: 'dm-crypt', on: 'i2', integrity: 'gcm', wipe: false },
        { id: 'm', kind: 'md', level: 0, members: ['x1', 'x2'] },
        { id: 'p', kind: 'dm-crypt', on: 'm' },
      ],
      'p',
    );
    expect(allows(b, 1, err('EIO'), obs)).toBe(true);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(true);
  });

  it('wiped AEAD dm-crypt reads as zeroes', () => {
    const { b, obs } = freshReads(aead(true), 'x');
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 4096, data: runs(0, [4096, 'zero']) });
    expect(allows(b, 1, err('EIO'), obs)).toBe(false);
  });

  it('unwiped dm-integrity with its own hash: errors; wiped: zeroes', () => {
    let { b, obs } = freshReads([disk('d', 8 * MiB), { id: 'i', kind: 'dm-integrity', on: 'd' }], 'i');
    expect(resultOf(obs, 1).ret).toBe(-1);
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'zero'])), obs)).toBe(false);
    ({ b, obs } = freshReads([disk('d', 8 * MiB), { id: 'i', kind: 'dm-integrity', on: 'd', wipe: true }], 'i'));
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 4096, data: runs(0, [4096, 'zero']) });
  });

  it('pass-through layers show what is below (dm-linear over unwiped plain dm-crypt: noise)', () => {
    const { b, obs } = freshReads([disk('d', 8 * MiB), { id: 'c', kind: 'dm-crypt', on: 'd' }, { id: 'x', kind: 'dm-linear', on: 'c' }], 'x');
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(true);
  });

  it('md raid0 over unwiped plain dm-crypt members reads the members\' noise', () => {
    const layers: LayerInput[] = [
      disk('a', 8 * MiB), { id: 'ca', kind: 'dm-crypt', on: 'a' },
      disk('b', 8 * MiB), { id: 'cb', kind: 'dm-crypt', on: 'b' },
      { id: 'm', kind: 'md', level: 0, members: ['ca', 'cb'] },
    ];
    const { b, obs } = freshReads(layers, 'm');
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(true);
  });

  it('dm-stripe whose second member is unwiped plain dm-crypt reads noise in that member\'s chunks', () => {
    const layers: LayerInput[] = [
      disk('a', 8 * MiB), disk('b', 8 * MiB), { id: 'cb', kind: 'dm-crypt', on: 'b' },
      { id: 'x', kind: 'dm-stripe', members: ['a', 'cb'], chunk: 65536 },
    ];
    const { b, obs } = freshReads(layers, 'x');
    // Chunk 1 (64 KiB..128 KiB) is on 'cb'.
    expect(allows(b, 2, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(true);
  });

  it('md over disks reads as zeroes', () => {
    const { b, obs } = freshReads([disk('a', 8 * MiB), disk('b', 8 * MiB), { id: 'm', kind: 'md', level: 1, members: ['a', 'b'] }], 'm');
    expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 4096, data: runs(0, [4096, 'zero']) });
    expect(allows(b, 1, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(false);
  });

  it('write-then-read round-trips on every block layer kind', () => {
    const tops: Array<[string, LayerInput[], string]> = [
      ['disk', [disk('d', 8 * MiB)], 'd'],
      ['scsi-debug', [{ id: 's', kind: 'scsi-debug', size: 8 * MiB, dif: 1, dix: true }], 's'],
      ['loop', [...fileLayers('ext4', { fileSize: 4 * MiB }), { id: 'l', kind: 'loop', on: 'f', directIo: true }], 'l'],
      ['raid0', [disk('a', 8 * MiB), disk('b', 8 * MiB), { id: 'm', kind: 'md', level: 0, members: ['a', 'b'] }], 'm'],
      ['raid1', [disk('a', 8 * MiB), disk('b', 8 * MiB), { id: 'm', kind: 'md', level: 1, members: ['a', 'b'] }], 'm'],
      ['dm-linear', [disk('d', 8 * MiB), { id: 'x', kind: 'dm-linear', on: 'd', offset: MiB, length: 2 * MiB }], 'x'],
      ['dm-stripe', [disk('a', 8 * MiB), disk('b', 8 * MiB), { id: 'x', kind: 'dm-stripe', members: ['a', 'b'] }], 'x'],
      ['dm-crypt', [disk('d', 8 * MiB), { id: 'x', kind: 'dm-crypt', on: 'd' }], 'x'],
      ['aead', aead(false), 'x'],
      ['dm-integrity', [disk('d', 8 * MiB), { id: 'i', kind: 'dm-integrity', on: 'd' }], 'i'],
      ['dm-flakey (up)', [disk('d', 8 * MiB), { id: 'x', kind: 'dm-flakey', on: 'd', upSeconds: 3600, downSeconds: 0 }], 'x'],
      ['dm-dust', [disk('d', 8 * MiB), { id: 'x', kind: 'dm-dust', on: 'd', badBlocks: [1000] }], 'x'],
      ['origin', [disk('d', 8 * MiB), { id: 'x', kind: 'dm-snapshot-origin', on: 'd' }], 'x'],
    ];
    for (const [name, layers, top] of tops) {
      const b = stackCase(layers, [write(1, top, 8192, 16384, { direct: true }), read(2, top, 8192, 16384, { direct: true })]);
      const obs = observe(b);
      expect(resultOf(obs, 1), name).toEqual({ op: 1, ret: 16384 });
      expect(resultOf(obs, 2), name).toEqual({ op: 2, ret: 16384, data: runs(0, [16384, 1]) });
      // Nothing else is allowed: not zeroes, not an error.
      expect(allows(b, 2, ok(16384, runs(0, [16384, 'zero'])), obs), name).toBe(false);
      expect(allows(b, 2, err('EIO'), obs), name).toBe(false);
      expect(judge(b, obs).verdict, name).toBe('pass');
    }
  });
});

describe('faults', () => {
  describe('dm-dust (dm-dust.rst: reads of bad blocks fail with EIO; a write removes the block from the list)', () => {
    const layers = (blockSize: 512 | 4096, badBlocks: number[], enabled = true): LayerInput[] => [
      disk('d', 8 * MiB),
      { id: 'x', kind: 'dm-dust', on: 'd', blockSize, badBlocks, enabled },
    ];

    it('a read of a bad block fails; data there is wrong', () => {
      const b = stackCase(layers(512, [2, 3]), [read(1, 'x', 1024, 1024, { direct: true }), read(2, 'x', 8192, 1024, { direct: true })]);
      const obs = observe(b);
      expect(resultOf(obs, 1)).toEqual({ op: 1, ret: -1, errno: 'EIO' });
      expect(allows(b, 1, ok(1024, runs(0, [1024, 'zero'])), obs)).toBe(false);
      expect(opDivergences(b, withResult(obs, 1, ok(1024, runs(0, [1024, 'zero']))), 1)[0]).toMatchObject({ class: 'wrong-data', dataClass: 'data-instead-of-error' });
      // Good blocks in other pages read normally, and must. (Within the same page the model
      // allows EIO: buffered IO and loop devices read whole pages.)
      expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 1024, data: runs(0, [1024, 'zero']) });
      expect(allows(b, 2, err('EIO'), obs)).toBe(false);
    });

    it('the read-back may find a whole read unit unreadable when part of it may fail, and no more', () => {
      // 512-byte dust block 1 is bad. Above it: dm-crypt with 4 KiB sectors (unit: its logical block),
      // or a loop device with 2 KiB blocks (unit: a page, as a loop may read its backing through the page cache).
      const tops: Array<[string, LayerInput, number]> = [
        ['dm-crypt', { id: 't', kind: 'dm-crypt', on: 'x', sectorSize: 4096 }, 4096],
        ['loop', { id: 't', kind: 'loop', on: 'x', logicalBlockSize: 2048 }, 4096],
      ];
      for (const [name, top, unit] of tops) {
        const b = stackCase([...layers(512, [1]), top], [read(1, 't', 65536, 512, { direct: true })]);
        const obs = observe(b);
        const size = obs.final.t!.size;
        const withFinal = (bad: number): Observation => ({ ...obs, final: { ...obs.final, t: { ...obs.final.t!, extents: runs(0, [bad, 'error'], [size - bad, 'zero']) } } });
        expect(judge(b, withFinal(unit)).verdict, name).toBe('pass');
        const bad = judge(b, withFinal(2 * unit));
        expect(bad.verdict, name).toBe('divergence');
        expect(bad.verdict === 'divergence' && bad.divergences[0], name).toMatchObject({ class: 'final-content', object: 't', offset: unit });
      }
    });

    it('a reloaded dust table starts with no bad blocks (dm-dust.rst: the list is empty until messages fill it)', () => {
      const ops = (reload: boolean) => [
        read(1, 'x', 512, 512, { direct: true }),
        { kind: 'dm-suspend', id: 2, target: 'x' },
        ...(reload ? [{ kind: 'dm-reload', id: 3, target: 'x' }] : []),
        { kind: 'dm-resume', id: 4, target: 'x' },
        read(5, 'x', 512, 512, { direct: true }),
      ] as Parameters<typeof stackCase>[1];
      const b = stackCase(layers(512, [1]), ops(true));
      const obs = observe(b);
      expect(resultOf(obs, 1)).toEqual({ op: 1, ret: -1, errno: 'EIO' });
      expect(resultOf(obs, 5)).toEqual({ op: 5, ret: 512, data: runs(0, [512, 'zero']) });
      expect(allows(b, 5, err('EIO'), obs)).toBe(false);
      // A resume without a reload keeps the list.
      const kept = stackCase(layers(512, [1]), ops(false));
      expect(resultOf(observe(kept), 5)).toEqual({ op: 5, ret: -1, errno: 'EIO' });
    });

    it('a written bad block reads back the write', () => {
      const b = stackCase(layers(512, [2]), [write(1, 'x', 1024, 512, { direct: true }), read(2, 'x', 1024, 512, { direct: true })]);
      const obs = observe(b);
      expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 512, data: runs(0, [512, 1]) });
      expect(allows(b, 2, err('EIO'), obs)).toBe(false);
      expect(judge(b, obs).verdict).toBe('pass');
    });

    it('a write to part of a bad block removes the whole block: the rest reads what was below', () => {
      // 4 KiB dust blocks on a 512-byte-sector disk; block 1 is [4096, 8192).
      const b = stackCase(layers(4096, [1]), [write(1, 'x', 4096, 512, { direct: true }), read(2, 'x', 4096, 4096, { direct: true })]);
      const obs = observe(b);
      expect(allows(b, 2, ok(4096, runs(0, [512, 1], [3584, 'zero'])), obs)).toBe(true);
      expect(allows(b, 2, ok(4096, runs(0, [512, 1], [3584, 'unknown'])), obs)).toBe(false);
    });

    it('a discard may leave bad blocks bad (dm-dust clears only the block a bio starts in)', () => {
      const b = stackCase(layers(512, [2, 3]), [op('discard', 1, { target: 'x', offset: 1024, length: 1024 }), read(2, 'x', 1536, 512, { direct: true })]);
      const obs = observe(b);
      expect(allows(b, 2, err('EIO'), obs)).toBe(true);
      expect(allows(b, 2, ok(512, runs(0, [512, 'zero'])), obs)).toBe(true);
    });

    it('zeroout clears the bad blocks it touches, whole: zeroes after it', () => {
      const b = stackCase(layers(4096, [1]), [op('discard', 1, { target: 'x', offset: 4096, length: 512, mode: 'zeroout' }), read(2, 'x', 4096, 4096, { direct: true })]);
      const obs = observe(b);
      expect(resultOf(obs, 2)).toEqual({ op: 2, ret: 4096, data: runs(0, [4096, 'zero']) });
      expect(allows(b, 2, err('EIO'), obs)).toBe(false);
    });

    it('a disabled list fails nothing', () => {
      const b = stackCase(layers(512, [2], false), [read(1, 'x', 1024, 512, { direct: true })]);
      const obs = observe(b);
      expect(resultOf(obs, 1)).toEqual({ op: 1, ret: 512, data: runs(0, [512, 'zero']) });
      expect(allows(b, 1, err('EIO'), obs)).toBe(false);
    });

    it('bad blocks map up through dm-linear with an offset', () => {
      const b = stackCase(
        [...layers(512, [10]), { id: 'y', kind: 'dm-linear', on: 'x', offset: 4096 }],
        [read(1, 'y', 1024, 512, { direct: true }), read(2, 'y', 8192, 512, { direct: true })],
      );
      const obs = observe(b);
      // Block 10 of the dust device ([5120, 5632)) is [1024, 1536) of the linear device.
      expect(resultOf(obs, 1).ret).toBe(-1);
      expect(allows(b, 1, ok(512, runs(0, [512, 'zero'])), obs)).toBe(false);
      expect(allows(b, 2, err('EIO'), obs)).toBe(false);
    });
  });

  describe('dm-flakey (dm-flakey.rst)', () => {
    const flakey = (mode: string, up = 1, down = 1): LayerInput[] => [disk('d', 8 * MiB), { id: 'x', kind: 'dm-flakey', on: 'd', upSeconds: up, downSeconds: down, mode } as LayerInput];
    const prog = [write(1, 'x', 0, 4096, { direct: true }), write(2, 'x', 4096, 4096, { direct: true }), read(3, 'x', 0, 4096, { direct: true })];

    it('error: any IO may fail with EIO; a read that succeeds returns the right data, never another op\'s', () => {
      const b = stackCase(flakey('error'), prog);
      const obs = observe(b);
      expect(resultOf(obs, 3)).toEqual({ op: 3, ret: 4096, data: runs(0, [4096, 1]) });
      expect(allows(b, 1, err('EIO'), obs)).toBe(true);
      expect(allows(b, 3, err('EIO'), obs)).toBe(true);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 2])), obs)).toBe(false);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(false);
      // A write that failed may or may not have landed: old (zeroes) or new data, nothing else.
      const failed = withResult(obs, 1, err('EIO'));
      expect(opDivergences(b, withResult(failed, 3, ok(4096, runs(0, [4096, 'zero']))), 3)).toEqual([]);
      expect(opDivergences(b, withResult(failed, 3, ok(4096, runs(0, [4096, 1]))), 3)).toEqual([]);
      expect(opDivergences(b, withResult(failed, 3, ok(4096, runs(0, [4096, 2]))), 3)).toHaveLength(1);
    });

    it('error-writes: writes may fail, reads may not', () => {
      const b = stackCase(flakey('error-writes'), prog);
      const obs = observe(b);
      expect(allows(b, 1, err('EIO'), obs)).toBe(true);
      expect(allows(b, 3, err('EIO'), obs)).toBe(false);
    });

    it('drop-writes: a write that "succeeded" may be missing, so old or new data, never another op\'s', () => {
      const b = stackCase(flakey('drop-writes'), prog);
      const obs = observe(b);
      expect(allows(b, 1, err('EIO'), obs)).toBe(false);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 1])), obs)).toBe(true);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 'zero'])), obs)).toBe(true);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 2])), obs)).toBe(false);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 'unknown'])), obs)).toBe(false);
    });

    it('corrupt-reads: a read may come back with damaged bytes, but not as another op\'s data', () => {
      const b = stackCase(flakey('corrupt-reads', 0, 10), prog);
      const obs = observe(b);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 1])), obs)).toBe(true);
      // corrupt_bio_byte replaces one byte per bio.
      expect(allows(b, 3, ok(4096, runs(0, [100, 1], [1, 'unknown'], [3995, 1])), obs)).toBe(true);
      expect(allows(b, 3, ok(4096, runs(0, [100, 1], [1, 'zero'], [3995, 1])), obs)).toBe(true);
      expect(allows(b, 3, ok(4096, runs(0, [4096, 2])), obs)).toBe(false);
      expect(allows(b, 1, err('EIO'), obs)).toBe(false);
    });

    it('no down time: no faults at all', () => {
      const b = stackCase(flakey('error', 3600, 0), prog);
      const obs = observe(b);
      expect(allows(b, 1, err('EIO'), obs)).toBe(false);
      expect(allows(b, 3, err('EIO'), obs)).toBe(false);
    });
  });

  describe('corrupt (damage under a layer, behind its back)', () => {
    it('over part of a page that may not read (unwiped integrity), the op itself may fail with EIO; whole blocks may not', () => {
      const layers: LayerInput[] = [disk('d', 8 * MiB), { id: 'i', kind: 'dm-integrity', on: 'd' }, { id: 'lin', kind: 'dm-linear', on: 'i' }];
      const partial = stackCase(layers, [op('corrupt', 1, { target: 'i', offset: 4096 + 100, length: 1000 })]);
      expect(allows(partial, 1, err('EIO'), observe(partial))).toBe(true);
      const whole = stackCase(layers, [op('corrupt', 1, { target: 'i', offset: 4096, length: 4096 })]);
      expect(allows(whole, 1, err('EIO'), observe(whole))).toBe(false);
      // Over a plain disk every page reads: no EIO either way.
      const plain = stackCase([disk('d', 8 * MiB), { id: 'lin', kind: 'dm-linear', on: 'd' }], [op('corrupt', 1, { target: 'd', offset: 4096 + 100, length: 1000 })]);
      expect(allows(plain, 1, err('EIO'), observe(plain))).toBe(false);
    });

    it('a snapshot copy-out of a chunk that may not read may fail the origin write (EIO), and only then', () => {
      const layers: LayerInput[] = [
        disk('d', 8 * MiB),
        { id: 'x', kind: 'dm-dust', on: 'd', blockSize: 4096, badBlocks: [1] },
        { id: 'o', kind: 'dm-snapshot-origin', on: 'x' },
        disk('c', 10 * MiB),
        { id: 's', kind: 'dm-snapshot', origin: 'o', cow: 'c', chunk: 4096 },
      ];
      const b = stackCase(layers, [write(1, 'o', 4096, 4096, { direct: true }), write(2, 'o', 3 * 4096, 4096, { direct: true }), read(3, 's', 3 * 4096, 4096, { direct: true })]);
      const obs = observe(b);
      expect(allows(b, 1, err('EIO'), obs)).toBe(true);
      // A chunk that reads: its copy-out cannot fail.
      expect(allows(b, 2, err('EIO'), obs)).toBe(false);
      // Once the first write failed the snapshot may be invalid: its reads may fail.
      expect(allows(b, 3, err('EIO'), withResult(obs, 1, err('EIO')))).toBe(true);
    });

    it('under dm-integrity: the damaged range reads as an error or the right data, never other data', () => {
      const b = stackCase(
        [disk('d', 8 * MiB), { id: 'i', kind: 'dm-integrity', on: 'd', wipe: true }],
        [write(1, 'i', 0, 65536, { direct: true }), op('corrupt', 2, { target: 'd', offset: 1 * MiB, length: 4096 }), read(3, 'i', 0, 65536, { direct: true })],
      );
      const obs = observe(b);
      expect(allows(b, 3, ok(65536, runs(0, [65536, 1])), obs)).toBe(true);
      expect(allows(b, 3, err('EILSEQ'), obs)).toBe(true);
      expect(allows(b, 3, err('EIO'), obs)).toBe(true);
      expect(allows(b, 3, ok(65536, runs(0, [4096, 1], [4096, 'unknown'], [57344, 1])), obs)).toBe(false);
      expect(allows(b, 3, ok(65536, runs(0, [4096, 1], [4096, 'zero'], [57344, 1])), obs)).toBe(false);
    });

    it('under AEAD dm-crypt: an error or the right data, never other data', () => {
      const b = stackCase(
        [disk('d', 16 * MiB), { id: 'i', kind: 'dm-integrity', on: 'd', internalHash: 'none', tagSize: 28 }, { id: 'x', kind: 'dm-crypt', on: 'i', integrity: 'gcm', wipe: true }],
        [write(1, 'x', 0, 8192, { direct: true }), op('corrupt', 2, { target: 'd', offset: 2 * MiB, length: 512 }), read(3, 'x', 0, 8192, { direct: true })],
      );
      const obs = observe(b);
      expect(allows(b, 3, ok(8192, runs(0, [8192, 1])), obs)).toBe(true);
      expect(allows(b, 3, err('EIO'), obs)).toBe(true);
      expect(allows(b, 3, ok(8192, runs(0, [512, 'unknown'], [7680, 1])), obs)).toBe(false);
    });

    it('under plain dm-crypt: any bytes in the damaged crypt sectors, exact data elsewhere', () => {
      const b = stackCase(
        [disk('d', 8 * MiB), { id: 'x', kind: 'dm-crypt', on: 'd', sectorSize: 4096, wipe: true }],
        [write(1, 'x', 0, 16384, { direct: true }), op('corrupt', 2, { target: 'd', offset: 4096 + 100, length: 10 }), read(3, 'x', 0, 16384, { direct: true })],
      );
      const obs = observe(b);
      // Crypt sector [4096, 8192) is garbled; the rest is op 1's.
      expect(allows(b, 3, ok(16384, runs(0, [4096, 1], [4096, 'unknown'], [8192, 1])), obs)).toBe(true);
      expect(allows(b, 3, ok(16384, runs(0, [16384, 1])), obs)).toBe(true);
      expect(allows(b, 3, ok(16384, runs(0, [4096, 'unknown'], [12288, 1])), obs)).toBe(false);
      expect(allows(b, 3, ok(16384, runs(0, [8192, 1], [4096, 'unknown'], [4096, 1])), obs)).toBe(false);
      // No verification above: damage is never an error.
      expect(allows(b, 3, err('EIO'), obs)).toBe(false);
    });

    it('under a bare dm-linear: the damaged bytes may read as anything, only there', () => {
      const b = stackCase(
        [disk('d', 8 * MiB), { id: 'x', kind: 'dm-linear', on: 'd', offset: MiB }],
        [write(1, 'x', 0, 8192, { direct: true }), op('corrupt', 2, { target: 'd', offset: MiB + 512, length: 512 }), read(3, 'x', 0, 8192, { direct: true })],
      );
      const obs = observe(b);
      expect(allows(b, 3, ok(8192, runs(0, [512, 1], [512, 'unknown'], [7168, 1])), obs)).toBe(true);
      expect(allows(b, 3, ok(8192, runs(0, [1024, 1], [512, 'unknown'], [6656, 1])), obs)).toBe(false);
    });
  });
});
