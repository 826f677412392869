/**
 * Edits of a case for the minimizer: keep some ops, serialize threads, take
 * a layer out of the stack (its users and ops move to what it sat on),
 * retarget ops. Pure: every function returns a new case and never checks
 * validity; the minimizer validates each candidate (validateCase) before it
 * runs it, so an edit may produce an invalid case and simply be rejected.
 */
import { type Case, type Layer, type Op, layerModule } from '../../model/index.ts';

export function clone<T>(x: T): T {
  return structuredClone(x);
}

export function allOps(c: Case): Op[] {
  return c.program.threads.flatMap((t) => t.ops);
}

/** Ops that do something (barriers only order threads). */
export function countOps(c: Case): number {
  return allOps(c).filter((o) => o.kind !== 'barrier').length;
}

/**
 * The units ops are removed in, so that no removal breaks the program's
 * structure: a barrier is one unit across all threads (the k-th barrier of
 * every thread), a dm-suspend goes with the dm-resume that ends it in its
 * thread; every other op is a unit of its own.
 */
export function opGroups(c: Case): number[][] {
  const groups: number[][] = [];
  const barrierGroups = new Map<number, number[]>();
  const taken = new Set<number>();
  for (const t of c.program.threads) {
    let k = 0;
    t.ops.forEach((op, i) => {
      if (taken.has(op.id)) return;
      if (op.kind === 'barrier') {
        let g = barrierGroups.get(k);
        if (!g) {
          g = [];
          barrierGroups.set(k, g);
          groups.push(g);
        }
        g.push(op.id);
        k++;
        return;
      }
      if (op.kind === 'dm-suspend') {
        const resume = t.ops.slice(i + 1).find((o) => o.kind === 'dm-resume' && o.target === op.target && !taken.has(o.id));
        if (resume) {
          taken.add(resume.id);
          groups.push([op.id, resume.id]);
          return;
        }
      }
      groups.push([op.id]);
    });
  }
  return groups;
}

/** The case with only the ops in `keep`; threads left empty go (one empty thread stays if all are). */
export function keepOps(c: Case, keep: ReadonlySet<number>): Case {
  const out = clone(c);
  const threads = out.program.threads.map((t) => ({ ...t, ops: t.ops.filter((o) => keep.has(o.id)) })).filter((t) => t.ops.some((o) => o.kind !== 'barrier'));
  out.program.threads = threads.length ? threads : [{ ops: [] }];
  return dropLoneBarriers(out);
}

/** With one thread left, barriers order nothing: drop them. */
export function dropLoneBarriers(c: Case): Case {
  if (c.program.threads.length !== 1) return c;
  const t = c.program.threads[0]!;
  if (!t.ops.some((o) => o.kind === 'barrier')) return c;
  const out = clone(c);
  out.program.threads[0]!.ops = t.ops.filter((o) => o.kind !== 'barrier');
  return out;
}

/** One thread doing the ops of every thread phase by phase (barrier to barrier), thread 0's first. */
export function serialize(c: Case): Case {
  const phases: Op[][][] = [];
  c.program.threads.forEach((t, ti) => {
    let p = 0;
    for (const op of t.ops) {
      if (op.kind === 'barrier') {
        p++;
        continue;
      }
      ((phases[p] ??= [])[ti] ??= []).push(op);
    }
  });
  const ops: Op[] = [];
  for (const phase of phases) for (const t of phase ?? []) ops.push(...(t ?? []));
  const out = clone(c);
  out.program.threads = [{ ...(c.program.threads[0]?.name ? { name: c.program.threads[0].name } : {}), ops: clone(ops) }];
  return out;
}

export function dropThread(c: Case, t: number): Case {
  const out = clone(c);
  out.program.threads.splice(t, 1);
  return dropLoneBarriers(out);
}

