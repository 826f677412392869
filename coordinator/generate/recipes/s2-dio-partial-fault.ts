/**
 * S2: a file made of several extents (write a page, fsync, write the next,
 * fsync, ...) on btrfs, ext4 or xfs, then O_DIRECT reads of several pages
 * through io_uring or preadv2 into a buffer of which only the first pages
 * were faulted in, or into a shared mapping of a file (generic/647). A
 * second thread now and then does its own IO on the same file.
 */
import { fillData, opEnv } from '../generic.ts';
import { type DraftOf, type OpDraft, genDropCaches, genFsync, genMmapRead, genSyncFileRange, genWrite } from '../ops/index.ts';
import { ProgramBuilder } from '../program.ts';
import { ioTargets } from '../targets.ts';
import { type RecipeFn, clampThreads, fsOnDisk, pickFsType } from './common.ts';

const PAGE = 4096;

export const s2DioPartialFault: RecipeFn = (d, o, b) => {
  const type = pickFsType(d, o, { btrfs: 4, ext4: 2, xfs: 2, gfs2: 0.3 });
  if (!type) return undefined;
  const base = fsOnDisk(d, o, b, type, d.chance(0.2) ? 4096 : 512);
  if (!base) return undefined;
  const data = b.grow('file', { purpose: 'data', filesystems: (l) => l.id === base.fs.id, adjust: (l) => (l.kind === 'file' ? { ...l, size: 0, prealloc: false } : l) });
  if (!data) return undefined;
  const mmapBuffer = d.chance(0.35);
  const bufFile = mmapBuffer && d.chance(0.7)
    ? b.grow('file', { purpose: 'data', filesystems: (l) => l.id === base.fs.id, adjust: (l) => (l.kind === 'file' ? { ...l, size: d.int(4, 64) * PAGE, prealloc: false } : l) })
    : undefined;

  const targets = ioTargets(b.info);
  const env = opEnv(o, targets);
  const t = targets.find((x) => x.id === data.id)!;
  const second = o.maxThreads >= 2 && d.chance(0.2);
  const pb = new ProgramBuilder(clampThreads(o, second ? 2 : 1), 1);
  const pages = d.int(2, 8);
  const pagePer = d.chance(0.8) ? 1 : 2;
  for (let i = 0; i < pages; i++) {
    const direct = d.chance(0.2);
    pb.add(0, 0, genWrite(d, t, env, { offset: i * pagePer * PAGE, length: pagePer * PAGE, direct, via: d.chance(0.7) ? 'psync' : 'pvec', vectors: 1, nowait: false, buffer: { placement: 'heap', align: 0 }, align: 'unit', dsync: false }));
    pb.add(0, 0, d.chance(0.8) ? genFsync(d, t) : { ...genSyncFileRange(d, t), offset: 0, length: 0, flags: 'wait-write' });
  }
  const written = pages * pagePer;
  if (d.chance(0.3)) pb.add(0, 0, { kind: 'truncate', target: t.id, size: (written + d.int(1, 16)) * PAGE });
  if (d.chance(0.6)) pb.add(0, 0, genDropCaches());
  for (let r = d.int(1, 4); r > 0; r--) {
    const n = d.int(2, written);
    const first = d.int(0, written - n);
    const vectorChoices = [1, 1, 1, 2, 4].filter((v) => n % v === 0);
    const vectors = d.pick(vectorChoices);
    const via = d.chance(0.7) ? 'io_uring' : 'pvec';
    const nowait = d.chance(0.25);
    let buffer: DraftOf<'read'>['buffer'];
    let after: OpDraft | undefined;
    if (mmapBuffer) {
      if (bufFile) {
        const off = d.int(0, Math.max(0, Math.floor(bufFile.kind === 'file' ? bufFile.size / PAGE : 0) - n)) * PAGE;
        buffer = { placement: 'mmap', file: bufFile.id, offset: off, align: 0 };
        after = genMmapRead(d, targets.find((x) => x.id === bufFile.id)!, { offset: off, length: n * PAGE });
      } else {
        // The same file, mapped past the range the read covers (fstests generic/647).
        buffer = { placement: 'mmap', file: t.id, offset: (written + d.int(0, 4)) * PAGE, align: 0 };
      }
    } else {
      buffer = { placement: 'anon', touchedPages: d.weighted<number>([[6, 1], [2, 0], [2, d.int(1, n - 1)]]), align: 0 };
    }
    const read: OpDraft = { kind: 'read', target: t.id, offset: first * PAGE, length: n * PAGE, via, direct: true, nowait, vectors, buffer, ...(!nowait && buffer?.placement === 'anon' ? { mustSucceed: true } : {}) };
    pb.add(0, 0, read);
    if (after) pb.add(0, 0, after);
  }
  if (second) fillData(d, pb, [t], env, d.int(1, 5));
  return pb.build(o.maxOps);
};
