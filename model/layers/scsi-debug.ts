/**
 * An emulated SCSI disk (scsi_debug) with optional T10 protection information:
 * DIF type 0-3 and DIX, so integrity metadata travels with every bio (S3).
 */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId, PositiveBytes } from '../schema/common.ts';
import { MiB, mibSize } from './generate.ts';
import type { Layer } from './index.ts';
import type { LayerKindModule } from './kind.ts';

export const ScsiDebugLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('scsi-debug'),
  /** scsi_debug sizes its RAM disk in MiB. */
  size: PositiveBytes,
  logicalBlockSize: z.union([z.literal(512), z.literal(4096)]).default(512),
  physicalBlockSize: z.union([z.literal(512), z.literal(4096)]).optional(),
  dif: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3)]).default(0),
  dix: z.boolean().default(false),
  guard: z.enum(['crc', 'ip']).default('crc'),
});
export type ScsiDebugLayer = z.infer<typeof ScsiDebugLayer>;

export const scsiDebug: LayerKindModule<ScsiDebugLayer> = {
  kind: 'scsi-debug',
  schema: ScsiDebugLayer,
  role: 'block',
  lower: () => [],
  check(layer, stack) {
    const issues = [];
    if (layer.size % MiB !== 0) issues.push({ path: ['size'], message: 'scsi_debug sizes are whole MiB (dev_size_mb)' });
    if (layer.physicalBlockSize !== undefined && layer.physicalBlockSize < layer.logicalBlockSize)
      issues.push({ path: ['physicalBlockSize'], message: 'the physical block size cannot be smaller than the logical block size' });
    if (layer.dif === 0 && layer.dix)
      issues.push({ path: ['dix'], message: 'DIX needs a DIF type (1, 2 or 3)' });
    const others = stack.all().filter((l) => l.kind === 'scsi-debug' && l.id !== layer.id);
    if (others.length > 0)
      issues.push({ path: ['kind'], message: 'only one scsi-debug disk per case (the module takes one parameter set)' });
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
  // Protection information is verified by the HBA/driver: corruption below it surfaces as errors.
  verifiesData: (layer) => layer.dif !== 0,
  needs: (layer) => ({
    modules: ['scsi_debug', 'sd_mod', 't10-pi'],
    tools: [],
    config: ['SCSI_DEBUG', 'BLK_DEV_SD', ...(layer.dif !== 0 ? ['BLK_DEV_INTEGRITY'] : [])],
  }),
};


/** Generation: one small RAM disk per case, with protection information (DIF type 1-3, DIX) most of the time. */
scsiDebug.arbitrary = (ctx) => {
  if (ctx.stack.all().some((l) => l.kind === 'scsi-debug')) return undefined;
  const max = Math.min(ctx.diskSize.max, 128 * MiB);
  return fc
    .record({
      size: mibSize(Math.min(32 * MiB, max), max),
      lbs: fc.constantFrom<512 | 4096>(512, 512, 4096),
      dif: fc.constantFrom<0 | 1 | 2 | 3>(0, 1, 1, 2, 3),
      dix: fc.boolean(),
      guard: fc.constantFrom<'crc' | 'ip'>('crc', 'crc', 'ip'),
    })
    .map(({ size, lbs, dif, dix, guard }): Layer[] => [{ id: ctx.id, kind: 'scsi-debug', size, logicalBlockSize: lbs, dif, dix: dif !== 0 && dix, guard }]);
};

/** Load scsi_debug with this disk's parameters, then find its /dev/sdX (the executor's --scsi-debug-dev waits for it). */
scsiDebug.setup = (layer) => {
  const pbs = layer.physicalBlockSize ?? layer.logicalBlockSize;
  const params = [
    `dev_size_mb=${layer.size / MiB}`,
    `sector_size=${layer.logicalBlockSize}`,
    `physblk_exp=${Math.log2(pbs / layer.logicalBlockSize)}`,
    `dif=${layer.dif}`,
    `dix=${layer.dix ? 1 : 0}`,
    `guard=${layer.guard === 'ip' ? 1 : 0}`,
    'num_tgts=1',
    'max_luns=1',
    'add_host=1',
  ];
  return {
    steps: [
      { name: `scsi_debug ${layer.id}`, argv: ['modprobe', 'scsi_debug', ...params], undo: ['modprobe', '-r', 'scsi_debug'], timeoutMs: 60_000 },
      { name: `disk of ${layer.id}`, argv: ['blockfarm-exec', '--scsi-debug-dev', '30000'], capture: `dev_${layer.id}`, timeoutMs: 40_000 },
    ],
  };
};
