/**
 * Shared mappings of a file: stores through a mapping (faulting pages in,
 * page_mkwrite), loads through it, and msync. The executor keeps one shared
 * mapping per file and thread, so msync acts on what earlier mmap ops dirtied.
 */
import { z } from 'zod';
import { Bytes, IoLength, LayerId, OpId } from './common.ts';

export const MmapWriteOp = z.strictObject({ kind: z.literal('mmap-write'), id: OpId, target: LayerId, offset: Bytes, length: IoLength });
export type MmapWriteOp = z.infer<typeof MmapWriteOp>;

export const MmapReadOp = z.strictObject({ kind: z.literal('mmap-read'), id: OpId, target: LayerId, offset: Bytes, length: IoLength });
export type MmapReadOp = z.infer<typeof MmapReadOp>;

export const MsyncOp = z.strictObject({
  kind: z.literal('msync'),
  id: OpId,
  target: LayerId,
  mode: z.enum(['sync', 'async', 'invalidate']).default('sync'),
});
export type MsyncOp = z.infer<typeof MsyncOp>;

import { pinObserved } from '../semantics/data-io.ts';
import { type Expected, type OpSemantics, allowErrnos, expectOk } from '../semantics/op-semantics.ts';
import { IO_ERRNOS, PAGE, alignUp, isLenient, mappedPieces, mappingFaults, mayErrorNear, mayRunOutOfSpace } from '../semantics/rules.ts';

/** A mapping access past the page holding EOF raises SIGBUS (mmap(2)); so does an IO error or ENOSPC at fault time. */
function mappingExpectation(target: string, offset: number, length: number, write: boolean, ctx: Parameters<OpSemantics['expect']>[1]): Expected {
  const faults = mappingFaults(ctx.view.sizes(target), offset, offset + length);
  let e: Expected = expectOk([length], { success: !faults.must, signal: faults.may, mustSignal: faults.must });
  if (faults.may) e = { ...e, reasons: [`a mapping access past the page that holds EOF raises SIGBUS`] };
  const trouble =
    isLenient(ctx, target) ||
    mayErrorNear(ctx, target, offset, offset + length) ||
    (write && mayRunOutOfSpace(ctx, target, offset + length)) ||
    ctx.model.faultsOf(target).readErrors;
  if (trouble && !e.signal) e = { ...e, signal: true, reasons: [...e.reasons, 'a page that cannot be read in or allocated faults with SIGBUS'] };
  return e;
}

export const mmapWriteSemantics: OpSemantics<MmapWriteOp> = {
  objects: (op) => [op.target],
  expect: (op, ctx) => mappingExpectation(op.target, op.offset, op.length, true, ctx),
  apply(op, result, ctx) {
    // EOF as the store saw it: a racing thread may have extended (or cut) the file.
    const sizes = ctx.view.sizes(op.target);
    const minS = Math.min(...sizes);
    const maxS = Math.max(...sizes);
    const end = op.offset + op.length;
    const set = ctx.table.op(op.id);
    const f = ctx.model.faultsOf(op.target);
    // Stores past EOF stay in the page that holds EOF and never reach the file (mmap(2):
    // "modifications to that region are not written out to the file"), but loads through a
    // mapping see them until writeback zeroes that part of the page again. The model keeps
    // them past EOF as "zeroes or this store": only mapping reads look there, and whatever
    // makes the file grow drops them first (OpCtx.dropTail).
    const tailFrom = Math.max(op.offset, maxS);
    const tailTo = Math.min(end, alignUp(maxS, PAGE));
    if (tailTo > tailFrom) ctx.writeMaybe(op.target, tailFrom, tailTo, set);
    if (result.signal || f.dropWrites || f.writeErrors) {
      ctx.writeMaybe(op.target, op.offset, Math.min(end, maxS), set);
      return;
    }
    ctx.write(op.target, op.offset, Math.min(end, minS), set);
    if (maxS > minS) ctx.writeMaybe(op.target, Math.max(op.offset, minS), Math.min(end, maxS), set);
  },
};

export const mmapReadSemantics: OpSemantics<MmapReadOp> = {
  objects: (op) => [op.target],
  expect(op, ctx) {
    const e = mappingExpectation(op.target, op.offset, op.length, false, ctx);
    if (!e.success) return e;
    const widen = isLenient(ctx, op.target) ? ctx.table.any : ctx.model.faultsOf(op.target).corruptReads ? ctx.table.noise : undefined;
    return {
      ...e,
      read: {
        obj: op.target,
        offset: op.offset,
        pieces: (k) => {
          const ps = mappedPieces(ctx, op.target, op.offset, k);
          return widen ? ps.map(([s, en, v]) => [s, en, ctx.table.union(v, widen)]) : ps;
        },
      },
    };
  },
  apply(op, result, ctx) {
    if (result.ret > 0 && Math.max(...ctx.obj(op.target).sizes) >= op.offset + result.ret) pinObserved(op.target, op.offset, result, ctx);
  },
};

export const msyncSemantics: OpSemantics<MsyncOp> = {
  objects: (op) => [op.target],
  expect(op, ctx) {
    const f = ctx.model.faultsOf(op.target);
    const e = expectOk();
    return f.writeErrors || isLenient(ctx, op.target) ? allowErrnos(e, IO_ERRNOS, 'writeback to a failing device reports EIO') : e;
  },
  apply: () => {},
};
