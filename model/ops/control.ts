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

import { type OpCtx, type OpSemantics, allowErrnos, expectError, expectOk } from '../semantics/op-semantics.ts';
import { layerModule } from '../layers/index.ts';
import { PAGE, readBelowAgain } from '../semantics/rules.ts';

const nothing = { objects: () => [], expect: () => expectOk(), apply: () => {} };

export const loopSetDirectIoSemantics: OpSemantics<LoopSetDirectIoOp> = {
  objects: (op) => [op.target],
  // The kernel may decline direct IO (backing store alignment); it never corrupts IO either way.
  expect: (op) => (op.on ? allowErrnos(expectOk(), ['EINVAL'], 'the kernel may refuse to enable direct IO on this backing store') : expectOk()),
  apply: () => {},
};

export const loopSetBlockSizeSemantics: OpSemantics<LoopSetBlockSizeOp> = {
  objects: (op) => [op.target],
  expect: () => allowErrnos(expectOk(), ['EBUSY', 'EAGAIN'], 'the kernel may refuse to change the block size while the device is busy'),
  apply(op, result, ctx) {
    if (result.ret >= 0) ctx.setLbs(op.target, op.size);
  },
};

export const dmSuspendSemantics: OpSemantics<DmSuspendOp> = nothing;
/**
 * dm-dust.rst: a dust target starts with an empty bad-block list and fails no
 * read until enabled by message; the case's set-up sends the list and enables
 * it. A reloaded table (any of them, 'same' too) is a new target: once the
 * resume makes it live, the list is gone and the blocks read what is below.
 */
export const dmResumeSemantics: OpSemantics<DmResumeOp> = {
  objects: () => [],
  expect: () => expectOk(),
  apply(op, result, ctx) {
    if (result.ret < 0) return;
    const l = ctx.model.layer(op.target);
    if (l.kind !== 'dm-dust') return;
    const reload = reloadBefore(op.id, op.target, ctx);
    if (reload) forgetBadBlocks(ctx, l.id, reload === 'maybe');
  },
};

/** Whether a dm-reload of `target` surely (earlier in this thread, no resume between) or maybe (in another thread) precedes resume `id`. */
function reloadBefore(id: number, target: string, ctx: OpCtx): 'surely' | 'maybe' | undefined {
  const places = ctx.model.places;
  const me = places.get(id)!;
  let found: 'surely' | 'maybe' | undefined;
  for (const p of places.values()) {
    if (p.op.kind !== 'dm-reload' || p.op.target !== target) continue;
    if (p.thread !== me.thread) found ??= 'maybe';
    else if (p.index < me.index) {
      const resumedBetween = [...places.values()].some((q) => q.thread === me.thread && q.op.kind === 'dm-resume' && q.op.target === target && q.index > p.index && q.index < me.index);
      if (!resumedBetween) return 'surely';
    }
  }
  return found;
}

/**
 * The bad blocks of dust layer `dust` read what is below them again: in the
 * dust device itself and in the objects above it that the model maps block
 * for block, where nothing else below them can fail a read.
 */
function forgetBadBlocks(ctx: OpCtx, dust: string, maybe: boolean): void {
  const l = ctx.model.layer(dust);
  const p = layerModule(l).fault(l);
  if (p.kind !== 'bad-blocks') return;
  const targets: Array<{ obj: string; ranges: Array<[number, number]> }> = [];
  for (const b of p.blocks) {
    const s = b * p.blockSize;
    targets.push({ obj: dust, ranges: [[s, s + p.blockSize]] });
    for (const a of ctx.model.objectsAbove(dust, s, s + p.blockSize))
      if (!a.viaFs && a.ranges !== 'unknown' && onlyDustFails(ctx, a.obj, dust)) targets.push({ obj: a.obj, ranges: a.ranges });
  }
  for (const { obj, ranges } of targets) if (ctx.world.objects.has(obj)) for (const [rs, re] of ranges) readBelowAgain(ctx, obj, rs, re, maybe);
}

/** No layer at or below `obj` but `dust` can make a read fail (so an error there is the dust's). */
function onlyDustFails(ctx: OpCtx, obj: string, dust: string): boolean {
  const m = ctx.model;
  const chain = [m.layer(obj), ...m.info.below(obj)];
  return chain.every((x) => {
    if (x.id === dust) return true;
    const mod = layerModule(x);
    return mod.fault(x).kind === 'none' && !mod.verifiesData(x) && mod.initialFill(x, m.info) !== 'error' && mod.initialFill(x, m.info) !== 'scrambled';
  });
}
export const dmReloadSemantics: OpSemantics<DmReloadOp> = nothing;
/**
 * Failing a member is transparent to IO. md will not fail the last working
 * member of an array: md_error leaves it in and marks the array broken, and
 * the request answers EBUSY (set_disk_faulty, state_store); IO goes on. So
 * EBUSY is allowed once the program fails every member of the array.
 */
