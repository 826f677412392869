/**
 * The content algebra. The model never holds bytes: an object's content is a
 * map from byte ranges to the SET of sources a byte there may come from.
 *
 * - zero: reads as zeros (holes, fresh disks, zeroed ranges)
 * - op(n, delta): op n's pattern; the byte at address a equals
 *   patternByte(seed, n, a + delta) (delta is 0 unless content moved:
 *   collapse/insert ranges, copies through mmap buffers)
 * - any: the model does not know (ciphertext of unwritten sectors, discarded
 *   ranges); every value is allowed
 * - error: reading it may fail (a bad block, a sector whose tag cannot verify)
 *
 * A set with more than one member is nondeterminism the kernel may resolve
 * either way (racing writers, a write a flaky device may have dropped). A set
 * that is exactly {error} means the read must fail: returning data there is
 * silently wrong data.
 */
import BTreeModule from 'sorted-btree';

// sorted-btree is CommonJS. Node's ESM loader hands over module.exports, whose `default` is the
// class; vite (vitest) applies the __esModule interop and hands over the class itself, which has
// no `default`. Accept both, or the model cannot run under the test runner.
type BTreeClass = typeof BTreeModule.default;
const BTree: BTreeClass = (BTreeModule as { default?: BTreeClass }).default ?? (BTreeModule as unknown as BTreeClass);
type BTree<K, V> = import('sorted-btree').default<K, V>;

export type Source = { t: 'zero' } | { t: 'any' } | { t: 'error' } | { t: 'noise' } | { t: 'op'; op: number; delta: number };

export class SrcSet {
  readonly any: boolean;
  readonly error: boolean;
  readonly zero: boolean;
  /** Damaged bytes (dm-flakey corrupt_bio_byte): garbage or zeroes, never another op's data. */
  readonly noise: boolean;
  /** Op sources, by "op@delta". */
  readonly ops: ReadonlyMap<string, { op: number; delta: number }>;
  /** Unions with other sets of the same table, memoised (see SetTable.union). */
  unionCache: Map<SrcSet, SrcSet> | undefined;
  constructor(readonly key: string, readonly items: readonly Source[]) {
    let any = false;
    let error = false;
    let zero = false;
    let noise = false;
    const ops = new Map<string, { op: number; delta: number }>();
    for (const s of items) {
      if (s.t === 'op') ops.set(sourceKey(s), { op: s.op, delta: s.delta });
      else if (s.t === 'any') any = true;
      else if (s.t === 'error') error = true;
      else if (s.t === 'zero') zero = true;
      else noise = true;
    }
    this.any = any;
    this.error = error;
    this.zero = zero;
    this.noise = noise;
    this.ops = ops;
  }
  /** Reading here must fail. */
  get mustError(): boolean {
    return this.error && this.items.length === 1;
  }
  /** Data (not an error) may be read here. */
  get mayHaveData(): boolean {
    return !this.mustError;
  }
  hasOp(op: number, delta: number): boolean {
    if (this.any) return true;
    if (this.ops.size === 1) {
      const only = this.ops.values().next().value!;
      return only.op === op && only.delta === delta;
    }
    return this.ops.has(`${op}@${delta}`);
  }
  toString(): string {
    return this.items.map(describeSource).join(' | ');
  }
}

export function sourceKey(s: Source): string {
  switch (s.t) {
    case 'zero': return 'z';
    case 'any': return 'a';
    case 'error': return 'e';
    case 'noise': return 'n';
    case 'op': return `${s.op}@${s.delta}`;
  }
}

export function describeSource(s: Source): string {
  switch (s.t) {
    case 'zero': return 'zeroes';
    case 'any': return 'any bytes';
    case 'error': return 'an error';
    case 'noise': return 'damaged bytes';
    case 'op': return s.delta === 0 ? `op ${s.op}` : `op ${s.op} (moved by ${-s.delta})`;
  }
}

/**
 * Interns source sets so that equal sets are the same object (cheap merging
 * and comparison). One table per evaluation: nothing outlives a judged case.
 */
