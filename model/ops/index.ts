/** The op union: every op of the case language. */
import { z } from 'zod';
import { WriteOp } from './write.ts';
import { ReadOp } from './read.ts';
import { MmapReadOp, MmapWriteOp, MsyncOp } from './mmap.ts';
import { FallocateOp } from './fallocate.ts';
import { TruncateOp } from './truncate.ts';
import { DropCachesOp, FlushOp, FsyncOp, SyncFileRangeOp } from './sync.ts';
import { DiscardOp } from './discard.ts';
import { RemountOp } from './remount.ts';
import { BarrierOp, SleepOp } from './barrier.ts';
import {
  CorruptOp, DmReloadOp, DmResumeOp, DmSuspendOp, LoopSetBlockSizeOp, LoopSetDirectIoOp, MdFailOp,
  SnapshotCreateOp, SnapshotMergeOp, SnapshotRemoveOp,
} from './control.ts';

export const Op = z.discriminatedUnion('kind', [
  WriteOp, ReadOp, MmapWriteOp, MmapReadOp, MsyncOp, FallocateOp, TruncateOp, FsyncOp, SyncFileRangeOp, FlushOp,
  DropCachesOp, DiscardOp, RemountOp, BarrierOp, SleepOp, LoopSetDirectIoOp, LoopSetBlockSizeOp, DmSuspendOp,
  DmResumeOp, DmReloadOp, SnapshotCreateOp, SnapshotRemoveOp, SnapshotMergeOp, MdFailOp, CorruptOp,
]);
export type Op = z.infer<typeof Op>;
export type OpKind = Op['kind'];
export type OpOf<K extends OpKind> = Extract<Op, { kind: K }>;

export const OP_KINDS = Op.options.map((o) => o.shape.kind.value) as OpKind[];

export * from './common.ts';
