/** What read and write have in common: the target's errors, alignment, and where buffer bytes come from. */
import type { OpResult } from '../observation.ts';
import type { ReadOp } from '../ops/read.ts';
import type { WriteOp } from '../ops/write.ts';
import type { Piece, SrcSet } from '../content.ts';
import { type Expected, type OpCtx, type ReadExpectation, allowErrnos, expectError, expectOk } from './op-semantics.ts';
import { FS_DAMAGE_ERRNOS, IO_ERRNOS, PAGE, alignUp, dioAlignment, isLenient, mayErrorNear, readCounts } from './rules.ts';
import { uniqueSorted } from './world.ts';

type DataOp = ReadOp | WriteOp;

/** The expectations every read and write starts from, before direction-specific rules. */
export function baseExpectation(op: DataOp, ctx: OpCtx, counts: number[]): Expected {
  if (!ctx.view.active(op.target)) return expectError(['ENOENT', 'ENXIO'], `'${op.target}' does not exist at this point`);
  // A fresh object, changed in place below until it is returned (reads and writes are the hot path).
  let e = expectOk(counts);
  if (op.direct) {
    const dio = dioAlignment(ctx, op.target, op.offset, op.length, op.vectors, op.buffer);
    if (dio.aligned) e.reasons = [dio.why];
    else e = allowErrnos(e, ['EINVAL'], dio.why);
  }
  if (op.nowait) {
    e = allowErrnos(e, ['EAGAIN', 'EOPNOTSUPP'], 'RWF_NOWAIT may answer EAGAIN (would block) or EOPNOTSUPP (not supported here)');
    e = { ...e, partialAny: true, reasons: [...e.reasons, 'RWF_NOWAIT may return a short count'] };
  }
  const f = ctx.model.faultsOf(op.target);
  if (isLenient(ctx, op.target)) e = allowErrnos({ ...e, partialOnErrors: true }, FS_DAMAGE_ERRNOS, 'the device under this filesystem injects faults or was damaged');
  if (op.kind === 'read' ? f.readErrors : f.writeErrors) e = allowErrnos({ ...e, partialOnErrors: true }, IO_ERRNOS, 'a dm-flakey layer below fails IO while down');
  // Only reading meets unreadable bytes. A write replaces them (a dm-dust bad block is cleared,
  // a never-written integrity sector gets its tag); write.ts allows the error where a
  // buffered write must first read a page it covers only in part.
  if (op.kind === 'read' && mayErrorNear(ctx, op.target, op.offset, op.offset + op.length))
    e = allowErrnos({ ...e, partialOnErrors: true }, IO_ERRNOS, 'bytes in or near the range may be unreadable (bad block, damaged or never-written integrity-protected sectors)');
  if (op.buffer.placement === 'mmap') {
    // The kernel copies through a mapping that may reach past the buffer file's EOF.
    const b = op.buffer;
    const start = b.offset + b.align;
    const end = start + op.length;
    const sizes = ctx.view.sizes(b.file);
    if (sizes.some((s) => end > alignUp(s, PAGE))) {
      e = allowErrnos({ ...e, partialOnErrors: true }, ['EFAULT'], `the buffer maps '${b.file}' past its EOF`);
      // A page past the EOF page faults (SIGBUS, which the kernel's copy turns into EFAULT): when
      // it does for every size the buffer file may have, the op stops at the last mapped page,
      // and fails with EFAULT when that leaves nothing (a count of 0 would claim EOF).
      const most = Math.max(0, alignUp(Math.max(...sizes), PAGE) - start);
      if (end > start + most) {
        const counts = uniqueSorted(e.counts.filter((c) => c === 0 || most > 0).map((c) => Math.min(c, most)));
        e = { ...e, counts, success: e.success && counts.length > 0 };
      }
    }
  }
  return e;
}

