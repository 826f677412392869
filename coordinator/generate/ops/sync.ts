/** Generators for `fsync`, `sync-file-range`, `flush` and `drop-caches` (model/ops/sync.ts). */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import { type DraftOf, PAGE } from './common.ts';

export function genFsync(d: Draw, t: IoTarget, dataOnly?: boolean): DraftOf<'fsync'> {
  return { kind: 'fsync', target: t.id, dataOnly: dataOnly ?? d.chance(0.3) };
}

export function genSyncFileRange(d: Draw, t: IoTarget): DraftOf<'sync-file-range'> {
  const flags = d.weighted<'write' | 'wait-write'>([[1, 'write'], [1, 'wait-write']]);
  if (d.chance(0.4)) return { kind: 'sync-file-range', target: t.id, offset: 0, length: 0, flags };
  const pages = Math.max(1, Math.floor(t.span / PAGE));
  const first = d.int(0, pages - 1);
  return { kind: 'sync-file-range', target: t.id, offset: first * PAGE, length: d.int(1, pages - first) * PAGE, flags };
}

export function genFlush(t: IoTarget): DraftOf<'flush'> {
  return { kind: 'flush', target: t.id };
}

export function genDropCaches(): DraftOf<'drop-caches'> {
  return { kind: 'drop-caches' };
}
