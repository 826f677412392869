/** Generator for `truncate` (model/ops/truncate.ts): to zero, to a page or block boundary inside the span, to an odd size, or beyond. */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import { type DraftOf, PAGE } from './common.ts';

export function genTruncate(d: Draw, t: IoTarget): DraftOf<'truncate'> {
  const span = Math.max(t.span, PAGE);
  const size = d.weighted<number>([
    [1, 0],
    [4, d.int(0, Math.floor(span / PAGE)) * PAGE],
    [2, d.int(1, span)],
    [1, span + d.int(1, 16) * PAGE],
  ]);
  return { kind: 'truncate', target: t.id, size };
}
