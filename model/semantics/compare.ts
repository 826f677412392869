/**
 * Compare one observed result (or the final content) with what the model
 * allows, and say precisely how it differs: the class, the first bad offset,
 * the writers the model expected there and the one the target showed.
 */
import type { Piece, SrcSet } from '../content.ts';
import type { ObservedExtent, OpResult } from '../observation.ts';
import type { Op } from '../ops/index.ts';
import { patternByte } from '../pattern.ts';
import type { DataClass, Divergence } from '../verdict.ts';
import type { CaseModel, OpPlace } from './case-model.ts';
import type { Expected } from './op-semantics.ts';

export function describeExpected(e: Expected): string {
  const parts: string[] = [];
  if (e.success) {
    const counts = e.counts.length ? e.counts.join(' or ') : '0';
    parts.push(`success (${counts} bytes${e.partialAny || e.partialOnErrors ? ', or fewer' : ''})`);
  }
  if (e.errnos.length) parts.push(e.errnos.join(' or '));
  if (e.signal) parts.push('SIGBUS');
  return parts.join(', or ') || 'nothing';
}

export function describeResult(r: OpResult): string {
  if (r.signal) return r.signal;
  if (r.ret < 0) return r.errno ?? 'an error';
  return `success (${r.ret} bytes)`;
}

interface OpDivergenceBase {
  op: number;
  opKind: string;
  thread: number;
}

function base(op: Op, thread: number): OpDivergenceBase {
  return { op: op.id, opKind: op.kind, thread };
}

function texts(op: Op, thread: number, exp: Expected, res: OpResult) {
  const b = base(op, thread);
  const expected = describeExpected(exp);
  const observed = describeResult(res);
  const why = exp.reasons.length ? ` (${exp.reasons.join('; ')})` : '';
  return { b, expected, observed, why };
}

/** The first way `res` (of `op`, run by thread `thread`) differs from `exp`, if any. */
export function compareResult(op: Op, thread: number, exp: Expected, res: OpResult, model: CaseModel): Divergence | undefined {
  // The descriptions are only needed for a divergence: most results match, so they are made on the way out.
  if (res.signal) {
    if (exp.signal) return undefined;
    const { b, expected, observed } = texts(op, thread, exp, res);
    return { ...b, class: 'unexpected-signal', expected, observed, message: `op ${b.op} (${b.opKind}) died with ${res.signal}; the model allows ${expected}` };
  }
  if (exp.mustSignal) {
    const { b, expected, observed, why } = texts(op, thread, exp, res);
    return { ...b, class: 'missing-signal', expected, observed, message: `op ${b.op} (${b.opKind}) returned ${observed}; it had to raise SIGBUS${why}` };
  }
  if (res.ret < 0) {
    if (res.errno && exp.errnos.includes(res.errno)) return undefined;
    const { b, expected, observed } = texts(op, thread, exp, res);
    return { ...b, class: 'unexpected-error', expected, observed, message: `op ${b.op} (${b.opKind}) failed with ${observed}; the model allows ${expected}` };
  }
  if (!exp.success) {
    const { b, expected, observed, why } = texts(op, thread, exp, res);
    return { ...b, class: 'missing-error', expected, observed, message: `op ${b.op} (${b.opKind}) succeeded; it had to fail with ${exp.errnos.join(' or ')}${why}` };
  }
  const k = res.ret;
  let full = 0;
  for (const c of exp.counts) if (c > full) full = c;
  if (!exp.counts.includes(k)) {
    const shortOk = k < full && ((exp.partialAny && k > 0) || exp.partialOnErrors || (exp.minCount !== undefined && k >= exp.minCount));
    if (!shortOk) {
      const { b, expected, observed, why } = texts(op, thread, exp, res);
      const isShortRead = exp.read !== undefined && k < full;
      return {
        ...b,
        class: isShortRead ? 'short-read' : 'wrong-count',
        object: exp.read?.obj,
        offset: exp.read ? exp.read.offset + k : undefined,
        expected,
        observed,
        message: isShortRead
          ? `op ${b.op} (${b.opKind}) returned ${k} of ${full} bytes below EOF${why}`
          : `op ${b.op} (${b.opKind}) returned ${k} bytes; the model allows ${expected}`,
      };
    }
  }
  if (exp.read && k > 0) {
    if (!res.data) return undefined; // a target that does not decode data is judged on counts only
    const bad = firstDataMismatch(exp.read.pieces(k), res.data, exp.read.offset, k, model, op, false, false, exp.read.obj);
    if (bad) {
      const b = base(op, thread);
      return { ...b, ...bad, class: 'wrong-data', object: exp.read.obj, message: `op ${b.op} (${b.opKind}) read ${bad.observed} at offset ${bad.offset} of '${exp.read.obj}'; the model allows ${bad.expected}` };
    }
  }
  return undefined;
}

