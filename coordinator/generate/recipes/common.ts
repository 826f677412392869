/**
 * What the recipes share: the signature, a filesystem on a disk sized for
 * its type, and read-backs of what a program wrote.
 */
import { FS_FACTS, type Layer } from '../../../model/index.ts';
import type { FsLayer, FsType } from '../../../model/layers/fs.ts';
import type { Draw } from '../draw.ts';
import type { Normalized } from '../options.ts';
import type { OpDraft, OpInput } from '../ops/index.ts';
import type { StackBuilder } from '../stack.ts';

export const MiB = 1024 * 1024;

/** A recipe builds its stack in `b` and returns the program's threads, or undefined when the stack could not be built. */
export type RecipeFn = (d: Draw, o: Normalized, b: StackBuilder) => OpInput[][] | undefined;

/** A filesystem type among the target's, by weight. */
export function pickFsType(d: Draw, o: Normalized, weights: Partial<Record<FsType, number>>): FsType | undefined {
  const choices = o.fsTypes.map((t) => [weights[t] ?? 0, t] as const).filter(([w]) => w > 0);
  return choices.length ? d.weighted(choices) : undefined;
}

/** Disk size for a filesystem type: above its minimum, small enough to stay fast. */
export function diskSizeFor(d: Draw, o: Normalized, type: FsType): number {
  const min = Math.max(o.diskSize.min, type === 'xfs' ? 320 * MiB : type === 'btrfs' ? 256 * MiB : 64 * MiB, FS_FACTS[type].minSize);
  const max = Math.max(min, Math.min(o.diskSize.max, type === 'ext4' ? 256 * MiB : 512 * MiB));
  return d.int(min / MiB, max / MiB) * MiB;
}

/** A disk (logical block size `lbs`) with a filesystem of `type` on it. */
export function fsOnDisk(d: Draw, o: Normalized, b: StackBuilder, type: FsType, lbs: 512 | 4096 = 512): { disk: Layer; fs: FsLayer } | undefined {
  const size = diskSizeFor(d, o, type);
  const disk = b.grow('disk', { adjust: (l) => (l.kind === 'disk' ? { ...l, size, logicalBlockSize: lbs, physicalBlockSize: undefined } : l) });
  if (!disk) return undefined;
  const fsl = b.grow('fs', { blocks: (l) => l.id === disk.id, adjust: (l) => (l.kind === 'fs' ? { ...l, type, blockSize: 4096 } : l) });
  return fsl?.kind === 'fs' ? { disk, fs: fsl } : undefined;
}

/** A read of what a write wrote (same range, its own path and buffer). */
export function readBack(w: Extract<OpDraft, { kind: 'write' }>, over: Partial<Extract<OpDraft, { kind: 'read' }>> = {}): OpDraft {
  return {
    kind: 'read',
    target: w.target,
    offset: w.offset,
    length: w.length,
    via: w.via,
    direct: w.direct,
    vectors: w.vectors,
    buffer: w.buffer?.placement === 'heap' ? w.buffer : { placement: 'heap', align: 0 },
    ...over,
  } as OpDraft;
}

export function clampThreads(o: Normalized, n: number): number {
  return Math.max(1, Math.min(o.maxThreads, n));
}
