/** A plain disk: a virtio disk in a VM, a sparse file behind a loop device on the host. */
import fc from 'fast-check';
import { z } from 'zod';
import { BlockSize, LayerId, PositiveBytes, SECTOR } from '../schema/common.ts';
import { mibSize } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, noNeeds } from './kind.ts';

export const DiskLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('disk'),
  size: PositiveBytes,
  logicalBlockSize: BlockSize.default(512),
  physicalBlockSize: BlockSize.optional(),
});
export type DiskLayer = z.infer<typeof DiskLayer>;

export const disk: LayerKindModule<DiskLayer> = {
  kind: 'disk',
  schema: DiskLayer,
  role: 'block',
  lower: () => [],
  check(layer) {
    const issues = [];
    if (layer.size % layer.logicalBlockSize !== 0)
      issues.push({ path: ['size'], message: `size ${layer.size} is not a multiple of the logical block size ${layer.logicalBlockSize}` });
    if (layer.physicalBlockSize !== undefined && layer.physicalBlockSize < layer.logicalBlockSize)
      issues.push({ path: ['physicalBlockSize'], message: 'the physical block size cannot be smaller than the logical block size' });
    return issues;
  },
  geometry: (layer) => ({
    sizeMin: layer.size,
    sizeMax: layer.size,
    logicalBlockSizes: [layer.logicalBlockSize],
    physicalBlockSize: layer.physicalBlockSize ?? layer.logicalBlockSize,
  }),
  initialFill: () => 'zero',
  mapUp: () => [],
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  resetsWithDisks: () => true,
  needs: () => noNeeds,
};

export { SECTOR };

/** Host: a sparse file behind a loop device with the disk's logical block size. Guest: a virtio disk, nothing to do. */
disk.setup = (layer, env) => {
  if (env.disks === 'virtio') return { steps: [] };
  const image = `${env.workDir}/disk-${layer.id}.img`;
  return {
    steps: [
      { name: `image for disk ${layer.id}`, argv: ['truncate', '-s', String(layer.size), image] },
      {
        name: `disk ${layer.id}`,
        argv: ['losetup', '--find', '--show', '--sector-size', String(layer.logicalBlockSize), image],
        capture: `dev_${layer.id}`,
        undo: ['losetup', '-d', `\${dev_${layer.id}}`],
      },
    ],
  };
};

/** Generation: a fresh disk, 512-byte sectors mostly, 4 KiB often (S1's mismatch), the odd sizes now and then. */
disk.arbitrary = (ctx) =>
  fc
    .record({
      size: mibSize(ctx.diskSize.min, ctx.diskSize.max),
      lbs: fc.constantFrom<BlockSize>(512, 512, 512, 4096, 4096, 1024, 2048),
      pbs: fc.constantFrom<BlockSize | undefined>(undefined, undefined, undefined, 4096),
    })
    .map(({ size, lbs, pbs }): Layer[] => [
      { id: ctx.id, kind: 'disk', size, logicalBlockSize: lbs, ...(pbs !== undefined && pbs >= lbs ? { physicalBlockSize: pbs } : {}) },
    ]);
