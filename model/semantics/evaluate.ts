/**
 * Walks a program phase by phase (barriers cut phases) and either predicts
 * one allowed run (the `model` target) or judges an observed run.
 *
 * Races, per phase:
 * - one thread: plain sequential semantics;
 * - several threads: per byte, a read sees its own thread's last write or the
 *   phase's starting value, or anything another thread writes in the phase;
 *   the phase ends with, per byte, the last write of any thread that wrote it
 *   (or the union of them when several did); sizes by any order of the size
 *   changes;
 * - when an op that moves content (collapse/insert range) races other ops on
 *   the same object, the interleavings of the phase's ops are explored one by
 *   one (these ops hold the inode lock, so they are atomic), pruned by the
 *   observed results, and the surviving end states are joined.
 */
import { ExtentMap, type Piece } from '../content.ts';
import type { FinalContent, Observation, ObservedExtent, OpResult } from '../observation.ts';
import type { Op } from '../ops/index.ts';
import type { Divergence } from '../verdict.ts';
import type { CaseModel } from './case-model.ts';
import { compareResult, firstDataMismatch } from './compare.ts';
import { type Expected, OpCtx } from './op-semantics.ts';
import { semanticsOf } from './registry.ts';
import { PAGE, lenientObject } from './rules.ts';
import { Interference, RacingView, type SizeOp, SoloView, ThreadRecord, type View, applySizeOp } from './view.ts';
import { type ObjectState, World, uniqueSorted } from './world.ts';

const MAX_DIVERGENCES = 50;
const MAX_INTERLEAVING_STEPS = 200_000;
const MAX_SIZE_STATES = 200_000;

export interface Judgement {
  divergences: Divergence[];
  notes: string[];
  /** The observation lacked results the program must have produced: an infrastructure problem. */
  incomplete?: string;
  world: World;
}

/** One run the model allows: every op takes its first allowed outcome, threads run one after another. */
export function predict(model: CaseModel): { results: OpResult[]; world: World } {
  const world = model.initialWorld();
  const results: OpResult[] = [];
  // One context serves every op: it holds only the world, which the ops share anyway.
  const ctx = new OpCtx(model, world, new SoloView(world), undefined);
  for (const phase of model.phases)
    for (const ops of phase)
      for (const op of ops) {
        const sem = semanticsOf(op);
        const res = canonical(op, sem.expect(op, ctx));
        sem.apply(op, res, ctx);
        results.push(res);
      }
  for (const t of model.theCase.program.threads) for (const op of t.ops) if (op.kind === 'barrier') results.push({ op: op.id, ret: 0 });
  return { results, world };
}

/** The first allowed outcome: success with the largest count where allowed, else the first errno or SIGBUS. */
function canonical(op: Op, e: Expected): OpResult {
  if (e.mustSignal) return { op: op.id, ret: -1, signal: 'SIGBUS' };
  if (e.success && e.counts.length) {
    let k = e.counts[0]!;
    for (const c of e.counts) if (c > k) k = c;
    if (!e.read || k === 0) return { op: op.id, ret: k };
    const pieces = e.read.pieces(k);
    let stop = false;
    for (let i = 0; i < pieces.length; i++) if (pieces[i]![2].mustError) stop = true;
    if (!stop) return { op: op.id, ret: k, data: runsOf(pieces, e.read.offset, false) };
  }
  if (e.errnos.length) return { op: op.id, ret: -1, errno: e.errnos.includes('EIO') ? 'EIO' : e.errnos[0]! };
  if (e.signal) return { op: op.id, ret: -1, signal: 'SIGBUS' };
  return { op: op.id, ret: 0 };
}

/**
 * The runs a target that returns the first source of every piece reports
 * (offsets relative to `at`), neighbours with the same source merged.
 * `final`: content read back, where an unreadable block is an 'error' run.
 */
