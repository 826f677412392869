/**
 * Programs: threads cut into phases by global barriers (every thread passes
 * every barrier, in order), laid out as cells [thread][phase]. Recipes and
 * the generic generator fill cells; rules say where a target may be used
 * (a snapshot only after the op that makes it and before the one that ends
 * it; a filesystem's files not beside its remount), and build() numbers the
 * ops and puts the barriers in.
 */
import type { StackInfo } from '../../model/index.ts';
import type { Draw } from './draw.ts';
import type { OpDraft, OpInput } from './ops/index.ts';

/** Most serial orders of a racing phase the model should have to walk (see capOrders). */
export const MAX_ORDERS = 400;

/** Ops capOrders may drop, least interesting first. */
const DROP_RANK = new Map<OpDraft['kind'], number>(
  (['sleep', 'drop-caches', 'msync', 'sync-file-range', 'fsync', 'flush', 'mmap-read', 'read', 'discard', 'write', 'fallocate', 'mmap-write'] as const).map((k, i) => [k, i]),
);

const DATA_KINDS = new Set<OpDraft['kind']>(['read', 'write', 'mmap-write', 'mmap-read', 'fallocate', 'truncate', 'discard']);

/** Ops that move a file's bytes or its size under other threads (the model's `shifts`). */
export function shifts(op: OpDraft): boolean {
  return op.kind === 'truncate' || (op.kind === 'fallocate' && (op.mode === 'collapse-range' || op.mode === 'insert-range'));
}

function objectsOf(op: OpDraft): string[] {
  const ids: string[] = [];
  if ('target' in op) ids.push(op.target);
  if ((op.kind === 'read' || op.kind === 'write') && op.buffer?.placement === 'mmap') ids.push(op.buffer.file);
  return ids;
}

/** (n1 + ... + nk)! / (n1! ... nk!): interleavings of threads with these op counts. */
export function orders(counts: readonly number[]): number {
  let total = 0;
  let r = 1;
  for (const n of counts) {
    for (let i = 1; i <= n; i++) r = (r * (total + i)) / i;
    total += n;
  }
  return r;
}

/**
 * The most serial orders the model must walk for any phase of a program (1
 * when no phase has a collapse, insert or truncate racing another thread on
 * the same file). The same rule as capOrders, on a finished program.
 */
export function racingOrders(threads: ReadonlyArray<{ ops: readonly OpInput[] }>): number {
  const phases: OpDraft[][][] = [];
  threads.forEach((t, ti) => {
    let p = 0;
    for (const op of t.ops) {
      if (op.kind === 'barrier') p++;
      else (phases[p] ??= threads.map(() => []))[ti]!.push(op as OpDraft);
    }
  });
  let worst = 1;
  for (const phase of phases) {
    if (!phase) continue;
    const moved = new Set(phase.flat().filter(shifts).map((o) => (o as { target: string }).target));
    if (!moved.size) continue;
    if (phase.filter((ops) => ops.some((o) => objectsOf(o).some((id) => moved.has(id)))).length < 2) continue;
    worst = Math.max(worst, orders(phase.map((ops) => ops.length)));
  }
  return worst;
}

/** Where a target may not be used: (thread, phase) -> false. */
export type UseRule = (target: string, thread: number, phase: number) => boolean;

export class ProgramBuilder {
  /** body[t][p]: units of ops; a unit (a table swap, say) is never split by later inserts. */
  private readonly body: OpDraft[][][][];
  private readonly heads: OpDraft[][][];
  private readonly tails: OpDraft[][][];
  private readonly rules: UseRule[] = [];

  constructor(
    readonly threads: number,
    readonly phases: number,
  ) {
    const grid = () => Array.from({ length: threads }, () => Array.from({ length: phases }, () => [] as OpDraft[]));
    this.body = Array.from({ length: threads }, () => Array.from({ length: phases }, () => [] as OpDraft[][]));
    this.heads = grid();
    this.tails = grid();
  }

  /** Ops in the middle of a cell, in the order added. */
  add(t: number, p: number, ...ops: OpDraft[]): void {
    for (const op of ops) this.body[t]![p]!.push([op]);
  }

  /** Ops that stay together (a table swap): later inserts never split them. */
  together(t: number, p: number, ...ops: OpDraft[]): void {
    if (ops.length) this.body[t]![p]!.push(ops);
  }

  /** Ops at the start of a cell (before anything add() puts there). */
  head(t: number, p: number, ...ops: OpDraft[]): void {
    this.heads[t]![p]!.push(...ops);
  }

  /** Ops at the end of a cell (after anything add() puts there). */
  tail(t: number, p: number, ...ops: OpDraft[]): void {
    this.tails[t]![p]!.push(...ops);
  }

  /** Insert ops (one unit) at a random place among the cell's middle units. */
  insert(d: Draw, t: number, p: number, ...ops: OpDraft[]): void {
    const cell = this.body[t]![p]!;
    if (ops.length) cell.splice(d.int(0, cell.length), 0, ops);
  }

  cell(t: number, p: number): readonly OpDraft[] {
    return [...this.heads[t]![p]!, ...this.body[t]![p]!.flat(), ...this.tails[t]![p]!];
  }

  rule(r: UseRule): void {
    this.rules.push(r);
  }

