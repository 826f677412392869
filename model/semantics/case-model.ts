/**
 * Everything about a case that does not change while the program runs:
 * resolved geometry, the program cut into phases at barriers, and, for each
 * object, the faults beneath it and how a range of a lower layer maps into it.
 */
import { ExtentMap, SetTable, type SrcSet } from '../content.ts';
import { type Layer, FS_FACTS, type FsType, layerModule } from '../layers/index.ts';
import type { ObservedGeometry } from '../observation.ts';
import type { Op } from '../ops/index.ts';
import type { Case } from '../schema/case.ts';
import type { StackInfo } from '../stack.ts';
import { type ObjectState, World } from './world.ts';

export interface ResolvedGeometry {
  size: number;
  logicalBlockSize: number;
  physicalBlockSize: number;
}

export interface OpPlace {
  op: Op;
  thread: number;
  index: number;
  phase: number;
}

export interface FaultSummary {
  readErrors: boolean;
  writeErrors: boolean;
  dropWrites: boolean;
  corruptReads: boolean;
  /** A filesystem sits between a fault (or a corruption) and this object: its data and errors are not judged. */
  lenient: boolean;
}

export interface ObjectAbove {
  obj: string;
  /** Where the lower range lands in this object, or 'unknown' (filesystem, interleaved metadata, ...). */
  ranges: Array<[number, number]> | 'unknown';
  /** A layer on the way up checks data, so damage must surface as an error. */
  verified: boolean;
  viaFs: boolean;
}

const NO_FAULTS: FaultSummary = { readErrors: false, writeErrors: false, dropWrites: false, corruptReads: false, lenient: false };

export class CaseModel {
  readonly table = new SetTable();
  readonly seed: number;
  readonly geometry = new Map<string, ResolvedGeometry>();
  /** phases[p][t]: the ops of thread t between barrier p-1 and barrier p. */
  readonly phases: Op[][][] = [];
  /** Layers a corrupt op damages. */
  private readonly corrupted = new Set<string>();
  /** Block sizes loop-set-block-size ops set, by loop device. */
  private readonly loopBlockSizes = new Map<string, number[]>();
  private placeIndex: Map<number, OpPlace> | undefined;
  readonly faults = new Map<string, FaultSummary>();
  /** Empty set: the fill of maps that record only what a thread touched. */
  readonly none: SrcSet;

  constructor(
    readonly theCase: Case,
    readonly info: StackInfo,
    observed: Readonly<Record<string, ObservedGeometry>> = {},
  ) {
    this.seed = theCase.seed;
    this.none = this.table.of([]);
    for (const l of info.order) {
      const bounds = info.geometry(l.id);
      if (!bounds || l.kind === 'file') continue;
      const seen = observed[l.id];
      this.geometry.set(l.id, {
        size: seen?.size ?? bounds.sizeMax,
        logicalBlockSize: seen?.logicalBlockSize ?? bounds.logicalBlockSizes[0]!,
        physicalBlockSize: seen?.physicalBlockSize ?? bounds.physicalBlockSize,
      });
    }
    this.cutPhases();
    for (const l of info.layers) if (l.kind !== 'fs') this.faults.set(l.id, this.faultsBelow(l.id));
  }

  private cutPhases(): void {
    const threads = this.theCase.program.threads;
    for (let ti = 0; ti < threads.length; ti++) {
      let phase = 0;
      for (const op of threads[ti]!.ops) {
        if (op.kind === 'barrier') {
          phase++;
          continue;
        }
        if (op.kind === 'corrupt') this.corrupted.add(op.target);
        else if (op.kind === 'loop-set-block-size') {
          const sizes = this.loopBlockSizes.get(op.target);
          if (sizes) sizes.push(op.size);
          else this.loopBlockSizes.set(op.target, [op.size]);
        }
        while (this.phases.length <= phase) this.phases.push(threads.map(() => []));
        this.phases[phase]![ti]!.push(op);
      }
    }
    if (this.phases.length === 0) this.phases.push(threads.map(() => []));
  }

  /** Where each op of the program sits, by op id (made on first use: the walk itself does not need it). */
  get places(): ReadonlyMap<number, OpPlace> {
    if (!this.placeIndex) {
      const places = new Map<number, OpPlace>();
      this.theCase.program.threads.forEach((t, ti) => {
        let phase = 0;
        t.ops.forEach((op, index) => {
          places.set(op.id, { op, thread: ti, index, phase });
          if (op.kind === 'barrier') phase++;
        });
      });
      this.placeIndex = places;
    }
    return this.placeIndex;
  }

