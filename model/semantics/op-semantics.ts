/**
 * The contract between the evaluator and each op's semantics. An op states
 * what it may return (`expect`, against the view it has) and changes the
 * world according to what it did return (`apply`): the model is a
 * nondeterministic machine steered by the observed outcome wherever the
 * outcome is allowed, so one code path serves prediction and judgement.
 */
import type { Piece, SrcSet } from '../content.ts';
import type { OpResult } from '../observation.ts';
import type { Op } from '../ops/index.ts';
import type { CaseModel } from './case-model.ts';
import { type SizeOp, type ThreadRecord, type View, applySizeOp } from './view.ts';
import { type World, uniqueSorted } from './world.ts';

export interface ReadExpectation {
  obj: string;
  offset: number;
  /** The allowed sets for the first k bytes returned. */
  pieces(k: number): Piece[];
}

export interface Expected {
  /** The op may succeed. */
  success: boolean;
  /** Byte counts a complete success may return (one per possible size; 0 for ops that move no data). */
  counts: number[];
  /** A shorter count is fine: RWF_NOWAIT ('any'), or an IO error cut it short ('errors'). */
  partialAny: boolean;
  partialOnErrors: boolean;
  /**
   * Any count from this one up to the largest full count is fine: a read racing a
   * size change (a truncate, an extending write that moves EOF page by page) stops
   * wherever EOF was when it got there.
   */
  minCount?: number;
  errnos: string[];
  signal: boolean;
  mustSignal: boolean;
  read?: ReadExpectation;
  /** Why errors are allowed or success is required, for reports. */
  reasons: string[];
}

/**
 * The empty errno and reason lists every expectation starts with, shared: an
 * Expected is replaced, never changed in place (allowErrnos makes new lists),
 * and frozen, a list someone tried to change would throw.
 */
const NONE = Object.freeze([]) as readonly string[] as string[];

export function expectOk(counts: number[] = [0], extra?: Partial<Expected>): Expected {
  const e: Expected = { success: true, counts, partialAny: false, partialOnErrors: false, errnos: NONE, signal: false, mustSignal: false, reasons: NONE };
  return extra ? { ...e, ...extra } : e;
}

export function expectError(errnos: string[], reason: string): Expected {
  return { ...expectOk([]), success: false, errnos, reasons: [reason] };
}

export function allowErrnos(e: Expected, errnos: string[], reason: string): Expected {
  const add = errnos.filter((x) => !e.errnos.includes(x));
  if (add.length === 0) return e;
  return { ...e, errnos: [...e.errnos, ...add], reasons: [...e.reasons, reason] };
}

/** The op's world, its view of other threads, and the effects it may have. */
export class OpCtx {
  constructor(
    readonly model: CaseModel,
    readonly world: World,
    readonly view: View,
    readonly record: ThreadRecord | undefined,
  ) {}

  get table() {
    return this.model.table;
  }

  obj(id: string) {
    return this.world.get(id);
  }

  write(obj: string, s: number, e: number, set: SrcSet): void {
    if (s >= e) return;
    this.obj(obj).content.assign(s, e, set);
    this.record?.write(obj, s, e, set);
  }

  /** Per byte of [s, e): either what was there or `set` (a write that may not have landed). */
  writeMaybe(obj: string, s: number, e: number, set: SrcSet): void {
    if (s >= e) return;
    this.obj(obj).content.transform(s, e, (v) => this.table.union(v, set));
    this.record?.write(obj, s, e, set);
  }

  /** Copy what [fs, fs+len) of `from` may hold into [to, to+len) of `into` (content addresses move by to-fs). */
  copy(from: string, fs: number, into: string, to: number, len: number, maybe = false): void {
    for (const [ps, pe, v] of this.view.pieces(from, fs, fs + len)) {
      const moved = this.table.moved(v, to - fs);
      if (maybe) this.writeMaybe(into, ps - fs + to, pe - fs + to, moved);
      else this.write(into, ps - fs + to, pe - fs + to, moved);
    }
  }

  resize(obj: string, op: SizeOp): void {
    const o = this.obj(obj);
    const beforeMax = Math.max(...o.sizes);
    const shrinks = o.sizes.some((s) => applySizeOp(s, op) < s);
    o.sizes = uniqueSorted(o.sizes.map((s) => applySizeOp(s, op)));
    const afterMin = Math.min(...o.sizes);
    const afterMax = Math.max(...o.sizes);
    // Bytes past EOF are gone: a file that grows again reads zeroes there. With several possible
    // sizes (a race left EOF open), only bytes past every EOF are surely gone; below the largest
    // EOF a byte still holds data in the worlds where it is inside the file, and may read as
    // zeroes where it is not.
    if (afterMax < beforeMax) this.clearFrom(obj, afterMax);
    if (shrinks && afterMin < afterMax) this.writeMaybe(obj, afterMin, afterMax, this.table.zero);
    this.record?.size(obj, op);
  }

  /**
   * Before a file grows: stores through a mapping past EOF (which mmap-write keeps beyond
   * EOF, see there) are gone, and the bytes the size increase exposes read as zeroes
   * (POSIX; fstests generic/363). Only clears when something is stored there.
   */
  dropTail(obj: string): void {
    const eof = Math.max(...this.view.sizes(obj));
    const o = this.obj(obj);
    if (o.content.pieces(eof, Number.MAX_SAFE_INTEGER).some(([, , v]) => v !== o.content.fill)) this.clearFrom(obj, eof);
  }

  clearFrom(obj: string, pos: number): void {
    this.obj(obj).content.clearFrom(pos);
    this.record?.write(obj, pos, Number.MAX_SAFE_INTEGER, this.obj(obj).content.fill);
  }

  shift(obj: string, pos: number, d: number): void {
    this.obj(obj).content.shift(pos, d);
    this.record?.touch(obj, pos, Number.MAX_SAFE_INTEGER);
  }

  setLbs(obj: string, v: number): void {
    this.obj(obj).lbs = [v];
    this.record?.lbs(obj, v);
  }

  setActive(obj: string, v: boolean): void {
    this.obj(obj).active = v;
    this.record?.activeChanged.add(obj);
  }

  /** Another thread may be changing these bytes: the observation cannot pin them. */
  raced(obj: string, s: number, e: number): boolean {
    return this.view.raced(obj, s, e);
  }
}

export interface OpSemantics<O extends Op = Op> {
  expect(op: O, ctx: OpCtx): Expected;
  apply(op: O, result: OpResult, ctx: OpCtx): void;
  /** Objects the op reads or changes. */
  objects(op: O, model: CaseModel): string[];
  /**
   * The object this op moves content in or resizes as a whole under the inode lock
   * (collapse, insert, truncate), if any: where it races other ops on that object the
   * evaluator walks the serial orders instead of joining per byte.
   */
  shifts?(op: O, model: CaseModel): string | undefined;
}

export const noEffect = (): void => {};
