/**
 * What the model allows for each op of a case, as plain data a reproducer
 * can embed: for every op the allowed results (success and byte counts,
 * errnos, SIGBUS), for every read the allowed sources of each byte range
 * (zeroes, op N's pattern moved by d bytes, anything, an error), and the
 * allowed final content of the objects the model judges.
 *
 * The walk is the model's own (model/semantics: CaseModel, each op's
 * expect/apply), steered by the results the model itself predicts:
 * - a phase with one busy thread is exact: the same expectations the oracle
 *   judges a run with when the kernel behaved as predicted;
 * - a phase where threads race: each thread's expectations against what the
 *   other threads may do (the oracle's RacingView), and the world after the
 *   phase merged as the oracle merges it; marked `racing`;
 * - a racing phase the oracle settles by enumerating interleavings (a
 *   collapse or insert range racing other ops on its file) is not tabled:
 *   its ops are `checked: false` (a reproducer prints their results only).
 * So a reproducer that checks these tables agrees with the oracle wherever
 * the kernel did what the model predicted up to the op being checked.
 */
import { ExtentMap, type Piece, type SrcSet } from '../../model/content.ts';
import type { Case, ObservedGeometry, Op, OpResult, StackInfo } from '../../model/index.ts';
import { CaseModel } from '../../model/semantics/case-model.ts';
import { describeExpected } from '../../model/semantics/compare.ts';
import { finalObjects, predict } from '../../model/semantics/evaluate.ts';
import { OpCtx } from '../../model/semantics/op-semantics.ts';
import { semanticsOf } from '../../model/semantics/registry.ts';
import { Interference, RacingView, SoloView, ThreadRecord } from '../../model/semantics/view.ts';
import type { World } from '../../model/semantics/world.ts';

export type SourceSpec = { kind: 'zero' } | { kind: 'any' } | { kind: 'error' } | { kind: 'noise' } | { kind: 'op'; op: number; delta: number };

/** Bytes [start, end) of an object (absolute offsets) and what each of them may hold. */
export interface PieceSpec {
  start: number;
  end: number;
  sources: SourceSpec[];
  /** Reading here must fail: any data is wrong. */
  mustError: boolean;
}

export interface OpExpectation {
  op: number;
  thread: number;
  phase: number;
  /** Other threads run in the same phase. */
  racing: boolean;
  /** False where the tables would not be right (see the file comment): print the result, judge nothing. */
  checked: boolean;
  success: boolean;
  /** Byte counts a full success may return. */
  counts: number[];
  /** Any shorter positive count is fine too (RWF_NOWAIT). */
  partialAny: boolean;
  /** Any shorter count, 0 included, is fine (an IO error may cut it short). */
  partialOnErrors: boolean;
  /** Any count from this one up to the largest is fine (a racing size change). */
  minCount?: number;
  errnos: string[];
  signal: boolean;
  mustSignal: boolean;
  /** The model's words: "success (4096 bytes), or EINVAL". */
  text: string;
  reasons: string[];
  /** Reads: what the bytes may hold, for the largest count. */
  read?: { obj: string; offset: number; pieces: PieceSpec[] };
}

export interface FinalExpectation {
  obj: string;
  kind: 'file' | 'block';
  /** Sizes the object may end with. */
  sizes: number[];
  /** Ranges to read back and judge (absolute). */
  ranges: Array<[number, number]>;
  pieces: PieceSpec[];
}

export interface CaseExpectations {
  ops: Map<number, OpExpectation>;
  final: FinalExpectation[];
  /** False after a phase the tables cannot follow (interleavings): the final content is not judged. */
  finalChecked: boolean;
  /** The results the tables assume (the steering): a real run's where given, else the model's predictions. */
  predicted: Map<number, OpResult>;
}

/** Objects larger than this are judged only where the program touched them. */
const WHOLE_FINAL_LIMIT = 64 * 1024 * 1024;
const PAGE = 4096;

function sourcesOf(v: SrcSet): SourceSpec[] {
  return v.items.map((s): SourceSpec => (s.t === 'op' ? { kind: 'op', op: s.op, delta: s.delta } : { kind: s.t }));
}

function pieceSpecs(pieces: Piece[]): PieceSpec[] {
  const out: PieceSpec[] = [];
  for (const [s, e, v] of pieces) {
    if (e <= s) continue;
    const spec: PieceSpec = { start: s, end: e, sources: sourcesOf(v), mustError: v.mustError };
    const last = out[out.length - 1];
    if (last && last.end === s && JSON.stringify(last.sources) === JSON.stringify(spec.sources) && last.mustError === spec.mustError) last.end = e;
    else out.push(spec);
  }
  return out;
}

function needsInterleaving(model: CaseModel, phase: Op[][]): boolean {
  for (const ops of phase)
    for (const op of ops) {
      const moved = semanticsOf(op).shifts?.(op, model);
      if (!moved) continue;
      if (phase.filter((other) => other.some((o) => semanticsOf(o).objects(o, model).includes(moved))).length > 1) return true;
    }
  return false;
}