  layer(id: string): Layer {
    const l = this.info.layer(id);
    if (!l) throw new Error(`model: no layer '${id}'`);
    return l;
  }

  isFile(id: string): boolean {
    return this.info.layer(id)?.kind === 'file';
  }

  fsTypeOf(fileId: string): FsType | undefined {
    return this.info.fsOf(fileId)?.type;
  }

  /** Every logical block size the device under a file's filesystem may have during the program. */
  fileDeviceBlockSizes(fileId: string): number[] {
    const fsl = this.info.fsOf(fileId);
    if (!fsl) return [512];
    const lbs = new Set<number>();
    const dev = this.geometry.get(fsl.on);
    if (dev) lbs.add(dev.logicalBlockSize);
    for (const l of [this.layer(fsl.on), ...this.info.below(fsl.on)]) {
      if (l.kind !== 'loop') continue;
      for (const size of this.loopBlockSizes.get(l.id) ?? []) lbs.add(size);
    }
    return [...lbs];
  }

  /** The tracked objects that sit above `lowerId`, and where [s, e) of it lands in each. */
  objectsAbove(lowerId: string, s: number, e: number): ObjectAbove[] {
    const out: ObjectAbove[] = [];
    for (const x of this.info.layers) {
      if (x.kind === 'fs' || x.id === lowerId) continue;
      const path = this.pathDown(x.id, lowerId);
      if (!path) continue;
      // path: x ... lowerId. Map from the bottom up.
      let ranges: Array<[number, number]> | 'unknown' = [[s, e]];
      let verified = false;
      let viaFs = false;
      for (let i = path.length - 2; i >= 0; i--) {
        const upper = this.layer(path[i]!);
        const lower = path[i + 1]!;
        if (upper.kind === 'fs') viaFs = true;
        if (layerModule(upper).verifiesData(upper)) verified = true;
        if (ranges === 'unknown') continue;
        const next: Array<[number, number]> = [];
        for (const [rs, re] of ranges) {
          const m = layerModule(upper).mapUp(upper, lower, rs, re);
          if (m === 'unknown') {
            ranges = 'unknown';
            break;
          }
          next.push(...m);
        }
        if (ranges !== 'unknown') ranges = next;
      }
      out.push({ obj: x.id, ranges, verified, viaFs });
    }
    return out;
  }

  /** Layer ids from `top` down to `bottom` (both included), or undefined when `bottom` is not below `top`. */
  private pathDown(top: string, bottom: string): string[] | undefined {
    if (top === bottom) return [top];
    const l = this.info.layer(top);
    if (!l) return undefined;
    for (const ref of layerModule(l).lower(l)) {
      const rest = this.pathDown(ref.ref, bottom);
      if (rest) return [top, ...rest];
    }
    return undefined;
  }

  private faultsBelow(id: string): FaultSummary {
    const f = { ...NO_FAULTS };
    for (const l of [this.layer(id), ...this.info.below(id)]) {
      const profile = layerModule(l).fault(l);
      if (profile.kind === 'none' || profile.kind === 'bad-blocks') continue;
      const above = l.id === id ? { viaFs: false } : this.objectsAbove(l.id, 0, 1).find((a) => a.obj === id);
      if (above?.viaFs) f.lenient = true;
      if (profile.kind === 'error') {
        f.readErrors ||= profile.reads;
        f.writeErrors ||= profile.writes;
      } else if (profile.kind === 'drop-writes') f.dropWrites = true;
      else if (profile.kind === 'corrupt-reads') f.corruptReads = true;
    }
    // Bad blocks, or a corrupt op, under a filesystem: anything on it may fail or read back damaged.
    // (Static, so that threads racing the corrupt op see it too.)
    for (const l of this.info.below(id)) {
      const p = layerModule(l).fault(l);
      if ((p.kind === 'bad-blocks' || this.corrupted.has(l.id)) && this.objectsAbove(l.id, 0, 1).find((a) => a.obj === id)?.viaFs) f.lenient = true;
    }
    return f;
  }

  private readonly badBlockCache = new Map<string, Array<Array<[number, number]>>>();

