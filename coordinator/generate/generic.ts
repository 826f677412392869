/**
 * The generic program: any op on any target the stack offers, control-plane
 * ops on whatever layers are there, threads that share targets (so they race)
 * or not. Recipes use its pieces to frame and pad their own programs.
 */
import { DM_KINDS, LAYER_KINDS, type StackInfo } from '../../model/index.ts';
import type { Draw } from './draw.ts';
import type { Normalized } from './options.ts';
import { type OpDraft, type OpEnv, genCorrupt, genDropCaches, genLoopSetBlockSize, genLoopSetDirectIo, genMdFail, genOpFor, genRead, genRemount, genSnapshotCreate, genSnapshotEnd, genTableSwap, genWrite } from './ops/index.ts';
import { ProgramBuilder, filesOf, threadCount } from './program.ts';
import { type IoTarget, ioTargets } from './targets.ts';

export function opEnv(o: Normalized, targets: readonly IoTarget[]): OpEnv {
  return { misaligned: o.misaligned, bufferFiles: targets.filter((t) => t.kind === 'file') };
}

/**
 * Snapshots made or ended by ops: create at the head of a cell, end at the
 * tail of the last phase, and the rule that keeps every other use in between
 * (the validator's "surely after create, surely before the end").
 */
export function planSnapshots(d: Draw, info: StackInfo, pb: ProgramBuilder, opts: { endChance?: number; createPhase?: number } = {}): void {
  for (const l of info.layers) {
    if (l.kind !== 'dm-snapshot') continue;
    const tc = d.int(0, pb.threads - 1);
    const pc = l.createdAt === 'op' ? (opts.createPhase ?? d.int(0, pb.phases - 1)) : -1;
    if (l.createdAt === 'op') pb.head(tc, pc, genSnapshotCreate(l.id));
    const end = d.chance(opts.endChance ?? 0.5);
    const te = tc;
    const pe = pb.phases - 1;
    if (end) pb.tail(te, pe, genSnapshotEnd(d, l.id));
    pb.rule((id, t, p) => id !== l.id || ((pc < 0 || p > pc || (p === pc && t === tc)) && (!end || p < pe || (p === pe && t === te))));
  }
}

/**
 * Targets at or above loops whose block size the program changes: O_DIRECT
 * below 4 KiB is no longer sure to work there, so no claims below it.
 */
export function afterResize(info: StackInfo, targets: readonly IoTarget[], resized: ReadonlySet<string>): IoTarget[] {
  if (!resized.size) return [...targets];
  return targets.map((t) => (resized.has(t.id) || info.below(t.id).some((l) => resized.has(l.id)) ? { ...t, unit: Math.max(t.unit, 4096) } : t));
}

/** Control-plane ops on the layers the stack has, each now and then. Returns the loops whose block size changes. */
export function planControls(d: Draw, info: StackInfo, pb: ProgramBuilder, o: Normalized, rate = 1): Set<string> {
  const resized = new Set<string>();
  const cell = () => [d.int(0, pb.threads - 1), d.int(0, pb.phases - 1)] as const;
  for (const l of info.layers) {
    if (l.kind === 'loop' && d.chance(0.25 * rate)) {
      for (let i = d.int(1, 3); i > 0; i--) {
        const [t, p] = cell();
        const op = d.chance(0.5) ? genLoopSetDirectIo(d, l.id) : genLoopSetBlockSize(d, info, l.id);
        if (op.kind === 'loop-set-block-size') resized.add(l.id);
        pb.insert(d, t, p, op);
      }
    }
    if (DM_KINDS.has(l.kind) && l.kind !== 'dm-snapshot' && d.chance(0.2 * rate)) {
      for (let i = d.int(1, 2); i > 0; i--) {
        const [t, p] = cell();
        pb.insert(d, t, p, ...genTableSwap(d, info, l.id));
      }
    }
    if (l.kind === 'md' && l.level === 1 && d.chance(0.3 * rate)) {
      const [t, p] = cell();
      pb.insert(d, t, p, genMdFail(d, info, l.id));
    }
    if (l.kind === 'fs' && o.kinds.has('fs') && d.chance(0.08 * rate)) {
      const files = filesOf(info, l.id);
      if (!files.busy) {
        const [t, p] = cell();
        pb.insert(d, t, p, genRemount(d, l.id));
        pb.rule((id, th, ph) => th === t || ph !== p || !files.all.includes(id));
      }
    }
  }
  const under = info.layers.filter((l) => LAYER_KINDS[l.kind].role === 'block' && info.usersOf(l.id).some((u) => !(u.kind === 'dm-snapshot' && u.origin === l.id)));
  if (under.length && d.chance(0.08 * rate)) {
    const [t, p] = cell();
    pb.insert(d, t, p, genCorrupt(d, info, d.pick(under).id));
  }
  return resized;
}

/** Draws one data op for a target (genOpFor, or a narrower choice). */
export type OpMaker = (d: Draw, target: IoTarget, env: OpEnv) => OpDraft;

/**
 * `budget` data ops over the targets: each thread has a favourite target
 * (shared with thread 0 half the time, so threads race), some ops go anywhere.
 */
export function fillData(d: Draw, pb: ProgramBuilder, targets: readonly IoTarget[], env: OpEnv, budget: number, phases?: readonly number[], make: OpMaker = genOpFor): void {
  if (!targets.length) return;
  const focus = Array.from({ length: pb.threads }, (_, t) => (t > 0 && d.chance(0.5) ? undefined : d.pick(targets)));
  const shared = focus[0]!;
  for (let i = 0, tries = 0; i < budget && tries < budget * 4; tries++) {
    const t = d.int(0, pb.threads - 1);
    const p = phases ? d.pick(phases) : d.int(0, pb.phases - 1);
    const target = d.chance(0.75) ? (focus[t] ?? shared) : d.pick(targets);
    const op = make(d, target, env);
    if (!pb.usable(op, t, p)) continue;
    pb.add(t, p, op);
    i++;
  }
}

/** Make sure the program does some IO: a write and a read where it may. */
export function ensureWork(d: Draw, pb: ProgramBuilder, targets: readonly IoTarget[], env: OpEnv): void {
  if (pb.work > 0 || !targets.length) return;
  for (const target of targets) {
    const w = genWrite(d, target, env);
    const r = genRead(d, target, env, { offset: w.offset, length: w.length });
    if (pb.usable(w, 0, pb.phases - 1) && pb.usable(r, 0, pb.phases - 1)) {
      pb.add(0, pb.phases - 1, w, r);
      return;
    }
  }
}

/** Any program for the stack. */
export function genericProgram(d: Draw, o: Normalized, info: StackInfo) {
  const threads = threadCount(d, o.maxThreads);
  const phases = d.weighted<number>([[4, 1], [3, 2], [2, 3]]);
  const pb = new ProgramBuilder(threads, phases);
  planSnapshots(d, info, pb);
  const targets = afterResize(info, ioTargets(info), planControls(d, info, pb, o));
  const env = opEnv(o, targets);
  // Room for data ops; control ops never take more than half the budget (capSize trims the rest).
  const room = Math.max(4, o.maxOps - Math.min(pb.size, Math.floor(o.maxOps / 2)));
  fillData(d, pb, targets, env, d.int(Math.min(4, room), Math.max(4, Math.min(room, d.chance(0.7) ? 24 : room))));
  ensureWork(d, pb, targets, env);
  return pb.build(o.maxOps);
}
