/**
 * What a program can work on in a stack, described for the op generators:
 * block devices and files nothing sits on, with the sizes, alignments and
 * hazards that decide which offsets are legal and which claims are safe.
 */
import { LAYER_KINDS, type Layer, type StackInfo } from '../../model/index.ts';
import type { FsLayer } from '../../model/layers/fs.ts';
import { readsMayFail } from '../../model/layers/generate.ts';

const KiB = 1024;
const MiB = 1024 * KiB;

export interface IoTarget {
  id: string;
  kind: 'file' | 'block';
  layer: Layer;
  /** Block: the smallest size the device may have; file: its initial size. */
  size: number;
  /** Most IO goes to [0, span). */
  span: number;
  /** O_DIRECT alignment the model requires for success (a file: its fs block and device block; a device: its largest logical block). */
  unit: number;
  /** The smallest logical block the device may advertise (a loop's 512 on a 4 KiB backing): IO legal for it but below `unit`. */
  small: number;
  /** The filesystem a file is on. */
  fs?: FsLayer;
  /** Reads may fail where nothing went wrong (never-written integrity sectors, fault injection below). */
  flaky: boolean;
  /** Writes cannot succeed (a read-only loop). */
  readOnly: boolean;
}

/** Block layers and files a program may use: nothing sits on them (snapshots of an origin aside). */
export function ioTargets(info: StackInfo): IoTarget[] {
  const out: IoTarget[] = [];
  for (const l of info.layers) {
    const users = info.usersOf(l.id).filter((u) => !(u.kind === 'dm-snapshot' && u.origin === l.id));
    if (users.length) continue;
    if (l.kind === 'file') {
      const fsl = info.fsOf(l.id);
      const dev = fsl ? info.geometry(fsl.on) : undefined;
      const devLbs = dev?.logicalBlockSizes ?? [512];
      const unit = Math.max(fsl?.blockSize ?? 4096, ...devLbs);
      const span = Math.min(2 * MiB, Math.max(l.size, 256 * KiB));
      out.push({ id: l.id, kind: 'file', layer: l, size: l.size, span, unit, small: unit, ...(fsl ? { fs: fsl } : {}), flaky: false, readOnly: false });
      continue;
    }
    if (LAYER_KINDS[l.kind].role !== 'block') continue;
    const g = info.geometry(l.id);
    if (!g) continue;
    const lbs = g.logicalBlockSizes;
    out.push({
      id: l.id,
      kind: 'block',
      layer: l,
      size: g.sizeMin,
      span: Math.min(g.sizeMin, 8 * MiB),
      unit: Math.max(...lbs),
      small: Math.min(...lbs),
      flaky: readsMayFail({ stack: info }, l.id) || l.kind === 'dm-snapshot',
      readOnly: l.kind === 'loop' && l.readOnly,
    });
  }
  return out;
}

export const isFile = (t: IoTarget) => t.kind === 'file';
export const isBlock = (t: IoTarget) => t.kind === 'block';