export class SetTable {
  private readonly sets = new Map<string, SrcSet>();
  private readonly opSets: SrcSet[] = [];
  readonly zero = this.of([{ t: 'zero' }]);
  readonly any = this.of([{ t: 'any' }]);
  readonly error = this.of([{ t: 'error' }]);
  readonly noise = this.of([{ t: 'noise' }]);

  of(items: readonly Source[]): SrcSet {
    let list = dedupe(items);
    // 'any' already allows every value: keep it (and 'error', which is not a value) only.
    if (list.some((s) => s.t === 'any')) list = list.filter((s) => s.t === 'any' || s.t === 'error');
    list.sort((a, b) => (sourceKey(a) < sourceKey(b) ? -1 : 1));
    const key = list.map(sourceKey).join('|');
    let set = this.sets.get(key);
    if (!set) {
      set = new SrcSet(key, list);
      this.sets.set(key, set);
    }
    return set;
  }

  /** The set {op `op` at `delta`}: the same set of([{ t: 'op', op, delta }]) gives, without the general path. */
  op(op: number, delta = 0): SrcSet {
    if (delta === 0) {
      const cached = this.opSets[op];
      if (cached) return cached;
    }
    const key = `${op}@${delta}`;
    let set = this.sets.get(key);
    if (!set) {
      set = new SrcSet(key, [{ t: 'op', op, delta }]);
      this.sets.set(key, set);
    }
    if (delta === 0) this.opSets[op] = set;
    return set;
  }

  union(a: SrcSet, b: SrcSet): SrcSet {
    if (a === b) return a;
    let u = a.unionCache?.get(b);
    if (!u) {
      u = this.of([...a.items, ...b.items]);
      (a.unionCache ??= new Map()).set(b, u);
      (b.unionCache ??= new Map()).set(a, u);
    }
    return u;
  }

  /** The same sources seen from content that moved by `d` bytes (collapse: d < 0, insert: d > 0). */
  moved(a: SrcSet, d: number): SrcSet {
    if (d === 0 || a.ops.size === 0) return a;
    return this.of(a.items.map((s) => (s.t === 'op' ? { t: 'op', op: s.op, delta: s.delta - d } : s)));
  }

  /** Intersection, used to pin what an observation settled. */
  intersect(a: SrcSet, b: SrcSet): SrcSet | undefined {
    if (a === b) return a;
    if (a.any) return b;
    if (b.any) return a;
    const keys = new Set(b.items.map(sourceKey));
    const items = a.items.filter((s) => keys.has(sourceKey(s)));
    return items.length ? this.of(items) : undefined;
  }
}

function dedupe(items: readonly Source[]): Source[] {
  const seen = new Map<string, Source>();
  for (const s of items) seen.set(sourceKey(s), s);
  return [...seen.values()];
}

interface Ext {
  readonly e: number;
  readonly v: SrcSet;
}

export type Piece = [start: number, end: number, set: SrcSet];

/**
 * A range map from byte ranges to source sets, with `fill` for every byte not
 * stored. Backed by a copy-on-write B+ tree, so clone() is O(1): the model
 * clones freely when it explores interleavings.
 */
export class ExtentMap {
  private constructor(
    readonly table: SetTable,
    readonly fill: SrcSet,
    private readonly tree: BTree<number, Ext>,
    /**
     * A set that may error was stored at some point (never reset; clones
     * inherit it). While false no stored extent can error, so error queries
     * need not walk the map.
     */
    private storedError = false,
    /** Likewise: a set of more than one source was stored at some point. */
    private storedSeveral = false,
  ) {}

  static create(table: SetTable, fill: SrcSet): ExtentMap {
    return new ExtentMap(table, fill, new BTree<number, Ext>());
  }

  clone(): ExtentMap {
    return new ExtentMap(this.table, this.fill, this.tree.clone(), this.storedError, this.storedSeveral);
  }

  /** Some piece may have a set of more than one source (false: every piece has at most one, without looking). */
  mayHoldSeveral(): boolean {
    return this.storedSeveral || this.fill.items.length > 1;
  }

