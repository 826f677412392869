/** dm-linear: a window onto a lower device; also the device that S4 swaps tables under. */
import fc from 'fast-check';
import { z } from 'zod';
import { Bytes, LayerId, PositiveBytes, SECTOR } from '../schema/common.ts';
import { MiB, blocksAtLeast, geometryOf, maxLbs } from './generate.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, type SemanticIssue, lowerGeometry, resized, roundDown } from './kind.ts';
import { simpleDmSetup } from './dm-tables.ts';

export const DmLinearLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-linear'),
  on: LayerId,
  offset: Bytes.default(0),
  /** Left out: to the end of the lower device. */
  length: PositiveBytes.optional(),
});
export type DmLinearLayer = z.infer<typeof DmLinearLayer>;

export const dmNeeds = { modules: ['dm-mod'], tools: ['dmsetup'], config: ['BLK_DEV_DM'] };

export const dmLinear: LayerKindModule<DmLinearLayer> = {
  kind: 'dm-linear',
  schema: DmLinearLayer,
  role: 'block',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['block'] }],
  check(layer, stack) {
    const issues: SemanticIssue[] = [];
    if (layer.offset % SECTOR !== 0) issues.push({ path: ['offset'], message: 'dm offsets are in 512-byte sectors' });
    if (layer.length !== undefined && layer.length % SECTOR !== 0) issues.push({ path: ['length'], message: 'dm lengths are in 512-byte sectors' });
    const g = stack.geometry(layer.on);
    const lbs = g ? Math.max(...g.logicalBlockSizes) : SECTOR;
    // dm refuses a table whose boundaries split the lower device's logical blocks.
    if (layer.offset % lbs !== 0) issues.push({ path: ['offset'], message: `offset ${layer.offset} is not a multiple of the logical block size ${lbs} of '${layer.on}'` });
    if (layer.length !== undefined && layer.length % lbs !== 0) issues.push({ path: ['length'], message: `length ${layer.length} is not a multiple of the logical block size ${lbs} of '${layer.on}'` });
    if (g && layer.offset + (layer.length ?? SECTOR) > g.sizeMin)
      issues.push({ path: ['length'], message: `offset + length reaches past the end of '${layer.on}' (${g.sizeMin} bytes)` });
    return issues;
  },
  geometry(layer, stack) {
    const g = lowerGeometry(stack, layer.on);
    if (layer.length !== undefined) return resized(g, layer.length, layer.length);
    return resized(g, Math.max(0, g.sizeMin - layer.offset), Math.max(0, g.sizeMax - layer.offset));
  },
  initialFill: () => 'lower',
  mapUp(layer, _ref, start, end) {
    const len = layer.length ?? Number.MAX_SAFE_INTEGER;
    const s = Math.max(0, start - layer.offset);
    const e = Math.min(len, end - layer.offset);
    return e > s ? [[s, e]] : [];
  },
  fault: () => ({ kind: 'none' }),
  verifiesData: () => false,
  resetsWithDisks: () => true,
  needs: () => dmNeeds,
};

/**
 * Generation: mostly the whole lower device (the kind S4 reloads as an
 * interposer), else a window at an offset and length in whole logical blocks
 * of the lower device (dm refuses tables misaligned to it).
 */
dmLinear.arbitrary = (ctx) => {
  const candidates = blocksAtLeast(ctx, MiB);
  if (!candidates.length) return undefined;
  return fc
    .record({ on: fc.constantFrom(...candidates), whole: fc.integer({ min: 0, max: 9 }), off: fc.constantFrom(1, 2, 3, 8, 256, 2048), cut: fc.boolean() })
    .map(({ on, whole, off, cut }): Layer[] => {
      const g = geometryOf(ctx, on.id);
      const unit = Math.max(maxLbs(ctx, on.id), SECTOR);
      if (whole < 6) return [{ id: ctx.id, kind: 'dm-linear', on: on.id, offset: 0 }];
      const offset = Math.min(off * unit, roundDown(Math.floor(g.sizeMin / 2), unit));
      const rest = roundDown(g.sizeMin - offset, unit);
      const length = cut ? Math.max(unit, roundDown(Math.floor(rest / 2), unit)) : undefined;
      return [{ id: ctx.id, kind: 'dm-linear', on: on.id, offset, ...(length !== undefined ? { length } : {}) }];
    });
};

dmLinear.setup = (layer, env, stack) => simpleDmSetup(layer, env, stack);
