/**
 * What every op generator shares: the draft type (an op before the program
 * numbers it), the environment of the case being built, and the shape of a
 * data op (offset, length, submission path, vectors, buffer) with the
 * controlled share of misaligned ones.
 */
import type { z } from 'zod';
import type { Op } from '../../../model/index.ts';
import type { Draw } from '../draw.ts';
import type { IoTarget } from '../targets.ts';

export type OpInput = z.input<typeof Op>;
/** An op without its id: the program builder numbers ops when it lays out the threads. */
export type OpDraft = OpInput extends infer T ? (T extends unknown ? Omit<T, 'id'> : never) : never;
export type DraftOf<K extends OpDraft['kind']> = Extract<OpDraft, { kind: K }>;

export const PAGE = 4096;
export const KiB = 1024;
export const MiB = 1024 * KiB;

export interface OpEnv {
  /** Share of data ops that are deliberately misaligned. */
  misaligned: number;
  /** Files a read or write may use as its buffer (a shared mapping). */
  bufferFiles: readonly IoTarget[];
}

/** Constraints a caller (a recipe) may put on a data op; the rest is drawn. */
export interface DataShapeHints {
  direct?: boolean;
  via?: 'psync' | 'pvec' | 'io_uring';
  nowait?: boolean;
  /** 'unit': aligned to what the model requires; 'small': to the device's smallest block; 'byte': anywhere. */
  align?: 'unit' | 'small' | 'byte';
  offset?: number;
  length?: number;
  vectors?: number;
  buffer?: DataShape['buffer'];
  mustSucceed?: boolean;
}

export interface DataShape {
  offset: number;
  length: number;
  via: 'psync' | 'pvec' | 'io_uring';
  nowait: boolean;
  direct: boolean;
  vectors: number;
  buffer: { placement: 'heap'; align: number } | { placement: 'anon'; touchedPages: number; align: number } | { placement: 'mmap'; file: string; offset: number; align: number };
  mustSucceed?: boolean;
}

export const roundDown = (n: number, u: number) => n - (n % u);
export const roundUp = (n: number, u: number) => Math.ceil(n / u) * u;

/** A count of units: mostly a few, sometimes dozens, rarely hundreds. */
export function units(d: Draw, max: number): number {
  const n = d.weighted<[number, number]>([
    [7, [1, 8]],
    [2.5, [9, 64]],
    [0.5, [65, 256]],
  ]);
  return Math.max(1, Math.min(max, d.int(n[0], n[1])));
}

/** An offset in [0, span - length], a multiple of u. */
export function offsetIn(d: Draw, span: number, length: number, u: number): number {
  const room = Math.max(0, span - length);
  return d.int(0, Math.floor(room / u)) * u;
}

/**
 * The shape of a read or write on a target. Aligned ops dominate; a share
 * `env.misaligned` is misaligned on purpose (offset, length or buffer); IO
 * legal for a loop's advertised sub-page block but not for its backing store
 * is its own mode (S1). mustSucceed is claimed only where nothing may fail.
 */
export function dataShape(d: Draw, t: IoTarget, env: OpEnv, write: boolean, hints: DataShapeHints = {}): DataShape {
  const direct = hints.direct ?? d.chance(t.kind === 'block' ? 0.6 : 0.35);
  const align = hints.align ?? (d.chance(env.misaligned) ? 'byte' : t.small < t.unit && d.chance(0.5) ? 'small' : 'unit');
  const u = align === 'unit' ? t.unit : align === 'small' ? t.small : 1;
  const via = hints.via ?? d.weighted<DataShape['via']>([[3, 'psync'], [2, 'pvec'], [3, 'io_uring']]);
  const vectored = via !== 'psync';
  let vectors = hints.vectors ?? (vectored && d.chance(0.5) ? d.int(2, 8) : 1);
  if (!vectored) vectors = 1;
  let length: number;
  if (hints.length !== undefined) length = hints.length;
  else if (align === 'byte') length = d.chance(0.5) ? d.int(1, 4 * KiB) : d.int(1, 64 * KiB);
  else {
    // Each iovec a whole number of units, so aligned stays aligned when split.
    const per = units(d, Math.max(1, Math.floor(Math.min(t.span, MiB) / u / vectors)));
    length = per * u * vectors;
  }
  vectors = Math.max(1, Math.min(vectors, length));
  let offset: number;
  if (hints.offset !== undefined) offset = hints.offset;
  else if (d.chance(0.05)) {
    // Near or past the end: the end of a device, EOF of a file.
    const end = t.kind === 'block' ? t.size : Math.max(t.size, t.span);
    offset = Math.max(0, roundDown(end - (d.chance(0.5) ? length : Math.floor(length / 2)), Math.max(u, 1)));
  } else offset = offsetIn(d, t.span, length, u);
  const bufAlign = align === 'byte' ? (d.chance(0.5) ? d.int(0, 4095) : 0) : d.chance(0.8) ? 0 : roundDown(d.int(0, 4095), u);
  let buffer: DataShape['buffer'] = hints.buffer ?? { placement: 'heap', align: bufAlign };
  if (!hints.buffer) {
    const r = d.int(0, 99);
    if (r < 15) {
      const pages = Math.ceil((bufAlign + length) / PAGE);
      buffer = { placement: 'anon', touchedPages: d.weighted<number>([[3, 1], [2, 0], [2, d.int(0, pages)], [1, pages]]), align: bufAlign };
    } else if (r < 23 && env.bufferFiles.length) {
      const f = d.pick(env.bufferFiles);
      const span = Math.max(f.size, PAGE);
      let off = d.int(0, Math.floor(span / PAGE)) * PAGE;
      // Never the same bytes the op works on.
      if (f.id === t.id && off < offset + length && offset < off + bufAlign + length) off = roundUp(offset + length, PAGE);
      buffer = { placement: 'mmap', file: f.id, offset: off, align: bufAlign };
    }
  }
  const nowait = hints.nowait ?? (vectored && d.chance(0.15));
  const shape: DataShape = { offset, length, via, nowait: vectored && nowait, direct, vectors, buffer };
  const aligned = !direct || (offset % t.unit === 0 && length % (t.unit * vectors) === 0 && buffer.align % t.unit === 0);
  const inside = t.kind === 'block' ? offset + length <= t.size : offset + length <= t.span;
  const safe = aligned && inside && !shape.nowait && buffer.placement !== 'mmap' && !t.flaky && !(write && t.readOnly);
  if (hints.mustSucceed ?? (safe && d.chance(0.5))) shape.mustSucceed = safe;
  return shape;
}
