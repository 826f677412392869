/**
 * The model's mutable state while it walks a program: one object per block
 * layer and file, holding what each byte may be, what sizes the object may
 * have, and (for loop devices) which logical block sizes are possible.
 * Cloning is cheap (content maps are copy-on-write), so the evaluator clones
 * a world per thread and per explored interleaving.
 */
import type { ExtentMap } from '../content.ts';

export interface ObjectState {
  readonly id: string;
  readonly kind: 'file' | 'block';
  content: ExtentMap;
  /** Possible sizes, sorted and distinct (one entry unless a race left it open). */
  sizes: number[];
  /** Block objects: possible logical block sizes now. */
  lbs: number[];
  /** Snapshots: whether the device exists now. */
  active: boolean;
  /** Files: bytes that may be allocated (an over-estimate, for ENOSPC). */
  reserved: number;
  /** Damage was done beneath a filesystem this file lives on: its data and errors are no longer judged. */
  lenient: boolean;
}

export class World {
  constructor(readonly objects: Map<string, ObjectState>) {}

  get(id: string): ObjectState {
    const o = this.objects.get(id);
    if (!o) throw new Error(`model: no object '${id}'`);
    return o;
  }

  clone(): World {
    const m = new Map<string, ObjectState>();
    for (const [k, o] of this.objects) m.set(k, { ...o, content: o.content.clone(), sizes: [...o.sizes], lbs: [...o.lbs] });
    return new World(m);
  }
}

export function uniqueSorted(xs: Iterable<number>): number[] {
  return [...new Set(xs)].sort((a, b) => a - b);
}
