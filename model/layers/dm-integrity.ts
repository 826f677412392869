/** dm-integrity: per-sector tags, either its own checksum or tags handed down by dm-crypt (S3). */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId } from '../schema/common.ts';
import { MiB, blocksAtLeast, maxLbs } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, type SemanticIssue, lowerGeometry, roundDown } from './kind.ts';
import type { SetupStepSpec } from './kind.ts';
import { SECTOR, dmName, integrityTable, wipeStep } from './dm-tables.ts';

export const DmIntegrityLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-integrity'),
  on: LayerId,
  /** 'none': tags come from the layer above (authenticated dm-crypt). */
  internalHash: z.enum(['none', 'crc32c', 'sha256']).default('crc32c'),
  tagSize: z.number().int().min(1).max(255).default(4),
  sectorSize: z.union([z.literal(512), z.literal(4096)]).default(512),
  mode: z.enum(['journal', 'direct', 'bitmap']).default('journal'),
  /** Initialise every tag at set-up (slow); otherwise unwritten sectors fail verification. */
  wipe: z.boolean().default(false),
});
export type DmIntegrityLayer = z.infer<typeof DmIntegrityLayer>;

const HASH_TAG: Record<'crc32c' | 'sha256', number> = { crc32c: 4, sha256: 32 };

export const dmIntegrity: LayerKindModule<DmIntegrityLayer> = {
  kind: 'dm-integrity',
  schema: DmIntegrityLayer,
  role: 'block',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['block'] }],
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    if (layer.internalHash !== 'none' && layer.tagSize !== HASH_TAG[layer.internalHash])
      issues.push({ path: ['tagSize'], message: `${layer.internalHash} tags are ${HASH_TAG[layer.internalHash]} bytes, not ${layer.tagSize}` });
    if (layer.internalHash === 'none') {
      const users = stack.usersOf(layer.id);
      if (!users.some((u) => u.kind === 'dm-crypt' && u.integrity !== 'none'))
        issues.push({ path: ['internalHash'], message: "internalHash 'none' needs an authenticated dm-crypt layer on top to supply the tags" });
      // The kernel's dm_integrity_ctr refuses this pair (EINVAL, "Bitmap mode can be only used with internal hash").
      if (layer.mode === 'bitmap') issues.push({ path: ['mode'], message: "bitmap mode needs an internal hash: with internalHash 'none' use 'journal' or 'direct'" });
    }
    const g = stack.geometry(layer.on);
    if (g && g.sizeMin < 2 * 1024 * 1024) issues.push({ path: ['on'], message: `'${layer.on}' is too small for dm-integrity's journal and tags (2 MiB at least)` });
    return issues;
  },
  geometry(layer, stack) {
    const g = lowerGeometry(stack, layer.on);
    // The kernel sizes the journal and tag area itself: the data size is read back.
    return {
      sizeMin: roundDown(Math.floor(g.sizeMin * 0.5), layer.sectorSize),
      sizeMax: roundDown(g.sizeMax, layer.sectorSize),
      logicalBlockSizes: g.logicalBlockSizes.map((l) => Math.max(l, layer.sectorSize)),
      physicalBlockSize: Math.max(g.physicalBlockSize, layer.sectorSize),
    };
  },
  initialFill: (layer) => (layer.wipe ? 'zero' : layer.internalHash === 'none' ? 'lower' : 'error'),
  mapUp: () => 'unknown',
  fault: () => ({ kind: 'none' }),
  verifiesData: (layer) => layer.internalHash !== 'none',
  needs: () => ({ modules: ['dm-mod', 'dm-integrity', 'crc32c_generic'], tools: ['dmsetup', 'integritysetup'], config: ['BLK_DEV_DM', 'DM_INTEGRITY', 'BLK_DEV_INTEGRITY'] }),
};

/**
 * Generation: dm-integrity with its own checksums (crc32c, sha256). The
 * tag-storing variant under authenticated dm-crypt comes from dm-crypt's
 * generator, since it cannot stand alone.
 */
dmIntegrity.arbitrary = (ctx) => {
  const candidates = blocksAtLeast(ctx, 8 * MiB);
  if (!candidates.length) return undefined;
  return fc
    .record({
      on: fc.constantFrom(...candidates),
      hash: fc.constantFrom<'crc32c' | 'sha256'>('crc32c', 'crc32c', 'sha256'),
      big: fc.integer({ min: 0, max: 3 }),
      mode: fc.constantFrom<'journal' | 'direct' | 'bitmap'>('journal', 'direct', 'bitmap'),
      wipe: fc.integer({ min: 0, max: 9 }),
    })
    .map(({ on, hash, big, mode, wipe }): Layer[] => {
      const sectorSize: 512 | 4096 = big === 0 || maxLbs(ctx, on.id) > 512 ? 4096 : 512;
      return [{ id: ctx.id, kind: 'dm-integrity', on: on.id, internalHash: hash, tagSize: HASH_TAG[hash], sectorSize, mode, wipe: wipe === 0 }];
    });
};

/**
 * dm-integrity sizes itself: clear any old superblock below, create the
 * device with a one-block table (the kernel formats the superblock and
 * computes the provided data sectors), read those from `dmsetup status`
 * (its 5th field), then reload the table at that length. With `wipe`, write
 * zeroes through it so every tag is valid (slow).
 */
dmIntegrity.setup = (layer, env) => {
  const name = dmName(env, layer.id);
  const block = String(layer.sectorSize / SECTOR);
  const steps: SetupStepSpec[] = [
    { name: `clear the superblock under ${layer.id}`, argv: ['blkdiscard', '--force', '--zeroout', '--offset', '0', '--length', '4096', env.devicePath(layer.on)] },
    { name: `dm-integrity ${layer.id} (format)`, argv: ['dmsetup', 'create', name, '--table', integrityTable(layer, env, block)], undo: ['dmsetup', 'remove', '--retry', name] },
    { name: `provided sectors of ${layer.id}`, argv: ['blockfarm-exec', '--field', '5', 'dmsetup', 'status', name], capture: `prov_${layer.id}` },
    { name: `dm-integrity ${layer.id}`, argv: ['dmsetup', 'reload', name, '--table', integrityTable(layer, env, `\${prov_${layer.id}}`)] },
    { name: `resume ${layer.id}`, argv: ['dmsetup', 'resume', name] },
  ];
  if (layer.wipe) steps.push(wipeStep(layer.id, env));
  return { steps };
};