  /**
   * Where each dm-dust bad block at or below `obj` lands in it, one list of
   * ranges per block (only through layers with a known mapping, as in
   * initialWorld).
   */
  badBlocksIn(obj: string): ReadonlyArray<ReadonlyArray<[number, number]>> {
    let out = this.badBlockCache.get(obj);
    if (out) return out;
    out = [];
    const top = this.info.layer(obj);
    for (const d of top ? [top, ...this.info.below(obj)] : []) {
      const p = layerModule(d).fault(d);
      if (p.kind !== 'bad-blocks') continue;
      for (const b of p.blocks) {
        const s = b * p.blockSize;
        if (d.id === obj) {
          out.push([[s, s + p.blockSize]]);
          continue;
        }
        const a = this.objectsAbove(d.id, s, s + p.blockSize).find((x) => x.obj === obj);
        if (a && !a.viaFs && a.ranges !== 'unknown') out.push(a.ranges);
      }
    }
    this.badBlockCache.set(obj, out);
    return out;
  }

  faultsOf(id: string): FaultSummary {
    return this.faults.get(id) ?? NO_FAULTS;
  }

  /** The world before the first op. */
  initialWorld(): World {
    const objects = new Map<string, ObjectState>();
    for (const l of this.info.order) {
      if (l.kind === 'fs') continue;
      const isFile = l.kind === 'file';
      const size = isFile ? l.size : (this.geometry.get(l.id)?.size ?? 0);
      const content = ExtentMap.create(this.table, this.initialSet(l));
      objects.set(l.id, {
        id: l.id,
        kind: isFile ? 'file' : 'block',
        content,
        sizes: [size],
        lbs: [this.geometry.get(l.id)?.logicalBlockSize ?? 1],
        active: !(l.kind === 'dm-snapshot' && l.createdAt === 'op'),
        reserved: isFile ? l.size : 0,
        lenient: false,
      });
    }
    // Bad blocks read as errors until written; where they land is known only through simple layers.
    for (const l of this.info.layers) {
      const p = layerModule(l).fault(l);
      if (p.kind !== 'bad-blocks') continue;
      const targets: Array<{ obj: string; ranges: Array<[number, number]> | 'unknown' }> = [
        { obj: l.id, ranges: p.blocks.map((b) => [b * p.blockSize, (b + 1) * p.blockSize] as [number, number]) },
      ];
      for (const b of p.blocks) for (const a of this.objectsAbove(l.id, b * p.blockSize, (b + 1) * p.blockSize)) if (!a.viaFs) targets.push(a);
      for (const t of targets) {
        const o = objects.get(t.obj);
        if (!o) continue;
        if (t.ranges === 'unknown') o.content = withFill(o.content, this.table.union(o.content.fill, this.table.error), this.table);
        else for (const [s, e] of t.ranges) o.content.assign(s, e, this.table.error);
      }
    }
    return new World(objects);
  }

  private initialSet(l: Layer): SrcSet {
    const fill = layerModule(l).initialFill(l, this.info);
    switch (fill) {
      case 'zero': return this.table.zero;
      case 'any': return this.table.any;
      case 'error': return this.table.error;
      case 'scrambled': {
        const below = this.lowerInitialSet(l);
        if (below.mustError) return this.table.error;
        return below.error ? this.table.union(this.table.any, this.table.error) : this.table.any;
      }
      case 'lower': return this.lowerInitialSet(l);
    }
  }

  /** The union of what the layers below start with. */
  private lowerInitialSet(l: Layer): SrcSet {
    // Striping and mirroring layers show every member (an md raid0 over plain dm-crypt
    // members reads their noise; a dm-stripe reads each member in its chunks); a snapshot
    // shows its origin, never its COW device.
    const refs = layerModule(l).lower(l);
    const from = l.kind === 'dm-snapshot' ? refs.slice(0, 1) : refs;
    const sets = from.flatMap((r) => {
      const lower = this.info.layer(r.ref);
      return lower ? [this.initialSet(lower)] : [];
    });
    return sets.length ? sets.reduce((a, b) => this.table.union(a, b)) : this.table.zero;
  }

  fsFacts(fileId: string) {
    const t = this.fsTypeOf(fileId);
    return t ? FS_FACTS[t] : undefined;
  }
}

/** A map with a different fill for everything not stored (used when a whole device may fail). */
function withFill(m: ExtentMap, fill: SrcSet, table: SetTable): ExtentMap {
  const out = ExtentMap.create(table, fill);
  for (const [s, e, v] of m.pieces(0, Number.MAX_SAFE_INTEGER)) if (v !== m.fill) out.assign(s, e, v);
  return out;
}
