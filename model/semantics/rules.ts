/**
 * Rules shared by several ops: EOF, O_DIRECT alignment, where IO errors are
 * allowed, and ENOSPC. Each states a documented contract (man pages, kernel
 * docs, SCENARIOS.md), never a kernel's accident.
 */
import type { Piece } from '../content.ts';
import type { Buffer } from '../ops/common.ts';
import type { CaseModel } from './case-model.ts';
import type { OpCtx } from './op-semantics.ts';
import type { ObjectState } from './world.ts';
import { uniqueSorted } from './world.ts';

export const PAGE = 4096;

export const alignDown = (x: number, a: number) => x - (x % a);
export const alignUp = (x: number, a: number) => Math.ceil(x / a) * a;

/** Errnos for a failed IO on a device (dm-integrity and AEAD dm-crypt report EILSEQ). */
export const IO_ERRNOS = ['EIO', 'EILSEQ'];
/** What a filesystem may answer once the device beneath it misbehaved. */
export const FS_DAMAGE_ERRNOS = ['EIO', 'EILSEQ', 'EROFS', 'EUCLEAN', 'ENOSPC', 'EFBIG', 'ENOENT', 'EINVAL', 'ENODATA', 'EBADMSG'];

/** Full-read byte counts: everything asked for, or up to EOF for each possible size. */
export function readCounts(sizes: number[], offset: number, length: number): number[] {
  if (sizes.length === 1) return [Math.max(0, Math.min(length, sizes[0]! - offset))];
  return uniqueSorted(sizes.map((s) => Math.max(0, Math.min(length, s - offset))));
}

/** The iovec lengths an op's buffer is cut into: equal parts, the last takes the remainder. */
export function iovecLengths(length: number, vectors: number): number[] {
  const n = Math.min(vectors, length);
  const part = Math.floor(length / n);
  return Array.from({ length: n }, (_, i) => (i === n - 1 ? length - part * (n - 1) : part));
}

/** Some byte near [s, e) (widened to pages, the unit of caches and RMW) may fail to read. */
export function mayErrorNear(ctx: OpCtx, obj: string, s: number, e: number): boolean {
  return ctx.view.mayError(obj, alignDown(s, PAGE), alignUp(Math.max(e, s + 1), PAGE));
}

export function isLenient(ctx: OpCtx, obj: string): boolean {
  return lenientObject(ctx.model, ctx.obj(obj));
}

/** Faults or damage under a filesystem make its files' data and errors unjudgeable. */
export function lenientObject(model: CaseModel, o: ObjectState): boolean {
  return model.faultsOf(o.id).lenient || o.lenient;
}

export interface DioVerdict {
  /** Aligned for every block size the target may have: the IO must succeed. */
  aligned: boolean;
  why: string;
}

/**
 * O_DIRECT alignment. open(2): misaligned direct IO "can either fail with
 * EINVAL or fall back to buffered I/O"; IO aligned to the device's logical
 * block size (for a file: also its filesystem's block size) must work.
 */
export function dioAlignment(ctx: OpCtx, target: string, offset: number, length: number, vectors: number, buffer: Buffer): DioVerdict {
  const v = dioVerdicts(ctx, target);
  // The iovecs (iovecLengths) are n - 1 parts of `part` bytes and a last one of the rest, at
  // buffer.align, align + part, ...: all aligned to u exactly when these are.
  const n = Math.min(vectors, length);
  const part = Math.floor(length / n);
  const last = length - part * (n - 1);
  const align = buffer.align;
  for (const u of v.units) if (offset % u !== 0 || align % u !== 0 || last % u !== 0 || (n > 1 && part % u !== 0)) return v.misaligned;
  return v.aligned;
}

interface DioVerdicts {
  units: readonly number[];
  aligned: DioVerdict;
  misaligned: DioVerdict;
}

/** Per case: a file's O_DIRECT unit and verdicts (fixed for the case); a block device's by its current block sizes. */
const fileDio = new WeakMap<CaseModel, Map<string, DioVerdicts>>();
const blockDio = new WeakMap<readonly number[], DioVerdicts>();

function dioVerdicts(ctx: OpCtx, target: string): DioVerdicts {
  if (ctx.model.isFile(target)) {
    let perCase = fileDio.get(ctx.model);
    if (!perCase) fileDio.set(ctx.model, (perCase = new Map()));
    let v = perCase.get(target);
    if (!v) {
      const fsl = ctx.model.info.fsOf(target);
      const devLbs = ctx.model.fileDeviceBlockSizes(target);
      v = verdicts([Math.max(fsl?.blockSize ?? PAGE, ...devLbs)], `${fsl?.type ?? 'fs'} block size ${fsl?.blockSize} on a device with logical block size ${devLbs.join('/')}`);
      perCase.set(target, v);
    }
    return v;
  }
  // The same array is the same block sizes (an object's lbs list is replaced, never changed in place).
  const units = ctx.view.lbs(target);
  let v = blockDio.get(units);
  if (!v) {
    v = verdicts(units, `logical block size ${units.join(' or ')}`);
    blockDio.set(units, v);
  }
  return v;
}

function verdicts(units: readonly number[], what: string): DioVerdicts {
  return {
    units,
    aligned: { aligned: true, why: `O_DIRECT aligned to the ${what} must succeed` },
    misaligned: { aligned: false, why: `O_DIRECT not aligned to the ${what} may fail with EINVAL or fall back to buffered IO` },
  };
}

