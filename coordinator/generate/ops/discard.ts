/** Generator for `discard` (model/ops/discard.ts): BLKDISCARD, BLKZEROOUT, BLKSECDISCARD over whole logical blocks mostly. */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import { type DraftOf, offsetIn } from './common.ts';

export function genDiscard(d: Draw, t: IoTarget): DraftOf<'discard'> {
  const mode = d.weighted<'discard' | 'zeroout' | 'secure'>([[3, 'discard'], [3, 'zeroout'], [1, 'secure']]);
  const u = d.chance(0.85) ? t.unit : 512;
  const length = d.int(1, 64) * u;
  return { kind: 'discard', target: t.id, offset: offsetIn(d, t.span, length, u), length, mode };
}
