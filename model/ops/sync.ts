/** Writeback and cache control: fsync/fdatasync, sync_file_range, BLKFLSBUF, drop_caches. */
import { z } from 'zod';
import { Bytes, LayerId, OpId } from './common.ts';

export const FsyncOp = z.strictObject({
  kind: z.literal('fsync'),
  id: OpId,
  target: LayerId,
  /** fdatasync instead of fsync. */
  dataOnly: z.boolean().default(false),
});
export type FsyncOp = z.infer<typeof FsyncOp>;

export const SyncFileRangeOp = z.strictObject({
  kind: z.literal('sync-file-range'),
  id: OpId,
  target: LayerId,
  offset: Bytes,
  /** 0: to the end of the file. */
  length: Bytes,
  /** write: SYNC_FILE_RANGE_WRITE; wait-write: WAIT_BEFORE|WRITE|WAIT_AFTER. */
  flags: z.enum(['write', 'wait-write']).default('wait-write'),
});
export type SyncFileRangeOp = z.infer<typeof SyncFileRangeOp>;

/** BLKFLSBUF on a block device: write back and drop its page cache. */
export const FlushOp = z.strictObject({ kind: z.literal('flush'), id: OpId, target: LayerId });
export type FlushOp = z.infer<typeof FlushOp>;

/** sync, then echo 3 > /proc/sys/vm/drop_caches. */
export const DropCachesOp = z.strictObject({ kind: z.literal('drop-caches'), id: OpId });
export type DropCachesOp = z.infer<typeof DropCachesOp>;

import { type OpCtx, type OpSemantics, allowErrnos, expectOk } from '../semantics/op-semantics.ts';
import { FS_DAMAGE_ERRNOS, IO_ERRNOS, isLenient } from '../semantics/rules.ts';

/** Writeback reports what went wrong underneath: failing writes, damaged integrity sectors, a damaged fs. */
function writebackExpectation(target: string, ctx: OpCtx) {
  let e = expectOk();
  const f = ctx.model.faultsOf(target);
  if (f.writeErrors) e = allowErrnos(e, IO_ERRNOS, 'writeback to a dm-flakey layer that fails writes reports EIO');
  if (isLenient(ctx, target)) e = allowErrnos(e, FS_DAMAGE_ERRNOS, 'the device under this filesystem injects faults or was damaged');
  if (ctx.obj(target).content.fill.error || ctx.view.mayError(target, 0, Number.MAX_SAFE_INTEGER))
    e = allowErrnos(e, IO_ERRNOS, 'writeback may need to read unreadable sectors');
  return e;
}

export const fsyncSemantics: OpSemantics<FsyncOp> = {
  objects: (op) => [op.target],
  expect: (op, ctx) => writebackExpectation(op.target, ctx),
  apply: () => {},
};

export const syncFileRangeSemantics: OpSemantics<SyncFileRangeOp> = {
  objects: (op) => [op.target],
  expect: (op, ctx) => writebackExpectation(op.target, ctx),
  apply: () => {},
};

export const flushSemantics: OpSemantics<FlushOp> = {
  objects: (op) => [op.target],
  expect: (op, ctx) => writebackExpectation(op.target, ctx),
  apply: () => {},
};

export const dropCachesSemantics: OpSemantics<DropCachesOp> = {
  objects: () => [],
  expect: () => expectOk(),
  apply: () => {},
};
