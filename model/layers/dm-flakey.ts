/**
 * dm-flakey: a device that is up for `upSeconds`, then misbehaves for
 * `downSeconds`, repeating. The model cannot know which IO falls in which
 * interval, so a fault may or may not hit each IO; with upSeconds 0 the device
 * is down from the start.
 */
import fc from 'fast-check';
import { z } from 'zod';
import { LayerId } from '../schema/common.ts';
import type { Layer } from './index.ts';
import { type LayerKindModule, identityMap, lowerGeometry } from './kind.ts';
import { simpleDmSetup } from './dm-tables.ts';

export const DmFlakeyLayer = z.strictObject({
  id: LayerId,
  kind: z.literal('dm-flakey'),
  on: LayerId,
  upSeconds: z.number().int().min(0).max(3600),
  downSeconds: z.number().int().min(0).max(3600),
  /** What happens while down: every IO fails; writes vanish; writes fail; reads come back corrupted. */
  mode: z.enum(['error', 'drop-writes', 'error-writes', 'corrupt-reads']).default('error'),
});
export type DmFlakeyLayer = z.infer<typeof DmFlakeyLayer>;

export const dmFlakey: LayerKindModule<DmFlakeyLayer> = {
  kind: 'dm-flakey',
  schema: DmFlakeyLayer,
  role: 'block',
  lower: (layer) => [{ ref: layer.on, field: 'on', roles: ['block'] }],
  check: (layer) =>
    layer.upSeconds + layer.downSeconds === 0 ? [{ path: ['upSeconds'], message: 'upSeconds + downSeconds must be positive' }] : [],
  geometry: (layer, stack) => lowerGeometry(stack, layer.on),
  initialFill: () => 'lower',
  mapUp: (_l, _r, s, e) => identityMap(s, e),
  fault(layer) {
    if (layer.downSeconds === 0) return { kind: 'none' };
    const always = layer.upSeconds === 0;
    switch (layer.mode) {
      case 'error': return { kind: 'error', reads: true, writes: true, always };
      case 'error-writes': return { kind: 'error', reads: false, writes: true, always };
      case 'drop-writes': return { kind: 'drop-writes', always };
      case 'corrupt-reads': return { kind: 'corrupt-reads', always };
    }
  },
  verifiesData: () => false,
  needs: () => ({ modules: ['dm-mod', 'dm-flakey'], tools: ['dmsetup'], config: ['BLK_DEV_DM', 'DM_FLAKEY'] }),
};

/** Generation: up a second or more first (down from the start now and then), down a second or two, any misbehaviour. */
dmFlakey.arbitrary = (ctx) => {
  if (!ctx.blocks.length) return undefined;
  return fc
    .record({
      on: fc.constantFrom(...ctx.blocks),
      up: fc.constantFrom(0, 1, 1, 2, 5),
      down: fc.constantFrom(0, 1, 1, 2),
      mode: fc.constantFrom<DmFlakeyLayer['mode']>('error', 'drop-writes', 'error-writes', 'corrupt-reads'),
    })
    .map(({ on, up, down, mode }): Layer[] => [{ id: ctx.id, kind: 'dm-flakey', on: on.id, upSeconds: up + down === 0 ? 1 : up, downSeconds: down, mode }]);
};

dmFlakey.setup = (layer, env, stack) => simpleDmSetup(layer, env, stack);