function runsOf(pieces: readonly Piece[], at: number, final: boolean): ObservedExtent[] {
  // The list outlives the walk (it is the prediction): made at most as long as the pieces, cut to the runs.
  const out = new Array<ObservedExtent>(pieces.length);
  let n = 0;
  let last: ObservedExtent | undefined;
  for (let i = 0; i < pieces.length; i++) {
    const p = pieces[i]!;
    const s = p[0];
    const en = p[1];
    const v = p[2];
    const src: ObservedExtent['src'] = v.opCount ? { op: v.firstOpId, delta: v.firstOpDelta } : v.zero ? 'zero' : final && v.mustError ? 'error' : 'unknown';
    // Pieces tile their range, so each one starts where the last ended.
    if (last && sameSrc(last.src, src)) last.length += en - s;
    else out[n++] = last = { offset: s - at, length: en - s, src };
  }
  out.length = n;
  return out;
}

type RunSrc = string | { op: number; delta: number };

function sameSrc(a: RunSrc, b: RunSrc): boolean {
  if (typeof a === 'string' || typeof b === 'string') return a === b;
  return a.op === b.op && a.delta === b.delta;
}

/** Observed results by op id (a later result for the same op replaces an earlier one). */
type ResultsById = Array<OpResult | undefined>;

function resultsById(model: CaseModel, obs: Observation): ResultsById {
  // Op ids are small positive integers: an array indexed by id, made at its full length when the
  // ids are dense (a sparse array is still right, only slower).
  let most = 0;
  let count = 0;
  for (const t of model.theCase.program.threads)
    for (const op of t.ops) {
      count++;
      if (op.id > most) most = op.id;
    }
  const out: ResultsById = most < 4 * count + 1024 ? new Array<OpResult | undefined>(most + 1).fill(undefined) : [];
  for (const r of obs.results) out[r.op] = r;
  return out;
}

export function judge(model: CaseModel, obs: Observation): Judgement {
  const results = resultsById(model, obs);
  const j: Judgement = { divergences: [], notes: [], world: model.initialWorld() };
  checkGeometry(model, obs, j);
  for (const t of model.theCase.program.threads)
    for (const op of t.ops)
      if (results[op.id] === undefined) {
        j.incomplete = `the target reported no result for op ${op.id} (${op.kind})`;
        return j;
      }
  let worlds = [j.world];
  for (const phase of model.phases) worlds = judgePhase(model, phase, worlds, results, j);
  checkFinalAny(model, obs, worlds, j);
  return j;
}

/**
 * Judge one phase from each world the earlier phases left possible, and keep
 * the worlds that explain what was observed. Serial orders of a racing phase
 * (interleavePhase) can end in different worlds (a collapse before or after a
 * write gives different sizes and content); joining them would accept a size
 * from one order with the content of another, so they are kept apart (grouped
 * by sizes) and later ops and the final content must fit one of them.
 */
function judgePhase(model: CaseModel, phase: Op[][], worlds: World[], results: ResultsById, j: Judgement): World[] {
  const busy = phase.map((ops, t) => ({ ops, t })).filter((x) => x.ops.length > 0);
  const attempts = worlds.map((w) => {
    const local: Judgement = { divergences: [], notes: [], world: w };
    let out: World[];
    if (busy.length <= 1) {
      // One context serves the thread's ops: it holds only the world, which they share anyway.
      const ctx = new OpCtx(model, w, new SoloView(w), undefined);
      for (const { ops, t } of busy) for (const op of ops) step(model, op, t, ctx, results, local);
      out = [w];
    } else if (needsInterleaving(model, phase)) out = interleavePhase(model, phase, w, results, local);
    else out = [racePhase(model, phase, w, results, local)];
    return { local, out };
  });
  for (const a of attempts) for (const n of a.local.notes) if (!j.notes.includes(n)) j.notes.push(n);
  const fine = attempts.filter((a) => a.local.divergences.length === 0);
  if (fine.length) return groupWorlds(fine.flatMap((a) => a.out));
  // No world explains the phase: report what the first one saw, and go on from there.
  const first = attempts[0]!;
  for (const d of first.local.divergences) if (j.divergences.length < MAX_DIVERGENCES) j.divergences.push(d);
  return [joinWorlds(first.out)];
}