/** A file may run out of space: the files on its filesystem may need more than the model guarantees. */
export function mayRunOutOfSpace(ctx: OpCtx, file: string, end: number): boolean {
  const fsl = ctx.model.info.fsOf(file);
  const facts = ctx.model.fsFacts(file);
  if (!fsl || !facts) return false;
  const dev = ctx.model.geometry.get(fsl.on);
  if (!dev) return true;
  let used = 0;
  for (const f of ctx.model.info.usersOf(fsl.id)) {
    if (f.kind !== 'file') continue;
    const o = ctx.obj(f.id);
    used += Math.max(o.reserved, ...o.sizes, f.id === file ? end : 0);
  }
  return used > facts.guaranteedData(dev.size);
}

/** Pieces of the bytes a mmap of [offset, offset+len) shows: file content below EOF, zeroes in the rest of the last page. */
export function mappedPieces(ctx: OpCtx, file: string, offset: number, len: number): Piece[] {
  const sizes = ctx.view.sizes(file);
  const minS = Math.min(...sizes);
  const maxS = Math.max(...sizes);
  const end = offset + len;
  const out: Piece[] = [];
  for (const p of ctx.view.pieces(file, offset, Math.min(end, maxS))) {
    const [s, e, v] = p;
    // Between the smallest and largest possible EOF a byte may be data or the zeroed tail.
    if (e <= minS) out.push(p);
    else if (s >= minS) out.push([s, e, ctx.table.union(v, ctx.table.zero)]);
    else {
      out.push([s, minS, v]);
      out.push([minS, e, ctx.table.union(v, ctx.table.zero)]);
    }
  }
  if (end > maxS) {
    // The rest of the page that holds EOF reads as zeroes, or as what a store through a
    // mapping left there (mmap-write keeps those stores past EOF).
    const from = Math.max(offset, maxS);
    const tailTo = Math.max(from, Math.min(end, alignUp(maxS, PAGE)));
    for (const [s, e, v] of ctx.view.pieces(file, from, tailTo)) out.push([s, e, ctx.table.union(v, ctx.table.zero)]);
    if (end > tailTo) out.push([tailTo, end, ctx.table.zero]);
  }
  return out;
}

/** Whether a mapping access of [offset, end) may fault past EOF (SIGBUS) or must. */
export function mappingFaults(sizes: number[], offset: number, end: number): { may: boolean; must: boolean } {
  const beyond = sizes.map((s) => end > alignUp(s, PAGE));
  return { may: beyond.some(Boolean), must: beyond.every(Boolean) };
}

/**
 * dm-dust.rst: a write to a bad block removes the block from the list. dm-dust
 * splits IO at its block size, so a write to any part of a block clears all
 * of it: the rest of the block reads what is below it again (the object's
 * initial content). `maybe`: the write may not have reached the device.
 */
export function clearBadBlocks(ctx: OpCtx, obj: string, s: number, e: number, maybe: boolean): void {
  const blocks = ctx.model.badBlocksIn(obj);
  if (blocks.length === 0) return;
  for (const ranges of blocks) {
    if (!ranges.some(([bs, be]) => bs < e && s < be)) continue;
    for (const [bs, be] of ranges) {
      readBelowAgain(ctx, obj, bs, Math.min(be, s), maybe);
      readBelowAgain(ctx, obj, Math.max(bs, e), be, maybe);
    }
  }
}

/**
 * Bytes of [s, e) of `obj` that a bad block made fail read what is below them
 * again (the object's initial content) instead; `maybe`: or still fail.
 */
export function readBelowAgain(ctx: OpCtx, obj: string, s: number, e: number, maybe: boolean): void {
  const t = ctx.table;
  const below = ctx.obj(obj).content.fill;
  for (const [qs, qe, v] of ctx.obj(obj).content.pieces(s, e)) {
    if (!v.error) continue;
    const cleared = t.of([...v.items.filter((x) => x.t !== 'error'), ...below.items]);
    ctx.write(obj, qs, qe, maybe ? t.union(v, cleared) : cleared);
  }
}

/**
 * Snapshots a write to [s, e) of `target` makes copy chunks for (dm-snapshot:
 * a write to the origin, or to the snapshot over part of a chunk, first
 * copies the whole chunk from the origin) whose old content may not read.
 * The copy then fails: the write fails with EIO and dm-snapshot invalidates
 * the snapshot, whose IO fails from then on. Through layers above the origin
 * or the snapshot the model does not map the range down: there any chunk of
 * the device that may not read counts.
 */
export function snapshotsCowMayFail(ctx: OpCtx, target: string, s: number, e: number): string[] {
  const m = ctx.model;
  const out: string[] = [];
  for (const l of m.info.layers) {
    if (l.kind !== 'dm-snapshot' || !ctx.view.active(l.id)) continue;
    for (const via of [l.origin, l.id]) {
      const at = target === via;
      if (!at && !m.info.below(target).some((x) => x.id === via)) continue;
      // A write to the snapshot that covers whole chunks copies nothing.
      if (at && via === l.id && s % l.chunk === 0 && e % l.chunk === 0) continue;
      const from = at ? s - (s % l.chunk) : 0;
      const to = at ? Math.ceil(e / l.chunk) * l.chunk : Math.max(...ctx.view.sizes(via));
      if (ctx.view.mayError(via, from, to)) {
        out.push(l.id);
        break;
      }
    }
  }
  return out;
}
