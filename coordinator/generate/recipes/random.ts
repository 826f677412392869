/**
 * Random stacks and programs: one to three base devices, then up to `steps`
 * layers of any kind the target can build, each on whatever takes it, and a
 * generic program over everything the stack offers. Nothing here is tuned to
 * a scenario; scenarios reached this way are reached by chance.
 */
import type { LayerKind } from '../../../model/index.ts';
import type { Draw } from '../draw.ts';
import { genericProgram } from '../generic.ts';
import type { Normalized } from '../options.ts';
import type { StackBuilder } from '../stack.ts';
import type { RecipeFn } from './common.ts';

const GROW: ReadonlyArray<readonly [number, LayerKind]> = [
  [4, 'fs'],
  [4, 'file'],
  [3, 'loop'],
  [1.5, 'md'],
  [2, 'dm-linear'],
  [1, 'dm-stripe'],
  [2, 'dm-crypt'],
  [1, 'dm-integrity'],
  [0.8, 'dm-flakey'],
  [0.8, 'dm-dust'],
  [0.4, 'dm-snapshot-origin'],
  [1.5, 'dm-snapshot'],
  [0.4, 'disk'],
];

/** A random stack in `b`: base devices, then up to `steps` layers; every filesystem gets a file to work on. */
export function randomStack(d: Draw, o: Normalized, b: StackBuilder, steps = 6): void {
  const disks = d.weighted<number>([[6, 1], [3, 2], [1, 3]]);
  for (let i = 0; i < disks; i++) b.grow('disk');
  if (d.chance(0.12)) b.grow('scsi-debug');
  for (let i = d.int(1, steps); i > 0; i--) b.growAny(GROW);
  for (const fsl of b.filesystems()) {
    const free = b.freeFiles().some((f) => f.on === fsl.id);
    if (!free || d.chance(0.2)) b.grow('file', { purpose: 'data', filesystems: (l) => l.id === fsl.id });
  }
}

export const randomCase: RecipeFn = (d, o, b) => {
  randomStack(d, o, b);
  if (!b.layers.length) return undefined;
  return genericProgram(d, o, b.info);
};
