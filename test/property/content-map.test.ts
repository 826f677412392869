/**
 * The range map under the model's content (model/content.ts ExtentMap)
 * against the obvious reference: one source set per byte. Random sequences
 * of every edit (assign, transform, clearFrom, shift, unionWith) with clones
 * taken along the way and edited on their own; after each edit the map must
 * show, byte for byte, what its reference holds, with pieces that tile the
 * asked range in order, and at the end no clone may have seen a sibling's
 * edits. Leaves of 4 extents (the model uses 64) make a few dozen extents
 * enough to split, merge and drop leaves all the time.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ExtentMap, SetTable, type SrcSet } from '../../model/content.ts';
import { fcParams } from '../helpers/fc.ts';

const SPAN = 400;
const TOP = SPAN + 100;

type Edit =
  | { kind: 'assign'; s: number; e: number; set: number }
  | { kind: 'transform'; s: number; e: number; set: number }
  | { kind: 'clearFrom'; pos: number }
  | { kind: 'shift'; pos: number; d: number }
  | { kind: 'union'; with: number; s: number; e: number }
  | { kind: 'clone'; of: number };

const range = fc.tuple(fc.nat(SPAN), fc.integer({ min: 1, max: 30 })).map(([s, len]) => ({ s, e: s + len }));

const edit: fc.Arbitrary<Edit> = fc.oneof(
  { weight: 16, arbitrary: fc.tuple(range, fc.nat(7)).map(([r, set]) => ({ kind: 'assign' as const, ...r, set })) },
  { weight: 2, arbitrary: fc.tuple(range, fc.nat(7)).map(([r, set]) => ({ kind: 'transform' as const, ...r, set })) },
  { weight: 1, arbitrary: fc.nat(SPAN).map((pos) => ({ kind: 'clearFrom' as const, pos })) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(SPAN), fc.integer({ min: -40, max: 40 })).map(([pos, d]) => ({ kind: 'shift' as const, pos, d })) },
  { weight: 1, arbitrary: fc.tuple(fc.nat(3), range).map(([w, r]) => ({ kind: 'union' as const, with: w, ...r })) },
  { weight: 1, arbitrary: fc.nat(3).map((of) => ({ kind: 'clone' as const, of })) },
);

/** The first byte where `m` differs from `ref` (or the pieces do not tile [0, TOP)), in words; undefined when they agree. */
function difference(m: ExtentMap, ref: readonly SrcSet[]): string | undefined {
  let pos = 0;
  for (const [s, e, v] of m.pieces(0, TOP)) {
    if (s !== pos || e <= s) return `piece [${s}, ${e}) after ${pos}`;
    for (let a = s; a < e; a++) if (ref[a] !== v) return `byte ${a}: map ${v.toString()}, reference ${ref[a]!.toString()}`;
    pos = e;
  }
  return pos === TOP ? undefined : `pieces end at ${pos}`;
}

describe('the content range map', () => {
  it('holds per byte what a byte-per-byte reference holds, clones included', () => {
    let most = 0;
    const prop = fc.property(fc.array(edit, { minLength: 50, maxLength: 300, size: 'max' }), fc.boolean(), (edits, anyFill) => {
      const t = new SetTable();
      const fill = anyFill ? t.any : t.zero;
      const palette: SrcSet[] = [fill, t.op(1), t.op(2), t.op(3, 5), t.union(t.op(1), t.op(2)), t.error, t.union(t.op(4), t.zero), t.noise];
      const maps: ExtentMap[] = [ExtentMap.create(t, fill, 4)];
      const refs: SrcSet[][] = [new Array<SrcSet>(TOP).fill(fill)];
      let cursor = 0;
      for (const [i, x] of edits.entries()) {
        const m = maps[cursor]!;
        const r = refs[cursor]!;
        switch (x.kind) {
          case 'assign':
            m.assign(x.s, x.e, palette[x.set]!);
            for (let a = x.s; a < x.e; a++) r[a] = palette[x.set]!;
            break;
          case 'transform': {
            const f = (v: SrcSet) => t.union(v, palette[x.set]!);
            m.transform(x.s, x.e, f);
            for (let a = x.s; a < x.e; a++) r[a] = f(r[a]!);
            break;
          }
          case 'clearFrom':
            m.clearFrom(x.pos);
            for (let a = x.pos; a < TOP; a++) r[a] = fill;
            break;
          case 'shift': {
            m.shift(x.pos, x.d);
            const from = x.d < 0 ? x.pos - x.d : x.pos;
            const before = r.slice();
            for (let a = x.pos; a < TOP; a++) r[a] = fill;
            for (let a = from; a < TOP; a++) if (a + x.d < TOP) r[a + x.d] = t.moved(before[a]!, x.d);
            // Content moved past TOP is out of view; drop it from the map too, so the views agree.
            m.clearFrom(TOP);
            break;
          }
          case 'union': {
            const w = x.with % maps.length;
            const other = refs[w]!.slice();
            m.unionWith(maps[w]!, x.s, x.e);
            for (let a = x.s; a < x.e; a++) r[a] = t.union(r[a]!, other[a]!);
            break;
          }
          case 'clone':
            maps.push(maps[x.of % maps.length]!.clone());
            refs.push(refs[x.of % refs.length]!.slice());
            cursor = maps.length - 1;
            continue;
        }
        most = Math.max(most, m.extentCount);
        const bad = difference(m, r);
        if (bad) expect({ edit: i, map: cursor, x, bad }).toBe('no difference');
        cursor = (cursor + 1) % maps.length;
      }
      for (let k = 0; k < maps.length; k++) {
        const bad = difference(maps[k]!, refs[k]!);
        if (bad) expect({ map: k, bad }).toBe('no difference');
      }
      // A window in the middle tiles the same way.
      const ps = maps[0]!.pieces(123, 321);
      expect([ps[0]![0], ps[ps.length - 1]![1]]).toEqual([123, 321]);
    });
    fc.assert(prop, fcParams('content map vs bytes', 200));
    // The maps must have grown past several leaves, or splitting was never tested.
    expect(most).toBeGreaterThan(24);
  });
});
