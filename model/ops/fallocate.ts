/** fallocate(2) in every mode, on files and (zero/punch) on block devices. */
import { z } from 'zod';
import { rangeFields } from './common.ts';

export const FallocateMode = z.enum([
  'allocate', // 0
  'keep-size', // FALLOC_FL_KEEP_SIZE
  'punch-hole', // PUNCH_HOLE | KEEP_SIZE
  'zero-range', // ZERO_RANGE
  'zero-range-keep-size', // ZERO_RANGE | KEEP_SIZE
  'collapse-range', // COLLAPSE_RANGE
  'insert-range', // INSERT_RANGE
  'unshare-range', // UNSHARE_RANGE
]);

export const FallocateOp = z.strictObject({ kind: z.literal('fallocate'), ...rangeFields, mode: FallocateMode });
export type FallocateOp = z.infer<typeof FallocateOp>;

import { type Expected, type OpCtx, type OpSemantics, allowErrnos, expectError, expectOk } from '../semantics/op-semantics.ts';
import { FS_DAMAGE_ERRNOS, IO_ERRNOS, isLenient, mayRunOutOfSpace } from '../semantics/rules.ts';

/** Modes whose range must be whole filesystem blocks and that move content. */
const SHIFTING = new Set<FallocateOp['mode']>(['collapse-range', 'insert-range']);

function fileExpectation(op: FallocateOp, ctx: OpCtx): Expected {
  const facts = ctx.model.fsFacts(op.target);
  const fsl = ctx.model.info.fsOf(op.target);
  if (!facts || !fsl) return expectError(['EOPNOTSUPP'], 'no filesystem');
  const support = facts.fallocate[op.mode];
  const fsName = fsl.type;
  if (support === 'no') return expectError(['EOPNOTSUPP'], `${fsName} does not support ${op.mode}`);
  let e = expectOk();
  if (support === 'maybe') e = allowErrnos(e, ['EOPNOTSUPP'], `${fsName} may not support ${op.mode} on this kernel`);
  const sizes = ctx.view.sizes(op.target);
  const end = op.offset + op.length;
  if (SHIFTING.has(op.mode)) {
    const bs = fsl.blockSize;
    if (op.offset % bs !== 0 || op.length % bs !== 0)
      return expectError(['EINVAL'], `${op.mode} needs offset and length in whole ${bs}-byte blocks`);
    // collapse: the range must end before EOF; insert: must start before EOF.
    const valid = sizes.map((s) => (op.mode === 'collapse-range' ? end < s : op.offset < s));
    if (!valid.some(Boolean)) return expectError(['EINVAL'], `${op.mode} beyond EOF is EINVAL`);
    if (!valid.every(Boolean)) e = allowErrnos(e, ['EINVAL'], `${op.mode} may reach EOF depending on a race`);
  }
  const allocates = op.mode === 'allocate' || op.mode === 'keep-size' || op.mode.startsWith('zero-range') || op.mode === 'insert-range';
  if (allocates && mayRunOutOfSpace(ctx, op.target, end + (op.mode === 'insert-range' ? Math.max(...sizes) : 0)))
    e = allowErrnos(e, ['ENOSPC'], 'the files on this filesystem may exceed the space the model guarantees');
  if (isLenient(ctx, op.target)) e = allowErrnos(e, FS_DAMAGE_ERRNOS, 'the device under this filesystem injects faults or was damaged');
  return e;
}

/** blkdev_fallocate: zeroing modes only, aligned to the logical block size, inside the device. */
function blockExpectation(op: FallocateOp, ctx: OpCtx): Expected {
  if (!['punch-hole', 'zero-range', 'zero-range-keep-size'].includes(op.mode))
    return expectError(['EOPNOTSUPP'], `block devices do not support ${op.mode}`);
  const sizes = ctx.view.sizes(op.target);
  const lbs = ctx.view.lbs(op.target);
  const end = op.offset + op.length;
  if (sizes.every((s) => end > s)) return expectError(['EINVAL'], 'fallocate past the end of a block device is EINVAL');
  const misaligned = lbs.map((l) => op.offset % l !== 0 || op.length % l !== 0);
  if (misaligned.every(Boolean)) return expectError(['EINVAL'], 'fallocate on a block device must be aligned to its logical block size');
  let e = expectOk();
  if (misaligned.some(Boolean) || sizes.some((s) => end > s)) e = allowErrnos(e, ['EINVAL'], 'alignment or size depends on a race');
  // Punching needs a device that can unmap and zero; otherwise EOPNOTSUPP.
  if (op.mode === 'punch-hole') e = allowErrnos(e, ['EOPNOTSUPP'], 'punching a block device needs write-zeroes with unmap support');
  if (ctx.model.faultsOf(op.target).writeErrors) e = allowErrnos(e, IO_ERRNOS, 'a dm-flakey layer below fails writes');
  return e;
}

export const fallocateSemantics: OpSemantics<FallocateOp> = {
  objects: (op) => [op.target],
  shifts: (op) => (SHIFTING.has(op.mode) ? op.target : undefined),
  expect: (op, ctx) => (ctx.model.isFile(op.target) ? fileExpectation(op, ctx) : blockExpectation(op, ctx)),
  apply(op, result, ctx) {
    if (result.ret < 0) return;
    const t = op.target;
    const end = op.offset + op.length;
    const file = ctx.model.isFile(t);
    const o = ctx.obj(t);
    switch (op.mode) {
      case 'allocate':
        ctx.resize(t, { kind: 'max', v: end });
        o.reserved = Math.max(o.reserved, end);
        return;
      case 'keep-size':
        o.reserved = Math.max(o.reserved, end);
        return;
      case 'unshare-range':
        return;
      case 'punch-hole': {
        // Only bytes below EOF exist to be punched. EOF as this op may see it: a racing
        // thread may have extended the file (the view's sizes, not just this thread's).
        const upTo = file ? Math.min(end, Math.max(...ctx.view.sizes(t))) : end;
        ctx.write(t, op.offset, upTo, ctx.table.zero);
        return;
      }
      case 'zero-range':
        ctx.write(t, op.offset, end, ctx.table.zero);
        if (file) ctx.resize(t, { kind: 'max', v: end });
        o.reserved = Math.max(o.reserved, end);
        return;
      case 'zero-range-keep-size':
        ctx.write(t, op.offset, file ? Math.min(end, Math.max(...ctx.view.sizes(t))) : end, ctx.table.zero);
        o.reserved = Math.max(o.reserved, end);
        return;
      case 'collapse-range':
        ctx.shift(t, op.offset, -op.length);
        ctx.resize(t, { kind: 'sub', v: op.length });
        return;
      case 'insert-range':
        ctx.shift(t, op.offset, op.length);
        ctx.write(t, op.offset, end, ctx.table.zero);
        ctx.resize(t, { kind: 'add', v: op.length });
        o.reserved += op.length;
        return;
    }
  },
};
