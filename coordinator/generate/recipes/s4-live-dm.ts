/**
 * S4: device-mapper reconfigured under IO. A whole-device dm-linear (raw, or
 * under a filesystem) whose table is swapped live (suspend, reload as an
 * interposer or back, resume) by one thread while others write; or a
 * snapshot of a live origin, made while writers run, read, then removed or
 * merged. The last phase reads back what the writers wrote.
 */
import { DM_KINDS, type Layer } from '../../../model/index.ts';
import { fillData, opEnv } from '../generic.ts';
import { type OpDraft, genDropCaches, genFsync, genRead, genSleep, genSnapshotCreate, genSnapshotEnd, genTableSwap, genWrite } from '../ops/index.ts';
import { ProgramBuilder } from '../program.ts';
import { randomStack } from './random.ts';
import { type IoTarget, ioTargets } from '../targets.ts';
import { MiB, type RecipeFn, clampThreads, readBack } from './common.ts';

export const s4LiveDm: RecipeFn = (d, o, b) => {
  const snap = o.kinds.has('dm-snapshot') && o.kinds.has('dm-snapshot-origin');
  const linear = o.kinds.has('dm-linear');
  const variant = d.weighted<'raw' | 'fs' | 'snapshot' | 'any'>([
    [linear ? 3 : 0, 'raw'],
    [linear && o.kinds.has('fs') && o.fsTypes.length ? 3 : 0, 'fs'],
    [snap ? 3.5 : 0, 'snapshot'],
    [1, 'any'],
  ]);
  let live: Layer | undefined;
  let snapshot: Layer | undefined;
  if (variant === 'any') {
    randomStack(d, o, b, 3);
    const dms = b.layers.filter((l) => DM_KINDS.has(l.kind) && l.kind !== 'dm-snapshot');
    if (!dms.length) live = b.grow('dm-linear', { adjust: (l) => (l.kind === 'dm-linear' ? { ...l, offset: 0, length: undefined } : l) });
    else live = d.pick(dms);
  } else {
    const disk = b.grow('disk', { adjust: (l) => (l.kind === 'disk' ? { ...l, size: Math.min(l.size, d.pick([64, 128, 256]) * MiB) } : l) });
    if (!disk) return undefined;
    if (variant === 'snapshot') {
      snapshot = b.grow('dm-snapshot', {
        accept: (ls) => ls.some((l) => l.kind === 'dm-snapshot-origin'),
        adjust: (l) => (l.kind === 'dm-snapshot' ? { ...l, createdAt: d.chance(0.75) ? 'op' : 'setup' } : l),
      });
      if (!snapshot || snapshot.kind !== 'dm-snapshot') return undefined;
      live = b.info.layer(snapshot.origin);
    } else {
      live = b.grow('dm-linear', { blocks: (l) => l.id === disk.id, adjust: (l) => (l.kind === 'dm-linear' ? { ...l, offset: 0, length: undefined } : l) });
      if (live && variant === 'fs') {
        const fsl = b.grow('fs', { blocks: (l) => l.id === live!.id });
        if (fsl) b.grow('file', { purpose: 'data', filesystems: (l) => l.id === fsl.id });
      }
    }
  }
  if (!live) return undefined;

  const targets = ioTargets(b.info);
  const env = opEnv(o, targets);
  // Writers work on what sits on the live device (or on it, raw).
  const above = (t: IoTarget) => t.id === live!.id || b.info.below(t.id).some((l) => l.id === live!.id);
  const work = targets.filter((t) => above(t) && t.id !== snapshot?.id);
  if (!work.length) return undefined;
  const threads = clampThreads(o, d.int(2, 3));
  if (threads < 2) return undefined;
  const ctl = threads - 1;
  const phases = d.weighted<number>([[2, 2], [3, 3]]);
  const pb = new ProgramBuilder(threads, phases);
  const writes: Array<Extract<OpDraft, { kind: 'write' }>> = [];
  const race = phases === 3 ? 1 : 0;
  for (let th = 0; th < ctl; th++) {
    for (let p = 0; p <= race; p++) {
      for (let i = d.int(2, 6); i > 0; i--) {
        const t = d.pick(work);
        const w = genWrite(d, t, env);
        writes.push(w);
        pb.add(th, p, w);
        if (d.chance(0.2)) pb.add(th, p, t.kind === 'file' ? genFsync(d, t) : genRead(d, t, env));
      }
    }
  }
  if (snapshot?.kind === 'dm-snapshot') {
    const snapT = targets.find((t) => t.id === snapshot!.id);
    if (snapshot.createdAt === 'op') pb.head(ctl, race, genSnapshotCreate(snapshot.id));
    // Read the snapshot once it surely exists: later in the same thread.
    if (snapT) for (let i = d.int(1, 3); i > 0; i--) pb.add(ctl, race, genRead(d, snapT, env, { nowait: false }));
    if (d.chance(0.6)) pb.tail(ctl, phases - 1, genSnapshotEnd(d, snapshot.id));
  }
  if (!snapshot || d.chance(0.5)) {
    for (let i = d.int(1, 4); i > 0; i--) {
      pb.together(ctl, race, ...genTableSwap(d, b.info, live.id));
      if (d.chance(0.5)) pb.add(ctl, race, genSleep(d, 5));
    }
  }
  // After the swaps: drop caches and read back.
  pb.add(0, phases - 1, genDropCaches());
  for (const w of writes) if (d.chance(0.5)) pb.add(0, phases - 1, readBack(w));
  fillData(d, pb, work, env, d.int(0, 3), [race]);
  return pb.build(o.maxOps);
};