const MAX_WORLDS = 16;

/** Worlds with the same sizes, block sizes and devices are joined; different ones stay apart (up to MAX_WORLDS). */
function groupWorlds(worlds: World[]): World[] {
  if (worlds.length === 1) return worlds;
  const groups = new Map<string, World[]>();
  for (const w of worlds) {
    const key = [...w.objects.values()].map((o) => `${o.id}:${o.sizes.join(',')}:${o.lbs.join(',')}:${o.active}`).join(';');
    groups.set(key, [...(groups.get(key) ?? []), w]);
  }
  const joined = [...groups.values()].map(joinWorlds);
  return joined.length > MAX_WORLDS ? [joinWorlds(worlds)] : joined;
}

/** The final content must fit one of the worlds that are still possible. */
function checkFinalAny(model: CaseModel, obs: Observation, worlds: World[], j: Judgement): void {
  const tries = worlds.map((w) => {
    const local: Judgement = { divergences: [], notes: [], world: w };
    checkFinal(model, obs, local);
    return local;
  });
  // None fits: report against a world whose sizes match what was observed, if there is one.
  const pick = tries.find((t) => t.divergences.length === 0) ?? tries.find((t) => !t.divergences.some((d) => d.class === 'size-mismatch')) ?? tries[0]!;
  for (const n of pick.notes) if (!j.notes.includes(n)) j.notes.push(n);
  for (const d of pick.divergences) if (j.divergences.length < MAX_DIVERGENCES) j.divergences.push(d);
  j.world = pick.world;
}

/** Judge one op in `ctx` (its world, view and record) and apply what it did. */
function step(model: CaseModel, op: Op, thread: number, ctx: OpCtx, results: ResultsById, j: Judgement | undefined): Divergence | undefined {
  const sem = semanticsOf(op);
  const res = results[op.id]!;
  const d = compareResult(op, thread, sem.expect(op, ctx), res, model);
  if (d && j && j.divergences.length < MAX_DIVERGENCES) j.divergences.push(d);
  sem.apply(op, res, ctx);
  return d;
}

function needsInterleaving(model: CaseModel, phase: Op[][]): boolean {
  for (const ops of phase)
    for (const op of ops) {
      const moved = semanticsOf(op).shifts?.(op, model);
      if (!moved) continue;
      const users = phase.filter((other) => other.some((o) => semanticsOf(o).objects(o, model).includes(moved)));
      if (users.length > 1) return true;
    }
  return false;
}

function racePhase(model: CaseModel, phase: Op[][], start: World, results: ResultsById, j: Judgement): World {
  // Pass 1: what each thread does, from its observed results: first alone, then again seeing the
  // others' first-round effects (a store past EOF lands when another thread extended the file).
  const round = (others?: ThreadRecord[]) =>
    phase.map((ops, t) => {
      const w = start.clone();
      const rec = new ThreadRecord(model);
      const view = others ? new RacingView(w, start, Interference.from(others.filter((_, u) => u !== t)), model) : new SoloView(w);
      for (const op of ops) semanticsOf(op).apply(op, results[op.id]!, new OpCtx(model, w, view, rec));
      return rec;
    });
  const seen = round(round());
  // Pass 2: judge each thread against its own writes plus everything the others may do.
  const finals = phase.map((ops, t) => {
    const w = start.clone();
    const rec = new ThreadRecord(model);
    const view = new RacingView(w, start, Interference.from(seen.filter((_, u) => u !== t)), model);
    const ctx = new OpCtx(model, w, view, rec);
    for (const op of ops) step(model, op, t, ctx, results, j);
    return { world: w, record: rec };
  });
  return mergeThreads(model, start, finals);
}

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
    const sizers = finals.filter((f) => f.record.sizeOps.has(id));
    if (sizers.length === 1) o.sizes = [...sizers[0]!.world.get(id).sizes];
    else if (sizers.length > 1) o.sizes = finalSizes(start.get(id).sizes, sizers.map((f) => f.record.sizeOps.get(id)!));
    const lbsSetters = finals.filter((f) => f.record.lbsValues.has(id));
    if (lbsSetters.length === 1) o.lbs = [...lbsSetters[0]!.world.get(id).lbs];
    else if (lbsSetters.length > 1) o.lbs = uniqueSorted(lbsSetters.flatMap((f) => f.record.lbsValues.get(id)!.slice(-1)));
    for (const f of finals) if (f.record.activeChanged.has(id)) o.active = f.world.get(id).active;
    o.reserved = Math.max(o.reserved, ...finals.map((f) => f.world.get(id).reserved));
    o.lenient = o.lenient || finals.some((f) => f.world.get(id).lenient);
  }
  return out;
}

