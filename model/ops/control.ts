/**
 * Control-plane ops: live reconfiguration of the stack while IO runs
 * (S1's loop ioctls, S4's dm table swaps and snapshots, md member failure).
 */
import { z } from 'zod';
import { BlockSize } from '../schema/common.ts';
import { Bytes, LayerId, OpId } from './common.ts';

export const LoopSetDirectIoOp = z.strictObject({ kind: z.literal('loop-set-direct-io'), id: OpId, target: LayerId, on: z.boolean() });
export type LoopSetDirectIoOp = z.infer<typeof LoopSetDirectIoOp>;

export const LoopSetBlockSizeOp = z.strictObject({ kind: z.literal('loop-set-block-size'), id: OpId, target: LayerId, size: BlockSize });
export type LoopSetBlockSizeOp = z.infer<typeof LoopSetBlockSizeOp>;

export const DmSuspendOp = z.strictObject({ kind: z.literal('dm-suspend'), id: OpId, target: LayerId, noflush: z.boolean().default(false) });
export type DmSuspendOp = z.infer<typeof DmSuspendOp>;

export const DmResumeOp = z.strictObject({ kind: z.literal('dm-resume'), id: OpId, target: LayerId });
export type DmResumeOp = z.infer<typeof DmResumeOp>;

/**
 * Load a new table into a dm device (it takes effect at the next resume). The
 * tables offered are the content-preserving ones: the layer's own, or a whole
 * device pass-through as dm-linear or as a snapshot origin (the interposer of S4).
 */
export const DmReloadOp = z.strictObject({
  kind: z.literal('dm-reload'),
  id: OpId,
  target: LayerId,
  as: z.enum(['same', 'linear', 'snapshot-origin']).default('same'),
});
export type DmReloadOp = z.infer<typeof DmReloadOp>;

export const SnapshotCreateOp = z.strictObject({ kind: z.literal('snapshot-create'), id: OpId, target: LayerId });
export type SnapshotCreateOp = z.infer<typeof SnapshotCreateOp>;

export const SnapshotRemoveOp = z.strictObject({ kind: z.literal('snapshot-remove'), id: OpId, target: LayerId });
export type SnapshotRemoveOp = z.infer<typeof SnapshotRemoveOp>;

/** Merge a snapshot back into its origin (snapshot-merge target); the snapshot goes away. */
export const SnapshotMergeOp = z.strictObject({ kind: z.literal('snapshot-merge'), id: OpId, target: LayerId });
export type SnapshotMergeOp = z.infer<typeof SnapshotMergeOp>;

export const MdFailOp = z.strictObject({ kind: z.literal('md-fail'), id: OpId, target: LayerId, member: z.number().int().min(0).max(7) });
export type MdFailOp = z.infer<typeof MdFailOp>;

/**
 * Overwrite bytes of a lower layer behind the back of the layers above it,
 * with noise. The model is told: above a verifying layer the damage must read
 * back as an error, never as wrong data (S3's contract).
 */
export const CorruptOp = z.strictObject({ kind: z.literal('corrupt'), id: OpId, target: LayerId, offset: Bytes, length: z.number().int().positive().max(1024 * 1024) });
export type CorruptOp = z.infer<typeof CorruptOp>;
