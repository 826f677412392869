/** A regular file on a mounted filesystem: a loop backing file or the target of file ops. */
import fc from 'fast-check';
import { z } from 'zod';
import { Bytes, LayerId } from '../schema/common.ts';
import { FS_FACTS } from './fs.ts';
import { MiB, mibSize } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, noNeeds } from './kind.ts';

export const FileLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('file'),
  on: LayerId,
  /** File name inside the mount; no directories. */
  name: z.string().regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'a file name is 1-64 chars of a-z 0-9 . _ -'),
  /** Initial size, set with ftruncate (a hole) or fallocate when prealloc is set. */
  size: Bytes.default(0),
  prealloc: z.boolean().default(false),
});
export type FileLayer = z.infer<typeof FileLayer>;

export const file: LayerKindModule<FileLayer> = {
  kind: 'file',
  schema: FileLayer,
  role: 'file',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['fs'] }],
  check(layer, stack) {
    const siblings = stack.usersOf(layer.on).filter((l) => l.kind === 'file' && l.id !== layer.id && l.name === layer.name);
    return siblings.length > 0 ? [{ path: ['name'], message: `another file on '${layer.on}' is also named '${layer.name}'` }] : [];
  },
  geometry: (layer) => ({ sizeMin: layer.size, sizeMax: layer.size, logicalBlockSizes: [1], physicalBlockSize: 1 }),
  initialFill: () => 'zero',
  mapUp: () => 'unknown',
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  needs: () => noNeeds,
};

file.setup = (layer, env) => {
  const path = env.filePath(layer.id);
  if (layer.prealloc && layer.size > 0) return { steps: [{ name: `file ${layer.id}`, argv: ['fallocate', '-l', String(layer.size), path] }] };
  return { steps: [{ name: `file ${layer.id}`, argv: ['truncate', '-s', String(layer.size), path] }] };
};

/**
 * Generation: a file on a filesystem with room for it. A loop's backing file
 * is whole MiB; a data file is empty, a few pages, an odd size or a few MiB,
 * preallocated now and then.
 */
file.arbitrary = (ctx) => {
  const options = ctx.filesystems.flatMap((fsl) => {
    const g = ctx.stack.geometry(fsl.on);
    if (!g) return [];
    const used = ctx.stack.usersOf(fsl.id).reduce((n, f) => n + (f.kind === 'file' ? f.size : 0), 0);
    const room = FS_FACTS[fsl.type].guaranteedData(g.sizeMin) - used;
    return room >= MiB ? [{ on: fsl.id, room }] : [];
  });
  if (!options.length) return undefined;
  const backing = (room: number) => mibSize(Math.min(8 * MiB, room), Math.min(room, 64 * MiB));
  const data = (room: number) =>
    fc.oneof(
      { weight: 3, arbitrary: fc.constant(0) },
      { weight: 3, arbitrary: fc.integer({ min: 1, max: 256 }).map((k) => k * 4096) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: MiB }) },
      { weight: 1, arbitrary: mibSize(MiB, Math.min(room, 16 * MiB)) },
    );
  return fc
    .record({ pick: fc.constantFrom(...options), asBacking: fc.boolean(), prealloc: fc.integer({ min: 0, max: 6 }) })
    .chain(({ pick, asBacking, prealloc }) => {
      const isBacking = ctx.purpose === 'backing' || (ctx.purpose === undefined && asBacking && pick.room >= 8 * MiB);
      return (isBacking ? backing(pick.room) : data(pick.room)).map((size): Layer[] => [
        { id: ctx.id, kind: 'file', on: pick.on, name: `${ctx.id}.${isBacking ? 'img' : 'bin'}`, size: Math.min(size, pick.room), prealloc: !isBacking && size > 0 && prealloc === 0 },
      ]);
    });
};
