/** Linux md software RAID: raid0 (striping, S1's stacked-split variant) and raid1 (mirroring). */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId, PositiveBytes, isPowerOfTwo } from '../schema/common.ts';
import { MiB, membersArbitrary, pow2 } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, type SemanticIssue, lowerGeometry, roundDown } from './kind.ts';

export const MdLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('md'),
  level: z.union([z.literal(0), z.literal(1)]),
  members: z.array(LayerId).min(1).max(8),
  /** raid0 chunk size; mdadm wants a power of two of at least 4 KiB. */
  chunk: PositiveBytes.default(64 * 1024),
});
export type MdLayer = z.infer<typeof MdLayer>;

export const md: LayerKindModule<MdLayer> = {
  kind: 'md',
  schema: MdLayer,
  role: 'block',
  lower: (layer) => layer.members.map((ref, i) => ({ ref, field: `members[${i}]`, roles: ['block' as const] })),
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    if (layer.members.length < 2)
      issues.push({ path: ['members'], message: `a raid${layer.level} needs at least 2 members, this one has ${layer.members.length}` });
    if (new Set(layer.members).size !== layer.members.length)
      issues.push({ path: ['members'], message: 'a layer cannot be a member twice' });
    if (!isPowerOfTwo(layer.chunk) || layer.chunk < 4096)
      issues.push({ path: ['chunk'], message: 'the chunk size must be a power of two of at least 4096' });
    layer.members.forEach((m, i) => {
      const g = stack.geometry(m);
      if (g && g.sizeMin < 4 * MiB) issues.push({ path: ['members', i], message: `member '${m}' is smaller than the 4 MiB md needs for its superblock and data` });
    });
    return issues;
  },
  geometry(layer, stack) {
    const gs = layer.members.map((m) => lowerGeometry(stack, m));
    const smallest = Math.min(...gs.map((g) => g.sizeMax));
    const lbs = Math.max(...gs.flatMap((g) => g.logicalBlockSizes));
    const n = layer.level === 0 ? layer.members.length : 1;
    // mdadm reserves a data offset it chooses from the member size: the exact size is read back.
    // raid0 uses all of every member: md(4), "once the smallest device has been exhausted, the
    // RAID0 driver starts collecting chunks into smaller stripes" over the larger ones.
    const max = layer.level === 0 ? gs.reduce((sum, g) => sum + roundDown(g.sizeMax, layer.chunk), 0) : roundDown(smallest, 4096);
    const min = Math.max(0, layer.level === 0 ? n * roundDown(Math.min(...gs.map((g) => g.sizeMin)) / 2, layer.chunk) : Math.min(...gs.map((g) => g.sizeMin)) / 2);
    return {
      sizeMin: roundDown(Math.floor(min), 4096),
      sizeMax: max,
      logicalBlockSizes: [lbs],
      physicalBlockSize: Math.max(lbs, ...gs.map((g) => g.physicalBlockSize)),
    };
  },
  // What the members hold: zeroes over disks, noise over unwiped plain dm-crypt members.
  initialFill: () => 'lower',
  mapUp: () => 'unknown',
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  needs: (layer) => ({
    modules: ['md-mod', layer.level === 0 ? 'raid0' : 'raid1'],
    tools: ['mdadm'],
    config: ['BLK_DEV_MD', layer.level === 0 ? 'MD_RAID0' : 'MD_RAID1'],
  }),
};

/** Generation: raid0 (mostly, small chunks for S1's stacked splits) or raid1 over 2-3 free block layers, topped up with fresh disks. */
md.arbitrary = (ctx) => {
  const members = membersArbitrary(ctx, fc.constantFrom(2, 2, 2, 3), 8 * MiB);
  if (!members) return undefined;
  return fc
    .record({ m: members, level: fc.constantFrom<0 | 1>(0, 0, 1), chunk: fc.oneof(fc.constant(4096), pow2(12, 18)) })
    .map(({ m, level, chunk }): Layer[] => [...m.helpers, { id: ctx.id, kind: 'md', level, members: m.members, chunk }]);
};

/** mdadm --create with metadata 1.2; raid1 without the initial resync (--assume-clean). */
md.setup = (layer, env) => {
  const dev = env.devicePath(layer.id);
  const argv = ['mdadm', '--create', dev, '--run', `--level=${layer.level}`, `--raid-devices=${layer.members.length}`, '--metadata=1.2'];
  if (layer.level === 0) argv.push(`--chunk=${layer.chunk / 1024}`);
  else argv.push('--assume-clean', '--bitmap=none');
  argv.push(...layer.members.map((m) => env.devicePath(m)));
  return { steps: [{ name: `md ${layer.id}`, argv, undo: ['mdadm', '--stop', dev], timeoutMs: 120_000 }] };
};