export const mdFailSemantics: OpSemantics<MdFailOp> = {
  objects: () => [],
  expect(op, ctx) {
    const l = ctx.model.layer(op.target);
    const failed = new Set<number>();
    for (const p of ctx.model.places.values()) if (p.op.kind === 'md-fail' && p.op.target === op.target) failed.add(p.op.member);
    return l.kind === 'md' && failed.size >= l.members.length
      ? allowErrnos(expectOk(), ['EBUSY'], 'md refuses to fail the last working member of an array')
      : expectOk();
  },
  apply: () => {},
};

export const snapshotCreateSemantics: OpSemantics<SnapshotCreateOp> = {
  objects: (op, model) => {
    const l = model.layer(op.target);
    return l.kind === 'dm-snapshot' ? [op.target, l.origin] : [op.target];
  },
  expect: () => expectOk(),
  apply(op, result, ctx) {
    if (result.ret < 0) return;
    const l = ctx.model.layer(op.target);
    if (l.kind !== 'dm-snapshot') return;
    // The snapshot holds what the origin held at this instant; a racing write may or may not be in it.
    const size = Math.max(...ctx.view.sizes(l.origin));
    ctx.obj(op.target).content.clearFrom(0);
    ctx.copy(l.origin, 0, op.target, 0, size);
    ctx.obj(op.target).sizes = [...ctx.view.sizes(l.origin)];
    ctx.setActive(op.target, true);
  },
};

export const snapshotRemoveSemantics: OpSemantics<SnapshotRemoveOp> = {
  objects: (op) => [op.target],
  // Device mapper refuses to remove a device that is open, and a layer set up on the snapshot holds it open.
  expect: (op, ctx) =>
    ctx.model.info.usersOf(op.target).length > 0
      ? expectError(['EEXEC'], `'${op.target}' has layers on it, which hold it open: dmsetup remove fails`)
      : expectOk(),
  apply(op, result, ctx) {
    if (result.ret >= 0) ctx.setActive(op.target, false);
  },
};

export const snapshotMergeSemantics: OpSemantics<SnapshotMergeOp> = {
  objects: (op, model) => {
    const l = model.layer(op.target);
    return l.kind === 'dm-snapshot' ? [op.target, l.origin] : [op.target];
  },
  expect: () => expectOk(),
  apply(op, result, ctx) {
    if (result.ret < 0) return;
    const l = ctx.model.layer(op.target);
    if (l.kind !== 'dm-snapshot') return;
    // The origin now reads as the snapshot did.
    ctx.copy(op.target, 0, l.origin, 0, Math.max(...ctx.view.sizes(op.target)));
    ctx.setActive(op.target, false);
  },
};

/**
 * The executor writes the noise with O_DIRECT when the range suits the
 * device's logical block size, else through the page cache, which first reads
 * the pages the range covers only in part: where those may fail to read
 * (unwritten sectors under authenticated encryption, bad blocks), so does the
 * op, with EIO. A failed corrupt op may still have damaged part of its range.
 */
export const corruptSemantics: OpSemantics<CorruptOp> = {
  objects: (op) => [op.target],
  expect(op, ctx) {
    const end = op.offset + op.length;
    const lbs = Math.max(512, ...ctx.obj(op.target).lbs);
    if (op.offset % lbs === 0 && end % lbs === 0) return expectOk();
    const content = ctx.obj(op.target).content;
    const head = op.offset % PAGE ? content.mayError(op.offset - (op.offset % PAGE), op.offset - (op.offset % PAGE) + PAGE) : false;
    const tail = end % PAGE ? content.mayError(end - (end % PAGE), end - (end % PAGE) + PAGE) : false;
    return head || tail ? allowErrnos(expectOk(), ['EIO'], 'a corrupt op over part of a page reads the page first, and the rest of it may not read') : expectOk();
  },
  apply(op, result, ctx) {
    const failed = result.ret < 0;
    const end = op.offset + op.length;
    if (failed) ctx.writeMaybe(op.target, op.offset, end, ctx.table.any);
    else ctx.write(op.target, op.offset, end, ctx.table.any);
    for (const a of ctx.model.objectsAbove(op.target, op.offset, end)) {
      if (a.viaFs) {
        ctx.obj(a.obj).lenient = true;
        continue;
      }
      // Above a verifying layer, damage reads as an error or (from a cache) as the old data; never as other data.
      const damage = a.verified ? ctx.table.error : ctx.table.any;
      const o = ctx.obj(a.obj);
      const ranges = a.ranges === 'unknown' ? [[0, Math.max(...o.sizes)] as [number, number]] : a.ranges;
      for (const [s, e] of ranges) ctx.writeMaybe(a.obj, s, e, damage);
    }
  },
};
