/** write: the op's pattern bytes to a block device or file. */
import { z } from 'zod';
import { dataIoFields } from './common.ts';

export const WriteOp = z.strictObject({
  kind: z.literal('write'),
  ...dataIoFields,
  /** RWF_DSYNC (pvec, io_uring) or O_DSYNC (psync). */
  dsync: z.boolean().default(false),
});
export type WriteOp = z.infer<typeof WriteOp>;

import type { SrcSet } from '../content.ts';
import { baseExpectation } from '../semantics/data-io.ts';
import { type OpCtx, type OpSemantics, allowErrnos } from '../semantics/op-semantics.ts';
import { IO_ERRNOS, PAGE, alignDown, clearBadBlocks, dioAlignment, mayErrorNear, mayRunOutOfSpace, snapshotsCowMayFail } from '../semantics/rules.ts';

/** Errnos after which part of the data may have reached the device. */
const PARTIAL_FAILURES = new Set(['EIO', 'EILSEQ', 'ENOSPC', 'EFBIG', 'EFAULT', 'EUCLEAN', 'EROFS']);

/** What bytes [offset, offset+k) of the write carry, piece by piece. */
function payload(op: WriteOp, k: number, ctx: OpCtx): Array<[number, number, SrcSet]> {
  const b = op.buffer;
  const s = op.offset;
  if (b.placement === 'heap') return [[s, s + k, ctx.table.op(op.id)]];
  if (b.placement === 'anon') {
    // The executor fills the touched pages with the pattern; untouched pages are the zero page.
    const filled = Math.max(0, Math.min(k, b.touchedPages * PAGE - b.align));
    return [
      [s, s + filled, ctx.table.op(op.id)],
      [s + filled, s + k, ctx.table.zero],
    ];
  }
  const from = b.offset + b.align;
  return ctx.view.pieces(b.file, from, from + k).map(([ps, pe, v]) => [ps - from + s, pe - from + s, ctx.table.moved(v, s - from)]);
}

/** Some page that [s, e) covers only in part may fail to read. */
function partialPageMayError(ctx: OpCtx, target: string, s: number, e: number): boolean {
  if (s % PAGE !== 0 && mayErrorNear(ctx, target, alignDown(s, PAGE), alignDown(s, PAGE) + PAGE)) return true;
  return e % PAGE !== 0 && mayErrorNear(ctx, target, alignDown(e, PAGE), alignDown(e, PAGE) + PAGE);
}

export const writeSemantics: OpSemantics<WriteOp> = {
  objects: (op) => (op.buffer.placement === 'mmap' ? [op.target, op.buffer.file] : [op.target]),
  expect(op, ctx) {
    const file = ctx.model.isFile(op.target);
    const sizes = ctx.view.sizes(op.target);
    // A block device takes what fits before its end and refuses to start past it (ENOSPC).
    const counts =
      file ? [op.length]
      : sizes.length === 1 ? (op.offset < sizes[0]! ? [Math.min(op.length, sizes[0]! - op.offset)] : [])
      : [...new Set(sizes.filter((sz) => op.offset < sz).map((sz) => Math.min(op.length, sz - op.offset)))];
    let e = baseExpectation(op, ctx, counts);
    if (!file && sizes.some((sz) => op.offset >= sz)) e = allowErrnos({ ...e, success: counts.length > 0 && e.success }, ['ENOSPC'], 'a write starting at or past the end of a block device fails with ENOSPC');
    if (file && mayRunOutOfSpace(ctx, op.target, op.offset + op.length))
      e = allowErrnos({ ...e, partialOnErrors: true }, ['ENOSPC'], 'the files on this filesystem may exceed the space the model guarantees');
    const l = ctx.model.layer(op.target);
    if (l.kind === 'loop' && l.readOnly) return { ...allowErrnos(e, ['EPERM', 'EACCES', 'EROFS'], 'the loop device is read-only'), success: false };
    // Buffered writes that cover part of a page read it first; an unreadable page fails the write.
    // Pages the write covers whole are not read. A misaligned O_DIRECT write may fall back to buffered IO.
    const buffered = !op.direct || !dioAlignment(ctx, op.target, op.offset, op.length, op.vectors, op.buffer).aligned;
    if (buffered && partialPageMayError(ctx, op.target, op.offset, op.offset + op.length))
      e = allowErrnos(e, IO_ERRNOS, 'a partial-page write must read an unreadable page');
    // Only a write that can reach the device makes dm-snapshot copy (a buffer that faults at once never does).
    if (e.success && snapshotsCowMayFail(ctx, op.target, op.offset, op.offset + op.length).length)
      e = allowErrnos({ ...e, partialOnErrors: true }, IO_ERRNOS, 'dm-snapshot must copy a chunk the write touches, and its old content may not read');
    return e;
  },
  apply(op, result, ctx) {
    const failed = result.ret < 0;
    if (failed && !PARTIAL_FAILURES.has(result.errno ?? '')) return;
    const k = failed ? op.length : result.ret;
    if (k <= 0) return;
    const f = ctx.model.faultsOf(op.target);
    const maybe = failed || f.dropWrites || f.writeErrors;
    const file = ctx.model.isFile(op.target);
    if (op.buffer.placement === 'heap') {
      // The common case, without the list payload() makes: the op's own pattern over [offset, offset+k).
      if (file && op.offset + k > Math.max(...ctx.view.sizes(op.target))) ctx.dropTail(op.target);
      if (maybe) ctx.writeMaybe(op.target, op.offset, op.offset + k, ctx.table.op(op.id));
      else ctx.write(op.target, op.offset, op.offset + k, ctx.table.op(op.id));
    } else {
      const payloadPieces = payload(op, k, ctx);
      if (file && op.offset + k > Math.max(...ctx.view.sizes(op.target))) ctx.dropTail(op.target);
      for (const [s, e, v] of payloadPieces) {
        if (maybe) ctx.writeMaybe(op.target, s, e, v);
        else ctx.write(op.target, s, e, v);
      }
    }
    clearBadBlocks(ctx, op.target, op.offset, op.offset + k, maybe);
    // A failed write may be a failed copy-out, which invalidates the snapshot: its reads may fail from now on.
    if (failed)
      for (const snap of snapshotsCowMayFail(ctx, op.target, op.offset, op.offset + k)) ctx.writeMaybe(snap, 0, Math.max(...ctx.view.sizes(snap)), ctx.table.error);
    if (file) {
      const end = op.offset + k;
      if (!failed) ctx.resize(op.target, { kind: 'max', v: end });
      const o = ctx.obj(op.target);
      o.reserved = Math.max(o.reserved, end);
    }
  },
};