/** The oracle's merge of racing threads' worlds (model/semantics/evaluate.ts mergeThreads), for the tables. */
function mergeThreads(model: CaseModel, start: World, finals: Array<{ world: World; record: ThreadRecord }>): World {
  const out = start.clone();
  for (const [id, o] of out.objects) {
    const writers = finals.filter((f) => f.record.touched.has(id));
    if (writers.length) {
      const merged = ExtentMap.create(model.table, model.none);
      for (const f of writers)
        for (const [s, e, mark] of f.record.touched.get(id)!.pieces(0, Number.MAX_SAFE_INTEGER)) {
          if (mark === model.none) continue;
          for (const [ps, pe, v] of f.world.get(id).content.pieces(s, e)) merged.transform(ps, pe, (prev) => model.table.union(prev, v));
        }
      for (const [s, e, v] of merged.pieces(0, Number.MAX_SAFE_INTEGER)) if (v !== model.none) o.content.assign(s, e, v);
    }
    const sizes = new Set<number>(o.sizes);
    for (const f of finals) if (f.record.sizeOps.has(id)) for (const s of f.world.get(id).sizes) sizes.add(s);
    o.sizes = [...sizes].sort((a, b) => a - b);
    for (const f of finals) {
      if (f.record.lbsValues.has(id)) o.lbs = [...new Set([...o.lbs, ...f.world.get(id).lbs])].sort((a, b) => a - b);
      if (f.record.activeChanged.has(id)) o.active = f.world.get(id).active;
      o.reserved = Math.max(o.reserved, f.world.get(id).reserved);
      o.lenient ||= f.world.get(id).lenient;
    }
  }
  return out;
}

function record(op: Op, thread: number, phase: number, racing: boolean, checked: boolean, ctx: OpCtx, out: Map<number, OpExpectation>): void {
  const e = semanticsOf(op).expect(op, ctx);
  const x: OpExpectation = {
    op: op.id,
    thread,
    phase,
    racing,
    checked,
    success: e.success,
    counts: [...e.counts],
    partialAny: e.partialAny,
    partialOnErrors: e.partialOnErrors,
    errnos: [...e.errnos],
    signal: e.signal,
    mustSignal: e.mustSignal,
    text: describeExpected(e),
    reasons: [...e.reasons],
  };
  if (e.minCount !== undefined) x.minCount = e.minCount;
  if (e.read && e.success && e.counts.length) {
    const k = Math.max(...e.counts);
    if (k > 0) x.read = { obj: e.read.obj, offset: e.read.offset, pieces: pieceSpecs(e.read.pieces(k)) };
  }
  out.set(op.id, x);
}

function touchedRanges(c: Case, id: string, size: number): Array<[number, number]> {
  const spans: Array<[number, number]> = [];
  for (const t of c.program.threads)
    for (const op of t.ops)
      if ('target' in op && op.target === id && 'offset' in op && 'length' in op && typeof op.length === 'number') {
        const s = Math.floor(op.offset / PAGE) * PAGE;
        spans.push([s, Math.min(size, Math.ceil((op.offset + op.length) / PAGE) * PAGE)]);
      }
  spans.sort((a, b) => a[0] - b[0]);
  const merged: Array<[number, number]> = [];
  for (const s of spans) {
    const last = merged[merged.length - 1];
    if (last && s[0] <= last[1]) last[1] = Math.max(last[1], s[1]);
    else if (s[1] > s[0]) merged.push([...s]);
  }
  return merged;
}

/**
 * The tables for a case, assuming the geometry `observed` where given (as a
 * target reports it) and the model's first choice elsewhere (sizeMax, the
 * smallest logical block size).
 */
export function caseExpectations(
  c: Case,
  info: StackInfo,
  observed: Readonly<Record<string, ObservedGeometry>> = {},
  /** Results of a real run to steer by (the oracle's way), instead of the model's predictions, where given. */
  steering?: ReadonlyMap<number, OpResult>,
): CaseExpectations {
  const model = new CaseModel(c, info, observed);
  let followable = true;
  const predicted = new Map(predict(model).results.map((r) => [r.op, r]));
  for (const [id, r] of steering ?? []) if (predicted.has(id)) predicted.set(id, r);
  const ops = new Map<number, OpExpectation>();
  let world = model.initialWorld();
  model.phases.forEach((phase, p) => {
    const busy = phase.map((o, t) => ({ o, t })).filter((x) => x.o.length > 0);
    if (busy.length <= 1) {
      for (const { o, t } of busy)
        for (const op of o) {
          const ctx = new OpCtx(model, world, new SoloView(world), undefined);
          record(op, t, p, false, followable, ctx, ops);
          semanticsOf(op).apply(op, predicted.get(op.id)!, ctx);
        }
      return;
    }
    // After a phase settled by exploring interleavings, the merged world is an approximation: stop judging.
    if (needsInterleaving(model, phase)) followable = false;
    const checked = followable;
    const start = world;
    const seen = phase.map((o) => {
      const w = start.clone();
      const rec = new ThreadRecord(model);
      for (const op of o) semanticsOf(op).apply(op, predicted.get(op.id)!, new OpCtx(model, w, new SoloView(w), rec));
      return rec;
    });
    const finals = phase.map((o, t) => {
      const w = start.clone();
      const rec = new ThreadRecord(model);
      const view = new RacingView(w, start, Interference.from(seen.filter((_, u) => u !== t)), model);
      for (const op of o) {
        const ctx = new OpCtx(model, w, view, rec);
        record(op, t, p, true, checked, ctx, ops);
        semanticsOf(op).apply(op, predicted.get(op.id)!, ctx);
      }
      return { world: w, record: rec };
    });
    world = mergeThreads(model, start, finals);
  });
  const final: FinalExpectation[] = [];
  for (const id of finalObjects(model, world)) {
    const o = world.get(id);
    if (model.faultsOf(id).lenient || o.lenient) continue;
    const size = Math.max(...o.sizes);
    const ranges: Array<[number, number]> = o.kind === 'file' || size <= WHOLE_FINAL_LIMIT ? [[0, size]] : touchedRanges(c, id, size);
    const pieces = ranges.flatMap(([s, e]) => pieceSpecs(o.content.pieces(s, e)));
    final.push({ obj: id, kind: o.kind, sizes: [...o.sizes], ranges, pieces });
  }
  return { ops, final, finalChecked: followable, predicted };
}
