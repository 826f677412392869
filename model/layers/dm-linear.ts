/** dm-linear: a window onto a lower device; also the device that S4 swaps tables under. */
import { z } from 'zod';
import { Bytes, LayerId, PositiveBytes, SECTOR } from '../schema/common.ts';
import { type LayerKindModule, type SemanticIssue, lowerGeometry, resized } from './kind.ts';
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
  needs: () => dmNeeds,
};

dmLinear.setup = (layer, env, stack) => simpleDmSetup(layer, env, stack);