  /** Some byte of [s, e) may fail to read: pieces(s, e).some(([, , v]) => v.error), without listing the pieces when nothing stored can error. */
  mayError(s: number, e: number): boolean {
    if (s >= e) return false;
    if (!this.storedError && !this.fill.error) return false;
    return this.pieces(s, e).some(([, , v]) => v.error);
  }

  get extentCount(): number {
    return this.tree.size;
  }

  /** The pieces covering [s, e), in order, with gaps shown as `fill`. */
  pieces(s: number, e: number): Piece[] {
    const out: Piece[] = [];
    if (s >= e) return out;
    let pos = s;
    const left = this.tree.getPairOrNextLower(s);
    if (left && left[1].e > s) {
      const end = Math.min(e, left[1].e);
      out.push([s, end, left[1].v]);
      pos = end;
    }
    this.tree.forRange(s, e, false, (k, ext) => {
      if (k < pos) return;
      if (k > pos) out.push([pos, k, this.fill]);
      const end = Math.min(e, ext.e);
      out.push([k, end, ext.v]);
      pos = end;
    });
    if (pos < e) out.push([pos, e, this.fill]);
    return out;
  }

  /** Every byte of [s, e) now comes from `v`. */
  assign(s: number, e: number, v: SrcSet): void {
    if (s >= e) return;
    this.cut(s);
    this.cut(e);
    this.tree.deleteRange(s, e, false);
    if (v === this.fill) return;
    if (v.error) this.storedError = true;
    if (v.items.length > 1) this.storedSeveral = true;
    let start = s;
    let end = e;
    const left = this.tree.getPairOrNextLower(s);
    if (left && left[1].e === s && left[1].v === v) {
      start = left[0];
      this.tree.delete(left[0]);
    }
    const right = this.tree.get(e);
    if (right && right.v === v) {
      end = right.e;
      this.tree.delete(e);
    }
    this.tree.set(start, { e: end, v });
  }

  /** Replace the set of every piece in [s, e) with f(set). */
  transform(s: number, e: number, f: (v: SrcSet) => SrcSet): void {
    for (const [ps, pe, v] of this.pieces(s, e)) {
      const nv = f(v);
      if (nv !== v) this.assign(ps, pe, nv);
    }
  }

  /** Forget everything from `pos` on (it reads as `fill` again). */
  clearFrom(pos: number): void {
    this.cut(pos);
    this.tree.deleteRange(pos, Number.MAX_SAFE_INTEGER, true);
  }

  /**
   * Move all content at or after `pos` by `d` bytes: d > 0 opens a gap of
   * `fill` at [pos, pos+d) (insert range); d < 0 removes [pos, pos-d) and
   * closes the gap (collapse range).
   */
  shift(pos: number, d: number): void {
    if (d === 0) return;
    const from = d < 0 ? pos - d : pos;
    this.cut(pos);
    this.cut(from);
    const moved: Array<[number, Ext]> = [];
    this.tree.forRange(from, Number.MAX_SAFE_INTEGER, true, (k, ext) => {
      moved.push([k, ext]);
    });
    this.tree.deleteRange(pos, Number.MAX_SAFE_INTEGER, true);
    for (const [k, ext] of moved) this.tree.set(k + d, { e: ext.e + d, v: this.table.moved(ext.v, d) });
  }

  /** Split the extent that straddles `pos` so that `pos` starts an extent. */
  private cut(pos: number): void {
    const left = this.tree.getPairOrNextLower(pos);
    if (!left || left[0] === pos || left[1].e <= pos) return;
    const [k, ext] = left;
    this.tree.set(k, { e: pos, v: ext.v });
    this.tree.set(pos, { e: ext.e, v: ext.v });
  }

  /** Per-byte union with another map over [s, e). */
  unionWith(other: ExtentMap, s: number, e: number): void {
    for (const [ps, pe, v] of other.pieces(s, e)) this.transform(ps, pe, (mine) => this.table.union(mine, v));
  }
}
