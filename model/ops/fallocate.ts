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
import { FS_DAMAGE_ERRNOS, IO_ERRNOS, clearBadBlocks, isLenient, mayRunOutOfSpace, snapshotsCowMayFail } from '../semantics/rules.ts';

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

/**
 * blkdev_fallocate, in its order: modes with bits other than KEEP_SIZE,
 * PUNCH_HOLE and ZERO_RANGE are EOPNOTSUPP; a range that starts at or past
 * the end, or passes it without KEEP_SIZE, is EINVAL (with KEEP_SIZE it is
 * cut at the end); a range misaligned to the logical block size is EINVAL;
 * only then are allocate and keep-size refused (EOPNOTSUPP).
 */
function blockExpectation(op: FallocateOp, ctx: OpCtx): Expected {
  if (op.mode === 'collapse-range' || op.mode === 'insert-range' || op.mode === 'unshare-range')
    return expectError(['EOPNOTSUPP'], `block devices do not support ${op.mode}`);
  const keepSize = op.mode === 'keep-size' || op.mode === 'punch-hole' || op.mode === 'zero-range-keep-size';
  const end = op.offset + op.length;
  const outcomes = new Set<string>();
  for (const size of ctx.view.sizes(op.target))
    for (const l of ctx.view.lbs(op.target)) {
      const len = end <= size ? op.length : keepSize ? size - op.offset : -1;
      if (op.offset >= size || len < 0 || op.offset % l !== 0 || len % l !== 0) outcomes.add('EINVAL');
      else if (op.mode === 'allocate' || op.mode === 'keep-size') outcomes.add('EOPNOTSUPP');
      else outcomes.add('ok');
    }
  const errnos = [...outcomes].filter((x) => x !== 'ok');
  const why = 'fallocate on a block device: the range must start inside the device, end inside it unless KEEP_SIZE cuts it, and be aligned to the logical block size; only zeroing modes are supported';
  if (!outcomes.has('ok')) return expectError(errnos, why);
  let e = expectOk();
  if (errnos.length) e = allowErrnos(e, errnos, 'alignment or size depends on a race');
  // Punching needs a device that can unmap and zero; otherwise EOPNOTSUPP.
  if (op.mode === 'punch-hole') e = allowErrnos(e, ['EOPNOTSUPP'], 'punching a block device needs write-zeroes with unmap support');
  if (ctx.model.faultsOf(op.target).writeErrors) e = allowErrnos(e, IO_ERRNOS, 'a dm-flakey layer below fails writes');
  if (snapshotsCowMayFail(ctx, op.target, op.offset, end).length) e = allowErrnos(e, IO_ERRNOS, 'dm-snapshot must copy a chunk the zeroing touches, and its old content may not read');
  return e;
}

/** Keep only the possible sizes an observed outcome agrees with (none agreeing: keep them all). */
function keepSizes(o: { sizes: number[] }, ok: (size: number) => boolean): void {
  const kept = o.sizes.filter(ok);
  if (kept.length) o.sizes = kept;
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
        if (file) ctx.dropTail(t);
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
        const upTo = Math.min(end, Math.max(...ctx.view.sizes(t)));
        ctx.write(t, op.offset, upTo, ctx.table.zero);
        if (!file) clearBadBlocks(ctx, t, op.offset, upTo, false);
        return;
      }
      case 'zero-range':
        if (file) ctx.dropTail(t);
        ctx.write(t, op.offset, end, ctx.table.zero);
        if (!file) clearBadBlocks(ctx, t, op.offset, end, false);
        if (file) ctx.resize(t, { kind: 'max', v: end });
        o.reserved = Math.max(o.reserved, end);
        return;
      case 'zero-range-keep-size': {
        // On a block device KEEP_SIZE cuts the range at the end of the device.
        const upTo = Math.min(end, Math.max(...ctx.view.sizes(t)));
        ctx.write(t, op.offset, upTo, ctx.table.zero);
        if (!file) clearBadBlocks(ctx, t, op.offset, upTo, false);
        o.reserved = Math.max(o.reserved, end);
        return;
      }
      case 'collapse-range':
        // It succeeded, so EOF was past the range: drop the sizes for which it is EINVAL.
        keepSizes(o, (s) => end < s);
        ctx.shift(t, op.offset, -op.length);
        ctx.resize(t, { kind: 'sub', v: op.length });
        return;
      case 'insert-range':
        keepSizes(o, (s) => op.offset < s);
        ctx.dropTail(t);
        ctx.shift(t, op.offset, op.length);
        ctx.write(t, op.offset, end, ctx.table.zero);
        ctx.resize(t, { kind: 'add', v: op.length });
        o.reserved += op.length;
        return;
    }
  },
};
