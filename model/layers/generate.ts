/**
 * Small helpers for the layer kinds' generation hooks (LayerKindModule.arbitrary):
 * sizes in whole MiB, powers of two, the block layers a new layer may sit on.
 * Pure: fast-check arbitraries only.
 */
import fc from 'fast-check';
import type { Layer } from './index.ts';
import type { GeometryBounds, LayerGenContext } from './kind.ts';

export const MiB = 1024 * 1024;

const NO_GEOMETRY: GeometryBounds = { sizeMin: 0, sizeMax: 0, logicalBlockSizes: [512], physicalBlockSize: 512 };

export function geometryOf(ctx: LayerGenContext, id: string): GeometryBounds {
  return ctx.stack.geometry(id) ?? NO_GEOMETRY;
}

/** The largest logical block size a layer may have (what IO and offsets on it must respect). */
export function maxLbs(ctx: LayerGenContext, id: string): number {
  return Math.max(...geometryOf(ctx, id).logicalBlockSizes);
}

/** Free block layers of at least `min` bytes whatever the kernel decides. */
export function blocksAtLeast(ctx: LayerGenContext, min: number): Layer[] {
  return ctx.blocks.filter((l) => geometryOf(ctx, l.id).sizeMin >= min);
}

/** Whole-MiB sizes in [min, max] (bytes), mostly the round ones among them. */
export function mibSize(min: number, max: number): fc.Arbitrary<number> {
  const lo = Math.ceil(min / MiB);
  const hi = Math.max(lo, Math.floor(max / MiB));
  const round = [8, 16, 32, 64, 128, 256, 320, 512].filter((n) => n >= lo && n <= hi);
  const any = fc.integer({ min: lo, max: hi });
  const pick = round.length ? fc.oneof({ weight: 3, arbitrary: fc.constantFrom(...round) }, { weight: 1, arbitrary: any }) : any;
  return pick.map((n) => n * MiB);
}

/** 2^k for k in [minExp, maxExp]. */
export function pow2(minExp: number, maxExp: number): fc.Arbitrary<number> {
  return fc.integer({ min: minExp, max: maxExp }).map((k) => 2 ** k);
}

/** One of the items, or undefined for none. */
export function pickFrom<T>(items: readonly T[]): fc.Arbitrary<T> | undefined {
  return items.length ? fc.constantFrom(...items) : undefined;
}

/** Whole MiB at or above n bytes. */
export function ceilMiB(n: number): number {
  return Math.ceil(n / MiB) * MiB;
}

/**
 * Members for a layer over several devices (md, dm-stripe): `count` distinct
 * free block layers of at least `min` bytes, topped up with fresh disks
 * (ids `<id>-m<i>`) of the first member's size when the stack has too few.
 */
export function membersArbitrary(ctx: LayerGenContext, count: fc.Arbitrary<number>, min: number): fc.Arbitrary<{ members: string[]; helpers: Layer[] }> | undefined {
  const candidates = blocksAtLeast(ctx, min);
  if (!ctx.kinds.has('disk') && candidates.length < 2) return undefined;
  return fc
    .record({ n: count, order: fc.shuffledSubarray(candidates, { minLength: Math.min(2, candidates.length), maxLength: candidates.length }) })
    .map(({ n, order }) => {
      // Without disks to add, as many members as the stack has (at least 2, checked above).
      const want = ctx.kinds.has('disk') ? n : Math.min(n, candidates.length);
      const chosen = order.slice(0, want).map((l) => l.id);
      const helpers: Layer[] = [];
      const first = chosen[0];
      const size = first ? ceilMiB(Math.max(min, geometryOf(ctx, first).sizeMax)) : Math.max(ctx.diskSize.min, ceilMiB(min));
      const lbs = first ? maxLbs(ctx, first) : 512;
      for (let i = chosen.length; i < want; i++) {
        const id = `${ctx.id}-m${i}`;
        helpers.push({ id, kind: 'disk', size, logicalBlockSize: lbs === 512 || lbs === 1024 || lbs === 2048 || lbs === 4096 ? lbs : 512 });
        chosen.push(id);
      }
      return { members: chosen, helpers };
    });
}

/** The ids a layer sits on (a local copy of the modules' `lower`, which this file cannot import at load time). */
export function lowerIds(l: Layer): string[] {
  switch (l.kind) {
    case 'disk':
    case 'scsi-debug':
      return [];
    case 'md':
    case 'dm-stripe':
      return l.members;
    case 'dm-snapshot':
      return [l.origin, l.cow];
    default:
      return [l.on];
  }
}

/**
 * Whether reads of a block layer may fail where nothing went wrong: never-written
 * sectors under integrity tags, bad blocks, a device that goes down. Filesystems
 * are not made on such layers (mkfs would fail at set-up, not in the program).
 */
export function readsMayFail(ctx: Pick<LayerGenContext, 'stack'>, id: string): boolean {
  const l = ctx.stack.layer(id);
  if (!l) return false;
  switch (l.kind) {
    case 'dm-integrity':
      if (l.internalHash !== 'none' && !l.wipe) return true;
      break;
    case 'dm-crypt':
      if (l.wipe) return false;
      if (l.integrity !== 'none') return true;
      break;
    case 'dm-dust':
      if (l.enabled && l.badBlocks.length) return true;
      break;
    case 'dm-flakey':
      if (l.downSeconds > 0) return true;
      break;
    default:
      break;
  }
  return lowerIds(l).some((x) => readsMayFail(ctx, x));
}