/** A read's full counts and data, before errors. */
export function readExpectation(op: ReadOp, ctx: OpCtx): Expected {
  const sizes = ctx.view.sizes(op.target);
  const counts = readCounts(sizes, op.offset, op.length);
  // baseExpectation returns an object of its own: it is completed in place.
  const e = baseExpectation(op, ctx, counts);
  if (!e.success) return e;
  // Another thread changes the size while this read runs: it may stop at any EOF in between
  // (filemap_read checks i_size batch by batch; buffered writes raise it folio by folio).
  if (sizes !== ctx.obj(op.target).sizes && counts.length > 1) e.minCount = Math.min(...counts);
  const f = ctx.model.faultsOf(op.target);
  // Under a damaged filesystem anything may be read; dm-flakey corrupt_bio_byte damages bytes
  // of the right data but never turns it into another op's.
  const widen = isLenient(ctx, op.target) ? ctx.table.any : f.corruptReads ? ctx.table.noise : undefined;
  e.read = new ReadPieces(op.target, op.offset, ctx, widen);
  return e;
}

/** What the first k bytes of a read may hold (a class, not a closure per read: reads are the hot path). */
class ReadPieces implements ReadExpectation {
  constructor(
    readonly obj: string,
    readonly offset: number,
    private readonly ctx: OpCtx,
    private readonly widen: SrcSet | undefined,
  ) {}

  pieces(k: number): Piece[] {
    const ps = this.ctx.view.pieces(this.obj, this.offset, this.offset + k);
    const widen = this.widen;
    if (!widen) return ps;
    const t = this.ctx.table;
    return ps.map(([s, en, v]) => [s, en, t.union(v, widen)]);
  }
}

/** Put what a read returned into its buffer when the buffer is a mapping of a file. */
export function landInBuffer(op: ReadOp, result: OpResult, ctx: OpCtx): void {
  if (op.buffer.placement !== 'mmap' || result.ret <= 0) return;
  const into = op.buffer.file;
  const base = op.buffer.offset + op.buffer.align;
  // Bytes past EOF are not the file's: a later extension zeroes them. The copy reaches a page only
  // while it is at or below the EOF page, so where racing threads may have moved EOF (this thread's
  // own EOF or one of theirs at or above it) a byte between that EOF and the end of its page may
  // have landed past EOF or not; every other byte below the largest EOF landed.
  const own = Math.max(...ctx.obj(into).sizes);
  const sizes = ctx.view.sizes(into);
  const size = Math.max(own, ...sizes);
  const unsure: Array<[number, number]> = [];
  for (const eof of [own, ...sizes])
    if (eof >= own && eof % PAGE !== 0) unsure.push([eof, Math.min(alignUp(eof, PAGE), size)]);
  unsure.sort((a, b) => a[0] - b[0]);
  for (const x of result.data ?? []) {
    const s = base + x.offset;
    const e = Math.min(base + x.offset + x.length, size);
    if (s >= e) continue;
    const set =
      x.src === 'zero' ? ctx.table.zero
      : x.src === 'unknown' || x.src === 'error' ? ctx.table.any
      : ctx.table.op(x.src.op, x.src.delta + (op.offset - base));
    let pos = s;
    for (const [us, ue] of unsure) {
      if (ue <= pos || us >= e) continue;
      ctx.write(into, pos, Math.min(us, e), set);
      ctx.writeMaybe(into, Math.max(pos, us), Math.min(ue, e), set);
      pos = Math.min(ue, e);
    }
    ctx.write(into, pos, e, set);
  }
}

/**
 * After a read returned data the model allowed, the bytes it settled stay
 * settled (a race resolved one way is not undone), unless another thread
 * may still be writing them.
 */
export function pinObserved(obj: string, offset: number, result: OpResult, ctx: OpCtx): void {
  if (result.ret <= 0 || !result.data) return;
  // Only a set of several sources can be narrowed: none stored, nothing to pin.
  if (!ctx.obj(obj).content.mayHoldSeveral()) return;
  if (ctx.raced(obj, offset, offset + result.ret)) return;
  for (const x of result.data) {
    const s = offset + x.offset;
    const e = s + x.length;
    const seen =
      x.src === 'zero' ? ctx.table.zero
      : x.src === 'unknown' || x.src === 'error' ? undefined
      : ctx.table.op(x.src.op, x.src.delta);
    if (!seen) continue;
    for (const [ps, pe, v] of ctx.obj(obj).content.pieces(s, e)) {
      if (v.size === 1) continue;
      const pinned = ctx.table.intersect(v, seen);
      if (!pinned) continue;
      ctx.write(obj, ps, pe, v.error ? ctx.table.union(pinned, ctx.table.error) : pinned);
    }
  }
}
