/**
 * A filesystem made on a block layer and mounted for the program. The facts
 * table below is the model's knowledge of each filesystem type: where a fact
 * is not certain for every kernel we target, it is 'maybe' and the model
 * allows both outcomes rather than raise a false alarm.
 */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId } from '../schema/common.ts';
import { geometryOf, readsMayFail } from './generate.ts';
import type { Layer } from './index.ts';
import type { GeometryBounds, LayerKindModule, SemanticIssue } from './kind.ts';

const MiB = 1024 * 1024;

export const FsType = z.enum(['ext4', 'xfs', 'btrfs', 'gfs2']);
export type FsType = z.infer<typeof FsType>;

/** One mkfs or mount option word; argv only, but keep them free of shell and path tricks anyway. */
const OptionWord = z.string().regex(/^[A-Za-z0-9=,_^.:+\-]{1,64}$/, 'an option is 1-64 chars of A-Z a-z 0-9 = , _ ^ . : + -');

export const FsLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('fs'),
  on: LayerId,
  type: FsType,
  blockSize: z.union([z.literal(1024), z.literal(2048), z.literal(4096)]).default(4096),
  mkfsOptions: z.array(OptionWord).max(16).default([]),
  mountOptions: z.array(OptionWord).max(16).default([]),
});
export type FsLayer = z.infer<typeof FsLayer>;

export type Support = 'yes' | 'no' | 'maybe';
export type FallocateMode =
  | 'allocate'
  | 'keep-size'
  | 'punch-hole'
  | 'zero-range'
  | 'zero-range-keep-size'
  | 'collapse-range'
  | 'insert-range'
  | 'unshare-range';

export interface FsFacts {
  minSize: number;
  blockSizes: number[];
  fallocate: Record<FallocateMode, Support>;
  /** Misaligned O_DIRECT falls back to buffered IO instead of failing (btrfs does). */
  dioFallsBackToBuffered: boolean;
  /** Space the model guarantees to be usable for file data, as a function of device size. */
  guaranteedData(deviceSize: number): number;
  module: string;
  config: string;
  tools: string[];
}

export const FS_FACTS: Record<FsType, FsFacts> = {
  ext4: {
    minSize: 8 * MiB,
    blockSizes: [1024, 2048, 4096],
    fallocate: {
      allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'yes', 'zero-range': 'yes', 'zero-range-keep-size': 'yes',
      'collapse-range': 'yes', 'insert-range': 'yes', 'unshare-range': 'no',
    },
    dioFallsBackToBuffered: false,
    guaranteedData: (size) => Math.max(0, Math.floor(size * 0.6) - 8 * MiB),
    module: 'ext4', config: 'EXT4_FS', tools: ['mkfs.ext4', 'e2fsck'],
  },
  xfs: {
    // xfsprogs 5.19+ refuses filesystems under 300 MiB.
    minSize: 300 * MiB,
    blockSizes: [1024, 2048, 4096],
    fallocate: {
      allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'yes', 'zero-range': 'yes', 'zero-range-keep-size': 'yes',
      'collapse-range': 'yes', 'insert-range': 'yes', 'unshare-range': 'yes',
    },
    dioFallsBackToBuffered: false,
    guaranteedData: (size) => Math.max(0, Math.floor(size * 0.6) - 80 * MiB),
    module: 'xfs', config: 'XFS_FS', tools: ['mkfs.xfs', 'xfs_repair'],
  },
  btrfs: {
    minSize: 128 * MiB,
    blockSizes: [4096],
    fallocate: {
      allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'yes', 'zero-range': 'yes', 'zero-range-keep-size': 'yes',
      'collapse-range': 'no', 'insert-range': 'no', 'unshare-range': 'no',
    },
    dioFallsBackToBuffered: true,
    // Metadata is duplicated and chunks are allocated in large units: be generous.
    guaranteedData: (size) => Math.max(0, Math.floor(size * 0.4) - 32 * MiB),
    module: 'btrfs', config: 'BTRFS_FS', tools: ['mkfs.btrfs', 'btrfs'],
  },
  gfs2: {
    minSize: 64 * MiB,
    blockSizes: [1024, 2048, 4096],
    fallocate: {
      allocate: 'yes', 'keep-size': 'yes', 'punch-hole': 'maybe', 'zero-range': 'no', 'zero-range-keep-size': 'no',
      'collapse-range': 'no', 'insert-range': 'no', 'unshare-range': 'no',
    },
    dioFallsBackToBuffered: true,
    guaranteedData: (size) => Math.max(0, Math.floor(size * 0.5) - 24 * MiB),
    module: 'gfs2', config: 'GFS2_FS', tools: ['mkfs.gfs2', 'fsck.gfs2'],
  },
};

