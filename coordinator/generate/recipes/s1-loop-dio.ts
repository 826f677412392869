/**
 * S1: loop devices in direct-IO mode whose advertised block size differs
 * from what the backing store takes (a file on a 4 KiB filesystem, a 4 KiB
 * disk), md raid0 over such loops, and the loop ioctls racing IO. The
 * program does O_DIRECT IO legal for the loop's advertised block (sub-page),
 * reads it back, and now and then a second thread toggles direct IO and
 * changes the block size.
 */
import type { Layer } from '../../../model/index.ts';
import { afterResize, fillData, opEnv } from '../generic.ts';
import { genLoopSetBlockSize, genLoopSetDirectIo, genRead, genSleep, genWrite } from '../ops/index.ts';
import { ProgramBuilder } from '../program.ts';
import { ioTargets } from '../targets.ts';
import { type RecipeFn, clampThreads, fsOnDisk, pickFsType, readBack } from './common.ts';

const SUB_PAGE = [512, 512, 1024, 2048, undefined, 4096] as const;

export const s1LoopDio: RecipeFn = (d, o, b) => {
  const variant = d.weighted<'file' | 'block' | 'raid0' | 'fs-on-loop'>([
    [5, 'file'],
    [2, 'block'],
    [o.kinds.has('md') ? 2.5 : 0, 'raid0'],
    [o.kinds.has('fs') ? 1 : 0, 'fs-on-loop'],
  ]);
  const loops: Layer[] = [];
  const loopAdjust = (l: Layer): Layer => {
    if (l.kind !== 'loop') return l;
    const lbs = d.pick(variant === 'raid0' ? ([512, 512, 1024, 2048] as const) : SUB_PAGE);
    const { logicalBlockSize: _drop, ...rest } = l;
    return { ...rest, directIo: d.chance(0.85), readOnly: false, offset: 0, sizeLimit: undefined, ...(lbs !== undefined ? { logicalBlockSize: lbs } : {}) };
  };
  if (variant === 'block' || !o.kinds.has('fs') || !o.kinds.has('file')) {
    const disk = b.grow('disk', { adjust: (l) => (l.kind === 'disk' ? { ...l, logicalBlockSize: 4096, physicalBlockSize: undefined, size: Math.min(l.size, 256 * 1024 * 1024) } : l) });
    if (!disk) return undefined;
    const lo = b.grow('loop', { blocks: (l) => l.id === disk.id, adjust: loopAdjust });
    if (!lo) return undefined;
    loops.push(lo);
  } else {
    const type = pickFsType(d, o, { ext4: 3, xfs: 2, btrfs: 2 });
    if (!type) return undefined;
    const base = fsOnDisk(d, o, b, type, d.chance(0.6) ? 4096 : 512);
    if (!base) return undefined;
    const n = variant === 'raid0' ? d.int(2, 3) : d.weighted<number>([[3, 1], [2, 2], [1, 3]]);
    for (let i = 0; i < n; i++) {
      const f = b.grow('file', { purpose: 'backing', filesystems: (l) => l.id === base.fs.id });
      if (!f) break;
      const lo = b.grow('loop', { files: (l) => l.id === f.id, blocks: () => false, adjust: loopAdjust });
      if (lo) loops.push(lo);
    }
    if (!loops.length) return undefined;
    if (variant === 'raid0' && loops.length >= 2) {
      const chunk = d.pick([4096, 4096, 8192, 16384, 65536]);
      b.push([{ id: b.newId('md'), kind: 'md', level: 0, members: loops.map((l) => l.id), chunk }]);
    }
    if (variant === 'fs-on-loop') {
      const lo = loops[0]!;
      const fsl = b.grow('fs', { blocks: (l) => l.id === lo.id, adjust: (l) => (l.kind === 'fs' ? { ...l, type: 'ext4', blockSize: 4096 } : l) });
      if (fsl) b.grow('file', { purpose: 'data', filesystems: (l) => l.id === fsl.id });
    }
  }

  const control = o.maxThreads >= 2 && d.chance(0.4);
  const ioThreads = Math.max(1, clampThreads(o, d.weighted<number>([[3, 1], [1, 2]]) + (control ? 1 : 0)) - (control ? 1 : 0));
  const threads = ioThreads + (control ? 1 : 0);
  const pb = new ProgramBuilder(threads, control ? 2 : d.weighted<number>([[3, 1], [1, 2]]));
  // The control thread first: a loop whose block size changes under IO makes no sub-4K claims, nor does what sits on it.
  const resized = new Set<string>();
  if (control) {
    const ctl = threads - 1;
    const loopIds = loops.map((l) => l.id);
    for (let i = d.int(1, 5); i > 0; i--) {
      const id = d.pick(loopIds);
      const op = d.chance(0.5) ? genLoopSetDirectIo(d, id) : genLoopSetBlockSize(d, b.info, id);
      if (op.kind === 'loop-set-block-size') resized.add(id);
      pb.add(ctl, 0, op);
      if (d.chance(0.4)) pb.add(ctl, 0, genSleep(d, 3));
    }
  }
  const targets = afterResize(b.info, ioTargets(b.info), resized);
  const env = opEnv(o, targets);
  const io = targets.filter((t) => t.kind === 'block');
  const budget = Math.min(o.maxOps - 10, d.int(6, 24));
  for (let i = 0; i < budget && io.length; i++) {
    const t = d.pick(io);
    const th = d.int(0, ioThreads - 1);
    const w = genWrite(d, t, env, { direct: d.chance(0.85), align: d.chance(o.misaligned) ? 'byte' : d.chance(0.7) ? 'small' : 'unit' });
    pb.add(th, 0, w);
    if (d.chance(0.6)) pb.add(th, pb.phases - 1, readBack(w));
    else if (d.chance(0.3)) pb.add(th, 0, genRead(d, t, env, { direct: true }));
  }
  // Some of anything else on the stack.
  fillData(d, pb, targets, env, d.int(0, 4));
  return pb.build(o.maxOps);
};
