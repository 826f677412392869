/**
 * What an op sees. Alone, a thread sees its own world. While other threads
 * race it (same phase), every byte may also hold anything they write, and
 * sizes and block sizes may be anything their ops produce.
 */
import { ExtentMap, type Piece, type SrcSet } from '../content.ts';
import type { CaseModel } from './case-model.ts';
import { type World, uniqueSorted } from './world.ts';

export type SizeOp = { kind: 'set' | 'max' | 'add' | 'sub'; v: number };

export function applySizeOp(size: number, op: SizeOp): number {
  switch (op.kind) {
    case 'set': return op.v;
    case 'max': return Math.max(size, op.v);
    case 'add': return size + op.v;
    case 'sub': return Math.max(0, size - op.v);
  }
}

/** What one thread did in a phase, as other threads may see it. */
export class ThreadRecord {
  /** Per object: the union of every set the thread wrote, over the ranges it wrote. */
  readonly writes = new Map<string, ExtentMap>();
  /** Per object: ranges the thread changed (marked with 'any'); the merge takes its final content there. */
  readonly touched = new Map<string, ExtentMap>();
  readonly sizeOps = new Map<string, SizeOp[]>();
  readonly lbsValues = new Map<string, number[]>();
  readonly activeChanged = new Set<string>();

  constructor(private readonly model: CaseModel) {}

  write(obj: string, s: number, e: number, set: SrcSet): void {
    const t = this.model.table;
    const w = this.mapFor(this.writes, obj);
    w.transform(s, e, (prev) => t.union(prev, set));
    this.mapFor(this.touched, obj).assign(s, e, t.any);
  }

  touch(obj: string, s: number, e: number): void {
    this.mapFor(this.touched, obj).assign(s, e, this.model.table.any);
  }

  size(obj: string, op: SizeOp): void {
    const list = this.sizeOps.get(obj) ?? [];
    list.push(op);
    this.sizeOps.set(obj, list);
  }

  lbs(obj: string, v: number): void {
    this.lbsValues.set(obj, [...(this.lbsValues.get(obj) ?? []), v]);
  }

  private mapFor(m: Map<string, ExtentMap>, obj: string): ExtentMap {
    let x = m.get(obj);
    if (!x) {
      x = ExtentMap.create(this.model.table, this.model.none);
      m.set(obj, x);
    }
    return x;
  }
}


export interface View {
  pieces(obj: string, s: number, e: number): Piece[];
  /** Some byte of [s, e) may fail to read: pieces(obj, s, e).some(([, , v]) => v.error), cheaper. */
  mayError(obj: string, s: number, e: number): boolean;
  sizes(obj: string): number[];
  lbs(obj: string): number[];
  active(obj: string): boolean;
  /** Another thread may change this object's bytes in [s, e) right now. */
  raced(obj: string, s: number, e: number): boolean;
}

export class SoloView implements View {
  constructor(readonly world: World) {}
  pieces(obj: string, s: number, e: number): Piece[] {
    return this.world.get(obj).content.pieces(s, e);
  }
  mayError(obj: string, s: number, e: number): boolean {
    return this.world.get(obj).content.mayError(s, e);
  }
  sizes(obj: string): number[] {
    return this.world.get(obj).sizes;
  }
  lbs(obj: string): number[] {
    return this.world.get(obj).lbs;
  }
  active(obj: string): boolean {
    return this.world.get(obj).active;
  }
  raced(): boolean {
    return false;
  }
}

/** The union of what every other thread of the phase does. */
export class Interference {
  readonly writes = new Map<string, ExtentMap[]>();
  readonly sizeOps = new Map<string, SizeOp[]>();
  readonly lbsValues = new Map<string, number[]>();

  static from(records: ThreadRecord[]): Interference {
    const i = new Interference();
    for (const r of records) {
      for (const [obj, m] of r.writes) i.writes.set(obj, [...(i.writes.get(obj) ?? []), m]);
      for (const [obj, ops] of r.sizeOps) i.sizeOps.set(obj, [...(i.sizeOps.get(obj) ?? []), ...ops]);
      for (const [obj, v] of r.lbsValues) i.lbsValues.set(obj, [...(i.lbsValues.get(obj) ?? []), ...v]);
    }
    return i;
  }
}

export class RacingView implements View {
  constructor(
    readonly world: World,
    private readonly start: World,
    private readonly others: Interference,
    private readonly model: CaseModel,
  ) {}

  pieces(obj: string, s: number, e: number): Piece[] {
    const own = this.world.get(obj).content;
    const theirs = this.others.writes.get(obj);
    if (!theirs) return own.pieces(s, e);
    const merged = own.clone();
    for (const m of theirs) merged.unionWith(m, s, e);
    return merged.pieces(s, e);
  }

  /** A union of sets may error where one of them may, so: ours or any other thread's writes. */
  mayError(obj: string, s: number, e: number): boolean {
    if (this.world.get(obj).content.mayError(s, e)) return true;
    const theirs = this.others.writes.get(obj);
    return !!theirs?.some((m) => m.mayError(s, e));
  }

  raced(obj: string, s: number, e: number): boolean {
    const theirs = this.others.writes.get(obj);
    return !!theirs?.some((m) => m.pieces(s, e).some(([, , v]) => v !== this.model.none));
  }

  sizes(obj: string): number[] {
    const ops = this.others.sizeOps.get(obj);
    const own = this.world.get(obj).sizes;
    if (!ops?.length) return own;
    // Any size reachable by applying their size changes, in any order, to ours or the phase's start.
    let reach = new Set([...own, ...this.start.get(obj).sizes]);
    for (let round = 0; round < ops.length; round++) {
      const before = reach.size;
      for (const s of [...reach]) for (const op of ops) reach.add(applySizeOp(s, op));
      if (reach.size === before || reach.size > 4096) break;
    }
    return uniqueSorted(reach);
  }

  lbs(obj: string): number[] {
    const theirs = this.others.lbsValues.get(obj);
    const own = this.world.get(obj).lbs;
    return theirs ? uniqueSorted([...own, ...theirs, ...this.start.get(obj).lbs]) : own;
  }

  active(obj: string): boolean {
    return this.world.get(obj).active;
  }
}
