/**
 * S5: threads on one file at once on ext4 or xfs (btrfs now and then): writes
 * through a shared mapping racing fallocate in every mode (collapse and
 * insert where the filesystem has them) or truncate, buffered writes,
 * writeback and cache drops. A set-up phase may write the file first; a last
 * phase syncs, drops caches and reads it all back.
 */
import { opEnv } from '../generic.ts';
import { type FallocateMode, type OpDraft, genDropCaches, genFallocate, genFsync, genMmapRead, genMmapWrite, genMsync, genRead, genSleep, genSyncFileRange, genTruncate, genWrite } from '../ops/index.ts';
import { ProgramBuilder } from '../program.ts';
import { ioTargets } from '../targets.ts';
import { FS_FACTS } from '../../../model/index.ts';
import { type RecipeFn, clampThreads, fsOnDisk, pickFsType } from './common.ts';

const PAGE = 4096;

export const s5MmapRace: RecipeFn = (d, o, b) => {
  if (o.maxThreads < 2) return undefined;
  const type = pickFsType(d, o, { ext4: 4, xfs: 4, btrfs: 1, gfs2: 0.3 });
  if (!type) return undefined;
  const base = fsOnDisk(d, o, b, type);
  if (!base) return undefined;
  const size = d.weighted<number>([[3, 0], [6, d.int(16, 256) * PAGE]]);
  const f = b.grow('file', { purpose: 'data', filesystems: (l) => l.id === base.fs.id, adjust: (l) => (l.kind === 'file' ? { ...l, size, prealloc: size > 0 && d.chance(0.15) } : l) });
  if (!f) return undefined;
  const t = ioTargets(b.info).find((x) => x.id === f.id)!;
  const env = opEnv(o, []);
  // Collapse, insert and truncate racing other threads make the model walk every serial order
  // of the phase: such races stay small (two or three threads, a few ops each).
  const shifting = d.chance(0.4);
  const threads = clampThreads(o, shifting ? d.weighted<number>([[3, 2], [2, 3]]) : d.weighted<number>([[3, 2], [3, 3], [3, 4]]));
  const setup = d.chance(0.5);
  const final = d.chance(0.7);
  const phases = 1 + (setup ? 1 : 0) + (final ? 1 : 0);
  const race = setup ? 1 : 0;
  const pb = new ProgramBuilder(threads, phases);
  const span = Math.max(size, 64 * PAGE);
  const within = { ...t, span, size: Math.max(size, setup ? span : size) };
  if (setup) {
    pb.add(0, 0, genWrite(d, t, env, { offset: 0, length: span, direct: false, via: 'psync', vectors: 1, buffer: { placement: 'heap', align: 0 }, nowait: false }));
    pb.add(0, 0, genFsync(d, t));
  }
  const moving = (m: FallocateMode) => m === 'collapse-range' || m === 'insert-range';
  const modes = (Object.keys(FS_FACTS[type].fallocate) as FallocateMode[]).filter((m) => (FS_FACTS[type].fallocate[m] !== 'no' || d.chance(0.05)) && (shifting || !moving(m)));
  const role = (th: number): 'mapper' | 'falloc' | 'writer' | 'dropper' => (['mapper', 'falloc', 'writer', 'dropper'] as const)[th % 4]!;
  for (let th = 0; th < threads; th++) {
    const ops: OpDraft[] = [];
    const n = shifting ? d.int(1, 3) : d.int(2, 6);
    switch (role(th)) {
      case 'mapper':
        for (let i = 0; i < n; i++) {
          ops.push(genMmapWrite(d, within));
          if (d.chance(0.3)) ops.push(genMsync(d, t));
        }
        break;
      case 'falloc':
        for (let i = 0; i < n; i++) ops.push(shifting && d.chance(0.25) ? genTruncate(d, within) : genFallocate(d, within, { mode: d.pick(modes), misaligned: 0.05 }));
        break;
      case 'writer':
        for (let i = 0; i < n; i++) {
          ops.push(d.chance(0.25) ? genMmapWrite(d, within) : genWrite(d, within, env, { direct: d.chance(0.15) }));
          if (d.chance(0.4)) ops.push(d.chance(0.5) ? genFsync(d, t) : genSyncFileRange(d, within));
        }
        break;
      case 'dropper':
        for (let i = 0; i < n; i++) ops.push(d.weighted<OpDraft>([[3, genDropCaches()], [2, genSleep(d, 2)], [2, genFsync(d, t, true)], [1, genFallocate(d, within, { mode: d.pick(modes) })]]));
        break;
    }
    pb.add(th, race, ...ops);
  }
  if (final) {
    const p = phases - 1;
    pb.add(0, p, genFsync(d, t), genDropCaches(), genRead(d, t, env, { offset: 0, length: span * 2, direct: false, via: 'psync', vectors: 1, buffer: { placement: 'heap', align: 0 }, nowait: false }));
    if (d.chance(0.5)) pb.add(0, p, genMmapRead(d, t, { offset: 0, length: span }));
  }
  return pb.build(o.maxOps);
};