/** Sizes after every interleaving of several threads' size changes (program order kept within a thread). */
export function finalSizes(start: number[], threads: SizeOp[][]): number[] {
  let frontier = new Map<string, { pos: number[]; sizes: Set<number> }>([[threads.map(() => 0).join(','), { pos: threads.map(() => 0), sizes: new Set(start) }]]);
  const total = threads.reduce((n, t) => n + t.length, 0);
  let states = 0;
  for (let done = 0; done < total; done++) {
    const next = new Map<string, { pos: number[]; sizes: Set<number> }>();
    for (const { pos, sizes } of frontier.values()) {
      threads.forEach((ops, t) => {
        if (pos[t]! >= ops.length) return;
        const np = [...pos];
        np[t]!++;
        const key = np.join(',');
        const entry = next.get(key) ?? { pos: np, sizes: new Set<number>() };
        for (const s of sizes) entry.sizes.add(applySizeOp(s, ops[pos[t]!]!));
        next.set(key, entry);
      });
    }
    states += next.size;
    if (states > MAX_SIZE_STATES) {
      // Too many orders to walk: every size any prefix of any order can reach.
      const reach = new Set(start);
      for (let r = 0; r < total; r++) for (const s of [...reach]) for (const ops of threads) for (const op of ops) reach.add(applySizeOp(s, op));
      return uniqueSorted(reach);
    }
    frontier = next;
  }
  return uniqueSorted([...frontier.values()].flatMap((x) => [...x.sizes]));
}

function interleavePhase(model: CaseModel, phase: Op[][], start: World, results: ResultsById, j: Judgement): World[] {
  const finals: World[] = [];
  let steps = 0;
  let deepest: { depth: number; d: Divergence } | undefined;
  const total = phase.reduce((n, ops) => n + ops.length, 0);
  const walk = (world: World, pos: number[], depth: number): void => {
    if (steps > MAX_INTERLEAVING_STEPS) return;
    if (depth === total) {
      finals.push(world);
      return;
    }
    phase.forEach((ops, t) => {
      if (pos[t]! >= ops.length || steps > MAX_INTERLEAVING_STEPS) return;
      steps++;
      const w = world.clone();
      const op = ops[pos[t]!]!;
      const view = op.kind === 'read' || op.kind === 'mmap-read' ? inFlightView(model, phase, pos, t, w, results) : new SoloView(w);
      const d = step(model, op, t, new OpCtx(model, w, view, undefined), results, undefined);
      if (d) {
        if (!deepest || depth > deepest.depth) deepest = { depth, d };
        return;
      }
      const np = [...pos];
      np[t]!++;
      walk(w, np, depth + 1);
    });
  };
  walk(start, phase.map(() => 0), 0);
  if (steps > MAX_INTERLEAVING_STEPS) j.notes.push(`a racing phase had more interleavings than the model explores (${MAX_INTERLEAVING_STEPS} steps); judged on the ones explored`);
  if (finals.length === 0) {
    if (deepest) j.divergences.push({ ...deepest.d, message: `${deepest.d.message} (no order of the racing ops explains the results)` });
    // Carry on from the phase start with every thread's ops applied as observed, so later phases are still judged.
    const w = start.clone();
    phase.forEach((ops) => ops.forEach((op) => semanticsOf(op).apply(op, results[op.id]!, new OpCtx(model, w, new SoloView(w), undefined))));
    return [w];
  }
  return finals;
}