/** Replace op `id` with the result of `edit` on a copy of it. */
export function editOp(c: Case, id: number, edit: (op: Op) => Op): Case {
  const out = clone(c);
  for (const t of out.program.threads) t.ops = t.ops.map((o) => (o.id === id ? edit(clone(o)) : o));
  return out;
}

export function editLayer(c: Case, id: string, edit: (l: Layer) => Layer): Case {
  const out = clone(c);
  out.stack.layers = out.stack.layers.map((l) => (l.id === id ? edit(clone(l)) : l));
  return out;
}

/** Ids of the layers `l` sits on. */
export function lowerOf(l: Layer): string[] {
  return layerModule(l).lower(l).map((r) => r.ref);
}

/** Set the lower reference `field` ('on', 'members[1]') of a layer. */
function setRef(l: Layer, field: string, to: string): void {
  const rec = l as unknown as Record<string, unknown>;
  const m = /^(\w+)\[(\d+)\]$/.exec(field);
  if (m) {
    const arr = rec[m[1]!];
    if (Array.isArray(arr)) arr[Number(m[2])] = to;
  } else rec[field] = to;
}

/** Ops that name an object: their target and an mmap buffer's file. */
function retargetOps(c: Case, from: string, to: string, delta: number): void {
  for (const t of c.program.threads)
    for (const op of t.ops) {
      if ('target' in op && op.target === from) {
        op.target = to;
        if ('offset' in op && typeof op.offset === 'number') op.offset += delta;
      }
      if ((op.kind === 'read' || op.kind === 'write') && op.buffer.placement === 'mmap' && op.buffer.file === from) op.buffer.file = to;
    }
}

/**
 * Take layer `id` out: every layer on it and every op on it moves to `to`
 * (offsets shifted by `delta`: a loop's or dm-linear's offset into `to`).
 */
export function bypassLayer(c: Case, id: string, to: string, delta = 0): Case {
  const out = clone(c);
  out.stack.layers = out.stack.layers.filter((l) => l.id !== id);
  for (const l of out.stack.layers) for (const r of layerModule(l).lower(l)) if (r.ref === id) setRef(l, r.field, to);
  retargetOps(out, id, to, delta);
  return out;
}

/** Move ops from object `from` to `to` (same offsets), leaving the stack as it is. */
export function retarget(c: Case, from: string, to: string): Case {
  const out = clone(c);
  retargetOps(out, from, to, 0);
  return out;
}

/** Layers the program needs: what its ops name, everything under those, and snapshot origins of used snapshots. */
export function usedLayers(c: Case): Set<string> {
  const byId = new Map(c.stack.layers.map((l) => [l.id, l]));
  const need = new Set<string>();
  const add = (id: string) => {
    if (need.has(id)) return;
    const l = byId.get(id);
    if (!l) return;
    need.add(id);
    for (const lower of lowerOf(l)) add(lower);
  };
  for (const op of allOps(c)) {
    if ('target' in op) add(op.target);
    if ((op.kind === 'read' || op.kind === 'write') && op.buffer.placement === 'mmap') add(op.buffer.file);
  }
  // A layer that sits on a needed one (a snapshot of an origin in use) is needed only if an op names it: done above.
  return need;
}

/** The case without layers nothing needs. */
export function dropUnusedLayers(c: Case): Case {
  const need = usedLayers(c);
  if (need.size === c.stack.layers.length) return c;
  const out = clone(c);
  out.stack.layers = out.stack.layers.filter((l) => need.has(l.id));
  if (out.stack.layers.length === 0) out.stack.layers = clone(c.stack.layers.slice(0, 1));
  return out;
}

/** Fields of an op that are byte offsets or lengths (for shrinking). */
export function numericFields(op: Op): Array<'offset' | 'length' | 'size'> {
  const out: Array<'offset' | 'length' | 'size'> = [];
  if ('offset' in op && typeof op.offset === 'number') out.push('offset');
  if ('length' in op && typeof op.length === 'number') out.push('length');
  if (op.kind === 'truncate') out.push('size');
  return out;
}
