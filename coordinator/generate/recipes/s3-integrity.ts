/**
 * S3: integrity metadata through stacked device-mapper targets. Authenticated
 * dm-crypt over dm-integrity (the tags) with more layers above it now and
 * then, or an emulated disk with T10 protection information (scsi_debug DIF/
 * DIX) under dm-linear and plain dm-crypt layers. Writes at every alignment,
 * read back; sometimes the bytes under a verifying layer are corrupted and
 * read again, which must fail rather than return other data.
 */
import type { Layer } from '../../../model/index.ts';
import { fillData, opEnv } from '../generic.ts';
import { genCorrupt, genDropCaches, genFlush, genWrite } from '../ops/index.ts';
import { ProgramBuilder } from '../program.ts';
import { ioTargets } from '../targets.ts';
import type { StackBuilder } from '../stack.ts';
import { MiB, type RecipeFn, clampThreads, readBack } from './common.ts';

/** dm-linear and plain dm-crypt layers on top of `top`, `n` of them. */
function stackOn(b: StackBuilder, top: Layer, n: number): Layer {
  let cur = top;
  for (let i = 0; i < n; i++) {
    const kind = b.d.weighted<'dm-linear' | 'dm-crypt'>([[b.supports('dm-linear') ? 2 : 0, 'dm-linear'], [b.supports('dm-crypt') ? 1 : 0, 'dm-crypt']]);
    const next = b.grow(kind, {
      blocks: (l) => l.id === cur.id,
      adjust: (l) => (l.kind === 'dm-crypt' ? { ...l, integrity: 'none' } : l),
      accept: (ls) => ls.length === 1,
    });
    if (!next) break;
    cur = next;
  }
  return cur;
}

export const s3Integrity: RecipeFn = (d, o, b) => {
  const aead = o.kinds.has('dm-integrity') && o.kinds.has('dm-crypt');
  const scsi = o.kinds.has('scsi-debug') && (o.kinds.has('dm-linear') || o.kinds.has('dm-crypt'));
  const variant = d.weighted<'aead' | 'scsi' | 'integrity'>([[aead ? 6 : 0, 'aead'], [scsi ? 3 : 0, 'scsi'], [o.kinds.has('dm-integrity') ? 0.5 : 0, 'integrity']]);
  let top: Layer | undefined;
  if (variant === 'scsi') {
    const sd = b.grow('scsi-debug', { adjust: (l) => (l.kind === 'scsi-debug' ? { ...l, dif: l.dif === 0 ? 1 : l.dif, dix: d.chance(0.7) } : l) });
    if (!sd) return undefined;
    top = stackOn(b, sd, d.int(1, 3));
    if (top.id === sd.id) return undefined;
  } else {
    const disk = b.grow('disk', { adjust: (l) => (l.kind === 'disk' ? { ...l, size: Math.min(l.size, d.pick([64, 64, 128, 256]) * MiB) } : l) });
    if (!disk) return undefined;
    let under: Layer = disk;
    if (d.chance(0.3) && o.kinds.has('dm-linear')) under = b.grow('dm-linear', { blocks: (l) => l.id === disk.id, adjust: (l) => (l.kind === 'dm-linear' ? { ...l, offset: 0, length: undefined } : l) }) ?? disk;
    const verifying =
      variant === 'aead'
        ? b.grow('dm-crypt', { blocks: (l) => l.id === under.id, accept: (ls) => ls.some((l) => l.kind === 'dm-crypt' && l.integrity !== 'none') })
        : b.grow('dm-integrity', { blocks: (l) => l.id === under.id });
    if (!verifying) return undefined;
    top = d.chance(0.4) ? stackOn(b, verifying, d.int(1, 2)) : verifying;
  }

  const targets = ioTargets(b.info);
  const env = opEnv(o, targets);
  const t = targets.find((x) => x.id === top!.id);
  if (!t) return undefined;
  const corrupt = d.chance(0.35);
  const threads = clampThreads(o, d.weighted<number>([[4, 1], [1, 2]]));
  const pb = new ProgramBuilder(threads, corrupt ? 2 : d.weighted<number>([[2, 1], [1, 2]]));
  const writes = [];
  for (let i = d.int(2, 10); i > 0; i--) {
    const w = genWrite(d, t, env, { align: d.chance(o.misaligned) ? 'byte' : d.chance(0.3) ? 'small' : 'unit' });
    writes.push(w);
    pb.add(d.int(0, threads - 1), 0, w);
  }
  pb.add(0, 0, d.chance(0.5) ? genFlush(t) : genDropCaches());
  for (const w of writes) if (d.chance(0.7)) pb.add(0, pb.phases - 1, readBack(w));
  if (corrupt) {
    // Damage under the verifying layers (or under the whole stack), then read again from cold caches.
    const below = b.info.below(t.id).filter((l) => l.kind !== 'fs' && l.kind !== 'file' && b.info.usersOf(l.id).length > 0);
    if (below.length) {
      pb.head(0, pb.phases - 1, genCorrupt(d, b.info, d.pick(below).id), genDropCaches());
    }
  }
  fillData(d, pb, targets, env, d.int(0, 3));
  return pb.build(o.maxOps);
};