/**
 * The orders above make each op atomic, which holds for the ops that take the
 * inode lock against each other (collapse, insert, writes), but not for a
 * read against a write: a read copies page by page without that lock, so it
 * may see, per byte, what the write another thread has in flight puts there.
 * The view of a read therefore adds the next pending write, truncate or
 * fallocate of every other thread (and the EOF it may move).
 */
/** Ops that change bytes or EOF while a racing read copies (reads take no lock against them). */
const IN_FLIGHT_FOR_READS = new Set<Op['kind']>(['write', 'mmap-write', 'truncate', 'fallocate']);

function inFlightView(model: CaseModel, phase: Op[][], pos: number[], t: number, w: World, results: ResultsById): View {
  const records: ThreadRecord[] = [];
  phase.forEach((ops, u) => {
    const next = u === t ? undefined : ops[pos[u]!];
    if (!next || !IN_FLIGHT_FOR_READS.has(next.kind)) return;
    if (next.kind === 'fallocate' && (next.mode === 'collapse-range' || next.mode === 'insert-range')) return;
    const c = w.clone();
    const rec = new ThreadRecord(model);
    semanticsOf(next).apply(next, results[next.id]!, new OpCtx(model, c, new SoloView(c), rec));
    records.push(rec);
  });
  return records.length ? new RacingView(w, w, Interference.from(records), model) : new SoloView(w);
}

function joinWorlds(worlds: World[]): World {
  const out = worlds[0]!.clone();
  for (const w of worlds.slice(1))
    for (const [id, o] of out.objects) {
      const other = w.get(id);
      o.content.unionWith(other.content, 0, Number.MAX_SAFE_INTEGER);
      o.sizes = uniqueSorted([...o.sizes, ...other.sizes]);
      o.lbs = uniqueSorted([...o.lbs, ...other.lbs]);
      o.reserved = Math.max(o.reserved, other.reserved);
      o.lenient ||= other.lenient;
    }
  return out;
}

function checkGeometry(model: CaseModel, obs: Observation, j: Judgement): void {
  for (const [id, g] of Object.entries(obs.geometry)) {
    const bounds = model.info.geometry(id);
    const l = model.info.layer(id);
    if (!bounds || !l || l.kind === 'file') continue;
    const problems: string[] = [];
    if (g.size < bounds.sizeMin || g.size > bounds.sizeMax)
      problems.push(`size ${g.size} outside ${bounds.sizeMin === bounds.sizeMax ? bounds.sizeMin : `[${bounds.sizeMin}, ${bounds.sizeMax}]`}`);
    if (!bounds.logicalBlockSizes.includes(g.logicalBlockSize)) problems.push(`logical block size ${g.logicalBlockSize}, not ${bounds.logicalBlockSizes.join(' or ')}`);
    if (g.physicalBlockSize < g.logicalBlockSize) problems.push(`physical block size ${g.physicalBlockSize} below the logical ${g.logicalBlockSize}`);
    if (problems.length)
      j.divergences.push({
        class: 'geometry',
        object: id,
        expected: `size ${bounds.sizeMin}..${bounds.sizeMax}, logical block size ${bounds.logicalBlockSizes.join('/')}`,
        observed: `size ${g.size}, logical block size ${g.logicalBlockSize}, physical ${g.physicalBlockSize}`,
        message: `'${id}' (${l.kind}) has ${problems.join('; ')}`,
      });
  }
}

/** Per case: every object an op of the program uses (fixed by the program). */
const usedObjects = new WeakMap<CaseModel, string[]>();

