/**
 * Generator for `fallocate` (model/ops/fallocate.ts). Files: every mode,
 * ranges in whole filesystem blocks mostly (collapse and insert need them),
 * misaligned now and then. Block devices: the zeroing modes mostly, the
 * others (refused there) rarely.
 */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import { type DraftOf, PAGE } from './common.ts';

export type FallocateMode = DraftOf<'fallocate'>['mode'];

const FILE_MODES: ReadonlyArray<readonly [number, FallocateMode]> = [
  [2, 'allocate'], [2, 'keep-size'], [3, 'punch-hole'], [2, 'zero-range'], [1, 'zero-range-keep-size'],
  [2, 'collapse-range'], [2, 'insert-range'], [0.5, 'unshare-range'],
];
const BLOCK_MODES: ReadonlyArray<readonly [number, FallocateMode]> = [
  [3, 'zero-range'], [2, 'zero-range-keep-size'], [3, 'punch-hole'], [0.5, 'allocate'], [0.5, 'keep-size'], [0.2, 'collapse-range'],
];

export function genFallocate(d: Draw, t: IoTarget, opts: { mode?: FallocateMode; misaligned?: number } = {}): DraftOf<'fallocate'> {
  const mode = opts.mode ?? d.weighted(t.kind === 'file' ? FILE_MODES : BLOCK_MODES);
  const unit = t.kind === 'file' ? (t.fs?.blockSize ?? PAGE) : t.unit;
  const span = Math.max(t.kind === 'file' ? Math.max(t.size, t.span / 2) : t.span, unit);
  const blocks = Math.max(1, Math.floor(span / unit));
  const n = d.int(1, Math.max(1, Math.min(32, Math.floor(blocks / 2))));
  let offset = d.int(0, Math.max(0, blocks - n)) * unit;
  let length = n * unit;
  if (d.chance(opts.misaligned ?? 0.1)) {
    offset += d.int(1, unit - 1);
    length = d.chance(0.5) ? length : d.int(1, length);
  }
  return { kind: 'fallocate', target: t.id, offset, length, mode };
}
