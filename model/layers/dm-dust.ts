/** dm-dust: listed bad blocks fail reads with EIO until written (a write clears the block). */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId } from '../schema/common.ts';
import { blocksAtLeast, geometryOf, maxLbs } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, type SemanticIssue, identityMap, lowerGeometry } from './kind.ts';
import { dmName, simpleDmSetup } from './dm-tables.ts';

export const DmDustLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-dust'),
  on: LayerId,
  blockSize: z.union([z.literal(512), z.literal(4096)]).default(512),
  badBlocks: z.array(z.number().int().nonnegative()).max(64).default([]),
  /** Start failing at once (dmsetup message ... enable); otherwise the list is inert. */
  enabled: z.boolean().default(true),
});
export type DmDustLayer = z.infer<typeof DmDustLayer>;

export const dmDust: LayerKindModule<DmDustLayer> = {
  kind: 'dm-dust',
  schema: DmDustLayer,
  role: 'block',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['block'] }],
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    if (new Set(layer.badBlocks).size !== layer.badBlocks.length) issues.push({ path: ['badBlocks'], message: 'a bad block is listed twice' });
    const g = stack.geometry(layer.on);
    layer.badBlocks.forEach((b, i) => {
      if (g && (b + 1) * layer.blockSize > g.sizeMin) issues.push({ path: ['badBlocks', i], message: `bad block ${b} is past the end of '${layer.on}'` });
    });
    return issues;
  },
  geometry: (layer, stack) => lowerGeometry(stack, layer.on),
  initialFill: () => 'lower',
  mapUp: (_l, _r, s, e) => identityMap(s, e),
  fault: (layer) => (layer.enabled && layer.badBlocks.length > 0 ? { kind: 'bad-blocks', blockSize: layer.blockSize, blocks: layer.badBlocks } : { kind: 'none' }),
  verifiesData: () => false,
  needs: () => ({ modules: ['dm-mod', 'dm-dust'], tools: ['dmsetup'], config: ['BLK_DEV_DM', 'DM_DUST'] }),
};

/** Generation: a few bad blocks in the first MiB, where programs do most of their IO; enabled mostly. */
dmDust.arbitrary = (ctx) => {
  const candidates = blocksAtLeast(ctx, 2 * 1024 * 1024);
  if (!candidates.length) return undefined;
  return fc
    .record({
      on: fc.constantFrom(...candidates),
      big: fc.boolean(),
      picks: fc.uniqueArray(fc.integer({ min: 0, max: 255 }), { minLength: 0, maxLength: 6 }),
      enabled: fc.integer({ min: 0, max: 4 }).map((n) => n > 0),
    })
    .map(({ on, big, picks, enabled }): Layer[] => {
      const blockSize: 512 | 4096 = big || maxLbs(ctx, on.id) > 512 ? 4096 : 512;
      const span = Math.floor(Math.min(1024 * 1024, geometryOf(ctx, on.id).sizeMin) / blockSize);
      const badBlocks = [...new Set(picks.map((p) => p % span))].sort((a, b) => a - b);
      return [{ id: ctx.id, kind: 'dm-dust', on: on.id, blockSize, badBlocks, enabled }];
    });
};

/** The dust target, its bad blocks (in blockSize units) and, when enabled, the switch that makes them fail. */
dmDust.setup = (layer, env, stack) => {
  const name = dmName(env, layer.id);
  const { steps } = simpleDmSetup(layer, env, stack);
  for (const b of layer.badBlocks) steps.push({ name: `bad block ${b} of ${layer.id}`, argv: ['dmsetup', 'message', name, '0', 'addbadblock', String(b)] });
  if (layer.enabled) steps.push({ name: `enable ${layer.id}`, argv: ['dmsetup', 'message', name, '0', 'enable'] });
  return { steps };
};