  /** Every target and buffer file of the op may be used in this cell. */
  usable(op: OpDraft, t: number, p: number): boolean {
    const ids: string[] = [];
    if ('target' in op) ids.push(op.target);
    if ((op.kind === 'read' || op.kind === 'write') && op.buffer?.placement === 'mmap') ids.push(op.buffer.file);
    return ids.every((id) => this.rules.every((r) => r(id, t, p)));
  }

  /** Ops so far, barriers included. */
  get size(): number {
    let n = this.threads * (this.phases - 1);
    for (let t = 0; t < this.threads; t++) for (let p = 0; p < this.phases; p++) n += this.cell(t, p).length;
    return n;
  }

  /** Data ops: reads, writes and the other ops that touch data (not control-plane ops, syncs or sleeps). */
  get work(): number {
    let n = 0;
    for (let t = 0; t < this.threads; t++) for (let p = 0; p < this.phases; p++) n += this.cell(t, p).filter((o) => DATA_KINDS.has(o.kind)).length;
    return n;
  }

  /**
   * A phase where an op that moves a file's bytes (collapse, insert,
   * truncate) races other threads on that file is judged by the model in
   * every serial order of the phase's ops: keep the number of orders under
   * `limit` by dropping plain data ops from the busiest threads. Returns how
   * many ops were dropped.
   */
  capOrders(limit = MAX_ORDERS): number {
    let dropped = 0;
    for (let p = 0; p < this.phases; p++) {
      const moved = new Set<string>();
      for (let t = 0; t < this.threads; t++) for (const op of this.cell(t, p)) if (shifts(op)) moved.add((op as { target: string }).target);
      if (!moved.size) continue;
      const touching = Array.from({ length: this.threads }, (_, t) => this.cell(t, p).some((op) => objectsOf(op).some((id) => moved.has(id))));
      if (touching.filter(Boolean).length < 2) continue;
      for (;;) {
        const counts = Array.from({ length: this.threads }, (_, t) => this.cell(t, p).length);
        if (orders(counts) <= limit) break;
        // From the busiest thread that has one, the least interesting op (sleeps and syncs before writes).
        const byLoad = counts.map((n, t) => [n, t] as const).sort((a, b) => b[0] - a[0]);
        let removed = false;
        for (const [, t] of byLoad) {
          const units = this.body[t]![p]!;
          let best = -1;
          units.forEach((u, i) => {
            if (u.length !== 1 || shifts(u[0]!) || !DROP_RANK.has(u[0]!.kind)) return;
            if (best < 0 || DROP_RANK.get(u[0]!.kind)! <= DROP_RANK.get(units[best]![0]!.kind)!) best = i;
          });
          if (best >= 0) {
            units.splice(best, 1);
            removed = true;
            break;
          }
        }
        if (!removed) break;
        dropped++;
      }
    }
    return dropped;
  }

  /** Drop plain data ops (busiest cells first) until the program has at most `max` ops, barriers included. */
  capSize(max: number): number {
    let dropped = 0;
    while (this.size > max) {
      let best: { t: number; p: number; i: number; rank: number; load: number } | undefined;
      for (let t = 0; t < this.threads; t++)
        for (let p = 0; p < this.phases; p++) {
          const units = this.body[t]![p]!;
          const load = units.length;
          units.forEach((u, i) => {
            if (u.length !== 1 || !DROP_RANK.has(u[0]!.kind)) return;
            const rank = DROP_RANK.get(u[0]!.kind)!;
            if (!best || load > best.load || (load === best.load && rank < best.rank)) best = { t, p, i, rank, load };
          });
        }
      if (!best) {
        // Only control-plane units left to give up: the last one of the busiest cell.
        let cell: OpDraft[][] | undefined;
        for (const row of this.body) for (const c of row) if (c.length && (!cell || c.length > cell.length)) cell = c;
        if (!cell) break;
        cell.pop();
        dropped++;
        continue;
      }
      this.body[best.t]![best.p]!.splice(best.i, 1);
      dropped++;
    }
    return dropped;
  }

  /** Threads with their ops numbered 1..N (thread after thread) and barriers b1..b(phases-1), within `maxOps` where it can. */
  build(maxOps = Number.POSITIVE_INFINITY): OpInput[][] {
    this.capOrders();
    this.capSize(maxOps);
    let id = 0;
    return Array.from({ length: this.threads }, (_, t) => {
      const ops: OpInput[] = [];
      for (let p = 0; p < this.phases; p++) {
        for (const op of this.cell(t, p)) ops.push({ ...op, id: ++id } as OpInput);
        if (p < this.phases - 1) ops.push({ kind: 'barrier', id: ++id, name: `b${p + 1}` });
      }
      return ops;
    });
  }
}

/** Files on a filesystem, and the files used by other layers (loop backing files). */
export function filesOf(info: StackInfo, fsId: string): { all: string[]; busy: boolean } {
  const files = info.usersOf(fsId).filter((l) => l.kind === 'file');
  return { all: files.map((f) => f.id), busy: files.some((f) => info.usersOf(f.id).length > 0) };
}

/** A number of threads: mostly one or two, up to max. */
export function threadCount(d: Draw, max: number, weights: readonly number[] = [45, 30, 15, 10]): number {
  const choices = weights.map((w, i) => [w, i + 1] as const).filter(([, n]) => n <= max);
  return choices.length ? d.weighted(choices) : 1;
}
