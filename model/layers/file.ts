/** A regular file on a mounted filesystem: a loop backing file or the target of file ops. */
import { z } from 'zod';
import { Bytes, LayerId } from '../schema/common.ts';
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