export interface DataMismatch {
  offset: number;
  dataClass: DataClass;
  expected: string;
  observed: string;
  expectedWriters: number[];
  observedWriter?: number;
}

/**
 * `final`: judging content read back after the program, where a target reports
 * a block it could not read as an 'error' run. A read op that succeeded
 * returned bytes, so an 'error' run in its data is never right.
 */
function accepts(v: SrcSet, x: ObservedExtent['src'], final: boolean): boolean {
  // Where the bytes must be unreadable, the only right observation is that they
  // could not be read; any data there is silently wrong data.
  if (v.mustError) return final && x === 'error';
  if (x === 'error') return final && v.error;
  if (v.any) return true;
  if (x === 'zero') return v.zero || v.noise;
  if (x === 'unknown') return v.noise;
  return v.hasOp(x.op, x.delta);
}

function describeObserved(x: ObservedExtent['src']): string {
  if (x === 'zero') return 'zeroes';
  if (x === 'unknown') return 'bytes no op wrote';
  if (x === 'error') return 'an unreadable block';
  return x.delta === 0 ? `op ${x.op}'s data` : `op ${x.op}'s data from ${x.delta > 0 ? '+' : ''}${x.delta} bytes away`;
}

/**
 * Walk the allowed pieces and the observed runs together (both cover
 * [base, base+len); runs are relative to base) and return the first byte that
 * the model does not allow.
 */
export function firstDataMismatch(
  pieces: Piece[],
  runs: readonly ObservedExtent[],
  baseOffset: number,
  len: number,
  model: CaseModel,
  reader: Op | undefined,
  runsAreAbsolute = false,
  final = runsAreAbsolute,
  /** The object the bytes are in, to tell stale data from another op's. */
  obj?: string,
  /**
   * Final reads only: the first address of [from, to) whose read unit (a
   * device cannot return part of a logical block, nor the page cache part
   * of a page) holds no byte that may fail to read, or undefined. An
   * 'error' run over readable bytes is right where their unit holds one
   * that may fail: the target could not read the unit at all.
   */
  unreadableUnit?: (from: number, to: number) => number | undefined,
): DataMismatch | undefined {
  // Runs usually arrive in order: sort a copy only when they do not (the sort is stable, so the same order results).
  let inOrder = true;
  for (let i = 1; i < runs.length && inOrder; i++) if (runs[i]!.offset < runs[i - 1]!.offset) inOrder = false;
  const sorted = inOrder ? runs : [...runs].sort((a, b) => a.offset - b.offset);
  let ri = 0;
  let pos = 0; // relative
  for (let pi = 0; pi < pieces.length; pi++) {
    const piece = pieces[pi]!;
    const v = piece[2];
    const s = piece[0] - baseOffset;
    const e = Math.min(piece[1] - baseOffset, len);
    pos = Math.max(pos, s);
    while (pos < e) {
      while (ri < sorted.length && rel(sorted[ri]!, baseOffset, runsAreAbsolute) + sorted[ri]!.length <= pos) ri++;
      const run = sorted[ri];
      const runStart = run ? rel(run, baseOffset, runsAreAbsolute) : Number.POSITIVE_INFINITY;
      if (!run || runStart > pos) {
        // A hole in what the target reported is bytes nobody can vouch for.
        if (!v.any) return mismatch(v, 'unknown', baseOffset + pos, model, reader, obj);
        pos = Math.min(e, runStart);
        continue;
      }
      const upTo = Math.min(e, runStart + run.length);
      if (!accepts(v, run.src, final)) {
        const bad =
          final && run.src === 'error' && !v.mustError && unreadableUnit
            ? unreadableUnit(baseOffset + pos, baseOffset + upTo)
            : firstByteNotAllowed(v, run, baseOffset + pos, baseOffset + upTo, model);
        if (bad !== undefined) return mismatch(v, run.src, bad, model, reader, obj);
      }
      pos = upTo;
    }
  }
  return undefined;
}