/** Objects whose final content the model judges: every object an op used that still exists and nothing sits on. */
export function finalObjects(model: CaseModel, world: World): string[] {
  let used = usedObjects.get(model);
  if (!used) {
    const ids = new Set<string>();
    for (const t of model.theCase.program.threads) for (const op of t.ops) for (const id of semanticsOf(op).objects(op, model)) ids.add(id);
    usedObjects.set(model, (used = [...ids]));
  }
  return used.filter((id) => {
    const l = model.info.layer(id);
    if (!l || l.kind === 'fs') return false;
    const above = model.info.usersOf(id).filter((u) => !(u.kind === 'dm-snapshot' && u.origin === id));
    return above.length === 0 && world.objects.get(id)?.active;
  });
}

/**
 * The smallest piece a final read-back can tell readable from not: a block
 * device's logical block size as the kernel reported it (the executor reads
 * devices directly, in logical blocks), a page for a file (the page cache
 * reads whole pages) and for a device with a loop device at or below it (a
 * loop reads its backing store through the page cache unless it does direct
 * IO, which the kernel may decline).
 */
function readUnit(model: CaseModel, obs: Observation, id: string, o: ObjectState): number {
  const lbs = obs.geometry[id]?.logicalBlockSize ?? model.info.geometry(id)?.logicalBlockSizes[0] ?? 512;
  if (o.kind === 'file') return PAGE;
  const loopBelow = [model.layer(id), ...model.info.below(id)].some((l) => l.kind === 'loop');
  return loopBelow ? Math.max(lbs, PAGE) : lbs;
}

function checkFinal(model: CaseModel, obs: Observation, j: Judgement): void {
  for (const id of finalObjects(model, j.world)) {
    const seen: FinalContent | undefined = obs.final[id];
    if (!seen) {
      j.notes.push(`the target did not read back '${id}'`);
      continue;
    }
    const o: ObjectState = j.world.get(id);
    if (lenientObject(model, o)) {
      j.notes.push(`'${id}' sits on a damaged or faulty filesystem: its final content is not judged`);
      continue;
    }
    if (o.kind === 'file' && !o.sizes.includes(seen.size)) {
      j.divergences.push({
        class: 'size-mismatch',
        object: id,
        expected: o.sizes.join(' or '),
        observed: String(seen.size),
        message: `'${id}' ends ${seen.size} bytes long; the model allows ${o.sizes.join(' or ')}`,
      });
    }
    const ranges = seen.ranges ?? [[0, seen.size] as [number, number]];
    const unit = readUnit(model, obs, id, o);
    // A layer that fails reads for a while (dm-flakey down) may fail the read-back anywhere.
    const failsReads = model.faultsOf(id).readErrors;
    const unreadableUnit = (from: number, to: number): number | undefined => {
      if (failsReads) return undefined;
      for (let u = from - (from % unit); u < to; u += unit) if (!o.content.mayError(u, u + unit)) return Math.max(u, from);
      return undefined;
    };
    for (const [s, e] of ranges) {
      const end = Math.min(e, seen.size);
      if (end <= s) continue;
      const bad = firstDataMismatch(o.content.pieces(s, end), seen.extents, s, end - s, model, undefined, true, true, id, unreadableUnit);
      if (bad) {
        j.divergences.push({
          class: 'final-content',
          dataClass: bad.dataClass,
          object: id,
          offset: bad.offset,
          expected: bad.expected,
          observed: bad.observed,
          expectedWriters: bad.expectedWriters,
          observedWriter: bad.observedWriter,
          message: `after the program, '${id}' holds ${bad.observed} at offset ${bad.offset}; the model allows ${bad.expected}`,
        });
        break;
      }
    }
  }
}

/** Final content as a target that does exactly what the model predicts would report it. */
export function predictedFinal(model: CaseModel, world: World): Record<string, FinalContent> {
  const out: Record<string, FinalContent> = {};
  for (const id of finalObjects(model, world)) {
    const o = world.get(id);
    const size = Math.max(...o.sizes);
    out[id] = { size, extents: runsOf(o.content.pieces(0, size), 0, true) };
  }
  return out;
}
