/**
 * Generators for the control-plane ops (model/ops/control.ts): loop ioctls,
 * dm table swaps, snapshot lifecycle, md member failure, corruption under a
 * layer. A table swap comes out whole (suspend, reload, resume back to back
 * in one thread) so a suspended device is always resumed by its suspender
 * before anything else that thread does.
 */
import { DM_KINDS, type StackInfo } from '../../../model/index.ts';
import type { Draw } from '../draw.ts';
import { type DraftOf, KiB, MiB, type OpDraft } from './common.ts';
import { genSleep } from './barrier.ts';

export function genLoopSetDirectIo(d: Draw, loopId: string, on?: boolean): DraftOf<'loop-set-direct-io'> {
  return { kind: 'loop-set-direct-io', target: loopId, on: on ?? d.chance(0.6) };
}

/** A new logical block size no larger than the blocks of a filesystem on the loop. */
export function genLoopSetBlockSize(d: Draw, info: StackInfo, loopId: string): DraftOf<'loop-set-block-size'> {
  const cap = Math.min(4096, ...info.usersOf(loopId).map((u) => (u.kind === 'fs' ? u.blockSize : 4096)));
  const sizes = ([512, 1024, 2048, 4096] as const).filter((s) => s <= cap);
  return { kind: 'loop-set-block-size', target: loopId, size: d.pick(sizes) };
}

/** The tables a dm layer may be reloaded with (the validator's rule). */
export function reloadChoices(info: StackInfo, dmId: string): Array<'same' | 'linear' | 'snapshot-origin'> {
  const l = info.layer(dmId);
  if (!l || !DM_KINDS.has(l.kind)) return [];
  const whole = (l.kind === 'dm-linear' && l.offset === 0 && l.length === undefined) || l.kind === 'dm-snapshot-origin';
  if (!whole) return ['same'];
  const hasSnapshots = info.usersOf(dmId).some((u) => u.kind === 'dm-snapshot');
  return hasSnapshots ? ['same', 'snapshot-origin'] : ['same', 'linear', 'snapshot-origin'];
}

/** suspend, a reload (mostly), maybe a short sleep, resume: one unit in one thread. */
export function genTableSwap(d: Draw, info: StackInfo, dmId: string, as?: 'same' | 'linear' | 'snapshot-origin'): OpDraft[] {
  const out: OpDraft[] = [{ kind: 'dm-suspend', target: dmId, noflush: d.chance(0.2) }];
  const choices = reloadChoices(info, dmId);
  if (as !== undefined || d.chance(0.8)) out.push({ kind: 'dm-reload', target: dmId, as: as && choices.includes(as) ? as : d.pick(choices) });
  if (d.chance(0.3)) out.push(genSleep(d, 3));
  out.push({ kind: 'dm-resume', target: dmId });
  return out;
}

export function genSnapshotCreate(snapId: string): DraftOf<'snapshot-create'> {
  return { kind: 'snapshot-create', target: snapId };
}

/** The end of a snapshot: removed, or merged back into its origin. */
export function genSnapshotEnd(d: Draw, snapId: string): DraftOf<'snapshot-remove'> | DraftOf<'snapshot-merge'> {
  return d.chance(0.7) ? { kind: 'snapshot-remove', target: snapId } : { kind: 'snapshot-merge', target: snapId };
}

export function genMdFail(d: Draw, info: StackInfo, mdId: string): DraftOf<'md-fail'> {
  const l = info.layer(mdId);
  const n = l?.kind === 'md' ? l.members.length : 1;
  return { kind: 'md-fail', target: mdId, member: d.int(0, n - 1) };
}

/** Noise over a range of a layer that another sits on, mostly where programs do their IO (the first MiBs). */
export function genCorrupt(d: Draw, info: StackInfo, lowerId: string): DraftOf<'corrupt'> {
  const size = info.geometry(lowerId)?.sizeMin ?? MiB;
  const length = Math.min(size, d.chance(0.7) ? d.int(1, 64) * 512 : d.int(1, 256) * 4 * KiB);
  const span = Math.min(size, d.chance(0.8) ? 8 * MiB : size);
  const offset = d.int(0, Math.floor(Math.max(0, span - length) / 512)) * 512;
  return { kind: 'corrupt', target: lowerId, offset, length };
}