/**
 * A run attributed to op X stands for X's pattern bytes. Two ops' patterns
 * agree on a given byte 1 time in 255, and there the decoder cannot know
 * which op wrote it (at a boundary between two writes it extends the run it
 * is in). So a run the sets do not name is judged by the byte values it
 * stands for: the first address in [from, to) whose value no allowed op
 * source has there, or undefined when every byte has an allowed value.
 */
function firstByteNotAllowed(v: SrcSet, run: ObservedExtent, from: number, to: number, model: CaseModel): number | undefined {
  const src = run.src;
  if (typeof src !== 'object' || v.mustError) return from;
  // A damaged byte may equal some op's pattern by chance and decode as a run of 1-3 bytes of it;
  // real data of another op is a longer run.
  if (v.noise && run.length <= 3) return undefined;
  if (v.ops.size === 0) return from;
  const allowed = [...v.ops.values()];
  for (let a = from; a < to; a++) {
    const b = patternByte(model.seed, src.op, a + src.delta);
    if (!allowed.some((o) => patternByte(model.seed, o.op, a + o.delta) === b)) return a;
  }
  return undefined;
}

function rel(x: ObservedExtent, base: number, absolute: boolean): number {
  return absolute ? x.offset - base : x.offset;
}

function mismatch(v: SrcSet, src: ObservedExtent['src'], offset: number, model: CaseModel, reader: Op | undefined, obj: string | undefined): DataMismatch {
  const expectedWriters = [...v.ops.values()].map((o) => o.op);
  const observedWriter = typeof src === 'object' ? src.op : undefined;
  return {
    offset,
    dataClass: classify(v, src, offset, obj, model, reader),
    expected: v.mustError ? 'an error (the bytes are unreadable)' : v.toString(),
    observed: describeObserved(src),
    expectedWriters,
    observedWriter,
  };
}

function classify(v: SrcSet, src: ObservedExtent['src'], offset: number, obj: string | undefined, model: CaseModel, reader: Op | undefined): DataClass {
  if (v.mustError) return 'data-instead-of-error';
  if (src === 'zero') return 'zeroes';
  if (src === 'unknown' || src === 'error') return 'garbage';
  const same = [...v.ops.values()].some((o) => o.op === src.op);
  if (same) return 'shifted';
  // An op that ran before the expected writers, or before the reader, and wrote these very
  // bytes: its data is stale here. An op that never wrote them is another op, however early.
  const seen = model.places.get(src.op);
  const before = (a: OpPlace | undefined, b: OpPlace | undefined) =>
    !!a && !!b && (a.phase < b.phase || (a.thread === b.thread && a.phase === b.phase && a.index < b.index));
  const expectedPlaces = [...v.ops.values()].map((o) => model.places.get(o.op));
  if (seen && isWriter(seen.op) && wroteHere(seen.op, offset + src.delta, obj, model)) {
    if (expectedPlaces.length && expectedPlaces.every((p) => before(seen, p))) return 'stale';
    if (!expectedPlaces.length && reader && before(seen, model.places.get(reader.id))) return 'stale';
  }
  return 'other-op';
}

function isWriter(op: Op): boolean {
  return op.kind === 'write' || op.kind === 'mmap-write';
}

/** The writer put its pattern byte for `addr` at `addr` of this object, or of a layer above or below it. */
function wroteHere(op: Op, addr: number, obj: string | undefined, model: CaseModel): boolean {
  if (op.kind !== 'write' && op.kind !== 'mmap-write') return false;
  if (addr < op.offset || addr >= op.offset + op.length) return false;
  if (obj === undefined || op.target === obj) return true;
  const below = (a: string, b: string) => model.info.below(a).some((l) => l.id === b);
  return below(obj, op.target) || below(op.target, obj);
}
