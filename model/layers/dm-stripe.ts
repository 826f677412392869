/** dm-stripe: striping across members in fixed chunks (a dm-level twin of raid0). */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId, PositiveBytes, isPowerOfTwo } from '../schema/common.ts';
import { MiB, membersArbitrary, pow2 } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, type SemanticIssue, lowerGeometry, roundDown } from './kind.ts';
import { dmNeeds } from './dm-linear.ts';
import { simpleDmSetup } from './dm-tables.ts';

export const DmStripeLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-stripe'),
  members: z.array(LayerId).min(1).max(8),
  chunk: PositiveBytes.default(64 * 1024),
});
export type DmStripeLayer = z.infer<typeof DmStripeLayer>;

export const dmStripe: LayerKindModule<DmStripeLayer> = {
  kind: 'dm-stripe',
  schema: DmStripeLayer,
  role: 'block',
  lower: (layer) => layer.members.map((ref, i) => ({ ref, field: `members[${i}]`, roles: ['block' as const] })),
  check(layer) {
    const issues: SemanticIssue[] = [];
    if (!isPowerOfTwo(layer.chunk) || layer.chunk < 4096)
      issues.push({ path: ['chunk'], message: 'the chunk size must be a power of two of at least 4096' });
    if (new Set(layer.members).size !== layer.members.length)
      issues.push({ path: ['members'], message: 'a layer cannot be a member twice' });
    return issues;
  },
  geometry(layer, stack) {
    const gs = layer.members.map((m) => lowerGeometry(stack, m));
    const n = layer.members.length;
    const size = (pick: (g: (typeof gs)[number]) => number) => n * roundDown(Math.min(...gs.map(pick)), layer.chunk);
    const lbs = Math.max(...gs.flatMap((g) => g.logicalBlockSizes));
    return { sizeMin: size((g) => g.sizeMin), sizeMax: size((g) => g.sizeMax), logicalBlockSizes: [lbs], physicalBlockSize: Math.max(lbs, ...gs.map((g) => g.physicalBlockSize)) };
  },
  initialFill: () => 'lower',
  mapUp(layer, ref, start, end) {
    const i = layer.members.indexOf(ref);
    const n = layer.members.length;
    const out: Array<[number, number]> = [];
    for (let pos = start; pos < end; ) {
      const chunkNo = Math.floor(pos / layer.chunk);
      const within = pos % layer.chunk;
      const take = Math.min(end - pos, layer.chunk - within);
      const up = (chunkNo * n + i) * layer.chunk + within;
      out.push([up, up + take]);
      pos += take;
    }
    return out;
  },
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  resetsWithDisks: () => true,
  needs: () => ({ ...dmNeeds, modules: ['dm-mod'] }),
};

/** Generation: 2-3 members (fresh disks where the stack has too few), chunks of 4 KiB to 256 KiB. */
dmStripe.arbitrary = (ctx) => {
  const members = membersArbitrary(ctx, fc.constantFrom(2, 2, 3), 4 * MiB);
  if (!members) return undefined;
  return fc
    .record({ m: members, chunk: pow2(12, 18) })
    .map(({ m, chunk }): Layer[] => [...m.helpers, { id: ctx.id, kind: 'dm-stripe', members: m.members, chunk }]);
};

dmStripe.setup = (layer, env, stack) => simpleDmSetup(layer, env, stack);
