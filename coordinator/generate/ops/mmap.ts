/**
 * Generators for `mmap-write`, `mmap-read` and `msync` (model/ops/mmap.ts):
 * accesses mostly inside the file's first pages, page aligned or not, now and
 * then past EOF (SIGBUS is part of the contract).
 */
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';
import { type DraftOf, KiB, PAGE } from './common.ts';

function range(d: Draw, t: IoTarget): { offset: number; length: number } {
  const limit = Math.max(t.size, PAGE * 4);
  const pages = Math.max(1, Math.floor(Math.min(limit, t.span) / PAGE));
  if (d.chance(0.7)) {
    const n = d.int(1, Math.min(4, pages));
    return { offset: d.int(0, pages - n) * PAGE, length: n * PAGE };
  }
  const offset = d.int(0, Math.max(0, Math.min(limit, t.span) - 1));
  return { offset, length: d.int(1, 12 * KiB) };
}

export function genMmapWrite(d: Draw, t: IoTarget, at?: { offset: number; length: number }): DraftOf<'mmap-write'> {
  return { kind: 'mmap-write', target: t.id, ...(at ?? range(d, t)) };
}

export function genMmapRead(d: Draw, t: IoTarget, at?: { offset: number; length: number }): DraftOf<'mmap-read'> {
  return { kind: 'mmap-read', target: t.id, ...(at ?? range(d, t)) };
}

export function genMsync(d: Draw, t: IoTarget): DraftOf<'msync'> {
  return { kind: 'msync', target: t.id, mode: d.weighted<'sync' | 'async' | 'invalidate'>([[3, 'sync'], [2, 'async'], [1, 'invalidate']]) };
}
