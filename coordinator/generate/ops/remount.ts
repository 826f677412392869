/** Generator for `remount` (model/ops/remount.ts): unmount and mount again, or read-only and back. */
import type { Draw } from '../draw.ts';
import type { DraftOf } from './common.ts';

export function genRemount(d: Draw, fsId: string): DraftOf<'remount'> {
  return { kind: 'remount', target: fsId, mode: d.chance(0.6) ? 'cycle' : 'ro-rw' };
}