export const fs: LayerKindModule<FsLayer> = {
  kind: 'fs',
  schema: FsLayer,
  role: 'fs',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['block'] }],
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    const facts = FS_FACTS[layer.type];
    if (!facts.blockSizes.includes(layer.blockSize))
      issues.push({ path: ['blockSize'], message: `${layer.type} supports block sizes ${facts.blockSizes.join(', ')} here, not ${layer.blockSize}` });
    const below = stack.layer(layer.on);
    if (below?.kind === 'loop' && below.readOnly) issues.push({ path: ['on'], message: `'${layer.on}' is a read-only loop device; a filesystem cannot be made on it` });
    const g: GeometryBounds | undefined = stack.geometry(layer.on);
    if (g) {
      if (g.sizeMin < facts.minSize)
        issues.push({ path: ['on'], message: `${layer.type} needs a device of at least ${facts.minSize / MiB} MiB; '${layer.on}' may be only ${(g.sizeMin / MiB).toFixed(1)} MiB` });
      const lbs = Math.max(...g.logicalBlockSizes);
      if (layer.blockSize < lbs)
        issues.push({ path: ['blockSize'], message: `block size ${layer.blockSize} is smaller than the logical block size ${lbs} of '${layer.on}'` });
      const files = stack.usersOf(layer.id).filter((l) => l.kind === 'file');
      const total = files.reduce((n, f) => n + (f.kind === 'file' ? f.size : 0), 0);
      const room = facts.guaranteedData(g.sizeMin);
      if (total > room)
        issues.push({ path: ['on'], message: `the files on '${layer.id}' (${total} bytes) may not fit: ${layer.type} on this device guarantees ${room} bytes` });
    }
    return issues;
  },
  initialFill: () => 'zero',
  mapUp: () => 'unknown',
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  needs: (layer) => {
    const facts = FS_FACTS[layer.type];
    return { modules: [facts.module], tools: facts.tools, config: [facts.config] };
  },
};

/** mkfs argv per type: quiet, forced, no discard of the fresh device (slow, and it would hide stale data). */
function mkfsArgv(layer: FsLayer, dev: string): string[] {
  const bs = String(layer.blockSize);
  switch (layer.type) {
    case 'ext4': return ['mkfs.ext4', '-q', '-F', '-b', bs, '-E', 'nodiscard', ...layer.mkfsOptions, dev];
    case 'xfs': return ['mkfs.xfs', '-q', '-f', '-K', '-b', `size=${bs}`, ...layer.mkfsOptions, dev];
    case 'btrfs': return ['mkfs.btrfs', '-q', '-f', '-K', '-s', bs, ...layer.mkfsOptions, dev];
    case 'gfs2': return ['mkfs.gfs2', '-O', '-p', 'lock_nolock', '-j', '1', '-J', '8', '-b', bs, ...layer.mkfsOptions, dev];
  }
}

/** Read-only consistency checks, run after the filesystem is unmounted. */
function fsckArgv(layer: FsLayer, dev: string): string[] {
  switch (layer.type) {
    case 'ext4': return ['e2fsck', '-fn', dev];
    case 'xfs': return ['xfs_repair', '-n', dev];
    case 'btrfs': return ['btrfs', 'check', '--readonly', dev];
    case 'gfs2': return ['fsck.gfs2', '-n', dev];
  }
}

fs.setup = (layer, env) => {
  const dev = env.devicePath(layer.on);
  const mnt = env.mountPoint(layer.id);
  const opts = layer.mountOptions.length ? layer.mountOptions.join(',') : 'defaults';
  return {
    steps: [
      { name: `mkfs ${layer.id}`, argv: mkfsArgv(layer, dev), timeoutMs: 180_000 },
      { name: `mount point ${layer.id}`, argv: ['mkdir', '-p', mnt] },
      { name: `mount ${layer.id}`, argv: ['mount', '-t', layer.type, '-o', opts, dev, mnt], undo: ['umount', mnt] },
    ],
    checks: [
      { name: `unmount ${layer.id}`, argv: ['umount', mnt] },
      { name: `fsck ${layer.id}`, argv: fsckArgv(layer, dev), timeoutMs: 300_000 },
    ],
  };
};

/** Generation: a filesystem of a type the target can make, on a free block layer big enough for it, 4 KiB blocks mostly. */
fs.arbitrary = (ctx) => {
  const TYPE_WEIGHT: Record<FsType, number> = { ext4: 3, xfs: 3, btrfs: 3, gfs2: 1 };
  const options = ctx.blocks.flatMap((b) => {
    if (readsMayFail(ctx, b.id)) return [];
    const g = geometryOf(ctx, b.id);
    const lbs = Math.max(...g.logicalBlockSizes);
    return ctx.fsTypes
      .filter((t) => FS_FACTS[t].minSize <= g.sizeMin && FS_FACTS[t].blockSizes.some((bs) => bs >= lbs))
      .flatMap((type) => Array.from({ length: TYPE_WEIGHT[type] }, () => ({ on: b.id, type, lbs })));
  });
  if (!options.length) return undefined;
  return fc
    .record({ pick: fc.constantFrom(...options), bs: fc.constantFrom(4096, 4096, 4096, 4096, 4096, 2048, 1024), noatime: fc.boolean(), small: fc.boolean() })
    .map(({ pick, bs, noatime, small }): Layer[] => {
      const sizes = FS_FACTS[pick.type].blockSizes.filter((x) => x >= pick.lbs);
      const blockSize = (sizes.includes(bs) ? bs : sizes.includes(4096) ? 4096 : sizes[sizes.length - 1]!) as 1024 | 2048 | 4096;
      return [{ id: ctx.id, kind: 'fs', on: pick.on, type: pick.type, blockSize, mkfsOptions: [], mountOptions: noatime && small ? ['noatime'] : [] }];
    });
};
